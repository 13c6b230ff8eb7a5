/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What differs between the Slurm releases jobshm builds against (22.05
 * to 26.05), decided here once by SLURM_VERSION_NUMBER, so no #if is
 * scattered through the code.
 */
#ifndef JOBSHM_SLURM_COMPAT_H
#define JOBSHM_SLURM_COMPAT_H

#include <errno.h>
#include <stdint.h>

#include <slurm/slurm.h>
#include <slurm/slurm_errno.h>

/* 23.11: hostlist_t became the struct itself; handles are pointers. */
#if SLURM_VERSION_NUMBER >= SLURM_VERSION_NUM(23, 11, 0)
typedef hostlist_t *jobshm_hostlist_t;
#else
typedef hostlist_t jobshm_hostlist_t;
#endif

/* 24.11: slurm_get_errno() is gone; the API sets errno. */
static inline int
jobshm_slurm_errno(void)
{
#if SLURM_VERSION_NUMBER >= SLURM_VERSION_NUM(24, 11, 0)
	return errno;
#else
	return slurm_get_errno();
#endif
}

/* 26.05: slurm_load_job() takes a step id, not a job id. */
static inline int
jobshm_load_job(job_info_msg_t **msg, uint32_t jobid)
{
#if SLURM_VERSION_NUMBER >= SLURM_VERSION_NUM(26, 5, 0)
	slurm_step_id_t id = SLURM_STEP_ID_INITIALIZER;

	id.job_id = jobid;
	return slurm_load_job(msg, id, SHOW_ALL);
#else
	return slurm_load_job(msg, jobid, SHOW_ALL);
#endif
}

#endif
