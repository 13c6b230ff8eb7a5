/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests of the mechanism on real tmpfs mounts (needs root). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "jobshm.h"
#include "internal.h"

#include "scratch.h"

static void
test_setup_grow_cleanup(void **state)
{
	struct jobshm_job job;
	jobshm_err_t err;
	uint64_t size, used;
	struct stat st;

	(void)state;
	job_for(&job, "n1", 7);
	assert_int_equal(jobshm_job_mounted(&job, &err), 0);
	assert_int_equal(jobshm_job_setup(&job, JOBSHM_TMPFS, 8 << 20, NULL, &err), 0);
	assert_int_equal(jobshm_job_mounted(&job, &err), 1);
	assert_int_equal(stat(job.path, &st), 0);
	assert_int_equal(st.st_uid, 65534);
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_int_equal(jobshm_job_usage(&job, &size, &used, &err), 0);
	assert_int_equal(size, 8 << 20);
	/* a second step asking more grows it; asking less never shrinks */
	assert_int_equal(jobshm_job_setup(&job, JOBSHM_TMPFS, 16 << 20, NULL, &err), 0);
	assert_int_equal(jobshm_job_usage(&job, &size, &used, &err), 0);
	assert_int_equal(size, 16 << 20);
	assert_int_equal(jobshm_job_setup(&job, JOBSHM_TMPFS, 4 << 20, NULL, &err), 0);
	assert_int_equal(jobshm_job_usage(&job, &size, &used, &err), 0);
	assert_int_equal(size, 16 << 20);
	assert_int_equal(jobshm_job_cleanup(&job, &err), 0);
	assert_int_equal(jobshm_job_mounted(&job, &err), 0);
	assert_int_equal(lstat(job.path, &st), -1);
	/* cleaning what is not there is not an error */
	assert_int_equal(jobshm_job_cleanup(&job, &err), 0);
}

static void
test_cleanup_never_follows_links(void **state)
{
	struct jobshm_job job;
	jobshm_err_t err;
	char victim[96], p[512];
	struct stat st;
	int i, fd;

	(void)state;
	snprintf(victim, sizeof(victim), "%s/victim", top);
	fd = open(victim, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	job_for(&job, "n1", 8);
	assert_int_equal(jobshm_job_setup(&job, JOBSHM_TMPFS, 8 << 20, NULL, &err), 0);
	snprintf(p, sizeof(p), "%s/link", job.path);
	assert_int_equal(symlink(victim, p), 0);
	snprintf(p, sizeof(p), "%s/dirlink", job.path);
	assert_int_equal(symlink(top, p), 0);
	snprintf(p, sizeof(p), "%s/fifo", job.path);
	assert_int_equal(mkfifo(p, 0600), 0);
	snprintf(p, sizeof(p), "%s/d", job.path);
	for (i = 0; i < 40 && mkdir(p, 0700) == 0; i++)
		strcat(p, "/d");
	assert_int_equal(jobshm_job_cleanup(&job, &err), 0);
	assert_int_equal(lstat(victim, &st), 0);
	assert_int_equal(lstat(top, &st), 0);
	assert_int_equal(lstat(job.path, &st), -1);
}

static void
test_refuses_unsafe_base(void **state)
{
	struct jobshm_job job;
	jobshm_err_t err;
	char base[96];

	(void)state;
	job_for(&job, "n2", 9);
	snprintf(base, sizeof(base), "%s/n2", top);
	assert_int_equal(mkdir(base, 0777), 0);
	chmod(base, 0777);
	assert_int_equal(jobshm_job_setup(&job, JOBSHM_TMPFS, 1 << 20, NULL, &err), -1);
	assert_non_null(strstr(err.msg, "writable by root only"));
	assert_int_equal(jobshm_job_mounted(&job, &err), 0);
	rmdir(base);
	/* a base that is a symlink is refused too */
	assert_int_equal(symlink("/tmp", base), 0);
	assert_int_equal(jobshm_job_setup(&job, JOBSHM_TMPFS, 1 << 20, NULL, &err), -1);
	unlink(base);
}

static void
test_enter_binds_over_target(void **state)
{
	struct jobshm_job job;
	jobshm_err_t err;
	char target[96], marker[512];
	pid_t pid;
	int status, fd;

	(void)state;
	job_for(&job, "n3", 10);
	assert_int_equal(jobshm_job_setup(&job, JOBSHM_TMPFS, 2 << 20, NULL, &err), 0);
	snprintf(marker, sizeof(marker), "%s/marker", job.path);
	fd = open(marker, O_CREAT | O_WRONLY, 0600);
	close(fd);
	snprintf(target, sizeof(target), "%s/target", top);
	assert_int_equal(mkdir(target, 0755), 0);
	pid = fork();
	if (pid == 0) {
		struct statvfs sv;

		if (jobshm_mntns_enter(&job, target, &err) < 0)
			_exit(1);
		snprintf(marker, sizeof(marker), "%s/marker", target);
		if (access(marker, F_OK) < 0 || statvfs(target, &sv) < 0 ||
		    sv.f_blocks * sv.f_frsize != 2 << 20)
			_exit(2);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(WEXITSTATUS(status), 0);
	/* the bind stayed inside the child's namespace */
	snprintf(marker, sizeof(marker), "%s/marker", target);
	assert_int_equal(access(marker, F_OK), -1);
	assert_int_equal(jobshm_job_cleanup(&job, &err), 0);
}

/* In a child: join job, report the namespace's inode and the cwd kept. */
static ino_t
join_in_child(const struct jobshm_job *job, const char *target,
	      const char *cwd)
{
	int pfd[2], status;
	ino_t ino = 0;
	pid_t pid;

	assert_int_equal(pipe(pfd), 0);
	pid = fork();
	if (pid == 0) {
		jobshm_err_t err;
		char here[256], marker[512];
		struct stat st;

		if (chdir(cwd) < 0 || jobshm_mntns_join(job, target, &err) != 0)
			_exit(1);
		snprintf(marker, sizeof(marker), "%s/marker", target);
		if (!getcwd(here, sizeof(here)) || strcmp(here, cwd) ||
		    access(marker, F_OK) < 0 ||
		    stat("/proc/self/ns/mnt", &st) < 0)
			_exit(2);
		if (write(pfd[1], &st.st_ino, sizeof(st.st_ino)) < 0)
			_exit(3);
		_exit(0);
	}
	close(pfd[1]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(read(pfd[0], &ino, sizeof(ino)), sizeof(ino));
	close(pfd[0]);
	return ino;
}

/* Count the mounts of this namespace whose mount point starts with s. */
static int
mounts_under(const char *s)
{
	char line[1024], mp[512];
	int n = 0;
	FILE *f = fopen("/proc/self/mountinfo", "r");

	while (f && fgets(line, sizeof(line), f))
		n += sscanf(line, "%*s %*s %*s %*s %511s", mp) == 1 &&
		     !strncmp(mp, s, strlen(s));
	if (f)
		fclose(f);
	return n;
}

static void
test_join_keeps_one_namespace_per_job(void **state)
{
	struct jobshm_job job, other;
	jobshm_err_t err;
	char target[96], marker[512], ns[512];
	struct stat self;
	ino_t a, b, c;

	(void)state;
	job_for(&job, "n6", 20);
	job_for(&other, "n6", 21);
	assert_int_equal(jobshm_job_setup(&job, JOBSHM_TMPFS, 2 << 20, NULL, &err), 0);
	assert_int_equal(jobshm_job_setup(&other, JOBSHM_TMPFS, 2 << 20, NULL, &err), 0);
	snprintf(marker, sizeof(marker), "%s/marker", job.path);
	close(open(marker, O_CREAT | O_WRONLY, 0600));
	snprintf(marker, sizeof(marker), "%s/marker", other.path);
	close(open(marker, O_CREAT | O_WRONLY, 0600));
	snprintf(target, sizeof(target), "%s/target", top);
	mkdir(target, 0755);
	/* the first task makes it, a later one (after the first has gone)
	 * joins the same, kept without a process; cwd is kept in both */
	a = join_in_child(&job, target, "/tmp");
	b = join_in_child(&job, target, "/usr");
	assert_int_equal(stat("/proc/self/ns/mnt", &self), 0);
	assert_true(a == b);
	assert_true(a != self.st_ino);
	/* another job gets a namespace of its own */
	c = join_in_child(&other, target, "/");
	assert_true(c != a);
	/* the holder is a root-only, private mount: nothing propagated */
	snprintf(ns, sizeof(ns), "%s.ns", job.path);
	assert_int_equal(stat(ns, &self), 0);
	assert_int_equal(self.st_mode & 07777, 0700);
	assert_int_equal(mounts_under(ns), 2);
	/* the job's end releases it */
	assert_int_equal(jobshm_job_cleanup(&job, &err), 0);
	assert_int_equal(access(ns, F_OK), -1);
	assert_int_equal(mounts_under(ns), 0);
	assert_int_equal(jobshm_job_cleanup(&other, &err), 0);
	snprintf(ns, sizeof(ns), "%s/", top);	/* top itself is a mount */
	assert_int_equal(mounts_under(ns), 0);
}

/* A holder that is a link to another namespace is never followed; a plain
 * file left where the holder goes is replaced by a kept namespace. */
static void
test_join_never_follows_a_planted_holder(void **state)
{
	struct jobshm_job job;
	jobshm_err_t err;
	char target[96], ns[512], link[600], other[64];
	struct stat st;
	int pfd[2], status;
	pid_t sleeper, pid;
	ino_t joined;

	(void)state;
	job_for(&job, "n7", 30);
	assert_int_equal(jobshm_job_setup(&job, JOBSHM_TMPFS, 2 << 20, NULL, &err), 0);
	snprintf(target, sizeof(target), "%s/target", top);
	mkdir(target, 0755);
	assert_int_equal(pipe(pfd), 0);
	sleeper = fork();
	if (sleeper == 0) {	/* a namespace of someone else's */
		char c = unshare(CLONE_NEWNS) == 0;

		if (write(pfd[1], &c, 1) < 0)
			_exit(1);
		alarm(60);	/* gone even if the test fails */
		pause();
		_exit(0);
	}
	close(pfd[1]);
	assert_int_equal(read(pfd[0], ns, 1), 1);
	assert_int_equal(ns[0], 1);
	close(pfd[0]);
	snprintf(other, sizeof(other), "/proc/%d/ns/mnt", (int)sleeper);
	snprintf(ns, sizeof(ns), "%s.ns", job.path);
	/* (setup made it: the job's lock) */
	assert_true(mkdir(ns, 0700) == 0 || errno == EEXIST);
	snprintf(link, sizeof(link), "%s/mnt", ns);
	assert_int_equal(symlink(other, link), 0);
	pid = fork();
	if (pid == 0)		/* must not end up in the sleeper's */
		_exit(jobshm_mntns_join(&job, target, &err) == 0 ? 3 : 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(lstat(link, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	/* a plain file there: made into the job's kept namespace */
	assert_int_equal(unlink(link), 0);
	close(open(link, O_CREAT | O_WRONLY, 0600));
	close(open(strcat(strcpy(ns, job.path), "/marker"),
		   O_CREAT | O_WRONLY, 0600));
	joined = join_in_child(&job, target, "/");
	assert_int_equal(stat(other, &st), 0);
	assert_true(joined != st.st_ino);
	kill(sleeper, SIGKILL);
	waitpid(sleeper, NULL, 0);
	assert_int_equal(jobshm_job_cleanup(&job, &err), 0);
}

static int
count(const struct jobshm_entry *e, void *arg)
{
	(*(int *)arg) += e->mounted && e->size == (4 << 20);
	return 0;
}

static void
test_list(void **state)
{
	struct jobshm_job a, b;
	jobshm_err_t err;
	int n = 0;

	(void)state;
	job_for(&a, "n4", 11);
	job_for(&b, "n5", 12);
	assert_int_equal(jobshm_job_setup(&a, JOBSHM_TMPFS, 4 << 20, NULL, &err), 0);
	assert_int_equal(jobshm_job_setup(&b, JOBSHM_TMPFS, 4 << 20, NULL, &err), 0);
	assert_int_equal(jobshm_list(&conf, count, &n, &err), 0);
	assert_int_equal(n, 2);
	jobshm_job_cleanup(&a, &err);
	jobshm_job_cleanup(&b, &err);
}

/* The device of path's filesystem as seen by this process (0: none). */
static dev_t
dev_of(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? st.st_dev : 0;
}

/* In a task (forked from the process that set the step up): enter, then
 * 0 if /dev/shm is the job's mount. */
static int
task(const struct jobshm_job *job, const struct jobshm_step *s, dev_t dev)
{
	jobshm_err_t err;
	pid_t pid = fork();
	int status;

	if (pid == 0)
		_exit(jobshm_task_enter(job, s, &err) < 0 ? 1 :
		      dev_of("/dev/shm") != dev ? 2 : 0);
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

/*
 * One call per step: placed, admitted, made, then grown by a later step
 * and never shrunk; a refused request changes nothing; the decision and
 * the task environment come from the library, huge= from the
 * configuration (not from the caller).
 */
static void
test_step_setup_makes_grows_and_refuses(void **state)
{
	struct jobshm_conf c = conf;
	struct jobshm_job job;
	struct jobshm_step s = { .shm = "8M" };
	jobshm_err_t err;
	char buf[64];
	const char *name;
	uint64_t size, used;

	(void)state;
	snprintf(c.huge, sizeof(c.huge), "never");
	assert_int_equal(jobshm_job_init(&job, &c, "n8", 20, &err), 0);
	job.uid = job.gid = 65534;
	assert_int_equal(jobshm_step_setup(&job, &s, &err), 0);
	assert_int_equal(s.kind, JOBSHM_TMPFS);
	assert_int_equal(s.bytes, 8 << 20);
	assert_int_equal(s.before, 0);
	assert_non_null(strstr(s.decision, "admitted 8M (--shm=8M"));
	assert_non_null(strstr(s.decision, ",huge=never'"));
	assert_int_equal(jobshm_job_usage(&job, &size, &used, &err), 0);
	assert_int_equal(size, 8 << 20);
	name = jobshm_step_env(&job, &s, 1, buf, sizeof(buf));
	assert_string_equal(name, "JOBSHM_SIZE");
	assert_string_equal(buf, "8388608");
	name = jobshm_step_env(&job, &s, 2, buf, sizeof(buf));
	assert_string_equal(buf, "jobshm.20.");
	/* a later step: grows, never shrinks; without --shm keeps it */
	s = (struct jobshm_step){ .shm = "16M" };
	assert_int_equal(jobshm_step_setup(&job, &s, &err), 0);
	assert_int_equal(s.before, 8 << 20);
	assert_int_equal(s.bytes, 16 << 20);
	s = (struct jobshm_step){ .shm = "0" };
	assert_int_equal(jobshm_step_setup(&job, &s, &err), 0);
	assert_int_equal(s.kind, JOBSHM_TMPFS);
	assert_int_equal(s.bytes, 16 << 20);
	/* the user's mistakes: refused with the reason, nothing changed */
	s = (struct jobshm_step){ .shm = "16M", .job_mem = 8 << 20 };
	assert_int_equal(jobshm_step_setup(&job, &s, &err), -1);
	assert_non_null(strstr(err.msg, "job's memory"));
	assert_int_equal(s.kind, JOBSHM_NONE);
	s = (struct jobshm_step){ .shm = "8M", .mpol = "bind:7" };
	assert_int_equal(jobshm_step_setup(&job, &s, &err), -1);
	assert_non_null(strstr(err.msg, "--shm-mpol=bind:7"));
	assert_int_equal(jobshm_job_usage(&job, &size, &used, &err), 0);
	assert_int_equal(size, 16 << 20);
	assert_int_equal(jobshm_job_cleanup(&job, &err), 0);
	/* no --shm and no default: no private shm, nothing to export */
	s = (struct jobshm_step){ 0 };
	assert_int_equal(jobshm_step_setup(&job, &s, &err), 0);
	assert_int_equal(s.kind, JOBSHM_NONE);
	assert_null(jobshm_step_env(&job, &s, 0, buf, sizeof(buf)));
	assert_int_equal(jobshm_job_mounted(&job, &err), 0);
}

/*
 * One call per task: a task forked from the process that set the step up
 * joins the job's namespace (made once); with before_fork, the setting-up
 * thread is in it already and its tasks are forked inside.  Either way
 * /dev/shm is the job's mount, and the caller's namespace is untouched.
 */
static void
test_task_enter_each_way(void **state)
{
	struct jobshm_job job;
	struct jobshm_step s = { .shm = "4M" };
	struct stat st;
	jobshm_err_t err;
	dev_t host = dev_of("/dev/shm"), dev;
	int status;
	pid_t pid;

	(void)state;
	job_for(&job, "n9", 21);
	assert_int_equal(jobshm_step_setup(&job, &s, &err), 0);
	assert_int_equal(s.job_ns, 0);
	dev = dev_of(job.path);
	assert_true(dev != 0 && dev != host);
	assert_int_equal(task(&job, &s, dev), 0);
	assert_int_equal(task(&job, &s, dev), 0);
	assert_int_equal(dev_of("/dev/shm"), host);
	assert_int_equal(jobshm_mntns_stat(&job, &st), 0);
	/* slurmstepd's way: set up before the fork, in a process of its own */
	pid = fork();
	if (pid == 0) {
		struct jobshm_step t = { .shm = "4M", .before_fork = 1 };

		if (jobshm_step_setup(&job, &t, &err) < 0 || !t.job_ns ||
		    t.job_ns != st.st_ino ||
		    !strstr(t.decision, "; tasks forked in the job's namespace"))
			_exit(1);
		_exit(task(&job, &t, dev) == 0 ? 0 : 2);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(WEXITSTATUS(status), 0);
	/* a job container's presence keeps the thread where it is */
	pid = fork();
	if (pid == 0) {
		struct jobshm_step t = { .shm = "4M", .before_fork = 1,
					 .container = 1 };

		_exit(jobshm_step_setup(&job, &t, &err) < 0 || t.job_ns ||
		      !strstr(t.decision, "a job container") ? 1 : 0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(jobshm_job_cleanup(&job, &err), 0);
	assert_int_equal(jobshm_mntns_stat(&job, &st), -1);
}

/* Lines of a process's mount table. */
static int
table_size(pid_t pid)
{
	char path[64], line[1024];
	int n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/mountinfo", (int)pid);
	if (!(f = fopen(path, "r")))
		return -1;
	while (fgets(line, sizeof(line), f))
		n++;
	fclose(f);
	return n;
}

/* A task of job in its namespace that stays until killed. */
static pid_t
resident(const struct jobshm_job *job, const char *target)
{
	int ready[2];
	pid_t pid;
	char c;

	if (pipe(ready) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		jobshm_err_t err;

		close(ready[0]);
		if (jobshm_mntns_join(job, target, &err) < 0 ||
		    write(ready[1], "x", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(ready[1]);
	if (read(ready[0], &c, 1) != 1)
		pid = -1;
	close(ready[0]);
	return pid;
}

/* In a namespace whose mounts are shared, as on a systemd node. */
static int
later_jobs_stay_out(void)
{
	struct jobshm_job job[4];
	jobshm_err_t err;
	char target[96];
	int i, before, after;
	pid_t a;

	if (unshare(CLONE_NEWNS) < 0 ||
	    mount(NULL, "/", NULL, MS_REC | MS_SHARED, NULL) < 0)
		return 10;
	snprintf(target, sizeof(target), "%s/target", top);
	mkdir(target, 0755);
	for (i = 0; i < 4; i++) {
		job_for(&job[i], "n9", 60 + i);
		if (i == 0 && jobshm_job_setup(&job[0], JOBSHM_TMPFS, 1 << 20,
					       NULL, &err) < 0)
			return 11;
	}
	if ((a = resident(&job[0], target)) < 0)
		return 12;
	before = table_size(a);
	for (i = 1; i < 4; i++)
		if (jobshm_job_setup(&job[i], JOBSHM_TMPFS, 1 << 20, NULL,
				     &err) < 0)
			return 13;
	after = table_size(a);
	kill(a, SIGKILL);
	waitpid(a, NULL, 0);
	for (i = 0; i < 4; i++)
		jobshm_job_cleanup(&job[i], &err);
	return after == before ? 0 : 20 + after - before;
}

/*
 * Issue 24: on a node whose root is mounted shared, a job's namespace
 * (a slave of the host's) received every later job's tmpfs mount: the
 * tables grew as jobs^2.  The top of base_path is a private mount, so a
 * running job's table does not change when later jobs start.
 */
static void
test_later_jobs_never_reach_a_jobs_namespace(void **state)
{
	int status;
	pid_t pid;

	(void)state;
	pid = fork();
	if (pid == 0)
		_exit(later_jobs_stay_out());
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* Mounts of a process at dir (*at) and below it (*under). */
static void
mounts_of(pid_t pid, const char *dir, int *at, int *under)
{
	char path[64], line[1024], mp[512];
	size_t n = strlen(dir);
	FILE *f;

	*at = *under = 0;
	snprintf(path, sizeof(path), "/proc/%d/mountinfo", (int)pid);
	if (!(f = fopen(path, "r")))
		return;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%*s %*s %*s %*s %511s", mp) == 1 &&
		    !strncmp(mp, dir, n))
			mp[n] == '\0' ? (*at)++ : mp[n] == '/' ? (*under)++ : 0;
	fclose(f);
}

/*
 * Issue 24: a job's new namespace drops the copy of base_path's top --
 * jobshm's bind of that directory on itself -- with every other job's
 * mount under it, in one detach; a filesystem of the admin's at the top
 * stays (only the jobs' mounts below it go).
 */
static void
test_namespace_drops_jobshms_own_top(void **state)
{
	struct jobshm_conf admin = conf;
	struct jobshm_job a, b, c, d;
	jobshm_err_t err;
	char target[96], fs[96];
	int at, under, shm, below;
	pid_t t;

	(void)state;
	/* beside the top, as /dev/shm is (a target under it keeps it) */
	snprintf(target, sizeof(target), "%s.target", top);
	mkdir(target, 0755);
	job_for(&a, "n8", 70);
	job_for(&b, "n8", 71);
	assert_int_equal(jobshm_job_setup(&a, JOBSHM_TMPFS, 1 << 20, NULL, &err), 0);
	assert_int_equal(jobshm_job_setup(&b, JOBSHM_TMPFS, 1 << 20, NULL, &err), 0);
	assert_true((t = resident(&b, target)) > 0);
	mounts_of(t, top, &at, &under);
	mounts_of(t, target, &shm, &below);
	kill(t, SIGKILL);
	waitpid(t, NULL, 0);
	assert_int_equal(at, 0);	/* jobshm's own bind: gone, */
	assert_int_equal(under, 0);	/* and both jobs' mounts with it */
	assert_int_equal(shm, 1);	/* the job's own, on target */
	/* the admin's filesystem at the top */
	snprintf(fs, sizeof(fs), "%s/adminfs", top);
	mkdir(fs, 0755);
	assert_int_equal(mount("adminfs", fs, "tmpfs", 0, "size=1m,mode=0755"), 0);
	snprintf(admin.base_path, sizeof(admin.base_path), "%s/%%n", fs);
	assert_int_equal(jobshm_job_init(&c, &admin, "n8", 72, &err), 0);
	assert_int_equal(jobshm_job_init(&d, &admin, "n8", 73, &err), 0);
	c.uid = c.gid = d.uid = d.gid = 65534;
	assert_int_equal(jobshm_job_setup(&c, JOBSHM_TMPFS, 1 << 20, NULL, &err), 0);
	assert_int_equal(jobshm_job_setup(&d, JOBSHM_TMPFS, 1 << 20, NULL, &err), 0);
	assert_true((t = resident(&d, target)) > 0);
	mounts_of(t, fs, &at, &under);
	kill(t, SIGKILL);
	waitpid(t, NULL, 0);
	assert_int_equal(at, 1);	/* the admin's: kept */
	assert_int_equal(under, 0);	/* the jobs' under it: gone */
	assert_int_equal(jobshm_job_cleanup(&a, &err), 0);
	assert_int_equal(jobshm_job_cleanup(&b, &err), 0);
	assert_int_equal(jobshm_job_cleanup(&c, &err), 0);
	assert_int_equal(jobshm_job_cleanup(&d, &err), 0);
	umount2(fs, MNT_DETACH);
	rmdir(target);
}

/* A child running fn(job, target); its pid. */
static pid_t
in_child(int (*fn)(const struct jobshm_job *, const char *),
	 const struct jobshm_job *job, const char *target)
{
	pid_t pid = fork();

	if (pid == 0) {
		closefrom(3);	/* a lock held by the test is not its */
		_exit(fn(job, target) == 0 ? 0 : 1);
	}
	return pid;
}

static int
join_only(const struct jobshm_job *job, const char *target)
{
	jobshm_err_t err;

	return jobshm_mntns_join(job, target, &err);
}

static int
setup_only(const struct jobshm_job *job, const char *target)
{
	jobshm_err_t err;

	(void)target;
	return jobshm_job_setup(job, JOBSHM_TMPFS, 1 << 20, NULL, &err);
}

static int
cleanup_only(const struct jobshm_job *job, const char *target)
{
	jobshm_err_t err;

	(void)target;
	return jobshm_job_cleanup(job, &err);
}

/* The child's exit status if it ends within ms, else -1 (still going). */
static int
ends_within(pid_t pid, int ms)
{
	int status, i;

	for (i = 0; i <= ms; i += 10) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
		usleep(10000);
	}
	return -1;
}

/* Within ms: the child's status, or -1 (it is killed). */
static int
ends_or_killed(pid_t pid, int ms)
{
	int rc = ends_within(pid, ms);

	if (rc == -1) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	return rc;
}

/* A lock on the file or directory at path (made if need be); its fd. */
static int
hold_lock(const char *path, int dir)
{
	int fd;

	if (dir)
		mkdir(path, 0700);
	fd = dir ? open(path, O_RDONLY | O_DIRECTORY) :
	     open(path, O_RDWR | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(flock(fd, LOCK_EX), 0);
	return fd;
}

/* The lock let go, then the child's status once it ends within ms (-1,
 * the child killed, if it does not). */
static int
unlock_then_end(pid_t pid, int ms, int lock)
{
	int rc;

	close(lock);
	if ((rc = ends_within(pid, ms)) == -1) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	return rc;
}

/*
 * Issue 24: a job's namespace is made under a lock of the job's own
 * (its <jobid>.ns), not the node's base lock, so that a node's starting
 * jobs do not queue behind each other's; the job's end holds it, and a
 * task that comes after the end makes nothing.
 */
static void
test_jobs_make_namespaces_side_by_side(void **state)
{
	struct jobshm_job a, b, c;
	jobshm_err_t err;
	char target[96], path[512], ans[512], bns[512], amnt[512];
	int base_lock, lock, rc, made, mounted, gone;
	pid_t p;

	(void)state;
	snprintf(target, sizeof(target), "%s/target", top);
	mkdir(target, 0755);
	job_for(&a, "n10", 90);
	job_for(&b, "n10", 91);
	job_for(&c, "n10", 92);
	snprintf(ans, sizeof(ans), "%s.ns", a.path);
	snprintf(amnt, sizeof(amnt), "%s.ns/mnt", a.path);
	snprintf(bns, sizeof(bns), "%s.ns", b.path);
	assert_int_equal(jobshm_job_setup(&a, JOBSHM_TMPFS, 1 << 20, NULL, &err), 0);
	assert_int_equal(jobshm_job_setup(&b, JOBSHM_TMPFS, 1 << 20, NULL, &err), 0);
	snprintf(path, sizeof(path), "%s/n10/.jobshm-nscpu", top);
	lock = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_int_equal(write(lock, "99999\n", 6), 6);	/* no such CPU */
	close(lock);
	/* the node's base lock held (an fsdax job's setup) and a's own (a
	 * task of a making its namespace): b's namespace is made, and c's
	 * tmpfs made and removed, all the same */
	snprintf(path, sizeof(path), "%s/n10/.jobshm-lock", top);
	base_lock = hold_lock(path, 0);
	lock = hold_lock(ans, 1);
	rc = ends_or_killed(in_child(join_only, &b, target), 5000);
	made = ends_or_killed(in_child(setup_only, &c, target), 5000);
	mounted = jobshm_job_mounted(&c, &err);
	gone = ends_or_killed(in_child(cleanup_only, &c, target), 5000);
	close(base_lock);
	close(lock);
	assert_int_equal(rc, 0);
	assert_int_equal(made, 0);
	assert_int_equal(mounted, 1);
	assert_int_equal(gone, 0);
	assert_int_equal(jobshm_job_mounted(&c, &err), 0);
	/* a's own lock held: a task of a waits (nothing made meanwhile),
	 * then joins what was made */
	lock = hold_lock(ans, 1);
	p = in_child(join_only, &a, target);
	rc = ends_within(p, 300);
	made = access(amnt, F_OK) == 0;
	if (rc == -1)
		rc = unlock_then_end(p, 5000, lock);
	else
		close(lock);
	assert_false(made);
	assert_int_equal(rc, 0);
	assert_int_equal(access(amnt, F_OK), 0);
	/* the job's end waits for a task making its namespace */
	lock = hold_lock(bns, 1);
	p = in_child(cleanup_only, &b, target);
	rc = ends_within(p, 300);
	mounted = jobshm_job_mounted(&b, &err);
	if (rc == -1)
		rc = unlock_then_end(p, 5000, lock);
	else
		close(lock);
	assert_int_equal(mounted, 1);
	assert_int_equal(rc, 0);
	assert_int_equal(access(bns, F_OK), -1);
	/* a task after the job's end makes no namespace for it */
	p = in_child(join_only, &b, target);
	assert_int_equal(ends_within(p, 5000), 1);
	assert_int_equal(access(bns, F_OK), -1);
	assert_int_equal(jobshm_job_cleanup(&a, &err), 0);
	assert_int_equal(access(ans, F_OK), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_setup_grow_cleanup),
		cmocka_unit_test(test_cleanup_never_follows_links),
		cmocka_unit_test(test_refuses_unsafe_base),
		cmocka_unit_test(test_enter_binds_over_target),
		cmocka_unit_test(test_join_keeps_one_namespace_per_job),
		cmocka_unit_test(test_join_never_follows_a_planted_holder),
		cmocka_unit_test(test_list),
		cmocka_unit_test(test_step_setup_makes_grows_and_refuses),
		cmocka_unit_test(test_task_enter_each_way),
		cmocka_unit_test(test_later_jobs_never_reach_a_jobs_namespace),
		cmocka_unit_test(test_namespace_drops_jobshms_own_top),
		cmocka_unit_test(test_jobs_make_namespaces_side_by_side),
	};

	if (geteuid() != 0) {
		printf("test_job: needs root (mounts tmpfs); skipped\n");
		return 0;
	}
	return cmocka_run_group_tests_name("job", tests, setup, teardown);
}
