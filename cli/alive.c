/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Liveness from slurmctld: the only party that knows a job has ended. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alive.h"
#include "slurm_compat.h"

static const char *
state_name(uint32_t state)
{
	static const char *names[] = {
		"PENDING", "RUNNING", "SUSPENDED", "COMPLETED", "CANCELLED",
		"FAILED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL",
		"DEADLINE", "OUT_OF_MEMORY",
	};
	uint32_t base = state & JOB_STATE_BASE;

	return base < sizeof(names) / sizeof(names[0]) ? names[base]
						       : "UNKNOWN";
}

static int
on_node(const slurm_job_info_t *j, const char *node)
{
	jobshm_hostlist_t hl;
	int found;

	if (!node || !*node)
		return 1;	/* a node directory without a name: keep it */
	if (!j->nodes)
		return 0;
	hl = slurm_hostlist_create(j->nodes);
	if (!hl)
		return 1;	/* cannot tell: keep it */
	found = slurm_hostlist_find(hl, node) >= 0;
	slurm_hostlist_destroy(hl);
	return found;
}

static enum job_liveness
judge(const slurm_job_info_t *j, const char *node, char *why, int len)
{
	uint32_t base = j->job_state & JOB_STATE_BASE;

	if (j->job_state & JOB_COMPLETING) {
		snprintf(why, len, "completing (its epilog will clean up)");
		return JOB_LIVE;
	}
	if (base != JOB_RUNNING && base != JOB_SUSPENDED) {
		snprintf(why, len, "job state %s",
			 state_name(j->job_state));
		return JOB_GONE;
	}
	if (!on_node(j, node)) {
		snprintf(why, len, "job runs on %s, not here", j->nodes);
		return JOB_GONE;
	}
	snprintf(why, len, "job is %s here",
		 state_name(j->job_state));
	return JOB_LIVE;
}

enum job_liveness
job_liveness(uint32_t jobid, const char *node, char *why, int len)
{
	static int inited;
	job_info_msg_t *msg = NULL;
	enum job_liveness r;

	if (!inited) {
		if (!getenv("SLURM_CONF") &&
		    access("/etc/slurm/slurm.conf", R_OK) < 0) {
			snprintf(why, len, "no Slurm configuration to ask "
				 "slurmctld with (set SLURM_CONF)");
			return JOB_UNKNOWN;
		}
		slurm_init(NULL);
		inited = 1;
	}
	if (jobshm_load_job(&msg, jobid) != SLURM_SUCCESS) {
		int e = jobshm_slurm_errno();

		snprintf(why, len, "%s", slurm_strerror(e));
		return e == ESLURM_INVALID_JOB_ID ? JOB_GONE : JOB_UNKNOWN;
	}
	if (msg->record_count < 1) {
		snprintf(why, len, "unknown to slurmctld");
		r = JOB_GONE;
	} else {
		r = judge(&msg->job_array[0], node, why, len);
	}
	slurm_free_job_info_msg(msg);
	return r;
}
