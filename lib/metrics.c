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

#define JOB_METRICS 6

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
	{ "jobshm_job_step_leftover_bytes", "gauge",
	  "What the last srun step that left files in the job's /dev/shm "
	  "left there at its end (0: none did)." },
};

/* metrics_dir open, if it is a directory of root's others cannot
 * write; -1 (errno) if not. */
int
jobshm_metrics_dir_open(const struct jobshm_conf *c)
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
void
jobshm_metrics_label(char *out, size_t len, const char *v)
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
int
jobshm_metrics_publish(int dir, const char *name, const char *text,
		       size_t len)
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
	char text[4096], name[96], lab[320], node[160], who[96];
	uint64_t v[JOB_METRICS] = { u->size, u->used, u->peak, u->full, 1,
				    u->left_bytes };
	size_t n = 0;
	int dir, rc;

	if (!c->metrics_dir[0] || (dir = jobshm_metrics_dir_open(c)) < 0)
		return c->metrics_dir[0] ? -1 : 0;
	jobshm_metrics_label(node, sizeof(node), u->node);
	jobshm_metrics_label(who, sizeof(who), user);
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
	rc = n < sizeof(text) ? jobshm_metrics_publish(dir, name, text, n) : -1;
	close(dir);
	return rc;
}

void
jobshm_metrics_job_remove(const struct jobshm_conf *c, uint32_t jobid,
			  const char *node)
{
	char name[96];
	int dir;

	if (!c->metrics_dir[0] || (dir = jobshm_metrics_dir_open(c)) < 0)
		return;
	job_file(name, sizeof(name), jobid, node);
	unlinkat(dir, name, 0);
	close(dir);
}

