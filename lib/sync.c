/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Node-wide locks and barriers between the processes of a job on a node,
 * whatever started them (srun tasks, pool workers): small files of the
 * user's in the job's shm directory.  sync_file() alone names them, one
 * kind per user:
 *
 *   .jobshm-lock.<prefix><name>      jobshm_lock_acquire (jobshm.Lock)
 *   .jobshm-barrier.<prefix><name>   jobshm_barrier_wait (jobshm.Barrier)
 *   .jobshm-rrolock.<prefix><name>   jobshm_rro_lock: one load per name
 *   .jobshm-rrocache.<prefix>        jobshm_rro_lock(NULL): the rro index
 *
 * so a user's Lock("x") and the rro cache's lock of "x" never share a
 * file (holding one and taking the other cannot block on itself), and
 * removing the rro lock of a deleted name leaves the user's alone.
 *
 * A lock is an flock(2) on its file, so the kernel releases it when its
 * holder dies; the holder writes its pid into the file and clears it on
 * release, so the next owner learns that the last one died holding it.
 * A lock file is removed only by its holder (jobshm_rro_lock_remove); an
 * acquirer that then finds its file no longer named so starts again.
 *
 * A barrier is a record ("generation arrived") in its file, changed under
 * the file's flock.  The last of `parties` to arrive starts a new
 * generation; the others poll for it, and give up with ETIMEDOUT when it
 * does not come (a participant died or never came), instead of hanging.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

struct jobshm_lock {
	int fd;
};

/* The file of a lock or barrier: .jobshm-<kind>.<prefix><name>. */
static int
sync_name(jobshm_ns_t *ns, const char *kind, const char *name, char *file,
	  size_t len, jobshm_err_t *err)
{
	if (name && jobshm_name_check(name, err) < 0)
		return -1;
	snprintf(file, len, ".jobshm-%s.%s%s", kind, jobshm_ns_prefix(ns),
		 name ? name : "");
	return 0;
}

/* The sync file of name, the user's own, opened read-write. */
static int
sync_file(jobshm_ns_t *ns, const char *kind, const char *name, int create,
	  jobshm_err_t *err)
{
	char file[JOBSHM_NAME_MAX + 96];
	const char *what = name ? name : "index";
	struct stat st;
	int fd;

	if (sync_name(ns, kind, name, file, sizeof(file), err) < 0)
		return -1;
	fd = openat(jobshm_ns_dirfd(ns), file, O_RDWR | O_NOFOLLOW |
		    O_CLOEXEC | (create ? O_CREAT : 0), 0600);
	if (fd < 0)
		return jobshm_fail(err, "%s '%s' in %s: %m", kind, what,
				   jobshm_ns_dir(ns));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_uid != geteuid()) {
		close(fd);
		return jobshm_fail_code(err, EPERM, "%s '%s' in %s is not a "
					"file of yours", kind, what,
					jobshm_ns_dir(ns));
	}
	return fd;
}

/* 1 if fd is still the file named file in the namespace. */
static int
still_named(jobshm_ns_t *ns, int fd, const char *file)
{
	struct stat a, b;

	return fstat(fd, &a) == 0 && fstatat(jobshm_ns_dirfd(ns), file, &b,
					     AT_SYMLINK_NOFOLLOW) == 0 &&
	       a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* flock the sync file of name; again if it was removed meanwhile. */
static int
take(jobshm_ns_t *ns, const char *kind, const char *name, jobshm_err_t *err)
{
	char file[JOBSHM_NAME_MAX + 96];
	int fd;

	if (sync_name(ns, kind, name, file, sizeof(file), err) < 0)
		return -1;
	for (;;) {
		if ((fd = sync_file(ns, kind, name, 1, err)) < 0)
			return -1;
		while (flock(fd, LOCK_EX) < 0)
			if (errno != EINTR) {
				jobshm_fail(err, "%s '%s': %m", kind,
					    name ? name : "index");
				close(fd);
				return -1;
			}
		if (still_named(ns, fd, file))
			return fd;
		close(fd);	/* its holder removed it: take the new one */
	}
}

static jobshm_lock_t *
lock_new(int fd, const char *name, jobshm_err_t *err)
{
	jobshm_lock_t *l = malloc(sizeof(*l));

	if (!l) {
		jobshm_fail(err, "lock '%s': %m", name ? name : "index");
		close(fd);	/* releases the flock */
		return NULL;
	}
	l->fd = fd;
	return l;
}

jobshm_lock_t *
jobshm_lock_acquire(jobshm_ns_t *ns, const char *name, int *recovered,
		    jobshm_err_t *err)
{
	char buf[32] = "";
	ssize_t n;
	int fd = take(ns, "lock", name, err);

	if (fd < 0)
		return NULL;
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (recovered)	/* a pid left in the file: its holder died */
		*recovered = n > 0 && buf[strspn(buf, " ")] >= '1' &&
			     buf[strspn(buf, " ")] <= '9';
	/*
	 * The holder's pid, in place, fixed width: once the file has its
	 * page, a full shm never makes this write fail (where it does, the
	 * lock still works; only a later "recovered" is lost).
	 */
	n = snprintf(buf, sizeof(buf), "%15ld\n", (long)getpid());
	if (pwrite(fd, buf, (size_t)n, 0) != n)
		(void)0;
	return lock_new(fd, name, err);
}

jobshm_lock_t *
jobshm_rro_lock(jobshm_ns_t *ns, const char *name, jobshm_err_t *err)
{
	int fd = take(ns, name ? "rrolock" : "rrocache", name, err);

	return fd < 0 ? NULL : lock_new(fd, name, err);
}

int
jobshm_rro_lock_remove(jobshm_ns_t *ns, const char *name, jobshm_err_t *err)
{
	char file[JOBSHM_NAME_MAX + 96];
	jobshm_err_t e;
	int rc = 0, fd;

	if (!name)
		return jobshm_fail(err, "the rro index lock is never removed");
	if (sync_name(ns, "rrolock", name, file, sizeof(file), err) < 0)
		return -1;
	if ((fd = sync_file(ns, "rrolock", name, 0, &e)) < 0) {
		if (e.code == ENOENT)
			return 0;
		return jobshm_fail_code(err, e.code, "%s", e.msg);
	}
	/* held (a load in progress): it stays, for that loader's waiters */
	if (flock(fd, LOCK_EX | LOCK_NB) == 0 && still_named(ns, fd, file) &&
	    unlinkat(jobshm_ns_dirfd(ns), file, 0) < 0 && errno != ENOENT)
		rc = jobshm_fail(err, "remove rro lock '%s': %m", name);
	close(fd);
	return rc;
}

void
jobshm_lock_release(jobshm_lock_t *l)
{
	if (!l)
		return;
	/* overwritten, not truncated: the file keeps its page */
	if (pwrite(l->fd, "              -\n", 16, 0) != 16)
		(void)0;	/* the next owner is told, wrongly: harmless */
	close(l->fd);	/* and the flock with it */
	free(l);
}

/* Arrive at a barrier; the generation to wait for, or -1. */
static int
arrive(int fd, unsigned parties, uint64_t *gen, int *last)
{
	char buf[64] = "";
	uint64_t g = 0, in = 0;
	ssize_t n;
	int rc = -1;

	if (flock(fd, LOCK_EX) < 0)
		return -1;
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n > 0 && sscanf(buf, "%" SCNu64 " %" SCNu64, &g, &in) != 2)
		g = in = 0;
	*last = ++in >= parties;
	*gen = g;
	if (*last) {
		g++;
		in = 0;
	}
	n = snprintf(buf, sizeof(buf), "%" PRIu64 " %" PRIu64 "\n", g, in);
	if (pwrite(fd, buf, (size_t)n, 0) == n && ftruncate(fd, n) == 0)
		rc = 0;
	flock(fd, LOCK_UN);
	return rc;
}

/* A waiter that gives up takes its arrival back, if still counted. */
static void
withdraw(int fd, uint64_t gen)
{
	char buf[64] = "";
	uint64_t g, in;
	int n;

	if (flock(fd, LOCK_EX) < 0)
		return;
	if (pread(fd, buf, sizeof(buf) - 1, 0) > 0 &&
	    sscanf(buf, "%" SCNu64 " %" SCNu64, &g, &in) == 2 &&
	    g == gen && in > 0) {
		n = snprintf(buf, sizeof(buf), "%" PRIu64 " %" PRIu64 "\n", g,
			     in - 1);
		if (pwrite(fd, buf, (size_t)n, 0) == n)
			(void)ftruncate(fd, n);
	}
	flock(fd, LOCK_UN);
}

/* The barrier's generation now (read without the lock: one pwrite). */
static uint64_t
generation(int fd)
{
	char buf[64] = "";
	uint64_t g = 0;

	if (pread(fd, buf, sizeof(buf) - 1, 0) > 0)
		sscanf(buf, "%" SCNu64, &g);
	return g;
}

static double
now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int
jobshm_barrier_wait(jobshm_ns_t *ns, const char *name, unsigned parties,
		    double timeout, jobshm_err_t *err)
{
	struct timespec pause = { 0, 200000 };	/* 0.2 ms, doubling to 20 */
	double end = now() + timeout;
	uint64_t gen = 0;
	int fd, last = 0, rc = 0;

	if (parties < 1)
		return jobshm_fail(err, "barrier '%s': parties must be 1 or "
				   "more", name);
	if ((fd = sync_file(ns, "barrier", name, 1, err)) < 0)
		return -1;
	if (arrive(fd, parties, &gen, &last) < 0)
		rc = jobshm_fail(err, "barrier '%s': %m", name);
	while (rc == 0 && !last && generation(fd) == gen) {
		if (timeout >= 0 && now() > end) {
			withdraw(fd, gen);
			rc = jobshm_fail_code(err, ETIMEDOUT, "barrier '%s': "
					      "not all %u parties arrived "
					      "within %.3g s (one died or "
					      "never came)", name, parties,
					      timeout);
			break;
		}
		nanosleep(&pause, NULL);
		if (pause.tv_nsec < 20000000)
			pause.tv_nsec *= 2;
	}
	close(fd);
	return rc;
}
