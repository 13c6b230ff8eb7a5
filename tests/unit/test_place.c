/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests: topology over hwloc XML files, policies, NVRAM options. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "jobshm.h"

#define TOPO "../topo/"

static struct jobshm_topo
probe(const char *file, const char *cores)
{
	struct jobshm_topo t;
	jobshm_err_t err;

	if (jobshm_topo_probe(file, cores, &t, &err) < 0)
		fail_msg("%s: %s", file, err.msg);
	return t;
}

static void
test_topologies(void **state)
{
	struct jobshm_topo t;

	(void)state;
	t = probe(TOPO "dram-2socket.xml", "0-1");
	assert_string_equal(t.near, "0");
	assert_string_equal(t.all, "0-1");
	assert_string_equal(t.nvm, "");
	assert_false(t.memcache);
	assert_string_equal(jobshm_topo_mode(&t), "no NVRAM");
	t = probe(TOPO "dram-2socket.xml", "1-2");	/* spans both sockets */
	assert_string_equal(t.near, "0-1");
	t = probe(TOPO "dram-2socket.xml", "3");
	assert_string_equal(t.near, "1");
	t = probe(TOPO "pmem-1lm.xml", "2-3");
	assert_string_equal(t.near, "1");
	assert_string_equal(t.all, "0-1");
	assert_string_equal(t.nvm, "2-3");
	assert_string_equal(jobshm_topo_mode(&t), "1LM");
	t = probe(TOPO "mem-2lm.xml", NULL);
	assert_true(t.memcache);
	assert_string_equal(jobshm_topo_mode(&t), "2LM");
	t = probe(TOPO "dram-1socket.xml", NULL);
	assert_string_equal(t.all, "0");
	assert_int_equal(t.nnuma, 1);
}

static void
test_missing_xml(void **state)
{
	struct jobshm_topo t;
	jobshm_err_t err;

	(void)state;
	assert_int_equal(jobshm_topo_probe("/nonexistent.xml", NULL, &t, &err), -1);
	assert_non_null(strstr(err.msg, "/nonexistent.xml"));
}

static void
test_mpol_parse(void **state)
{
	struct jobshm_mpol m;
	jobshm_err_t err;
	const char *bad[] = { "sideways", "", "bind:", "bind:a", "bind:2-1",
			      "bind:1,", "bind:5000", "interleave:0", "BIND:0",
			      NULL };
	int i;

	(void)state;
	assert_int_equal(jobshm_mpol_parse("local", &m, &err), 0);
	assert_int_equal(m.kind, JOBSHM_MPOL_LOCAL);
	assert_int_equal(jobshm_mpol_parse("bind:0-1,3", &m, &err), 0);
	assert_string_equal(m.nodes, "0-1,3");
	for (i = 0; bad[i]; i++) {
		if (jobshm_mpol_parse(bad[i], &m, &err) == 0)
			fail_msg("accepted '%s'", bad[i]);
		assert_non_null(strstr(err.msg, "interleave"));
	}
}

static void
test_nvram_parse(void **state)
{
	struct jobshm_nvram n;
	jobshm_err_t err;
	const char *bad[] = { "3LM:10", "1LM", "1LM:", "1LM:1", "1LM:5000",
			      "2LM:abc", "1lm:10", "1LM:-2", "1LM:10X",
			      "1LM:1000M", NULL };
	int i;

	(void)state;
	assert_int_equal(jobshm_nvram_parse("1LM:2000", &n, &err), 0);
	assert_int_equal(n.mode, 1);
	assert_int_equal(n.bytes, 2000ULL << 30);
	assert_int_equal(jobshm_nvram_parse("2LM:2", &n, &err), 0);
	assert_int_equal(n.mode, 2);
	assert_int_equal(jobshm_nvram_parse("1LM:4000G", &n, &err), 0);
	assert_int_equal(jobshm_nvram_parse("1LM:3T", &n, &err), 0);
	for (i = 0; bad[i]; i++) {
		if (jobshm_nvram_parse(bad[i], &n, &err) == 0)
			fail_msg("accepted '%s'", bad[i]);
		assert_non_null(strstr(err.msg, bad[i]));
		assert_non_null(strstr(err.msg, "1LM:SIZE or 2LM:SIZE"));
	}
}

static void
test_place(void **state)
{
	struct jobshm_topo dram = probe(TOPO "dram-2socket.xml", "0-1");
	struct jobshm_topo pmem = probe(TOPO "pmem-1lm.xml", "0-1");
	struct jobshm_topo twolm = probe(TOPO "mem-2lm.xml", NULL);
	struct jobshm_mpol m;
	struct jobshm_nvram nv1 = { 1, 2ULL << 30 }, nv2 = { 2, 2ULL << 30 };
	struct jobshm_placement p;
	jobshm_err_t err;

	(void)state;
	jobshm_mpol_parse("interleave", &m, &err);
	assert_int_equal(jobshm_place(&m, NULL, &dram, &p, &err), 0);
	assert_string_equal(p.opts, "mpol=interleave:0");
	assert_string_equal(p.mode, "tmpfs");
	jobshm_mpol_parse("local", &m, &err);
	assert_int_equal(jobshm_place(&m, NULL, &dram, &p, &err), 0);
	assert_string_equal(p.opts, "mpol=bind:0");
	jobshm_mpol_parse("bind:1", &m, &err);
	assert_int_equal(jobshm_place(&m, NULL, &dram, &p, &err), 0);
	assert_string_equal(p.opts, "mpol=bind:1");
	jobshm_mpol_parse("bind:99", &m, &err);
	assert_int_equal(jobshm_place(&m, NULL, &dram, &p, &err), -1);
	assert_non_null(strstr(err.msg, "NUMA nodes are 0-1"));
	jobshm_mpol_parse("default", &m, &err);
	assert_int_equal(jobshm_place(&m, NULL, &dram, &p, &err), 0);
	assert_string_equal(p.opts, "");
	/* 1LM: bound to the PMem NUMA nodes; refused without them */
	assert_int_equal(jobshm_place(&m, &nv1, &pmem, &p, &err), 0);
	assert_string_equal(p.opts, "mpol=bind:2-3");
	assert_string_equal(p.mode, "1LM");
	assert_int_equal(jobshm_place(&m, &nv1, &dram, &p, &err), -1);
	assert_non_null(strstr(err.msg, "mode 'no NVRAM'"));
	assert_int_equal(jobshm_place(&m, &nv1, &twolm, &p, &err), -1);
	assert_non_null(strstr(err.msg, "mode '2LM'"));
	/* 2LM: an ordinary tmpfs, only where memory-side caches exist */
	assert_int_equal(jobshm_place(&m, &nv2, &twolm, &p, &err), 0);
	assert_string_equal(p.mode, "2LM");
	assert_int_equal(jobshm_place(&m, &nv2, &pmem, &p, &err), -1);
	assert_non_null(strstr(err.msg, "mode '1LM'"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_topologies),
		cmocka_unit_test(test_missing_xml),
		cmocka_unit_test(test_mpol_parse),
		cmocka_unit_test(test_nvram_parse),
		cmocka_unit_test(test_place),
	};

	return cmocka_run_group_tests_name("place", tests, NULL, NULL);
}
