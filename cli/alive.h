/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef JOBSHM_ALIVE_H
#define JOBSHM_ALIVE_H

#include <stddef.h>
#include <stdint.h>

enum job_liveness { JOB_GONE, JOB_LIVE, JOB_UNKNOWN };

/* One leftover whose job's liveness sweep needs. */
struct job_query {
	uint32_t jobid;
	char node[128];            /* "" when base_path has no %n    */
	enum job_liveness l;
	char why[256];
};

/*
 * Decide every query: from this node's own state first (a slurmstepd of
 * the job answering on its socket in slurmd's spool directory; with
 * PrologFlags=Contain, none means the job is gone), then, for what that
 * cannot decide, with one request to slurmctld for all of them.
 * Returns the number of requests made to slurmctld (0 or 1).
 */
int jobs_liveness(struct job_query *q, size_t n);

#endif
