/* SPDX-License-Identifier: GPL-2.0-or-later */
/* enqueue_compss's flags, checked before anything is submitted. */
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jobshm.h"
#include "opts.h"

static const char *prog = "enqueue_jobshm";

static int
bad(const char *flag, const char *val, const char *want)
{
	fprintf(stderr, "%s: --%s='%s': %s\n", prog, flag, val, want);
	return -1;
}

static int
uint_arg(const char *flag, const char *val, unsigned min, unsigned max,
	 unsigned *out)
{
	char *end;
	unsigned long v;

	if (val[0] < '0' || val[0] > '9')
		goto fail;
	v = strtoul(val, &end, 10);
	if (*end || v < min || v > max)
		goto fail;
	*out = (unsigned)v;
	return 0;
fail:
	fprintf(stderr, "%s: --%s='%s': expected a whole number from %u to "
		"%u\n", prog, flag, val, min, max);
	return -1;
}

static int
one_of(const char *flag, const char *val, const char *const *ok)
{
	const char *const *p;
	char list[256] = "";

	for (p = ok; *p; p++) {
		if (!strcmp(val, *p))
			return 0;
		strcat(list, p == ok ? "" : ", ");
		strcat(list, *p);
	}
	fprintf(stderr, "%s: --%s='%s': expected one of %s\n", prog, flag, val,
		list);
	return -1;
}

/* MODE:SIZE in NEXTGenIO's spelling, checked by libjobshm as the plugin
 * checks it. */
static int
nvram_arg(struct request *r, const char *val)
{
	struct jobshm_nvram nv;
	jobshm_err_t err;

	if (jobshm_nvram_parse(val, &nv, &err) < 0) {
		fprintf(stderr, "%s: --nvram_options: %s\n", prog, err.msg);
		return -1;
	}
	r->nvram_gb = (double)nv.bytes / (1 << 30);
	return 0;
}

/* The stage's NAME as given, else the library's default for its SRC. */
static int
stage_name(char *out, size_t len, const char *src, const char *name,
	   jobshm_err_t *err)
{
	if (!name)
		return jobshm_stage_name(src, out, len, err);
	snprintf(out, len, "%s", name);
	return jobshm_name_check(out, err);
}

/* --stage=SRC[:NAME]: SRC readable here (made absolute), NAME a name. */
static int
stage_arg(struct request *r, const char *val)
{
	char src[4096], *colon, *name;
	jobshm_err_t err;

	if (r->nstage == MAX_STAGE || strlen(val) >= sizeof(src))
		return bad("stage", val, "at most 16 stages of SRC[:NAME]");
	snprintf(src, sizeof(src), "%s", val);
	colon = strrchr(src, ':');
	name = colon && !strchr(colon, '/') ? colon + 1 : NULL;
	if (name)
		*colon = '\0';
	if (!realpath(src, r->stage[r->nstage].src) ||
	    access(r->stage[r->nstage].src, R_OK) < 0)
		return bad("stage", val, "a readable directory, tar archive or "
			   "file, optionally followed by :NAME");
	if (stage_name(r->stage[r->nstage].name, sizeof(r->stage[0].name),
		       r->stage[r->nstage].src, name, &err) < 0) {
		fprintf(stderr, "%s: --stage='%s': %s\n", prog, val, err.msg);
		return -1;
	}
	r->nstage++;
	return 0;
}

static int
shm_arg(struct request *r, const char *val)
{
	struct jobshm_size sz;
	jobshm_err_t err;

	if (jobshm_size_parse(val, &sz, &err) < 0) {
		fprintf(stderr, "%s: --shm: %s\n", prog, err.msg);
		return -1;
	}
	r->shm_bytes = sz.none || sz.percent ? 0 : sz.bytes;
	return 0;
}

static int
wd_arg(const char *flag, const char *val, int allow_shm)
{
	if (val[0] == '/' || !strcmp(val, "local_disk") ||
	    (allow_shm && !strcmp(val, "shm")))
		return 0;
	return bad(flag, val, allow_shm ?
		   "expected shm, local_disk or an absolute path" :
		   "expected local_disk or an absolute path");
}

static void
usage(FILE *f)
{
	fprintf(f,
"Usage: %s [options] APP [APP_ARGS...]\n"
"Submit a task-runtime job with a private node-wide /dev/shm (jobshm).\n"
"\n"
"enqueue_compss's flags:\n"
"  --exec_time=MIN               time limit in minutes (10)\n"
"  --num_nodes=N                 nodes (1)\n"
"  --cpus_per_node=N             CPUs per node (1)\n"
"  --worker_in_master_cpus=N     CPUs of the master node that run tasks\n"
"                                (--cpus_per_node on one node, else 0)\n"
"  --master_working_dir=DIR      absolute path or local_disk (.)\n"
"  --worker_working_dir=DIR      shm (the job's shm), local_disk or a path\n"
"  --lang=python|java|c          application language (python)\n"
"  --tracing=false|true|basic|advanced, --graph=true|false\n"
"  --log_level=off|info|debug\n"
"  --qos=QOS, --project_name=ACCOUNT, --job_name=NAME\n"
"  --job_dependency=JOBID        start after that job ends\n"
"  --nvram_options=1LM:SIZE|2LM:SIZE  the job's shm on NVRAM (SIZE in GB)\n"
"  --cpu_affinity=SPEC           passed to the runtime (automatic)\n"
"  --extra_submit_flag=FLAG      one more sbatch option (repeatable)\n"
"jobshm's own:\n"
"  --shm=SIZE                    the job's shm per node (as sbatch --shm)\n"
"  --runtime=compss|exec|dask    COMPSs's launch_compss; run APP on every\n"
"                                node with srun; or a Dask scheduler and\n"
"                                --cpus_per_node workers on every node (TLS\n"
"                                only, with keys of the job's own), then APP\n"
"                                on the first node (compss)\n"
"  --stage=SRC[:NAME]            copy SRC (a directory, tar archive or file)\n"
"                                into the job's shm on every node before the\n"
"                                application starts, and export the\n"
"                                environment that uses it (repeatable)\n"
"  --dry-run                     print the batch script (and the XML files)\n"
"  --parsable                    print only the job id (and ;cluster), as\n"
"                                sbatch --parsable\n"
"  -h, --help, -V, --version\n", prog);
}

enum {
	O_EXEC = 256, O_NODES, O_CPUS, O_WIM, O_MWD, O_WWD, O_LANG, O_TRACE,
	O_GRAPH, O_LOG, O_QOS, O_PROJ, O_NAME, O_DEP, O_NVRAM, O_AFF, O_EXTRA, O_STAGE,
	O_SHM, O_RUNTIME, O_DRY, O_PARSABLE, O_XML, O_HOSTS,
};

static const struct option opts[] = {
	{ "exec_time", required_argument, NULL, O_EXEC },
	{ "num_nodes", required_argument, NULL, O_NODES },
	{ "cpus_per_node", required_argument, NULL, O_CPUS },
	{ "worker_in_master_cpus", required_argument, NULL, O_WIM },
	{ "master_working_dir", required_argument, NULL, O_MWD },
	{ "worker_working_dir", required_argument, NULL, O_WWD },
	{ "lang", required_argument, NULL, O_LANG },
	{ "tracing", required_argument, NULL, O_TRACE },
	{ "graph", required_argument, NULL, O_GRAPH },
	{ "log_level", required_argument, NULL, O_LOG },
	{ "qos", required_argument, NULL, O_QOS },
	{ "project_name", required_argument, NULL, O_PROJ },
	{ "job_name", required_argument, NULL, O_NAME },
	{ "job_dependency", required_argument, NULL, O_DEP },
	{ "nvram_options", required_argument, NULL, O_NVRAM },
	{ "cpu_affinity", required_argument, NULL, O_AFF },
	{ "extra_submit_flag", required_argument, NULL, O_EXTRA },
	{ "stage", required_argument, NULL, O_STAGE },
	{ "shm", required_argument, NULL, O_SHM },
	{ "runtime", required_argument, NULL, O_RUNTIME },
	{ "dry-run", no_argument, NULL, O_DRY },
	{ "parsable", no_argument, NULL, O_PARSABLE },
	{ "write-xml", required_argument, NULL, O_XML },
	{ "hosts", required_argument, NULL, O_HOSTS },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

static const char *const langs[] = { "python", "java", "c", NULL };
static const char *const bools[] = { "true", "false", NULL };
static const char *const traces[] = { "false", "true", "basic", "advanced",
				      NULL };
static const char *const levels[] = { "off", "info", "debug", NULL };
static const char *const runtimes[] = { "compss", "exec", "dask", NULL };

static void
defaults(struct request *r)
{
	memset(r, 0, sizeof(*r));
	r->exec_time = 10;
	r->num_nodes = 1;
	r->cpus_per_node = 1;
	r->master_wd = ".";
	r->worker_wd = "local_disk";
	r->lang = "python";
	r->tracing = "false";
	r->graph = "false";
	r->log_level = "off";
	r->runtime = "compss";
	r->cpu_affinity = "automatic";
}

static int
set_text(struct request *r, int c, const char *v)
{
	if (strpbrk(v, "\n\r") || !*v)
		return bad(opts[c - O_EXEC].name, v, "must be one line, "
			   "not empty");
	switch (c) {
	case O_MWD: r->master_wd = v; return wd_arg("master_working_dir", v, 0);
	case O_WWD: r->worker_wd = v; return wd_arg("worker_working_dir", v, 1);
	case O_LANG: r->lang = v; return one_of("lang", v, langs);
	case O_TRACE: r->tracing = v; return one_of("tracing", v, traces);
	case O_GRAPH: r->graph = v; return one_of("graph", v, bools);
	case O_LOG: r->log_level = v; return one_of("log_level", v, levels);
	case O_RUNTIME: r->runtime = v; return one_of("runtime", v, runtimes);
	case O_QOS: r->qos = v; return 0;
	case O_PROJ: r->project = v; return 0;
	case O_NAME: r->job_name = v; return 0;
	case O_AFF: r->cpu_affinity = v; return 0;
	case O_XML: r->xml_dir = v; return 0;
	case O_HOSTS: r->hosts = v; return 0;
	}
	return 1;
}

static int
set_opt(struct request *r, int c, const char *v)
{
	unsigned dep;

	switch (c) {
	case O_EXEC: return uint_arg("exec_time", v, 1, 525600, &r->exec_time);
	case O_NODES: return uint_arg("num_nodes", v, 1, 100000, &r->num_nodes);
	case O_CPUS:
		return uint_arg("cpus_per_node", v, 1, 4096, &r->cpus_per_node);
	case O_WIM:
		r->wim_given = 1;
		return uint_arg("worker_in_master_cpus", v, 0, 4096,
				&r->worker_in_master_cpus);
	case O_DEP:
		r->dependency = v;
		return uint_arg("job_dependency", v, 1, 0xfffffff0u, &dep);
	case O_NVRAM: r->nvram = v; return nvram_arg(r, v);
	case O_SHM: r->shm = v; return shm_arg(r, v);
	case O_DRY: r->dry_run = 1; return 0;
	case O_PARSABLE: r->parsable = 1; return 0;
	case O_STAGE: return stage_arg(r, v);
	case O_EXTRA:
		if (r->nextra == MAX_EXTRA || v[0] != '-' || strchr(v, '\n'))
			return bad("extra_submit_flag", v, "expected one sbatch "
				   "option such as --exclusive (at most 32)");
		r->extra[r->nextra++] = v;
		return 0;
	}
	return set_text(r, c, v);
}

static int
cross_check(struct request *r)
{
	if (r->worker_in_master_cpus > r->cpus_per_node) {
		fprintf(stderr, "%s: --worker_in_master_cpus=%u is larger than "
			"--cpus_per_node=%u\n", prog, r->worker_in_master_cpus,
			r->cpus_per_node);
		return -1;
	}
	if (!strcmp(r->runtime, "compss") && r->num_nodes == 1 &&
	    r->worker_in_master_cpus == 0) {
		fprintf(stderr, "%s: with --num_nodes=1 the master node is the "
			"only worker: give --worker_in_master_cpus=1 or more\n",
			prog);
		return -1;
	}
	if (!strcmp(r->worker_wd, "shm") && !r->shm && !r->nvram) {
		fprintf(stderr, "%s: --worker_working_dir=shm needs --shm=SIZE "
			"or --nvram_options=MODE:SIZE\n", prog);
		return -1;
	}
	return 0;
}

/* Not given: on one node the master is the only worker, with all its
 * CPUs; on more, the workers are the other nodes (enqueue_compss's 0). */
static void
late_defaults(struct request *r)
{
	if (!r->wim_given)
		r->worker_in_master_cpus = r->num_nodes == 1 ?
					   r->cpus_per_node : 0;
}

static int
try_help(void)
{
	fprintf(stderr, "Try '%s --help' for more information.\n", prog);
	return -1;
}

static unsigned
umin(unsigned a, unsigned b)
{
	return a < b ? a : b;
}

/* Edits (insertions, deletions, substitutions, adjacent swaps) from the
 * LEN characters at a to b; UINT_MAX when either is too long to matter. */
static unsigned
distance(const char *a, size_t la, const char *b)
{
	unsigned d[33][33], v;
	size_t lb = strlen(b), i, j;

	if (la > 32 || lb > 32)
		return UINT_MAX;
	for (i = 0; i <= la; i++)
		d[i][0] = i;
	for (j = 0; j <= lb; j++)
		d[0][j] = j;
	for (i = 1; i <= la; i++)
		for (j = 1; j <= lb; j++) {
			v = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
			v = umin(v, umin(d[i - 1][j], d[i][j - 1]) + 1);
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] &&
			    a[i - 2] == b[j - 1])
				v = umin(v, d[i - 2][j - 2] + 1);
			d[i][j] = v;
		}
	return d[la][lb];
}

/* The option a misspelt NAME (LEN characters) means: the only one it
 * begins, else the nearest within 2 edits and a third of its length;
 * never a hidden one.  NULL if none. */
static const char *
nearest(const char *name, size_t len)
{
	const struct option *o, *best = NULL, *prefix = NULL;
	unsigned d, best_d = 3;
	int nprefix = 0;

	for (o = opts; o->name; o++) {
		if (o->val == O_XML || o->val == O_HOSTS)
			continue;
		if (len && !strncmp(o->name, name, len) && nprefix++ == 0)
			prefix = o;
		d = distance(name, len, o->name);
		if (d < best_d && 3 * d <= len) {
			best = o;
			best_d = d;
		}
	}
	if (nprefix == 1)
		return prefix->name;
	return best ? best->name : NULL;
}

/* --NAME[=VALUE] with NAME spelt in full: getopt_long would take a unique
 * prefix, which a later option could make ambiguous. */
static int
long_known(const char *arg)
{
	size_t len = strcspn(arg + 2, "=");
	const struct option *o;
	const char *near;

	for (o = opts; o->name; o++)
		if (strlen(o->name) == len && !strncmp(o->name, arg + 2, len))
			return 0;
	fprintf(stderr, "%s: unrecognized option '%s'", prog, arg);
	if ((near = nearest(arg + 2, len)))
		fprintf(stderr, "; did you mean '--%s'?", near);
	fputc('\n', stderr);
	return try_help();
}

/* getopt_long's next option, -2 after an unknown one (said) */
static int
next_opt(int ac, char **av)
{
	const char *a = optind < ac ? av[optind] : "";

	if (!strncmp(a, "--", 2) && a[2] && long_known(a) < 0)
		return -2;
	return getopt_long(ac, av, "+:hV", opts, NULL);
}

/* getopt_long's '?' or ':' for ARG, a known long option or a short one */
static int
bad_opt(int c, const char *arg)
{
	if (c == ':')
		fprintf(stderr, "%s: option '%s' requires an argument\n", prog,
			arg);
	else if (!strncmp(arg, "--", 2))
		fprintf(stderr, "%s: option '%.*s' takes no argument\n", prog,
			(int)strcspn(arg, "="), arg);
	else
		fprintf(stderr, "%s: invalid option -- '%c'\n", prog, optopt);
	return try_help();
}

int
request_parse(struct request *r, int ac, char **av)
{
	int c;

	defaults(r);
	opterr = 0;
	while ((c = next_opt(ac, av)) != -1) {
		if (c == -2)
			return -1;
		if (c == 'h') {
			usage(stdout);
			exit(0);
		}
		if (c == 'V') {
			printf("%s %s\n", prog, JOBSHM_VERSION);
			exit(0);
		}
		if (c == '?' || c == ':')
			return bad_opt(c, av[optind - 1]);
		if (set_opt(r, c, optarg) != 0)
			return -1;
	}
	r->app = av + optind;
	if (r->xml_dir)
		return 0;
	if (!r->app[0]) {
		fprintf(stderr, "%s: missing APP, the program to run\n", prog);
		return try_help();
	}
	late_defaults(r);
	return cross_check(r);
}
