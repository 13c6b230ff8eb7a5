/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests: the segment API in a temporary namespace. */
#define _GNU_SOURCE
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "jobshm.h"

static char dir[64];

static int
setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/dev/shm/jobshm-unit-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	setenv("JOBSHM_DIR", dir, 1);
	setenv("JOBSHM_PREFIX", "jobshm.7.", 1);
	return 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == -1;
}

static int
count(const char *name, uint64_t size, void *arg)
{
	(void)name;
	(void)size;
	(*(int *)arg)++;
	return 0;
}

static void
test_publish_once(void **state)
{
	jobshm_err_t err;
	jobshm_ns_t *ns = jobshm_ns_open(&err);
	jobshm_seg_t *a, *b, *r;
	char path[128];
	int n = 0;

	(void)state;
	assert_non_null(ns);
	assert_string_equal(jobshm_ns_note(ns), "");
	a = jobshm_seg_create(ns, "s", 4096, &err);
	b = jobshm_seg_create(ns, "s", 4096, &err);
	assert_non_null(a);
	assert_non_null(b);
	memset(jobshm_seg_addr(a), 'A', 4096);
	memset(jobshm_seg_addr(b), 'B', 4096);
	/* nothing visible before publishing */
	assert_int_equal(jobshm_seg_list(ns, count, &n, &err), 0);
	assert_int_equal(n, 0);
	assert_int_equal(jobshm_seg_publish(a, &err), 1);
	assert_int_equal(jobshm_seg_publish(b, &err), 0);	/* lost */
	r = jobshm_seg_attach(ns, "s", 0, &err);
	assert_non_null(r);
	assert_int_equal(((char *)jobshm_seg_addr(r))[4095], 'A');
	assert_int_equal(jobshm_seg_writable(r), 0);
	jobshm_seg_close(r);
	r = jobshm_seg_attach(ns, "s", JOBSHM_POPULATE, &err);	/* pre-mapped */
	assert_non_null(r);
	assert_int_equal(((char *)jobshm_seg_addr(r))[0], 'A');
	snprintf(path, sizeof(path), "%s/jobshm.7.s", dir);
	assert_int_equal(access(path, F_OK), 0);
	assert_int_equal(jobshm_seg_list(ns, count, &n, &err), 0);
	assert_int_equal(n, 1);
	jobshm_seg_close(a);
	jobshm_seg_close(b);
	jobshm_seg_close(r);
	assert_int_equal(jobshm_seg_unlink(ns, "s", &err), 0);
	assert_null(jobshm_seg_attach(ns, "s", 0, &err));
	assert_non_null(strstr(err.msg, "No such file"));
	jobshm_ns_close(ns);
}

static void
test_fill_from_file(void **state)
{
	jobshm_err_t err;
	jobshm_ns_t *ns = jobshm_ns_open(&err);
	jobshm_seg_t *s;
	char path[] = "/tmp/jobshm-fill-XXXXXX";
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "headerPAYLOAD", 13), 13);
	close(fd);
	s = jobshm_seg_create(ns, "f", 16, &err);
	assert_non_null(s);
	assert_int_equal(jobshm_seg_fill(s, 8, path, 6, 7, &err), 0);
	assert_memory_equal((char *)jobshm_seg_addr(s) + 8, "PAYLOAD", 7);
	assert_int_equal(jobshm_seg_fill(s, 10, path, 6, 7, &err), -1);
	assert_int_equal(jobshm_seg_fill(s, 0, path, 6, 8, &err), -1);
	assert_non_null(strstr(err.msg, "too short"));
	jobshm_seg_close(s);
	unlink(path);
	jobshm_ns_close(ns);
}

static void
test_names(void **state)
{
	jobshm_err_t err;
	const char *bad[] = { "", ".x", "../x", "a/b", "a b", "x\n", NULL };
	char longname[JOBSHM_NAME_MAX + 2];
	int i;

	(void)state;
	for (i = 0; bad[i]; i++)
		assert_int_equal(jobshm_name_check(bad[i], &err), -1);
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(jobshm_name_check(longname, &err), -1);
	longname[JOBSHM_NAME_MAX] = '\0';
	assert_int_equal(jobshm_name_check(longname, &err), 0);
	assert_int_equal(jobshm_name_check("data.v2_x-1", &err), 0);
}

/* Errors carry a code to branch on, whatever errno holds afterwards. */
static void
test_error_codes(void **state)
{
	jobshm_ns_t *ns;
	jobshm_err_t err;

	(void)state;
	assert_int_equal(jobshm_name_check("../x", &err), -1);
	assert_int_equal(err.code, EINVAL);
	ns = jobshm_ns_open(&err);
	assert_non_null(ns);
	assert_null(jobshm_seg_attach(ns, "no-such-segment", 0, &err));
	errno = EPERM;
	assert_int_equal(err.code, ENOENT);
	jobshm_ns_close(ns);
}

static void
test_outside_job(void **state)
{
	jobshm_err_t err;
	jobshm_ns_t *ns;

	(void)state;
	unsetenv("JOBSHM_DIR");
	ns = jobshm_ns_open(&err);
	assert_non_null(ns);
	{	/* security finding 7: the user's own directory, not the node's */
		char mine[64];

		snprintf(mine, sizeof(mine), "/dev/shm/jobshm-%u",
			 (unsigned)geteuid());
		assert_string_equal(jobshm_ns_dir(ns), mine);
	}
	assert_non_null(strstr(jobshm_ns_note(ns), "not in a jobshm job"));
	jobshm_ns_close(ns);
	setenv("JOBSHM_PREFIX", "../evil", 1);
	assert_null(jobshm_ns_open(&err));
	assert_non_null(strstr(err.msg, "JOBSHM_PREFIX"));
	setenv("JOBSHM_DIR", dir, 1);
	setenv("JOBSHM_PREFIX", "jobshm.7.", 1);
}

/*
 * Issue 20 item 8, as a real attack: another user (nobody) makes the
 * victim's /dev/shm/jobshm-<uid> first.  The victim's runtime never
 * writes into it and uses a directory of its own, which all its
 * processes find alike; when every fallback is taken it says whose.
 */
/* a victim uid and paths of this run's own (pid-derived: two runs on one
 * host never share, nor remove, each other's fixtures) */
static uid_t victim;
static char squat[64], squat1[72], victim_dir[64];

static const char *why;	/* what the victim's note must say, if anything */
static char why_buf[160];

static void
sh(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	assert_int_equal(system(cmd), 0);
}

static void
clean_victim(void)
{
	sh("rm -rf %s %s.*", squat, squat);
	if (victim_dir[0])
		sh("rm -rf %s", victim_dir);
}

/* Run fn as the victim in a child; its exit status. */
static int
as_victim(int (*fn)(void))
{
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		if (setgroups(0, NULL) < 0 || setresgid(victim, victim, victim)
		    < 0 || setresuid(victim, victim, victim) < 0)
			_exit(90);
		unsetenv("JOBSHM_DIR");
		_exit(fn());
	}
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 99;
}

/* Publish segment "s" outside a job; 0 if it lands in squat.1. */
static int
victim_publishes(void)
{
	jobshm_err_t err;
	jobshm_ns_t *ns = jobshm_ns_open(&err);
	jobshm_seg_t *s;

	if (!ns) {
		fprintf(stderr, "victim: %s\n", err.msg);
		return 1;
	}
	fprintf(stderr, "victim: %s\n", jobshm_ns_note(ns));
	if (strcmp(jobshm_ns_dir(ns), squat1) != 0)
		return 2;
	if (why && !strstr(jobshm_ns_note(ns), why))
		return 3;
	if (!(s = jobshm_seg_create(ns, "s", 4096, &err)) ||
	    jobshm_seg_publish(s, &err) != 1)
		return 4;
	jobshm_seg_close(s);
	jobshm_ns_close(ns);
	return 0;
}

/* 0 if opening the namespace fails and names the squatter and the way out. */
static int
victim_refused(void)
{
	jobshm_err_t err;
	jobshm_ns_t *ns = jobshm_ns_open(&err);
	char who[96];

	if (ns)
		return 1;
	fprintf(stderr, "victim: %s\n", err.msg);
	snprintf(who, sizeof(who), "%s belongs to uid 65534", squat);
	return !(strstr(err.msg, who) && strstr(err.msg, "JOBSHM_DIR") &&
		 err.code == EPERM);
}

static int
entries(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(d);
	return n;
}

static void
victim_init(void)
{
	victim = 61000 + (uid_t)(getpid() % 3000);
	snprintf(squat, sizeof(squat), "/dev/shm/jobshm-%u", (unsigned)victim);
	snprintf(squat1, sizeof(squat1), "%s.1", squat);
	victim_dir[0] = '\0';
}

static void
test_squatted_user_dir(void **state)
{
	struct stat st;
	char path[96];
	int i;

	(void)state;
	if (geteuid() != 0)
		skip();
	victim_init();
	clean_victim();
	assert_int_equal(mkdir(squat, 0700), 0);	/* the squat */
	assert_int_equal(chown(squat, 65534, 65534), 0);
	snprintf(why_buf, sizeof(why_buf), "%s belongs to uid 65534 (nobody), "
		 "not to you", squat);
	why = why_buf;
	assert_int_equal(as_victim(victim_publishes), 0);
	assert_int_equal(entries(squat), 0);		/* never written */
	snprintf(path, sizeof(path), "%s/jobshm.7.s", squat1);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_uid, victim);
	assert_int_equal(stat(squat1, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(unlink(path), 0);
	/* the squatter leaves: the victim's processes keep to .1 */
	assert_int_equal(rmdir(squat), 0);
	why = NULL;
	assert_int_equal(as_victim(victim_publishes), 0);
	assert_int_equal(access(squat, F_OK), -1);
	/* a link to a directory of the victim's is not followed either */
	sh("rm -rf %s", squat1);
	snprintf(victim_dir, sizeof(victim_dir), "/tmp/jobshm-unit-victim-XXXXXX");
	assert_non_null(mkdtemp(victim_dir));
	assert_int_equal(chown(victim_dir, victim, victim), 0);
	assert_int_equal(symlink(victim_dir, squat), 0);
	snprintf(why_buf, sizeof(why_buf), "%s is a link of uid 0, not a "
		 "directory", squat);
	why = why_buf;
	assert_int_equal(as_victim(victim_publishes), 0);
	assert_int_equal(entries(victim_dir), 0);
	/* every fallback taken: an error naming the squatter */
	sh("rm -rf %s %s", squat, squat1);
	for (i = 0; i < 8; i++) {
		if (i)
			snprintf(path, sizeof(path), "%s.%d", squat, i);
		else
			snprintf(path, sizeof(path), "%s", squat);
		assert_int_equal(mkdir(path, 0700), 0);
		assert_int_equal(chown(path, 65534, 65534), 0);
	}
	assert_int_equal(as_victim(victim_refused), 0);
	clean_victim();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_publish_once),
		cmocka_unit_test(test_fill_from_file),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_error_codes),
		cmocka_unit_test(test_outside_job),
		cmocka_unit_test(test_squatted_user_dir),
	};

	return cmocka_run_group_tests_name("segment", tests, setup, teardown);
}
