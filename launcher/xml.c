/* SPDX-License-Identifier: GPL-2.0-or-later */
/* COMPSs's project.xml and resources.xml (validated in the tests against
 * COMPSs's own schemas). */
#include <stdlib.h>
#include <string.h>

#include "opts.h"

#define NIO "es.bsc.compss.nio.master.NIOAdaptor"

/* Escape for XML text and attributes. */
static void
xml_text(FILE *f, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&': fputs("&amp;", f); break;
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '"': fputs("&quot;", f); break;
		case '\'': fputs("&apos;", f); break;
		default: fputc(*s, f);
		}
	}
}

static const char *
worker_dir(const struct request *r, char *buf, size_t len)
{
	const char *job = getenv("SLURM_JOB_ID");

	if (!strcmp(r->worker_wd, "shm"))	/* the job's private shm */
		snprintf(buf, len, "/dev/shm/compss.%s", job ? job : "JOBID");
	else if (!strcmp(r->worker_wd, "local_disk"))
		snprintf(buf, len, "%s", getenv("TMPDIR") ? getenv("TMPDIR")
							 : "/tmp");
	else
		snprintf(buf, len, "%s", r->worker_wd);
	return buf;
}

/* Calls fn for each host that runs tasks, with its CPU count. */
static void
each_worker(FILE *f, const struct request *r, const char *hosts,
	    void (*fn)(FILE *, const struct request *, const char *, unsigned))
{
	char *list = strdup(hosts), *h, *save = NULL;
	int first = 1;

	for (h = strtok_r(list, ",", &save); h; h = strtok_r(NULL, ",", &save)) {
		unsigned cpus = first ? r->worker_in_master_cpus
				      : r->cpus_per_node;
		first = 0;
		if (cpus)
			fn(f, r, h, cpus);
	}
	free(list);
}

static void
project_node(FILE *f, const struct request *r, const char *host,
	     unsigned cpus)
{
	char wd[512];
	const char *home = getenv("COMPSS_HOME");

	fprintf(f, "  <ComputeNode Name=\"");
	xml_text(f, host);
	fprintf(f, "\">\n    <InstallDir>");
	xml_text(f, home ? home : "/opt/COMPSs");
	fprintf(f, "</InstallDir>\n    <WorkingDir>");
	xml_text(f, worker_dir(r, wd, sizeof(wd)));
	fprintf(f, "</WorkingDir>\n    <LimitOfTasks>%u</LimitOfTasks>\n"
		"  </ComputeNode>\n", cpus);
}

void
write_project(FILE *f, const struct request *r, const char *hosts)
{
	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\" "
		"standalone=\"yes\"?>\n<Project>\n  <MasterNode/>\n");
	each_worker(f, r, hosts, project_node);
	fprintf(f, "</Project>\n");
}

static void
memory(FILE *f, const struct request *r)
{
	double gb = r->nvram_gb ? r->nvram_gb
				: (double)r->shm_bytes / (1 << 30);

	if (gb <= 0)
		return;
	fprintf(f, "    <Memory>\n      <Size>%.3f</Size>\n      <Type>%s"
		"</Type>\n    </Memory>\n", gb,
		r->nvram && !strncmp(r->nvram, "1LM", 3) ? "Non-volatile"
							 : "Volatile");
}

static void
resources_node(FILE *f, const struct request *r, const char *host,
	       unsigned cpus)
{
	fprintf(f, "  <ComputeNode Name=\"");
	xml_text(f, host);
	fprintf(f, "\">\n    <Processor Name=\"MainProcessor\">\n"
		"      <ComputingUnits>%u</ComputingUnits>\n    </Processor>\n",
		cpus);
	memory(f, r);
	fprintf(f, "    <Adaptors>\n      <Adaptor Name=\"" NIO "\">\n"
		"        <SubmissionSystem>\n          <Interactive/>\n"
		"        </SubmissionSystem>\n        <Ports>\n"
		"          <MinPort>43001</MinPort>\n"
		"          <MaxPort>43002</MaxPort>\n        </Ports>\n"
		"      </Adaptor>\n    </Adaptors>\n  </ComputeNode>\n");
}

void
write_resources(FILE *f, const struct request *r, const char *hosts)
{
	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\" "
		"standalone=\"yes\"?>\n<ResourcesList>\n");
	each_worker(f, r, hosts, resources_node);
	fprintf(f, "</ResourcesList>\n");
}
