/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests: size parsing, resolution and admission. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "jobshm.h"

static uint64_t
parse_ok(const char *s)
{
	struct jobshm_size sz;
	jobshm_err_t err;

	assert_int_equal(jobshm_size_parse(s, &sz, &err), 0);
	assert_int_equal(sz.percent, 0);
	return sz.none ? 0 : sz.bytes;
}

static void
parse_bad(const char *s, const char *expect)
{
	struct jobshm_size sz;
	jobshm_err_t err;

	assert_int_equal(jobshm_size_parse(s, &sz, &err), -1);
	if (expect && !strstr(err.msg, expect))
		fail_msg("'%s': message '%s' lacks '%s'", s, err.msg, expect);
}

static void
test_units(void **state)
{
	(void)state;
	assert_int_equal(parse_ok("512"), 512ULL << 20);	/* bare = MiB */
	assert_int_equal(parse_ok("100K"), 100ULL << 10);
	assert_int_equal(parse_ok("100k"), 100ULL << 10);
	assert_int_equal(parse_ok("3M"), 3ULL << 20);
	assert_int_equal(parse_ok("4G"), 4ULL << 30);
	assert_int_equal(parse_ok("4GB"), 4ULL << 30);
	assert_int_equal(parse_ok("2T"), 2ULL << 40);
	assert_int_equal(parse_ok("0"), 0);
	assert_int_equal(parse_ok("none"), 0);
	assert_int_equal(parse_ok("NONE"), 0);
}

static void
test_percent(void **state)
{
	struct jobshm_size sz;
	jobshm_err_t err;
	uint64_t b;

	(void)state;
	assert_int_equal(jobshm_size_parse("50%", &sz, &err), 0);
	assert_int_equal(sz.percent, 50);
	assert_int_equal(jobshm_size_resolve(&sz, 1000, &b, &err), 0);
	assert_int_equal(b, 500);
	assert_int_equal(jobshm_size_parse("100%", &sz, &err), 0);
	assert_int_equal(jobshm_size_resolve(&sz, UINT64_MAX, &b, &err), 0);
	assert_int_equal(b, UINT64_MAX);	/* no overflow on the way */
	assert_int_equal(jobshm_size_resolve(&sz, 0, &b, &err), -1);
	assert_non_null(strstr(err.msg, "100%"));
}

static void
test_bad_forms(void **state)
{
	(void)state;
	parse_bad("abc", "'abc'");
	parse_bad("abc", "512M");	/* names the accepted forms */
	parse_bad("-1G", "'-1G'");
	parse_bad("10X", "unknown unit 'X'");
	parse_bad("99999999T", "too large");
	parse_bad("150%", "1-100%");
	parse_bad("0%", "1-100%");
	parse_bad("", "''");
	parse_bad(NULL, "empty");
	parse_bad(" 1G", NULL);
	parse_bad("1G ", NULL);
	parse_bad("1.5G", NULL);
	parse_bad("0x10", NULL);
	parse_bad("1GG", NULL);
	parse_bad("0G", "0 or none");
	parse_bad("50%%", NULL);
	parse_bad("18446744073709551616", NULL);	/* 2^64 */
}

static void
test_boundaries(void **state)
{
	(void)state;
	/* the largest size accepted with each unit stays below 2^63 */
	assert_int_equal(parse_ok("8388607T"), 8388607ULL << 40);
	parse_bad("8388608T", "too large");
	assert_int_equal(parse_ok("1"), 1ULL << 20);
	assert_int_equal(parse_ok("1K"), 1024);
}

static void
test_admit(void **state)
{
	struct jobshm_conf c;
	jobshm_err_t err;
	uint64_t b;

	(void)state;
	jobshm_conf_defaults(&c);
	c.max_size.percent = 0;
	c.max_size.bytes = 4ULL << 30;
	assert_int_equal(jobshm_admit(&c, "1G", 2ULL << 30, &b, &err), 0);
	assert_int_equal(b, 1ULL << 30);
	assert_int_equal(jobshm_admit(&c, "5G", 8ULL << 30, &b, &err), -1);
	assert_non_null(strstr(err.msg, "max_size"));
	assert_int_equal(jobshm_admit(&c, "3G", 2ULL << 30, &b, &err), -1);
	assert_non_null(strstr(err.msg, "job's memory"));
	c.count_against_job_mem = 0;
	assert_int_equal(jobshm_admit(&c, "3G", 2ULL << 30, &b, &err), 0);
	assert_int_equal(jobshm_admit(&c, "25%", 2ULL << 30, &b, &err), 0);
	assert_int_equal(b, 512ULL << 20);
	assert_int_equal(jobshm_admit(&c, NULL, 2ULL << 30, &b, &err), 0);
	assert_int_equal(b, 0);			/* default_size none */
	c.default_size.none = 0;
	c.default_size.bytes = 1ULL << 30;
	assert_int_equal(jobshm_admit(&c, NULL, 2ULL << 30, &b, &err), 0);
	assert_int_equal(b, 1ULL << 30);
	assert_int_equal(jobshm_admit(&c, "none", 0, &b, &err), 0);
	assert_int_equal(b, 0);
	c.allow_opt_out = 0;
	assert_int_equal(jobshm_admit(&c, "none", 0, &b, &err), -1);
	assert_non_null(strstr(err.msg, "allow_opt_out"));
	assert_int_equal(jobshm_admit(&c, "10X", 0, &b, &err), -1);
	assert_non_null(strstr(err.msg, "'10X'"));
}

/* Exactly max_size, or the job's memory, is admitted; a byte more is not. */
static void
test_admit_boundary(void **state)
{
	struct jobshm_conf c;
	jobshm_err_t err;
	uint64_t b;

	(void)state;
	jobshm_conf_defaults(&c);
	c.max_size.percent = 0;
	c.max_size.bytes = 4ULL << 30;
	assert_int_equal(jobshm_admit(&c, "4G", 8ULL << 30, &b, &err), 0);
	assert_true(b == 4ULL << 30);
	assert_int_equal(jobshm_admit(&c, "4194304K", 8ULL << 30, &b, &err), 0);
	assert_int_equal(jobshm_admit(&c, "4194305K", 8ULL << 30, &b, &err), -1);
	assert_non_null(strstr(err.msg, "max_size"));
	c.max_size.bytes = (4ULL << 30) - 1;	/* the request: max_size + 1 */
	assert_int_equal(jobshm_admit(&c, "4G", 8ULL << 30, &b, &err), -1);
	assert_non_null(strstr(err.msg, "max_size"));
	c.max_size.bytes = 8ULL << 30;
	assert_int_equal(jobshm_admit(&c, "4G", 4ULL << 30, &b, &err), 0);
	assert_int_equal(jobshm_admit(&c, "4G", (4ULL << 30) - 1, &b, &err), -1);
	assert_non_null(strstr(err.msg, "job's memory"));
}

static void
test_format(void **state)
{
	char buf[32];

	(void)state;
	assert_string_equal(jobshm_size_format(1ULL << 30, buf, sizeof(buf)), "1G");
	assert_string_equal(jobshm_size_format(3584ULL << 20, buf, sizeof(buf)), "3.5G");
	assert_string_equal(jobshm_size_format(10, buf, sizeof(buf)), "10B");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_units),
		cmocka_unit_test(test_percent),
		cmocka_unit_test(test_bad_forms),
		cmocka_unit_test(test_boundaries),
		cmocka_unit_test(test_admit),
		cmocka_unit_test(test_admit_boundary),
		cmocka_unit_test(test_format),
	};

	return cmocka_run_group_tests_name("size", tests, NULL, NULL);
}
