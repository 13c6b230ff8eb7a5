/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests: usage records, the usage log and its rotation, the
 * submit-time admission (what is certain before anything is queued),
 * and, as root on a real tmpfs, the sampler's fast window. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "jobshm.h"
#include "internal.h"

#include "scratch.h"

static void
test_full(void **state)
{
	(void)state;
	assert_true(jobshm_usage_full(256ULL << 20, 256ULL << 20));
	assert_true(jobshm_usage_full(256ULL << 20, (256ULL << 20) - 4096));
	assert_false(jobshm_usage_full(256ULL << 20, 250ULL << 20));
	/* 1% of 100G is 1G free: not full; the slack is at most 64 MiB */
	assert_false(jobshm_usage_full(100ULL << 30, 99ULL << 30));
	assert_true(jobshm_usage_full(100ULL << 30, (100ULL << 30) - (60 << 20)));
	assert_false(jobshm_usage_full(0, 0));
}

static void
test_json_round_trip(void **state)
{
	struct jobshm_usage u = { .jobid = 42, .uid = 1001, .node = "n1",
		.kind = "tmpfs", .size = 4ULL << 30, .peak = 3ULL << 30,
		.used = 1ULL << 20, .full = 2, .start = 1700000000,
		.end = 1700000100, .name = "train", .left_step = 3,
		.left_files = 2, .left_bytes = 1 << 20 }, v;
	char line[512], sum[128];

	(void)state;
	jobshm_usage_json(&u, line, sizeof(line));
	assert_string_equal(line, "{ \"job\": 42, \"node\": \"n1\", \"uid\": "
			    "1001, \"kind\": \"tmpfs\", \"size\": 4294967296, "
			    "\"peak\": 3221225472, \"final\": 1048576, \"full\""
			    ": 2, \"start\": 1700000000, \"end\": 1700000100, "
			    "\"name\": \"train\", \"left_step\": 3, \"left_files\":"
			    " 2, \"left_bytes\": 1048576 }");
	assert_int_equal(jobshm_usage_parse(line, &v), 0);
	assert_string_equal(v.name, "train");
	assert_int_equal(v.left_step, 3);
	assert_int_equal(v.left_files, 2);
	assert_int_equal(v.left_bytes, 1 << 20);
	assert_int_equal(v.jobid, 42);
	assert_string_equal(v.node, "n1");
	assert_int_equal(v.peak, u.peak);
	assert_int_equal(v.used, u.used);
	assert_int_equal(v.full, 2);
	assert_int_equal(jobshm_usage_parse("{\"job\": 1}", &v), -1);
	/* a log shipper's reordering, an added field, escapes: all read
	 * (the fixed sscanf format of 0.4 read none of them) */
	assert_int_equal(jobshm_usage_parse("{\"end\": 9, \"start\": 8, "
		"\"host\": \"x\", \"full\": 0, \"final\": 1, \"peak\": 2, "
		"\"size\": 3, \"kind\": \"tmpfs\", \"uid\": 5, \"node\": "
		"\"n\\\"1\", \"job\": 7}", &v), 0);
	assert_int_equal(v.jobid, 7);
	assert_string_equal(v.name, "");	/* 0.4's lines have none */
	assert_string_equal(v.node, "n\"1");
	assert_int_equal(v.end, 9);
	assert_int_equal(jobshm_usage_parse("{\"job\": \"7\", \"node\": 1}",
					    &v), -1);	/* mistyped */
	assert_int_equal(jobshm_usage_parse("not json", &v), -1);
	snprintf(u.node, sizeof(u.node), "a\"b\\c");	/* escaped out */
	jobshm_usage_json(&u, line, sizeof(line));
	assert_int_equal(jobshm_usage_parse(line, &v), 0);
	assert_string_equal(v.node, "a\"b\\c");
	snprintf(u.node, sizeof(u.node), "n1");
	assert_string_equal(jobshm_usage_summary(&u, sum, sizeof(sum)),
			    "n1: peak 3G of 4G (75%), full 2 times");
}

static int
count(const struct jobshm_usage *u, void *arg)
{
	(void)u;
	++*(int *)arg;
	return 0;
}

/* The epilog's logging through jobshm_usage_end needs a mounted job;
 * the log itself is exercised through a record per job, as the epilog
 * writes it, by the loader's own key. */
static void
test_log_rotation(void **state)
{
	char dir[] = "/tmp/jobshm-usage-test.XXXXXX", path[256], old[256];
	struct jobshm_conf c;
	struct jobshm_usage u = { .node = "n1", .kind = "tmpfs", .size = 1 };
	char line[512];
	struct stat st;
	int n = 0;

	(void)state;
	assert_non_null(mkdtemp(dir));
	jobshm_conf_defaults(&c);
	snprintf(c.usage_log, sizeof(c.usage_log), "%s/usage.log", dir);
	c.usage_log_max = 1024;
	snprintf(path, sizeof(path), "%s", c.usage_log);
	snprintf(old, sizeof(old), "%s.1", c.usage_log);
	for (uint32_t j = 1; j <= 12; j++) {
		jobshm_err_t err;

		u.jobid = j;
		jobshm_usage_json(&u, line, sizeof(line));
		assert_int_equal(jobshm_usage_log_append(&c, line, &err), 0);
	}
	assert_int_equal(stat(path, &st), 0);
	assert_true(st.st_size <= 1024);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(stat(old, &st), 0);
	assert_true(st.st_size <= 1024);
	assert_int_equal(jobshm_usage_log_each(&c, 12, count, &n), 0);
	assert_int_equal(n, 1);
	n = 0;
	assert_int_equal(jobshm_usage_log_each(&c, 0, count, &n), 0);
	/* the newest file whole, and the one before it (rotated when the
	 * next line would not fit) */
	assert_true((size_t)n > 1024 / (strlen(line) + 1) && n <= 12);
	/* a missing directory: the log is off, not an error */
	snprintf(c.usage_log, sizeof(c.usage_log), "%s/none/usage.log", dir);
	{
		jobshm_err_t err;

		assert_int_equal(jobshm_usage_log_append(&c, line, &err), 0);
	}
	unlink(path);
	unlink(old);
	rmdir(dir);
}

static void
test_submit_admission(void **state)
{
	struct jobshm_conf c;
	struct jobshm_request r = { .submit = 1 };
	jobshm_err_t err;
	uint64_t b;

	(void)state;
	jobshm_conf_defaults(&c);
	c.max_size = (struct jobshm_size){ .bytes = 3ULL << 30 };
	r.shm = "3500M";
	assert_int_equal(jobshm_admit_request(&c, &r, &b, &err), -1);
	assert_string_equal(err.msg, "--shm=3500M (3.4G) is larger than this "
			    "node's limit (max_size = 3G)");
	r.shm = "2G";
	r.job_mem = 1ULL << 30;
	assert_int_equal(jobshm_admit_request(&c, &r, &b, &err), -1);
	assert_non_null(strstr(err.msg, "larger than the job's memory"));
	r.shm = "90%";		/* a share: the node decides */
	assert_int_equal(jobshm_admit_request(&c, &r, &b, &err), 0);
	assert_int_equal(b, 0);
	r.shm = NULL;		/* default_size: the node's */
	assert_int_equal(jobshm_admit_request(&c, &r, &b, &err), 0);
	c.max_size = (struct jobshm_size){ .percent = 1 };	/* node's RAM */
	r.shm = "3500M";
	r.job_mem = 0;
	assert_int_equal(jobshm_admit_request(&c, &r, &b, &err), 0);
	r.submit = 0;		/* on the node: refused */
	assert_int_equal(jobshm_admit_request(&c, &r, &b, &err), -1);
}

static void
ms_sleep(long ms)
{
	struct timespec t = { ms / 1000, ms % 1000 * 1000000L };

	while (nanosleep(&t, &t) < 0 && errno == EINTR)
		;
}

static double
secs(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* A file made in the shm, written until it is full, and gone 100 ms
 * later: far less than the interval (an hour here), seen because the
 * file's making opened a fast window.  The window then closes: no
 * samples while nothing happens. */
static void
test_fast_window_sees_a_brief_fill(void **state)
{
	static char buf[1 << 20];
	struct jobshm_job job;
	struct jobshm_usage u;
	jobshm_err_t err;
	jobshm_sampler_t *s;
	unsigned long n, fast, ev, n2, f2, e2;
	unsigned full;
	char path[400];
	int fd, w;

	(void)state;
	job_for(&job, "n1", 31);
	assert_int_equal(jobshm_job_setup(&job, JOBSHM_TMPFS, 8 << 20, NULL,
					  &err), 0);
	s = jobshm_sampler_start(&job, 3600, &err);
	assert_non_null(s);
	jobshm_sampler_counts(s, &n, &fast, &ev, &w);
	assert_int_equal(w, 1);
	assert_int_equal(n, 0);
	snprintf(path, sizeof(path), "%s/seg", job.path);
	fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	while (write(fd, buf, sizeof(buf)) > 0)
		;
	assert_int_equal(errno, ENOSPC);
	ms_sleep(100);
	close(fd);
	unlink(path);
	ms_sleep(30);
	assert_int_equal(jobshm_sampler_now(s, &u, &full), 0);
	assert_int_equal(full, 1);
	assert_int_equal(u.size, 8 << 20);
	assert_true(jobshm_usage_full(u.size, u.peak));
	assert_true(u.used < (1 << 20));
	jobshm_sampler_counts(s, &n, &fast, &ev, &w);
	assert_true(ev >= 1);
	assert_true(fast >= 10);
	ms_sleep(400);		/* the window: 250 ms after the last event */
	jobshm_sampler_counts(s, &n, &fast, &ev, &w);
	ms_sleep(300);
	jobshm_sampler_counts(s, &n2, &f2, &e2, &w);
	assert_int_equal(n2, n);
	assert_int_equal(w, 1);
	jobshm_sampler_stop(s);
	assert_int_equal(jobshm_job_cleanup(&job, &err), 0);
}

/* A job that makes files without end: fast samples as fast as 1 ms
 * while the budget lasts (2000), then no more than 200 a second. */
static void
test_fast_window_is_bounded(void **state)
{
	struct jobshm_job job;
	jobshm_err_t err;
	jobshm_sampler_t *s;
	unsigned long n, fast, ev, n2, f2, e2;
	char path[400];
	double start, t1 = 0, t2 = 0;
	int w, fd, i = 0;

	(void)state;
	job_for(&job, "n1", 32);
	assert_int_equal(jobshm_job_setup(&job, JOBSHM_TMPFS, 8 << 20, NULL,
					  &err), 0);
	s = jobshm_sampler_start(&job, 3600, &err);
	assert_non_null(s);
	start = secs();
	n = fast = n2 = f2 = 0;
	while (secs() < start + 5.5) {
		snprintf(path, sizeof(path), "%s/f%d", job.path, i++ % 64);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		assert_true(fd >= 0);
		close(fd);
		unlink(path);
		ms_sleep(1);
		if (!t1 && secs() >= start + 4) {
			t1 = secs();
			jobshm_sampler_counts(s, &n, &fast, &ev, &w);
		} else if (!t2 && secs() >= start + 5) {
			t2 = secs();
			jobshm_sampler_counts(s, &n2, &f2, &e2, &w);
		}
	}
	print_message("fast samples: %lu in the first 4 s, %.0f/s after\n",
		      fast, (double)(f2 - fast) / (t2 - t1));
	assert_true(fast >= 500);		/* it did sample fast */
	assert_true(fast <= 2000 + 4 * 200 + 50);
	assert_true((double)(f2 - fast) / (t2 - t1) <= 200 * 1.1 + 5);
	assert_true(n2 - f2 <= 5);	/* nothing but fast ones */
	jobshm_sampler_stop(s);
	assert_int_equal(jobshm_job_cleanup(&job, &err), 0);
}

/* inotify instances are root's: the node's steps watch with at most a
 * quarter of fs.inotify.max_user_instances (and 32) at once; the rest
 * sample by the interval, and a slot let go is taken again. */
static void
test_watches_are_bounded_per_node(void **state)
{
	jobshm_sampler_t *s[40] = { NULL };
	struct jobshm_job job;
	jobshm_err_t err;
	unsigned long n, f, ev;
	int max = 0, slots, watching = 0, w, i;
	FILE *m = fopen("/proc/sys/fs/inotify/max_user_instances", "r");

	(void)state;
	assert_non_null(m);
	assert_int_equal(fscanf(m, "%d", &max), 1);
	fclose(m);
	slots = max / 4 < 32 ? max / 4 : 32;
	job_for(&job, "n1", 33);
	assert_int_equal(jobshm_job_setup(&job, JOBSHM_TMPFS, 1 << 20, NULL,
					  &err), 0);
	for (i = 0; i < slots + 8; i++) {
		s[i] = jobshm_sampler_start(&job, 3600, &err);
		assert_non_null(s[i]);
		jobshm_sampler_counts(s[i], &n, &f, &ev, &w);
		watching += w == 1;
		if (w != 1)
			assert_int_equal(w, -EUSERS);
	}
	assert_int_equal(watching, slots);
	jobshm_sampler_stop(s[0]);
	s[0] = jobshm_sampler_start(&job, 3600, &err);
	assert_non_null(s[0]);
	jobshm_sampler_counts(s[0], &n, &f, &ev, &w);
	assert_int_equal(w, 1);
	for (i = 0; i < slots + 8; i++)
		jobshm_sampler_stop(s[i]);
	assert_int_equal(jobshm_job_cleanup(&job, &err), 0);
}

/* This process's open inotify instances. */
static int
inotify_fds(void)
{
	char path[64], link[64];
	int fd, n = 0;
	ssize_t len;

	for (fd = 0; fd < 1024; fd++) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		len = readlink(path, link, sizeof(link) - 1);
		if (len > 0) {
			link[len] = '\0';
			n += strcmp(link, "anon_inode:inotify") == 0;
		}
	}
	return n;
}

/* At the step's end the watch is left for slurmstepd's exit: closing a
 * watched instance waits for the kernel to free the watch, and slurmd,
 * polling for the step's end, waited a poll longer (bench/README.md).
 * Every other stop closes it. */
static void
test_step_end_leaves_the_watch_to_the_exit(void **state)
{
	struct jobshm_job job;
	jobshm_err_t err;
	jobshm_sampler_t *s;
	unsigned long n, f, ev;
	int w, before;

	(void)state;
	job_for(&job, "n1", 34);
	assert_int_equal(jobshm_job_setup(&job, JOBSHM_TMPFS, 1 << 20, NULL,
					  &err), 0);
	before = inotify_fds();
	s = jobshm_sampler_start(&job, 3600, &err);
	assert_non_null(s);
	jobshm_sampler_counts(s, &n, &f, &ev, &w);
	assert_int_equal(w, 1);
	assert_int_equal(inotify_fds(), before + 1);
	jobshm_sampler_stop(s);
	assert_int_equal(inotify_fds(), before);
	s = jobshm_sampler_start(&job, 3600, &err);
	assert_non_null(s);
	jobshm_sampler_stop_exiting(s);
	assert_int_equal(inotify_fds(), before + 1);
	assert_int_equal(jobshm_job_cleanup(&job, &err), 0);
}

/* The job's name into the record: one token, the first one kept, and
 * what the epilog logs. */
static void
test_sampler_names_the_record(void **state)
{
	struct jobshm_job job;
	struct jobshm_usage u;
	jobshm_err_t err;
	jobshm_sampler_t *s;

	(void)state;
	job_for(&job, "n1", 35);
	assert_int_equal(jobshm_job_setup(&job, JOBSHM_TMPFS, 1 << 20, NULL,
					  &err), 0);
	s = jobshm_sampler_start(&job, 0, &err);
	assert_non_null(s);
	assert_int_equal(jobshm_sampler_name(s, "my job\n/../x\"y"), 0);
	assert_int_equal(jobshm_sampler_name(s, "second"), 0);
	assert_int_equal(jobshm_sampler_leftovers(s, 4, 3 << 20, 7), 0);
	jobshm_sampler_stop(s);
	assert_int_equal(jobshm_usage_read(&job, &u, &err), 0);
	assert_string_equal(u.name, "my_job__.._x_y");
	assert_int_equal(u.left_step, 4);
	assert_int_equal(u.left_files, 7);
	assert_int_equal(u.left_bytes, 3 << 20);
	assert_true(u.start > 0);
	assert_int_equal(jobshm_usage_end(&job, &u, &err), 0);
	assert_string_equal(u.name, "my_job__.._x_y");
	assert_int_equal(jobshm_job_cleanup(&job, &err), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_json_round_trip),
		cmocka_unit_test(test_log_rotation),
		cmocka_unit_test(test_submit_admission),
	};

	const struct CMUnitTest mounted[] = {
		cmocka_unit_test(test_fast_window_sees_a_brief_fill),
		cmocka_unit_test(test_fast_window_is_bounded),
		cmocka_unit_test(test_watches_are_bounded_per_node),
		cmocka_unit_test(test_step_end_leaves_the_watch_to_the_exit),
		cmocka_unit_test(test_sampler_names_the_record),
	};
	int rc = cmocka_run_group_tests_name("usage", tests, NULL, NULL);

	if (geteuid() != 0) {
		printf("test_usage: the sampler's tests need root (they mount "
		       "tmpfs); skipped\n");
		return rc;
	}
	return rc | cmocka_run_group_tests_name("usage-sampler", mounted,
						setup, teardown);
}
