/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * jobshm [--conf FILE] exec [--conf FILE] [--node NODE] JOBID -- CMD [ARGS...]
 * (jobshm.c passes the global --conf on as exec's first option)
 *
 * For root: run CMD in the job's mount namespace on this host (where its
 * tasks are, with its shm on /dev/shm), to look at what a job sees.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
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
	const char *conf;	/* --conf, $JOBSHM_CONF or the default */
	int given;		/* not the default: it must exist */
};

static void
exec_usage(void)
{
	printf("Usage: %s [--conf FILE] exec [--node NODE] JOBID -- CMD "
	       "[ARGS...]\n(root) Run CMD in job JOBID's mount namespace on "
	       "this host, where /dev/shm\nis the job's.  Options may come "
	       "before or after JOBID; nothing after \"--\"\n(or, without "
	       "\"--\", from the first word after JOBID on) is parsed.\n\n"
	       "Options:\n"
	       "  -N, --node NODE       the job's node, when this host runs "
	       "several slurmd\n"
	       "                        (default: the one node with the job)\n"
	       "  -c, --conf FILE       configuration file (default %s,\n"
	       "                        or $JOBSHM_CONF)\n"
	       "  -h, --help            this text\n", prog, JOBSHM_CONF);
}

/* A usage error: the message, then the line that says where help is;
 * -1 (exit status 2). */
static int __attribute__((format(printf, 1, 2)))
usage_error(const char *fmt, ...)
{
	va_list ap;

	if (!fmt)
		return jobshm_cli_try_help("exec"), -1;
	va_start(ap, fmt);
	jobshm_cli_usage_error("exec", fmt, ap);
	va_end(ap);
	return -1;
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
		fprintf(stderr, "%s: exec: job %" PRIu32 " has no shm on %s%s%s"
			"this host (not a --shm job, ended, or running "
			"elsewhere): no namespace to run in\n", prog, t->jobid,
			t->node ? "node " : "", t->node ? t->node : "",
			t->node ? " of " : "");
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

/* exec's options, up to ac: 0, 1 after --help, -1 after a wrong one. */
static int
exec_opts(int ac, char **av, const char *optstring, struct target *t)
{
	static const struct option opts[] = {
		{ "conf", required_argument, NULL, 'c' },
		{ "node", required_argument, NULL, 'N' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(ac, av, optstring, opts, NULL)) != -1) {
		switch (c) {
		case 'c': t->conf = optarg; t->given = 1; break;
		case 'N': t->node = optarg; break;
		case 'h': exec_usage(); return 1;
		default: return usage_error(NULL);
		}
	}
	return 0;
}

/*
 * JOBID into t; the index of CMD, 0 after --help, -1 after a usage
 * error.  With "--", options anywhere before it (getopt permutes) and
 * one operand, JOBID; without, options before and after JOBID up to
 * the first word after it, CMD's.  Nothing of CMD is parsed.
 */
static int
exec_args(int ac, char **av, struct target *t)
{
	int dd, n, j, r;

	for (dd = 1; dd < ac && strcmp(av[dd], "--"); dd++)
		;
	n = dd;		/* ac when there is no "--" */
	av[0] = (char *)"jobshm: exec";	/* getopt's messages */
	optind = 0;	/* a new scan */
	if ((r = exec_opts(n, av, dd < ac ? "c:N:h" : "+c:N:h", t)) != 0)
		return r > 0 ? 0 : -1;
	if (optind >= n)
		return usage_error("no JOBID given");
	j = optind++;
	if (dd < ac && optind < dd)
		return usage_error("unexpected argument '%s' (the command goes "
				   "after \"--\")", av[optind]);
	if (dd == ac && (r = exec_opts(ac, av, "+c:N:h", t)) != 0)
		return r > 0 ? 0 : -1;
	if (parse_jobid(av[j], &t->jobid) < 0)
		return usage_error("'%s' is not a job id (a number from 1 to %"
				   PRIu32 ")", av[j], UINT32_MAX - 3);
	j = dd < ac ? dd + 1 : optind;
	if (j >= ac)
		return usage_error("no command given after the job id");
	return j;
}

int
jobshm_cli_exec(int ac, char **av)
{
	struct target t = { .node = NULL, .conf = getenv("JOBSHM_CONF") };
	struct jobshm_conf conf;
	int rc, cmd;

	t.given = t.conf != NULL;
	if (!t.conf)
		t.conf = JOBSHM_CONF;
	if ((cmd = exec_args(ac, av, &t)) <= 0)
		return cmd ? 2 : 0;
	if (geteuid() != 0) {
		fprintf(stderr, "%s: exec: only root may run a command in a job's "
			"namespace (joining it needs CAP_SYS_ADMIN)\n", prog);
		return 1;
	}
	if (load(t.conf, t.given, &conf) < 0)
		return 1;
	if ((rc = enter_job(&conf, &t)) != 0)
		return rc;
	execvp(av[cmd], av + cmd);
	fprintf(stderr, "%s: exec: %s: %s\n", prog, av[cmd], strerror(errno));
	return errno == ENOENT ? 127 : 126;
}
