/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The second security audit's attacks on root's code (issue 20), each
 * run as the attacker would (needs root: mounts, namespaces, setuid).
 * Jobs belong to user nobody (65534), as in scratch.h.
 */
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
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <cmocka.h>

#include "internal.h"
#include "scratch.h"

#define NOBODY 65534

static char target[96];	/* where a task of the test has the job's shm */

static void
signal_ready(int fd)
{
	if (write(fd, "x", 1) != 1)
		_exit(90);
	close(fd);
}

static void
wait_ready(int fd)
{
	char c;

	assert_int_equal(read(fd, &c, 1), 1);
	close(fd);
}

/* 1 if pid was killed by SIGKILL within two seconds; else kills it, 0. */
static int
was_killed(pid_t pid)
{
	int status, t;

	for (t = 0; t < 100; t++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
		usleep(20000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return 0;
}

/* A task of the job: joins its namespace, becomes the user, fills
 * 8 MiB of the shm, then sleeps (exec: dumpable, as a real task is). */
static pid_t
task(const struct jobshm_job *job)
{
	int ready[2];
	pid_t pid;

	assert_int_equal(pipe(ready), 0);
	pid = fork();
	if (pid == 0) {
		jobshm_err_t err;
		char p[160];
		int fd;

		close(ready[0]);
		if (jobshm_mntns_join(job, target, &err) != 0 ||
		    setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
			_exit(1);
		snprintf(p, sizeof(p), "%s/data", target);
		fd = open(p, O_CREAT | O_RDWR, 0600);
		if (fd < 0 || posix_fallocate(fd, 0, 8 << 20) != 0)
			_exit(2);
		close(fd);
		signal_ready(ready[1]);
		execl("/bin/sleep", "sleep", "600", (char *)NULL);
		_exit(3);
	}
	close(ready[1]);
	wait_ready(ready[0]);
	usleep(100000);	/* exec'd */
	return pid;
}

/* A process that opens path (the task's, through /proc) as uid and
 * keeps it open (and flocked, with lock). */
static pid_t
locker(const char *path, uid_t uid, int flags, int lock)
{
	int ready[2], fd;
	pid_t pid;

	assert_int_equal(pipe(ready), 0);
	pid = fork();
	if (pid == 0) {
		close(ready[0]);
		if (uid && (setgid(uid) < 0 || setuid(uid) < 0))
			_exit(1);
		if ((fd = open(path, flags | O_CLOEXEC)) < 0 ||
		    (lock && flock(fd, LOCK_EX) < 0))
			_exit(2);
		signal_ready(ready[1]);
		pause();
		_exit(0);
	}
	close(ready[1]);
	wait_ready(ready[0]);
	return pid;
}

static pid_t
opener(const char *path, uid_t uid, int flags)
{
	return locker(path, uid, flags, 0);
}

static void
end_task(pid_t pid)
{
	int status;

	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
}

static void
job_with_target(struct jobshm_job *job, uint32_t id)
{
	jobshm_err_t err;

	snprintf(target, sizeof(target), "%s/target", top);
	mkdir(target, 0755);
	job_for(job, "a2", id);
	assert_int_equal(jobshm_job_setup(job, JOBSHM_TMPFS, 16 << 20, NULL, &err), 0);
}

/*
 * Item 2: a process of the same user outside the job opens the task's
 * /proc/<pid>/ns/mnt and sleeps; root keeps one too.  Neither reference
 * keeps anything of the job: the tmpfs is emptied and sealed, so the
 * namespace has nothing of the job in it and nobody need be killed.
 */
static void
test_nsfs_holder_keeps_nothing(void **state)
{
	struct jobshm_job job;
	jobshm_err_t err;
	struct stat st;
	char p[160];
	pid_t t, user, rooth;
	int ns, status;

	(void)state;
	job_with_target(&job, 2001);
	t = task(&job);
	snprintf(p, sizeof(p), "/proc/%d/ns/mnt", (int)t);
	user = opener(p, NOBODY, O_RDONLY);
	ns = open(p, O_RDONLY | O_CLOEXEC);
	assert_true(ns >= 0);
	rooth = opener(p, 0, O_RDONLY);	/* root's: not killed */
	end_task(t);
	assert_int_equal(jobshm_job_cleanup(&job, &err), 0);
	assert_false(was_killed(user));	/* it holds nothing: left alone */
	end_task(rooth);
	/* what root still holds has no job shm in it */
	rooth = fork();
	if (rooth == 0) {
		snprintf(p, sizeof(p), "%s/data", target);
		_exit(setns(ns, CLONE_NEWNS) < 0 ? 1 :
		      stat(p, &st) == 0 ? 2 : 0);
	}
	assert_int_equal(waitpid(rooth, &status, 0), rooth);
	assert_int_equal(WEXITSTATUS(status), 0);
	close(ns);
}

/* Bytes the job's tmpfs holds now (its superblock, wherever mounted). */
static uint64_t
held_bytes(const struct jobshm_job *job)
{
	struct statvfs v;

	assert_int_equal(statvfs(job->path, &v), 0);
	return (uint64_t)(v.f_blocks - v.f_bfree) * v.f_frsize;
}

/* Once the holder let go, sweep's retry of the end removes it all. */
static void
retried_and_gone(const struct jobshm_job *job)
{
	jobshm_err_t err;

	assert_int_equal(jobshm_job_cleanup(job, &err), 0);
	assert_int_equal(jobshm_job_mounted(job, &err), 0);
}

/*
 * Item 3: the same user, outside the job, opens the task's file through
 * /proc/<task>/root<target>: a mount of another namespace, so mount ids
 * never match.  Nobody looks for it: its file is emptied under it, the
 * tmpfs frozen (held: 1), and it is left alone.
 */
static void
test_fd_through_proc_root_holds_nothing(void **state)
{
	struct jobshm_job job;
	jobshm_err_t err;
	char p[192];
	pid_t t, user;

	(void)state;
	job_with_target(&job, 2002);
	t = task(&job);
	snprintf(p, sizeof(p), "/proc/%d/root%s/data", (int)t, target);
	user = opener(p, NOBODY, O_RDONLY);
	end_task(t);
	assert_int_equal(jobshm_job_cleanup(&job, &err), 1);
	assert_true(held_bytes(&job) <= 1 << 20);
	assert_false(was_killed(user));
	retried_and_gone(&job);
}

/*
 * Item 3, what a reference to nothing can do: the same user keeps a
 * descriptor of the job's shm directory (through /proc/<task>/root),
 * leaves in it what takes no data blocks (an extended attribute of its
 * root, an empty file), survives the job's end, and then finds nothing
 * kept and cannot store anything through it.
 */
static void
test_kept_directory_takes_no_data(void **state)
{
	struct jobshm_job job;
	jobshm_err_t err;
	int ready[2], go[2], status;
	char p[192];
	ssize_t w;
	pid_t t, user;

	(void)state;
	job_with_target(&job, 2008);
	t = task(&job);
	snprintf(p, sizeof(p), "/proc/%d/root%s", (int)t, target);
	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(go), 0);
	user = fork();
	if (user == 0) {
		char c;
		int fd, f;

		close(ready[0]);
		close(go[1]);
		struct statvfs v;
		static char big[60000];

		if (setgid(NOBODY) < 0 || setuid(NOBODY) < 0 ||
		    (fd = open(p, O_RDONLY | O_DIRECTORY)) < 0)
			_exit(1);
		/* memory that takes no data blocks: an attribute of the
		 * root (the user's, its owner), an empty file */
		if (fsetxattr(fd, "user.kept", big, sizeof(big), 0) < 0 &&
		    errno != EOPNOTSUPP)
			_exit(6);
		if (close(openat(fd, "empty", O_CREAT | O_RDWR, 0600)) < 0)
			_exit(7);
		signal_ready(ready[1]);
		if (read(go[0], &c, 1) != 1)
			_exit(2);
		if (fstatvfs(fd, &v) < 0 || v.f_files - v.f_ffree > 1 ||
		    fgetxattr(fd, "user.kept", big, sizeof(big)) >= 0)
			_exit(8);	/* it keeps something */
		f = openat(fd, "after", O_CREAT | O_RDWR, 0600);
		if (f < 0)
			_exit(errno == EROFS ? 0 : 3);
		_exit(posix_fallocate(f, 0, 4 << 20) == 0 ? 4 : 5);
	}
	close(ready[1]);
	close(go[0]);
	wait_ready(ready[0]);
	end_task(t);
	assert_int_equal(jobshm_job_cleanup(&job, &err), 0);
	signal(SIGPIPE, SIG_IGN);	/* it may be gone: then it fails */
	w = write(go[1], "x", 1);
	(void)w;
	close(go[1]);
	assert_int_equal(waitpid(user, &status, 0), user);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);	/* EROFS */
}

/*
 * Item 3 (first audit's finding 4): a task keeps a file of the tmpfs open
 * (1 MiB), then pivot_roots into a tmpfs of its own inside its own user
 * namespace, so that its mount table has nothing of the job: its file is
 * emptied under it all the same.
 */
static void
test_fd_kept_across_pivot_root_holds_nothing(void **state)
{
	struct jobshm_job job;
	jobshm_err_t err;
	int ready[2];
	pid_t pid;

	(void)state;
	job_with_target(&job, 2003);
	assert_int_equal(pipe(ready), 0);
	pid = fork();
	if (pid == 0) {
		char p[160];
		int fd;

		close(ready[0]);
		if (jobshm_mntns_join(&job, target, &err) != 0 ||
		    setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
			_exit(1);
		snprintf(p, sizeof(p), "%s/kept", target);
		fd = open(p, O_CREAT | O_RDWR, 0600);
		if (fd < 0 || posix_fallocate(fd, 0, 1 << 20) != 0)
			_exit(5);
		if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0)
			_exit(77);	/* no user namespaces here */
		if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
		    mount("own", "/tmp", "tmpfs", 0, NULL) < 0 ||
		    chdir("/tmp") < 0 ||
		    syscall(SYS_pivot_root, ".", ".") < 0 ||
		    umount2(".", MNT_DETACH) < 0)
			_exit(4);
		signal_ready(ready[1]);
		pause();
		_exit(0);
	}
	close(ready[1]);
	{
		char c;

		if (read(ready[0], &c, 1) != 1) {
			int status;

			waitpid(pid, &status, 0);
			close(ready[0]);
			assert_int_equal(jobshm_job_cleanup(&job, &err), 0);
			if (WEXITSTATUS(status) == 77)
				skip();
			fail_msg("the attacker could not set up: %d",
				 WEXITSTATUS(status));
		}
	}
	close(ready[0]);
	assert_int_equal(jobshm_job_cleanup(&job, &err), 1);
	assert_true(held_bytes(&job) <= 1 << 20);	/* its 1 MiB freed */
	assert_false(was_killed(pid));
	retried_and_gone(&job);
}

static int
find_held(const struct jobshm_entry *e, void *arg)
{
	struct jobshm_entry *out = arg;

	if (e->held && e->job.jobid == 2004)
		*out = *e;
	return 0;
}

/*
 * What survives cleanup is seen: a process (here root's) that keeps a
 * file of the job open leaves it listed as held, holder unknown (nobody
 * is looked for), until sweep's retry finds it let go.
 */
static void
test_what_survives_is_listed(void **state)
{
	struct jobshm_entry e;
	struct jobshm_job job;
	jobshm_err_t err;
	char p[400];
	pid_t h;

	(void)state;
	job_with_target(&job, 2004);
	snprintf(p, sizeof(p), "%s/kept", job.path);
	assert_int_equal(close(open(p, O_CREAT | O_WRONLY, 0600)), 0);
	h = opener(p, 0, O_RDONLY);
	assert_int_equal(jobshm_job_cleanup(&job, &err), 1);
	memset(&e, 0, sizeof(e));
	assert_int_equal(jobshm_list(&conf, find_held, &e, &err), 0);
	assert_int_equal(e.held, 1);
	assert_string_equal(e.holders, "unknown");
	end_task(h);
	retried_and_gone(&job);
	memset(&e, 0, sizeof(e));
	assert_int_equal(jobshm_list(&conf, find_held, &e, &err), 0);
	assert_int_equal(e.held, 0);
}

/*
 * Item 4: a base that others could read (an older install) was opened
 * by a user, who keeps the descriptor and its flock: job setup must not
 * wait on it.
 */
static void
test_user_cannot_hold_the_base_lock(void **state)
{
	struct jobshm_job job;
	jobshm_err_t err;
	char base[96];
	int status;
	pid_t user, setup;

	(void)state;
	snprintf(base, sizeof(base), "%s/a4", top);
	assert_int_equal(mkdir(base, 0755), 0);
	user = locker(base, NOBODY, O_RDONLY | O_DIRECTORY, 1);
	job_for(&job, "a4", 2005);
	setup = fork();
	if (setup == 0) {
		alarm(10);	/* a setup that waits on the user dies here */
		_exit(jobshm_job_setup(&job, JOBSHM_TMPFS, 1 << 20, NULL, &err) == 0 ? 0 : 1);
	}
	assert_int_equal(waitpid(setup, &status, 0), setup);
	end_task(user);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(jobshm_job_cleanup(&job, &err), 0);
}

/*
 * Item 4: under a sticky world-writable directory any user can make the
 * base's name first; root never makes it there, and says what to do.
 */
static void
test_no_base_made_where_users_write(void **state)
{
	struct jobshm_conf c = conf;
	struct jobshm_job job;
	jobshm_err_t err;
	char sticky[96], p[160];

	(void)state;
	snprintf(sticky, sizeof(sticky), "%s/sticky4", top);
	assert_int_equal(mkdir(sticky, 01777), 0);
	assert_int_equal(chmod(sticky, 01777), 0);
	snprintf(c.base_path, sizeof(c.base_path), "%s/base/%%n", sticky);
	assert_int_equal(jobshm_job_init(&job, &c, "n1", 2006, &err), 0);
	job.uid = job.gid = NOBODY;
	assert_int_equal(jobshm_job_setup(&job, JOBSHM_TMPFS, 1 << 20, NULL, &err), -1);
	assert_non_null(strstr(err.msg, "others can write"));
	snprintf(p, sizeof(p), "%s/base", sticky);
	assert_int_equal(access(p, F_OK), -1);
}

/*
 * Item 7: between the moment root kept the working directory and the
 * moment it enters it again (after a namespace switch), the user swaps
 * the path for a link to a directory only root can enter.  Root must
 * not end there: it enters as the user, compares, and falls back to /.
 */
static void
test_cwd_is_entered_as_the_user(void **state)
{
	char work[96], moved[96], secret[96], here[256];
	int status;
	pid_t pid;

	(void)state;
	snprintf(work, sizeof(work), "%s/work", top);
	snprintf(moved, sizeof(moved), "%s/work.old", top);
	snprintf(secret, sizeof(secret), "%s/secret", top);
	assert_int_equal(mkdir(work, 0755), 0);
	assert_int_equal(chown(work, NOBODY, NOBODY), 0);
	assert_int_equal(mkdir(secret, 0700), 0);
	pid = fork();
	if (pid == 0) {
		struct jobshm_cwd cwd;
		jobshm_err_t err;

		if (chdir(work) < 0)
			_exit(1);
		jobshm_cwd_save(&cwd);
		/* the user's move, as the user */
		if (rename(work, moved) < 0 || symlink(secret, work) < 0)
			_exit(2);
		if (jobshm_cwd_restore(&cwd, NOBODY, NOBODY, &err) < 0 ||
		    !getcwd(here, sizeof(here)))
			_exit(3);
		_exit(!strcmp(here, "/") ? 0 : !strcmp(here, secret) ? 4 : 5);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(WEXITSTATUS(status), 0);
	unlink(work);
}

/*
 * Item 5: an XFS mounted prjquota only, as the documentation once said:
 * the project cap is escapable by its owner (chproj), so a 1LM job is
 * refused there, saying which mount options would do.  Needs a kernel
 * with XFS quotas (skipped without: this suite's VM has no CONFIG_QUOTA).
 */
static void
test_fsdax_needs_user_quota(void **state)
{
	struct jobshm_conf c = conf;
	struct jobshm_job job;
	jobshm_err_t err;
	char cmd[512], mnt[96];
	int rc;

	(void)state;
	if (loop_mount("pmemp", "512M", "mkfs.xfs -q -f", "loop,prjquota",
		       mnt, sizeof(mnt)) < 0)
		skip();	/* no XFS with quotas here */
	snprintf(c.nvram_paths[0], sizeof(c.nvram_paths[0]), "%s", mnt);
	c.n_nvram_paths = 1;
	assert_int_equal(jobshm_fsdax_quota(mnt, &err), JOBSHM_QUOTA_PROJECT);
	assert_int_equal(jobshm_job_init(&job, &c, "n5", 2007, &err), 0);
	job.uid = job.gid = NOBODY;
	rc = jobshm_job_setup(&job, JOBSHM_FSDAX, 16 << 20, NULL, &err);
	snprintf(cmd, sizeof(cmd), "%s", err.msg);
	jobshm_job_cleanup(&job, &err);
	assert_non_null(strstr(cmd, "uquota,prjquota"));
	snprintf(cmd, sizeof(cmd), "umount %s", mnt);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(rc, -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nsfs_holder_keeps_nothing),
		cmocka_unit_test(test_fd_through_proc_root_holds_nothing),
		cmocka_unit_test(test_kept_directory_takes_no_data),
		cmocka_unit_test(test_fd_kept_across_pivot_root_holds_nothing),
		cmocka_unit_test(test_what_survives_is_listed),
		cmocka_unit_test(test_user_cannot_hold_the_base_lock),
		cmocka_unit_test(test_no_base_made_where_users_write),
		cmocka_unit_test(test_cwd_is_entered_as_the_user),
		cmocka_unit_test(test_fsdax_needs_user_quota),
	};

	if (geteuid() != 0) {
		printf("test_audit2: needs root (mounts, setuid): SKIPPED\n");
		return 77;
	}
	return cmocka_run_group_tests_name("audit2", tests, setup, teardown);
}
