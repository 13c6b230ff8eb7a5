/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Metrics for Prometheus's node exporter (its textfile collector): one
 * file per running --shm job and node, jobshm-job-<jobid>-<node>.prom,
 * kept by the job's steps' samplers (at most once per usage_interval)
 * and removed at the job's end, and jobshm.prom with the node's totals.
 * Written in the text exposition format under a temporary name and
 * renamed, so a scrape never reads half a file.  metrics_dir must be
 * root's and not writable by others; nothing in it is followed (names
 * are opened O_NOFOLLOW relative to its descriptor, O_EXCL for the
 * temporary), so a user can neither plant nor redirect a file there.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define JOB_METRICS 5

static const struct {
	const char *name, *type, *help;
} job_metric[JOB_METRICS] = {
	{ "jobshm_job_size_bytes", "gauge",
	  "Size of the job's private /dev/shm on this node." },
	{ "jobshm_job_used_bytes", "gauge",
	  "Bytes the job's /dev/shm holds now." },
	{ "jobshm_job_peak_bytes", "gauge",
	  "The most the job's /dev/shm held at any sample." },
	{ "jobshm_job_full_total", "counter",
	  "Times a sample found the job's /dev/shm full." },
	{ "jobshm_job_info", "gauge",
	  "The job's shm: 1, labelled with its kind (tmpfs or fsdax)." },
};

/* metrics_dir open, if it is a directory of root's others cannot
 * write; -1 (errno) if not. */
static int
dir_open(const struct jobshm_conf *c)
{
	struct stat st;
	int fd = open(c->metrics_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		      O_CLOEXEC);

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || st.st_uid != 0 || (st.st_mode & 022)) {
		close(fd);
		errno = EPERM;
		return -1;
	}
	return fd;
}

/* A label value as the format wants it: \, " and newline escaped. */
static void
label(char *out, size_t len, const char *v)
{
	size_t n = 0;

	for (; *v && n + 3 < len; v++) {
		if (*v == '\\' || *v == '"' || *v == '\n')
			out[n++] = '\\';
		out[n++] = *v == '\n' ? 'n' : *v;
	}
	out[n] = '\0';
}

/* text into dir/name by a temporary name and a rename. */
static int
publish(int dir, const char *name, const char *text, size_t len)
{
	char tmp[96];
	int fd, rc = -1;

	snprintf(tmp, sizeof(tmp), ".%s.%ld", name, (long)syscall(SYS_gettid));
	unlinkat(dir, tmp, 0);
	fd = openat(dir, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		    O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	if (write(fd, text, len) == (ssize_t)len &&
	    renameat(dir, tmp, dir, name) == 0)
		rc = 0;
	close(fd);
	if (rc < 0)
		unlinkat(dir, tmp, 0);
	return rc;
}

static void
job_file(char *buf, size_t len, uint32_t jobid, const char *node)
{
	snprintf(buf, len, "jobshm-job-%" PRIu32 "%s%.32s.prom", jobid,
		 node[0] ? "-" : "", node);
}

int
jobshm_metrics_job(const struct jobshm_conf *c, const struct jobshm_usage *u,
		   const char *user)
{
	char text[2048], name[96], lab[320], node[160], who[96];
	uint64_t v[JOB_METRICS] = { u->size, u->used, u->peak, u->full, 1 };
	size_t n = 0;
	int dir, rc;

	if (!c->metrics_dir[0] || (dir = dir_open(c)) < 0)
		return c->metrics_dir[0] ? -1 : 0;
	label(node, sizeof(node), u->node);
	label(who, sizeof(who), user);
	snprintf(lab, sizeof(lab), "jobid=\"%" PRIu32 "\",user=\"%s\","
		 "node=\"%s\"", u->jobid, who, node);
	for (int i = 0; i < JOB_METRICS; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n,
				      "# HELP %s %s\n# TYPE %s %s\n%s{%s%s%s%s} %"
				      PRIu64 "\n", job_metric[i].name,
				      job_metric[i].help, job_metric[i].name,
				      job_metric[i].type, job_metric[i].name,
				      lab, i == 4 ? ",kind=\"" : "",
				      i == 4 ? u->kind : "", i == 4 ? "\"" : "",
				      v[i]);
	job_file(name, sizeof(name), u->jobid, u->node);
	rc = n < sizeof(text) ? publish(dir, name, text, n) : -1;
	close(dir);
	return rc;
}

void
jobshm_metrics_job_remove(const struct jobshm_conf *c, uint32_t jobid,
			  const char *node)
{
	char name[96];
	int dir;

	if (!c->metrics_dir[0] || (dir = dir_open(c)) < 0)
		return;
	job_file(name, sizeof(name), jobid, node);
	unlinkat(dir, name, 0);
	close(dir);
}

/* ---- the node's totals ------------------------------------------------- */

#define NODES 16

struct totals {
	struct {
		char node[128];
		uint64_t jobs, admitted, used, held;
	} n[NODES];
	int count;
};

static int
add_entry(const struct jobshm_entry *e, void *arg)
{
	struct totals *t = arg;
	int i;

	for (i = 0; i < t->count && strcmp(t->n[i].node, e->node); i++)
		;
	if (i == t->count) {
		if (t->count == NODES || !e->mounted)
			return 0;
		snprintf(t->n[t->count++].node, sizeof(t->n[0].node), "%s",
			 e->node);
	}
	if (e->held) {
		t->n[i].held += e->used;
	} else if (e->mounted) {
		t->n[i].jobs++;
		t->n[i].admitted += e->size;
		t->n[i].used += e->used;
	}
	return 0;
}

static size_t
node_text(const struct totals *t, char *text, size_t len)
{
	static const struct {
		const char *name, *help;
	} m[4] = {
		{ "jobshm_node_jobs", "Running jobs with a shm on the node." },
		{ "jobshm_node_admitted_bytes", "The sizes of their shm." },
		{ "jobshm_node_used_bytes", "What their shm holds now." },
		{ "jobshm_node_held_bytes", "Bytes ended jobs' shm still holds "
		  "(an emptied file kept open: frozen, left for sweep)." },
	};
	char node[160];
	size_t n = 0;

	for (int k = 0; k < 4; k++) {
		n += (size_t)snprintf(text + n, n < len ? len - n : 0, "# HELP %s "
				      "%s\n# TYPE %s gauge\n", m[k].name,
				      m[k].help, m[k].name);
		for (int i = 0; i < t->count; i++) {
			uint64_t v[4] = { t->n[i].jobs, t->n[i].admitted,
					  t->n[i].used, t->n[i].held };

			label(node, sizeof(node), t->n[i].node);
			n += (size_t)snprintf(text + n, n < len ? len - n : 0,
					      "%s{node=\"%s\"} %" PRIu64 "\n",
					      m[k].name, node, v[k]);
		}
	}
	return n;
}

int
jobshm_metrics_node(const struct jobshm_conf *c)
{
	struct totals t;
	char text[8192];
	jobshm_err_t ignore;
	size_t n;
	int dir, rc;

	if (!c->metrics_dir[0] || (dir = dir_open(c)) < 0)
		return c->metrics_dir[0] ? -1 : 0;
	memset(&t, 0, sizeof(t));
	jobshm_list(c, add_entry, &t, &ignore);
	n = node_text(&t, text, sizeof(text));
	rc = n < sizeof(text) ? publish(dir, "jobshm.prom", text, n) : -1;
	close(dir);
	return rc;
}

int
jobshm_metrics_node_stale(const struct jobshm_conf *c, unsigned seconds)
{
	struct stat st;
	int dir;

	if (!c->metrics_dir[0] || (dir = dir_open(c)) < 0)
		return 0;
	if (fstatat(dir, "jobshm.prom", &st, AT_SYMLINK_NOFOLLOW) < 0)
		st.st_mtime = 0;
	close(dir);
	return time(NULL) - st.st_mtime >= (time_t)seconds;
}
