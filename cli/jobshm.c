/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * jobshm - admin command for job shared memory on a Slurm node.
 *
 *   jobshm status [--json]      what job shm exists on this host
 *   jobshm sweep [--dry-run]    remove what belongs to ended jobs
 *   jobshm check-config [FILE]  parse and check a jobshm.conf
 *   jobshm report JOBID [--json] what a job used of its shm on this host
 */
#include <getopt.h>
#include <errno.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <slurm/slurm.h>

#include "alive.h"
#include "exec.h"
#include "jobshm.h"


static const char *prog = "jobshm";

static struct {
	const char *conf_path, *keys;
	int conf_given, json, dry_run, quiet;
	int count, failed, unknown;
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
"  sweep [--dry-run]     unmount and remove the shm of jobs that no longer\n"
"                        run here (the node's slurmstepds, then at most\n"
"                        one request to slurmctld); --quiet prints nothing\n"
"  check-config [FILE]   check a jobshm.conf (default: --conf)\n"
"  report JOBID [--json] what the job used of its shm on this host: size,\n"
"                        peak, final, times full (usage_log, or the\n"
"                        record of a running job)\n"
"  stage SRC [--name NAME]\n"
"                        (users, in a job) copy SRC into the job's shm once\n"
"                        per node and print the environment that uses it\n"
"  exec [--node NODE] JOBID -- CMD [ARGS]\n"
"                        (root) run CMD in the job's mount namespace on\n"
"                        this host, where /dev/shm is the job's\n"
"  check-config --keys[=text|md|man]\n"
"                        the configuration reference, from the keys the\n"
"                        loader knows\n"
"\n"
"Options:\n"
"  -c, --conf FILE       configuration file (default %s)\n"
"  -h, --help            this text\n"
"  -V, --version         print the version\n", prog, JOBSHM_CONF);
}

static const char *
user_name(uid_t uid, char *buf, size_t len)
{
	struct passwd *pw = getpwuid(uid);

	if (pw)
		snprintf(buf, len, "%s", pw->pw_name);
	else
		snprintf(buf, len, "%u", (unsigned)uid);
	return buf;
}

/* An ended job whose shm its end left frozen: something still holds
 * an emptied file of it (who is not looked for). */
static int
print_held(const struct jobshm_entry *e, const char *user)
{
	char used[32];

	jobshm_size_format(e->used, used, sizeof(used));
	if (app.json)
		printf("%s\n  {\"job\": %" PRIu32 ", \"node\": \"%s\", "
		       "\"user\": \"%s\", \"ended\": true, \"held\": true, "
		       "\"held_bytes\": %" PRIu64 ", \"size\": %" PRIu64 ", "
		       "\"held_by\": \"%s\"}", app.count ? "," : "",
		       e->job.jobid, e->node, user, e->used, e->size,
		       e->holders);
	else
		printf("%-10" PRIu32 " %-12s %-10s ended; held (%s still in "
		       "use, frozen; holder %s): sweep retries\n", e->job.jobid,
		       e->node[0] ? e->node : "-", user, used, e->holders);
	app.count++;
	return 0;
}

static int
print_entry(const struct jobshm_entry *e, void *arg)
{
	char user[64], sz[32], used[32];

	(void)arg;
	user_name(e->job.uid, user, sizeof(user));
	if (e->held)
		return print_held(e, user);
	if (app.json) {
		struct jobshm_usage u;
		jobshm_err_t err;

		if (jobshm_usage_read(&e->job, &u, &err) < 0)
			u.peak = e->used, u.full = 0;
		printf("%s\n  {\"job\": %" PRIu32 ", \"node\": \"%s\", "
		       "\"user\": \"%s\", \"size\": %" PRIu64 ", "
		       "\"used\": %" PRIu64 ", \"peak\": %" PRIu64 ", "
		       "\"full\": %u, \"mounted\": %s, "
		       "\"kind\": \"%s\", \"mpol\": \"%s\", \"path\": \"%s\"}",
		       app.count ? "," : "", e->job.jobid, e->node, user,
		       e->size, e->used, u.peak > e->used ? u.peak : e->used,
		       u.full, e->mounted ? "true" : "false",
		       jobshm_kind_name(e->kind), e->mpol[0] ? e->mpol :
		       "default", e->job.path);
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

static int
cmd_status(void)
{
	jobshm_err_t err;

	if (app.json)
		printf("[");
	if (jobshm_list(&app.conf, print_entry, NULL, &err) < 0) {
		fprintf(stderr, "%s: status: %s\n", prog, err.msg);
		return 1;
	}
	if (app.json)
		printf("%s]\n", app.count ? "\n" : "");
	else if (!app.count)
		printf("no job shm on this host\n");
	return 0;
}

/* One record of what a job used on a node (running: still sampled). */
static void
print_usage(const struct jobshm_usage *u, int running)
{
	char line[512], user[64], fin[32], t0[32], t1[32];
	time_t a = (time_t)u->start, b = (time_t)u->end;

	if (app.json) {
		jobshm_usage_json(u, line, sizeof(line));
		line[strlen(line) - 1] = '\0';
		printf("%s\n  %s, \"running\": %s}", app.count ? "," : "",
		       line, running ? "true" : "false");
	} else {
		strftime(t0, sizeof(t0), "%F %T", localtime(&a));
		strftime(t1, sizeof(t1), "%F %T", localtime(&b));
		printf("job %" PRIu32 " on %s, final %s (user %s, %s, %s to "
		       "%s%s)\n", u->jobid, jobshm_usage_summary(u, line,
		       sizeof(line)), jobshm_size_format(u->used, fin,
		       sizeof(fin)), user_name(u->uid, user, sizeof(user)),
		       u->kind, t0, t1, running ? ", still running" : "");
	}
	app.count++;
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

/* jobshm report JOBID: the usage log's records, else the live record. */
static int
cmd_report(int nargs, char **args)
{
	jobshm_err_t err;
	uint64_t id;
	uint32_t jobid;

	if (nargs != 1) {
		fprintf(stderr, "%s: report: no JOBID given (usage: %s report "
			"[--json] JOBID)\n", prog, prog);
		return 2;
	}
	if (sscanf(args[0], "%" SCNu64, &id) != 1 || !id ||
	    id > UINT32_MAX || strspn(args[0], "0123456789") !=
	    strlen(args[0])) {
		fprintf(stderr, "%s: report: invalid job id '%s': expected a "
			"job number like 1234\n", prog, args[0]);
		return 2;
	}
	jobid = (uint32_t)id;
	if (app.json)
		printf("[");
	jobshm_usage_log_each(&app.conf, jobid, report_logged, NULL);
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

/* A job whose end left its shm frozen because something held it. */
static int
sweep_held(const struct jobshm_entry *e)
{
	jobshm_err_t err;
	int rc = app.dry_run ? 1 : jobshm_job_cleanup(&e->job, &err);

	if (rc == 0 && !app.quiet)
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
	if (l == JOB_UNKNOWN) {
		fprintf(stderr, "%s: sweep: job %" PRIu32 " left alone: %s\n",
			prog, e->job.jobid, why);
		app.unknown++;
		return 0;
	}
	if (l == JOB_LIVE)
		return 0;
	if (!app.quiet)
		printf("%s %s (job %" PRIu32 ": %s)\n",
		       app.dry_run ? "would remove" : "removed", e->job.path,
		       e->job.jobid, why);
	if (!app.dry_run && jobshm_job_cleanup(&e->job, &err) != 0) {
		fprintf(stderr, "%s: sweep: %s\n", prog, err.msg);
		app.failed++;
	}
	app.count++;
	return 0;
}

/* fsdax reservations left without a job directory (e.g. after a reboot). */
static int
sweep_fsdax(const char *path, uint32_t jobid, uint64_t bytes, const char *node,
	    void *arg)
{
	char why[256];
	jobshm_err_t err;
	enum job_liveness l = decided(jobid, node, why, sizeof(why));

	(void)arg;
	(void)bytes;
	if (l != JOB_GONE) {
		app.unknown += l == JOB_UNKNOWN;
		return 0;
	}
	if (!app.quiet)
		printf("%s %s/.jobshm/%" PRIu32 " (job %" PRIu32 ": %s)\n",
		       app.dry_run ? "would remove" : "removed", path, jobid,
		       jobid, why);
	if (!app.dry_run && jobshm_fsdax_remove(&app.conf, jobid, &err) < 0) {
		fprintf(stderr, "%s: sweep: %s\n", prog, err.msg);
		app.failed++;
	}
	app.count++;
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

static int
cmd_sweep(void)
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
	if (!app.quiet && !app.count && !app.unknown)
		printf("nothing to sweep\n");
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

static int
parse_opts(int ac, char **av)
{
	static const struct option opts[] = {
		{ "conf", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "keys", optional_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(ac, av, "c:jnqhV", opts, NULL)) != -1) {
		switch (c) {
		case 'c': app.conf_path = optarg; app.conf_given = 1; break;
		case 'j': app.json = 1; break;
		case 'n': app.dry_run = 1; break;
		case 'q': app.quiet = 1; break;
		case 'k': app.keys = optarg ? optarg : "text"; break;
		case 'h': usage(stdout); exit(0);
		case 'V': printf("%s %s\n", prog, JOBSHM_VERSION); exit(0);
		default: usage(stderr); exit(2);
		}
	}
	return optind;
}

/*
 * jobshm stage SRC [--name NAME]: the Python module does it, as the user
 * (before option parsing: its options are its own).
 */
static int
cmd_stage(int ac, char **av)
{
	const char *pp = getenv("PYTHONPATH");
	char path[4096], **argv = calloc((size_t)ac + 3, sizeof(*argv));
	int i;

	if (!argv)
		return 1;
	snprintf(path, sizeof(path), "%s%s%s", JOBSHM_PYTHONDIR,
		 pp && *pp ? ":" : "", pp && *pp ? pp : "");
	setenv("PYTHONPATH", path, 1);
	argv[0] = (char *)JOBSHM_PYTHON;
	argv[1] = (char *)"-m";
	argv[2] = (char *)"jobshm.stage";
	for (i = 2; i < ac; i++)
		argv[i + 1] = av[i];
	execv(JOBSHM_PYTHON, argv);
	fprintf(stderr, "%s: stage: cannot run %s: %s\n", prog, JOBSHM_PYTHON,
		strerror(errno));
	free(argv);
	return 1;
}

static int
run(const char *cmd, int nargs, char **args)
{
	int maxargs = !strcmp(cmd, "check-config") ||
		      !strcmp(cmd, "report") ? 1 : 0;

	if (nargs > maxargs) {
		fprintf(stderr, "%s: %s: unexpected argument '%s'\n", prog,
			cmd, args[maxargs]);
		return 2;
	}
	if (!strcmp(cmd, "check-config") && app.keys)
		return nargs ? 2 : cmd_keys(app.keys);
	if (!strcmp(cmd, "check-config"))
		return cmd_check_config(nargs ? args[0] : app.conf_path);
	if (strcmp(cmd, "status") && strcmp(cmd, "sweep") &&
	    strcmp(cmd, "report")) {
		fprintf(stderr, "%s: unknown command '%s' (accepted: status, "
			"sweep, check-config, report, stage, exec)\n", prog, cmd);
		return 2;
	}
	if (load_conf() < 0)
		return 1;
	if (!strcmp(cmd, "report"))
		return cmd_report(nargs, args);
	return !strcmp(cmd, "status") ? cmd_status() : cmd_sweep();
}

int
main(int ac, char **av)
{
	int i;

	if (ac >= 2 && !strcmp(av[1], "stage"))
		return cmd_stage(ac, av);
	if (ac >= 2 && !strcmp(av[1], "exec"))	/* CMD's options are CMD's */
		return jobshm_cli_exec(ac - 1, av + 1);
	app.conf_path = JOBSHM_CONF;
	if (getenv("JOBSHM_CONF")) {
		app.conf_path = getenv("JOBSHM_CONF");
		app.conf_given = 1;
	}
	i = parse_opts(ac, av);
	if (i >= ac) {
		fprintf(stderr, "%s: no command given\n", prog);
		usage(stderr);
		return 2;
	}
	/* getopt_long permutes: options may follow the command too */
	return run(av[i], ac - i - 1, av + i + 1);
}
