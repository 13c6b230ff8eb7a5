/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A job's end that needs nobody (issue 30): whatever a user keeps of the
 * job's tmpfs, and however it is hidden, the end frees the job's memory,
 * freezes what is left, never fails for it, and never waits for anyone.
 * Each attack is run as the attacker would (needs root: mounts,
 * namespaces, setuid).  Jobs belong to user nobody (65534), as in
 * scratch.h.
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
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <linux/fuse.h>

#include "internal.h"
#include "scratch.h"

#define NOBODY 65534
#define MiB (1 << 20)

static char target[96];	/* where a task of the test has the job's shm */

static void
tell(int fd)
{
	if (write(fd, "x", 1) != 1)
		_exit(90);
}

static int
hear(int fd)
{
	char c;

	return read(fd, &c, 1) == 1 ? 0 : -1;
}

static void
stop(pid_t pid)
{
	int status;

	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
}

static void
job_with_target(struct jobshm_job *job, const char *node, uint32_t id)
{
	jobshm_err_t err;

	snprintf(target, sizeof(target), "%s/target", top);
	mkdir(target, 0755);
	job_for(job, node, id);
	assert_int_equal(jobshm_job_setup(job, JOBSHM_TMPFS, 16 * MiB, NULL,
					  &err), 0);
}

/* Bytes the job's tmpfs holds now (its superblock, wherever mounted). */
static uint64_t
held_bytes(const struct jobshm_job *job)
{
	struct statvfs v;

	assert_int_equal(statvfs(job->path, &v), 0);
	return (uint64_t)(v.f_blocks - v.f_bfree) * v.f_frsize;
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
		if (fd < 0 || posix_fallocate(fd, 0, 8 * MiB) != 0)
			_exit(2);
		close(fd);
		tell(ready[1]);
		execl("/bin/sleep", "sleep", "600", (char *)NULL);
		_exit(3);
	}
	close(ready[1]);
	assert_int_equal(hear(ready[0]), 0);
	close(ready[0]);
	usleep(100000);	/* exec'd */
	return pid;
}

static int
send_fd(int sock, int fd)
{
	char c = 'f', ctl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { &c, 1 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1,
			    .msg_control = ctl, .msg_controllen = sizeof(ctl) };
	struct cmsghdr *h = CMSG_FIRSTHDR(&m);

	h->cmsg_level = SOL_SOCKET;
	h->cmsg_type = SCM_RIGHTS;
	h->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(h), &fd, sizeof(int));
	return sendmsg(sock, &m, 0) == 1 ? 0 : -1;
}

static int
recv_fd(int sock)
{
	char c, ctl[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { &c, 1 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1,
			    .msg_control = ctl, .msg_controllen = sizeof(ctl) };
	struct cmsghdr *h;
	int fd;

	if (recvmsg(sock, &m, 0) != 1 || !(h = CMSG_FIRSTHDR(&m)) ||
	    h->cmsg_type != SCM_RIGHTS)
		return -1;
	memcpy(&fd, CMSG_DATA(h), sizeof(int));
	return fd;
}

struct outsider {
	pid_t pid;
	int go;       /* write: the job has ended            */
	int ready;    /* read: set up; then: it cannot grow   */
};

/*
 * The hidden holder: the job's user, outside the job, opens the task's
 * file through /proc/<task>/root, parks the descriptor in a unix socket
 * of its own (SCM_RIGHTS) and closes its copy: its fd table shows a
 * socket only.  After the job's end it takes the descriptor back, checks
 * that the file is empty and that 4 MiB more cannot be written (exit
 * status: what it found), and waits.
 */
static void
hidden_holder(pid_t t, struct outsider *o)
{
	int ready[2], g[2];

	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(g), 0);
	o->pid = fork();
	if (o->pid == 0) {
		char p[192];
		struct stat st;
		int sv[2], fd;
		ssize_t w = 0, n;
		static char buf[MiB];

		close(ready[0]);
		close(g[1]);
		snprintf(p, sizeof(p), "/proc/%d/root%s/data", (int)t, target);
		if (setgid(NOBODY) < 0 || setuid(NOBODY) < 0 ||
		    socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) < 0 ||
		    (fd = open(p, O_RDWR)) < 0 || send_fd(sv[0], fd) < 0 ||
		    close(fd) < 0)
			_exit(1);
		tell(ready[1]);
		if (hear(g[0]) < 0 || (fd = recv_fd(sv[1])) < 0)
			_exit(2);
		if (fstat(fd, &st) < 0)
			_exit(3);
		if (st.st_size > 0 || st.st_blocks > 0)
			_exit(5);	/* the job's data is still there */
		memset(buf, 'x', sizeof(buf));
		for (int i = 0; i < 4; i++) {
			n = pwrite(fd, buf, sizeof(buf), (off_t)i * MiB);
			if (n <= 0)
				break;
			w += n;
		}
		if (w >= 4 * MiB)
			_exit(4);	/* it grew again */
		tell(ready[1]);
		pause();
		_exit(0);
	}
	close(ready[1]);
	close(g[0]);
	assert_int_equal(hear(ready[0]), 0);
	o->go = g[1];
	o->ready = ready[0];
}

/* After the end: the outsider found the file empty and could not grow
 * it (it then waits, holding it); else fails with what it found. */
static void
outsider_got_nothing(struct outsider *o)
{
	int status;

	assert_int_equal(write(o->go, "x", 1), 1);
	close(o->go);
	if (hear(o->ready) == 0) {
		close(o->ready);
		return;
	}
	close(o->ready);
	assert_int_equal(waitpid(o->pid, &status, 0), o->pid);
	fail_msg("a holder kept the job's memory (exit %d: 5-8 data left, "
		 "4, 7, 9 grew again)", WIFEXITED(status) ?
		 WEXITSTATUS(status) : -1);
}

static int
find_held(const struct jobshm_entry *e, void *arg)
{
	struct jobshm_entry *out = arg;

	if (e->job.jobid == out->job.jobid)
		*out = *e;
	return 0;
}

/* The job as jobshm_list (status, sweep, pam) sees it. */
static struct jobshm_entry
listed(uint32_t id)
{
	struct jobshm_entry e;
	jobshm_err_t err;

	memset(&e, 0, sizeof(e));
	e.job.jobid = id;
	assert_int_equal(jobshm_list(&conf, find_held, &e, &err), 0);
	return e;
}

/* Sweep's retry once the holder has let go: all gone. */
static void
retried_and_gone(const struct jobshm_job *job)
{
	jobshm_err_t err;
	struct stat st;
	char rec[400];

	assert_int_equal(jobshm_job_cleanup(job, &err), 0);
	assert_int_equal(jobshm_job_mounted(job, &err), 0);
	snprintf(rec, sizeof(rec), "%s.held", job->path);
	assert_int_equal(lstat(rec, &st), -1);
	assert_int_equal(listed(job->jobid).held, 0);
}

/*
 * The SCM_RIGHTS holder: after the job's end the job's tmpfs holds at
 * most 1 MiB, cannot grow, is left mounted for sweep and listed as held
 * (holder unknown); the end does not fail.
 */
static void
test_hidden_holder_keeps_nothing(void **state)
{
	struct jobshm_job job;
	struct jobshm_entry e;
	struct outsider o;
	jobshm_err_t err;
	pid_t t;

	(void)state;
	job_with_target(&job, "e1", 3001);
	t = task(&job);
	hidden_holder(t, &o);
	stop(t);	/* Slurm kills the job's tasks */
	assert_int_equal(jobshm_job_cleanup(&job, &err), 1);
	assert_non_null(strstr(err.msg, "held"));
	assert_true(held_bytes(&job) <= MiB);
	outsider_got_nothing(&o);
	assert_true(held_bytes(&job) <= MiB);
	e = listed(3001);
	assert_int_equal(e.held, 1);
	assert_string_equal(e.holders, "unknown");
	assert_int_equal(jobshm_job_cleanup(&job, &err), 1);	/* sweep */
	stop(o.pid);
	retried_and_gone(&job);
}

/* A process of the job's user that holds the tmpfs in one way: 'f' an
 * open file, 'c' its working directory, 'm' a mapping only, 'r' its
 * root directory; it reports whether, after the end, what it holds is
 * empty and cannot take data (exit 0). */
static void
holder(const struct jobshm_job *job, char how, struct outsider *o)
{
	int ready[2], g[2];

	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(g), 0);
	o->pid = fork();
	if (o->pid == 0) {
		char p[16], *map = NULL;
		int fd, dir;

		close(ready[0]);
		close(g[1]);
		dir = open(job->path, O_RDONLY | O_DIRECTORY);
		if (dir < 0 || (how == 'r' && (fchdir(dir) < 0 ||
					       chroot(".") < 0)) ||
		    setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
			_exit(1);
		snprintf(p, sizeof(p), "held-%c", how);
		fd = openat(dir, p, O_CREAT | O_RDWR, 0600);
		if (fd < 0 || posix_fallocate(fd, 0, 2 * MiB) != 0)
			_exit(2);
		if (how == 'm' && ((map = mmap(NULL, 2 * MiB, PROT_READ |
					      PROT_WRITE, MAP_SHARED, fd,
					      0)) == MAP_FAILED || close(fd) < 0))
			_exit(3);
		if ((how == 'c' || how == 'r') && (close(fd) < 0 ||
						   fchdir(dir) < 0))
			_exit(4);
		close(dir);
		tell(ready[1]);
		if (hear(g[0]) < 0)
			_exit(5);
		if (how == 'f') {
			struct stat st;
			char b[4096] = { 0 };

			if (fstat(fd, &st) < 0 || st.st_blocks)
				_exit(6);
			for (int i = 0; i < 1024; i++)	/* 4 MiB */
				if (write(fd, b, sizeof(b)) < 0)
					break;
			if (fstat(fd, &st) < 0 || st.st_blocks > 2048)
				_exit(7);
		}
		if (how == 'm') {	/* its pages are gone: SIGBUS */
			pid_t c = fork();
			int st;

			if (c == 0) {	/* not cmocka's handler */
				signal(SIGBUS, SIG_DFL);
				map[MiB] = 1;
				_exit(0);
			}
			if (waitpid(c, &st, 0) != c || !WIFSIGNALED(st) ||
			    WTERMSIG(st) != SIGBUS)
				_exit(8);
		}
		if (how == 'c' || how == 'r') {
			fd = open("new", O_CREAT | O_RDWR, 0600);
			if (fd >= 0 && posix_fallocate(fd, 0, 4 * MiB) == 0)
				_exit(9);
		}
		tell(ready[1]);
		pause();
		_exit(0);
	}
	close(ready[1]);
	close(g[0]);
	assert_int_equal(hear(ready[0]), 0);
	o->go = g[1];
	o->ready = ready[0];
}

/*
 * Every kind of holder the suite knows (an open file, a working or root
 * directory, a mapping, the job's namespace through nsfs), none killed
 * or looked for: after the end the job's memory is back, what they hold
 * is empty and takes nothing new, and the end did not fail.
 */
static void
test_every_holder_holds_nothing(void **state)
{
	struct jobshm_job job;
	struct outsider o[4];
	jobshm_err_t err;
	const char *how = "fcmr";
	char p[64];
	pid_t t;
	int i, ns, rc;

	(void)state;
	job_with_target(&job, "e2", 3002);
	t = task(&job);
	snprintf(p, sizeof(p), "/proc/%d/ns/mnt", (int)t);
	ns = open(p, O_RDONLY | O_CLOEXEC);
	assert_true(ns >= 0);
	for (i = 0; i < 4; i++)
		holder(&job, how[i], &o[i]);
	stop(t);
	rc = jobshm_job_cleanup(&job, &err);
	assert_true(rc == 0 || rc == 1);
	assert_true(held_bytes(&job) <= MiB || rc == 0);
	for (i = 0; i < 4; i++)
		outsider_got_nothing(&o[i]);
	if (rc == 1)
		assert_true(held_bytes(&job) <= MiB);
	for (i = 0; i < 4; i++)
		stop(o[i].pid);
	close(ns);
	retried_and_gone(&job);
}

/* Root makes in the job's namespace the mounts a user's fusermount3
 * would stack on its /dev/shm (70: more than the end used to try). */
static void
stack_mounts(const struct jobshm_job *job, int n)
{
	pid_t pid = fork();
	int status;

	if (pid == 0) {
		jobshm_err_t err;

		if (jobshm_mntns_join(job, target, &err) != 0)
			_exit(1);
		for (int i = 0; i < n; i++)
			if (mount("stack", target, "tmpfs", 0, "size=4k") < 0)
				_exit(2);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(WEXITSTATUS(status), 0);
}

/*
 * 70 mounts stacked on the job's /dev/shm and a hidden holder (so the
 * end cannot seal and must empty the namespace): the end succeeds
 * (left for sweep, never -1: the epilog would fail and drain the node).
 */
static void
test_stacked_mounts_never_fail_the_end(void **state)
{
	struct jobshm_job job;
	struct outsider o;
	jobshm_err_t err;
	pid_t t;

	(void)state;
	job_with_target(&job, "e3", 3003);
	t = task(&job);
	hidden_holder(t, &o);
	stop(t);
	stack_mounts(&job, 70);
	assert_int_equal(jobshm_job_cleanup(&job, &err), 1);
	outsider_got_nothing(&o);
	stop(o.pid);
	retried_and_gone(&job);
}

/* A file unlinked by the user but kept open: out of every walk's
 * reach; the end still returns, frozen, and says so. */
static void
test_unlinked_file_is_frozen(void **state)
{
	struct jobshm_job job;
	jobshm_err_t err;
	char p[400];
	int fd;

	(void)state;
	job_with_target(&job, "e4", 3004);
	snprintf(p, sizeof(p), "%s/gone", job.path);
	fd = open(p, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(posix_fallocate(fd, 0, 2 * MiB), 0);
	assert_int_equal(unlink(p), 0);
	assert_int_equal(jobshm_job_cleanup(&job, &err), 1);
	/* frozen: not a byte more */
	assert_int_equal(posix_fallocate(fd, 2 * MiB, 2 * MiB), ENOSPC);
	assert_true(held_bytes(&job) <= 2 * MiB + 64 * 1024);
	assert_int_equal(listed(3004).held, 1);
	close(fd);
	retried_and_gone(&job);
}

/* A requeued run on the node where its earlier run's end left the tmpfs
 * held: refused, with the reason, while it is held (never given the
 * frozen tmpfs, and the held memory never hidden); once the holder let
 * go, it starts with an empty shm of its own size. */
static void
test_requeued_run_waits_for_the_held_shm(void **state)
{
	struct jobshm_job job;
	jobshm_err_t err;
	uint64_t size, used;
	char p[400];
	int fd, f;

	(void)state;
	job_with_target(&job, "e5", 3005);
	snprintf(p, sizeof(p), "%s/gone", job.path);
	fd = open(p, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(posix_fallocate(fd, 0, 2 * MiB), 0);
	assert_int_equal(unlink(p), 0);
	assert_int_equal(jobshm_job_cleanup(&job, &err), 1);
	assert_int_equal(listed(3005).held, 1);
	assert_int_equal(jobshm_job_setup(&job, JOBSHM_TMPFS, 16 * MiB, NULL,
					  &err), -1);
	assert_non_null(strstr(err.msg, "earlier run on this node left its "
			       "shm held"));
	assert_int_equal(listed(3005).held, 1);		/* still seen */
	close(fd);					/* let go */
	assert_int_equal(jobshm_job_setup(&job, JOBSHM_TMPFS, 16 * MiB, NULL,
					  &err), 0);
	assert_int_equal(jobshm_job_usage(&job, &size, &used, &err), 0);
	assert_int_equal(size, 16 * MiB);
	assert_int_equal(used, 0);
	snprintf(p, sizeof(p), "%s/new", job.path);
	f = open(p, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
	assert_true(f >= 0);
	assert_int_equal(posix_fallocate(f, 0, 4 * MiB), 0);
	close(f);
	assert_int_equal(listed(3005).held, 0);
	assert_int_equal(jobshm_job_cleanup(&job, &err), 0);
}

/* Extended attributes of the tmpfs's root (the user owns it) take
 * memory and no blocks: more of them than a page of names lists are
 * all removed, and the end seals and unmounts (0.4's 4 KiB list of
 * names failed with ERANGE and removed none). */
static void
test_many_root_attributes_are_all_removed(void **state)
{
	struct jobshm_job job;
	jobshm_err_t err;
	int status;
	pid_t pid;

	(void)state;
	job_with_target(&job, "e7", 3007);
	pid = fork();
	if (pid == 0) {
		char name[128], val[1024] = { 0 };
		int n = 0, dir = open(job.path, O_RDONLY | O_DIRECTORY);

		/* the root as a task has it (its /dev/shm) */
		if (dir < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
			_exit(1);
		for (int i = 0; i < 200; i++) {
			snprintf(name, sizeof(name), "user.%0100d", i);
			n += fsetxattr(dir, name, val, sizeof(val), 0) == 0;
		}
		_exit(n >= 100 ? 0 : errno == EOPNOTSUPP ? 77 : 2);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WEXITSTATUS(status) == 77) {
		jobshm_job_cleanup(&job, &err);
		skip();
	}
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(jobshm_job_cleanup(&job, &err), 0);
	assert_int_equal(jobshm_job_mounted(&job, &err), 0);
}

/* ---- a stalled FUSE file ------------------------------------------------ */

/*
 * What a user's fusermount3 would mount (made by root here): a FUSE
 * filesystem whose daemon answers until it is asked to look a name up,
 * and from then on never answers anything.  Its root's attributes are
 * never cached (attr_valid 0), so anyone who stats it after the stall
 * waits for an answer that never comes.
 */
static void
reply(int fd, uint64_t unique, int error, const void *arg, size_t len)
{
	char buf[512];
	struct fuse_out_header *h = (void *)buf;

	h->len = (uint32_t)(sizeof(*h) + len);
	h->error = error;
	h->unique = unique;
	if (len)
		memcpy(buf + sizeof(*h), arg, len);
	if (write(fd, buf, h->len) < 0)
		_exit(0);
}

static void
stalling_daemon(int fd)
{
	static char buf[1 << 17];
	int stalled = 0;

	for (;;) {
		struct fuse_in_header *in = (void *)buf;

		if (read(fd, buf, sizeof(buf)) <= 0)
			_exit(0);
		if (stalled || in->opcode == FUSE_LOOKUP) {
			stalled = 1;	/* read, never answered */
			continue;
		}
		if (in->opcode == FUSE_INIT) {
			struct fuse_init_out o = { .major = FUSE_KERNEL_VERSION,
				.minor = FUSE_KERNEL_MINOR_VERSION,
				.max_write = 4096, .max_readahead = 4096 };

			reply(fd, in->unique, 0, &o, sizeof(o));
		} else if (in->opcode == FUSE_GETATTR) {
			struct fuse_attr_out o = { .attr = { .ino = 1,
				.mode = S_IFDIR | 0755, .nlink = 2 } };

			reply(fd, in->unique, 0, &o, sizeof(o));
		} else if (in->opcode != FUSE_FORGET)
			reply(fd, in->unique, in->opcode == FUSE_ACCESS ? 0 :
			      -ENOSYS, NULL, 0);
	}
}

struct stall {
	char mnt[128];
	pid_t daemon, holder;
};

/* The mount, its daemon, and a process of the job's user sitting in it
 * (its working directory) blocked in a request that is never answered. */
static int
stall_make(struct stall *st)
{
	char opts[128];
	int fd, ready[2];

	/* where a user's mount would be: outside base_path */
	snprintf(st->mnt, sizeof(st->mnt), "/tmp/jobshm-unit-fuse-XXXXXX");
	if (!mkdtemp(st->mnt))
		return -1;
	chmod(st->mnt, 0755);
	if ((fd = open("/dev/fuse", O_RDWR | O_CLOEXEC)) < 0)
		return -1;
	snprintf(opts, sizeof(opts), "fd=%d,rootmode=40000,user_id=0,"
		 "group_id=0,allow_other", fd);
	if (mount("stall", st->mnt, "fuse", MS_NOSUID | MS_NODEV, opts) < 0) {
		close(fd);
		return -1;
	}
	if ((st->daemon = fork()) == 0)
		stalling_daemon(fd);
	close(fd);
	assert_int_equal(pipe(ready), 0);
	if ((st->holder = fork()) == 0) {
		struct stat sb;

		close(ready[0]);
		if (setgid(NOBODY) < 0 || setuid(NOBODY) < 0 ||
		    chdir(st->mnt) < 0)
			_exit(1);
		tell(ready[1]);
		stat("x", &sb);		/* never answered */
		_exit(0);
	}
	close(ready[1]);
	assert_int_equal(hear(ready[0]), 0);
	close(ready[0]);
	usleep(200000);		/* in its request */
	return 0;
}

static void
stall_end(struct stall *st)
{
	stop(st->daemon);	/* its /dev/fuse closed: the requests fail */
	stop(st->holder);
	umount2(st->mnt, MNT_DETACH);
	rmdir(st->mnt);
}

/* fn in a child within 5 s (it may not wait for the stalled file). */
static int
within_deadline(void (*fn)(void))
{
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		alarm(5);
		fn();
		_exit(0);
	}
	for (int t = 0; t < 140; t++) {	/* 7 s: it may be unkillable */
		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFEXITED(status) && WEXITSTATUS(status) == 0;
		usleep(50000);
	}
	kill(pid, SIGKILL);
	return 0;
}

static struct jobshm_job stalled_job;

static void
list_all(void)
{
	jobshm_err_t err;
	struct jobshm_entry e = { .job = { .jobid = 3006 } };

	if (jobshm_list(&conf, find_held, &e, &err) < 0 || !e.held)
		_exit(2);
}

static void
end_it(void)
{
	jobshm_err_t err;
	int killed;

	/* the held job's retried end, and the fsdax reaper's search */
	if (jobshm_job_cleanup(&stalled_job, &err) < 0)
		_exit(3);
	jobshm_job_reap(&stalled_job, &killed, &err);
}

/*
 * A stalled FUSE file of the job's user (a process sitting in a mount
 * whose daemon does not answer) while a held job is on the node: the
 * listing that pam_jobshm makes at every ssh login, status and sweep
 * make, and the job's end, all finish (0.4 stat'ed every process's cwd
 * in jobshm_list once a .held record existed: it hung there).
 */
static void
test_stalled_fuse_file_hangs_nothing(void **state)
{
	struct stall st;
	jobshm_err_t err;
	char p[400];
	int fd;

	(void)state;
	job_with_target(&stalled_job, "e6", 3006);
	snprintf(p, sizeof(p), "%s/gone", stalled_job.path);
	fd = open(p, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(unlink(p), 0);
	assert_int_equal(write(fd, "x", 1), 1);
	assert_int_equal(jobshm_job_cleanup(&stalled_job, &err), 1);
	if (stall_make(&st) < 0) {
		close(fd);
		retried_and_gone(&stalled_job);
		skip();		/* no FUSE in this kernel */
	}
	assert_true(within_deadline(list_all));
	assert_true(within_deadline(end_it));
	stall_end(&st);
	close(fd);
	retried_and_gone(&stalled_job);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hidden_holder_keeps_nothing),
		cmocka_unit_test(test_every_holder_holds_nothing),
		cmocka_unit_test(test_stacked_mounts_never_fail_the_end),
		cmocka_unit_test(test_unlinked_file_is_frozen),
		cmocka_unit_test(test_requeued_run_waits_for_the_held_shm),
		cmocka_unit_test(test_many_root_attributes_are_all_removed),
		cmocka_unit_test(test_stalled_fuse_file_hangs_nothing),
	};

	if (geteuid() != 0) {
		fprintf(stderr, "test_end: needs root (mounts, setuid)\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, setup, teardown);
}
