/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target: the growth path.  A later step's options (--shm and
 * --nvram-options, as typed) against a job whose shm is `current` bytes
 * and whose memory is `job_mem`: whatever admission accepts stays within
 * the node's limit and the job's memory, and persistent memory never
 * grows.  Input: 16 bytes of sizes, then "shm\nnvram".
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jobshm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct jobshm_request r = { 0 };
	struct jobshm_conf conf;
	jobshm_err_t err;
	uint64_t b, max;
	char *s, *nl;

	if (len < 16)
		return 0;
	memcpy(&r.current, data, 8);
	memcpy(&r.job_mem, data + 8, 8);
	r.current >>= 20;	/* up to 16 TiB */
	r.job_mem >>= 20;
	if (!(s = malloc(len - 16 + 1)))
		return 0;
	memcpy(s, data + 16, len - 16);
	s[len - 16] = '\0';
	if ((nl = strchr(s, '\n'))) {
		*nl = '\0';
		if (jobshm_nvram_parse(nl + 1, &r.nvram, &err) < 0)
			memset(&r.nvram, 0, sizeof(r.nvram));
	}
	r.shm = s;
	jobshm_conf_defaults(&conf);
	max = jobshm_conf_max_bytes(&conf);
	if (jobshm_admit_request(&conf, &r, &b, &err) == 0) {
		if (r.nvram.mode == 1 && r.current && b > r.current)
			abort();	/* 1LM grew */
		if (r.nvram.mode != 1 && b > max)
			abort();	/* past max_size */
		if (r.nvram.mode != 1 && r.job_mem && b > r.job_mem)
			abort();	/* past the job's memory */
	} else if (!err.msg[0]) {
		abort();
	}
	free(s);
	return 0;
}
