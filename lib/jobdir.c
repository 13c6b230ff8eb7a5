/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The job directories: a root path opened component by component without
 * following links, the base directory of a node and its lock, the job's
 * directory as a descriptor for mount(2), and what is mounted there.
 * The files that make, join and remove job mounts (job.c, jobns.c,
 * fsdax.c, reap.c, list.c) use these; this file uses none of them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "internal.h"

/*
 * One component of a root path: a directory (never a link) of root's
 * that no one else can write to -- except a sticky directory such as
 * /tmp on the way, where no one else can rename or remove what root
 * made, and the next component is checked in turn.
 */
static int
safe_component(int fd, const char *name, int last, jobshm_err_t *err)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return jobshm_fail(err, "stat %s: %m", name);
	if (!S_ISDIR(st.st_mode) || st.st_uid != 0 ||
	    ((st.st_mode & 022) && (last || !(st.st_mode & S_ISVTX))))
		return jobshm_fail(err, "%s must be a directory owned by root "
				   "and writable by root only", name);
	return 0;
}

/*
 * The next component of path, opened under at; -1 (errno) if not there.
 * Nothing is made in a directory others can write to (a sticky /tmp):
 * a user could make the name first there, and hold every job's setup
 * on the node (EEXIST... or a directory of theirs, refused after).
 */
static int
open_component(int at, const char *comp, int create, int last)
{
	struct stat st;
	int fd = openat(at, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
			O_CLOEXEC);

	if (fd < 0 && errno == ENOENT && create) {
		if (fstat(at, &st) < 0)
			return -1;
		if (st.st_mode & 022) {
			errno = ENOTUNIQ;	/* see jobshm_open_dir */
			return -1;
		}
		if (mkdirat(at, comp, last ? 0700 : 0755) < 0 && errno != EEXIST)
			return -1;
		fd = openat(at, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
			    O_CLOEXEC);
	}
	return fd;
}

int
jobshm_open_dir(const char *path, int create, jobshm_err_t *err)
{
	char buf[sizeof(((struct jobshm_job *)0)->path)], *comp, *next;
	int fd, at;

	if (path[0] != '/' || snprintf(buf, sizeof(buf), "%s", path) >=
	    (int)sizeof(buf))
		return jobshm_fail(err, "bad directory '%s'", path);
	at = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	for (comp = buf + 1; at >= 0 && comp && *comp; comp = next) {
		next = strchr(comp, '/');
		if (next)
			*next++ = '\0';
		fd = open_component(at, comp, create, !next || !*next);
		close(at);
		if (fd < 0 && errno == ENOTUNIQ && (errno = EPERM))
			return jobshm_fail_code(err, EPERM, "%s: will not make "
					   "'%s' in a directory others can "
					   "write to; make it as root, or use "
					   "a root-only base_path such as "
					   "/run/jobshm/%%n", path, comp);
		if (fd < 0)
			return jobshm_fail(err, "open %s: %m", path);
		if (safe_component(fd, path, !next || !*next, err) < 0) {
			close(fd);
			errno = EPERM;
			return -1;
		}
		at = fd;
	}
	return at < 0 ? jobshm_fail(err, "open /: %m") : at;
}

/*
 * The marker that says "jobshm made this node directory, for this
 * node": sweep and status walk only marked directories, and learn the
 * Slurm node name from it.
 */
static void
mark_node(int basefd, const char *node)
{
	int fd;

	if (!node || faccessat(basefd, JOBSHM_NODE_MARK, F_OK,
			       AT_SYMLINK_NOFOLLOW) == 0)
		return;
	fd = openat(basefd, JOBSHM_NODE_MARK, O_WRONLY | O_CREAT | O_EXCL |
		    O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	if (write(fd, node, strlen(node)) < 0 || write(fd, "\n", 1) < 0)
		unlinkat(basefd, JOBSHM_NODE_MARK, 0);
	close(fd);
}

/*
 * The base's lock: a root-only file in the root-only base.  Not the base
 * directory itself: a user who opened it before it was made root-only
 * keeps that descriptor, and could take its lock for ever.
 */
static int
lock_base(int basefd, const char *base, jobshm_err_t *err)
{
	struct stat st;
	int fd = openat(basefd, JOBSHM_BASE_LOCK, O_RDWR | O_CREAT |
			O_NOFOLLOW | O_CLOEXEC, 0600);

	if (fd < 0)
		return jobshm_fail(err, "%s/%s: %m", base, JOBSHM_BASE_LOCK);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != 0 ||
	    (st.st_mode & 077)) {
		close(fd);
		return jobshm_fail_code(err, EPERM, "%s/%s must be a file of "
					"root's, 0600", base, JOBSHM_BASE_LOCK);
	}
	if (flock(fd, LOCK_EX) < 0) {
		close(fd);
		return jobshm_fail(err, "lock %s: %m", base);
	}
	return fd;
}

/* 1 if some mount is below dir in our table (a job's, made before). */
static int
under(const struct jobshm_mountinfo *mi, void *arg)
{
	const char *top = arg;
	size_t n = strlen(top);

	return !strncmp(mi->mp, top, n) && mi->mp[n] == '/';
}

/*
 * The top of base_path (the directory of the node directories) as a
 * private mount of its own in the host's namespace: the jobs' tmpfs
 * mounts below it then propagate into no other namespace.  On a node
 * whose root is mounted shared (systemd), each job's namespace, a slave
 * of the host's, would otherwise receive every later job's mount and
 * unmount: J jobs' tables grow as J^2, and every start and end touches
 * them all.  Made once, when no job is mounted below it yet (a bind
 * over mounts would hide them from cleanup); best effort otherwise.
 */
static void
private_top(const struct jobshm_job *job)
{
	char at[32];
	jobshm_err_t ignore;
	int fd = jobshm_open_dir(job->top, 0, &ignore), ok;

	if (fd < 0)
		return;
	snprintf(at, sizeof(at), "/proc/self/fd/%d", fd);
	if (!jobshm_is_mount_root(fd)) {
		ok = jobshm_mountinfo_each("/proc/self/mountinfo", under,
					   (void *)job->top) == 0 &&
		     mount(at, at, NULL, MS_BIND, NULL) == 0;
		close(fd);
		if (!ok || (fd = jobshm_open_dir(job->top, 0, &ignore)) < 0)
			return;
		snprintf(at, sizeof(at), "/proc/self/fd/%d", fd);
	}
	mount(NULL, at, NULL, MS_PRIVATE, NULL);
	close(fd);
}

/*
 * Open the job's base directory and its lock (*lock, closed by the
 * caller after the base; lock NULL: none taken), refusing links and
 * anything a user could have written to on the whole path.  A base of
 * root's that others can read is made 0700.
 */
int
jobshm_open_base(const struct jobshm_job *job, int create, int *lock,
		 jobshm_err_t *err)
{
	char base[sizeof(job->path)];
	struct stat st;
	int fd;

	snprintf(base, sizeof(base), "%s", job->path);
	*strrchr(base, '/') = '\0';
	fd = jobshm_open_dir(base, create, err);
	if (fd >= 0 && create) {	/* then open it through the new mount */
		close(fd);
		private_top(job);
		fd = jobshm_open_dir(base, 0, err);
	}
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || ((st.st_mode & 077) && fchmod(fd, 0700) < 0)) {
		close(fd);
		return jobshm_fail(err, "make %s root-only: %m", base);
	}
	if (lock && (*lock = lock_base(fd, base, err)) < 0) {
		close(fd);
		return -1;
	}
	mark_node(fd, job->node[0] ? job->node : NULL);
	return fd;
}

/* The job directory's name in its base: "<jobid>". */
const char *
jobshm_job_leaf(const struct jobshm_job *job)
{
	return strrchr(job->path, '/') + 1;
}

/* 1 mounted, 0 not (or absent), -1 error; works on an open base. */
int
jobshm_mounted_at(int basefd, const char *name, jobshm_err_t *err)
{
	struct stat st, bst;

	if (fstatat(basefd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : jobshm_fail(err, "stat %s: %m",
							 name);
	if (!S_ISDIR(st.st_mode))
		return jobshm_fail(err, "%s is not a directory", name);
	if (fstat(basefd, &bst) < 0)
		return jobshm_fail(err, "stat base: %m");
	return st.st_dev != bst.st_dev;
}

/* The open base directory of a job, or -1 (errno ENOENT: none yet). */
int
jobshm_open_base_nolock(const struct jobshm_job *job, jobshm_err_t *err)
{
	char base[sizeof(job->path)];

	snprintf(base, sizeof(base), "%s", job->path);
	*strrchr(base, '/') = '\0';
	return jobshm_open_dir(base, 0, err);
}

int
jobshm_job_mounted(const struct jobshm_job *job, jobshm_err_t *err)
{
	int fd, rc;

	fd = jobshm_open_base_nolock(job, err);
	if (fd < 0)	/* none, or not safe: nothing of ours is there */
		return errno == ENOENT || errno == EPERM ? 0 : -1;
	rc = jobshm_mounted_at(fd, jobshm_job_leaf(job), err);
	close(fd);
	return rc;
}

/*
 * The job's directory (or the root of what is mounted on it) as an
 * O_PATH descriptor, and "/proc/self/fd/N" naming it for mount(2):
 * mount and umount then act on exactly what was checked, never on what a
 * path resolves to later.
 */
int
jobshm_dir_fd(int basefd, const char *name, char *proc, size_t len,
	   jobshm_err_t *err)
{
	int fd = openat(basefd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW |
			O_CLOEXEC);

	if (fd < 0)
		return jobshm_fail(err, "open %s: %m", name);
	snprintf(proc, len, "/proc/self/fd/%d", fd);
	return fd;
}

/* The job's directory, from its base, as jobshm_dir_fd gives it. */
int
jobshm_open_job_dir(const struct jobshm_job *job, char *proc, size_t len,
	     jobshm_err_t *err)
{
	int base = jobshm_open_base_nolock(job, err), fd;

	if (base < 0)
		return -1;
	fd = jobshm_dir_fd(base, jobshm_job_leaf(job), proc, len, err);
	close(base);
	return fd;
}

/* 1 if fd is the root of a mount (a filesystem or a bind of its own). */
int
jobshm_is_mount_root(int fd)
{
	struct statx sx;

	if (statx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &sx) < 0)
		return 0;
	return (sx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) &&
	       (sx.stx_attributes & STATX_ATTR_MOUNT_ROOT);
}

/*
 * Size and use of the filesystem an open descriptor is on; on a
 * filesystem the job shares (an fsdax job's), its size is cap, its
 * share (0: all of it).
 */
int
jobshm_fd_usage(int fd, uint64_t cap, uint64_t *size, uint64_t *used)
{
	struct statvfs sv;

	if (fstatvfs(fd, &sv) < 0)
		return -1;
	*size = (uint64_t)sv.f_blocks * sv.f_frsize;
	*used = (uint64_t)(sv.f_blocks - sv.f_bfree) * sv.f_frsize;
	if (cap && *size > cap)
		*size = cap;
	if (*used > *size)
		*used = *size;
	return 0;
}

/* Unmount what is mounted on name under dir, however many times. */
int
jobshm_unmount_at(int dir, const char *name, jobshm_err_t *err)
{
	char at[32];
	int i, fd, rc;

	for (i = 0; i < 16; i++) {
		fd = openat(dir, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return errno == ENOENT ? 0 : jobshm_fail(err, "%s: %m",
								 name);
		if (!jobshm_is_mount_root(fd)) {
			close(fd);
			return 0;
		}
		snprintf(at, sizeof(at), "/proc/self/fd/%d", fd);
		rc = umount2(at, MNT_DETACH);
		close(fd);
		if (rc < 0)
			return jobshm_fail(err, "umount %s: %m", name);
	}
	return jobshm_fail(err, "%s is still mounted after 16 unmounts",
			   name);
}
