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
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rmtree_stays_in_tree),
	};

	if (geteuid() != 0) {
		printf("test_attacks: needs root (mounts, chroot): SKIPPED\n");
		return 77;
	}
	return cmocka_run_group_tests_name("attacks", tests, NULL, NULL);
}
