/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests of the fsdax 1LM path (needs root): a small tmpfs stands in
 * for the fsdax mount here; the cluster tests use a loop-mounted XFS.
 */
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
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "jobshm.h"
#include "internal.h"

#include "scratch.h"

static char pmem[80];

/* The scratch base, and a small tmpfs standing in for the fsdax mount. */
static int
fsdax_setup(void **state)
{
	if (setup(state) < 0)
		return -1;
	snprintf(pmem, sizeof(pmem), "%s/pmem", top);
	mkdir(pmem, 0755);
	if (mount("pmem", pmem, "tmpfs", 0, "size=32m") < 0)
		return -1;
	snprintf(conf.nvram_paths[0], sizeof(conf.nvram_paths[0]), "%s", pmem);
	conf.n_nvram_paths = 1;
	return 0;
}

static int
fsdax_teardown(void **state)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "umount -l %s/n1/* %s/ext4 %s 2>/dev/null",
		 top, top, pmem);
	if (system(cmd) == -1)
		return -1;
	return teardown(state);
}

/* Does <pmem>/.jobshm/<id><suffix> exist? */
static int
exists(const char *suffix, uint32_t id)
{
	char p[256];
	struct stat st;

	snprintf(p, sizeof(p), "%s/.jobshm/%u%s", pmem, id, suffix);
	return lstat(p, &st) == 0;
}

static void
test_admit_bind_cleanup(void **state)
{
	struct jobshm_job a, b, c;
	jobshm_err_t err;
	uint64_t size, used;
	struct stat st;

	(void)state;
	job_for(&a, "n1", 101);
	job_for(&b, "n1", 102);
	job_for(&c, "n1", 103);
	assert_int_equal(jobshm_job_setup(&a, JOBSHM_FSDAX, 16 << 20, NULL, &err), 0);
	assert_int_equal(jobshm_job_mounted(&a, &err), 1);
	assert_int_equal(stat(a.path, &st), 0);
	assert_int_equal(st.st_uid, 65534);
	assert_true(exists(".reserve", 101));
	assert_int_equal(jobshm_job_usage(&a, &size, &used, &err), 0);
	assert_int_equal(size, 16 << 20);

	/* 32M free less 16M reserved: 20M does not fit, and leaves nothing */
	assert_int_equal(jobshm_job_setup(&b, JOBSHM_FSDAX, 20 << 20, NULL, &err), -1);
	assert_non_null(strstr(err.msg, "no room"));
	assert_non_null(strstr(err.msg, "reserved"));
	assert_false(exists(".reserve", 102));
	assert_false(exists("", 102));
	assert_int_equal(jobshm_job_mounted(&b, &err), 0);
	assert_int_equal(jobshm_job_setup(&c, JOBSHM_FSDAX, 8 << 20, NULL, &err), 0);

	/* a later step of a: within its reservation, never beyond */
	assert_int_equal(jobshm_job_setup(&a, JOBSHM_FSDAX, 8 << 20, NULL, &err), 0);
	assert_int_equal(jobshm_job_setup(&a, JOBSHM_TMPFS, 32 << 20, NULL, &err), -1);
	assert_non_null(strstr(err.msg, "cannot grow"));

	assert_int_equal(jobshm_job_cleanup(&a, &err), 0);
	assert_false(exists(".reserve", 101));
	assert_false(exists("", 101));
	assert_int_equal(jobshm_job_mounted(&a, &err), 0);
	assert_true(exists("", 103));	/* c untouched */
	assert_int_equal(jobshm_job_cleanup(&c, &err), 0);
}

static int
write_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);

	if (fd < 0)
		return -1;
	return close(fd);
}

/* Links to the outside are removed, never followed; depth costs no fds. */
static void
test_cleanup_never_follows_links(void **state)
{
	char p[4096], outside[160], canary[200];
	struct jobshm_job j;
	jobshm_err_t err;
	struct stat st;
	int i;

	(void)state;
	job_for(&j, "n1", 104);
	snprintf(outside, sizeof(outside), "%s/outside", top);
	mkdir(outside, 0755);
	snprintf(canary, sizeof(canary), "%s/canary", outside);
	assert_int_equal(write_file(canary), 0);
	assert_int_equal(jobshm_job_setup(&j, JOBSHM_FSDAX, 4 << 20, NULL, &err), 0);
	snprintf(p, sizeof(p), "%s/to-dir", j.path);
	assert_int_equal(symlink(outside, p), 0);
	snprintf(p, sizeof(p), "%s/to-file", j.path);
	assert_int_equal(symlink(canary, p), 0);
	snprintf(p, sizeof(p), "%s/fifo", j.path);
	assert_int_equal(mkfifo(p, 0600), 0);
	snprintf(p, sizeof(p), "%s/deep", j.path);
	assert_int_equal(mkdir(p, 0700), 0);
	assert_int_equal(chdir(p), 0);
	for (i = 0; i < 1500; i++) {	/* deeper than PATH_MAX allows */
		assert_int_equal(mkdir("d", 0700), 0);
		assert_int_equal(chdir("d"), 0);
		if (i % 100 == 0)
			assert_int_equal(symlink(outside, "up"), 0);
	}
	assert_int_equal(write_file("leaf"), 0);
	assert_int_equal(chdir("/"), 0);

	assert_int_equal(jobshm_job_cleanup(&j, &err), 0);
	assert_false(exists("", 104));
	assert_int_equal(stat(canary, &st), 0);
	assert_int_equal(stat(outside, &st), 0);
}

static int
count(const char *path, uint32_t jobid, uint64_t bytes, const char *node,
      void *arg)
{
	(void)path;
	assert_int_equal(jobid, 105);
	assert_int_equal(bytes, 4 << 20);
	assert_string_equal(node, "n1");
	(*(int *)arg)++;
	return 0;
}

/* After a reboot base_path is empty: sweep finds fsdax jobs by record. */
static void
test_records_outlive_base_path(void **state)
{
	struct jobshm_job j;
	jobshm_err_t err;
	int n = 0;

	(void)state;
	job_for(&j, "n1", 105);
	assert_int_equal(jobshm_job_setup(&j, JOBSHM_FSDAX, 4 << 20, NULL, &err), 0);
	assert_int_equal(umount2(j.path, MNT_DETACH), 0);
	assert_int_equal(rmdir(j.path), 0);
	assert_int_equal(jobshm_fsdax_each(&conf, count, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(jobshm_fsdax_remove(&conf, 105, &err), 0);
	assert_false(exists("", 105));
	n = 0;
	assert_int_equal(jobshm_fsdax_each(&conf, count, &n, &err), 0);
	assert_int_equal(n, 0);
}

static void
test_no_paths_no_fsdax(void **state)
{
	struct jobshm_conf none;
	struct jobshm_job j;
	jobshm_err_t err;

	(void)state;
	jobshm_conf_defaults(&none);
	snprintf(none.base_path, sizeof(none.base_path), "%s/%%n", top);
	assert_int_equal(jobshm_job_init(&j, &none, "n1", 106, &err), 0);
	assert_int_equal(jobshm_job_setup(&j, JOBSHM_FSDAX, 4 << 20, NULL, &err), -1);
	assert_non_null(strstr(err.msg, "nvram_paths"));
}

/*
 * A step asking 1LM on a node with nvram_paths: the library decides fsdax
 * (once: a later step without --nvram-options finds the same kind), and
 * the job's size is its reservation wherever it is read -- the job's
 * usage and the worker's namespace (the rro budget) alike -- not the
 * size of the filesystem it shares.  An ext4 image stands in for the
 * fsdax mount (the tmpfs of the other tests is read as the job's own).
 */
static void
test_step_on_fsdax_is_capped_everywhere(void **state)
{
	struct jobshm_conf c = conf;
	struct jobshm_job j;
	struct jobshm_step s = { .nvram = "1LM:2" };
	char cmd[1024], dir[100], env[64];
	jobshm_err_t err;
	jobshm_ns_t *ns;
	uint64_t size, used;

	(void)state;
	if (loop_mount("ext4", "3G", "mkfs.ext4 -q -E lazy_itable_init=1",
		       "loop", dir, sizeof(dir)) < 0)
		skip();
	snprintf(c.nvram_paths[0], sizeof(c.nvram_paths[0]), "%s", dir);
	assert_int_equal(jobshm_job_init(&j, &c, "n1", 107, &err), 0);
	j.uid = j.gid = 65534;
	assert_int_equal(jobshm_step_setup(&j, &s, &err), 0);
	assert_int_equal(s.kind, JOBSHM_FSDAX);
	assert_string_equal(s.place.policy, "fsdax");
	assert_int_equal(s.bytes, 2ULL << 30);
	assert_int_equal(jobshm_job_usage(&j, &size, &used, &err), 0);
	assert_int_equal(size, 2ULL << 30);
	s = (struct jobshm_step){ .shm = "64M" };	/* a later step */
	assert_int_equal(jobshm_step_setup(&j, &s, &err), 0);
	assert_int_equal(s.kind, JOBSHM_FSDAX);
	assert_int_equal(s.bytes, 2ULL << 30);
	/* a task's view: JOBSHM_DIR is the job's directory */
	snprintf(env, sizeof(env), "%llu", (unsigned long long)s.bytes);
	setenv("JOBSHM_DIR", j.path, 1);
	setenv("JOBSHM_SIZE", env, 1);
	ns = jobshm_ns_open(&err);
	assert_non_null(ns);
	assert_int_equal(jobshm_ns_usage(ns, &size, &used, &err), 0);
	assert_int_equal(size, 2ULL << 30);
	jobshm_ns_close(ns);
	unsetenv("JOBSHM_DIR");
	unsetenv("JOBSHM_SIZE");
	assert_int_equal(jobshm_job_cleanup(&j, &err), 0);
	snprintf(cmd, sizeof(cmd), "umount %s", dir);
	assert_int_equal(system(cmd), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_admit_bind_cleanup),
		cmocka_unit_test(test_cleanup_never_follows_links),
		cmocka_unit_test(test_records_outlive_base_path),
		cmocka_unit_test(test_no_paths_no_fsdax),
		cmocka_unit_test(test_step_on_fsdax_is_capped_everywhere),
	};

	if (geteuid() != 0) {
		fprintf(stderr, "test_fsdax: needs root (mounts); skipped\n");
		return 0;
	}
	return cmocka_run_group_tests(tests, fsdax_setup, fsdax_teardown);
}
