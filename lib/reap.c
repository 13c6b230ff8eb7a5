/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Processes of an ended job that still hold its shm (their slurmstepd
 * died, so Slurm could not kill them, or they took a reference from
 * outside the job) keep its memory alive after the unmount.
 *
 * A job's tmpfs is known by its superblock (the device number every
 * mount, bind and namespace copy of it shares), never by mount ids,
 * which differ between namespaces: a process holds the job when an
 * open file, its working or root directory, or a mapping is on that
 * device, when an open file is the job's kept mount namespace (nsfs),
 * when it lives in that namespace, or when a mount namespace of its own
 * has the filesystem mounted.  fsdax jobs share a device with each
 * other, so for them the mount's root tells them apart, as seen in the
 * process's own mount table.  Holders of the job's user are killed
 * through a pidfd, so a recycled pid never gets the signal; holders of
 * anyone else are reported (jobshm_job_holders).
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <inttypes.h>
#include <unistd.h>

#include "internal.h"

struct target {
	int fsdax;            /* match by mount root, not by device        */
	dev_t dev;            /* the job filesystem's device               */
	struct stat ns;       /* the job's kept namespace (st_ino 0: none) */
	struct stat self;     /* our own mount namespace                   */
	char devs[32];        /* dev as "maj:min", as mountinfo writes it  */
	char root[320];       /* fsdax: the job mount's root               */
	int ids[256];         /* fsdax: a process's mounts of it           */
	int n;
	int on_shm;           /* fsdax: one of them is its /dev/shm        */
};

static int
within(const char *root, const char *top)
{
	size_t n = strlen(top);

	return !strcmp(top, "/") || (!strncmp(root, top, n) &&
				     (root[n] == '\0' || root[n] == '/'));
}

static int
same_file(const struct stat *a, const struct stat *b)
{
	return a->st_ino && a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* ---- tmpfs: by device ------------------------------------------------ */

/* 1 if what /proc/PID/<link> leads to is on the job, or is its namespace. */
static int
link_holds(int pdir, const char *link, const struct target *t)
{
	struct statx sx;
	struct stat st;

	/* the kernel's cached attributes: a stalled filesystem is never
	 * asked (FUSE sends no request for AT_STATX_DONT_SYNC) */
	if (statx(pdir, link, AT_STATX_DONT_SYNC | AT_NO_AUTOMOUNT,
		  STATX_INO, &sx) < 0)
		return 0;
	st.st_dev = makedev(sx.stx_dev_major, sx.stx_dev_minor);
	st.st_ino = sx.stx_ino;
	return st.st_dev == t->dev || same_file(&t->ns, &st);
}

typedef int (*link_test_f)(int pdir, const char *link,
			   const struct target *t);

/* 1 if test holds for an entry of /proc/PID/<sub> (fd or map_files). */
static int
any_link(int pdir, const char *sub, link_test_f test, const struct target *t)
{
	char link[300];
	struct dirent *d;
	int fd = openat(pdir, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC), hit = 0;
	DIR *dir = fd < 0 ? NULL : fdopendir(fd);

	if (!dir) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	while (!hit && (d = readdir(dir))) {
		if (d->d_name[0] == '.')
			continue;
		snprintf(link, sizeof(link), "%s/%s", sub, d->d_name);
		hit = test(pdir, link, t);
	}
	closedir(dir);
	return hit;
}

static int
dev_mounted(const struct jobshm_mountinfo *mi, void *arg)
{
	return !strcmp(mi->dev, ((const struct target *)arg)->devs);
}

/* 1 if the process's mount namespace (not ours) has the job mounted. */
static int
ns_mounts_job(int pdir, const char *pid, const struct target *t)
{
	char path[300];
	struct stat st;

	if (fstatat(pdir, "ns/mnt", &st, 0) < 0)
		return 0;
	if (same_file(&t->ns, &st))
		return 1;	/* a process inside the job's namespace */
	if (same_file(&t->self, &st))
		return 0;	/* ours: the job's mount is the host's */
	snprintf(path, sizeof(path), "/proc/%s/mountinfo", pid);
	return jobshm_mountinfo_each(path, dev_mounted, (void *)t) == 1;
}

/*
 * 1 if a mapping of the process is of a file on the job's device: its
 * maps, one read, rather than a stat of each of map_files (a slurmstepd
 * has hundreds).  The device is the fourth field, "maj:min" in hex.
 */
static int
maps_on_dev(int pdir, const struct target *t)
{
	unsigned maj, mnr;
	char *line = NULL;
	size_t len = 0;
	int fd = openat(pdir, "maps", O_RDONLY | O_CLOEXEC), hit = 0;
	FILE *f = fd < 0 ? NULL : fdopen(fd, "r");

	if (!f) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	while (!hit && getline(&line, &len, f) > 0)
		hit = sscanf(line, "%*s %*s %*s %x:%x", &maj, &mnr) == 2 &&
		      makedev(maj, mnr) == t->dev;
	free(line);
	fclose(f);
	return hit;
}

static int
holds_dev(int pdir, const char *pid, const struct target *t)
{
	return link_holds(pdir, "cwd", t) || link_holds(pdir, "root", t) ||
	       any_link(pdir, "fd", link_holds, t) || maps_on_dev(pdir, t) ||
	       ns_mounts_job(pdir, pid, t);
}

/* ---- fsdax: by mount root in the process's own table ------------------- */

static int
job_mount_of(const struct jobshm_mountinfo *mi, void *arg)
{
	struct target *t = arg;

	if (!strcmp(mi->dev, t->devs) && within(mi->root, t->root)) {
		if (!strcmp(mi->mp, "/dev/shm"))
			t->on_shm = 1;	/* a task's namespace pins it */
		if (t->n < (int)(sizeof(t->ids) / sizeof(t->ids[0])))
			t->ids[t->n++] = mi->id;
	}
	return 0;
}

static int
is_job_mount(const struct target *t, int id)
{
	for (int i = 0; i < t->n; i++)
		if (t->ids[i] == id)
			return 1;
	return 0;
}

/* The mount id of what /proc/PID/<link> leads to; -1 if none. */
static int
link_mount(int pdir, const char *link)
{
	struct statx sx;

	if (statx(pdir, link, AT_STATX_DONT_SYNC | AT_NO_AUTOMOUNT,
		  STATX_MNT_ID, &sx) < 0 ||
	    !(sx.stx_mask & STATX_MNT_ID))
		return -1;
	return (int)sx.stx_mnt_id;
}

/* 1 if what /proc/PID/<link> leads to is on one of the job's mounts. */
static int
link_on_job_mount(int pdir, const char *link, const struct target *t)
{
	return is_job_mount(t, link_mount(pdir, link));
}

static int
holds_fsdax(int pdir, const char *pid, struct target *t)
{
	char path[300];

	t->n = 0;
	t->on_shm = 0;
	snprintf(path, sizeof(path), "/proc/%s/mountinfo", pid);
	if (jobshm_mountinfo_each(path, job_mount_of, t) < 0 || t->n == 0)
		return 0;
	return t->on_shm || is_job_mount(t, link_mount(pdir, "cwd")) ||
	       is_job_mount(t, link_mount(pdir, "root")) ||
	       any_link(pdir, "fd", link_on_job_mount, t) ||
	       any_link(pdir, "map_files", link_on_job_mount, t);
}

/* 1 if the process (its /proc directory open as pdir) holds the job. */
static int
holds(int pdir, const char *pid, struct target *t)
{
	return t->fsdax ? holds_fsdax(pdir, pid, t) : holds_dev(pdir, pid, t);
}

/* ---- the target ------------------------------------------------------ */

static int
the_job_mount(const struct jobshm_mountinfo *mi, void *arg)
{
	struct target *t = arg;

	if (mi->id != t->ids[0])
		return 0;
	snprintf(t->root, sizeof(t->root), "%s", mi->root);
	return 1;
}

/* The device (and, for fsdax, the root) of the mount on the job's
 * directory; the job's kept namespace, if there is one. */
static int
find_target(const struct jobshm_job *job, struct target *t, uid_t *uid,
	    jobshm_err_t *err)
{
	struct statx sx;

	if (statx(AT_FDCWD, job->path, AT_SYMLINK_NOFOLLOW,
		  STATX_MNT_ID | STATX_UID, &sx) < 0)
		return jobshm_fail(err, "stat %s: %m", job->path);
	*uid = sx.stx_uid;
	t->dev = makedev(sx.stx_dev_major, sx.stx_dev_minor);
	snprintf(t->devs, sizeof(t->devs), "%u:%u", sx.stx_dev_major,
		 sx.stx_dev_minor);
	t->fsdax = jobshm_job_kind(job) == JOBSHM_FSDAX;
	t->ids[0] = (int)sx.stx_mnt_id;
	if (t->fsdax && jobshm_mountinfo_each("/proc/self/mountinfo",
					      the_job_mount, t) != 1)
		return jobshm_fail(err, "%s: not in /proc/self/mountinfo",
				   job->path);
	if (jobshm_mntns_stat(job, &t->ns) < 0)
		t->ns.st_ino = 0;
	if (stat("/proc/self/ns/mnt", &t->self) < 0)
		t->self.st_ino = 0;
	return 0;
}

/* 1 if the process runs as uid (real or effective), by its status file:
 * /proc/PID's owner is root for a process that is not dumpable. */
static int
runs_as(int pdir, uid_t uid)
{
	char buf[4096], *p;
	unsigned long real, eff;
	ssize_t n;
	int fd = openat(pdir, "status", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	p = strstr(buf, "\nUid:");
	if (!p || sscanf(p + 5, "%lu %lu", &real, &eff) != 2)
		return 0;
	return real == uid || eff == uid;
}

/* fn(/proc's fd, pid, arg) for each process; the sum it returns, or -1
 * if /proc cannot be read. */
static int
each_process(int (*fn)(int procfd, const char *pid, void *arg), void *arg)
{
	struct dirent *d;
	DIR *proc = opendir("/proc");
	int n = 0;

	if (!proc)
		return -1;
	while ((d = readdir(proc)))
		if (isdigit((unsigned char)d->d_name[0]))
			n += fn(dirfd(proc), d->d_name, arg);
	closedir(proc);
	return n;
}

struct reaping {
	struct target *t;
	uid_t uid;
};

/* SIGKILL through a pidfd taken before the process was examined. */
static int
kill_if_holder(int procfd, const char *pid, void *arg)
{
	struct reaping *r = arg;
	int pidfd, pdir, hit = 0;

	if (atoi(pid) == getpid())
		return 0;
	pidfd = (int)syscall(SYS_pidfd_open, atoi(pid), 0);
	if (pidfd < 0)
		return 0;
	pdir = openat(procfd, pid, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (pdir >= 0 && runs_as(pdir, r->uid) && holds(pdir, pid, r->t))
		hit = syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0) == 0;
	if (pdir >= 0)
		close(pdir);
	close(pidfd);
	return hit;
}

static int
reap_here(const struct jobshm_job *job, jobshm_err_t *err)
{
	struct reaping r = { NULL, (uid_t)-1 };
	int n;

	if (!(r.t = calloc(1, sizeof(*r.t))))
		return jobshm_fail(err, "out of memory");
	if (find_target(job, r.t, &r.uid, err) < 0) {
		free(r.t);
		return -1;
	}
	n = each_process(kill_if_holder, &r);
	free(r.t);
	return n < 0 ? jobshm_fail(err, "/proc: %m") : n;
}

/*
 * The search runs in a child under a deadline: whatever it meets (a
 * process whose maps cannot be read while its page fault waits on a
 * stalled filesystem) cannot make the job's end wait longer.  Only
 * processes of the job's user are examined, so its cost grows with
 * theirs, not with every descriptor on the node.
 */
int
jobshm_job_reap(const struct jobshm_job *job, int *killed, jobshm_err_t *err)
{
	int p[2], n = -1, status, rc;
	pid_t pid;

	*killed = 0;
	if (jobshm_job_mounted(job, err) != 1)
		return 0;
	if (pipe2(p, O_CLOEXEC) < 0)
		return jobshm_fail(err, "pipe: %m");
	if ((pid = fork()) == 0) {
		close(p[0]);
		n = reap_here(job, err);
		_exit(write(p[1], &n, sizeof(n)) == sizeof(n) ? 0 : 1);
	}
	close(p[1]);
	rc = pid < 0 ? -1 : jobshm_wait_deadline(pid, JOBSHM_HELPER_MS, &status);
	if (rc == 0 && read(p[0], &n, sizeof(n)) == sizeof(n) && n >= 0)
		*killed = n;
	close(p[0]);
	if (pid < 0)
		return jobshm_fail(err, "fork: %m");
	if (rc < 0)
		return jobshm_fail(err, "the search for the holders of job %"
				   PRIu32 " did not end within %d s (a "
				   "filesystem that does not answer?)",
				   job->jobid, JOBSHM_HELPER_MS / 1000);
	return n < 0 ? jobshm_fail(err, "the search for the holders of job %"
				   PRIu32 " failed", job->jobid) : 0;
}
