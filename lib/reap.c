/*
 * Processes of an ended job that still hold its tmpfs (their slurmstepd
 * died, so Slurm could not kill them) keep its memory alive after the
 * unmount.  They are found by /proc/PID/mountinfo having the job's
 * mount (by device and root: fsdax jobs share a device) on /dev/shm,
 * which only the job's tasks have, and killed if they run as the job's
 * user.
 */
#include <ctype.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "internal.h"

struct mnt {
	const char *at;       /* where to look: a mount point            */
	char dev[32], root[320];
};

static int
same_mount_on_shm(const char *dev, const char *root, const char *mp,
		  const char *super, void *arg)
{
	const struct mnt *m = arg;

	(void)super;
	return !strcmp(dev, m->dev) && !strcmp(root, m->root) &&
	       !strcmp(mp, "/dev/shm");
}

/* 1 if /proc/<pid>/mountinfo has the job's mount on /dev/shm. */
static int
holds(const char *pid, struct mnt *m)
{
	char path[300];

	snprintf(path, sizeof(path), "/proc/%s/mountinfo", pid);
	return jobshm_mountinfo_each(path, same_mount_on_shm, m) == 1;
}

static int
mount_at(const char *dev, const char *root, const char *mp, const char *super,
	 void *arg)
{
	struct mnt *m = arg;

	(void)super;
	if (strcmp(mp, m->at))
		return 0;
	snprintf(m->dev, sizeof(m->dev), "%s", dev);   /* the last one wins: */
	snprintf(m->root, sizeof(m->root), "%s", root);  /* the visible one */
	return 0;
}

static int
owned_by(const char *pid, uid_t uid)
{
	char path[300];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%s", pid);
	return stat(path, &st) == 0 && st.st_uid == uid;
}

static pid_t
pid_of(const char *s)
{
	uint64_t v = 0;

	jobshm_parse_u64(s, 1, 1u << 30, &v, NULL);
	return (pid_t)v;
}

int
jobshm_job_reap(const struct jobshm_job *job, int *killed, jobshm_err_t *err)
{
	struct mnt m = { job->path, "", "" };
	struct stat st;
	struct dirent *d;
	DIR *proc;

	*killed = 0;
	if (jobshm_job_mounted(job, err) != 1)
		return 0;
	if (stat(job->path, &st) < 0)
		return jobshm_fail(err, "stat %s: %m", job->path);
	jobshm_mountinfo_each("/proc/self/mountinfo", mount_at, &m);
	if (!m.dev[0])
		return jobshm_fail(err, "%s: not in /proc/self/mountinfo",
				   job->path);
	proc = opendir("/proc");
	if (!proc)
		return jobshm_fail(err, "/proc: %m");
	while ((d = readdir(proc))) {
		if (!isdigit((unsigned char)d->d_name[0]) ||
		    !owned_by(d->d_name, st.st_uid) || !holds(d->d_name, &m))
			continue;
		if (kill(pid_of(d->d_name), SIGKILL) == 0)
			(*killed)++;
	}
	closedir(proc);
	return 0;
}
