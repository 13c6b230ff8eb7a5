/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libFuzzer target: the size parser and admission never crash, and what
 * they accept is consistent. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jobshm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct jobshm_size sz;
	struct jobshm_conf conf;
	jobshm_err_t err;
	uint64_t b;
	char *s = malloc(len + 1);

	if (!s)
		return 0;
	memcpy(s, data, len);
	s[len] = '\0';
	if (jobshm_size_parse(s, &sz, &err) == 0) {
		if (!sz.none && !sz.percent && (sz.bytes == 0 ||
						sz.bytes >= (1ULL << 63)))
			abort();
		if (sz.percent > 100)
			abort();
		if (jobshm_size_resolve(&sz, 1ULL << 40, &b, &err) == 0 &&
		    b > (1ULL << 63))
			abort();
	} else if (!strstr(err.msg, "size")) {
		abort();	/* every refusal names what was wrong */
	}
	jobshm_conf_defaults(&conf);
	jobshm_admit(&conf, s, 1ULL << 30, &b, &err);
	{	/* the placement parsers take user input too */
		struct jobshm_mpol m;
		struct jobshm_nvram n;

		if (jobshm_mpol_parse(s, &m, &err) == 0 &&
		    m.kind == JOBSHM_MPOL_BIND && !m.nodes[0])
			abort();
		if (jobshm_nvram_parse(s, &n, &err) == 0 &&
		    (n.bytes < (2ULL << 30) || n.bytes > (4000ULL << 30)))
			abort();
	}
	free(s);
	return 0;
}
