/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What a job used of its shm on a node.  The slurmstepd of every step
 * that has the job's shm samples it (fstatvfs on a descriptor of the
 * job's mount, held open: no path walk, whatever namespace the thread is
 * in) in a thread, every usage_interval seconds, and at each task's
 * exit; the job epilog takes the last sample.  A sample is written only
 * when it changes the record -- a new peak for this step, a change of
 * fullness or of size -- to <base>/<jobid>.usage (root's, 0600), under
 * its lock, so that every step on the node adds to one record.  At the
 * epilog the record becomes one JSON line in usage_log (rotated by
 * size) and its file is removed.
 *
 * A shm can fill and empty again between two samples a second apart: a
 * PyTorch DataLoader worker dies of SIGBUS in a full shm and its segment
 * goes with it within milliseconds.  What precedes every such fill is a
 * file made or grown in the shm's root (shm_open, then ftruncate: torch,
 * NCCL, Open MPI's vader), so the thread also watches that directory
 * with inotify (through the held descriptor: the watch is on the inode,
 * and sees what any namespace does there) and, after an event, samples
 * every FAST_NS until WINDOW_NS after the last one.  While the window is
 * open, writes raise no events (IN_MODIFY is off: a write stream would
 * queue one per write); fast samples are paid for from a budget of BURST
 * that refills at REFILL a second, so that a job making files without
 * end makes the thread sample at most REFILL times a second.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define RECORD JOBSHM_USAGE
#define FULL_SLACK (64ULL << 20)

#define FAST_NS 1000000LL       /* between samples after an event: 1 ms  */
#define WINDOW_NS 250000000LL   /* ... until 250 ms after the last one   */
#define BURST 2000.0            /* fast samples in hand at most (2 s)     */
#define REFILL 200.0            /* fast samples earned a second           */
#define WATCH (IN_CREATE | IN_MODIFY | IN_MOVED_TO)
#define WATCH_OPEN (IN_CREATE | IN_MOVED_TO)	/* while a window is open */
/* inotify instances are root's, and root's daemons need theirs: the
 * steps of a node watch at most a quarter of fs.inotify.max_user_instances
 * at once (a slot each: <base>/.jobshm-watch.<i>, flocked), and at most
 * WATCH_SLOTS; the others sample every usage_interval s only */
#define WATCH_SLOTS 32

struct jobshm_sampler {
	pthread_t thread;
	pthread_mutex_t lock;
	int running;
	int dir, rec;           /* the job's mount, its record              */
	int wake, ino;          /* eventfd: stop; inotify on dir (-1: none) */
	int slot;               /* the watch's slot, flocked (-1: none)     */
	int ino_err;            /* why there is none (errno), 0: not tried  */
	char at[32];            /* /proc/self/fd/<dir>, for the watch       */
	unsigned long samples, fast, events;	/* what the thread did     */
	uint64_t cap;           /* fsdax: the job's share                   */
	unsigned interval;      /* seconds; 0: no thread                    */
	uint64_t peak;          /* this step's peak, as added to the record */
	int full_now;           /* its fullness, as added                   */
	unsigned full;          /* times this step saw the shm become full  */
	struct jobshm_usage u;  /* the record as last added, used: now      */
	const struct jobshm_conf *conf;   /* metrics_dir, "": none           */
	struct jobshm_usage who;          /* the job's ids, for the metrics */
};

int
jobshm_usage_full(uint64_t size, uint64_t used)
{
	uint64_t slack = size / 100 < FULL_SLACK ? size / 100 : FULL_SLACK;

	return size && used + slack >= size;
}

/* The job's record in its open base directory; -1 (errno ENOENT):
 * none, or no base (base -1). */
static int
record_open(int base, const struct jobshm_job *job, int create,
	    jobshm_err_t *err)
{
	char name[32];
	int fd;

	if (base < 0)
		return -1;
	snprintf(name, sizeof(name), "%" PRIu32 RECORD, job->jobid);
	fd = openat(base, name, O_RDWR | O_NOFOLLOW | O_CLOEXEC |
		    (create ? O_CREAT : 0), 0600);
	if (fd < 0)
		return jobshm_fail(err, "open %s%s: %m", job->path, RECORD);
	return fd;
}

/* the numbers, the job's name ("-": not known), then what the last step
 * that left files left */
#define RECORD_FMT "%" PRIu64 " %" PRIu64 " %" PRIu64 " %u %d %" PRId64 \
		   " %" PRId64 " %s %" PRIu32 " %" PRIu32 " %" PRIu64 "\n"
#define RECORD_SCN "%" SCNu64 " %" SCNu64 " %" SCNu64 " %u %d %" SCNd64 \
		   " %" SCNd64 " %63s %" SCNu32 " %" SCNu32 " %" SCNu64

static void
record_read(int fd, struct jobshm_usage *u)
{
	char buf[512];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	buf[n > 0 ? n : 0] = '\0';
	u->name[0] = '\0';
	u->left_step = u->left_files = 0;
	u->left_bytes = 0;
	n = sscanf(buf, RECORD_SCN, &u->size, &u->peak, &u->used, &u->full,
		   &u->full_now, &u->start, &u->end, u->name, &u->left_step,
		   &u->left_files, &u->left_bytes);
	if (n < 11)
		u->left_step = u->left_files = 0, u->left_bytes = 0;
	if (n < 7)
		u->size = u->peak = u->used = u->full = u->full_now =
			u->start = u->end = 0;
	if (n < 8 || !strcmp(u->name, "-"))
		u->name[0] = '\0';
}

static int
record_write(int fd, const struct jobshm_usage *u)
{
	char buf[512];
	int n = snprintf(buf, sizeof(buf), RECORD_FMT, u->size, u->peak,
			 u->used, u->full, u->full_now, u->start, u->end,
			 u->name[0] ? u->name : "-", u->left_step, u->left_files,
			 u->left_bytes);

	return pwrite(fd, buf, (size_t)n, 0) != n || ftruncate(fd, n) < 0 ?
	       -1 : 0;
}

/* Add a sample to the record, under its lock; *u: the record after. */
static int
record_add(int fd, uint64_t size, uint64_t used, struct jobshm_usage *u)
{
	int full = jobshm_usage_full(size, used), rc;

	if (flock(fd, LOCK_EX) < 0)
		return -1;
	record_read(fd, u);
	u->end = time(NULL);
	u->start = u->start ? u->start : u->end;
	u->size = size > u->size ? size : u->size;
	u->peak = used > u->peak ? used : u->peak;
	u->used = used;
	u->full += full && !u->full_now;
	u->full_now = full;
	rc = record_write(fd, u);
	flock(fd, LOCK_UN);
	return rc;
}

/* The job's name into the record (as a token: what is not a letter,
 * digit or one of "._+-" becomes '_'); a name already there is kept. */
int
jobshm_sampler_name(jobshm_sampler_t *s, const char *name)
{
	struct jobshm_usage u;
	size_t i;
	int rc = 0;

	if (!s || s->rec < 0 || !name || !name[0])
		return -1;
	pthread_mutex_lock(&s->lock);	/* the sampler's thread flocks too */
	if (flock(s->rec, LOCK_EX) < 0) {
		pthread_mutex_unlock(&s->lock);
		return -1;
	}
	record_read(s->rec, &u);
	if (!u.name[0] && u.start) {
		for (i = 0; name[i] && i < sizeof(u.name) - 1; i++)
			u.name[i] = isalnum((unsigned char)name[i]) ||
				    strchr("._+-", name[i]) ? name[i] : '_';
		u.name[i] = '\0';
		rc = record_write(s->rec, &u);
	}
	flock(s->rec, LOCK_UN);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int
jobshm_sampler_leftovers(jobshm_sampler_t *s, uint32_t stepid,
			 uint64_t bytes, uint32_t files)
{
	struct jobshm_usage u;
	int rc;

	if (!s || s->rec < 0)
		return -1;
	pthread_mutex_lock(&s->lock);
	rc = flock(s->rec, LOCK_EX);
	if (rc == 0) {
		record_read(s->rec, &u);
		u.left_step = stepid;
		u.left_files = files;
		u.left_bytes = bytes;
		rc = record_write(s->rec, &u);
		flock(s->rec, LOCK_UN);
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* One sample, added to the record when it changes it (s->lock held). */
static int
sample(jobshm_sampler_t *s)
{
	uint64_t size, used;
	int full;

	if (jobshm_fd_usage(s->dir, s->cap, &size, &used) < 0)
		return -1;
	full = jobshm_usage_full(size, used);
	s->full += full && !s->full_now;
	if (used <= s->peak && full == s->full_now && size <= s->u.size) {
		s->u.used = used;
		return 0;
	}
	s->peak = used > s->peak ? used : s->peak;
	s->full_now = full;
	return record_add(s->rec, size, used, &s->u);
}

static int64_t
now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* Read every queued event; 1 if there was one. */
static int
drain(jobshm_sampler_t *s)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	int any = 0;

	while (read(s->ino, buf, sizeof(buf)) > 0)
		any = 1;
	return any;
}

/* Without a watch, its slot is another step's to take. */
static void
unwatched(jobshm_sampler_t *s)
{
	if (s->ino < 0 && s->slot >= 0) {
		close(s->slot);
		s->slot = -1;
	}
}

/* Watch for mask on the job's directory (the same watch, its mask
 * replaced); -1 if it cannot be. */
static int
watch(jobshm_sampler_t *s, uint32_t mask)
{
	return inotify_add_watch(s->ino, s->at, mask | IN_ONLYDIR) < 0 ? -1 : 0;
}

/*
 * The job's metrics file, from the record as last sampled, and the
 * node's totals where they are older than an interval.  In the sampler's
 * thread (made before slurmstepd's own thread joins the job's namespace:
 * it stays in the host's, where base_path is), never on the launch path.
 */
static void
metrics(jobshm_sampler_t *s, const char *user)
{
	struct jobshm_usage u, r;

	pthread_mutex_lock(&s->lock);	/* one flock user of s->rec */
	u = s->u;
	/* another step's end may have said what it left since */
	if (flock(s->rec, LOCK_SH) == 0) {
		record_read(s->rec, &r);
		flock(s->rec, LOCK_UN);
		u.left_step = r.left_step;
		u.left_files = r.left_files;
		u.left_bytes = r.left_bytes;
	}
	pthread_mutex_unlock(&s->lock);
	u.jobid = s->who.jobid;
	snprintf(u.node, sizeof(u.node), "%s", s->who.node);
	snprintf(u.kind, sizeof(u.kind), "%s", s->who.kind);
	jobshm_metrics_job(s->conf, &u, user);
	if (jobshm_metrics_node_stale(s->conf, s->interval))
		jobshm_metrics_node(s->conf);
}

static void
user_name(uid_t uid, char *buf, size_t len)
{
	struct passwd pw, *p = NULL;
	char pwbuf[1024];

	getpwuid_r(uid, &pw, pwbuf, sizeof(pwbuf), &p);
	if (p)
		snprintf(buf, len, "%s", p->pw_name);
	else
		snprintf(buf, len, "%u", (unsigned)uid);
}

static void *
sampler_run(void *arg)
{
	jobshm_sampler_t *s = arg;
	int64_t slow = (int64_t)s->interval * 1000000000LL, now = now_ns(),
		next = now + slow, until = 0, last = now, d, written = now;
	double tokens = BURST;
	struct timespec ts;
	char user[64] = "";
	int want = s->conf && s->conf->metrics_dir[0];

	if (want) {
		user_name(s->who.uid, user, sizeof(user));
		metrics(s, user);
	}
	for (;;) {
		/* outside a window, an event opens one; inside, events are
		 * read at each sample */
		struct pollfd p[2] = { { s->wake, POLLIN, 0 },
				       { s->ino, POLLIN, 0 } };
		int n = s->ino >= 0 && now >= until ? 2 : 1;

		d = next > now ? next - now : 0;
		ts.tv_sec = d / 1000000000LL;
		ts.tv_nsec = d % 1000000000LL;
		if (ppoll(p, (nfds_t)n, &ts, NULL) < 0 && errno != EINTR)
			break;
		if (p[0].revents)
			break;
		now = now_ns();
		if (n == 2 && p[1].revents && drain(s)) {
			watch(s, WATCH_OPEN);	/* writes raise none while open */
			__atomic_add_fetch(&s->events, 1, __ATOMIC_RELAXED);
			until = now + WINDOW_NS;
			next = now;
		}
		if (now < next)
			continue;
		if (now < until && drain(s)) {	/* made or moved: still open */
			__atomic_add_fetch(&s->events, 1, __ATOMIC_RELAXED);
			until = now + WINDOW_NS;
		}
		tokens += (double)(now - last) * REFILL / 1e9;
		tokens = tokens > BURST ? BURST : tokens;
		last = now;
		pthread_mutex_lock(&s->lock);
		sample(s);
		s->samples++;
		if (now < until) {	/* fast, as far as the budget goes */
			s->fast++;
			tokens -= 1;
			d = tokens >= 1 ? FAST_NS :
			    (int64_t)((1 - tokens) * 1e9 / REFILL);
			next = now + (d > FAST_NS ? d : FAST_NS);
		} else {
			if (until && watch(s, WATCH) < 0) {	/* closed */
				s->ino_err = errno;
				close(s->ino);
				s->ino = -1;
				unwatched(s);
			}
			until = 0;
			next = now + slow;
		}
		pthread_mutex_unlock(&s->lock);
		if (want && now - written >= slow) {	/* once an interval */
			written = now;
			metrics(s, user);
		}
	}
	return NULL;
}

/* The thread, with every signal blocked: they are the process's. */
static int
sampler_thread(jobshm_sampler_t *s, jobshm_err_t *err)
{
	sigset_t all, old;
	int rc;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&s->thread, NULL, sampler_run, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
		return jobshm_fail_code(err, rc, "cannot start the usage "
					"sampler: %s", strerror(rc));
	s->running = 1;
	return 0;
}

/* How many steps of the node may watch at once. */
static int
watch_slots(void)
{
	FILE *f = fopen("/proc/sys/fs/inotify/max_user_instances", "re");
	int max = 0;

	if (f) {
		if (fscanf(f, "%d", &max) != 1)
			max = 0;
		fclose(f);
	}
	return max / 4 < WATCH_SLOTS ? max / 4 : WATCH_SLOTS;
}

/* A free watch slot of the node in its open base, flocked, open; -1
 * if none is free. */
static int
watch_slot(int base)
{
	char name[32];
	int n = watch_slots(), fd;

	for (int i = 0; i < n; i++) {
		snprintf(name, sizeof(name), ".jobshm-watch.%d", i);
		fd = openat(base, name, O_RDONLY | O_CREAT | O_NOFOLLOW |
			    O_CLOEXEC, 0600);
		if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0)
			return fd;
		if (fd >= 0)
			close(fd);
	}
	return -1;
}

jobshm_sampler_t *
jobshm_sampler_start(const struct jobshm_job *job, unsigned interval,
		     jobshm_err_t *err)
{
	jobshm_sampler_t *s = calloc(1, sizeof(*s));
	int base;

	if (!s) {
		jobshm_fail_code(err, ENOMEM, "out of memory");
		return NULL;
	}
	s->dir = s->rec = s->wake = s->ino = s->slot = -1;
	s->interval = interval;
	s->conf = job->conf;
	s->who.jobid = job->jobid;
	s->who.uid = job->uid;
	snprintf(s->who.node, sizeof(s->who.node), "%s", job->node);
	pthread_mutex_init(&s->lock, NULL);
	jobshm_fsdax_reserved(job, &s->cap);
	snprintf(s->who.kind, sizeof(s->who.kind), "%s",	/* no syscall */
		 jobshm_kind_name(s->cap ? JOBSHM_FSDAX : JOBSHM_TMPFS));
	if ((base = jobshm_open_base_nolock(job, err)) < 0 ||
	    (s->dir = jobshm_dir_fd(base, jobshm_job_leaf(job), s->at,
				    sizeof(s->at), err)) < 0 ||
	    (s->rec = record_open(base, job, 1, err)) < 0 ||
	    (sample(s) < 0 && jobshm_fail(err, "usage of %s: %m", job->path))) {
		if (base >= 0)
			close(base);
		jobshm_sampler_stop(s);
		return NULL;
	}
	/* without a slot or inotify: the interval alone */
	s->slot = interval ? watch_slot(base) : -1;
	close(base);
	if (!interval)
		return s;
	s->ino = s->slot < 0 ? (errno = EUSERS, -1) :
		 inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (s->ino >= 0 && watch(s, WATCH) < 0) {
		s->ino_err = errno;
		close(s->ino);
		s->ino = -1;
	} else if (s->ino < 0)
		s->ino_err = errno;
	unwatched(s);
	if ((s->wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0 ?
	    jobshm_fail(err, "cannot start the usage sampler: eventfd: %m") :
	    sampler_thread(s, err)) {
		jobshm_sampler_stop(s);
		return NULL;
	}
	return s;
}

int
jobshm_sampler_dir(jobshm_sampler_t *s)
{
	return s ? s->dir : -1;
}

int
jobshm_sampler_now(jobshm_sampler_t *s, struct jobshm_usage *u,
		   unsigned *full_in_step)
{
	int rc;

	pthread_mutex_lock(&s->lock);
	rc = sample(s);
	*u = s->u;
	if (full_in_step)
		*full_in_step = s->full;
	pthread_mutex_unlock(&s->lock);
	return rc;
}

void
jobshm_sampler_counts(jobshm_sampler_t *s, unsigned long *samples,
		      unsigned long *fast, unsigned long *events, int *watching)
{
	pthread_mutex_lock(&s->lock);
	*samples = s->samples;
	*fast = s->fast;
	*events = __atomic_load_n(&s->events, __ATOMIC_RELAXED);
	*watching = s->ino >= 0 ? 1 : -s->ino_err;
	pthread_mutex_unlock(&s->lock);
}

static void
sampler_stop(jobshm_sampler_t *s, int exiting)
{
	if (!s)
		return;
	if (s->running) {
		uint64_t one = 1;

		if (write(s->wake, &one, sizeof(one)) != sizeof(one))
			pthread_cancel(s->thread);	/* cannot be */
		pthread_join(s->thread, NULL);
	}
	if (s->dir >= 0 && s->rec >= 0)
		sample(s);	/* the step's last word */
	if (s->dir >= 0)
		close(s->dir);
	if (s->rec >= 0)
		close(s->rec);
	if (s->wake >= 0)
		close(s->wake);
	if (s->ino >= 0 && !exiting)
		close(s->ino);
	if (s->slot >= 0 && !exiting)
		close(s->slot);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

void
jobshm_sampler_stop(jobshm_sampler_t *s)
{
	sampler_stop(s, 0);
}

/*
 * In a process that ends now (slurmstepd at the step's end): the inotify
 * instance and its watch slot are left for the exit to close.  Closing an
 * instance that has watched waits for the kernel to free the watch (a
 * grace period: 6 to 16 ms measured here), and slurmd, which polls
 * slurmstepd for the step's end at ~20, 50 and 100 ms, then waited one
 * poll longer for each --shm job: 50 ms at a single job's end.
 */
void
jobshm_sampler_stop_exiting(jobshm_sampler_t *s)
{
	sampler_stop(s, 1);
}

/* Who and where, for a record of job. */
static void
usage_of(const struct jobshm_job *job, struct jobshm_usage *u)
{
	struct stat st;

	u->jobid = job->jobid;
	u->uid = job->uid;
	if (!u->uid && stat(job->path, &st) == 0)	/* the epilog's job */
		u->uid = st.st_uid;
	snprintf(u->node, sizeof(u->node), "%s", job->node);
	snprintf(u->kind, sizeof(u->kind), "%s",
		 jobshm_kind_name(jobshm_job_kind(job)));
}

int
jobshm_usage_read(const struct jobshm_job *job, struct jobshm_usage *u,
		  jobshm_err_t *err)
{
	int base = jobshm_open_base_nolock(job, err),
	    fd = record_open(base, job, 0, err);

	if (base >= 0)
		close(base);
	memset(u, 0, sizeof(*u));
	if (fd < 0)
		return -1;
	if (flock(fd, LOCK_SH) == 0)
		record_read(fd, u);
	close(fd);
	usage_of(job, u);
	return 0;
}

const char *
jobshm_usage_summary(const struct jobshm_usage *u, char *buf, size_t len)
{
	char a[32], b[32];

	snprintf(buf, len, "%s: peak %s of %s (%u%%), full %u time%s",
		 u->node[0] ? u->node : "this node",
		 jobshm_size_format(u->peak, a, sizeof(a)),
		 jobshm_size_format(u->size, b, sizeof(b)),
		 u->size ? (unsigned)((double)u->peak * 100 / (double)u->size) : 0, u->full,
		 u->full == 1 ? "" : "s");
	return buf;
}

/*
 * At the job's epilog: the last sample (if the shm is still mounted),
 * the record logged, its file removed.  1: no record (no shm here).
 */
int
jobshm_usage_end(const struct jobshm_job *job, struct jobshm_usage *u,
		 jobshm_err_t *err)
{
	uint64_t size, used;
	char line[1024], name[32];
	jobshm_err_t e;
	int base = jobshm_open_base_nolock(job, &e),
	    fd = record_open(base, job, 0, &e), rc = 0;

	memset(u, 0, sizeof(*u));
	if (fd < 0) {
		if (base >= 0)
			close(base);
		return 1;
	}
	if (jobshm_job_usage(job, &size, &used, &e) == 0)
		record_add(fd, size, used, u);
	else
		record_read(fd, u);
	close(fd);
	usage_of(job, u);
	if (job->conf->usage_log[0])
		rc = jobshm_usage_log_append(job->conf, jobshm_usage_json(u,
					     line, sizeof(line)), err);
	snprintf(name, sizeof(name), "%" PRIu32 RECORD, job->jobid);
	unlinkat(base, name, 0);
	close(base);
	return rc;
}
