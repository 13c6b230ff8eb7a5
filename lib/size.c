/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Size parsing in Slurm's --mem convention: bare number = MiB. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int
jobshm_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out,
		 const char **end)
{
	char *ep;
	unsigned long long v;

	if (!isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	v = strtoull(s, &ep, 10);
	if (errno == ERANGE || v < min || v > max)
		return -1;
	if (!end && *ep != '\0')
		return -1;
	if (end)
		*end = ep;
	*out = v;
	return 0;
}

static int
unit_shift(const char *u, unsigned *shift)
{
	static const char units[] = "KMGT";
	const char *p;

	if (u[0] == '\0') {
		*shift = 20;	/* bare number: MiB, as --mem */
		return 0;
	}
	p = strchr(units, toupper((unsigned char)u[0]));
	if (!p || u[0] == '\0')
		return -1;
	if (u[1] != '\0' && !((u[1] == 'B' || u[1] == 'b') && u[2] == '\0'))
		return -1;
	*shift = 10 * (unsigned)(p - units + 1);
	return 0;
}

static int
parse_percent(const char *s, const char *ep, struct jobshm_size *out,
	      jobshm_err_t *err, uint64_t v)
{
	if (strcmp(ep, "%") != 0)
		return jobshm_fail(err, "invalid size '%s': expected %s",
				   s, JOBSHM_SIZE_FORMS);
	if (v < 1 || v > 100)
		return jobshm_fail(err, "invalid size '%s': a percentage "
				   "must be 1-100%%", s);
	out->percent = (unsigned)v;
	return 0;
}

int
jobshm_size_parse(const char *s, struct jobshm_size *out, jobshm_err_t *err)
{
	const char *ep;
	uint64_t v;
	unsigned shift;

	memset(out, 0, sizeof(*out));
	if (!s || !*s)
		return jobshm_fail(err, "invalid size '' (empty): expected %s",
				   JOBSHM_SIZE_FORMS);
	if (strcasecmp(s, "none") == 0 || strcmp(s, "0") == 0) {
		out->none = 1;
		return 0;
	}
	if (jobshm_parse_u64(s, 0, UINT64_MAX, &v, &ep) < 0)
		return jobshm_fail(err, "invalid size '%s': expected %s",
				   s, JOBSHM_SIZE_FORMS);
	if (*ep == '%')
		return parse_percent(s, ep, out, err, v);
	if (unit_shift(ep, &shift) < 0)
		return jobshm_fail(err, "invalid size '%s': unknown unit '%s'"
				   "; expected %s", s, ep, JOBSHM_SIZE_FORMS);
	if (v == 0)
		return jobshm_fail(err, "invalid size '%s': use 0 or none "
				   "for no private shm", s);
	if (v > (UINT64_MAX >> 1) >> shift)
		return jobshm_fail(err, "invalid size '%s': too large", s);
	out->bytes = v << shift;
	return 0;
}

int
jobshm_size_resolve(const struct jobshm_size *sz, uint64_t whole,
		    uint64_t *bytes, jobshm_err_t *err)
{
	if (sz->none) {
		*bytes = 0;
		return 0;
	}
	if (!sz->percent) {
		*bytes = sz->bytes;
		return 0;
	}
	if (whole == 0)
		return jobshm_fail(err, "a size of %u%% needs a known memory "
				   "size; ask for an absolute size instead",
				   sz->percent);
	*bytes = whole / 100 * sz->percent + whole % 100 * sz->percent / 100;
	return 0;
}

const char *
jobshm_size_format(uint64_t bytes, char *buf, size_t len)
{
	static const char units[] = "BKMGTPE";
	double v = (double)bytes;
	int i = 0;

	while (v >= 1024 && i < 6) {
		v /= 1024;
		i++;
	}
	if (i == 0)
		snprintf(buf, len, "%" PRIu64 "B", bytes);
	else if (v == (double)(uint64_t)v)
		snprintf(buf, len, "%.0f%c", v, units[i]);
	else
		snprintf(buf, len, "%.1f%c", v, units[i]);
	return buf;
}
