/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Processes of an ended job that still hold its shm (their slurmstepd
 * died, so Slurm could not kill them) keep its memory alive after the
 * unmount.  A process holds the job's shm when one of its open files,
 * its working or root directory, or a mapping is on a mount of the job's
 * filesystem whose root is within the job's (fsdax jobs share a device,
 * so the mount's root tells them apart), whatever its mount table shows
 * on /dev/shm.  Such processes of the job's user are killed through a
 * pidfd, so a recycled pid never gets the signal.
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
#include <unistd.h>

#include "internal.h"

struct target {
	char dev[32];         /* the job filesystem's "maj:min"            */
	char root[320];       /* the job mount's root in that filesystem   */
	int ids[256];         /* a process's mounts of it                  */
	int n;
	int on_shm;           /* one of them is its /dev/shm               */
};

static int
within(const char *root, const char *top)
{
	size_t n = strlen(top);

	return !strcmp(top, "/") || (!strncmp(root, top, n) &&
				     (root[n] == '\0' || root[n] == '/'));
}

static int
job_mount_of(const struct jobshm_mountinfo *mi, void *arg)
{
	struct target *t = arg;

	if (!strcmp(mi->dev, t->dev) && within(mi->root, t->root)) {
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

	if (statx(pdir, link, 0, STATX_MNT_ID, &sx) < 0 ||
	    !(sx.stx_mask & STATX_MNT_ID))
		return -1;
	return (int)sx.stx_mnt_id;
}

/* 1 if an entry of /proc/PID/<sub> (fd or map_files) is on a job mount. */
static int
any_in(int pdir, const char *sub, const struct target *t)
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
		hit = is_job_mount(t, link_mount(pdir, link));
	}
	closedir(dir);
	return hit;
}

/* 1 if the process (its /proc directory open as pdir) holds the job. */
static int
holds(int pdir, const char *pid, struct target *t)
{
	char path[300];

	t->n = 0;
	t->on_shm = 0;
	snprintf(path, sizeof(path), "/proc/%s/mountinfo", pid);
	if (jobshm_mountinfo_each(path, job_mount_of, t) < 0 || t->n == 0)
		return 0;
	return t->on_shm || is_job_mount(t, link_mount(pdir, "cwd")) ||
	       is_job_mount(t, link_mount(pdir, "root")) ||
	       any_in(pdir, "fd", t) || any_in(pdir, "map_files", t);
}

static int
the_job_mount(const struct jobshm_mountinfo *mi, void *arg)
{
	struct target *t = arg;

	if (mi->id != t->ids[0])
		return 0;
	snprintf(t->dev, sizeof(t->dev), "%s", mi->dev);
	snprintf(t->root, sizeof(t->root), "%s", mi->root);
	return 1;
}

/* The device and root of the mount on the job's directory. */
static int
find_target(const struct jobshm_job *job, struct target *t, uid_t *uid,
	    jobshm_err_t *err)
{
	struct statx sx;

	if (statx(AT_FDCWD, job->path, AT_SYMLINK_NOFOLLOW,
		  STATX_MNT_ID | STATX_UID, &sx) < 0)
		return jobshm_fail(err, "stat %s: %m", job->path);
	*uid = sx.stx_uid;
	t->ids[0] = (int)sx.stx_mnt_id;
	if (jobshm_mountinfo_each("/proc/self/mountinfo", the_job_mount,
				  t) != 1)
		return jobshm_fail(err, "%s: not in /proc/self/mountinfo",
				   job->path);
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

/* SIGKILL through a pidfd taken before the process was examined. */
static int
kill_if_holder(int procfd, const char *pid, uid_t uid, struct target *t)
{
	int pidfd, pdir, hit = 0;

	pidfd = (int)syscall(SYS_pidfd_open, atoi(pid), 0);
	if (pidfd < 0)
		return 0;
	pdir = openat(procfd, pid, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (pdir >= 0 && runs_as(pdir, uid) && holds(pdir, pid, t))
		hit = syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0) == 0;
	if (pdir >= 0)
		close(pdir);
	close(pidfd);
	return hit;
}

int
jobshm_job_reap(const struct jobshm_job *job, int *killed, jobshm_err_t *err)
{
	struct target *t;
	struct dirent *d;
	uid_t uid = (uid_t)-1;
	DIR *proc;
	int rc = 0;

	*killed = 0;
	if (jobshm_job_mounted(job, err) != 1)
		return 0;
	if (!(t = calloc(1, sizeof(*t))))
		return jobshm_fail(err, "out of memory");
	if (find_target(job, t, &uid, err) < 0 ||
	    !(proc = opendir("/proc"))) {
		rc = t->dev[0] ? jobshm_fail(err, "/proc: %m") : -1;
		free(t);
		return rc;
	}
	while ((d = readdir(proc)))
		if (isdigit((unsigned char)d->d_name[0]))
			*killed += kill_if_holder(dirfd(proc), d->d_name, uid, t);
	closedir(proc);
	free(t);
	return rc;
}
