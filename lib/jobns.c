/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The job's mount namespace on a node.
 *
 * The first task of a job on a node (under the job's own lock) unshares a
 * mount namespace, slave to the one it came from, binds the job's mount
 * over /dev/shm in it and detaches every other job's mount.  The
 * namespace is then kept without a process: its nsfs file is bound on
 * <base>/<jobid>.ns/mnt, a root-only directory made a private mount of
 * its own, so that the bind propagates nowhere (not into the namespace
 * it holds, nor into other jobs').  Every later task of the job, in this
 * step or a later one, joins it with setns: no copy of the mount table,
 * no bind, no teardown per task.  The job's end (epilog or sweep)
 * unmounts the holder; the kernel frees the namespace when its last
 * task has gone.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/fsuid.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/nsfs.h>

#include "internal.h"

#define MNTNS_FILE "mnt"

/*
 * The new namespace got a copy of every job's tmpfs under the base path;
 * copies that do not follow the host's unmounts would keep other jobs'
 * memory alive for as long as this task lives.  Detach them all here,
 * a batch per pass over the mount table, however many there are.
 */
struct detach {
	const char *top, *keep;
	char pts[64][320];
	int n;
};

static int
job_mount_under(const struct jobshm_mountinfo *mi, void *arg)
{
	struct detach *d = arg;
	size_t tl = strlen(d->top);

	if (!strncmp(mi->mp, d->top, tl) && mi->mp[tl] == '/' &&
	    strcmp(mi->mp, d->keep))
		snprintf(d->pts[d->n++], sizeof(d->pts[0]), "%s", mi->mp);
	return d->n == 64;	/* a full batch: detach, then read again */
}

/*
 * The top of the base path in this new namespace, when it is jobshm's
 * own bind of that directory on itself (jobdir.c's private_top: a mount
 * root on the same filesystem as its parent, so nothing is hidden by
 * taking it away): detached in one call with every job's mount below
 * it, however many jobs the node runs.  Anything else (a filesystem of
 * the admin's at the top) is left to the pass below.
 */
static int
own_bind(int fd, const char *top)
{
	char parent[PATH_MAX];
	const char *leaf = strrchr(top, '/') + 1;
	struct dirent *e;
	struct stat st, up;
	DIR *d;
	int own = 0, pfd;

	snprintf(parent, sizeof(parent), "%.*s/", (int)(leaf - top - 1), top);
	if (!jobshm_is_mount_root(fd) || fstat(fd, &st) < 0 ||
	    (pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return 0;
	if (fstat(pfd, &up) < 0 || st.st_dev != up.st_dev ||
	    !(d = fdopendir(pfd))) {
		close(pfd);
		return 0;
	}
	/* the directory under the mount is the mount's own root */
	while ((e = readdir(d)))
		if (!strcmp(e->d_name, leaf)) {
			own = e->d_ino == st.st_ino;
			break;
		}
	closedir(d);
	return own;
}

static void
detach_own_top(const struct jobshm_job *job, const char *keep)
{
	size_t n = strlen(job->top);
	int fd;

	if (n < 2 || job->top[0] != '/' || job->top[n - 1] == '/' ||
	    (!strncmp(keep, job->top, n) && (keep[n] == '/' || !keep[n])))
		return;
	fd = open(job->top, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return;
	if (own_bind(fd, job->top))
		umount2(job->top, MNT_DETACH | UMOUNT_NOFOLLOW);
	close(fd);
}

static int
detach_job_mounts(const struct jobshm_job *job, const char *keep,
		  jobshm_err_t *err)
{
	struct detach d = { job->top, keep, { "" }, 0 };
	int pass, detached;

	detach_own_top(job, keep);
	for (pass = 0; pass < 4096; pass++) {
		d.n = 0;
		if (jobshm_mountinfo_each("/proc/thread-self/mountinfo",
					  job_mount_under, &d) < 0)
			return jobshm_fail(err, "/proc/thread-self/mountinfo: "
					   "%m");
		for (detached = 0; d.n-- > 0; )
			detached += umount2(d.pts[d.n], MNT_DETACH |
					    UMOUNT_NOFOLLOW) == 0;
		if (!detached)
			return 0;
	}
	return jobshm_fail(err, "other jobs' mounts keep appearing under %s",
			   job->top);
}

int
jobshm_mntns_enter(const struct jobshm_job *job, const char *target,
		 jobshm_err_t *err)
{
	char at[32];
	int fd, rc = 0;

	if (unshare(CLONE_NEWNS) < 0 ||
	    mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
		return jobshm_fail(err, "private mount namespace: %m");
	/* the job's mount as this new namespace has it */
	if ((fd = jobshm_open_job_dir(job, at, sizeof(at), err)) < 0)
		return -1;
	if (mount(at, target, NULL, MS_BIND, NULL) < 0)
		rc = jobshm_fail(err, "bind %s on %s: %m", job->path, target);
	close(fd);
	return rc < 0 ? -1 : detach_job_mounts(job, target, err);
}

/*
 * The working directory across a change of namespace, which moves us to
 * its root: kept by path, device and inode before, and entered again
 * after with the job user's filesystem ids (root never follows a path
 * the user may have changed in between into a place the user cannot
 * reach), then compared; anything else is "/".
 */
void
jobshm_cwd_save(struct jobshm_cwd *c)
{
	struct stat st;

	if (!getcwd(c->path, sizeof(c->path)) || stat(".", &st) < 0) {
		snprintf(c->path, sizeof(c->path), "/");
		c->dev = 0;
		c->ino = 0;
		return;
	}
	c->dev = st.st_dev;
	c->ino = st.st_ino;
}

int
jobshm_cwd_restore(const struct jobshm_cwd *c, uid_t uid, gid_t gid,
		   jobshm_err_t *err)
{
	struct stat st;
	int ok;

	setfsgid(gid);
	setfsuid(uid);
	ok = chdir(c->path) == 0;
	setfsuid(0);
	setfsgid(0);
	if (ok && stat(".", &st) == 0 && st.st_dev == c->dev &&
	    st.st_ino == c->ino)
		return 0;
	if (chdir("/") < 0)
		return jobshm_fail(err, "chdir /: %m");
	return 0;
}

/*
 * A task that a job container (Slurm's job_container/tmpfs) has put in
 * its own namespace: that namespace was copied from the host's before the
 * job's mount existed, and a bind cannot reach across namespaces.  So the
 * job's mount is cloned (open_tree) from the host's namespace, open at
 * `host`, and attached on target in a namespace of the task's own,
 * unshared from the container's: the container's /tmp and the like stay.
 */
static int
clone_job_mount(const struct jobshm_job *job, int host, int here,
		jobshm_err_t *err)
{
	char at[32];
	int fd, tree;

	if (setns(host, CLONE_NEWNS) < 0)
		return jobshm_fail(err, "setns into slurmstepd's namespace: %m");
	fd = jobshm_open_job_dir(job, at, sizeof(at), err);
	tree = fd < 0 ? -1 : open_tree(fd, "", OPEN_TREE_CLONE |
				       OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
	if (fd >= 0 && tree < 0)
		jobshm_fail(err, "clone the mount of %s: %m", job->path);
	if (fd >= 0)
		close(fd);
	if (setns(here, CLONE_NEWNS) < 0) {
		if (tree >= 0)
			close(tree);
		return jobshm_fail(err, "setns back into the container: %m");
	}
	return tree;
}

int
jobshm_mntns_enter_from(const struct jobshm_job *job, int host,
		      const char *target, jobshm_err_t *err)
{
	struct jobshm_cwd cwd;
	int here, tree, rc = 0;

	jobshm_cwd_save(&cwd);
	here = open("/proc/thread-self/ns/mnt", O_RDONLY | O_CLOEXEC);
	if (here < 0)
		return jobshm_fail(err, "/proc/thread-self/ns/mnt: %m");
	tree = clone_job_mount(job, host, here, err);
	close(here);
	if (tree < 0)
		return -1;
	if (unshare(CLONE_NEWNS) < 0 ||
	    mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
		rc = jobshm_fail(err, "private mount namespace: %m");
	else if (move_mount(tree, "", AT_FDCWD, target,
			    MOVE_MOUNT_F_EMPTY_PATH) < 0)
		rc = jobshm_fail(err, "attach %s on %s: %m", job->path, target);
	close(tree);
	if (rc == 0)
		rc = detach_job_mounts(job, target, err);
	return rc < 0 ? -1 : jobshm_cwd_restore(&cwd, job->uid, job->gid, err);
}

static void
mntns_dir_name(const struct jobshm_job *job, char *buf, size_t len)
{
	snprintf(buf, len, "%" PRIu32 ".ns", job->jobid);
}

/* <base>/<jobid>.ns, open, if it is there (never through a link). */
static int
mntns_dir_open(int basefd, const struct jobshm_job *job)
{
	char name[32];

	mntns_dir_name(job, name, sizeof(name));
	return openat(basefd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		      O_CLOEXEC);
}

/* The job's kept namespace, open; -1 (errno ENOENT) when there is none. */
static int
mntns_open_at(int basefd, const struct jobshm_job *job)
{
	int dir = mntns_dir_open(basefd, job), fd;

	if (dir < 0)
		return -1;
	fd = openat(dir, MNTNS_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	close(dir);
	if (fd >= 0 && ioctl(fd, NS_GET_NSTYPE) != CLONE_NEWNS) {
		close(fd);	/* a file never bound, or a leftover */
		errno = ENOENT;
		return -1;
	}
	return fd;
}

/* <base>/<jobid>.ns, root-only, a private mount of its own; open. */
static int
mntns_dir(int basefd, const struct jobshm_job *job, jobshm_err_t *err)
{
	char name[32], at[48];
	int fd, i;

	mntns_dir_name(job, name, sizeof(name));
	if (mkdirat(basefd, name, 0700) < 0 && errno != EEXIST)
		return jobshm_fail(err, "mkdir %s.ns: %m", job->path);
	for (i = 0; i < 2; i++) {	/* the directory, then its bind */
		fd = openat(basefd, name, O_RDONLY | O_DIRECTORY |
			    O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return jobshm_fail(err, "open %s.ns: %m", job->path);
		snprintf(at, sizeof(at), "/proc/thread-self/fd/%d", fd);
		if (jobshm_is_mount_root(fd))
			break;
		if (i || mount(at, at, NULL, MS_BIND, NULL) < 0) {
			close(fd);
			return jobshm_fail(err, "bind %s.ns: %m", job->path);
		}
		close(fd);
	}
	if (mount(NULL, at, NULL, MS_PRIVATE, NULL) < 0) {
		close(fd);
		return jobshm_fail(err, "make %s.ns private: %m", job->path);
	}
	return fd;
}

/* The holder file in the open ns directory, as an O_PATH descriptor. */
static int
mntns_holder(int dir, const struct jobshm_job *job, jobshm_err_t *err)
{
	int fd = openat(dir, MNTNS_FILE, O_WRONLY | O_CREAT | O_NOFOLLOW |
			O_CLOEXEC, 0600);

	if (fd >= 0) {
		close(fd);
		fd = openat(dir, MNTNS_FILE, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	}
	return fd < 0 ? jobshm_fail(err, "%s.ns/%s: %m", job->path, MNTNS_FILE)
		      : fd;
}

/* mntns_keep: the new namespace's id is not above the one it is bound in */
#define MNTNS_NOT_NEWER (-3)

/* In the helper thread, in the job's new namespace (open at `ns`): bind it on
 * the holder from the namespace open at `from`, where the holder is. */
static int
mntns_keep(int from, int ns, int hold, const struct jobshm_job *job,
	jobshm_err_t *err)
{
	char src[48], at[48];
	int older;

	if (setns(from, CLONE_NEWNS) < 0)
		return jobshm_fail(err, "setns back: %m");
	snprintf(src, sizeof(src), "/proc/thread-self/fd/%d", ns);
	snprintf(at, sizeof(at), "/proc/thread-self/fd/%d", hold);
	if (mount(src, at, NULL, MS_BIND, NULL) < 0) {
		older = errno == EINVAL;
		jobshm_fail(err, "keep the namespace on %s.ns: %m", job->path);
		return older ? MNTNS_NOT_NEWER : -1;
	}
	return 0;
}

/* In the helper thread, in the namespace open at `from`: a new one for the job,
 * kept on the holder; 0, -1, or MNTNS_NOT_NEWER (back in `from`). */
static int
mntns_new_kept(const struct jobshm_job *job, int from, int hold,
	       const char *target, jobshm_err_t *err)
{
	int ns, rc;

	if (jobshm_mntns_enter(job, target, err) < 0)
		return -1;
	ns = open("/proc/thread-self/ns/mnt", O_RDONLY | O_CLOEXEC);
	rc = ns < 0 ? jobshm_fail(err, "the new namespace: %m") :
	     mntns_keep(from, ns, hold, job, err);
	if (ns >= 0)
		close(ns);
	return rc;
}

/*
 * The kernel binds a mount namespace's file only in a namespace with a
 * lower id (no loops).  On Linux 6.18 (seen on 6.18.44) the ids come
 * from per-CPU batches, so a namespace made now on one CPU can get a
 * lower id than one made earlier on another: the job's namespace under
 * Slurm's namespace/linux, where slurmstepd and the tasks run and the
 * holder is.  Then the job's namespace is made again on another CPU this
 * helper may run on (pinned to it), until one is newer.  The CPU that
 * last made one (the one with the newest batch: later ids on it are
 * newer still) is tried first, from a hint in the base; one attempt
 * costs a copy of the node's mount table.
 */
#define MNTNS_CPU_HINT ".jobshm-nscpu"

static int
cpu_hint(int basefd)
{
	char buf[16] = "";
	uint64_t v;
	int fd = openat(basefd, MNTNS_CPU_HINT, O_RDONLY | O_NOFOLLOW |
			O_CLOEXEC), cpu;

	if (fd < 0)
		return -1;
	if (read(fd, buf, sizeof(buf) - 1) > 0)
		buf[strcspn(buf, "\n")] = '\0';
	cpu = jobshm_parse_u64(buf, 0, CPU_SETSIZE - 1, &v, NULL) == 0 ?
	      (int)v : -1;
	close(fd);
	return cpu;
}

static void
cpu_hint_set(int basefd, int cpu)
{
	char buf[16];
	int fd = openat(basefd, MNTNS_CPU_HINT, O_WRONLY | O_CREAT | O_TRUNC |
			O_NOFOLLOW | O_CLOEXEC, 0600), n;

	if (fd < 0)
		return;
	n = snprintf(buf, sizeof(buf), "%d\n", cpu);
	if (write(fd, buf, (size_t)n) != n)
		unlinkat(basefd, MNTNS_CPU_HINT, 0);
	close(fd);
}

/* Pinned to cpu (when this helper may run there): made and kept. */
static int
mntns_new_kept_on(const struct jobshm_job *job, int from, int hold,
		  const char *target, int cpu, jobshm_err_t *err)
{
	cpu_set_t one;

	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	if (sched_setaffinity(0, sizeof(one), &one) < 0) {
		jobshm_fail(err, "pin to CPU %d: %m", cpu);
		return MNTNS_NOT_NEWER;
	}
	return mntns_new_kept(job, from, hold, target, err);
}

static int
mntns_new_kept_anywhere(const struct jobshm_job *job, int basefd, int from,
			int hold, const char *target, jobshm_err_t *err)
{
	cpu_set_t cpus;
	int cpu, tries = 0, first, rc;

	if (sched_getaffinity(0, sizeof(cpus), &cpus) < 0)
		return mntns_new_kept(job, from, hold, target, err);
	first = cpu_hint(basefd);
	if (first < 0 || !CPU_ISSET(first, &cpus))
		first = sched_getcpu();
	rc = first < 0 ? mntns_new_kept(job, from, hold, target, err) :
	     mntns_new_kept_on(job, from, hold, target, first, err);
	for (cpu = 0; rc == MNTNS_NOT_NEWER && cpu < CPU_SETSIZE &&
	     tries < 64; cpu++) {
		if (!CPU_ISSET(cpu, &cpus) || cpu == first)
			continue;
		tries++;
		rc = mntns_new_kept_on(job, from, hold, target, cpu, err);
		if (rc == 0)
			cpu_hint_set(basefd, cpu);
	}
	return rc;
}

/* In the helper thread: make the job's namespace and keep it; 0 or -1. */
static int
mntns_create(const struct jobshm_job *job, int basefd, const char *target,
	  jobshm_err_t *err)
{
	int dir, hold, from, rc = -1;

	if ((dir = mntns_dir(basefd, job, err)) < 0)
		return -1;
	hold = mntns_holder(dir, job, err);
	close(dir);
	if (hold < 0)
		return -1;
	from = open("/proc/thread-self/ns/mnt", O_RDONLY | O_CLOEXEC);
	if (from < 0)
		jobshm_fail(err, "/proc/thread-self/ns/mnt: %m");
	else
		rc = mntns_new_kept_anywhere(job, basefd, from, hold, target,
					     err) < 0 ? -1 : 0;
	if (from >= 0)
		close(from);
	close(hold);
	return rc;
}

struct maker {
	const struct jobshm_job *job;
	const char *target;
	int base, rc;
	jobshm_err_t err;
};

static void *
maker_run(void *arg)
{
	struct maker *m = arg;

	m->rc = mntns_create(m->job, m->base, m->target, &m->err);
	return NULL;
}

/*
 * Make the job's namespace in a thread of its own, gone after: it
 * unshares its own filesystem context and mount namespace, so that the
 * caller's other threads (slurmstepd's) and the caller itself stay where
 * they are, and nothing of the caller's address space is copied (a fork
 * of slurmstepd did that, and then took its page faults).  (Where each
 * task joins by itself, the caller is a task forked by slurmstepd and
 * not yet exec'd: glibc's fork leaves thread creation working there.)
 * 0, or -1 with the thread's reason.
 */
static int
mntns_make(const struct jobshm_job *job, int base, const char *target,
	   jobshm_err_t *err)
{
	struct maker m = { job, target, base, -1, { 0, "" } };
	pthread_attr_t attr;
	sigset_t all, old;
	pthread_t t;
	int e;

	/* no signal handler of the caller's runs in it (another namespace,
	 * root and cwd); a stack of its own size, whatever RLIMIT_STACK */
	sigfillset(&all);
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 512 << 10);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	e = pthread_create(&t, &attr, maker_run, &m);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (e != 0) {
		errno = e;
		return jobshm_fail(err, "a thread to make the job's "
				   "namespace: %m");
	}
	pthread_join(t, NULL);
	if (m.rc < 0)
		*err = m.err;
	return m.rc < 0 ? -1 : 0;
}

/* No kept namespace could be made: the caller may make its own. */
#define MNTNS_UNKEPT (-2)

/* The open directory at name in basefd is still the one linked there. */
static int
still_linked(int basefd, const char *name, int fd)
{
	struct stat a, b;

	return fstat(fd, &a) == 0 && fstatat(basefd, name, &b,
					     AT_SYMLINK_NOFOLLOW) == 0 &&
	       a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/*
 * <base>/<jobid>.ns, made if need be (root's, 0700, in the root-only
 * base: no user can open it), open; -1.
 */
static int
mntns_dir_make(int basefd, const struct jobshm_job *job, jobshm_err_t *err)
{
	char name[32];
	struct stat st;
	int fd;

	mntns_dir_name(job, name, sizeof(name));
	if (mkdirat(basefd, name, 0700) < 0 && errno != EEXIST)
		return jobshm_fail(err, "mkdir %s.ns: %m", job->path);
	fd = mntns_dir_open(basefd, job);
	if (fd < 0 && errno == ENOENT)	/* the job's end, just now */
		return jobshm_fail_code(err, ENOENT, "the job has ended on "
					"this node");
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISDIR(st.st_mode) ||
	    st.st_uid != 0 || (st.st_mode & 077)) {
		if (fd >= 0)
			close(fd);
		return jobshm_fail_code(err, EPERM, "%s.ns must be a directory "
					"of root's, 0700", job->path);
	}
	return fd;
}

/*
 * The job's own lock: its .ns directory, locked, for making or growing
 * its tmpfs and making its namespace.  Jobs never touch each other's, so
 * a node's starting and ending jobs do not queue behind each other's.
 * The job's end holds it until the job's directory and then this one are
 * gone; a task that waited for it then finds its directory gone and makes
 * nothing.  Open and locked, or -1.
 */
int
jobshm_job_lock(const struct jobshm_job *job, int basefd, jobshm_err_t *err)
{
	char name[32];
	int fd = mntns_dir_make(basefd, job, err);

	if (fd < 0)
		return -1;
	if (flock(fd, LOCK_EX) < 0) {
		close(fd);
		return jobshm_fail(err, "lock %s.ns: %m", job->path);
	}
	mntns_dir_name(job, name, sizeof(name));
	if (!still_linked(basefd, name, fd)) {
		close(fd);
		return jobshm_fail_code(err, ENOENT, "the job has ended on "
					"this node");
	}
	return fd;
}

/* The job's kept namespace, open; made under the job's own lock if it is
 * not there yet, and only while the job's shm is.  -1 error,
 * MNTNS_UNKEPT (err says why). */
static int
mntns_get(const struct jobshm_job *job, const char *target, jobshm_err_t *err)
{
	char name[32];
	int base = jobshm_open_base_nolock(job, err), fd, lock, gone;

	if (base < 0)
		return -1;
	if ((fd = mntns_open_at(base, job)) >= 0 ||
	    (lock = jobshm_job_lock(job, base, err)) < 0) {
		close(base);
		return fd >= 0 ? fd : -1;
	}
	fd = mntns_open_at(base, job);	/* another task may have made it */
	gone = fd < 0 && jobshm_mounted_at(base, jobshm_job_leaf(job), err) != 1;
	if (gone) {
		mntns_dir_name(job, name, sizeof(name));
		unlinkat(base, name, AT_REMOVEDIR);	/* made just now */
		jobshm_fail_code(err, ENOENT, "the job's shm is gone from "
				 "this node (the job has ended)");
	} else if (fd < 0 && mntns_make(job, base, target, err) < 0)
		fd = MNTNS_UNKEPT;
	else if (fd < 0 && (fd = mntns_open_at(base, job)) < 0)
		jobshm_fail(err, "the job's namespace is not where it was "
			    "made");
	close(lock);
	close(base);
	return fd;
}

int
jobshm_mntns_join(const struct jobshm_job *job, const char *target,
		jobshm_err_t *err)
{
	struct jobshm_cwd cwd;
	int fd, rc = 0;

	jobshm_cwd_save(&cwd);
	if ((fd = mntns_get(job, target, err)) < 0)
		return fd == MNTNS_UNKEPT ? 1 : -1;
	/* a thread of its own fs (cwd, root) may change namespace */
	if (unshare(CLONE_FS) < 0 || setns(fd, CLONE_NEWNS) < 0)
		rc = jobshm_fail(err, "join the job's namespace: %m");
	close(fd);
	return rc < 0 ? -1 : jobshm_cwd_restore(&cwd, job->uid, job->gid, err);
}

/* The job's kept namespace's nsfs file (device and inode); -1 if none. */
int
jobshm_mntns_stat(const struct jobshm_job *job, struct stat *st)
{
	jobshm_err_t ignore;
	int base = jobshm_open_base_nolock(job, &ignore), fd, rc;

	if (base < 0)
		return -1;
	fd = mntns_open_at(base, job);
	close(base);
	if (fd < 0)
		return -1;
	rc = fstat(fd, st);
	close(fd);
	return rc;
}

struct job_dev {
	char dev[32];
	char pts[64][320];
	int n;
};

static int
mount_of_dev(const struct jobshm_mountinfo *mi, void *arg)
{
	struct job_dev *d = arg;

	if (!strcmp(mi->dev, d->dev))
		snprintf(d->pts[d->n++], sizeof(d->pts[0]), "%s", mi->mp);
	return d->n == 64;
}

/*
 * In the helper, inside the namespace: detach every mount of dev, the
 * topmost first where a user stacked them; as many passes as it takes
 * while each makes progress (a user cannot add mounts to a namespace
 * nobody is in any more).
 */
static int
detach_dev(struct job_dev *d)
{
	int detached;

	for (;;) {
		d->n = 0;
		if (jobshm_mountinfo_each("/proc/self/mountinfo",
					  mount_of_dev, d) < 0)
			return -1;
		if (d->n == 0)
			return 0;
		for (detached = 0; d->n-- > 0; )
			detached += umount2(d->pts[d->n], MNT_DETACH |
					    UMOUNT_NOFOLLOW) == 0;
		if (!detached)
			return -1;
	}
}

/* The helper's status within a deadline that nothing it waits on (a
 * stalled FUSE mount on the way to a mount point) can extend; after it,
 * it is killed and left (-1). */
int
jobshm_wait_deadline(pid_t pid, int ms, int *status)
{
	for (int t = 0; t < ms; t += 5) {
		pid_t w = waitpid(pid, status, WNOHANG);

		if (w == pid)
			return 0;
		if (w < 0)
			return -1;
		usleep(5000);
	}
	kill(pid, SIGKILL);
	for (int t = 0; t < 20; t++) {	/* reaped unless it cannot die */
		if (waitpid(pid, status, WNOHANG) == pid)
			break;
		usleep(5000);
	}
	return -1;	/* past the deadline, whatever it did */
}

/*
 * Empty the job's kept namespace before it is let go: whoever still
 * holds a reference to it (an nsfs descriptor taken through
 * /proc/<task>/ns/mnt, a process that joined it) then holds a namespace
 * without the job's memory in it.  Needed where the job's tmpfs could
 * not be sealed (job.c), and for fsdax.
 */
static int
mntns_empty(int basefd, const struct jobshm_job *job, jobshm_err_t *err)
{
	struct job_dev *d;
	struct stat st;
	int ns, status;
	pid_t pid;

	if (fstatat(basefd, jobshm_job_leaf(job), &st,
		    AT_SYMLINK_NOFOLLOW) < 0 || (ns = mntns_open_at(basefd, job)) < 0)
		return 0;	/* nothing mounted, or no namespace kept */
	pid = fork();
	if (pid == 0) {
		d = calloc(1, sizeof(*d));
		if (!d || setns(ns, CLONE_NEWNS) < 0)
			_exit(1);
		snprintf(d->dev, sizeof(d->dev), "%u:%u", major(st.st_dev),
			 minor(st.st_dev));
		_exit(detach_dev(d) < 0 ? 2 : 0);
	}
	close(ns);
	if (pid < 0)
		return jobshm_fail(err, "fork: %m");
	if (jobshm_wait_deadline(pid, JOBSHM_HELPER_MS, &status) < 0 ||
	    !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return jobshm_fail(err, "could not empty the namespace of job %"
				   PRIu32, job->jobid);
	return 0;
}

void
jobshm_mntns_end_unlock(const struct jobshm_job *job, int basefd, int lock)
{
	char name[32];

	mntns_dir_name(job, name, sizeof(name));
	if (lock >= 0 && still_linked(basefd, name, lock))
		unlinkat(basefd, name, AT_REMOVEDIR);
	if (lock >= 0)
		close(lock);
}

int
jobshm_mntns_release(const struct jobshm_job *job, int basefd, int detach,
		  jobshm_err_t *err)
{
	char name[32];
	int dir, rc;

	mntns_dir_name(job, name, sizeof(name));
	if ((dir = mntns_dir_open(basefd, job)) < 0)
		return errno == ENOENT ? 0 : jobshm_fail(err, "%s.ns: %m",
							 job->path);
	rc = detach ? mntns_empty(basefd, job, err) : 0;
	if (rc == 0)
		rc = jobshm_unmount_at(dir, MNTNS_FILE, err);
	if (rc == 0 && unlinkat(dir, MNTNS_FILE, 0) < 0 && errno != ENOENT)
		rc = jobshm_fail(err, "remove %s.ns/%s: %m", job->path, MNTNS_FILE);
	close(dir);
	if (rc == 0)	/* the directory itself: jobshm_mntns_end_unlock */
		rc = jobshm_unmount_at(basefd, name, err);
	return rc;
}
