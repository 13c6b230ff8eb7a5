/* Helpers shared by libjobshm's files; not installed. */
#ifndef JOBSHM_INTERNAL_H
#define JOBSHM_INTERNAL_H

#include "jobshm.h"

int jobshm_fail(jobshm_err_t *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Parse an unsigned decimal in [min, max] that fills all of s. */
int jobshm_parse_u64(const char *s, uint64_t min, uint64_t max,
		     uint64_t *out, const char **end);

/*
 * Call fn(device "maj:min", mount point, "fstype source superoptions")
 * for each line of a mountinfo file until fn returns non-zero; returns
 * that value, 0 at the end, -1 if the file cannot be read.
 */
typedef int (*jobshm_mount_f)(const char *dev, const char *mp,
			      const char *super, void *arg);
int jobshm_mountinfo_each(const char *file, jobshm_mount_f fn, void *arg);

#endif
