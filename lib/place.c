/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Placement requests: --shm-mpol and --nvram-options, parsed here and
 * checked against a node's topology: the kind of the job's shm, its NUMA
 * nodes and the tmpfs policy option (the other options: job.c). */
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define MPOL_FORMS "local, interleave, default or bind:LIST (e.g. bind:0-1,3)"

/*
 * Walk a node list ("0-1,3"), calling fn(first, last, arg) per range.
 * Returns -1 if the list is malformed (or a node is over 1023), else the
 * first non-zero value fn returned, else 0.
 */
static int
each_range(const char *list, int (*fn)(uint64_t, uint64_t, void *), void *arg)
{
	uint64_t a, b;
	const char *p = list, *e;
	int rc;

	do {
		if (jobshm_parse_u64(p, 0, 1023, &a, &e) < 0)
			return -1;
		b = a;
		if (*e == '-' &&
		    (jobshm_parse_u64(e + 1, 0, 1023, &b, &e) < 0 || b < a))
			return -1;
		if (fn && (rc = fn(a, b, arg)) != 0)
			return rc;
		p = e + 1;
	} while (*e == ',');
	return *e == '\0' ? 0 : -1;
}

static int
contains(uint64_t a, uint64_t b, void *node)
{
	return *(uint64_t *)node >= a && *(uint64_t *)node <= b;
}

static int
set_bits(uint64_t a, uint64_t b, void *mask)
{
	for (; a <= b; a++)
		((unsigned long *)mask)[a / (8 * sizeof(long))] |=
			1UL << (a % (8 * sizeof(long)));
	return 0;
}

int
jobshm_nodes_mask(const char *list, unsigned long mask[1024 / (8 * sizeof(long))])
{
	memset(mask, 0, 1024 / 8);
	return each_range(list, set_bits, mask);
}

/* 1 if node is in list. */
static int
list_has(const char *list, uint64_t node)
{
	return each_range(list, contains, &node) == 1;
}

/* fn for each_range: -2 (stop) at the first node missing from have. */
static int
all_in(uint64_t a, uint64_t b, void *have)
{
	for (; a <= b; a++)
		if (!list_has(have, a))
			return -2;
	return 0;
}

const char *
jobshm_kind_name(enum jobshm_kind kind)
{
	return kind == JOBSHM_TMPFS ? "tmpfs" : kind == JOBSHM_FSDAX ? "fsdax" :
	       "";
}

int
jobshm_mpol_parse(const char *s, struct jobshm_mpol *m, jobshm_err_t *err)
{
	memset(m, 0, sizeof(*m));
	if (!s || !*s)
		return jobshm_fail(err, "invalid policy '' (empty): expected "
				   MPOL_FORMS);
	if (!strcmp(s, "default"))
		m->kind = JOBSHM_MPOL_DEFAULT;
	else if (!strcmp(s, "local"))
		m->kind = JOBSHM_MPOL_LOCAL;
	else if (!strcmp(s, "interleave"))
		m->kind = JOBSHM_MPOL_INTERLEAVE;
	else if (!strncmp(s, "bind:", 5) && strlen(s + 5) < sizeof(m->nodes) &&
		 each_range(s + 5, NULL, NULL) == 0) {
		m->kind = JOBSHM_MPOL_BIND;
		snprintf(m->nodes, sizeof(m->nodes), "%s", s + 5);
	} else {
		return jobshm_fail(err, "invalid policy '%s': expected "
				   MPOL_FORMS, s);
	}
	return 0;
}

int
jobshm_nvram_parse(const char *s, struct jobshm_nvram *n, jobshm_err_t *err)
{
	static const char *want = "expected 1LM:SIZE or 2LM:SIZE, SIZE in GB "
				  "from 2 to 4000 (or with K/M/G/T)";
	struct jobshm_size sz;
	char num[64];

	memset(n, 0, sizeof(*n));
	if (!s || strlen(s) < 5 || strlen(s) > 40 ||
	    (strncmp(s, "1LM:", 4) && strncmp(s, "2LM:", 4)))
		return jobshm_fail(err, "invalid NVRAM option '%s': %s",
				   s ? s : "", want);
	snprintf(num, sizeof(num), "%s", s + 4);
	if (strspn(num, "0123456789") == strlen(num))
		strcat(num, "G");	/* NEXTGenIO: a bare SIZE is GB */
	if (jobshm_size_parse(num, &sz, NULL) < 0 || sz.none || sz.percent ||
	    sz.bytes < (2ULL << 30) || sz.bytes > (4000ULL << 30))
		return jobshm_fail(err, "invalid NVRAM option '%s': %s", s, want);
	n->mode = s[0] - '0';
	n->bytes = sz.bytes;
	return 0;
}

int
jobshm_place(const struct jobshm_mpol *m, const struct jobshm_nvram *nv,
	     const struct jobshm_topo *t, struct jobshm_placement *out,
	     jobshm_err_t *err)
{
	memset(out, 0, sizeof(*out));
	snprintf(out->mode, sizeof(out->mode), "tmpfs");
	out->kind = JOBSHM_TMPFS;
	if (nv && nv->mode == 1 && !t->nvm[0] && t->fsdax) {
		snprintf(out->mode, sizeof(out->mode), "1LM");
		snprintf(out->policy, sizeof(out->policy), "fsdax");
		out->kind = JOBSHM_FSDAX;
		return 0;
	}
	if (nv && nv->mode == 1) {
		if (!t->nvm[0])
			return jobshm_fail(err, "--nvram-options=1LM asked, but "
					   "this node is in mode '%s' (no "
					   "persistent-memory NUMA node and no "
					   "nvram_paths)",
					   jobshm_topo_mode(t));
		snprintf(out->mode, sizeof(out->mode), "1LM");
		snprintf(out->nodes, sizeof(out->nodes), "%s", t->nvm);
		snprintf(out->opts, sizeof(out->opts), "mpol=bind:%s", t->nvm);
		snprintf(out->policy, sizeof(out->policy), "bind");
		return 0;
	}
	if (nv && nv->mode == 2) {
		if (!t->memcache)
			return jobshm_fail(err, "--nvram-options=2LM asked, but "
					   "this node is in mode '%s' (no "
					   "memory-side cache)",
					   jobshm_topo_mode(t));
		snprintf(out->mode, sizeof(out->mode), "2LM");
	}
	switch (m->kind) {
	case JOBSHM_MPOL_DEFAULT:
		snprintf(out->policy, sizeof(out->policy), "default");
		snprintf(out->nodes, sizeof(out->nodes), "%s", t->all);
		return 0;
	case JOBSHM_MPOL_BIND:
		if (each_range(m->nodes, all_in, (void *)t->all) != 0)
			return jobshm_fail(err, "--shm-mpol=bind:%s: this node's "
					   "NUMA nodes are %s", m->nodes, t->all);
		snprintf(out->nodes, sizeof(out->nodes), "%s", m->nodes);
		break;
	default:
		snprintf(out->nodes, sizeof(out->nodes), "%s", t->near);
	}
	snprintf(out->policy, sizeof(out->policy), "%s",
		 m->kind == JOBSHM_MPOL_INTERLEAVE ? "interleave" : "bind");
	snprintf(out->opts, sizeof(out->opts), "mpol=%s:%s", out->policy,
		 out->nodes);
	return 0;
}
