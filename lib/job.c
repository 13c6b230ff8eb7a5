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
	snprintf(job->top, sizeof(job->top), "%.*s",
		 (int)(strstr(conf->base_path, "%n") ?
		       strstr(conf->base_path, "%n") - conf->base_path - 1 :
		       (ptrdiff_t)strlen(conf->base_path)), conf->base_path);
	n = snprintf(job->path, sizeof(job->path), "%s/%" PRIu32, base, jobid);
	if (n < 0 || (size_t)n >= sizeof(job->path))
		return jobshm_fail(err, "job path too long");
	return 0;
}

/* mkdir -p for the parents, then the base itself root-only. */
static int
make_base(char *path, jobshm_err_t *err)
{
	char *p;

	for (p = path + 1; (p = strchr(p, '/')); p++) {
		*p = '\0';
		if (mkdir(path, 0755) < 0 && errno != EEXIST) {
			jobshm_fail(err, "mkdir %s: %m", path);
			*p = '/';
			return -1;
		}
		*p = '/';
	}
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return jobshm_fail(err, "mkdir %s: %m", path);
	return 0;
}

/*
 * Open the job's base directory, locked, refusing links and anything a
 * user could have written to.  Returns the fd or -1.
 */
int
jobshm_open_base(const struct jobshm_job *job, int create, jobshm_err_t *err)
{
	char base[sizeof(job->path)];
	struct stat st;
	int fd;

	snprintf(base, sizeof(base), "%s", job->path);
	*strrchr(base, '/') = '\0';
	if (create && make_base(base, err) < 0)
		return -1;
	fd = open(base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return jobshm_fail(err, "open %s: %m", base);
	if (fstat(fd, &st) < 0 || st.st_uid != 0 || (st.st_mode & 022)) {
		close(fd);
		return jobshm_fail(err, "%s must be a directory owned by root "
				   "and writable by root only", base);
	}
	if (flock(fd, LOCK_EX) < 0) {
		close(fd);
		return jobshm_fail(err, "lock %s: %m", base);
	}
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

int
jobshm_job_mounted(const struct jobshm_job *job, jobshm_err_t *err)
{
	char base[sizeof(job->path)];
	int fd, rc;

	snprintf(base, sizeof(base), "%s", job->path);
	*strrchr(base, '/') = '\0';
	fd = open(base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : jobshm_fail(err, "open %s: %m",
							 base);
	rc = mounted_at(fd, leaf(job), err);
	close(fd);
	return rc;
}

static int
mount_new(const struct jobshm_job *job, int basefd, uint64_t bytes,
	  const char *extra, jobshm_err_t *err)
{
	char opts[256];

	if (mkdirat(basefd, leaf(job), 0700) < 0 && errno != EEXIST)
		return jobshm_fail(err, "mkdir %s: %m", job->path);
	if (mounted_at(basefd, leaf(job), err) < 0)
		return -1;
	snprintf(opts, sizeof(opts), "size=%" PRIu64 ",mode=0700,uid=%u,gid=%u"
		 "%s%s", bytes, (unsigned)job->uid, (unsigned)job->gid,
		 extra && *extra ? "," : "", extra ? extra : "");
	if (mount("jobshm", job->path, "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0) {
		jobshm_fail(err, "mount tmpfs %s (%s): %m", job->path, opts);
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
grow(const struct jobshm_job *job, uint64_t bytes, jobshm_err_t *err)
{
	uint64_t size, used;
	char opts[64];

	if (jobshm_fsdax_reserved(job, &size) == 0)
		return within_reservation(size, bytes, err);
	if (jobshm_job_usage(job, &size, &used, err) < 0)
		return -1;
	if (bytes <= size)
		return 0;
	snprintf(opts, sizeof(opts), "size=%" PRIu64, bytes);
	if (mount(NULL, job->path, NULL, MS_REMOUNT | MS_NOSUID | MS_NODEV,
		  opts) < 0)
		return jobshm_fail(err, "grow %s to %s: %m", job->path, opts);
	return 0;
}

/* Create the job's mount (a tmpfs, or an fsdax directory when fsdax_node)
 * or, when a step before made it, grow or check it. */
static int
setup(const struct jobshm_job *job, uint64_t bytes, const char *opts,
      const char *fsdax_node, jobshm_err_t *err)
{
	int fd, m, rc;

	if (bytes == 0)
		return jobshm_fail(err, "size 0: nothing to set up");
	fd = jobshm_open_base(job, 1, err);
	if (fd < 0)
		return -1;
	m = mounted_at(fd, leaf(job), err);
	if (m < 0)
		rc = -1;
	else if (m)
		rc = grow(job, bytes, err);
	else if (fsdax_node)
		rc = jobshm_fsdax_create(job, fd, fsdax_node, bytes, err);
	else
		rc = mount_new(job, fd, bytes, opts, err);
	close(fd);
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

/*
 * The new namespace got a copy of every job's tmpfs under the base path;
 * copies that do not follow the host's unmounts would keep other jobs'
 * memory alive for as long as this task lives.  Detach them all here.
 */
struct detach {
	const char *top, *keep;
	char pts[64][320];
	int n;
};

static int
job_mount_under(const char *dev, const char *root, const char *mp,
		const char *super, void *arg)
{
	struct detach *d = arg;
	size_t tl = strlen(d->top);

	(void)dev;
	(void)root;
	(void)super;
	if (!strncmp(mp, d->top, tl) && mp[tl] == '/' && strcmp(mp, d->keep) &&
	    d->n < 64)
		snprintf(d->pts[d->n++], sizeof(d->pts[0]), "%s", mp);
	return 0;
}

static int
detach_job_mounts(const struct jobshm_job *job, const char *keep,
		  jobshm_err_t *err)
{
	struct detach d = { job->top, keep, { "" }, 0 };

	if (jobshm_mountinfo_each("/proc/self/mountinfo", job_mount_under,
				  &d) < 0)
		return jobshm_fail(err, "/proc/self/mountinfo: %m");
	while (d.n-- > 0)
		umount2(d.pts[d.n], MNT_DETACH | UMOUNT_NOFOLLOW);
	return 0;
}

int
jobshm_job_enter(const struct jobshm_job *job, const char *target,
		 jobshm_err_t *err)
{
	if (unshare(CLONE_NEWNS) < 0)
		return jobshm_fail(err, "unshare(CLONE_NEWNS): %m");
	if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
		return jobshm_fail(err, "make / a slave mount: %m");
	if (mount(job->path, target, NULL, MS_BIND, NULL) < 0)
		return jobshm_fail(err, "bind %s on %s: %m", job->path, target);
	return detach_job_mounts(job, target, err);
}

int
jobshm_job_usage(const struct jobshm_job *job, uint64_t *size,
		 uint64_t *used, jobshm_err_t *err)
{
	struct statvfs sv;
	uint64_t r;

	if (statvfs(job->path, &sv) < 0)
		return jobshm_fail(err, "statvfs %s: %m", job->path);
	*size = (uint64_t)sv.f_blocks * sv.f_frsize;
	*used = (uint64_t)(sv.f_blocks - sv.f_bfree) * sv.f_frsize;
	if (jobshm_fsdax_reserved(job, &r) == 0) {	/* fsdax */
		*size = r;
		if (*used > r)	/* no project quota: the filesystem's */
			*used = r;
	}
	return 0;
}

static int
unmount_all(const struct jobshm_job *job, int basefd, jobshm_err_t *err)
{
	int i, m;

	for (i = 0; i < 16; i++) {
		m = mounted_at(basefd, leaf(job), err);
		if (m <= 0)
			return m;
		if (umount2(job->path, MNT_DETACH | UMOUNT_NOFOLLOW) < 0)
			return jobshm_fail(err, "umount %s: %m", job->path);
	}
	return jobshm_fail(err, "%s is still mounted after 16 unmounts",
			   job->path);
}

int
jobshm_job_cleanup(const struct jobshm_job *job, jobshm_err_t *err)
{
	int fd, killed, rc = -1;

	if (jobshm_job_reap(job, &killed, err) < 0)
		return -1;
	fd = jobshm_open_base(job, 0, err);
	if (fd < 0)
		return errno == ENOENT ? jobshm_fsdax_remove(job->conf,
							     job->jobid, err) : -1;
	if (unmount_all(job, fd, err) < 0)
		goto out;
	if (unlinkat(fd, leaf(job), AT_REMOVEDIR) < 0 && errno != ENOENT) {
		jobshm_fail(err, "rmdir %s: %m", job->path);
		goto out;
	}
	rc = jobshm_fsdax_remove(job->conf, job->jobid, err);
out:
	close(fd);
	return rc;
}
