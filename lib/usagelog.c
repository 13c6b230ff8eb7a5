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
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "internal.h"

/* The fields of a line, in their order: name, and where in the record. */
enum field_type { U32, U64, I64, UID, STR };
static const struct field {
	const char *name;
	enum field_type type;
	size_t off, len;
	int optional;	/* absent from older logs: "" or 0 */
} fields[] = {
	{ "job", U32, offsetof(struct jobshm_usage, jobid), 0, 0 },
	{ "node", STR, offsetof(struct jobshm_usage, node),
	  sizeof(((struct jobshm_usage *)0)->node), 0 },
	{ "uid", UID, offsetof(struct jobshm_usage, uid), 0, 0 },
	{ "kind", STR, offsetof(struct jobshm_usage, kind),
	  sizeof(((struct jobshm_usage *)0)->kind), 0 },
	{ "size", U64, offsetof(struct jobshm_usage, size), 0, 0 },
	{ "peak", U64, offsetof(struct jobshm_usage, peak), 0, 0 },
	{ "final", U64, offsetof(struct jobshm_usage, used), 0, 0 },
	{ "full", U32, offsetof(struct jobshm_usage, full), 0, 0 },
	{ "start", I64, offsetof(struct jobshm_usage, start), 0, 0 },
	{ "end", I64, offsetof(struct jobshm_usage, end), 0, 0 },
	{ "name", STR, offsetof(struct jobshm_usage, name),
	  sizeof(((struct jobshm_usage *)0)->name), 1 },
	{ "left_step", U32, offsetof(struct jobshm_usage, left_step), 0, 1 },
	{ "left_files", U32, offsetof(struct jobshm_usage, left_files), 0, 1 },
	{ "left_bytes", U64, offsetof(struct jobshm_usage, left_bytes), 0, 1 },
};
#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

static json_object *
field_value(const struct field *f, const struct jobshm_usage *u)
{
	const char *p = (const char *)u + f->off;

	switch (f->type) {
	case U32: return json_object_new_int64(*(const uint32_t *)(const void *)p);
	case UID: return json_object_new_int64(*(const uid_t *)(const void *)p);
	case U64: return json_object_new_uint64(*(const uint64_t *)(const void *)p);
	case I64: return json_object_new_int64(*(const int64_t *)(const void *)p);
	default:  return json_object_new_string(p);
	}
}

const char *
jobshm_usage_json(const struct jobshm_usage *u, char *buf, size_t len)
{
	json_object *o = json_object_new_object();

	for (size_t i = 0; o && i < NFIELDS; i++)
		json_object_object_add(o, fields[i].name,
				       field_value(&fields[i], u));
	snprintf(buf, len, "%s", o ? json_object_to_json_string_ext(o,
		 JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE) :
		 "{}");
	json_object_put(o);
	return buf;
}

/* One field of a parsed line into u; -1 if it is missing or mistyped. */
static int
field_set(const struct field *f, json_object *o, struct jobshm_usage *u)
{
	json_object *v;
	char *p = (char *)u + f->off;

	if (!json_object_object_get_ex(o, f->name, &v))
		return f->optional ? 0 : -1;
	if (f->type == STR) {
		if (!json_object_is_type(v, json_type_string))
			return -1;
		snprintf(p, f->len, "%s", json_object_get_string(v));
		return 0;
	}
	if (!json_object_is_type(v, json_type_int))
		return -1;
	switch (f->type) {
	case U32: *(uint32_t *)(void *)p = (uint32_t)json_object_get_int64(v); break;
	case UID: *(uid_t *)(void *)p = (uid_t)json_object_get_int64(v); break;
	case U64: *(uint64_t *)(void *)p = json_object_get_uint64(v); break;
	default:  *(int64_t *)(void *)p = json_object_get_int64(v); break;
	}
	return 0;
}

int
jobshm_usage_parse(const char *line, struct jobshm_usage *u)
{
	json_object *o = json_tokener_parse(line);
	int rc = o && json_object_is_type(o, json_type_object) ? 0 : -1;

	memset(u, 0, sizeof(*u));
	for (size_t i = 0; rc == 0 && i < NFIELDS; i++)
		rc = field_set(&fields[i], o, u);	/* others: ignored */
	json_object_put(o);
	return rc;
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

/* The records of jobid in one file of the log; -1 if fn said stop.  A
 * line that is not a record (cut, or another program's) is skipped, and
 * bad (if given) told its file and line. */
static int
log_file(const char *path, uint32_t jobid, jobshm_usage_f fn,
	 jobshm_usage_bad_f bad, void *arg)
{
	struct jobshm_usage u;
	char line[4096];
	unsigned n = 0;
	FILE *f = fopen(path, "re");
	int rc = 0;

	if (!f)
		return 0;
	while (rc >= 0 && fgets(line, sizeof(line), f)) {
		n++;
		if (jobshm_usage_parse(line, &u) < 0) {
			if (bad && line[strspn(line, " \t\n")])
				bad(path, n, arg);
			continue;
		}
		if (!jobid || u.jobid == jobid)
			rc = fn(&u, arg);
	}
	fclose(f);
	return rc;
}

int
jobshm_usage_file_scan(const char *path, jobshm_usage_f fn,
		       jobshm_usage_bad_f bad, void *arg)
{
	FILE *f = fopen(path, "re");

	if (!f)
		return -1;
	fclose(f);
	return log_file(path, 0, fn, bad, arg) < 0 ? -2 : 0;
}

int
jobshm_usage_log_scan(const struct jobshm_conf *c, uint32_t jobid,
		      jobshm_usage_f fn, jobshm_usage_bad_f bad, void *arg)
{
	char old[sizeof(c->usage_log) + 2];

	if (!c->usage_log[0])
		return 0;
	snprintf(old, sizeof(old), "%s.1", c->usage_log);
	return log_file(old, jobid, fn, bad, arg) < 0 ? -1 :
	       log_file(c->usage_log, jobid, fn, bad, arg);
}

int
jobshm_usage_log_each(const struct jobshm_conf *c, uint32_t jobid,
		      jobshm_usage_f fn, void *arg)
{
	return jobshm_usage_log_scan(c, jobid, fn, NULL, arg);
}
