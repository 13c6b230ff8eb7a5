/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The node's usage log: one JSON object per line for each job's shm on
 * the node, appended by the job epilog (as root, in slurmd), for site
 * collectors and `jobshm report`.  Rotated by size: past usage_log_max
 * the log becomes <usage_log>.1 (one old file kept) and a new one starts.
 * Every line has one format, written and read here.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define JSON_FMT "{\"job\": %" PRIu32 ", \"node\": \"%s\", \"uid\": %u, " \
	"\"kind\": \"%s\", \"size\": %" PRIu64 ", \"peak\": %" PRIu64 ", " \
	"\"final\": %" PRIu64 ", \"full\": %u, \"start\": %" PRId64 ", " \
	"\"end\": %" PRId64 "}"
#define JSON_SCN "{\"job\": %" SCNu32 ", \"node\": \"%127[^\"]\", " \
	"\"uid\": %u, \"kind\": \"%7[^\"]\", \"size\": %" SCNu64 ", " \
	"\"peak\": %" SCNu64 ", \"final\": %" SCNu64 ", \"full\": %u, " \
	"\"start\": %" SCNd64 ", \"end\": %" SCNd64 "}"

const char *
jobshm_usage_json(const struct jobshm_usage *u, char *buf, size_t len)
{
	snprintf(buf, len, JSON_FMT, u->jobid, u->node, (unsigned)u->uid,
		 u->kind, u->size, u->peak, u->used, u->full, u->start, u->end);
	return buf;
}

int
jobshm_usage_parse(const char *line, struct jobshm_usage *u)
{
	unsigned uid;

	memset(u, 0, sizeof(*u));
	if (sscanf(line, JSON_SCN, &u->jobid, u->node, &uid, u->kind, &u->size,
		   &u->peak, &u->used, &u->full, &u->start, &u->end) != 10)
		return -1;
	u->uid = uid;
	return 0;
}

/* The log, open for appending and locked, rotated first if the line
 * would take it past max; -2 when its directory does not exist (the
 * log is then off), -1 on error. */
static int
log_open(const struct jobshm_conf *c, size_t len, jobshm_err_t *err)
{
	char old[sizeof(c->usage_log) + 2];
	struct stat fst, st;
	int fd, i;

	for (i = 0; i < 8; i++) {
		fd = open(c->usage_log, O_WRONLY | O_APPEND | O_CREAT |
			  O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0)
			return errno == ENOENT ? -2 : jobshm_fail(err, "open "
				"%s: %m", c->usage_log);
		if (flock(fd, LOCK_EX) < 0 || fstat(fd, &fst) < 0 ||
		    stat(c->usage_log, &st) < 0 || st.st_ino != fst.st_ino) {
			close(fd);	/* rotated meanwhile: the new one */
			continue;
		}
		if (!c->usage_log_max || !fst.st_size ||
		    (uint64_t)fst.st_size + len <= c->usage_log_max)
			return fd;
		snprintf(old, sizeof(old), "%s.1", c->usage_log);
		if (rename(c->usage_log, old) < 0)
			return fd;	/* keep logging, past max */
		close(fd);
	}
	return jobshm_fail_code(err, EAGAIN, "%s: rotated under us too often",
				c->usage_log);
}

int
jobshm_usage_log_append(const struct jobshm_conf *c, const char *json,
			jobshm_err_t *err)
{
	size_t n = strlen(json);
	char line[1024];
	int fd = log_open(c, n + 1, err), rc = 0;

	if (fd < 0)
		return fd == -2 ? 0 : -1;
	snprintf(line, sizeof(line), "%s\n", json);
	if (write(fd, line, n + 1) != (ssize_t)(n + 1))
		rc = jobshm_fail(err, "write %s: %m", c->usage_log);
	close(fd);
	return rc;
}

/* The records of jobid in one file of the log; -1 if fn said stop. */
static int
log_file(const char *path, uint32_t jobid, jobshm_usage_f fn, void *arg)
{
	struct jobshm_usage u;
	char line[1024];
	FILE *f = fopen(path, "re");
	int rc = 0;

	if (!f)
		return 0;
	while (rc >= 0 && fgets(line, sizeof(line), f))
		if (jobshm_usage_parse(line, &u) == 0 &&
		    (!jobid || u.jobid == jobid))
			rc = fn(&u, arg);
	fclose(f);
	return rc;
}

int
jobshm_usage_log_each(const struct jobshm_conf *c, uint32_t jobid,
		      jobshm_usage_f fn, void *arg)
{
	char old[sizeof(c->usage_log) + 2];

	if (!c->usage_log[0])
		return 0;
	snprintf(old, sizeof(old), "%s.1", c->usage_log);
	return log_file(old, jobid, fn, arg) < 0 ? -1 :
	       log_file(c->usage_log, jobid, fn, arg);
}
