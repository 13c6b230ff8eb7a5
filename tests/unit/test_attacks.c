/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The security review's attacks on root's code, each as a test (needs
 * root).  Every attack runs in a child in a private mount namespace,
 * chrooted into a scratch tmpfs where one could harm the host if the
 * code under test were wrong.
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
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <linux/fs.h>

#include "internal.h"

/* Run fn in a child: private mounts, chrooted into a fresh tmpfs. */
static int
in_scratch_root(int (*fn)(void))
{
	char root[] = "/tmp/jobshm-attack-XXXXXX";
	int status;
	pid_t pid;

	if (!mkdtemp(root))
		return -1;
	pid = fork();
	if (pid == 0) {
		if (unshare(CLONE_NEWNS) < 0 ||
		    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
		    mount("scratch", root, "tmpfs", 0, "size=256m,mode=0755") < 0 ||
		    chroot(root) < 0 || chdir("/") < 0)
			_exit(99);
		_exit(fn());
	}
	waitpid(pid, &status, 0);
	rmdir(root);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int
touch(const char *p)
{
	int fd = open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);

	return fd < 0 ? -1 : close(fd);
}

/*
 * Finding 1: a user renames the directory root is emptying to the top of
 * the job tree; root's way back up must not climb out of the tree.
 */
#define DEEP "/store/job/a/b/c/d/e/f/g/h"

static void
attacker(int ready)
{
	struct stat st;
	off_t start;
	int fd = open(DEEP, O_RDONLY | O_DIRECTORY);

	if (fd < 0 || fstat(fd, &st) < 0)
		_exit(1);
	start = st.st_size;
	if (write(ready, "x", 1) != 1)
		_exit(1);
	do {	/* root is inside once the directory shrinks */
		if (fstat(fd, &st) < 0)
			_exit(1);
	} while (st.st_size >= start);
	_exit(rename(DEEP, "/store/job/h") < 0);
}

static int
rmtree_climb(void)
{
	char p[64];
	int i, pfd[2], store, rc;
	pid_t pid;

	if (mkdir("/outer", 0755) || touch("/outer/canary") ||
	    mkdir("/store", 0700) || touch("/store/canary") ||
	    mkdir("/store/job", 0700))
		return 10;
	for (i = 0; i < 8; i++) {
		snprintf(p, sizeof(p), "%.*s", 10 + 2 * (i + 1), DEEP);
		if (mkdir(p, 0700) < 0)
			return 11;
	}
	for (i = 0; i < 30000; i++) {
		snprintf(p, sizeof(p), DEEP "/%d", i);
		if (touch(p) < 0)
			return 12;
	}
	if (pipe(pfd) < 0)
		return 13;
	pid = fork();
	if (pid == 0)
		attacker(pfd[1]);
	if (read(pfd[0], p, 1) != 1)
		return 14;
	store = open("/store", O_RDONLY | O_DIRECTORY);
	rc = jobshm_rmtree_at(store, "job");
	waitpid(pid, &i, 0);
	if (access("/outer/canary", F_OK) < 0 ||
	    access("/store/canary", F_OK) < 0)
		return 1;	/* root left the tree */
	if (!WIFEXITED(i) || WEXITSTATUS(i) != 0)
		return 15;	/* the attack did not happen: no test */
	return rc == 0 && access("/store/job", F_OK) < 0 ? 0 : 2;
}

static void
test_rmtree_stays_in_tree(void **state)
{
	(void)state;
	assert_int_equal(in_scratch_root(rmtree_climb), 0);
}

/* ---- the job tmpfs under a scratch base -------------------------------- */

#include "scratch.h"

/* A process of the job's user that holds the tmpfs in one way: 'f' an
 * open file, 'c' its working directory, 'm' a mapping only. */
static pid_t
holder(const struct jobshm_job *job, char how)
{
	char p[16];
	int fd, dir, ready[2];
	pid_t pid;

	assert_int_equal(pipe(ready), 0);
	pid = fork();
	if (pid == 0) {	/* the job dir as a task has it, through /dev/shm */
		close(ready[0]);
		dir = open(job->path, O_RDONLY | O_DIRECTORY);
		if (dir < 0 || setgid(65534) < 0 || setuid(65534) < 0)
			_exit(1);
		snprintf(p, sizeof(p), "held-%c", how);
		fd = openat(dir, p, O_CREAT | O_RDWR, 0600);
		if (fd < 0 || ftruncate(fd, 1 << 20) < 0)
			_exit(2);
		if (how == 'm' && (mmap(NULL, 1 << 20, PROT_READ, MAP_SHARED,
					fd, 0) == MAP_FAILED || close(fd) < 0))
			_exit(3);
		if (how == 'c' && (close(fd) < 0 || fchdir(dir) < 0))
			_exit(4);
		close(dir);
		if (write(ready[1], "x", 1) != 1)
			_exit(5);
		pause();
		_exit(0);
	}
	close(ready[1]);
	assert_int_equal(read(ready[0], p, 1), 1);
	close(ready[0]);
	return pid;
}

/*
 * Finding 4: processes that hold the job's tmpfs without having it on
 * /dev/shm in their mount table (an fd kept across a pivot_root, a cwd,
 * a mapping) are found and killed by the reaper (which fsdax jobs' end
 * runs; a tmpfs job's end needs it not: test_end.c).
 */
static void
test_reaper_finds_every_holder(void **state)
{
	struct jobshm_job job;
	jobshm_err_t err;
	const char *how = "fcm";
	pid_t pid[3];
	int i, status;

	(void)state;
	job_for(&job, "r1", 301);
	assert_int_equal(jobshm_job_setup(&job, JOBSHM_TMPFS, 4 << 20, NULL, &err), 0);
	for (i = 0; i < 3; i++)
		pid[i] = holder(&job, how[i]);
	assert_int_equal(jobshm_job_reap(&job, &status, &err), 0);
	assert_int_equal(status, 3);
	assert_int_equal(jobshm_job_cleanup(&job, &err), 0);
	for (i = 0; i < 3; i++) {
		int t = 0, done;

		while (!(done = waitpid(pid[i], &status, WNOHANG)) && t++ < 100)
			usleep(20000);
		if (!done) {	/* survived the cleanup: the finding stands */
			for (int j = i; j < 3; j++) {
				kill(pid[j], SIGKILL);
				waitpid(pid[j], &status, 0);
			}
			fail_msg("holder '%c' survived the cleanup", how[i]);
		}
		assert_true(WIFSIGNALED(status));
		assert_int_equal(WTERMSIG(status), SIGKILL);
	}
}

/*
 * Finding 5: base_path under a sticky world-writable directory, where a
 * user made the next component a link: root creates and mounts nothing
 * at the link's target.
 */
static void
test_base_path_never_follows_a_users_link(void **state)
{
	struct jobshm_conf c = conf;
	struct jobshm_job job;
	jobshm_err_t err;
	char sticky[96], link[128], elsewhere[96], p[160];
	pid_t pid;
	int status;

	(void)state;
	snprintf(sticky, sizeof(sticky), "%s/sticky", top);
	snprintf(elsewhere, sizeof(elsewhere), "%s/elsewhere", top);
	snprintf(link, sizeof(link), "%s/base", sticky);
	assert_int_equal(mkdir(sticky, 01777), 0);
	assert_int_equal(chmod(sticky, 01777), 0);
	assert_int_equal(mkdir(elsewhere, 0777), 0);
	pid = fork();
	if (pid == 0)	/* the user plants the link */
		_exit(setuid(65534) < 0 || symlink(elsewhere, link) < 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(WEXITSTATUS(status), 0);
	snprintf(c.base_path, sizeof(c.base_path), "%s/%%n", link);
	assert_int_equal(jobshm_job_init(&job, &c, "n1", 302, &err), 0);
	job.uid = job.gid = 65534;
	assert_int_equal(jobshm_job_setup(&job, JOBSHM_TMPFS, 1 << 20, NULL, &err), -1);
	snprintf(p, sizeof(p), "%s/n1", elsewhere);
	assert_int_equal(access(p, F_OK), -1);
}

/* Finding 5: a base of root's that others can read is made 0700, so
 * no user can open it to take its lock. */
static void
test_base_is_root_only(void **state)
{
	struct jobshm_job job;
	jobshm_err_t err;
	struct stat st;
	char base[96];

	(void)state;
	snprintf(base, sizeof(base), "%s/n2", top);
	assert_int_equal(mkdir(base, 0755), 0);
	job_for(&job, "n2", 303);
	assert_int_equal(jobshm_job_setup(&job, JOBSHM_TMPFS, 1 << 20, NULL, &err), 0);
	assert_int_equal(stat(base, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(jobshm_job_cleanup(&job, &err), 0);
}

static int
collect(const struct jobshm_entry *e, void *arg)
{
	char *seen = arg;
	size_t n = strlen(seen);

	snprintf(seen + n, 256 - n, "%u@%s ", e->job.jobid, e->node);
	return 0;
}

/*
 * Finding 5: with base_path = "/run/%n", /run/user/1000 is not job 1000
 * of node "user": sweep and status see only node directories jobshm
 * made, and learn the Slurm node name from them (not gethostname()).
 */
static void
test_list_only_what_jobshm_made(void **state)
{
	struct jobshm_conf c = conf;
	struct jobshm_job job;
	jobshm_err_t err;
	char p[128], seen[256] = "";

	(void)state;
	snprintf(p, sizeof(p), "%s/user", top);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/user/1000", top);
	assert_int_equal(mkdir(p, 0700), 0);
	job_for(&job, "n3", 304);
	assert_int_equal(jobshm_job_setup(&job, JOBSHM_TMPFS, 1 << 20, NULL, &err), 0);
	assert_int_equal(jobshm_list(&conf, collect, seen, &err), 0);
	assert_string_equal(seen, "304@n3 ");
	assert_int_equal(jobshm_job_cleanup(&job, &err), 0);

	/* without %n: the node name is the one the plugin was given */
	snprintf(c.base_path, sizeof(c.base_path), "%s/single", top);
	assert_int_equal(jobshm_job_init(&job, &c, "slurm-name-7", 305, &err), 0);
	job.uid = job.gid = 65534;
	assert_int_equal(jobshm_job_setup(&job, JOBSHM_TMPFS, 1 << 20, NULL, &err), 0);
	seen[0] = '\0';
	assert_int_equal(jobshm_list(&c, collect, seen, &err), 0);
	assert_string_equal(seen, "305@slurm-name-7 ");
	assert_int_equal(jobshm_job_cleanup(&job, &err), 0);
}

/* Finding 6: NUMA nodes 0,2,...,62: no list is cut, and the mount
 * options keep their huge= whole. */
static void
test_long_node_lists_are_whole(void **state)
{
	char xml[128], want[256] = "";
	struct jobshm_topo t;
	struct jobshm_mpol m = { JOBSHM_MPOL_INTERLEAVE, "" };
	struct jobshm_placement pl;
	struct jobshm_conf c = conf;
	struct jobshm_job job;
	char opts[JOBSHM_TMPFS_OPTS];
	jobshm_err_t err;
	FILE *f;
	int i;

	(void)state;
	snprintf(xml, sizeof(xml), "%s/sparse.xml", top);
	f = fopen(xml, "w");
	assert_non_null(f);
	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<!DOCTYPE topology SYSTEM \"hwloc2.dtd\">\n"
		"<topology version=\"2.0\">\n<object type=\"Machine\" "
		"os_index=\"0\" cpuset=\"0xffffffff\" complete_cpuset="
		"\"0xffffffff\" allowed_cpuset=\"0xffffffff\" nodeset="
		"\"0x55555555,0x55555555\" complete_nodeset=\"0x55555555,"
		"0x55555555\" allowed_nodeset=\"0x55555555,0x55555555\" "
		"gp_index=\"1\">\n");
	for (i = 0; i < 32; i++) {
		char cpu[16], node[32];

		snprintf(cpu, sizeof(cpu), "0x%08x", 1u << i);
		if (2 * i < 32)
			snprintf(node, sizeof(node), "0x%08x", 1u << (2 * i));
		else
			snprintf(node, sizeof(node), "0x%08x,0x0",
				 1u << (2 * i - 32));
		fprintf(f, "<object type=\"Package\" os_index=\"%d\" "
			"cpuset=\"%s\" complete_cpuset=\"%s\" nodeset=\"%s\" "
			"complete_nodeset=\"%s\" gp_index=\"%d\">\n"
			"<object type=\"NUMANode\" os_index=\"%d\" cpuset=\"%s\" "
			"complete_cpuset=\"%s\" nodeset=\"%s\" complete_nodeset="
			"\"%s\" gp_index=\"%d\" local_memory=\"1073741824\"/>\n"
			"<object type=\"Core\" os_index=\"%d\" cpuset=\"%s\" "
			"complete_cpuset=\"%s\" nodeset=\"%s\" complete_nodeset="
			"\"%s\" gp_index=\"%d\"><object type=\"PU\" os_index="
			"\"%d\" cpuset=\"%s\" complete_cpuset=\"%s\" nodeset="
			"\"%s\" complete_nodeset=\"%s\" gp_index=\"%d\"/>"
			"</object>\n</object>\n", i, cpu, cpu, node, node,
			10 + 4 * i, 2 * i, cpu, cpu, node, node, 11 + 4 * i, i,
			cpu, cpu, node, node, 12 + 4 * i, i, cpu, cpu, node,
			node, 13 + 4 * i);
		snprintf(want + strlen(want), sizeof(want) - strlen(want),
			 "%s%d", i ? "," : "", 2 * i);
	}
	fprintf(f, "</object>\n</topology>\n");
	fclose(f);
	assert_int_equal(jobshm_topo_probe(xml, NULL, &t, &err), 0);
	assert_string_equal(t.all, want);
	assert_string_equal(t.near, want);
	snprintf(c.huge, sizeof(c.huge), "within_size");
	assert_int_equal(jobshm_place(&m, NULL, &t, &pl, &err), 0);
	assert_int_equal(jobshm_job_init(&job, &c, "n1", 308, &err), 0);
	assert_int_equal(jobshm_tmpfs_opts(&job, 1 << 20, pl.opts, opts,
					   sizeof(opts), &err), 0);
	assert_non_null(strstr(opts, want));
	assert_non_null(strstr(opts, ",huge=within_size"));
	assert_string_equal(strstr(opts, "huge="), "huge=within_size");
}

/*
 * Finding 2: a later step's --nvram-options goes through admission:
 * persistent memory never grows a job's shm, 2LM meets max_size, and a
 * first 1LM on PMem NUMA nodes meets their capacity.
 */
static void
test_every_size_is_admitted(void **state)
{
	struct jobshm_conf c;
	struct jobshm_request r = { 0 };
	jobshm_err_t err;
	uint64_t b;

	(void)state;
	jobshm_conf_defaults(&c);
	c.max_size.percent = 0;
	c.max_size.bytes = 4ULL << 30;
	r.job_mem = 1ULL << 30;
	r.current = 512ULL << 20;
	r.nvram.mode = 1;
	r.nvram.bytes = 100ULL << 30;
	assert_int_equal(jobshm_admit_request(&c, &r, &b, &err), -1);
	assert_non_null(strstr(err.msg, "cannot grow"));
	r.nvram.mode = 2;
	assert_int_equal(jobshm_admit_request(&c, &r, &b, &err), -1);
	assert_non_null(strstr(err.msg, "max_size"));
	r.current = 0;
	r.nvram.mode = 1;
	r.pmem = 8ULL << 30;
	assert_int_equal(jobshm_admit_request(&c, &r, &b, &err), -1);
	assert_non_null(strstr(err.msg, "persistent memory"));
	r.nvram.bytes = 4ULL << 30;
	assert_int_equal(jobshm_admit_request(&c, &r, &b, &err), 0);
	assert_int_equal(b, 4ULL << 30);
}

/* Finding 3: an nvram path that is not a mounted filesystem (the fsdax
 * mount is missing) is refused, and nothing lands on the root disk. */
static void
test_nvram_path_must_be_a_mount(void **state)
{
	struct jobshm_conf c = conf;
	struct jobshm_job job;
	jobshm_err_t err;
	char p[200];

	(void)state;
	snprintf(c.nvram_paths[0], sizeof(c.nvram_paths[0]), "%s/nomount", top);
	c.n_nvram_paths = 1;
	assert_int_equal(mkdir(c.nvram_paths[0], 0755), 0);
	assert_int_equal(jobshm_job_init(&job, &c, "n4", 306, &err), 0);
	job.uid = job.gid = 65534;
	assert_int_equal(jobshm_job_setup(&job, JOBSHM_FSDAX, 4 << 20, NULL, &err), -1);
	assert_non_null(strstr(err.msg, "not a mounted filesystem"));
	snprintf(p, sizeof(p), "%s/.jobshm", c.nvram_paths[0]);
	assert_int_equal(access(p, F_OK), -1);
	assert_int_equal(jobshm_job_mounted(&job, &err), 0);
}

/* The user of job directory dirfd moves it out of its project and
 * writes 64 MiB: 0 if a quota stopped the writes before 32 MiB. */
static int
escape_project_and_fill(int dirfd)
{
	struct fsxattr fx;
	char buf[1 << 20];
	int fd, i;

	if (setgid(65534) < 0 || setuid(65534) < 0)
		return 10;
	if (ioctl(dirfd, FS_IOC_FSGETXATTR, &fx) == 0) {
		fx.fsx_projid = 0;	/* chproj 0; chattr -P */
		fx.fsx_xflags &= ~(unsigned)FS_XFLAG_PROJINHERIT;
		ioctl(dirfd, FS_IOC_FSSETXATTR, &fx);
	}
	fd = openat(dirfd, "fill", O_CREAT | O_WRONLY, 0600);
	if (fd < 0)
		return 11;
	memset(buf, 'x', sizeof(buf));
	for (i = 0; i < 64; i++)
		if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf) ||
		    fsync(fd) < 0)
			return i < 32 ? 0 : 12;
	return 1;	/* 64 MiB on a 16 MiB reservation */
}

/*
 * Finding 3: the owner of the fsdax job directory changes its project id
 * and clears the inherit flag; the user's quota (the sum of their
 * reservations) still stops them.  A loop-mounted XFS with user and
 * project quotas.
 */
static void
test_fsdax_quota_cannot_be_escaped(void **state)
{
	struct jobshm_conf c = conf;
	struct jobshm_job job;
	jobshm_err_t err;
	char cmd[512], mnt[96];
	int status, dirfd;
	pid_t pid;

	(void)state;
	if (loop_mount("pmemx", "512M", "mkfs.xfs -q -f", "loop,uquota,prjquota",
		       mnt, sizeof(mnt)) < 0)
		skip();	/* no XFS with quotas here */
	snprintf(c.nvram_paths[0], sizeof(c.nvram_paths[0]), "%s", mnt);
	c.n_nvram_paths = 1;
	assert_int_equal(jobshm_job_init(&job, &c, "n5", 307, &err), 0);
	job.uid = job.gid = 65534;
	assert_int_equal(jobshm_job_setup(&job, JOBSHM_FSDAX, 16 << 20, NULL, &err), 0);
	dirfd = open(job.path, O_RDONLY | O_DIRECTORY);
	assert_true(dirfd >= 0);
	pid = fork();
	if (pid == 0)
		_exit(escape_project_and_fill(dirfd));
	close(dirfd);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	status = WEXITSTATUS(status);
	assert_int_equal(jobshm_job_cleanup(&job, &err), 0);
	snprintf(cmd, sizeof(cmd), "umount %s", mnt);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(status, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rmtree_stays_in_tree),
		cmocka_unit_test(test_reaper_finds_every_holder),
		cmocka_unit_test(test_base_path_never_follows_a_users_link),
		cmocka_unit_test(test_base_is_root_only),
		cmocka_unit_test(test_list_only_what_jobshm_made),
		cmocka_unit_test(test_long_node_lists_are_whole),
		cmocka_unit_test(test_every_size_is_admitted),
		cmocka_unit_test(test_nvram_path_must_be_a_mount),
		cmocka_unit_test(test_fsdax_quota_cannot_be_escaped),
	};

	if (geteuid() != 0) {
		printf("test_attacks: needs root (mounts, chroot): SKIPPED\n");
		return 77;
	}
	return cmocka_run_group_tests_name("attacks", tests, setup, teardown);
}
