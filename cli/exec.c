/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * jobshm exec [--conf FILE] [--node NODE] JOBID -- CMD [ARGS...]
 *
 * For root: run CMD in the job's mount namespace on this host (where its
 * tasks are, with its shm on /dev/shm), to look at what a job sees.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exec.h"
#include "jobshm.h"
#include "internal.h"	/* jobshm_mntns_stat: is the namespace kept? */

static const char *prog = "jobshm";

struct target {
	const char *node;	/* --node, or NULL: the one node with the job */
	uint32_t jobid;
	struct jobshm_entry e;
	int found;		/* how many nodes of this host have it */
	char nodes[256];	/* their names, for the message */
};

static void
exec_usage(FILE *f)
{
	fprintf(f, "Usage: %s exec [--conf FILE] [--node NODE] JOBID -- CMD "
		"[ARGS...]\n  (root) run CMD in job JOBID's mount namespace on "
		"this host: its /dev/shm is the job's\n", prog);
}

static int
parse_jobid(const char *s, uint32_t *id)
{
	char *end;
	unsigned long long v;

	if (*s < '1' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (*end || errno || v > UINT32_MAX - 3)	/* Slurm's NO_VAL etc. */
		return -1;
	*id = (uint32_t)v;
	return 0;
}

static int
find_job(const struct jobshm_entry *e, void *arg)
{
	struct target *t = arg;
	size_t n = strlen(t->nodes);

	if (e->job.jobid != t->jobid || !e->mounted ||
	    (t->node && e->node[0] && strcmp(e->node, t->node)))
		return 0;
	snprintf(t->nodes + n, sizeof(t->nodes) - n, "%s%s", n ? ", " : "",
		 e->node[0] ? e->node : "-");
	t->e = *e;
	t->found++;
	return 0;
}

/* Find the job on this host and join its namespace; 0, or an exit code. */
static int
enter_job(const struct jobshm_conf *conf, struct target *t)
{
	jobshm_err_t err;
	struct stat st;

	if (jobshm_list(conf, find_job, t, &err) < 0) {
		fprintf(stderr, "%s: exec: %s\n", prog, err.msg);
		return 1;
	}
	if (t->found == 0) {
		fprintf(stderr, "%s: exec: job %" PRIu32 " has no shm %s%s on "
			"this host (not a --shm job, ended, or running "
			"elsewhere): no namespace to run in\n", prog, t->jobid,
			t->node ? "on node " : "", t->node ? t->node : "");
		return 1;
	}
	if (t->found > 1) {
		fprintf(stderr, "%s: exec: job %" PRIu32 " is on several nodes "
			"of this host (%s): say which with --node NODE\n", prog,
			t->jobid, t->nodes);
		return 2;
	}
	t->e.job.conf = conf;
	if (jobshm_mntns_stat(&t->e.job, &st) < 0) {
		fprintf(stderr, "%s: exec: job %" PRIu32 " keeps no mount "
			"namespace on node %s\n", prog, t->jobid, t->nodes);
		return 1;
	}
	if (jobshm_mntns_join(&t->e.job, "/dev/shm", &err) != 0) {
		fprintf(stderr, "%s: exec: job %" PRIu32 ": %s\n", prog,
			t->jobid, err.msg);
		return 1;
	}
	return 0;
}

/* without --conf or JOBSHM_CONF, a missing default file means the
 * defaults, as in the plugin and the other commands */
static int
load(const char *path, int given, struct jobshm_conf *conf)
{
	jobshm_err_t err;

	jobshm_conf_defaults(conf);
	if (!given && access(path, F_OK) < 0)
		return 0;
	if (jobshm_conf_load(conf, path, &err) < 0) {
		fprintf(stderr, "%s: exec: %s\n", prog, err.msg);
		return -1;
	}
	return 0;
}

int
jobshm_cli_exec(int ac, char **av)
{
	static const struct option opts[] = {
		{ "conf", required_argument, NULL, 'c' },
		{ "node", required_argument, NULL, 'N' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct target t = { .node = NULL };
	struct jobshm_conf conf;
	const char *conf_path = getenv("JOBSHM_CONF");
	int c, rc, given = conf_path != NULL;

	if (!conf_path)
		conf_path = JOBSHM_CONF;
	optind = 1;
	while ((c = getopt_long(ac, av, "+c:N:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': conf_path = optarg; given = 1; break;
		case 'N': t.node = optarg; break;
		case 'h': exec_usage(stdout); return 0;
		default: exec_usage(stderr); return 2;
		}
	}
	if (optind >= ac) {
		fprintf(stderr, "%s: exec: no JOBID given\n", prog);
		exec_usage(stderr);
		return 2;
	}
	if (parse_jobid(av[optind], &t.jobid) < 0) {
		fprintf(stderr, "%s: exec: '%s' is not a job id (a number from "
			"1 to %" PRIu32 ")\n", prog, av[optind], UINT32_MAX - 3);
		return 2;
	}
	optind++;
	if (optind < ac && !strcmp(av[optind], "--"))
		optind++;
	if (optind >= ac) {
		fprintf(stderr, "%s: exec: no command given after the job id\n",
			prog);
		exec_usage(stderr);
		return 2;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "%s: exec: only root may run a command in a job's "
			"namespace (joining it needs CAP_SYS_ADMIN)\n", prog);
		return 1;
	}
	if (load(conf_path, given, &conf) < 0)
		return 1;
	if ((rc = enter_job(&conf, &t)) != 0)
		return rc;
	execvp(av[optind], av + optind);
	fprintf(stderr, "%s: exec: %s: %s\n", prog, av[optind], strerror(errno));
	return errno == ENOENT ? 127 : 126;
}
