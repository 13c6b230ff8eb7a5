/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Admission: the one place that decides how big a job's shm may be on a
 * node, whatever asked for it (--shm, --nvram-options, default_size, or a
 * later step that would grow it).  Where the memory then comes from is
 * checked by the placement (an fsdax reservation is taken under its
 * store's lock in fsdax.c), never the size policy.
 */
#include <inttypes.h>
#include <stdio.h>

#include "internal.h"

static int
pick_request(const struct jobshm_conf *conf, const char *request,
	     struct jobshm_size *sz, jobshm_err_t *err)
{
	jobshm_err_t e;

	if (!request || !*request) {
		*sz = conf->default_size;
		return 0;
	}
	if (jobshm_size_parse(request, sz, &e) < 0)
		return jobshm_fail(err, "--shm: %s", e.msg);
	if (sz->none && !conf->allow_opt_out && !conf->default_size.none)
		return jobshm_fail(err, "--shm=%s: this cluster does not allow "
				   "opting out of the job shm "
				   "(allow_opt_out = false)", request);
	return 0;
}

/*
 * The node's limit and the job's memory: for everything held in DRAM.
 * At submit, a max_size that is a share of RAM is the node's, not known.
 */
static int
dram_limits(const struct jobshm_conf *conf, const char *shown, uint64_t bytes,
	    const struct jobshm_request *req, jobshm_err_t *err)
{
	uint64_t max = jobshm_conf_max_bytes(conf), job_mem = req->job_mem;
	char a[32], b[32];

	if (bytes > max && !(req->submit && conf->max_size.percent))
		return jobshm_fail(err, "%s (%s) is larger than this "
				   "node's limit (max_size = %s)", shown,
				   jobshm_size_format(bytes, a, sizeof(a)),
				   jobshm_size_format(max, b, sizeof(b)));
	if (conf->count_against_job_mem && job_mem && bytes > job_mem)
		return jobshm_fail(err, "%s (%s) is larger than the "
				   "job's memory on this node (%s); ask for "
				   "more --mem or a smaller --shm", shown,
				   jobshm_size_format(bytes, a, sizeof(a)),
				   jobshm_size_format(job_mem, b, sizeof(b)));
	return 0;
}

/*
 * 1LM is persistent memory, not the job's DRAM: it is sized once, by the
 * job's first step on the node, against the node's persistent memory.
 */
static int
pmem_limits(const struct jobshm_request *req, const char *shown,
	    uint64_t bytes, jobshm_err_t *err)
{
	char a[32], b[32];

	if (req->current && bytes > req->current)
		return jobshm_fail(err, "%s: the job's shm on this node is "
				   "%s and persistent memory is sized by the "
				   "job's first step; it cannot grow to %s",
				   shown, jobshm_size_format(req->current, a,
							     sizeof(a)),
				   jobshm_size_format(bytes, b, sizeof(b)));
	if (!req->current && req->pmem && bytes > req->pmem)
		return jobshm_fail(err, "%s (%s) is larger than this node's "
				   "persistent memory (%s)", shown,
				   jobshm_size_format(bytes, a, sizeof(a)),
				   jobshm_size_format(req->pmem, b, sizeof(b)));
	return 0;
}

int
jobshm_admit_request(const struct jobshm_conf *conf,
		     const struct jobshm_request *req, uint64_t *bytes,
		     jobshm_err_t *err)
{
	const char *request = req->shm;
	char shown[96];
	struct jobshm_size sz;
	jobshm_err_t e;

	if (req->nvram.mode) {
		*bytes = req->nvram.bytes;
		snprintf(shown, sizeof(shown), "--nvram-options=%dLM:%" PRIu64
			 "G", req->nvram.mode, *bytes >> 30);
		return req->nvram.mode == 1 ?
		       pmem_limits(req, shown, *bytes, err) :
		       dram_limits(conf, shown, *bytes, req, err);
	}
	snprintf(shown, sizeof(shown), "--shm=%.80s",
		 request && *request ? request : "(default_size)");
	*bytes = 0;
	if (req->submit && (!request || !*request))
		return 0;	/* the node's default_size: the node's */
	if (pick_request(conf, request, &sz, err) < 0)
		return -1;
	if (req->submit && sz.percent)
		return 0;	/* a share of memory: the node decides */
	if (jobshm_size_resolve(&sz, req->job_mem, bytes, &e) < 0)
		return jobshm_fail(err, "%s: %s", shown, e.msg);
	if (*bytes == 0)
		return 0;
	return dram_limits(conf, shown, *bytes, req, err);
}

int
jobshm_admit(const struct jobshm_conf *conf, const char *request,
	     uint64_t job_mem, uint64_t *bytes, jobshm_err_t *err)
{
	struct jobshm_request req = { .shm = request, .job_mem = job_mem };

	return jobshm_admit_request(conf, &req, bytes, err);
}
