/* SPDX-License-Identifier: GPL-2.0-or-later */
/* enqueue_jobshm: the request, parsed and checked. */
#ifndef ENQUEUE_OPTS_H
#define ENQUEUE_OPTS_H

#include <stdint.h>
#include <stdio.h>

#define MAX_EXTRA 32
#define MAX_STAGE 16

struct request {
	unsigned exec_time, num_nodes, cpus_per_node, worker_in_master_cpus;
	const char *master_wd, *worker_wd, *lang, *tracing, *graph;
	const char *log_level, *qos, *project, *job_name, *dependency;
	const char *nvram, *cpu_affinity, *shm, *runtime;
	const char *extra[MAX_EXTRA];
	int nextra, dry_run, parsable;
	int wim_given;           /* --worker_in_master_cpus was given     */
	struct { char src[4096], name[256]; } stage[MAX_STAGE];
	int nstage;
	uint64_t shm_bytes;      /* 0: none or a percentage               */
	double nvram_gb;         /* 0: no NVRAM                           */
	char **app;              /* APP and its arguments                 */
	/* hidden: write the runtime's XML files (run inside the job)     */
	const char *xml_dir, *hosts;
};

/* Parse argv; on bad input print "enqueue_jobshm: ..." and return -1. */
int request_parse(struct request *r, int ac, char **av);

/* The batch script for the request. */
void write_batch(FILE *f, const struct request *r, const char *self);

/* project.xml and resources.xml for hosts (comma-separated). */
void write_project(FILE *f, const struct request *r, const char *hosts);
void write_resources(FILE *f, const struct request *r, const char *hosts);

#endif
