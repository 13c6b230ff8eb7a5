/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Policy: what a job step gets on a node, and how each of its tasks
 * reaches it.  The plugin gathers Slurm's items and calls these two; the
 * decisions are made here, once: the placement (and with it tmpfs or
 * fsdax), the admission, create or grow, whether the process that forks
 * the tasks joins the job's namespace, and how a task enters.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
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

/*
 * In the process that forks the tasks: sample the job's shm while the
 * step runs (a step goes on without, with a note why).  The batch step,
 * or else the step that made the shm, says at its end what was used.
 */
static void
start_sampling(const struct jobshm_job *job, struct jobshm_step *s)
{
	jobshm_err_t e;
	unsigned long n, f, ev;
	int w;

	s->report = s->batch || !s->before;
	s->sampler = jobshm_sampler_start(job, job->conf->usage_interval, &e);
	if (!s->sampler) {
		snprintf(s->note, sizeof(s->note), "no usage sampling: %.400s",
			 e.msg);
		return;
	}
	jobshm_sampler_name(s->sampler, s->name);
	jobshm_sampler_counts(s->sampler, &n, &f, &ev, &w);
	if (w < 0)	/* EUSERS: no watch slot free; EMFILE: no instance */
		snprintf(s->note, sizeof(s->note), "usage sampled every %u s "
			 "only (a fill shorter than that may go unseen): no "
			 "inotify watch of the shm: %s",
			 job->conf->usage_interval, w == -EUSERS ?
			 "as many steps as the node allows (a quarter of "
			 "fs.inotify.max_user_instances, at most 32) watch "
			 "already" : strerror(-w));
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
	s->sampler = NULL;
	s->exited = 0;
	/* the kernel's file times are of its coarse clock: no file made
	 * after this is dated before it */
	clock_gettime(CLOCK_REALTIME_COARSE, &s->started);
	if (make(job, s, err) < 0) {
		s->kind = JOBSHM_NONE;
		s->bytes = 0;
		return -1;
	}
	if (s->kind != JOBSHM_NONE && s->before_fork)
		start_sampling(job, s);
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

/* --shm to try after a full shm of size: twice it, in whole G (or M),
 * within max_size; "" when it is at the limit already. */
static void
suggest(const struct jobshm_job *job, const struct jobshm_step *s,
	uint64_t size, char *buf, size_t len)
{
	uint64_t max = jobshm_conf_max_bytes(job->conf), b = 2 * size;
	unsigned shift = b >= (1ULL << 30) ? 30 : 20;
	char m[32];
	int n;

	b = (b + (1ULL << shift) - 1) >> shift << shift;
	b = b > max ? max : b;
	if (b <= size) {
		snprintf(buf, len, "; it is at this node's limit (max_size = "
			 "%s)", jobshm_size_format(max, m, sizeof(m)));
		return;
	}
	n = snprintf(buf, len, "; try --shm=%s", jobshm_size_format(b, m,
								    sizeof(m)));
	if (job->conf->count_against_job_mem && s->job_mem && b > s->job_mem)
		snprintf(buf + n, len - (size_t)n, " with --mem=%s or more",
			 m);
}

/* How a task ended, if it may have died of a full shm; NULL if not. */
static const char *
died(int status, char *buf, size_t len)
{
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGBUS)
		return "died of SIGBUS";
	if (!WIFEXITED(status) || !WEXITSTATUS(status))
		return NULL;
	snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
	return buf;
}

int
jobshm_task_exit(const struct jobshm_job *job, struct jobshm_step *s,
		 uint32_t task, int status, char *msg, size_t len)
{
	struct jobshm_usage u;
	unsigned full;
	char how[32], a[32], b[32], hint[128];
	const char *h;

	s->exited++;
	if (!s->sampler || !(h = died(status, how, sizeof(how))) ||
	    jobshm_sampler_now(s->sampler, &u, &full) < 0 ||
	    (!jobshm_usage_full(u.size, u.used) && !full))
		return 0;
	suggest(job, s, u.size, hint, sizeof(hint));
	if (jobshm_usage_full(u.size, u.used))
		snprintf(msg, len, "task %" PRIu32 " on %s %s while /dev/shm "
			 "was full (%s of %s)%s", task, job->node, h,
			 jobshm_size_format(u.used, a, sizeof(a)),
			 jobshm_size_format(u.size, b, sizeof(b)), hint);
	else
		snprintf(msg, len, "task %" PRIu32 " on %s %s after /dev/shm "
			 "became full during the step (peak %s of %s)%s", task,
			 job->node, h, jobshm_size_format(u.peak, a, sizeof(a)),
			 jobshm_size_format(u.size, b, sizeof(b)), hint);
	return 1;
}

int
jobshm_step_report(const struct jobshm_job *job,
		   const struct jobshm_step *s, char *buf, size_t len)
{
	struct jobshm_usage u;

	if (!s->sampler || !s->report || s->exited != s->ntasks ||
	    jobshm_sampler_now(s->sampler, &u, NULL) < 0)
		return 0;
	snprintf(u.node, sizeof(u.node), "%s", job->node);
	jobshm_usage_summary(&u, buf, len);
	return 1;
}

int
jobshm_step_leftovers(const struct jobshm_job *job,
		      const struct jobshm_step *s, char *buf, size_t len)
{
	char pre[160], a[32], b[32];
	struct jobshm_usage u;
	unsigned long files;
	uint64_t bytes;

	/* slurmstepd is in the job's namespace by now: the sampler's
	 * descriptor of the job's mount, not its path, reaches it */
	/* nor for the step that made the shm where no batch step did (a
	 * plain srun: its end is the job's, its files go with it) */
	if (!s->sampler || s->batch || s->report || s->exited != s->ntasks ||
	    s->kind != JOBSHM_TMPFS ||
	    jobshm_leftovers(jobshm_sampler_dir(s->sampler), &s->started,
			     &bytes, &files, pre, sizeof(pre)) < 0 || !files ||
	    jobshm_sampler_now(s->sampler, &u, NULL) < 0)
		return 0;
	snprintf(buf, len, "step %" PRIu32 " on %s left %s in %lu file%s "
		 "(%s); they count against --shm=%s until removed or the job "
		 "ends", s->stepid, job->node,
		 jobshm_size_format(bytes, a, sizeof(a)), files,
		 files == 1 ? "" : "s", pre, jobshm_size_format(u.size, b,
								  sizeof(b)));
	jobshm_sampler_leftovers(s->sampler, s->stepid, bytes,
				 files > UINT32_MAX ? UINT32_MAX :
				 (uint32_t)files);
	return 1;
}

void
jobshm_step_end(struct jobshm_step *s)
{
	jobshm_sampler_stop_exiting(s->sampler);
	s->sampler = NULL;
}
