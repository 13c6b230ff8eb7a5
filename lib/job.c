/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Mechanism: one tmpfs (or fsdax directory) per job under the node's
 * base path: made, grown, sized and removed here.  Its directory is
 * opened by jobdir.c, entered by jobns.c, its holders found by reap.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
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
 * The options of a job's tmpfs: its size, mode and owner, the NUMA
 * policy of its placement (mpol, "mpol=..." or NULL) and the configured
 * huge=.  The one place they are put together.
 */
int
jobshm_tmpfs_opts(const struct jobshm_job *job, uint64_t bytes,
		  const char *mpol, char *buf, size_t len, jobshm_err_t *err)
{
	const char *huge = jobshm_conf_huge(job->conf);
	int n;

	n = snprintf(buf, len, "size=%" PRIu64 ",mode=0700,uid=%u,gid=%u%s%s"
		     "%s%s", bytes, (unsigned)job->uid, (unsigned)job->gid,
		     mpol && *mpol ? "," : "", mpol ? mpol : "",
		     huge ? ",huge=" : "", huge ? huge : "");
	if (n < 0 || (size_t)n >= len)
		return jobshm_fail(err, "tmpfs options for %s too long",
				   job->path);
	return 0;
}

static int
mount_at(int basefd, const char *name, const char *opts, jobshm_err_t *err)
{
	char at[32];
	int fd = jobshm_dir_fd(basefd, name, at, sizeof(at), err), rc = 0;

	if (fd < 0)
		return -1;
	if (mount("jobshm", at, "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0)
		rc = jobshm_fail(err, "mount tmpfs on %s (%s): %m", name, opts);
	close(fd);
	return rc;
}

static int
mount_new(const struct jobshm_job *job, int basefd, uint64_t bytes,
	  const char *mpol, jobshm_err_t *err)
{
	char opts[JOBSHM_TMPFS_OPTS];
	const char *name = jobshm_job_leaf(job);

	if (jobshm_tmpfs_opts(job, bytes, mpol, opts, sizeof(opts), err) < 0)
		return -1;
	if (mkdirat(basefd, name, 0700) < 0 && errno != EEXIST)
		return jobshm_fail(err, "mkdir %s: %m", job->path);
	if (jobshm_mounted_at(basefd, name, err) < 0)
		return -1;
	if (mount_at(basefd, name, opts, err) < 0) {
		unlinkat(basefd, name, AT_REMOVEDIR);
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
	fd = jobshm_dir_fd(basefd, jobshm_job_leaf(job), at, sizeof(at), err);
	if (fd < 0)
		return -1;
	if (mount(NULL, at, NULL, MS_REMOUNT | MS_NOSUID | MS_NODEV, opts) < 0)
		rc = jobshm_fail(err, "grow %s to %s: %m", job->path, opts);
	close(fd);
	return rc;
}

static int
fsdax_job(const struct jobshm_job *job, enum jobshm_kind kind)
{
	return kind == JOBSHM_FSDAX || jobshm_job_kind(job) == JOBSHM_FSDAX;
}

/*
 * Create the job's mount of kind (a tmpfs with the NUMA policy mpol, or
 * an fsdax directory) or, when a step before made it, grow or check the
 * one that is there, whatever kind it is.  Under the job's own lock: safe
 * against concurrent steps of the same job and its end; fsdax also under
 * the base lock (the node's persistent memory is shared by its jobs).
 */
int
jobshm_job_setup(const struct jobshm_job *job, enum jobshm_kind kind,
		 uint64_t bytes, const char *mpol, jobshm_err_t *err)
{
	int fd, base_lock = -1, lock, m, rc;

	if (bytes == 0 || kind == JOBSHM_NONE)
		return jobshm_fail(err, "size 0: nothing to set up");
	fd = jobshm_open_base(job, 1, fsdax_job(job, kind) ? &base_lock : NULL,
			      err);
	if (fd < 0)
		return -1;
	if ((lock = jobshm_job_lock(job, fd, err)) < 0) {
		close(fd);
		if (base_lock >= 0)
			close(base_lock);
		return -1;
	}
	m = jobshm_mounted_at(fd, jobshm_job_leaf(job), err);
	if (m < 0)
		rc = -1;
	else if (m)
		rc = grow(job, fd, bytes, err);
	else if (kind == JOBSHM_FSDAX)
		rc = jobshm_fsdax_create(job, fd, job->node, bytes, err);
	else
		rc = mount_new(job, fd, bytes, mpol, err);
	close(lock);	/* its directory stays for the job's end */
	close(fd);
	if (base_lock >= 0)
		close(base_lock);
	return rc;
}

int
jobshm_job_usage(const struct jobshm_job *job, uint64_t *size,
		 uint64_t *used, jobshm_err_t *err)
{
	uint64_t r = 0;
	char at[32];
	int fd, rc;

	if ((fd = jobshm_open_job_dir(job, at, sizeof(at), err)) < 0)
		return -1;
	jobshm_fsdax_reserved(job, &r);	/* fsdax: its size is its share */
	rc = jobshm_fd_usage(fd, r, size, used);
	close(fd);
	if (rc < 0)
		return jobshm_fail(err, "statvfs %s: %m", job->path);
	return 0;
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
	struct stat st;

	if (jobshm_job_kind(job) != JOBSHM_TMPFS ||
	    fstatat(basefd, jobshm_job_leaf(job), &st, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	return st.st_dev;
}

/*
 * After the unmount: if a process (one the reaper could not kill: not
 * the job's user's) still holds the job's tmpfs, say so in a record,
 * <base>/<jobid>.held, that status lists with the holders.  A sealed
 * tmpfs holds nothing anyone could keep: no record, and no look at
 * every process on the node.
 */
static void
note_held(const struct jobshm_job *job, int basefd, dev_t dev, int sealed)
{
	char name[32], line[64];
	int fd, n;

	snprintf(name, sizeof(name), "%" PRIu32 JOBSHM_HELD, job->jobid);
	if (!dev || sealed || jobshm_dev_holders(dev, NULL, NULL) <= 0) {
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

/* The job's usage record, if the epilog did not log it (sweep). */
static void
unlink_usage(const struct jobshm_job *job, int basefd)
{
	char name[32];

	snprintf(name, sizeof(name), "%" PRIu32 JOBSHM_USAGE, job->jobid);
	unlinkat(basefd, name, 0);
}

/* Nothing of the job's in its tmpfs: no data, and no inode but its root
 * (empty files, directories and extended attributes take inode space,
 * not blocks). */
static int
empty_now(int fd)
{
	struct statvfs v;

	return fstatvfs(fd, &v) == 0 && v.f_blocks == v.f_bfree &&
	       v.f_files - v.f_ffree <= 1;
}

/*
 * The emptied tmpfs of the job made read-only on its superblock: every
 * mount of it, in every namespace, whoever holds one.  The kernel
 * refuses while a file of it is open for writing or an unlinked file of
 * it is still held (open, mapped, a working directory), so once it is
 * sealed and empty nothing that still refers to it (a descriptor of its
 * root, a namespace) holds any memory, or can ever write to it: nobody
 * need be looked for.  1 sealed; 0 not (then it is writable as before).
 */
static int
seal(const struct jobshm_job *job, int basefd)
{
	const unsigned long flags = MS_REMOUNT | MS_NOSUID | MS_NODEV;
	jobshm_err_t ignore;
	char at[32];
	int fd = jobshm_dir_fd(basefd, jobshm_job_leaf(job), at, sizeof(at),
			       &ignore), sealed = 0;

	if (fd < 0)
		return 0;
	if (mount(NULL, at, NULL, flags | MS_RDONLY, NULL) == 0) {
		sealed = empty_now(fd);
		if (!sealed)	/* made between the emptying and now */
			mount(NULL, at, NULL, flags, NULL);
	}
	close(fd);
	return sealed;
}

/* The extended attributes of the tmpfs's root (the user's: its owner),
 * which the emptying of what is below it leaves. */
static void
strip_root(int basefd, const struct jobshm_job *job)
{
	char names[4096], *n;
	ssize_t len;
	int fd = openat(basefd, jobshm_job_leaf(job), O_RDONLY | O_DIRECTORY |
			O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return;
	for (int pass = 0; pass < 64 && (len = flistxattr(fd, names,
					 sizeof(names))) > 0; pass++)
		for (n = names; n < names + len; n += strlen(n) + 1)
			fremovexattr(fd, n);
	close(fd);
}

static void
empty(const struct jobshm_job *job, int fd)
{
	jobshm_empty_at(fd, jobshm_job_leaf(job));
	strip_root(fd, job);
}

/*
 * Empty the job's tmpfs so that what a surviving reference holds is
 * nothing, and seal it.  Where that fails, someone holds a file of it:
 * the processes of the job's user that do are killed (the reaper looks
 * at every process on the node, only then), and it is emptied and
 * sealed again, as they die.  1 sealed, 0 not.
 */
static int
empty_and_seal(const struct jobshm_job *job, int fd)
{
	jobshm_err_t ignore;
	int killed, tries;

	empty(job, fd);
	if (seal(job, fd))
		return 1;
	if (jobshm_job_reap(job, &killed, &ignore) < 0)
		killed = 0;
	for (tries = 0; tries < (killed ? 20 : 1); tries++) {	/* 1 s */
		if (tries)
			usleep(50000);
		empty(job, fd);
		if (seal(job, fd))
			return 1;
	}
	return 0;
}

/* Empty, unmount and remove the job's directory in its open base. */
static int
remove_job_dir(const struct jobshm_job *job, int fd, jobshm_err_t *err)
{
	jobshm_err_t ignore;	/* without the lock (another end removed
				 * it), the end goes on */
	int sealed = 0, lock = jobshm_job_lock(job, fd, &ignore), rc = -1;
	dev_t dev = tmpfs_dev(job, fd);	/* as the lock leaves it */

	if (dev)
		sealed = empty_and_seal(job, fd);
	/* sealed, what the namespace has of the job is nothing already */
	if (jobshm_mntns_release(job, fd, !sealed, err) < 0 ||
	    jobshm_unmount_at(fd, jobshm_job_leaf(job), err) < 0)
		goto out;
	if (unlinkat(fd, jobshm_job_leaf(job), AT_REMOVEDIR) < 0 &&
	    errno != ENOENT) {
		jobshm_fail(err, "rmdir %s: %m", job->path);
		goto out;
	}
	note_held(job, fd, dev, sealed);
	unlink_usage(job, fd);
	rc = 0;
out:
	if (rc == 0)	/* the job's lock's directory goes last */
		jobshm_mntns_end_unlock(job, fd, lock);
	else if (lock >= 0)
		close(lock);
	return rc;
}

/*
 * A tmpfs job's holders are looked for only when its emptied tmpfs
 * cannot be sealed (remove_job_dir); an fsdax job's (a directory on a
 * filesystem shared with other jobs, which cannot be sealed alone)
 * always, first.  Under the job's own lock (remove_job_dir); fsdax also
 * under the base lock.
 */
int
jobshm_job_cleanup(const struct jobshm_job *job, jobshm_err_t *err)
{
	int fd, lock = -1, killed, rc;
	int fsdax = jobshm_job_kind(job) == JOBSHM_FSDAX;

	if (fsdax && jobshm_job_reap(job, &killed, err) < 0)
		return -1;
	fd = jobshm_open_base(job, 0, fsdax ? &lock : NULL, err);
	if (fd < 0)
		return errno == ENOENT ? remove_fsdax(job, err) : -1;
	rc = remove_job_dir(job, fd, err);
	if (rc == 0)
		rc = remove_fsdax(job, err);
	close(fd);
	if (fsdax)
		close(lock);
	return rc;
}
