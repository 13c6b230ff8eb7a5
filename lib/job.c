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
#include <stdlib.h>
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

/*
 * A requeued run of a job on the node where its earlier run's end left
 * the tmpfs held (frozen, recorded): its end is tried again; if it is
 * still held the new run is refused (never given the frozen tmpfs, and
 * the held memory never hidden by letting go of it).  0: nothing held
 * (the end went through: mounted no more), -1 refused.
 */
static int end_tmpfs(const struct jobshm_job *job, int fd);
static int remove_mount(const struct jobshm_job *job, int fd,
			jobshm_err_t *err);

static int
held_before(const struct jobshm_job *job, int basefd, jobshm_err_t *err)
{
	char name[32];
	struct stat st;
	jobshm_err_t e;

	snprintf(name, sizeof(name), "%" PRIu32 JOBSHM_HELD, job->jobid);
	if (fstatat(basefd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return 1;	/* none: mounted, as it was */
	if (end_tmpfs(job, basefd) && jobshm_mntns_release(job, basefd, 0,
							     &e) == 0 &&
	    remove_mount(job, basefd, &e) == 0) {
		unlinkat(basefd, name, 0);
		return 0;
	}
	return jobshm_fail(err, "job %" PRIu32 "'s earlier run on this node "
			   "left its shm held (a file of it is still kept "
			   "open); this run cannot have a shm here until it "
			   "is let go (jobshm status shows it, jobshm sweep "
			   "retries)", job->jobid);
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
	if (m > 0)	/* an earlier run's end left it held? */
		m = held_before(job, fd, err);
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
 * A job's tmpfs that its end could not seal stays mounted where it was,
 * frozen, and <base>/<jobid>.held says so ("maj:min uid bytes"): status
 * lists it (holder unknown: nobody is looked for), sweep tries the end
 * again.  A sealed (or fsdax) job's record, if an earlier end left one,
 * goes.
 */
static void
note_held(const struct jobshm_job *job, int basefd, dev_t dev, int held)
{
	char name[32], line[96];
	uint64_t size = 0, used = 0;
	jobshm_err_t ignore;
	int fd, n;

	snprintf(name, sizeof(name), "%" PRIu32 JOBSHM_HELD, job->jobid);
	if (!held) {
		unlinkat(basefd, name, 0);
		return;
	}
	jobshm_job_usage(job, &size, &used, &ignore);
	fd = openat(basefd, name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW |
		    O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	n = snprintf(line, sizeof(line), "%u:%u %u %" PRIu64 "\n", major(dev),
		     minor(dev), (unsigned)job->uid, used);
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
	char *names = NULL, *n;
	ssize_t len;
	int fd = openat(basefd, jobshm_job_leaf(job), O_RDONLY | O_DIRECTORY |
			O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return;
	/* however many the user set: the list sized each time, until none
	 * is left (or none can be removed) */
	for (int pass = 0; pass < 64 && (len = flistxattr(fd, NULL, 0)) > 0;
	     pass++) {
		free(names);
		if (!(names = malloc((size_t)len + 1)) ||
		    (len = flistxattr(fd, names, (size_t)len)) <= 0)
			continue;	/* grown meanwhile: again */
		for (n = names; n < names + len; n += strlen(n) + 1)
			fremovexattr(fd, n);
	}
	free(names);
	close(fd);
}

static void
empty(const struct jobshm_job *job, int fd)
{
	jobshm_empty_at(fd, jobshm_job_leaf(job));
	strip_root(fd, job);
}

/*
 * The tmpfs's limits set at what it uses now (at least one block and one
 * inode: 0 would mean no limit): nothing in it can grow, whoever holds
 * it.  Tried again while its use changes under us.
 */
static void
freeze(const struct jobshm_job *job, int basefd)
{
	struct statvfs v;
	jobshm_err_t ignore;
	char at[32], opts[80];
	int fd = jobshm_dir_fd(basefd, jobshm_job_leaf(job), at, sizeof(at),
			       &ignore);

	for (int tries = 0; fd >= 0 && tries < 8; tries++) {
		uint64_t blocks, inodes;

		if (fstatvfs(fd, &v) < 0 || (v.f_flag & ST_RDONLY))
			break;	/* sealed already: never made writable again */
		blocks = v.f_blocks - v.f_bfree;
		inodes = v.f_files - v.f_ffree;
		snprintf(opts, sizeof(opts), "size=%" PRIu64 ",nr_inodes=%"
			 PRIu64, (blocks ? blocks : 1) * v.f_frsize,
			 inodes ? inodes : 1);
		if (mount(NULL, at, NULL, MS_REMOUNT | MS_NOSUID | MS_NODEV,
			  opts) == 0 || errno != EINVAL)
			break;
	}
	if (fd >= 0)
		close(fd);
}

/*
 * The job's end of its tmpfs, which needs nobody: frozen (nothing grows),
 * every file's data freed and its name removed (a descriptor or mapping
 * kept anywhere, however hidden, then refers to an empty file), then
 * sealed read-only.  The seal fails only while an emptied file is still
 * open for writing or held unlinked: then it is frozen again at what is
 * left (at most what it was) and the caller records it.  1 sealed, 0 not.
 */
static int
end_tmpfs(const struct jobshm_job *job, int fd)
{
	freeze(job, fd);
	for (int round = 0; round < 3; round++) {	/* a racing holder */
		empty(job, fd);
		if (seal(job, fd))
			return 1;
	}
	freeze(job, fd);
	return 0;
}

/* Unmount and remove what is left of the job's directory. */
static int
remove_mount(const struct jobshm_job *job, int fd, jobshm_err_t *err)
{
	if (jobshm_unmount_at(fd, jobshm_job_leaf(job), err) < 0)
		return -1;
	if (unlinkat(fd, jobshm_job_leaf(job), AT_REMOVEDIR) < 0 &&
	    errno != ENOENT)
		return jobshm_fail(err, "rmdir %s: %m", job->path);
	return 0;
}

/* Why the end stops short, in err; 1 (for sweep, never an epilog error). */
static int
left_for_sweep(const struct jobshm_job *job, int held, int released,
	       jobshm_err_t *err)
{
	char why[sizeof(err->msg)];

	snprintf(why, sizeof(why), "%s", released ? "an emptied file is "
		 "still open" : err->msg);
	if (held)
		jobshm_fail(err, "job %" PRIu32 "'s shm is still held (%s); "
			    "left frozen for jobshm sweep", job->jobid, why);
	else
		jobshm_fail(err, "%s; left for jobshm sweep", why);
	return 1;
}

/*
 * End the job's tmpfs (end_tmpfs) and remove its directory in its open
 * base.  What the job's user did cannot make this fail: a tmpfs that
 * could not be sealed, or whose kept namespace could not be emptied, is
 * left mounted and frozen, recorded for status, and 1 is returned (with
 * err) for sweep to try again.
 */
static int
remove_job_dir(const struct jobshm_job *job, int fd, jobshm_err_t *err)
{
	jobshm_err_t ignore;	/* without the lock (another end removed
				 * it), the end goes on */
	int lock = jobshm_job_lock(job, fd, &ignore), rc, released;
	dev_t dev = tmpfs_dev(job, fd);	/* as the lock leaves it */
	int held = dev && !end_tmpfs(job, fd);

	/* sealed, what the namespace has of the job is nothing already */
	released = jobshm_mntns_release(job, fd, !dev || held, err) == 0;
	if (!released && dev)
		held = 1;
	if (held || !released)	/* fsdax unreleased: kept, data and all */
		rc = left_for_sweep(job, held, released, err);
	else
		rc = remove_mount(job, fd, err);
	if (rc >= 0) {
		note_held(job, fd, dev, held);
		unlink_usage(job, fd);
	}
	if (released && rc >= 0)	/* the job's lock's directory goes last */
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

	jobshm_err_t reap_err;

	/* a search past its deadline: the end goes on (what is held stays
	 * for sweep), never an epilog error */
	if (fsdax)
		jobshm_job_reap(job, &killed, &reap_err);
	fd = jobshm_open_base(job, 0, fsdax ? &lock : NULL, err);
	if (fd < 0)
		return errno == ENOENT ? remove_fsdax(job, err) : -1;
	rc = remove_job_dir(job, fd, err);
	if (rc == 0)
		rc = remove_fsdax(job, err);
	close(fd);
	if (fsdax)
		close(lock);
	if (rc >= 0)	/* its metrics go with it (the node's: the caller) */
		jobshm_metrics_job_remove(job->conf, job->jobid, job->node);
	return rc;
}
