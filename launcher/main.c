/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * enqueue_jobshm - an enqueue_compss-style front door: writes the batch
 * script (and COMPSs's XML files) for a task-runtime job with a private
 * node-wide shm, and submits it with sbatch.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "opts.h"

static const char *prog = "enqueue_jobshm";

static int
write_xml(const struct request *r)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/project.xml", r->xml_dir);
	if (!(f = fopen(path, "w")))
		goto fail;
	write_project(f, r, r->hosts);
	if (fclose(f) != 0)
		goto fail;
	snprintf(path, sizeof(path), "%s/resources.xml", r->xml_dir);
	if (!(f = fopen(path, "w")))
		goto fail;
	write_resources(f, r, r->hosts);
	if (fclose(f) != 0)
		goto fail;
	return 0;
fail:
	fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
	return 1;
}

/* node1,node2,... for --dry-run, where the real hosts are not known */
static char *
placeholder_hosts(unsigned n)
{
	char *s = calloc(n, 16);
	unsigned i;

	for (i = 0; s && i < n; i++)
		sprintf(s + strlen(s), "%snode%u", i ? "," : "", i + 1);
	return s;
}

static int
dry_run(const struct request *r, const char *self)
{
	char *hosts;

	write_batch(stdout, r, self);
	if (strcmp(r->runtime, "compss"))
		return 0;
	hosts = placeholder_hosts(r->num_nodes);
	printf("\n--- project.xml (hosts as node1..node%u) ---\n", r->num_nodes);
	write_project(stdout, r, hosts);
	printf("\n--- resources.xml ---\n");
	write_resources(stdout, r, hosts);
	free(hosts);
	return 0;
}

static int
submit(const struct request *r, const char *self)
{
	/* --parsable: sbatch's own, "JOBID[;CLUSTER]" and nothing else */
	FILE *p = popen(r->parsable ? "sbatch --parsable" : "sbatch", "w");
	int st;

	if (!p) {
		fprintf(stderr, "%s: cannot run sbatch: %s\n", prog,
			strerror(errno));
		return 1;
	}
	write_batch(p, r, self);
	st = pclose(p);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "%s: sbatch failed\n", prog);
		return 1;
	}
	return 0;
}

int
main(int ac, char **av)
{
	char self[PATH_MAX];
	struct request r;
	ssize_t n;

	if (request_parse(&r, ac, av) < 0)
		return 2;
	if (r.xml_dir)
		return write_xml(&r);
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	self[n > 0 ? n : 0] = '\0';
	return r.dry_run ? dry_run(&r, self) : submit(&r, self);
}
