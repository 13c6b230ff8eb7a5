/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Liveness of leftover jobs, asked of the node first and of slurmctld
 * at most once per sweep: after a power event every node sweeps at
 * once, when the controller is busiest.
 *
 * A running job has a slurmstepd on the node for each of its steps
 * there, each listening on <SlurmdSpoolDir>/<node>_<jobid>.<step>
 * (Slurm's own namespace plugins decide liveness the same way when
 * slurmd restarts).  A step answering there: the job is live.  With
 * PrologFlags=Contain every running job keeps its extern step on each of
 * its nodes, so none answering: the job is gone.  Otherwise (between two
 * steps of an salloc) only slurmctld knows, and it is asked once for
 * every job still undecided.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "alive.h"
#include "slurm_compat.h"

/* libslurm's configuration, read by slurm_init (not in every release's
 * public headers as a variable: weak, so a build without it still runs). */
extern slurm_conf_t slurm_conf __attribute__((weak));

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

static int
init_slurm(void)
{
	static int inited = -1;

	if (inited < 0) {
		inited = getenv("SLURM_CONF") ||
			 access("/etc/slurm/slurm.conf", R_OK) == 0;
		if (inited)
			slurm_init(NULL);
	}
	return inited;
}

/* SlurmdSpoolDir for node, %n and %h expanded; "" if unknown. */
static void
spool_dir(const char *node, char *out, size_t len)
{
	const char *s = &slurm_conf ? slurm_conf.slurmd_spooldir : NULL;
	char host[128] = "";
	size_t n = 0;

	out[0] = '\0';
	if (!s || !node || !*node)
		return;
	gethostname(host, sizeof(host) - 1);
	host[strcspn(host, ".")] = '\0';
	for (; *s && n + 1 < len; s++) {
		const char *sub = s[0] == '%' && s[1] == 'n' ? node :
				  s[0] == '%' && s[1] == 'h' ? host : NULL;

		if (sub) {
			n += (size_t)snprintf(out + n, len - n, "%s", sub);
			s++;
		} else {
			out[n++] = *s;
		}
		if (n >= len)
			n = len - 1;
	}
	out[n] = '\0';
}

static int
answers(const char *dir, const char *name)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, ok;

	if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", dir,
			     name) >= sizeof(sa.sun_path))
		return 0;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

/* 1 if a slurmstepd of jobid answers on node's spool; 0 if none does;
 * -1 if this cannot be told here. */
static int
stepd_of(const char *node, uint32_t jobid)
{
	char dir[512], prefix[160];
	struct dirent *d;
	size_t pl;
	DIR *sp;
	int found = 0;

	spool_dir(node, dir, sizeof(dir));
	if (!dir[0] || !(sp = opendir(dir)))
		return -1;
	pl = (size_t)snprintf(prefix, sizeof(prefix), "%s_%u.", node, jobid);
	while (!found && (d = readdir(sp)))
		found = !strncmp(d->d_name, prefix, pl) &&
			answers(dir, d->d_name);
	closedir(sp);
	return found;
}

/* From the node alone; 1 if decided. */
static int
decide_here(struct job_query *q, int contain)
{
	int s = stepd_of(q->node, q->jobid);

	if (s == 1) {
		snprintf(q->why, sizeof(q->why), "a slurmstepd of the job "
			 "answers on this node");
		q->l = JOB_LIVE;
	} else if (s == 0 && contain) {
		snprintf(q->why, sizeof(q->why), "no slurmstepd of the job on "
			 "this node (with PrologFlags=Contain a running job "
			 "has one)");
		q->l = JOB_GONE;
	}
	return q->l != JOB_UNKNOWN;
}

static const slurm_job_info_t *
find_job(const job_info_msg_t *m, uint32_t jobid)
{
	for (uint32_t i = 0; i < m->record_count; i++)
		if (m->job_array[i].job_id == jobid)
			return &m->job_array[i];
	return NULL;
}

/* One request to slurmctld for every query still undecided. */
static void
ask_slurmctld(struct job_query *q, size_t n)
{
	job_info_msg_t *m = NULL;
	const slurm_job_info_t *j;

	if (slurm_load_jobs(0, &m, SHOW_ALL) != SLURM_SUCCESS) {
		const char *e = slurm_strerror(jobshm_slurm_errno());

		for (size_t i = 0; i < n; i++)
			if (q[i].l == JOB_UNKNOWN)
				snprintf(q[i].why, sizeof(q[i].why), "%s", e);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (q[i].l != JOB_UNKNOWN)
			continue;
		if ((j = find_job(m, q[i].jobid))) {
			q[i].l = judge(j, q[i].node, q[i].why,
				       sizeof(q[i].why));
		} else {
			snprintf(q[i].why, sizeof(q[i].why), "unknown to "
				 "slurmctld");
			q[i].l = JOB_GONE;
		}
	}
	slurm_free_job_info_msg(m);
}

int
jobs_liveness(struct job_query *q, size_t n)
{
	size_t i, undecided = 0;
	int contain;

	for (i = 0; i < n; i++) {
		q[i].l = JOB_UNKNOWN;
		snprintf(q[i].why, sizeof(q[i].why), "no Slurm configuration "
			 "to ask slurmctld with (set SLURM_CONF)");
	}
	if (!n || !init_slurm())
		return 0;
	contain = &slurm_conf && (slurm_conf.prolog_flags & PROLOG_FLAG_CONTAIN);
	for (i = 0; i < n; i++)
		undecided += !decide_here(&q[i], contain);
	if (!undecided)
		return 0;
	ask_slurmctld(q, n);
	return 1;
}
