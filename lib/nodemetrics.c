/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The node's totals for the node exporter (metrics.c has the per-job
 * files): jobshm.prom in metrics_dir, from the listing of the node's job
 * directories: running jobs with a shm, their sizes, what they hold,
 * and what ended jobs' held tmpfs still keep.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

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

			jobshm_metrics_label(node, sizeof(node), t->n[i].node);
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

	if (!c->metrics_dir[0] || (dir = jobshm_metrics_dir_open(c)) < 0)
		return c->metrics_dir[0] ? -1 : 0;
	memset(&t, 0, sizeof(t));
	jobshm_list(c, add_entry, &t, &ignore);
	n = node_text(&t, text, sizeof(text));
	rc = n < sizeof(text) ? jobshm_metrics_publish(dir, "jobshm.prom", text, n) : -1;
	close(dir);
	return rc;
}

int
jobshm_metrics_node_stale(const struct jobshm_conf *c, unsigned seconds)
{
	struct stat st;
	int dir;

	if (!c->metrics_dir[0] || (dir = jobshm_metrics_dir_open(c)) < 0)
		return 0;
	if (fstatat(dir, "jobshm.prom", &st, AT_SYMLINK_NOFOLLOW) < 0)
		st.st_mtime = 0;
	close(dir);
	return time(NULL) - st.st_mtime >= (time_t)seconds;
}
