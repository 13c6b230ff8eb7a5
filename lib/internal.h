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
typedef int (*jobshm_mount_f)(const char *dev, const char *root,
			      const char *mp, const char *super, void *arg);
int jobshm_mountinfo_each(const char *file, jobshm_mount_f fn, void *arg);

/* place.c: a node list ("0-1,3") as a 1024-bit mask; -1 if malformed. */
int jobshm_nodes_mask(const char *list,
		     unsigned long mask[1024 / (8 * sizeof(long))]);

/* fsdax.c */
int jobshm_fsdax_create(const struct jobshm_job *job, int basefd,
			const char *node, uint64_t bytes, jobshm_err_t *err);
int jobshm_fsdax_reserved(const struct jobshm_job *job, uint64_t *bytes);
int jobshm_fsdax_remove_at(int store, uint32_t jobid);

/* Remove parent/name and all below it; never follows a link. */
int jobshm_rmtree_at(int parent, const char *name);

/* job.c: the job's base directory, opened root-checked and locked. */
int jobshm_open_base(const struct jobshm_job *job, int create,
		     jobshm_err_t *err);

#endif
