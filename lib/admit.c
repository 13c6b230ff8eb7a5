/* Policy: what size a job gets on a node, or why it gets nothing. */
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

int
jobshm_admit(const struct jobshm_conf *conf, const char *request,
	     uint64_t job_mem, uint64_t *bytes, jobshm_err_t *err)
{
	const char *shown = request && *request ? request : "(default_size)";
	struct jobshm_size sz;
	uint64_t max = jobshm_conf_max_bytes(conf);
	char a[32], b[32];
	jobshm_err_t e;

	if (pick_request(conf, request, &sz, err) < 0)
		return -1;
	if (jobshm_size_resolve(&sz, job_mem, bytes, &e) < 0)
		return jobshm_fail(err, "--shm=%s: %s", shown, e.msg);
	if (*bytes == 0)
		return 0;
	if (*bytes > max)
		return jobshm_fail(err, "--shm=%s (%s) is larger than this "
				   "node's limit (max_size = %s)", shown,
				   jobshm_size_format(*bytes, a, sizeof(a)),
				   jobshm_size_format(max, b, sizeof(b)));
	if (conf->count_against_job_mem && job_mem && *bytes > job_mem)
		return jobshm_fail(err, "--shm=%s (%s) is larger than the "
				   "job's memory on this node (%s); ask for "
				   "more --mem or a smaller --shm", shown,
				   jobshm_size_format(*bytes, a, sizeof(a)),
				   jobshm_size_format(job_mem, b, sizeof(b)));
	return 0;
}
