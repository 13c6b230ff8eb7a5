/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Walk the job directories of every node name under base_path; start
 * the sweep that removes those of ended jobs. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"

static int
is_jobid(const char *s, uint32_t *id)
{
	uint64_t v;

	if (jobshm_parse_u64(s, 1, UINT32_MAX, &v, NULL) < 0)
		return 0;
	*id = (uint32_t)v;
	return 1;
}

struct mpol_at {
	const char *path;
	char *out;
	size_t len;
};

static int
mpol_of(const struct jobshm_mountinfo *mi, void *arg)
{
	struct mpol_at *m = arg;
	const char *p = strstr(mi->super, "mpol=");

	if (strcmp(mi->mp, m->path))
		return 0;
	if (p)
		snprintf(m->out, m->len, "%.*s", (int)strcspn(p + 5, ", \n"),
			 p + 5);
	return 1;
}

/* The mpol= of the mount at path, from this process's mountinfo. */
static void
mount_mpol(const char *path, char *out, size_t len)
{
	struct mpol_at m = { path, out, len };

	out[0] = '\0';
	jobshm_mountinfo_each("/proc/self/mountinfo", mpol_of, &m);
}

/*
 * 1 if <base>/<jobid>.held says the job's end left its tmpfs mounted,
 * frozen, because something still held it (job.c): nobody is looked
 * for, here or anywhere the list is read (pam_jobshm at every login).
 */
static int
held_record(const char *path)
{
	char rec[sizeof(((struct jobshm_job *)0)->path) + 8];
	struct stat st;

	snprintf(rec, sizeof(rec), "%s%s", path, JOBSHM_HELD);
	return lstat(rec, &st) == 0 && S_ISREG(st.st_mode);
}

/* A record with no mount beside it (written by jobshm 0.4, which
 * unmounted what it could not seal): nothing is left to retry. */
static void
drop_stale_held(const struct jobshm_conf *conf, const char *node,
		const char *name, jobshm_err_t *err)
{
	char base[256], path[512];
	size_t n = strlen(name) - strlen(JOBSHM_HELD);
	struct stat st, bst;

	if (jobshm_conf_base(conf, node, base, sizeof(base), err) < 0)
		return;
	snprintf(path, sizeof(path), "%s/%.*s", base, (int)n, name);
	if (lstat(base, &bst) == 0 && (lstat(path, &st) < 0 ||
				       st.st_dev == bst.st_dev)) {
		snprintf(path, sizeof(path), "%s/%s", base, name);
		unlink(path);
	}
}

static int
visit(const struct jobshm_conf *conf, const char *node, int unmarked,
      const char *name, jobshm_entry_f fn, void *arg, jobshm_err_t *err)
{
	struct jobshm_entry e;
	struct stat st;
	jobshm_err_t ignore;
	char num[16];
	uint32_t id;
	size_t n = strlen(name), h = strlen(JOBSHM_HELD);

	if (n > h && n - h < sizeof(num) && !strcmp(name + n - h, JOBSHM_HELD)) {
		snprintf(num, sizeof(num), "%.*s", (int)(n - h), name);
		if (is_jobid(num, &id))
			drop_stale_held(conf, node, name, err);
		return 0;
	}
	if (!is_jobid(name, &id))
		return 0;
	memset(&e, 0, sizeof(e));
	snprintf(e.node, sizeof(e.node), "%s", node);
	e.unmarked = unmarked;
	if (jobshm_job_init(&e.job, conf, node, id, err) < 0)
		return -1;
	if (lstat(e.job.path, &st) < 0 || !S_ISDIR(st.st_mode))
		return 0;
	e.job.uid = st.st_uid;
	e.job.gid = st.st_gid;
	e.kind = jobshm_job_kind(&e.job);
	e.mounted = e.kind != JOBSHM_NONE;
	e.held = e.mounted && held_record(e.job.path);
	if (e.held)
		snprintf(e.holders, sizeof(e.holders), "unknown");
	if (e.mounted) {
		jobshm_job_usage(&e.job, &e.size, &e.used, &ignore);
		mount_mpol(e.job.path, e.mpol, sizeof(e.mpol));
	}
	return fn(&e, arg);
}

/* The node name jobshm recorded in an open node directory; -1 if none. */
static int
read_mark(int dirfd, char *node, size_t len)
{
	char buf[128];
	struct stat st;
	ssize_t n;
	int fd = openat(dirfd, JOBSHM_NODE_MARK, O_RDONLY | O_NOFOLLOW |
			O_CLOEXEC);

	if (fd < 0)
		return -1;
	n = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == 0 ?
	    read(fd, buf, sizeof(buf) - 1) : -1;
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	snprintf(node, len, "%s", buf);
	return 0;
}

/*
 * An unmarked node directory that jobshm 0.2 or older made: root's and
 * 0700 (a directory such as /run/user is 0755), named like the node.
 */
static int
legacy_node(int fd, const char *node, char *name, size_t len)
{
	struct stat st;

	if (fstat(fd, &st) < 0 || (st.st_mode & 077))
		return 0;
	snprintf(name, len, "%s", node);
	return 1;
}

/*
 * One node directory: only one jobshm made (its marker, in a directory
 * of root's reached without links), and only for the node it names.
 */
static int
list_node(const struct jobshm_conf *conf, const char *node, jobshm_entry_f fn,
	  void *arg, jobshm_err_t *err)
{
	char base[256], marked[128];
	struct dirent *d;
	jobshm_err_t ignore;
	DIR *dir;
	int fd, rc = 0, unmarked = 0;

	if (jobshm_conf_base(conf, *node ? node : "-", base, sizeof(base),
			     err) < 0)
		return -1;
	fd = jobshm_open_dir(base, 0, &ignore);
	if (fd < 0)
		return 0;	/* absent, or not ours */
	if (read_mark(fd, marked, sizeof(marked)) < 0)
		unmarked = legacy_node(fd, node, marked, sizeof(marked)) ? 1 : -1;
	if (unmarked < 0 || (*node && strcmp(marked, node)) ||
	    !(dir = fdopendir(fd))) {
		close(fd);
		return 0;
	}
	while (rc >= 0 && (d = readdir(dir)))
		rc = visit(conf, marked, unmarked, d->d_name, fn, arg, err);
	closedir(dir);
	return rc;
}

int
jobshm_list(const struct jobshm_conf *conf, jobshm_entry_f fn, void *arg,
	    jobshm_err_t *err)
{
	char parent[256];
	struct dirent *d;
	DIR *dir;
	int rc = 0;

	if (!strstr(conf->base_path, "%n"))
		return list_node(conf, "", fn, arg, err);
	if (jobshm_conf_top(conf, parent, sizeof(parent)) < 0)
		return jobshm_fail(err, "base_path too long");
	dir = opendir(parent);
	if (!dir)
		return errno == ENOENT ? 0 : jobshm_fail(err, "%s: %m", parent);
	while (rc >= 0 && (d = readdir(dir))) {
		if (d->d_name[0] == '.')
			continue;
		rc = list_node(conf, d->d_name, fn, arg, err);
	}
	closedir(dir);
	return rc;
}

int
jobshm_sweep_start(const char *cli, const char *conf_path, jobshm_err_t *err)
{
	pid_t pid;

	if (access(cli, X_OK) < 0)
		return jobshm_fail(err, "sweep command %s: %m: the shm of jobs "
				   "that ended while slurmd was down is not "
				   "swept (install jobshm there or set cli=PATH "
				   "in plugstack.conf)", cli);
	if ((pid = fork()) == 0) {	/* detached: its parent exits now */
		setsid();
		if (fork() == 0) {
			closefrom(3);
			execl(cli, cli, "sweep", "--quiet", conf_path && *conf_path ?
			      "--conf" : NULL, conf_path, (char *)NULL);
			_exit(127);
		}
		_exit(0);
	}
	if (pid < 0)
		return jobshm_fail(err, "fork for sweep: %m");
	waitpid(pid, NULL, 0);
	return 0;
}
