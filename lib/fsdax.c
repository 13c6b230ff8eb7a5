/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * --nvram-options=1LM on nodes whose persistent memory is an fsdax
 * filesystem (nvram_paths): the job gets a private directory
 * <path>/.jobshm/<jobid>, bound at its job path like a tmpfs would be,
 * admitted against the free space and the other live reservations on
 * that filesystem, and capped with a project quota where the filesystem
 * enforces one.  <path>/.jobshm is root's (0700): users reach their
 * directory only through the bind mount.  A reservation is the file
 * <path>/.jobshm/<jobid>.reserve ("bytes node"), so sweep finds fsdax
 * leftovers even after a reboot emptied base_path.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/quota.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/fs.h>
#include <linux/openat2.h>

#include "internal.h"

#define STORE ".jobshm"

/*
 * <path>/.jobshm, checked and locked; created root-only if missing when
 * create, else -1 with errno ENOENT.
 */
static int
open_store(const char *path, int create, jobshm_err_t *err)
{
	struct stat st;
	int top, fd;

	top = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (top < 0)
		return jobshm_fail(err, "nvram path %s: %m", path);
	if (!jobshm_is_mount_root(top)) {
		close(top);
		errno = ENOENT;	/* nothing of ours can be there */
		return jobshm_fail(err, "nvram path %s is not a mounted "
				   "filesystem (is the fsdax mount missing?)",
				   path);
	}
	if (create && mkdirat(top, STORE, 0700) < 0 && errno != EEXIST) {
		close(top);
		return jobshm_fail(err, "mkdir %s/" STORE ": %m", path);
	}
	fd = openat(top, STORE, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	close(top);
	if (fd < 0)
		return jobshm_fail(err, "open %s/" STORE ": %m", path);
	if (fstat(fd, &st) < 0 || st.st_uid != 0 || (st.st_mode & 077) ||
	    flock(fd, LOCK_EX) < 0) {
		close(fd);
		return jobshm_fail(err, "%s/" STORE " must be a directory of "
				   "root's, mode 0700", path);
	}
	return fd;
}

/*
 * The bytes (and node and user) a reservation file records ("bytes node
 * uid"); 0 if none.  *uid is -1 for a record without one (0.2).
 */
static uint64_t
reserved(int store, const char *name, char *node, size_t len, long *uid)
{
	char buf[192] = "", who[128] = "";
	unsigned long u;
	uint64_t v = 0;
	ssize_t n;
	int fd = openat(store, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), f;

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	f = sscanf(buf, "%" SCNu64 " %127s %lu", &v, who, &u);
	if (node)	/* "-": made without a node name */
		snprintf(node, len, "%s", f >= 2 && strcmp(who, "-") ? who : "");
	if (uid)
		*uid = f == 3 ? (long)u : -1;
	return f >= 1 ? v : 0;
}

static int
is_record(const char *name, uint32_t *jobid)
{
	char id[16];
	const char *dot = strchr(name, '.');
	uint64_t v;

	if (!dot || strcmp(dot, ".reserve") || dot - name >= (int)sizeof(id))
		return 0;
	snprintf(id, sizeof(id), "%.*s", (int)(dot - name), name);
	if (jobshm_parse_u64(id, 1, UINT32_MAX, &v, NULL) < 0)
		return 0;
	*jobid = (uint32_t)v;
	return 1;
}

/* Sum of the live reservations of one user in an open store. */
static uint64_t
user_total(int store, long uid)
{
	uint64_t sum = 0, b;
	struct dirent *d;
	uint32_t id;
	long u;
	DIR *dir = fdopendir(dup(store));

	if (!dir)
		return 0;
	while ((d = readdir(dir)))
		if (is_record(d->d_name, &id) &&
		    (b = reserved(store, d->d_name, NULL, 0, &u)) && u == uid)
			sum += b;
	closedir(dir);
	return sum;
}

/* Sum of the live reservations in an open store. */
static uint64_t
reserved_total(int store)
{
	uint64_t sum = 0;
	struct dirent *d;
	uint32_t id;
	DIR *dir = fdopendir(dup(store));

	if (!dir)
		return UINT64_MAX;
	while ((d = readdir(dir)))
		if (is_record(d->d_name, &id))
			sum += reserved(store, d->d_name, NULL, 0, NULL);
	closedir(dir);
	return sum;
}

/*
 * A hard limit of blocks (and files, when inodes) for a project or a
 * user; 0 clears it.  1 if set, 0 if the filesystem enforces no such
 * quota, -1 (errno) on error.
 */
static int
set_limit(int store, int type, uint32_t id, uint64_t bytes, uint64_t inodes)
{
#ifdef SYS_quotactl_fd
	struct dqblk q = { .dqb_bhardlimit = (bytes + 1023) / 1024,
			   .dqb_ihardlimit = inodes,
			   .dqb_valid = QIF_BLIMITS | QIF_ILIMITS };
	int cmd = (int)(((unsigned)Q_SETQUOTA << SUBCMDSHIFT) |
			((unsigned)type & SUBCMDMASK));

	if (syscall(SYS_quotactl_fd, store, cmd, id, &q) == 0)
		return 1;
	return errno == ENOSYS || errno == ESRCH || errno == ENOTTY ||
	       errno == EOPNOTSUPP || errno == EINVAL ? 0 : -1;
#else
	(void)store; (void)type; (void)id; (void)bytes; (void)inodes;
	return 0;
#endif
}

/* 1 if the filesystem open at fd keeps quotas of type, else 0. */
static int
quota_on(int fd, int type)
{
#ifdef SYS_quotactl_fd
	struct dqblk q;
	int cmd = (int)(((unsigned)Q_GETQUOTA << SUBCMDSHIFT) |
			((unsigned)type & SUBCMDMASK));

	return syscall(SYS_quotactl_fd, fd, cmd, 0, &q) == 0;
#else
	(void)fd; (void)type;
	return 0;
#endif
}

int
jobshm_fsdax_quota(const char *path, jobshm_err_t *err)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int q;

	if (fd < 0)
		return jobshm_fail(err, "nvram path %s: %m", path);
	q = (quota_on(fd, PRJQUOTA) ? JOBSHM_QUOTA_PROJECT : 0) |
	    (quota_on(fd, USRQUOTA) ? JOBSHM_QUOTA_USER : 0);
	close(fd);
	return q;
}

/* Files a job may make: one per 4 KiB of its reservation, 64 Ki at least. */
static uint64_t
file_limit(uint64_t bytes)
{
	return bytes / 4096 > 65536 ? bytes / 4096 : 65536;
}

/*
 * Project quota: project id = job id, inherited by everything made in
 * the directory, hard limits = the reservation and its file count.
 * The owner of a file may change its project id (a kernel rule), so the
 * user's own quota is held to the sum of that user's reservations on
 * this filesystem as well (see user_limit).  Returns 1 if set, 0 if the
 * filesystem enforces no project quota, -1 on error.
 */
static int
set_quota(int store, int dirfd, uint32_t jobid, uint64_t bytes,
	  jobshm_err_t *err)
{
	struct fsxattr fx;
	int rc = set_limit(store, PRJQUOTA, jobid, bytes, file_limit(bytes));

	if (rc <= 0)
		return rc < 0 ? jobshm_fail(err, "project quota for job %"
					    PRIu32 ": %m", jobid) : 0;
	if (ioctl(dirfd, FS_IOC_FSGETXATTR, &fx) < 0)
		return jobshm_fail(err, "get project of job directory: %m");
	fx.fsx_projid = jobid;
	fx.fsx_xflags |= FS_XFLAG_PROJINHERIT;
	if (ioctl(dirfd, FS_IOC_FSSETXATTR, &fx) < 0)
		return jobshm_fail(err, "set project of job directory: %m");
	return 1;
}

/* The user's quota: the sum of their live reservations (0: no limit). */
static int
user_limit(int store, long uid)
{
	uint64_t total;

	if (uid < 0)
		return 0;
	total = user_total(store, uid);
	return set_limit(store, USRQUOTA, (uint32_t)uid, total,
			 total ? file_limit(total) : 0);
}

static void
clear_quota(int store, uint32_t jobid)
{
	set_limit(store, PRJQUOTA, jobid, 0, 0);
}

/* Record, directory, quota: the job's place in an open, locked store. */
static int
reserve(int store, const struct jobshm_job *job, const char *node,
	uint64_t bytes, jobshm_err_t *err)
{
	char rec[32], dir[16], line[192];
	int fd, dfd, n, q, u;

	snprintf(dir, sizeof(dir), "%" PRIu32, job->jobid);
	snprintf(rec, sizeof(rec), "%s.reserve", dir);
	fd = openat(store, rec, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		    O_CLOEXEC, 0600);
	if (fd < 0)
		return jobshm_fail(err, "reserve %s: %m", rec);
	n = snprintf(line, sizeof(line), "%" PRIu64 " %s %u\n", bytes,
		     node && *node ? node : "-", (unsigned)job->uid);
	if (write(fd, line, (size_t)n) != n || close(fd) < 0) {
		unlinkat(store, rec, 0);
		return jobshm_fail(err, "write reservation %s: %m", rec);
	}
	if (mkdirat(store, dir, 0700) < 0 ||
	    (dfd = openat(store, dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
			  O_CLOEXEC)) < 0) {
		jobshm_fail(err, "mkdir job directory %s: %m", dir);
		unlinkat(store, rec, 0);
		return -1;
	}
	if (fchown(dfd, job->uid, job->gid) < 0)
		jobshm_fail(err, "chown job directory %s: %m", dir);
	else if ((q = set_quota(store, dfd, job->jobid, bytes, err)) < 0)
		;	/* err says why */
	else if ((u = user_limit(store, job->uid)) < 0)
		jobshm_fail(err, "user quota for uid %u: %m",
			    (unsigned)job->uid);
	else if (q && !u)	/* the owner could leave the project */
		jobshm_fail_code(err, EPERM, "the fsdax filesystem keeps "
				 "project quotas but not user quotas, so a "
				 "job could write past its size (chproj); "
				 "mount it with uquota,prjquota");
	else {
		close(dfd);
		return 0;
	}
	close(dfd);
	unlinkat(store, dir, AT_REMOVEDIR);
	unlinkat(store, rec, 0);
	return -1;
}

/* Free space on the filesystem fd is on (what a user may still write). */
static uint64_t
avail(int fd)
{
	struct statvfs sv;

	return fstatvfs(fd, &sv) < 0 ? 0 : (uint64_t)sv.f_bavail * sv.f_frsize;
}

/* Room left on one nvram path, for messages and admission. */
static uint64_t
room(int store, uint64_t *free_b, uint64_t *res)
{
	*free_b = avail(store);
	*res = reserved_total(store);
	return *free_b > *res ? *free_b - *res : 0;
}

int
jobshm_fsdax_space(const char *path, uint64_t *free_b, uint64_t *res,
		   jobshm_err_t *err)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), store;

	if (fd < 0)
		return jobshm_fail(err, "%m");
	*free_b = avail(fd);
	store = openat(fd, STORE, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		       O_CLOEXEC);
	*res = store < 0 ? 0 : reserved_total(store);
	if (store >= 0)
		close(store);
	close(fd);
	return 0;
}

/* The first nvram path with room for bytes, reserved; its store fd. */
static int
admit_fsdax(const struct jobshm_job *job, const char *node, uint64_t bytes,
	    char *why, size_t len, jobshm_err_t *err)
{
	const struct jobshm_conf *c = job->conf;
	uint64_t f, r;
	char a[32], b[32];
	int i, fd;
	size_t n = 0;

	for (i = 0; i < c->n_nvram_paths; i++) {
		if ((fd = open_store(c->nvram_paths[i], 1, err)) < 0)
			return -1;
		if (room(fd, &f, &r) >= bytes) {
			if (reserve(fd, job, node, bytes, err) < 0) {
				close(fd);
				return -1;
			}
			return fd;
		}
		n += (size_t)snprintf(why + n, len > n ? len - n : 0,
				      "%s%s: %s free, %s reserved",
				      i ? "; " : "", c->nvram_paths[i],
				      jobshm_size_format(f, a, sizeof(a)),
				      jobshm_size_format(r, b, sizeof(b)));
		close(fd);
	}
	return jobshm_fail_code(err, ENOSPC, "no room for %s of persistent "
				"memory (%s)",
			   jobshm_size_format(bytes, a, sizeof(a)), why);
}

/* Bind <store>/<jobid> at the job path, nosuid and nodev. */
static int
bind_job(int store, const struct jobshm_job *job, int basefd,
	 jobshm_err_t *err)
{
	const char *name = strrchr(job->path, '/') + 1;
	char src[64], at[32];
	int fd, rc = 0;

	snprintf(src, sizeof(src), "/proc/self/fd/%d/%" PRIu32, store,
		 job->jobid);
	if (mkdirat(basefd, name, 0700) < 0 && errno != EEXIST)
		return jobshm_fail(err, "mkdir %s: %m", job->path);
	fd = openat(basefd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return jobshm_fail(err, "open %s: %m", job->path);
	snprintf(at, sizeof(at), "/proc/self/fd/%d", fd);
	if (mount(src, at, NULL, MS_BIND, NULL) < 0)
		rc = jobshm_fail(err, "bind job directory on %s: %m", job->path);
	close(fd);
	if (rc < 0)
		return -1;
	/* the new mount's root, to make it nosuid,nodev */
	fd = openat(basefd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || mount(NULL, (snprintf(at, sizeof(at), "/proc/self/fd/%d",
					     fd), at), NULL, MS_BIND |
			    MS_REMOUNT | MS_NOSUID | MS_NODEV, NULL) < 0) {
		rc = jobshm_fail(err, "make %s nosuid,nodev: %m", job->path);
		if (fd >= 0)
			umount2(at, MNT_DETACH);
	}
	if (fd >= 0)
		close(fd);
	return rc;
}

int
jobshm_fsdax_create(const struct jobshm_job *job, int basefd, const char *node,
		    uint64_t bytes, jobshm_err_t *err)
{
	char why[512] = "";
	int store;

	if (!job->conf || job->conf->n_nvram_paths == 0)
		return jobshm_fail(err, "no nvram_paths configured");
	store = admit_fsdax(job, node, bytes, why, sizeof(why), err);
	if (store < 0)
		return -1;
	if (bind_job(store, job, basefd, err) < 0) {
		jobshm_fsdax_remove_at(store, job->jobid);
		close(store);
		return -1;
	}
	close(store);
	return 0;
}

/*
 * Remove a directory tree without following links and with two
 * descriptors at most, however deep: unlink what can be unlinked, step
 * into the first non-empty subdirectory, and back up through ".." once
 * a level is empty.  Never leaves the filesystem it starts on, and never
 * leaves the tree: the tree belongs to a user who may rename directories
 * in it while root is inside, so each ".." is checked against the device
 * and inode recorded on the way down, and the walk starts again from the
 * top when they differ.
 */
struct level {
	dev_t dev;
	ino_t ino;
};

/*
 * name, directly in the directory at, opened with flags: never through
 * a link or a mount point (a user's FUSE mount is never entered, so never
 * waited for), never outside at.  Kernels without openat2 (before 5.6):
 * O_NOFOLLOW, and the callers check the device.
 */
int
jobshm_open_here(int at, const char *name, int flags)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_NOFOLLOW | O_CLOEXEC),
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_XDEV |
			   RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS,
	};
	long fd = syscall(SYS_openat2, at, name, &how, sizeof(how));

	if (fd < 0 && errno == ENOSYS)
		fd = openat(at, name, flags | O_NOFOLLOW | O_CLOEXEC);
	return (int)fd;
}

/*
 * A regular file's data freed before its name is: whatever descriptor
 * or mapping of it anyone keeps, however hidden (passed over a unix
 * socket, in an io_uring table), then refers to an empty file (a mapping
 * gets SIGBUS).  Only a regular file with this one name (a file with
 * other links may be somebody else's, linked in on a shared filesystem),
 * opened without blocking (a lease makes the open fail, not wait), never
 * a FIFO or device, checked again on the open descriptor.
 */
static void
truncate_here(int at, const char *name)
{
	struct stat st, fst;
	int fd;

	if (fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    !S_ISREG(st.st_mode) || st.st_nlink != 1 || st.st_size == 0)
		return;
	fd = jobshm_open_here(at, name, O_WRONLY | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return;	/* being run (ETXTBSY), leased: the seal tells */
	if (fstat(fd, &fst) == 0 && S_ISREG(fst.st_mode) &&
	    fst.st_ino == st.st_ino && fst.st_dev == st.st_dev &&
	    fst.st_nlink == 1)
		(void)ftruncate(fd, 0);
	close(fd);
}

static int
empty_level(int fd, char *sub, size_t len)
{
	struct dirent *d;
	DIR *dir = fdopendir(dup(fd));
	int found = 0;

	if (!dir)
		return -1;
	while (!found && (d = readdir(dir))) {
		if (!strcmp(d->d_name, ".") || !strcmp(d->d_name, ".."))
			continue;
		if (d->d_type == DT_REG || d->d_type == DT_UNKNOWN)
			truncate_here(fd, d->d_name);
		if (unlinkat(fd, d->d_name, 0) == 0 ||
		    unlinkat(fd, d->d_name, AT_REMOVEDIR) == 0)
			continue;
		if (errno == ENOTEMPTY || errno == EEXIST) {
			snprintf(sub, len, "%s", d->d_name);
			found = 1;
		}
	}
	closedir(dir);
	return found;
}

/* Open dir (relative to at) and push it; -1 if it is not ours to enter. */
static int
enter(int at, const char *dir, struct level **stack, size_t *depth,
      size_t *cap)
{
	struct stat st;
	struct level *s;
	int fd = *depth ? jobshm_open_here(at, dir, O_RDONLY | O_DIRECTORY)
			: openat(at, dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
				 O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) < 0 ||
	    (*depth && st.st_dev != (*stack)[0].dev)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (*depth == *cap) {
		s = realloc(*stack, (*cap * 2 + 16) * sizeof(**stack));
		if (!s) {
			close(fd);
			return -1;
		}
		*stack = s;
		*cap = *cap * 2 + 16;
	}
	(*stack)[(*depth)++] = (struct level){ st.st_dev, st.st_ino };
	return fd;
}

/* fd's "..", if it is still the directory we came down from; else -1. */
static int
back_up(int fd, const struct level *expect)
{
	struct stat st;
	int up = openat(fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (up < 0)
		return -1;
	if (fstat(up, &st) < 0 || st.st_dev != expect->dev ||
	    st.st_ino != expect->ino) {
		close(up);
		return -1;
	}
	return up;
}

/* One pass from the top: 0 emptied, 1 the tree moved under us, -1 error. */
static int
empty_tree(int parent, const char *name, struct level **stack, size_t *cap)
{
	char sub[256];
	size_t depth = 0;
	int fd, next, f;

	fd = enter(parent, name, stack, &depth, cap);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	while ((f = empty_level(fd, sub, sizeof(sub))) >= 0) {
		if (f) {
			next = enter(fd, sub, stack, &depth, cap);
			if (next < 0)
				break;	/* a link or another filesystem */
			close(fd);
			fd = next;
			continue;
		}
		if (depth == 1)
			break;
		next = back_up(fd, &(*stack)[depth - 2]);
		close(fd);
		if (next < 0)
			return 1;
		fd = next;
		depth--;
	}
	close(fd);
	return 0;
}

int
jobshm_empty_at(int parent, const char *name)
{
	struct level *stack = NULL;
	size_t cap = 0;
	int pass, rc = 1;

	for (pass = 0; pass < 16 && rc == 1; pass++)
		rc = empty_tree(parent, name, &stack, &cap);
	free(stack);
	if (rc != 0) {
		errno = rc == 1 ? EBUSY : errno;
		return -1;
	}
	return 0;
}

int
jobshm_rmtree_at(int parent, const char *name)
{
	if (jobshm_empty_at(parent, name) < 0)
		return -1;
	return unlinkat(parent, name, AT_REMOVEDIR) < 0 && errno != ENOENT ?
	       -1 : 0;
}

int
jobshm_fsdax_remove_at(int store, uint32_t jobid)
{
	char dir[16], rec[32];
	long uid;
	int rc;

	snprintf(dir, sizeof(dir), "%" PRIu32, jobid);
	snprintf(rec, sizeof(rec), "%s.reserve", dir);

	rc = jobshm_rmtree_at(store, dir);
	if (rc == 0 && reserved(store, rec, NULL, 0, &uid)) {
		clear_quota(store, jobid);	/* only a limit we set */
		unlinkat(store, rec, 0);
		user_limit(store, uid);		/* the user's other jobs */
	}
	return rc;
}

int
jobshm_fsdax_remove(const struct jobshm_conf *conf, uint32_t jobid,
		    jobshm_err_t *err)
{
	int i, fd, rc = 0;

	for (i = 0; conf && i < conf->n_nvram_paths; i++) {
		if ((fd = open_store(conf->nvram_paths[i], 0, err)) < 0) {
			if (errno == ENOENT)	/* no path, or nothing on it */
				continue;
			return -1;
		}
		if (jobshm_fsdax_remove_at(fd, jobid) < 0)
			rc = jobshm_fail(err, "remove %s/" STORE "/%" PRIu32
					 ": %m", conf->nvram_paths[i], jobid);
		close(fd);
	}
	return rc;
}

int
jobshm_fsdax_reserved(const struct jobshm_job *job, uint64_t *bytes)
{
	const struct jobshm_conf *c = job->conf;
	char rec[32];
	int i, fd;

	*bytes = 0;
	snprintf(rec, sizeof(rec), "%" PRIu32 ".reserve", job->jobid);
	for (i = 0; c && i < c->n_nvram_paths && !*bytes; i++) {
		char store[300];

		snprintf(store, sizeof(store), "%s/" STORE, c->nvram_paths[i]);
		fd = open(store, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			continue;
		*bytes = reserved(fd, rec, NULL, 0, NULL);
		close(fd);
	}
	return *bytes ? 0 : -1;
}

enum jobshm_kind
jobshm_job_kind(const struct jobshm_job *job)
{
	jobshm_err_t ignore;
	uint64_t r;

	if (jobshm_job_mounted(job, &ignore) != 1)
		return JOBSHM_NONE;
	return jobshm_fsdax_reserved(job, &r) == 0 ? JOBSHM_FSDAX : JOBSHM_TMPFS;
}

int
jobshm_fsdax_each(const struct jobshm_conf *conf, jobshm_fsdax_f fn,
		  void *arg, jobshm_err_t *err)
{
	char store[300], node[128];
	struct dirent *d;
	uint32_t id;
	uint64_t b;
	DIR *dir;
	int i, rc = 0;

	for (i = 0; rc >= 0 && i < conf->n_nvram_paths; i++) {
		snprintf(store, sizeof(store), "%s/" STORE, conf->nvram_paths[i]);
		if (!(dir = opendir(store))) {
			if (errno == ENOENT)
				continue;
			return jobshm_fail(err, "%s: %m", store);
		}
		while (rc >= 0 && (d = readdir(dir)))
			if (is_record(d->d_name, &id) &&
			    (b = reserved(dirfd(dir), d->d_name, node,
					  sizeof(node), NULL)))
				rc = fn(conf->nvram_paths[i], id, b, node, arg);
		closedir(dir);
	}
	return rc;
}
