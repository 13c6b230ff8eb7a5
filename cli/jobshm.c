/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * jobshm - admin command for job shared memory on a Slurm node.
 *
 *   jobshm status [--json]      what job shm exists on this host
 *   jobshm sweep [--dry-run] [--json]  remove what belongs to ended jobs
 *   jobshm check-config [--json] [FILE]  parse and check a jobshm.conf
 *   jobshm report [--json] JOBID  what a job used of its shm on this host
 *   jobshm stage SRC [--name NAME], jobshm exec (exec.c), jobshm help
 *
 * Global options come before the command; each command's own options
 * (and --conf, --help) may come anywhere among its operands, until "--".
 */
#include <getopt.h>
#include <errno.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <slurm/slurm.h>

#include "alive.h"
#include <json-c/json.h>

#include "common.h"
#include "exec.h"
#include "suggest.h"
#include "jobshm.h"


static const char *prog = "jobshm";

static struct {
	const char *conf_path, *keys, *name;
	int conf_given, json, dry_run, quiet;
	int count, failed, unknown, items;
	struct jobshm_conf conf;
	struct job_query *q;        /* sweep: the leftovers' liveness */
	size_t nq, capq;
} app;

static void
usage(FILE *f)
{
	fprintf(f,
"Usage: %s [--conf FILE] COMMAND [OPTIONS]\n"
"\n"
"Commands:\n"
"  status [--json]       list each job shm on this host: job, user, size,\n"
"                        used, mount point\n"
"  sweep [--dry-run] [--quiet] [--json]\n"
"                        unmount and remove the shm of jobs that no longer\n"
"                        run here (the node's slurmstepds, then at most\n"
"                        one request to slurmctld)\n"
"  check-config [--json] [FILE]\n"
"                        check a jobshm.conf (default: --conf)\n"
"  report [--json] JOBID what the job used of its shm on this host: size,\n"
"                        peak, final, times full (usage_log, or the\n"
"                        record of a running job)\n"
"  suggest [--user U] [--name JOBNAME] [--since DAYS] [--json] [--svg FILE]\n"
"          [LOG...]      the --shm to ask for, per user and job name, from\n"
"                        the usage log (this node's or LOG files)\n"
"  stage SRC [--name NAME]\n"
"                        (users, in a job) copy SRC into the job's shm once\n"
"                        per node and print the environment that uses it\n"
"  exec [--node NODE] JOBID -- CMD [ARGS]\n"
"                        (root) run CMD in the job's mount namespace on\n"
"                        this host, where /dev/shm is the job's\n"
"  check-config --keys[=text|md|man]\n"
"                        the configuration reference, from the keys the\n"
"                        loader knows\n"
"  help [COMMAND]        this text, or COMMAND's usage and options\n"
"\n"
"Options:\n"
"  -c, --conf FILE       configuration file (default %s,\n"
"                        or $JOBSHM_CONF)\n"
"  -h, --help            this text\n"
"  -V, --version         print the version\n"
"\n"
"'%s help COMMAND' or '%s COMMAND --help' shows a command's options.\n",
		prog, JOBSHM_CONF, prog, prog);
}

static int __attribute__((format(printf, 2, 3)))
bad_usage(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = jobshm_cli_usage_error(cmd, fmt, ap);
	va_end(ap);
	return rc;
}

/* All JSON is made with json-c (Slurm's own JSON library): strings
 * escaped as JSON needs, whatever a path or a message holds. */
static json_object *
jstr(const char *s)
{
	return s ? json_object_new_string(s) : NULL;	/* NULL: null */
}

static void
jset(json_object *o, const char *key, json_object *v)
{
	json_object_object_add(o, key, v);
}

/* One element of a JSON array printed as it goes (status, sweep,
 * report: a listing that fails half-way still ends in one whole array);
 * *n: the elements before.  o is freed. */
static void
jemit(json_object *o, int *n)
{
	printf("%s\n  %s", (*n)++ ? "," : "", json_object_to_json_string_ext(
	       o, JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

/* An ended job whose shm its end left frozen: something still holds
 * an emptied file of it (who is not looked for). */
static int
print_held(const struct jobshm_entry *e, const char *user)
{
	char used[32];

	jobshm_size_format(e->used, used, sizeof(used));
	if (app.json) {
		json_object *o = json_object_new_object();
		int n = app.count;

		jset(o, "job", json_object_new_int64(e->job.jobid));
		jset(o, "node", jstr(e->node));
		jset(o, "user", jstr(user));
		jset(o, "ended", json_object_new_boolean(1));
		jset(o, "held", json_object_new_boolean(1));
		jset(o, "held_bytes", json_object_new_uint64(e->used));
		jset(o, "size", json_object_new_uint64(e->size));
		jset(o, "held_by", jstr(e->holders));
		jemit(o, &n);
	} else
		printf("%-10" PRIu32 " %-12s %-10s ended; held (%s still in "
		       "use, frozen; holder %s): sweep retries\n", e->job.jobid,
		       e->node[0] ? e->node : "-", user, used, e->holders);
	app.count++;
	return 0;
}

static void
print_entry_json(const struct jobshm_entry *e, const char *user)
{
	struct jobshm_usage u;
	jobshm_err_t err;
	json_object *o = json_object_new_object();
	int n = app.count;

	if (jobshm_usage_read(&e->job, &u, &err) < 0)
		u.peak = e->used, u.full = 0;
	jset(o, "job", json_object_new_int64(e->job.jobid));
	jset(o, "node", jstr(e->node));
	jset(o, "user", jstr(user));
	jset(o, "size", json_object_new_uint64(e->size));
	jset(o, "used", json_object_new_uint64(e->used));
	jset(o, "peak", json_object_new_uint64(u.peak > e->used ? u.peak :
					       e->used));
	jset(o, "full", json_object_new_int64(u.full));
	jset(o, "mounted", json_object_new_boolean(e->mounted));
	jset(o, "kind", jstr(jobshm_kind_name(e->kind)));
	jset(o, "mpol", jstr(e->mpol[0] ? e->mpol : "default"));
	jset(o, "path", jstr(e->job.path));
	jemit(o, &n);
}

static int
print_entry(const struct jobshm_entry *e, void *arg)
{
	char user[64], sz[32], used[32];

	(void)arg;
	jobshm_cli_user(e->job.uid, user, sizeof(user));
	if (e->held)
		return print_held(e, user);
	if (app.json) {
		print_entry_json(e, user);
	} else {
		if (!app.count)
			printf("%-10s %-12s %-10s %8s %8s %-16s %s\n",
			       "JOBID", "NODE", "USER", "SIZE", "USED", "MPOL",
			       "PATH");
		printf("%-10" PRIu32 " %-12s %-10s %8s %8s %-16s %s%s\n",
		       e->job.jobid, e->node[0] ? e->node : "-", user,
		       jobshm_size_format(e->size, sz, sizeof(sz)),
		       jobshm_size_format(e->used, used, sizeof(used)),
		       e->kind == JOBSHM_FSDAX ? "fsdax (1LM)" :
		       e->mpol[0] ? e->mpol : "default", e->job.path,
		       e->mounted ? "" : " (not mounted)");
		if (e->unmarked)
			fprintf(stderr, "%s: %s: a node directory without "
				"jobshm's marker (made by jobshm 0.2 or older); "
				"sweep leaves it alone until a job step or "
				"epilog on the node marks it\n", prog,
				e->job.path);
	}
	app.count++;
	return 0;
}

static int load_conf(void);

/* With --json, stdout is one whole array even when the listing fails. */
static int
cmd_status(int nargs, char **args)
{
	jobshm_err_t err;
	int rc;

	(void)nargs; (void)args;
	if (load_conf() < 0)
		return 1;
	if (app.json)
		printf("[");
	rc = jobshm_list(&app.conf, print_entry, NULL, &err) < 0;
	if (rc)
		fprintf(stderr, "%s: status: %s\n", prog, err.msg);
	if (app.json)
		printf("%s]\n", app.count ? "\n" : "");
	else if (!app.count && !rc)
		printf("no job shm on this host\n");
	return rc;
}

/* One record of what a job used on a node (running: still sampled). */
static void
print_usage(const struct jobshm_usage *u, int running)
{
	char line[1024], user[64], fin[32], t0[32], t1[32];
	time_t a = (time_t)u->start, b = (time_t)u->end;

	if (app.json) {
		json_object *o = json_tokener_parse(jobshm_usage_json(u, line,
							sizeof(line)));
		int n = app.count;

		if (!o)
			o = json_object_new_object();
		jset(o, "running", json_object_new_boolean(running));
		jemit(o, &n);
	} else {
		strftime(t0, sizeof(t0), "%F %T", localtime(&a));
		strftime(t1, sizeof(t1), "%F %T", localtime(&b));
		printf("job %" PRIu32 " on %s, final %s (user %s, %s, %s to "
		       "%s%s)\n", u->jobid, jobshm_usage_summary(u, line,
		       sizeof(line)), jobshm_size_format(u->used, fin,
		       sizeof(fin)), jobshm_cli_user(u->uid, user, sizeof(user)),
		       u->kind, t0, t1, running ? ", still running" : "");
		if (u->left_files)
			printf("  step %" PRIu32 " left %s in %" PRIu32 " file%s "
			       "in its shm at its end\n", u->left_step,
			       jobshm_size_format(u->left_bytes, fin,
			       sizeof(fin)), u->left_files,
			       u->left_files == 1 ? "" : "s");
	}
	app.count++;
}

/* A line of the usage log that is not a record: skipped, and said. */
static void
report_bad(const char *path, unsigned line, void *arg)
{
	(void)arg;
	fprintf(stderr, "%s: report: %s:%u: not a usage record (skipped)\n",
		prog, path, line);
}

static int
report_logged(const struct jobshm_usage *u, void *arg)
{
	(void)arg;
	print_usage(u, 0);
	return 0;
}

static int
report_running(const struct jobshm_entry *e, void *arg)
{
	struct jobshm_usage u;
	jobshm_err_t err;

	if (e->job.jobid != *(uint32_t *)arg || !e->mounted ||
	    jobshm_usage_read(&e->job, &u, &err) < 0)
		return 0;
	u.used = e->used;	/* now */
	print_usage(&u, 1);
	return 0;
}

/*
 * jobshm report JOBID: the usage log's records, else the live record.
 * With --json, stdout is one whole array, [] when there is no record
 * (exit 1, the message on stderr), as status --json lists no job as [].
 */
static int
cmd_report(int nargs, char **args)
{
	jobshm_err_t err;
	uint64_t id;
	uint32_t jobid;

	(void)nargs;	/* one JOBID: the table's */
	if (sscanf(args[0], "%" SCNu64, &id) != 1 || !id ||
	    id > UINT32_MAX || strspn(args[0], "0123456789") !=
	    strlen(args[0]))
		return bad_usage("report", "invalid job id '%s': expected a "
				 "job number like 1234", args[0]);
	if (load_conf() < 0)
		return 1;
	jobid = (uint32_t)id;
	if (app.json)
		printf("[");
	jobshm_usage_log_scan(&app.conf, jobid, report_logged, report_bad,
			      NULL);
	if (jobshm_list(&app.conf, report_running, &jobid, &err) < 0)
		fprintf(stderr, "%s: report: %s\n", prog, err.msg);
	if (app.json)
		printf("%s]\n", app.count ? "\n" : "");
	if (!app.count)
		fprintf(stderr, "%s: report: no record of job %" PRIu32 " on "
			"this host (usage_log: %s)\n", prog, jobid,
			app.conf.usage_log[0] ? app.conf.usage_log : "off");
	return app.count ? 0 : 1;
}

static enum job_liveness decided(uint32_t jobid, const char *node,
				 char *why, size_t len);

/* With --json, one thing sweep looked at: what it did and why. */
static void
swept(uint32_t jobid, const char *node, const char *path, const char *action,
      const char *why)
{
	json_object *o;

	if (!app.json)
		return;
	o = json_object_new_object();
	jset(o, "job", json_object_new_int64(jobid));
	jset(o, "node", jstr(node));
	jset(o, "path", jstr(path));
	jset(o, "action", jstr(action));
	jset(o, "reason", jstr(why));
	jemit(o, &app.items);
}

/* A job whose end left its shm frozen because something held it. */
static int
sweep_held(const struct jobshm_entry *e)
{
	jobshm_err_t err;
	int rc = app.dry_run ? 1 : jobshm_job_cleanup(&e->job, &err);

	swept(e->job.jobid, e->node, e->job.path, rc == 0 ? "removed" :
	      rc < 0 ? "failed" : "held", rc == 0 ? "its holder let go" :
	      rc < 0 ? err.msg : "ended, but still held: frozen, emptied of "
	      "what could be freed, tried again at each sweep");
	if (rc == 0 && !app.quiet && !app.json)
		printf("removed %s (job %" PRIu32 ": its holder let go)\n",
		       e->job.path, e->job.jobid);
	else if (rc != 0)
		fprintf(stderr, "%s: sweep: job %" PRIu32 " ended, but its "
			"shm (%s) is still held; it is frozen, emptied of "
			"what could be freed, and tried again at the next "
			"sweep\n", prog, e->job.jobid, e->job.path);
	if (rc < 0)
		app.failed++;
	app.count += rc == 0;
	return 0;
}

/* Of an ended job: rc, its removal's (not 0: failed, msg); with
 * --dry-run only said. */
static void
sweep_gone(uint32_t jobid, const char *node, const char *path,
	   const char *why, int rc, const char *msg)
{
	if (!app.quiet && !app.json)
		printf("%s %s (job %" PRIu32 ": %s)\n", app.dry_run ?
		       "would remove" : "removed", path, jobid, why);
	if (rc != 0) {
		fprintf(stderr, "%s: sweep: %s\n", prog, msg);
		app.failed++;
	}
	swept(jobid, node, path, rc ? "failed" : app.dry_run ?
	      "would remove" : "removed", rc ? msg : why);
	app.count++;
}

static int
sweep_entry(const struct jobshm_entry *e, void *arg)
{
	char why[256] = "";
	jobshm_err_t err;
	enum job_liveness l = e->unmarked ? JOB_UNKNOWN :
			      decided(e->job.jobid, e->node, why, sizeof(why));

	(void)arg;
	if (e->held)	/* its end ran: try it again */
		return sweep_held(e);
	if (e->unmarked) {	/* not known to be ours: never removed */
		swept(e->job.jobid, e->node, e->job.path, "left alone",
		      "its node directory has no jobshm marker");
		if (app.conf.debug)
			fprintf(stderr, "%s: debug: sweep: %s left alone: its "
				"node directory has no jobshm marker\n", prog,
				e->job.path);
		return 0;
	}
	if (app.conf.debug)
		fprintf(stderr, "%s: debug: sweep: job %" PRIu32 " (%s, node "
			"'%s'): %s: %s\n", prog, e->job.jobid, e->job.path,
			e->node, l == JOB_LIVE ? "kept" : l == JOB_GONE ?
			"removed" : "left alone", why);
	if (l != JOB_GONE)
		swept(e->job.jobid, e->node, e->job.path, l == JOB_LIVE ?
		      "kept" : "left alone", why);
	if (l == JOB_UNKNOWN) {
		fprintf(stderr, "%s: sweep: job %" PRIu32 " left alone: %s\n",
			prog, e->job.jobid, why);
		app.unknown++;
		return 0;
	}
	if (l == JOB_LIVE)
		return 0;
	sweep_gone(e->job.jobid, e->node, e->job.path, why, app.dry_run ? 0 :
		   jobshm_job_cleanup(&e->job, &err), err.msg);
	return 0;
}

/* fsdax reservations left without a job directory (e.g. after a reboot). */
static int
sweep_fsdax(const char *path, uint32_t jobid, uint64_t bytes, const char *node,
	    void *arg)
{
	char why[256], res[4096];
	jobshm_err_t err;
	enum job_liveness l = decided(jobid, node, why, sizeof(why));

	(void)arg;
	(void)bytes;
	snprintf(res, sizeof(res), "%s/.jobshm/%" PRIu32, path, jobid);
	if (l != JOB_GONE) {
		swept(jobid, node, res, l == JOB_LIVE ? "kept" : "left alone",
		      why);
		app.unknown += l == JOB_UNKNOWN;
		return 0;
	}
	sweep_gone(jobid, node, res, why, app.dry_run ? 0 :
		   jobshm_fsdax_remove(&app.conf, jobid, &err) < 0, err.msg);
	return 0;
}

/* A leftover for the one liveness question sweep asks. */
static int
want(uint32_t jobid, const char *node)
{
	struct job_query *q;

	if (app.nq == app.capq) {
		q = realloc(app.q, (app.capq * 2 + 16) * sizeof(*q));
		if (!q)
			return -1;
		app.q = q;
		app.capq = app.capq * 2 + 16;
	}
	q = &app.q[app.nq++];
	memset(q, 0, sizeof(*q));
	q->jobid = jobid;
	snprintf(q->node, sizeof(q->node), "%s", node ? node : "");
	return 0;
}

static int
want_entry(const struct jobshm_entry *e, void *arg)
{
	(void)arg;
	return e->held || e->unmarked ? 0 : want(e->job.jobid, e->node);
}

static int
want_fsdax(const char *path, uint32_t jobid, uint64_t bytes,
	   const char *node, void *arg)
{
	(void)path; (void)bytes; (void)arg;
	return want(jobid, node);
}

/* The answer for a leftover; one that appeared since: left alone. */
static enum job_liveness
decided(uint32_t jobid, const char *node, char *why, size_t len)
{
	for (size_t i = 0; i < app.nq; i++)
		if (app.q[i].jobid == jobid && !strcmp(app.q[i].node, node ?
						       node : "")) {
			snprintf(why, len, "%s", app.q[i].why);
			return app.q[i].l;
		}
	snprintf(why, len, "appeared during the sweep");
	return JOB_UNKNOWN;
}

static int sweep_all(void);

/* With --json, stdout is one whole array, whatever failed (--quiet or not). */
static int
cmd_sweep(int nargs, char **args)
{
	int rc;

	(void)nargs; (void)args;
	if (load_conf() < 0)
		return 1;
	if (app.json)
		printf("[");
	rc = sweep_all();
	if (!app.dry_run)	/* the node's totals, without what went */
		jobshm_metrics_node(&app.conf);
	if (app.json)
		printf("%s]\n", app.items ? "\n" : "");
	else if (!rc && !app.quiet && !app.count)
		printf("nothing to sweep\n");
	return rc;
}

static int
sweep_all(void)
{
	jobshm_err_t err;
	int asked;

	if (jobshm_list(&app.conf, want_entry, NULL, &err) < 0 ||
	    jobshm_fsdax_each(&app.conf, want_fsdax, NULL, &err) < 0) {
		fprintf(stderr, "%s: sweep: %s\n", prog, err.msg);
		return 1;
	}
	asked = jobs_liveness(app.q, app.nq);
	if (app.conf.debug)
		fprintf(stderr, "%s: debug: sweep: %zu leftover(s), %d "
			"request(s) to slurmctld\n", prog, app.nq, asked);
	if (jobshm_list(&app.conf, sweep_entry, NULL, &err) < 0 ||
	    jobshm_fsdax_each(&app.conf, sweep_fsdax, NULL, &err) < 0) {
		fprintf(stderr, "%s: sweep: %s\n", prog, err.msg);
		return 1;
	}
	return app.failed || app.unknown ? 1 : 0;
}

/* What caps a 1LM job on path: 1 if its jobs would be refused. */
static int
check_quota(const char *p)
{
	jobshm_err_t err;
	int q = jobshm_fsdax_quota(p, &err);

	if (q == (JOBSHM_QUOTA_PROJECT | JOBSHM_QUOTA_USER))
		printf("nvram path %s: project and user quotas: each job "
		       "capped at its size\n", p);
	else if (q & JOBSHM_QUOTA_PROJECT)
		fprintf(stderr, "%s: nvram_paths: '%s' keeps project quotas "
			"but not user quotas: 1LM jobs are refused there "
			"(their owner could chproj past the cap); mount it "
			"with uquota,prjquota\n", prog, p);
	else if (q >= 0)
		fprintf(stderr, "%s: nvram_paths: '%s' keeps no quotas: a 1LM "
			"job is admitted by its size but not capped; mount it "
			"with uquota,prjquota to cap it\n", prog, p);
	return (q & JOBSHM_QUOTA_PROJECT) && !(q & JOBSHM_QUOTA_USER);
}

/* Each nvram path's free space; 1 if one cannot be read. */
static int
check_nvram_paths(void)
{
	jobshm_err_t err;
	uint64_t avail, reserved;
	char a[32], b[32];
	int i, bad = 0;

	for (i = 0; i < app.conf.n_nvram_paths; i++) {
		const char *p = app.conf.nvram_paths[i];

		if (jobshm_fsdax_space(p, &avail, &reserved, &err) < 0) {
			fprintf(stderr, "%s: nvram_paths: '%s': %s (1LM jobs "
				"would fail on this node)\n", prog, p, err.msg);
			bad = 1;
			continue;
		}
		printf("nvram path %s: %s free, %s reserved by jobs\n", p,
		       jobshm_size_format(avail, a, sizeof(a)),
		       jobshm_size_format(reserved, b, sizeof(b)));
		bad |= check_quota(p);
	}
	return bad;
}

/* Roff needs its escapes: backslashes and leading dots or quotes. */
static void
print_roff(const char *s)
{
	if (*s == '.' || *s == '\'')
		fputs("\\&", stdout);
	for (; *s; s++)
		fputs(*s == '\\' ? "\\e" : *s == '-' ? "\\-" :
		      (char[]){ *s, 0 }, stdout);
}

/* The configuration reference, from the loader's own table of keys. */
static int
cmd_keys(const char *format)
{
	const struct jobshm_conf_key *k;
	size_t i;

	if (strcmp(format, "text") && strcmp(format, "md") &&
	    strcmp(format, "man")) {
		fprintf(stderr, "%s: --keys=%s: accepted formats are text, md "
			"and man\n", prog, format);
		return 2;
	}
	if (!strcmp(format, "md"))
		printf("| key | type, default | meaning |\n|---|---|---|\n");
	for (i = 0; (k = jobshm_conf_key(i)); i++) {
		if (!strcmp(format, "md")) {
			printf("| `%s` | %s, `%s` | %s |\n", k->name, k->type,
			       k->def, k->help);
		} else if (!strcmp(format, "man")) {
			printf(".TP\n.B %s\n(%s, default ", k->name, k->type);
			print_roff(k->def);
			printf(")\n");
			print_roff(k->help);
			printf("\n");
		} else {
			printf("%s (%s, default %s)\n    %s\n", k->name,
			       k->type, k->def, k->help);
		}
	}
	return 0;
}

/*
 * Beside a job container or namespace plugin of Slurm's, which may put a
 * /dev/shm of its own in every job: say which one a job gets and where
 * each is configured.  Slurm's configuration as libslurm reads it.
 */
extern slurm_conf_t slurm_conf __attribute__((weak));
#if SLURM_VERSION_NUMBER >= SLURM_VERSION_NUM(25, 11, 0)
#define NS_PLUGIN namespace_plugin
#define NS_KEY "NamespaceType"
#else
#define NS_PLUGIN job_container_plugin
#define NS_KEY "JobContainerType"
#endif
static void
check_slurm_container(void)
{
	const char *sc = getenv("SLURM_CONF"), *plugin, *cf, *end;
	char file[1024], line[512], size[64] = "", *s;
	int yaml, listed = 0, shm = 0, in_shm = 0;
	FILE *f;

	if (!&slurm_conf || access(sc ? sc : "/etc/slurm/slurm.conf", R_OK) < 0)
		return;
	slurm_init(NULL);
	plugin = slurm_conf.NS_PLUGIN;
	if (!plugin || !*plugin || strstr(plugin, "none") ||
	    !(cf = slurm_conf.slurm_conf))
		return;
	yaml = strstr(plugin, "linux") != NULL;
	end = strrchr(cf, '/');
	snprintf(file, sizeof(file), "%.*s/%s", end ? (int)(end - cf) : 1,
		 end ? cf : ".", yaml ? "namespace.yaml" : "job_container.conf");
	if ((f = fopen(file, "r"))) {	/* does it make a /dev/shm, how big */
		while (fgets(line, sizeof(line), f)) {
			line[strcspn(line, "#")] = '\0';
			s = line + strspn(line, " \t-");
			listed |= yaml ? !strncmp(s, "dir", 3) :
				  !strncasecmp(s, "Dirs=", 5);
			if (yaml && !strncmp(s, "path:", 5))
				in_shm = strstr(s, "/dev/shm") != NULL;
			shm |= in_shm || (!yaml && !strncasecmp(s, "Dirs=", 5) &&
					  strstr(s, "/dev/shm"));
			if (in_shm && (s = strstr(line, "size=")))
				snprintf(size, sizeof(size), "%.*s",
					 (int)strcspn(s, ",\"' \n"), s);
		}
		fclose(f);
	}
	shm |= !listed;		/* both plugins' default: /tmp,/dev/shm */
	printf("%s: beside %s=%s (%s): --shm jobs get jobshm's sized /dev/shm "
	       "in every task%s; jobs without --shm get %s.\n", prog, NS_KEY,
	       plugin, file, shm ? ", over the plugin's" : "", shm ?
	       "the plugin's own /dev/shm" : "the node's /dev/shm (the "
	       "plugin's list of directories has no /dev/shm)");
	if (shm)
		printf("%s: the plugin's /dev/shm is %s%s%s; --shm sizes a job's "
		       "own, checked against max_size and the job's memory, and "
		       "default_size gives one to jobs without --shm.\n", prog,
		       size[0] ? size : "unsized (half the node's RAM)",
		       size[0] ? " in every job" : "",
		       yaml ? ", from namespace.yaml's dir_confs (path \"/dev/shm\", "
		       "tmpfs: true, options \"size=...\")" : ", from "
		       "job_container.conf's Dirs (only namespace/linux's dir_confs "
		       "size it)");
}

/* A size above this node's memory is allowed, but said (issue 31). */
static void
check_ram(const struct jobshm_conf *c)
{
	long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
	uint64_t ram = (uint64_t)pages * (uint64_t)page;
	uint64_t max = jobshm_conf_max_bytes(c), def = c->default_size.bytes;
	char a[32], b[32];

	if (pages <= 0 || page <= 0)
		return;
	jobshm_size_format(ram, b, sizeof(b));
	if (max > ram)
		fprintf(stderr, "%s: warning: max_size (%s) is larger than "
			"this node's memory (%s)\n", prog,
			jobshm_size_format(max, a, sizeof(a)), b);
	if (!c->default_size.none && !c->default_size.percent && def > ram)
		fprintf(stderr, "%s: warning: default_size (%s) is larger "
			"than this node's memory (%s)\n", prog,
			jobshm_size_format(def, a, sizeof(a)), b);
}

static int
cmd_check_config(const char *path)
{
	jobshm_err_t err;
	char a[32], b[32];
	int bad;

	jobshm_conf_defaults(&app.conf);
	if (jobshm_conf_load(&app.conf, path, &err) < 0) {
		fprintf(stderr, "%s: %s\n", prog, err.msg);
		return 1;
	}
	check_ram(&app.conf);
	bad = check_nvram_paths();
	if (access(JOBSHM_CLI, X_OK) < 0) {
		fprintf(stderr, "%s: warning: the plugin's sweep command "
			"%s: %s (unless plugstack.conf sets cli=PATH, the shm "
			"of jobs that end while slurmd is down is not swept)\n",
			prog, JOBSHM_CLI, strerror(errno));
	}
	printf("%s: %s (base_path %s, default_size %s, max_size %s on this "
	       "node, huge %s)\n", path, bad ? "parsed, but see above" : "ok",
	       app.conf.base_path,
	       app.conf.default_size.none ? "none" :
	       app.conf.default_size.percent ? "a share of job memory" :
	       jobshm_size_format(app.conf.default_size.bytes, a, sizeof(a)),
	       jobshm_size_format(jobshm_conf_max_bytes(&app.conf), b, sizeof(b)),
	       jobshm_conf_huge(&app.conf) ? jobshm_conf_huge(&app.conf) : "off");
	check_slurm_container();
	return bad;
}

/* check-config --json: what the checks print, kept (stdout and stderr
 * swapped for memory streams) to be said as JSON strings. */
struct capture {
	FILE *out, *err;
	char *obuf, *ebuf;
	size_t olen, elen;
};

static int
capture_begin(struct capture *c)
{
	FILE *t;

	memset(c, 0, sizeof(*c));
	fflush(stdout);
	fflush(stderr);
	c->out = open_memstream(&c->obuf, &c->olen);
	c->err = open_memstream(&c->ebuf, &c->elen);
	if (!c->out || !c->err) {
		if (c->out)
			fclose(c->out);
		if (c->err)
			fclose(c->err);
		free(c->obuf);
		free(c->ebuf);
		return -1;
	}
	t = stdout, stdout = c->out, c->out = t;
	t = stderr, stderr = c->err, c->err = t;
	return 0;
}

static void
capture_end(struct capture *c)
{
	FILE *t;

	t = stdout, stdout = c->out, c->out = t;
	t = stderr, stderr = c->err, c->err = t;
	fclose(c->out);
	fclose(c->err);
}

/* The line of check-config's text output that sums up path. */
static int
is_summary(const char *line, const char *path)
{
	size_t n = strlen(path);

	return !strncmp(line, path, n) && (!strncmp(line + n, ": ok (", 6) ||
					   !strncmp(line + n, ": parsed,", 9));
}

/* [each line of text, less "jobshm: " and "warning: "]; the summary of
 * the file skip (not NULL) is left out. */
static json_object *
json_lines(const char *text, const char *skip)
{
	size_t pl = strlen(prog), len;
	char line[4096], *p;
	json_object *a = json_object_new_array();

	while (text && *text) {
		len = strcspn(text, "\n");
		snprintf(line, sizeof(line), "%.*s", (int)len, text);
		text += len + (text[len] == '\n');
		p = line;
		if (!strncmp(p, prog, pl) && !strncmp(p + pl, ": ", 2))
			p += pl + 2;
		if (!strncmp(p, "warning: ", 9))
			p += 9;
		if (*p && !(skip && is_summary(line, skip)))
			json_object_array_add(a, jstr(p));
	}
	return a;
}

static json_object *
json_size(const struct jobshm_size *s)
{
	json_object *o = json_object_new_object();

	jset(o, "none", json_object_new_boolean(s->none));
	jset(o, "percent", json_object_new_int64(s->percent));
	jset(o, "bytes", json_object_new_uint64(s->bytes));
	return o;
}

/* The settings jobs get from c on this node (huge and max resolved). */
static json_object *
json_settings(const struct jobshm_conf *c)
{
	static const char *const mpols[] = { "default", "local",
					     "interleave", "bind" };
	int k = c->default_mpol.kind, i;
	json_object *o = json_object_new_object(), *a;

	jset(o, "base_path", jstr(c->base_path));
	jset(o, "default_size", json_size(&c->default_size));
	jset(o, "max_size", json_size(&c->max_size));
	jset(o, "max_bytes", json_object_new_uint64(jobshm_conf_max_bytes(c)));
	jset(o, "allow_opt_out", json_object_new_boolean(c->allow_opt_out));
	jset(o, "count_against_job_mem",
	     json_object_new_boolean(c->count_against_job_mem));
	jset(o, "topology_xml", jstr(c->topology_xml[0] ? c->topology_xml :
				     NULL));
	jset(o, "huge", jstr(jobshm_conf_huge(c)));
	jset(o, "default_mpol", jstr(k >= 0 && k < 4 ? mpols[k] : "?"));
	jset(o, "default_mpol_nodes", jstr(k == JOBSHM_MPOL_BIND ?
					   c->default_mpol.nodes : NULL));
	a = json_object_new_array();
	for (i = 0; i < c->n_nvram_paths; i++)
		json_object_array_add(a, jstr(c->nvram_paths[i]));
	jset(o, "nvram_paths", a);
	jset(o, "stepd_namespace", json_object_new_boolean(c->stepd_namespace));
	jset(o, "debug", json_object_new_boolean(c->debug));
	jset(o, "usage_log", jstr(c->usage_log[0] ? c->usage_log : NULL));
	jset(o, "usage_log_max", json_object_new_uint64(c->usage_log_max));
	jset(o, "usage_interval", json_object_new_int64(c->usage_interval));
	return o;
}

/*
 * check-config --json: always one object, with file, ok (exit 0),
 * error (the file's first error, null when it parsed), warnings (what
 * the checks said on stderr), notes (on stdout) and settings (null when
 * it did not parse).
 */
static int
check_config_json(const char *path)
{
	struct capture cap;
	jobshm_err_t err;
	json_object *o;
	int rc = 1, parsed;

	jobshm_conf_defaults(&app.conf);
	parsed = jobshm_conf_load(&app.conf, path, &err) == 0;
	if (parsed && capture_begin(&cap) == 0) {
		rc = cmd_check_config(path);
		capture_end(&cap);
	} else if (parsed) {
		snprintf(err.msg, sizeof(err.msg), "out of memory");
		parsed = 0;
	}
	o = json_object_new_object();
	jset(o, "file", jstr(path));
	jset(o, "ok", json_object_new_boolean(!rc));
	jset(o, "error", jstr(parsed ? NULL : err.msg));
	jset(o, "warnings", json_lines(parsed ? cap.ebuf : NULL, NULL));
	jset(o, "notes", json_lines(parsed ? cap.obuf : NULL, path));
	jset(o, "settings", parsed ? json_settings(&app.conf) : NULL);
	if (parsed) {
		free(cap.obuf);
		free(cap.ebuf);
	}
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
		JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return rc;
}

static int
load_conf(void)
{
	jobshm_err_t err;

	jobshm_conf_defaults(&app.conf);
	if (!app.conf_given && access(app.conf_path, F_OK) < 0)
		return 0;	/* no file: the plugin's defaults, as it does */
	if (jobshm_conf_load(&app.conf, app.conf_path, &err) < 0) {
		fprintf(stderr, "%s: %s\n", prog, err.msg);
		return -1;
	}
	return 0;
}

/* An option of the command line's; -1: not one (getopt said why). */
static int
set_opt(int c)
{
	switch (c) {
	case 'c': app.conf_path = optarg; app.conf_given = 1; return 0;
	case 'j': app.json = 1; return 0;
	case 'n': app.dry_run = 1; return 0;
	case 'q': app.quiet = 1; return 0;
	case 'k': app.keys = optarg ? optarg : "text"; return 0;
	case 'm': app.name = optarg; return 0;
	default: return -1;
	}
}

#define END_OPTS { NULL, 0, NULL, 0 }

/* The global options: getopt stops at the command ('+'). */
static int
parse_global(int ac, char **av)
{
	static const struct option opts[] = {
		{ "conf", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		END_OPTS,
	};
	int c;

	av[0] = (char *)prog;	/* getopt's messages: "jobshm: ..." */
	while ((c = getopt_long(ac, av, "+c:hV", opts, NULL)) != -1) {
		if (c == 'h') {
			usage(stdout);
			exit(0);
		}
		if (c == 'V') {
			printf("%s %s\n", prog, JOBSHM_VERSION);
			exit(0);
		}
		if (set_opt(c) < 0)
			exit(jobshm_cli_try_help(NULL));
	}
	return optind;
}

/* jobshm stage SRC [--name NAME]: the Python module does it, as the user. */
static int
cmd_stage(int nargs, char **args)
{
	const char *pp = getenv("PYTHONPATH");
	char path[4096], name[4096];
	char *argv[7] = { (char *)JOBSHM_PYTHON, (char *)"-m",
			  (char *)"jobshm.stage" };
	int n = 3;

	(void)nargs;	/* one SRC: the table's */
	if (app.name) {
		snprintf(name, sizeof(name), "--name=%s", app.name);
		argv[n++] = name;
	}
	argv[n++] = (char *)"--";
	argv[n++] = args[0];
	snprintf(path, sizeof(path), "%s%s%s", JOBSHM_PYTHONDIR,
		 pp && *pp ? ":" : "", pp && *pp ? pp : "");
	setenv("PYTHONPATH", path, 1);
	execv(JOBSHM_PYTHON, argv);
	fprintf(stderr, "%s: stage: cannot run %s: %s\n", prog, JOBSHM_PYTHON,
		strerror(errno));
	return 1;
}

/* check-config [--json] [FILE], check-config --keys[=FORMAT] */
static int
cmd_check(int nargs, char **args)
{
	const char *path = nargs ? args[0] : app.conf_path;

	if (app.keys && (nargs || app.json))
		return bad_usage("check-config", "--keys takes no FILE and no "
				 "--json");
	if (app.keys)
		return cmd_keys(app.keys);
	return app.json ? check_config_json(path) : cmd_check_config(path);
}

/*
 * The commands.  Each takes --help, and (but stage) --conf, beside its
 * own options; options may come anywhere among its operands until "--".
 * exec parses its own (exec.c: CMD's options are never parsed).
 */
struct command {
	const char *name, *synopsis, *about, *options, *shortopts;
	const struct option *longopts;	/* NULL: the command parses */
	const char *arg;		/* its one operand, NULL: none */
	int need;			/* that operand is required */
	int (*fn)(int nargs, char **args);
};

#define CONF_OPTS { "conf", required_argument, NULL, 'c' }, \
		  { "help", no_argument, NULL, 'h' }
#define JSON_OPT { "json", no_argument, NULL, 'j' }
static const struct option status_opts[] = { CONF_OPTS, JSON_OPT, END_OPTS };
static const struct option sweep_opts[] = {
	CONF_OPTS, JSON_OPT, { "dry-run", no_argument, NULL, 'n' },
	{ "quiet", no_argument, NULL, 'q' }, END_OPTS };
static const struct option check_opts[] = {
	CONF_OPTS, JSON_OPT, { "keys", optional_argument, NULL, 'k' },
	END_OPTS };
static const struct option stage_opts[] = {
	{ "name", required_argument, NULL, 'm' },
	{ "help", no_argument, NULL, 'h' }, END_OPTS };
static const struct option help_opts[] = {
	{ "help", no_argument, NULL, 'h' }, END_OPTS };

static int cmd_exec(int ac, char **av);
static int cmd_suggest(int ac, char **av);
static int cmd_help(int nargs, char **args);

static const struct command commands[] = {
	{ "status", "[--json]",
	  "List each job shm on this host: job, node, user, size, used, NUMA\n"
	  "policy and mount point.",
	  "  -j, --json            a JSON array, one object per job shm\n",
	  "c:jh", status_opts, NULL, 0, cmd_status },
	{ "sweep", "[--dry-run] [--quiet] [--json]",
	  "Unmount and remove the shm of jobs that no longer run here (asked of\n"
	  "the node's slurmstepds, then in at most one request to slurmctld).",
	  "  -n, --dry-run         only say what would be removed\n"
	  "  -q, --quiet           print nothing but errors (slurmd runs\n"
	  "                        sweep --quiet at start)\n"
	  "  -j, --json            a JSON array: each job shm (or fsdax\n"
	  "                        reservation) removed, would be removed, kept,\n"
	  "                        left alone, held or failed, and why\n",
	  "c:jnqh", sweep_opts, NULL, 0, cmd_sweep },
	{ "report", "[--json] JOBID",
	  "What job JOBID used of its shm on this host: size, peak, final,\n"
	  "times full (from usage_log, or the record of a running job).",
	  "  -j, --json            a JSON array, one object per record ([] and\n"
	  "                        exit 1 when there is none)\n",
	  "c:jh", status_opts, "JOBID", 1, cmd_report },
	{ "check-config", "[--json] [FILE] | --keys[=text|md|man]",
	  "Check a jobshm.conf (FILE, default: the --conf file) and say what\n"
	  "jobs get from it on this node.",
	  "  -j, --json            one JSON object: file, ok, error, warnings,\n"
	  "                        notes and the effective settings\n"
	  "      --keys[=FORMAT]   the configuration reference from the keys the\n"
	  "                        loader knows: text (default), md or man\n",
	  "c:jh", check_opts, "FILE", 0, cmd_check },
	{ "stage", "SRC [--name NAME]",
	  "(users, in a job) Copy SRC (a directory, a tar archive or a file)\n"
	  "into the job's shm once per node and print the environment that\n"
	  "uses it: eval \"$(jobshm stage env.tar.gz)\".",
	  "      --name NAME       stage it as $JOBSHM_DIR/stage/NAME (default:\n"
	  "                        SRC's name less its archive extension)\n",
	  "h", stage_opts, "SRC", 1, cmd_stage },
	{ "exec", NULL, NULL, NULL, NULL, NULL, NULL, 0, cmd_exec },
	{ "suggest", NULL, NULL, NULL, NULL, NULL, NULL, 0, cmd_suggest },
	{ "help", "[COMMAND]",
	  "The commands and global options, or COMMAND's usage and options\n"
	  "(as COMMAND --help).", "", "h", help_opts, "COMMAND", 0, cmd_help },
};

static const struct command *
find_command(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(commands) / sizeof(*commands); i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

static void
cmd_usage(const struct command *c)
{
	int conf = strchr(c->shortopts, 'c') != NULL;

	printf("Usage: %s%s %s %s\n%s\n\nOptions:\n%s", prog, conf ?
	       " [--conf FILE]" : "", c->name, c->synopsis, c->about,
	       c->options);
	if (conf)
		printf("  -c, --conf FILE       configuration file (default %s,\n"
		       "                        or $JOBSHM_CONF)\n", JOBSHM_CONF);
	printf("  -h, --help            this text\n");
}

/* c's options, anywhere among its operands until "--" (getopt permutes);
 * exits on --help and on a wrong option.  The first operand's index. */
static int
parse_cmd(const struct command *c, int ac, char **av)
{
	char label[64];
	int o;

	snprintf(label, sizeof(label), "%s: %s", prog, c->name);
	av[0] = label;	/* getopt's messages: "jobshm: status: ..." */
	optind = 0;	/* a new scan, permuting (no '+') */
	while ((o = getopt_long(ac, av, c->shortopts, c->longopts,
				NULL)) != -1) {
		if (o == 'h') {
			cmd_usage(c);
			exit(0);
		}
		if (set_opt(o) < 0)
			exit(jobshm_cli_try_help(c->name));
	}
	av[0] = (char *)c->name;
	return optind;
}

/* av[0] is the command's name. */
static int
dispatch(const struct command *c, int ac, char **av)
{
	int i, n, max = c->arg ? 1 : 0;

	if (!c->longopts)
		return c->fn(ac, av);
	i = parse_cmd(c, ac, av);
	n = ac - i;
	if (n > max)
		return bad_usage(c->name, "unexpected argument '%s'",
				 av[i + max]);
	if (n < c->need)
		return bad_usage(c->name, "no %s given", c->arg);
	return c->fn(n, av + i);
}

/* exec and suggest parse their own arguments (exec.c, suggest.c); the
 * global --conf goes with them. */
static int
pass_on(int (*fn)(int, char **), int ac, char **av)
{
	char **argv = calloc((size_t)ac + 3, sizeof(*argv));
	int i, n = 0, rc;

	if (!argv)
		return 1;
	argv[n++] = av[0];
	if (app.conf_given) {
		argv[n++] = (char *)"--conf";
		argv[n++] = (char *)app.conf_path;
	}
	for (i = 1; i < ac; i++)
		argv[n++] = av[i];
	rc = fn(n, argv);
	free(argv);
	return rc;
}

static int
cmd_exec(int ac, char **av)
{
	return pass_on(jobshm_cli_exec, ac, av);
}

static int
cmd_suggest(int ac, char **av)
{
	return pass_on(jobshm_cli_suggest, ac, av);
}

/* jobshm help [COMMAND]: as jobshm --help, jobshm COMMAND --help */
static int
cmd_help(int nargs, char **args)
{
	const struct command *c;
	char *help[] = { NULL, (char *)"--help", NULL };

	if (!nargs) {
		usage(stdout);
		return 0;
	}
	if (!(c = find_command(args[0])))
		return bad_usage(NULL, "help: unknown command '%s'", args[0]);
	if (!c->longopts) {
		help[0] = (char *)c->name;
		return c->fn(2, help);
	}
	cmd_usage(c);
	return 0;
}

int
main(int ac, char **av)
{
	const struct command *c;
	int i;

	app.conf_path = getenv("JOBSHM_CONF");
	app.conf_given = app.conf_path != NULL;
	if (!app.conf_path)
		app.conf_path = JOBSHM_CONF;
	i = parse_global(ac, av);
	if (i >= ac)
		return bad_usage(NULL, "no command given");
	if (!(c = find_command(av[i])))
		return bad_usage(NULL, "unknown command '%s' (accepted: "
				 "status, sweep, check-config, report, suggest, "
				 "stage, exec, help)", av[i]);
	return dispatch(c, ac - i, av + i);
}
