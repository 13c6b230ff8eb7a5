/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests: jobshm.conf loading, errors as file:line: message. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "jobshm.h"

static char path[64];

static int
load(const char *text, struct jobshm_conf *c, jobshm_err_t *err)
{
	FILE *f;
	int fd;

	snprintf(path, sizeof(path), "/tmp/jobshm-conf-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	fputs(text, f);
	fclose(f);
	jobshm_conf_defaults(c);
	fd = jobshm_conf_load(c, path, err);
	unlink(path);
	return fd;
}

static void
bad(const char *text, const char *where, const char *what)
{
	struct jobshm_conf c;
	jobshm_err_t err;
	char want[128];

	if (load(text, &c, &err) != -1)
		fail_msg("accepted: %s", text);
	snprintf(want, sizeof(want), "%s%s", path, where);
	if (strncmp(err.msg, want, strlen(want)) || !strstr(err.msg, what))
		fail_msg("got '%s', want '%s...%s'", err.msg, want, what);
}

static void
test_defaults(void **state)
{
	struct jobshm_conf c;

	(void)state;
	jobshm_conf_defaults(&c);
	assert_string_equal(c.base_path, JOBSHM_DEFAULT_BASE);
	assert_true(c.default_size.none);
	assert_int_equal(c.max_size.percent, 50);
	assert_true(c.allow_opt_out);
	assert_true(c.count_against_job_mem);
}

static void
test_good(void **state)
{
	struct jobshm_conf c;
	jobshm_err_t err;

	(void)state;
	assert_int_equal(load("# comment\nbase_path = \"/run/x/%n\";\n"
			      "default_size = \"1G\";\nmax_size = 4096;\n"
			      "allow_opt_out = false;\n"
			      "count_against_job_mem = false;\n"
			      "default_mpol = \"interleave\";\n"
			      "topology_xml = \"/etc/node.xml\";\n"
			      "huge = \"within_size\";\n"
			      "nvram_paths = [ \"/mnt/pmem_fsdax0\", "
			      "\"/mnt/pmem_fsdax1\" ];\n", &c, &err), 0);
	assert_string_equal(c.huge, "within_size");
	assert_int_equal(c.n_nvram_paths, 2);
	assert_string_equal(c.nvram_paths[1], "/mnt/pmem_fsdax1");
	assert_int_equal(c.default_mpol.kind, JOBSHM_MPOL_INTERLEAVE);
	assert_string_equal(c.topology_xml, "/etc/node.xml");
	assert_string_equal(c.base_path, "/run/x/%n");
	assert_int_equal(c.default_size.bytes, 1ULL << 30);
	assert_int_equal(c.max_size.bytes, 4096ULL << 20);
	assert_int_equal(jobshm_conf_max_bytes(&c), 4096ULL << 20);
	assert_false(c.allow_opt_out);
	assert_false(c.count_against_job_mem);
}

static void
test_errors(void **state)
{
	(void)state;
	bad("base_path = \"/a\";\nfoo = 1;\n", ":2:", "unknown key 'foo'");
	bad("\n\nmax_size = \"10X\";\n", ":3:", "'10X'");
	bad("default_size = \"abc\";\n", ":1:", "'abc'");
	bad("allow_opt_out = 1;\n", ":1:", "true or false");
	bad("base_path = \"relative\";\n", ":1:", "absolute");
	bad("base_path = \"/a/../b\";\n", ":1:", "'..'");
	bad("base_path = \"/a/x%n\";\n", ":1:", "whole path component");
	bad("base_path = \"/a/%n/%n\";\n", ":1:", "at most one");
	bad("base_path = \"/\";\n", ":1:", "'/'");
	bad("base_path = 3;\n", ":1:", "must be a string");
	bad("max_size = [1];\n", ":1:", "must be a size");
	bad("max_size = \"150%\";\n", ":1:", "1-100%");
	bad("max_size = 0;\n", ":", "max_size must not be 0");
	bad("max_size = \"1G\";\ndefault_size = \"2G\";\n", ":",
	    "default_size is larger than max_size");
	bad("base_path = \"/a\";\nmax_size = ;\n", ":2:", "syntax error");
	bad("default_mpol = \"sideways\";\n", ":1:", "invalid policy 'sideways'");
	bad("topology_xml = \"rel.xml\";\n", ":1:", "absolute path");
	bad("huge = \"sometimes\";\n", ":1:", "huge must be one of");
	bad("nvram_paths = \"/mnt/pmem\";\n", ":1:", "must be a list");
	bad("nvram_paths = [ \"pmem\" ];\n", ":1:", "'pmem' is not an absolute");
	bad("nvram_paths = [ \"/mnt/../etc\" ];\n", ":1:", "without '.' or '..'");
	bad("nvram_paths = [ 3 ];\n", ":1:", "(not a string)");
	bad("nvram_paths = [ \"/a\", \"/b\", \"/c\", \"/d\", \"/e\" ];\n", ":1:",
	    "at most 4");
}

static void
test_missing_file(void **state)
{
	struct jobshm_conf c;
	jobshm_err_t err;

	(void)state;
	jobshm_conf_defaults(&c);
	assert_int_equal(jobshm_conf_load(&c, "/nonexistent/jobshm.conf",
					  &err), -1);
	assert_non_null(strstr(err.msg, "/nonexistent/jobshm.conf: cannot read"));
}

/* libconfig 1.5 reads an integer without an L as int, cut silently. */
static void
test_wide_integers(void **state)
{
	struct jobshm_conf c;
	jobshm_err_t err;

	(void)state;
	assert_int_equal(load("max_size = 4294971392;\n", &c, &err), 0);
	assert_true(c.max_size.bytes == 4294971392ULL << 20);	/* was 4G */
	assert_int_equal(load("max_size = 8589934592;\n", &c, &err), 0);
	assert_true(c.max_size.bytes == 8589934592ULL << 20);	/* was 0 */
	assert_int_equal(load("max_size = 10737418240;\n", &c, &err), 0);
	assert_true(c.max_size.bytes == 10737418240ULL << 20);
	assert_int_equal(load("max_size = 0x100001000;\n"
			      "usage_log_max = 4294967296;\n", &c, &err), 0);
	assert_true(c.max_size.bytes == 0x100001000ULL << 20);
	assert_true(c.usage_log_max == 4294967296ULL << 20);
	assert_int_equal(load("max_size = 4294971392L;\n", &c, &err), 0);
	assert_true(c.max_size.bytes == 4294971392ULL << 20);
	assert_int_equal(load("usage_interval = 60L;\n", &c, &err), 0);
	assert_int_equal(c.usage_interval, 60);
	/* numbers in comments and strings are not libconfig's integers */
	assert_int_equal(load("# 99999999999999999999\nmax_size = \"4G\"; "
			      "/* 99999999999999999999 */\n"
			      "base_path = \"/run/j99999999999999999999/%n\";\n",
			      &c, &err), 0);
	assert_true(c.max_size.bytes == 4ULL << 30);
	bad("huge = \"99999999999999999999\";\n", ":1:", "huge must be one of");
	bad("usage_interval = 4294967297;\n", ":1:", "0-3600");	/* was 1 */
	bad("\nmax_size = 99999999999999999999;\n", ":2:",
	    "99999999999999999999 does not fit in a 64-bit integer");
	bad("max_size = 0x10000000000000000;\n", ":1:", "does not fit");
}

/* An @include'd file is libconfig's to read: its wide integers are refused. */
static void
test_include_wide(void **state)
{
	struct jobshm_conf c;
	jobshm_err_t err;
	char inc[64], text[128];
	FILE *f;
	int fd;

	(void)state;
	snprintf(inc, sizeof(inc), "/tmp/jobshm-inc-XXXXXX");
	assert_true((fd = mkstemp(inc)) >= 0);
	assert_non_null(f = fdopen(fd, "w"));
	fputs("debug = true;\nmax_size = 4294971392;\n", f);
	fclose(f);
	snprintf(text, sizeof(text), "@include \"%s\"\n", inc);
	assert_int_equal(load(text, &c, &err), -1);
	assert_non_null(strstr(err.msg, inc));
	assert_non_null(strstr(err.msg, ":2: 4294971392 is wider than 32 bits"));
	f = fopen(inc, "w");
	fputs("max_size = 4294971392L;\n", f);
	fclose(f);
	assert_int_equal(load(text, &c, &err), 0);
	assert_true(c.max_size.bytes == 4294971392ULL << 20);
	unlink(inc);
}

/* An unquoted size is a syntax error to libconfig: say what to write. */
static void
test_unquoted_size(void **state)
{
	struct jobshm_conf c;
	jobshm_err_t err;

	(void)state;
	bad("debug = true;\n\nmax_size = 4G;\n", ":3:", "syntax error (sizes "
	    "are strings: write max_size = \"4G\";)");
	bad("default_size = 50%;\n", ":1:",
	    "write default_size = \"50%\";)");
	bad("max_size = \"1G\";\nusage_log_max = 10mb;\n", ":2:",
	    "write usage_log_max = \"10mb\";)");
	assert_int_equal(load("max_size = \"4G\";\ndefault_size = ;\n", &c,
			      &err), -1);
	assert_null(strstr(err.msg, "sizes are strings"));
	assert_int_equal(load("max_size = 1e3;\nfoo\n", &c, &err), -1);
	assert_null(strstr(err.msg, "sizes are strings"));
}

/* A directory is no configuration, and says so (it said "Success"). */
static void
test_not_a_file(void **state)
{
	struct jobshm_conf c;
	jobshm_err_t err;

	(void)state;
	jobshm_conf_defaults(&c);
	assert_int_equal(jobshm_conf_load(&c, "/tmp", &err), -1);
	assert_string_equal(err.msg, "/tmp is a directory, not a jobshm.conf "
			    "file");
	assert_int_equal(err.code, EISDIR);
	assert_int_equal(jobshm_conf_load(&c, "/nonexistent/jobshm.conf",
					  &err), -1);
	assert_string_equal(err.msg, "/nonexistent/jobshm.conf: cannot read: "
			    "No such file or directory");
	assert_int_equal(err.code, ENOENT);
}

static void
test_base_expand(void **state)
{
	struct jobshm_conf c;
	struct jobshm_job job;
	jobshm_err_t err;
	char buf[256];

	(void)state;
	jobshm_conf_defaults(&c);
	assert_int_equal(jobshm_conf_base(&c, "n7", buf, sizeof(buf), &err), 0);
	assert_string_equal(buf, "/run/jobshm/n7");
	assert_int_equal(jobshm_conf_base(&c, "", buf, sizeof(buf), &err), -1);
	assert_int_equal(jobshm_conf_base(&c, "../x", buf, sizeof(buf), &err), -1);
	assert_int_equal(jobshm_conf_base(&c, "..", buf, sizeof(buf), &err), -1);
	assert_int_equal(jobshm_job_init(&job, &c, "n1", 42, &err), 0);
	assert_string_equal(job.path, "/run/jobshm/n1/42");
	assert_int_equal(jobshm_job_init(&job, &c, "n1", 0, &err), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_wide_integers),
		cmocka_unit_test(test_include_wide),
		cmocka_unit_test(test_unquoted_size),
		cmocka_unit_test(test_not_a_file),
		cmocka_unit_test(test_base_expand),
	};

	return cmocka_run_group_tests_name("conf", tests, NULL, NULL);
}
