/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Topology through hwloc (never /sys by hand): the job's NUMA nodes,
 * persistent-memory NUMA nodes, and memory-side caches (2LM). */
#include <hwloc.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

static int
load(hwloc_topology_t *t, const char *xml, jobshm_err_t *err)
{
	if (hwloc_topology_init(t) < 0)
		return jobshm_fail(err, "hwloc: cannot initialize");
	hwloc_topology_set_type_filter(*t, HWLOC_OBJ_MEMCACHE,
				       HWLOC_TYPE_FILTER_KEEP_ALL);
	if (xml && *xml && hwloc_topology_set_xml(*t, xml) < 0) {
		hwloc_topology_destroy(*t);
		return jobshm_fail(err, "topology_xml %s: %m", xml);
	}
	if (hwloc_topology_load(*t) < 0) {
		hwloc_topology_destroy(*t);
		return jobshm_fail(err, "hwloc: cannot load the topology%s%s",
				   xml ? " from " : "", xml ? xml : "");
	}
	return 0;
}

/* The cpuset of Slurm's core list ("0-3,8"): core logical indexes. */
static int
cores_cpuset(hwloc_topology_t t, const char *cores, hwloc_bitmap_t set,
	     jobshm_err_t *err)
{
	hwloc_bitmap_t idx = hwloc_bitmap_alloc();
	int i, rc = 0;

	if (!cores || !*cores) {
		hwloc_bitmap_copy(set, hwloc_topology_get_topology_cpuset(t));
		hwloc_bitmap_free(idx);
		return 0;
	}
	if (hwloc_bitmap_list_sscanf(idx, cores) < 0)
		rc = jobshm_fail(err, "bad core list '%s'", cores);
	hwloc_bitmap_zero(set);
	hwloc_bitmap_foreach_begin(i, idx) {
		hwloc_obj_t c = hwloc_get_obj_by_type(t, HWLOC_OBJ_CORE, (unsigned)i);

		if (c)
			hwloc_bitmap_or(set, set, c->cpuset);
	} hwloc_bitmap_foreach_end();
	hwloc_bitmap_free(idx);
	return rc;
}

static int
is_nvm(hwloc_obj_t n)
{
	return n->subtype && !strcmp(n->subtype, "NVM");
}

/* A node list into buf; -1 if it does not fit (never a cut list). */
static int
list_into(char *buf, size_t len, hwloc_const_bitmap_t set, jobshm_err_t *err)
{
	int n = hwloc_bitmap_list_snprintf(buf, len, set);

	if (n < 0 || (size_t)n >= len)
		return jobshm_fail(err, "NUMA node list of %d nodes does not "
				   "fit in %zu characters",
				   hwloc_bitmap_weight(set), len - 1);
	return 0;
}

static int
classify(hwloc_topology_t t, hwloc_const_bitmap_t cpus,
	 struct jobshm_topo *out, jobshm_err_t *err)
{
	hwloc_bitmap_t near = hwloc_bitmap_alloc(), all = hwloc_bitmap_alloc();
	hwloc_bitmap_t nvm = hwloc_bitmap_alloc();
	hwloc_obj_t n = NULL;
	int rc;

	while ((n = hwloc_get_next_obj_by_type(t, HWLOC_OBJ_NUMANODE, n))) {
		out->nnuma++;
		if (is_nvm(n)) {
			hwloc_bitmap_set(nvm, n->os_index);
			out->nvm_bytes += n->attr->numanode.local_memory;
			continue;
		}
		hwloc_bitmap_set(all, n->os_index);
		if (hwloc_bitmap_intersects(n->cpuset, cpus))
			hwloc_bitmap_set(near, n->os_index);
	}
	if (hwloc_bitmap_iszero(near))
		hwloc_bitmap_copy(near, all);
	rc = list_into(out->near, sizeof(out->near), near, err) < 0 ||
	     list_into(out->all, sizeof(out->all), all, err) < 0 ||
	     list_into(out->nvm, sizeof(out->nvm), nvm, err) < 0 ? -1 : 0;
	out->memcache = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_MEMCACHE) > 0;
	hwloc_bitmap_free(near);
	hwloc_bitmap_free(all);
	hwloc_bitmap_free(nvm);
	return rc;
}

int
jobshm_topo_probe(const char *xml, const char *cores, struct jobshm_topo *out,
		  jobshm_err_t *err)
{
	hwloc_topology_t t;
	hwloc_bitmap_t cpus;
	int rc;

	memset(out, 0, sizeof(*out));
	if (load(&t, xml, err) < 0)
		return -1;
	cpus = hwloc_bitmap_alloc();
	rc = cores_cpuset(t, cores, cpus, err);
	if (rc == 0)
		rc = classify(t, cpus, out, err);
	hwloc_bitmap_free(cpus);
	hwloc_topology_destroy(t);
	return rc;
}

const char *
jobshm_topo_mode(const struct jobshm_topo *t)
{
	if (t->memcache)
		return "2LM";
	return t->nvm[0] ? "1LM" : "no NVRAM";
}
