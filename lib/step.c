/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Policy: what a job step gets on a node, and how each of its tasks
 * reaches it.  The plugin gathers Slurm's items and calls these two; the
 * decisions are made here, once: the placement (and with it tmpfs or
 * fsdax), the admission, create or grow, whether the process that forks
 * the tasks joins the job's namespace, and how a task enters.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define TARGET "/dev/shm"

/*
 * Where the job's shm goes.  hwloc is asked only when the request needs
 * it (a policy other than default, or NVRAM): probing costs milliseconds
 * at every job start.  Later steps are placed too, so that a request
 * this node cannot serve fails in every step.
 */
static int
place(const struct jobshm_conf *c, struct jobshm_step *s,
      const struct jobshm_nvram *nv, struct jobshm_topo *t, jobshm_err_t *err)
{
	struct jobshm_mpol m = c->default_mpol;
	struct jobshm_placement *p = &s->place;

	memset(t, 0, sizeof(*t));
	if (s->mpol && jobshm_mpol_parse(s->mpol, &m, err) < 0)
		return -1;
	if (m.kind == JOBSHM_MPOL_DEFAULT && !nv->mode) {
		memset(p, 0, sizeof(*p));
		snprintf(p->mode, sizeof(p->mode), "tmpfs");
		snprintf(p->policy, sizeof(p->policy), "default");
		p->kind = JOBSHM_TMPFS;
		return 0;
	}
	if (jobshm_topo_probe(c->topology_xml, s->cores, t, err) < 0)
		return -1;
	t->fsdax = c->n_nvram_paths;
	return jobshm_place(&m, nv, t, p, err);
}

/* The job's shm on this node before this step: its kind and size. */
static int
current(const struct jobshm_job *job, struct jobshm_step *s,
	jobshm_err_t *err)
{
	uint64_t used;

	s->kind = jobshm_job_kind(job);
	if (s->kind == JOBSHM_NONE)
		return jobshm_job_mounted(job, err) < 0 ? -1 : 0;
	return jobshm_job_usage(job, &s->before, &used, err);
}

/* What was decided and why, for debug = true. */
static void
decision(const struct jobshm_job *job, struct jobshm_step *s)
{
	char a[32], b[32], opts[JOBSHM_TMPFS_OPTS] = "";
	jobshm_err_t ignore;

	if (s->place.kind == JOBSHM_TMPFS)
		jobshm_tmpfs_opts(job, s->bytes, s->place.opts, opts,
				  sizeof(opts), &ignore);
	snprintf(s->decision, sizeof(s->decision), "admitted %s (--shm=%s%s%s, "
		 "shm now %s); placement %s, policy %s%s%.64s; tmpfs options "
		 "'%.160s'", jobshm_size_format(s->bytes, a, sizeof(a)),
		 s->shm ? s->shm : "(default_size)",
		 s->nvram ? ", --nvram-options=" : "", s->nvram ? s->nvram : "",
		 jobshm_size_format(s->before, b, sizeof(b)), s->place.mode,
		 s->place.policy, s->place.nodes[0] ? " on NUMA nodes " : "",
		 s->place.nodes, opts);
}

/* Place, admit, then create or grow the job's shm. */
static int
make(const struct jobshm_job *job, struct jobshm_step *s, jobshm_err_t *err)
{
	struct jobshm_request req = { .shm = s->shm, .job_mem = s->job_mem };
	struct jobshm_topo t;
	uint64_t used;

	if (s->nvram && jobshm_nvram_parse(s->nvram, &req.nvram, err) < 0)
		return -1;
	if (current(job, s, err) < 0 || place(job->conf, s, &req.nvram, &t,
					      err) < 0)
		return -1;
	req.current = s->before;
	req.pmem = s->place.kind == JOBSHM_FSDAX ? 0 : t.nvm_bytes;
	if (jobshm_admit_request(job->conf, &req, &s->bytes, err) < 0)
		return -1;
	decision(job, s);
	if (s->bytes == 0 && s->before == 0)
		return 0;	/* no private shm, none made before */
	if (s->kind == JOBSHM_NONE)	/* the first step here decides */
		s->kind = s->place.kind;
	if ((s->bytes > s->before || !s->before) &&
	    jobshm_job_setup(job, s->kind, s->bytes, s->place.opts, err) < 0)
		return -1;
	return jobshm_job_usage(job, &s->bytes, &used, err);
}

static ino_t
namespace_of(const char *file)
{
	struct stat st;

	return stat(file, &st) == 0 ? st.st_ino : 0;
}

/*
 * The thread that forks the tasks joins the job's namespace (making it
 * if this is the job's first step here), so that every task starts in
 * it and pays nothing.  Where that cannot be done, each task joins by
 * itself: the step goes on, with a note why.
 */
static void
join_before_fork(const struct jobshm_job *job, struct jobshm_step *s)
{
	jobshm_err_t e;

	s->host_ns = open("/proc/thread-self/ns/mnt", O_RDONLY | O_CLOEXEC);
	if (s->host_ns < 0)
		return;
	if (jobshm_mntns_join(job, TARGET, &e) == 0)
		s->job_ns = namespace_of("/proc/thread-self/ns/mnt");
	else
		snprintf(s->note, sizeof(s->note), "%.400s; each task enters a "
			 "namespace of its own", e.msg);
}

int
jobshm_step_setup(const struct jobshm_job *job, struct jobshm_step *s,
		  jobshm_err_t *err)
{
	s->kind = JOBSHM_NONE;
	s->bytes = s->before = 0;
	s->decision[0] = s->note[0] = '\0';
	s->host_ns = -1;
	s->job_ns = 0;
	if (make(job, s, err) < 0) {
		s->kind = JOBSHM_NONE;
		s->bytes = 0;
		return -1;
	}
	if (s->kind != JOBSHM_NONE && s->before_fork &&
	    job->conf->stepd_namespace && !s->container)
		join_before_fork(job, s);
	if (s->kind != JOBSHM_NONE) {
		size_t n = strlen(s->decision);

		snprintf(s->decision + n, sizeof(s->decision) - n, "; %s",
			 s->job_ns ? "tasks forked in the job's namespace" :
			 s->container ? "a job container: each task clones "
			 "the job's mount" : "each task joins by itself");
	}
	return 0;
}

const char *
jobshm_step_env(const struct jobshm_job *job, const struct jobshm_step *s,
		size_t i, char *buf, size_t len)
{
	static const char *names[] = { "JOBSHM_DIR", "JOBSHM_SIZE",
		"JOBSHM_PREFIX", "JOBSHM_MODE", "JOBSHM_MPOL",
		"JOBSHM_NUMA_NODES" };

	if (s->kind == JOBSHM_NONE || i >= sizeof(names) / sizeof(names[0]))
		return NULL;
	switch (i) {
	case 0: snprintf(buf, len, "%s", TARGET); break;
	case 1: snprintf(buf, len, "%" PRIu64, s->bytes); break;
	case 2: snprintf(buf, len, "jobshm.%" PRIu32 ".", job->jobid); break;
	case 3: snprintf(buf, len, "%s", s->place.mode); break;
	case 4: snprintf(buf, len, "%s", s->place.policy); break;
	default: snprintf(buf, len, "%s", s->place.nodes);
	}
	return names[i];
}

/*
 * The namespace where the job's mount is, open, when a job container has
 * moved this task out of the namespace it was forked in; -1 otherwise.
 */
static int
moved_from(const struct jobshm_step *s)
{
	char parent[64];
	ino_t here = namespace_of("/proc/self/ns/mnt");

	if (s->job_ns)	/* forked in the job's namespace */
		return here == s->job_ns ? -1 : dup(s->host_ns);
	snprintf(parent, sizeof(parent), "/proc/%d/ns/mnt", (int)getppid());
	return here == namespace_of(parent) ? -1 :
	       open(parent, O_RDONLY | O_CLOEXEC);
}

int
jobshm_task_enter(const struct jobshm_job *job, const struct jobshm_step *s,
		  jobshm_err_t *err)
{
	int host, rc;

	if (s->kind == JOBSHM_NONE)
		return 0;
	if ((host = moved_from(s)) >= 0) {	/* beside a job container */
		rc = jobshm_mntns_enter_from(job, host, TARGET, err);
		close(host);
		return rc;
	}
	if (s->job_ns)	/* forked inside the job's namespace */
		return 0;
	rc = jobshm_mntns_join(job, TARGET, err);
	return rc > 0 ? jobshm_mntns_enter(job, TARGET, err) : rc;
}
