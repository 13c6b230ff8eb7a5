/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Ask slurmctld whether a job still runs on a node. */
#ifndef JOBSHM_ALIVE_H
#define JOBSHM_ALIVE_H

#include <stdint.h>

enum job_liveness { JOB_GONE, JOB_LIVE, JOB_UNKNOWN };

/* node "" means: any node (base_path without %n: use this host). */
enum job_liveness job_liveness(uint32_t jobid, const char *node,
			       char *why, int len);

#endif
