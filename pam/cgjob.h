/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Which Slurm job a process's cgroup names (pam_jobshm's lookup), apart
 * from the module so that the unit tests can run it on a fake cgroup
 * tree and a fake /proc (tests/unit/test_pamcg.c).
 */
#ifndef JOBSHM_PAM_CGJOB_H
#define JOBSHM_PAM_CGJOB_H

#include <stddef.h>
#include <stdint.h>

struct cgjob_roots {
	const char *self;	/* the process's cgroup file (/proc/self/cgroup) */
	const char *proc;	/* procfs (/proc) */
	const char *cg2;	/* where cgroup v2 is mounted; NULL: nowhere */
};

/*
 * The job whose cgroup the process is in: 1 found (*jobid), 0 in no
 * job's cgroup, -1 refused (why says why: the hierarchies name two jobs,
 * or a cgroup v2 job cgroup named by its SLUID whose extern slurmstepd
 * cannot be found or trusted).
 */
int cgjob_find(const struct cgjob_roots *r, uint32_t *jobid, char *why,
	       size_t len);

/* Where cgroup v2 is mounted (its root) in a mountinfo file: 0, -1 none. */
int cgjob_v2_mount(const char *mountinfo, char *buf, size_t len);

#endif
