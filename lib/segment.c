/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Segments inside a job: files in the job's shm directory, named
 * <JOBSHM_PREFIX><name>, built unnamed (O_TMPFILE) and linked into place
 * so readers never see half a segment and a second publisher never
 * overwrites the first.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>
#include <numaif.h>
#include <linux/magic.h>

#include "internal.h"

struct jobshm_ns {
	int dirfd;
	char dir[256];
	char prefix[64];
	char note[384];
};

struct jobshm_seg {
	jobshm_ns_t *ns;
	char name[JOBSHM_NAME_MAX + 1];
	int fd;          /* open until published (for linkat) */
	void *addr;
	size_t size;
	int writable;
};

int
jobshm_name_check(const char *name, jobshm_err_t *err)
{
	size_t i, len = name ? strlen(name) : 0;

	if (len == 0 || len > JOBSHM_NAME_MAX)
		return jobshm_fail(err, "segment name '%.40s' must be 1-%d "
				   "characters", name ? name : "",
				   JOBSHM_NAME_MAX);
	if (name[0] == '.')
		return jobshm_fail(err, "segment name '%s' must not start "
				   "with '.'", name);
	for (i = 0; i < len; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			    "0123456789._-", name[i]))
			return jobshm_fail(err, "segment name '%s': only letters, "
					   "digits, '.', '_' and '-' are "
					   "allowed", name);
	return 0;
}

int
jobshm_stage_name(const char *src, char *buf, size_t len, jobshm_err_t *err)
{
	static const char *const archives[] = {
		".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar",
	};
	size_t n = src ? strlen(src) : 0, b, i, x;

	while (n > 1 && src[n - 1] == '/')
		n--;
	for (b = n; b > 0 && src[b - 1] != '/'; b--)
		;
	for (i = 0; i < sizeof(archives) / sizeof(archives[0]); i++) {
		x = strlen(archives[i]);
		if (n - b > x && !strncmp(src + n - x, archives[i], x)) {
			n -= x;
			break;
		}
	}
	if (n - b >= len)
		return jobshm_fail(err, "stage name from '%s' is too long", src);
	snprintf(buf, len, "%.*s", (int)(n - b), src + b);
	return jobshm_name_check(buf, err);
}

static int
env_prefix(jobshm_ns_t *ns, jobshm_err_t *err)
{
	const char *p = getenv("JOBSHM_PREFIX");

	if (!p)
		return 0;
	jobshm_err_t e;

	if (*p && jobshm_name_check(p, &e) < 0)
		return jobshm_fail(err, "JOBSHM_PREFIX: %s", e.msg);
	snprintf(ns->prefix, sizeof(ns->prefix), "%s", p);
	return 0;
}

/*
 * Outside a jobshm job: the user's own directory in the node's /dev/shm,
 * so no other user can plant a segment or a lock in this namespace.  It is
 * the first of /dev/shm/jobshm-<uid>, jobshm-<uid>.1, ... .7 that is a
 * directory of the user's with mode 0700, else the first of them that
 * does not exist, made now.  One that another user made first (or a link,
 * or a file) is never written into; every process of the user on the node
 * skips it alike, so they all find the same directory.
 */
#define FALLBACKS 8

static void
fallback_path(char *buf, size_t len, int i)
{
	if (i == 0)
		snprintf(buf, len, "/dev/shm/jobshm-%u", (unsigned)geteuid());
	else
		snprintf(buf, len, "/dev/shm/jobshm-%u.%d", (unsigned)geteuid(),
			 i);
}

/* path opened if it is a directory of ours, 0700; -1 (errno) if not. */
static int
own_dir(const char *path)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || st.st_uid != geteuid() ||
	    (st.st_mode & 0777) != 0700) {
		close(fd);
		errno = EPERM;
		return -1;
	}
	return fd;
}

/* Why path is not ours, for the note and the error. */
static void
squatted(const char *path, char *buf, size_t len)
{
	struct passwd pw, *p = NULL;
	char pwbuf[1024];
	struct stat st;

	if (lstat(path, &st) < 0)
		snprintf(buf, len, "%s: %m", path);
	else if (!S_ISDIR(st.st_mode))
		snprintf(buf, len, "%s is a %s of uid %u, not a directory",
			 path, S_ISLNK(st.st_mode) ? "link" : "file",
			 (unsigned)st.st_uid);
	else if (st.st_uid != geteuid()) {
		getpwuid_r(st.st_uid, &pw, pwbuf, sizeof(pwbuf), &p);
		snprintf(buf, len, "%s belongs to uid %u (%.32s), not to you",
			 path, (unsigned)st.st_uid, p ? p->pw_name : "no name");
	} else
		snprintf(buf, len, "%s has mode %04o, not 0700", path,
			 (unsigned)(st.st_mode & 0777));
}

static int
user_fallback(jobshm_ns_t *ns, jobshm_err_t *err)
{
	char path[48], first[160] = "";
	int i, create, fd = -1;

	for (create = 0; create < 2 && fd < 0; create++)
		for (i = 0; i < FALLBACKS && fd < 0; i++) {
			fallback_path(path, sizeof(path), i);
			if (create && mkdir(path, 0700) == 0)
				chmod(path, 0700);	/* whatever the umask */
			else if (create && errno != EEXIST)
				return jobshm_fail(err, "mkdir %s: %m", path);
			fd = own_dir(path);
			if (fd < 0 && errno != ENOENT && !first[0])
				squatted(path, first, sizeof(first));
		}
	if (fd < 0)
		return jobshm_fail_code(err, EPERM, "not in a jobshm job (no "
					"JOBSHM_DIR) and no directory of "
					"yours in /dev/shm: %s, and "
					"jobshm-%u.1 to .%d are taken too; "
					"set JOBSHM_DIR to a 0700 directory "
					"of yours on a tmpfs (or ask an admin "
					"to remove them)", first,
					(unsigned)geteuid(), FALLBACKS - 1);
	snprintf(ns->dir, sizeof(ns->dir), "%s", path);
	snprintf(ns->note, sizeof(ns->note), "not in a jobshm job (no "
		 "JOBSHM_DIR): using %s in the node's /dev/shm%s%s%s", path,
		 first[0] ? " (" : "", first, first[0] ? ")" : "");
	return fd;
}

jobshm_ns_t *
jobshm_ns_open(jobshm_err_t *err)
{
	const char *dir = getenv("JOBSHM_DIR");
	jobshm_ns_t *ns = calloc(1, sizeof(*ns));

	if (!ns) {
		jobshm_fail(err, "out of memory");
		return NULL;
	}
	if (env_prefix(ns, err) < 0)
		goto fail;
	if (!dir || !*dir) {
		if ((ns->dirfd = user_fallback(ns, err)) < 0)
			goto fail;
		return ns;
	}
	snprintf(ns->dir, sizeof(ns->dir), "%s", dir);
	ns->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (ns->dirfd < 0) {
		jobshm_fail(err, "open %s: %m", dir);
		goto fail;
	}
	return ns;
fail:
	free(ns);
	return NULL;
}

void
jobshm_ns_close(jobshm_ns_t *ns)
{
	if (!ns)
		return;
	close(ns->dirfd);
	free(ns);
}

const char *jobshm_ns_dir(const jobshm_ns_t *ns) { return ns->dir; }
int jobshm_ns_dirfd(const jobshm_ns_t *ns) { return ns->dirfd; }
const char *jobshm_ns_prefix(const jobshm_ns_t *ns) { return ns->prefix; }
const char *jobshm_ns_note(const jobshm_ns_t *ns) { return ns->note; }

int
jobshm_ns_usage(const jobshm_ns_t *ns, uint64_t *size, uint64_t *used,
		jobshm_err_t *err)
{
	const char *share = getenv("JOBSHM_SIZE");
	struct statfs sf;
	uint64_t cap = 0;

	/* not a tmpfs of the job's own: an fsdax job's share of a filesystem */
	if (share && fstatfs(ns->dirfd, &sf) == 0 && sf.f_type != TMPFS_MAGIC)
		jobshm_parse_u64(share, 0, UINT64_MAX, &cap, NULL);
	if (jobshm_fd_usage(ns->dirfd, cap, size, used) < 0)
		return jobshm_fail(err, "statvfs %s: %m", ns->dir);
	return 0;
}

static int
full_name(const jobshm_ns_t *ns, const char *name, char *buf, size_t len,
	  jobshm_err_t *err)
{
	if (jobshm_name_check(name, err) < 0)
		return -1;
	snprintf(buf, len, "%s%s", ns->prefix, name);
	return 0;
}

static jobshm_seg_t *
seg_new(jobshm_ns_t *ns, const char *name, int fd, size_t size, int flags,
	jobshm_err_t *err)
{
	int rw = flags & JOBSHM_WRITABLE;
	jobshm_seg_t *seg = calloc(1, sizeof(*seg));

	if (!seg) {
		jobshm_fail(err, "out of memory");
		return NULL;
	}
	seg->ns = ns;
	seg->fd = fd;
	seg->size = size;
	seg->writable = rw;
	snprintf(seg->name, sizeof(seg->name), "%s", name);
	seg->addr = size ? mmap(NULL, size, PROT_READ | (rw ? PROT_WRITE : 0),
				MAP_SHARED | (flags & JOBSHM_POPULATE ?
					      MAP_POPULATE : 0), fd, 0) : NULL;
	if (seg->addr == MAP_FAILED) {
		jobshm_fail(err, "mmap segment '%s' (%zu bytes): %m", name, size);
		free(seg);
		return NULL;
	}
	return seg;
}

static int
tmpfile_in(jobshm_ns_t *ns, const char *name, jobshm_err_t *err)
{
	char full[JOBSHM_NAME_MAX + 72];
	int fd;

	if (full_name(ns, name, full, sizeof(full), err) < 0)
		return -1;
	fd = openat(ns->dirfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0)
		return jobshm_fail(err, "create segment '%s' in %s: %m", name,
				   ns->dir);
	return fd;
}

jobshm_seg_t *
jobshm_seg_create(jobshm_ns_t *ns, const char *name, size_t size,
		  jobshm_err_t *err)
{
	jobshm_seg_t *seg;
	int fd, e;

	if ((fd = tmpfile_in(ns, name, err)) < 0)
		return NULL;
	e = posix_fallocate(fd, 0, (off_t)size);
	if (e) {
		errno = e;
		jobshm_fail(err, "reserve %zu bytes for segment '%s' in %s: %m",
			    size, name, ns->dir);
		close(fd);
		return NULL;
	}
	seg = seg_new(ns, name, fd, size, 1, err);
	if (!seg)
		close(fd);
	return seg;
}

/* Fallback for sources that cannot be mapped: sendfile, one kernel copy. */
static int
copy_sendfile(int out, int in, const char *path, off_t in_off, size_t len,
	      jobshm_err_t *err)
{
	ssize_t n;

	while (len > 0) {
		n = sendfile(out, in, &in_off, len > (1u << 30) ? (1u << 30) : len);
		if (n <= 0)
			return jobshm_fail_code(err, n == 0 ? EIO : errno,
						"copy %s into shm: %s", path,
						n == 0 ? "file too short" :
						strerror(errno));
		len -= (size_t)n;
	}
	return 0;
}

/*
 * One copy, page cache to shm: write() from a populated read-only mapping
 * of the source.  tmpfs allocates each page for the write without zeroing
 * it first, and with huge= it allocates 2 MiB at a time; sendfile goes
 * through a pipe a page at a time and is about 1.5x slower here.  A source
 * truncated meanwhile makes write() fail with EFAULT, never a SIGBUS.
 */
static int
copy_mapped(int out, int in, const char *path, uint64_t off, size_t len,
	    jobshm_err_t *err)
{
	size_t skew = off % (uint64_t)sysconf(_SC_PAGESIZE);
	char *map = mmap(NULL, len + skew, PROT_READ, MAP_SHARED | MAP_POPULATE,
			 in, (off_t)(off - skew));
	char *p = map + skew;
	size_t left = len;
	ssize_t n;
	int e;

	if (map == MAP_FAILED)
		return copy_sendfile(out, in, path, (off_t)off, len, err);
	while (left > 0) {
		n = write(out, p, left > (1u << 30) ? (1u << 30) : left);
		if (n <= 0)
			break;
		p += n;
		left -= (size_t)n;
	}
	e = errno;
	munmap(map, len + skew);
	if (left > 0)
		return jobshm_fail_code(err, e, "copy %s into shm: %s", path,
					e == EFAULT ? "file changed while "
					"loading" : strerror(e));
	return 0;
}

static int
copy_file(int out, const char *path, uint64_t off, size_t len,
	  jobshm_err_t *err)
{
	struct stat st;
	int rc, in = open(path, O_RDONLY | O_CLOEXEC);

	if (in < 0)
		return jobshm_fail(err, "open %s: %m", path);
	if (fstat(in, &st) < 0)
		rc = jobshm_fail(err, "stat %s: %m", path);
	else if (S_ISREG(st.st_mode) && (uint64_t)st.st_size < off + len)
		rc = jobshm_fail(err, "copy %s into shm: file too short "
				 "(%llu bytes, need %llu)", path,
				 (unsigned long long)st.st_size,
				 (unsigned long long)(off + len));
	else if (!S_ISREG(st.st_mode) || len < (2u << 20))
		/* below a huge page, sendfile's fewer calls win */
		rc = copy_sendfile(out, in, path, (off_t)off, len, err);
	else
		rc = copy_mapped(out, in, path, off, len, err);
	close(in);
	return rc;
}

jobshm_seg_t *
jobshm_seg_load(jobshm_ns_t *ns, const char *name, const void *header,
		size_t hlen, const char *path, uint64_t file_off, size_t len,
		jobshm_err_t *err)
{
	jobshm_seg_t *seg;
	int fd;

	if ((fd = tmpfile_in(ns, name, err)) < 0)
		return NULL;
	if (pwrite(fd, header, hlen, 0) != (ssize_t)hlen ||
	    ftruncate(fd, (off_t)hlen) < 0 || lseek(fd, (off_t)hlen, SEEK_SET) < 0) {
		jobshm_fail(err, "write segment '%s' header: %m", name);
		goto fail;
	}
	if (copy_file(fd, path, file_off, len, err) < 0)
		goto fail;
	seg = seg_new(ns, name, fd, hlen + len, 0, err);
	if (seg)
		return seg;
fail:
	close(fd);
	return NULL;
}

int
jobshm_seg_publish(jobshm_seg_t *seg, jobshm_err_t *err)
{
	char full[JOBSHM_NAME_MAX + 72], self[64];

	if (seg->fd < 0)
		return jobshm_fail(err, "segment '%s' is already published",
				   seg->name);
	full_name(seg->ns, seg->name, full, sizeof(full), err);
	fchmod(seg->fd, 0600);
	snprintf(self, sizeof(self), "/proc/self/fd/%d", seg->fd);
	if (linkat(AT_FDCWD, self, seg->ns->dirfd, full, AT_SYMLINK_FOLLOW) < 0) {
		if (errno == EEXIST)
			return 0;
		return jobshm_fail(err, "publish segment '%s': %m", seg->name);
	}
	close(seg->fd);
	seg->fd = -1;
	return 1;
}

jobshm_seg_t *
jobshm_seg_attach(jobshm_ns_t *ns, const char *name, int flags,
		  jobshm_err_t *err)
{
	int writable = flags & JOBSHM_WRITABLE;
	char full[JOBSHM_NAME_MAX + 72];
	struct stat st;
	jobshm_seg_t *seg;
	int fd;

	if (full_name(ns, name, full, sizeof(full), err) < 0)
		return NULL;
	fd = openat(ns->dirfd, full, (writable ? O_RDWR : O_RDONLY) |
		    O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		jobshm_fail(err, "attach segment '%s': %m", name);
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_uid != geteuid()) {
		jobshm_fail(err, "segment '%s' is not a regular file of yours",
			    name);
		close(fd);
		return NULL;
	}
	seg = seg_new(ns, name, fd, (size_t)st.st_size, flags, err);
	if (seg) {
		close(fd);
		seg->fd = -1;
	} else {
		close(fd);
	}
	return seg;
}

int
jobshm_seg_fill(jobshm_seg_t *seg, size_t seg_off, const char *path,
		uint64_t file_off, size_t len, jobshm_err_t *err)
{
	char *dst = (char *)seg->addr + seg_off;
	ssize_t n;
	int fd;

	if (!seg->writable || seg_off > seg->size || len > seg->size - seg_off)
		return jobshm_fail(err, "fill of segment '%s' out of bounds "
				   "or read-only", seg->name);
	if (seg->fd >= 0) {	/* unpublished: write() into the file */
		if (lseek(seg->fd, (off_t)seg_off, SEEK_SET) < 0)
			return jobshm_fail(err, "seek segment '%s': %m",
					   seg->name);
		return copy_file(seg->fd, path, file_off, len, err);
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return jobshm_fail(err, "open %s: %m", path);
	posix_fadvise(fd, (off_t)file_off, (off_t)len, POSIX_FADV_SEQUENTIAL);
	while (len > 0) {
		n = pread(fd, dst, len > (1u << 30) ? (1u << 30) : len,
			  (off_t)file_off);
		if (n <= 0) {
			jobshm_fail_code(err, n == 0 ? EIO : errno,
					 "read %s: %s", path, n == 0 ?
					 "file too short" : strerror(errno));
			close(fd);
			return -1;
		}
		dst += n;
		len -= (size_t)n;
		file_off += (uint64_t)n;
	}
	close(fd);
	return 0;
}

/* The nodes a policy names: its list, else the job's, else any allowed. */
static int
policy_mask(const struct jobshm_mpol *m, unsigned long *mask,
	    jobshm_err_t *err)
{
	const char *list = m->kind == JOBSHM_MPOL_BIND ? m->nodes :
			   getenv("JOBSHM_NUMA_NODES");

	if (list && *list)
		return jobshm_nodes_mask(list, mask) < 0 ?
		       jobshm_fail(err, "bad NUMA node list '%s'", list) : 0;
	if (get_mempolicy(NULL, mask, 1024, NULL, MPOL_F_MEMS_ALLOWED) < 0)
		return jobshm_fail(err, "get_mempolicy: %m");
	return 0;
}

int
jobshm_seg_policy(jobshm_seg_t *seg, const char *policy, jobshm_err_t *err)
{
	static const int mode[] = { [JOBSHM_MPOL_DEFAULT] = MPOL_DEFAULT,
				    [JOBSHM_MPOL_LOCAL] = MPOL_LOCAL,
				    [JOBSHM_MPOL_INTERLEAVE] = MPOL_INTERLEAVE,
				    [JOBSHM_MPOL_BIND] = MPOL_BIND };
	unsigned long mask[1024 / (8 * sizeof(long))] = { 0 };
	struct jobshm_mpol m;
	int nodes;

	if (seg->fd < 0 || !seg->writable || !seg->size)
		return jobshm_fail(err, "segment '%s': a policy applies to a "
				   "new, unpublished segment", seg->name);
	if (jobshm_mpol_parse(policy, &m, err) < 0)
		return -1;
	nodes = m.kind == JOBSHM_MPOL_INTERLEAVE || m.kind == JOBSHM_MPOL_BIND;
	if (nodes && policy_mask(&m, mask, err) < 0)
		return -1;
	if (mbind(seg->addr, seg->size, mode[m.kind], nodes ? mask : NULL,
		  nodes ? 1024 + 1 : 0, 0) < 0)
		return jobshm_fail(err, "segment '%s': policy %s: %s",
				   seg->name, policy, errno == EINVAL ?
				   "a node is not available to this job" :
				   strerror(errno));
	return 0;
}

void *jobshm_seg_addr(const jobshm_seg_t *seg) { return seg->addr; }
size_t jobshm_seg_size(const jobshm_seg_t *seg) { return seg->size; }
int jobshm_seg_writable(const jobshm_seg_t *seg) { return seg->writable; }

void
jobshm_seg_close(jobshm_seg_t *seg)
{
	if (!seg)
		return;
	if (seg->addr)
		munmap(seg->addr, seg->size);
	if (seg->fd >= 0)
		close(seg->fd);
	free(seg);
}

int
jobshm_seg_unlink(jobshm_ns_t *ns, const char *name, jobshm_err_t *err)
{
	char full[JOBSHM_NAME_MAX + 72];

	if (full_name(ns, name, full, sizeof(full), err) < 0)
		return -1;
	if (unlinkat(ns->dirfd, full, 0) < 0)
		return jobshm_fail(err, "delete segment '%s': %m", name);
	return 0;
}

int
jobshm_seg_list(jobshm_ns_t *ns, jobshm_seg_f fn, void *arg,
		jobshm_err_t *err)
{
	size_t pl = strlen(ns->prefix);
	struct dirent *d;
	struct stat st;
	DIR *dir;
	int rc = 0, fd = dup(ns->dirfd);

	if (fd < 0 || !(dir = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return jobshm_fail(err, "list %s: %m", ns->dir);
	}
	rewinddir(dir);
	while (rc >= 0 && (d = readdir(dir))) {
		if (strncmp(d->d_name, ns->prefix, pl) != 0 ||
		    jobshm_name_check(d->d_name + pl, NULL) < 0 ||
		    fstatat(ns->dirfd, d->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		rc = fn(d->d_name + pl, (uint64_t)st.st_size, arg);
	}
	closedir(dir);
	return rc < 0 ? -1 : 0;
}
