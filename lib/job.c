/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Mechanism: one tmpfs per job under the node's base path, bound over
 * /dev/shm in each task's private mount namespace, unmounted at job end.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "internal.h"

int
jobshm_job_init(struct jobshm_job *job, const struct jobshm_conf *conf,
		const char *node, uint32_t jobid, jobshm_err_t *err)
{
	char base[256];
	int n;

	memset(job, 0, sizeof(*job));
	if (jobid == 0)
		return jobshm_fail(err, "job id 0 is not a job");
	if (jobshm_conf_base(conf, node, base, sizeof(base), err) < 0)
		return -1;
	job->jobid = jobid;
	job->conf = conf;
	jobshm_conf_top(conf, job->top, sizeof(job->top));
	snprintf(job->node, sizeof(job->node), "%s", node ? node : "");
	n = snprintf(job->path, sizeof(job->path), "%s/%" PRIu32, base, jobid);
	if (n < 0 || (size_t)n >= sizeof(job->path))
		return jobshm_fail(err, "job path too long");
	return 0;
}

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

/*
 * Open the job's base directory and its lock (*lock, closed by the
 * caller after the base), refusing links and anything a user could
 * have written to on the whole path.  A base of root's that others can
 * read is made 0700.
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
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || ((st.st_mode & 077) && fchmod(fd, 0700) < 0)) {
		close(fd);
		return jobshm_fail(err, "make %s root-only: %m", base);
	}
	if ((*lock = lock_base(fd, base, err)) < 0) {
		close(fd);
		return -1;
	}
	mark_node(fd, job->node[0] ? job->node : NULL);
	return fd;
}

static const char *
leaf(const struct jobshm_job *job)
{
	return strrchr(job->path, '/') + 1;
}

/* 1 mounted, 0 not (or absent), -1 error; works on an open base. */
static int
mounted_at(int basefd, const char *name, jobshm_err_t *err)
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
	rc = mounted_at(fd, leaf(job), err);
	close(fd);
	return rc;
}

/*
 * The job's directory (or the root of what is mounted on it) as an
 * O_PATH descriptor, and "/proc/self/fd/N" naming it for mount(2):
 * mount and umount then act on exactly what was checked, never on what a
 * path resolves to later.
 */
static int
job_dir_fd(int basefd, const char *name, char *proc, size_t len,
	   jobshm_err_t *err)
{
	int fd = openat(basefd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW |
			O_CLOEXEC);

	if (fd < 0)
		return jobshm_fail(err, "open %s: %m", name);
	snprintf(proc, len, "/proc/self/fd/%d", fd);
	return fd;
}

/* The job's directory, from its base, as job_dir_fd gives it. */
int
jobshm_open_job_dir(const struct jobshm_job *job, char *proc, size_t len,
	     jobshm_err_t *err)
{
	int base = jobshm_open_base_nolock(job, err), fd;

	if (base < 0)
		return -1;
	fd = job_dir_fd(base, leaf(job), proc, len, err);
	close(base);
	return fd;
}

static int
mount_at(int basefd, const char *name, const char *opts, jobshm_err_t *err)
{
	char at[32];
	int fd = job_dir_fd(basefd, name, at, sizeof(at), err), rc = 0;

	if (fd < 0)
		return -1;
	if (mount("jobshm", at, "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0)
		rc = jobshm_fail(err, "mount tmpfs on %s (%s): %m", name, opts);
	close(fd);
	return rc;
}

static int
mount_new(const struct jobshm_job *job, int basefd, uint64_t bytes,
	  const char *extra, jobshm_err_t *err)
{
	char opts[JOBSHM_NODELIST + 256];
	int n;

	n = snprintf(opts, sizeof(opts), "size=%" PRIu64 ",mode=0700,uid=%u,"
		     "gid=%u%s%s", bytes, (unsigned)job->uid,
		     (unsigned)job->gid, extra && *extra ? "," : "",
		     extra ? extra : "");
	if (n < 0 || (size_t)n >= sizeof(opts))
		return jobshm_fail(err, "tmpfs options for %s too long",
				   job->path);
	if (mkdirat(basefd, leaf(job), 0700) < 0 && errno != EEXIST)
		return jobshm_fail(err, "mkdir %s: %m", job->path);
	if (mounted_at(basefd, leaf(job), err) < 0)
		return -1;
	if (mount_at(basefd, leaf(job), opts, err) < 0) {
		unlinkat(basefd, leaf(job), AT_REMOVEDIR);
		return -1;
	}
	return 0;
}

/* A later step of an fsdax job: within the reservation, or refused. */
static int
within_reservation(uint64_t r, uint64_t bytes, jobshm_err_t *err)
{
	char a[32], b[32];

	if (bytes > r)
		return jobshm_fail(err, "the job's persistent memory is %s "
				   "and cannot grow to %s; ask for the full "
				   "size in the job's first step",
				   jobshm_size_format(r, a, sizeof(a)),
				   jobshm_size_format(bytes, b, sizeof(b)));
	return 0;
}

static int
grow(const struct jobshm_job *job, int basefd, uint64_t bytes,
     jobshm_err_t *err)
{
	uint64_t size, used;
	char opts[64], at[32];
	int fd, rc = 0;

	if (jobshm_fsdax_reserved(job, &size) == 0)
		return within_reservation(size, bytes, err);
	if (jobshm_job_usage(job, &size, &used, err) < 0)
		return -1;
	if (bytes <= size)
		return 0;
	snprintf(opts, sizeof(opts), "size=%" PRIu64, bytes);
	if ((fd = job_dir_fd(basefd, leaf(job), at, sizeof(at), err)) < 0)
		return -1;
	if (mount(NULL, at, NULL, MS_REMOUNT | MS_NOSUID | MS_NODEV, opts) < 0)
		rc = jobshm_fail(err, "grow %s to %s: %m", job->path, opts);
	close(fd);
	return rc;
}

/* Create the job's mount (a tmpfs, or an fsdax directory when fsdax_node)
 * or, when a step before made it, grow or check it. */
static int
setup(const struct jobshm_job *job, uint64_t bytes, const char *opts,
      const char *fsdax_node, jobshm_err_t *err)
{
	int fd, lock, m, rc;

	if (bytes == 0)
		return jobshm_fail(err, "size 0: nothing to set up");
	fd = jobshm_open_base(job, 1, &lock, err);
	if (fd < 0)
		return -1;
	m = mounted_at(fd, leaf(job), err);
	if (m < 0)
		rc = -1;
	else if (m)
		rc = grow(job, fd, bytes, err);
	else if (fsdax_node)
		rc = jobshm_fsdax_create(job, fd, fsdax_node, bytes, err);
	else
		rc = mount_new(job, fd, bytes, opts, err);
	close(fd);
	close(lock);
	return rc;
}

int
jobshm_job_setup(const struct jobshm_job *job, uint64_t bytes,
		 const char *opts, jobshm_err_t *err)
{
	return setup(job, bytes, opts, NULL, err);
}

int
jobshm_job_setup_fsdax(const struct jobshm_job *job, const char *node,
		       uint64_t bytes, jobshm_err_t *err)
{
	return setup(job, bytes, NULL, node ? node : "", err);
}

/* Size and use of the filesystem an open descriptor is on. */
int
jobshm_fd_usage(int fd, uint64_t *size, uint64_t *used)
{
	struct statvfs sv;

	if (fstatvfs(fd, &sv) < 0)
		return -1;
	*size = (uint64_t)sv.f_blocks * sv.f_frsize;
	*used = (uint64_t)(sv.f_blocks - sv.f_bfree) * sv.f_frsize;
	return 0;
}

int
jobshm_job_usage(const struct jobshm_job *job, uint64_t *size,
		 uint64_t *used, jobshm_err_t *err)
{
	uint64_t r;
	char at[32];
	int fd, rc;

	if ((fd = jobshm_open_job_dir(job, at, sizeof(at), err)) < 0)
		return -1;
	rc = jobshm_fd_usage(fd, size, used);
	close(fd);
	if (rc < 0)
		return jobshm_fail(err, "statvfs %s: %m", job->path);
	if (jobshm_fsdax_reserved(job, &r) == 0) {	/* fsdax */
		*size = r;
		if (*used > r)	/* no project quota: the filesystem's */
			*used = r;
	}
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

/* The job's fsdax data, if any: 1 (with err) if it must wait for sweep. */
static int
remove_fsdax(const struct jobshm_job *job, jobshm_err_t *err)
{
	return jobshm_fsdax_remove(job->conf, job->jobid, err) < 0 ? 1 : 0;
}

/* The device of the job's tmpfs, 0 if none (not mounted, or fsdax). */
static dev_t
tmpfs_dev(const struct jobshm_job *job, int basefd)
{
	jobshm_err_t ignore;
	struct stat st;
	uint64_t r;

	if (mounted_at(basefd, leaf(job), &ignore) != 1 ||
	    jobshm_fsdax_reserved(job, &r) == 0 ||
	    fstatat(basefd, leaf(job), &st, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	return st.st_dev;
}

/*
 * After the unmount: if a process (one the reaper could not kill: not
 * the job's user's) still holds the job's tmpfs, say so in a record,
 * <base>/<jobid>.held, that status lists with the holders.
 */
static void
note_held(const struct jobshm_job *job, int basefd, dev_t dev)
{
	char name[32], line[64];
	int fd, n;

	snprintf(name, sizeof(name), "%" PRIu32 JOBSHM_HELD, job->jobid);
	if (!dev || jobshm_dev_holders(dev, NULL, NULL) <= 0) {
		unlinkat(basefd, name, 0);
		return;
	}
	fd = openat(basefd, name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW |
		    O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	n = snprintf(line, sizeof(line), "%u:%u %u\n", major(dev), minor(dev),
		     (unsigned)job->uid);
	if (write(fd, line, (size_t)n) != n)
		unlinkat(basefd, name, 0);
	close(fd);
}

/* Empty, unmount and remove the job's directory in its open base. */
static int
remove_job_dir(const struct jobshm_job *job, int fd, jobshm_err_t *err)
{
	dev_t dev = tmpfs_dev(job, fd);

	if (jobshm_ns_release(job, fd, err) < 0)
		return -1;
	if (dev)	/* what a surviving reference holds is then nothing */
		jobshm_empty_at(fd, leaf(job));
	if (jobshm_unmount_at(fd, leaf(job), err) < 0)
		return -1;
	if (unlinkat(fd, leaf(job), AT_REMOVEDIR) < 0 && errno != ENOENT)
		return jobshm_fail(err, "rmdir %s: %m", job->path);
	note_held(job, fd, dev);
	return 0;
}

int
jobshm_job_cleanup(const struct jobshm_job *job, jobshm_err_t *err)
{
	int fd, lock, killed, rc;

	if (jobshm_job_reap(job, &killed, err) < 0)
		return -1;
	fd = jobshm_open_base(job, 0, &lock, err);
	if (fd < 0)
		return errno == ENOENT ? remove_fsdax(job, err) : -1;
	rc = remove_job_dir(job, fd, err);
	if (rc == 0)
		rc = remove_fsdax(job, err);
	close(fd);
	close(lock);
	return rc;
}
