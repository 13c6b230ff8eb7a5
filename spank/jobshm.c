/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * jobshm.so - SPANK glue: maps Slurm's callbacks onto libjobshm.
 *
 *   allocator/local (sbatch, salloc, srun): register --shm, check syntax.
 *   remote (slurmstepd): admit and create/grow the job's tmpfs, once per
 *     step, and join the job's mount namespace on the node (the first
 *     step makes it), where the tmpfs is on /dev/shm, before the tasks
 *     are forked; beside a job container each task attaches it itself.
 *   job script (epilog): release the namespace, unmount and remove the
 *     job's tmpfs.
 *   slurmd: sweep leftovers of jobs whose epilog never ran.
 *
 * A user's mistake never fails a slurmstepd callback (that drains the
 * node for a batch job); it is kept and fails the job's tasks instead.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <slurm/slurm.h>
#include <slurm/spank.h>

#include "jobshm.h"

SPANK_PLUGIN(jobshm, 1);


static struct {
	char conf_path[256];
	char cli_path[256];
	struct jobshm_conf conf;
	struct jobshm_job job;
	struct jobshm_placement place;
	uint64_t bytes;             /* 0: no private shm for this step */
	int setup;                  /* step set up: 1 done, -1 failed  */
	int host_ns;                /* slurmstepd's namespace, open    */
	ino_t job_ns;               /* the job's, once slurmstepd is in */
	const char *shm_arg;        /* --shm as given, for debug       */
	char failure[JOBSHM_ERRLEN + 256];
} state;

enum { OPT_SHM, OPT_MPOL, OPT_NVRAM, NOPTS };

static int opt_cb(int val, const char *optarg, int remote);

static struct spank_option options[NOPTS] = {
	{ "shm", "SIZE",
	  "Private node-wide /dev/shm of SIZE for the job (MiB, or with "
	  "K/M/G/T, or N% of the job's memory; 0/none for no private shm).",
	  1, OPT_SHM, opt_cb },
	{ "shm-mpol", "POLICY",
	  "NUMA placement of the job's shm: local, interleave, bind:LIST or "
	  "default.", 1, OPT_MPOL, opt_cb },
	{ "nvram-options", "MODE:SIZE",
	  "The job's shm on persistent memory: 1LM:SIZE (App Direct) or "
	  "2LM:SIZE (Memory Mode), SIZE in GB (2-4000).", 1, OPT_NVRAM, opt_cb },
};

static char *opt_val[NOPTS];

/* Syntax is checked where the user typed it, before anything is queued. */
static int
opt_check(int val, const char *arg, jobshm_err_t *err)
{
	struct jobshm_size sz;
	struct jobshm_mpol m;
	struct jobshm_nvram n;

	if (val == OPT_SHM)
		return jobshm_size_parse(arg, &sz, err);
	if (val == OPT_MPOL)
		return jobshm_mpol_parse(arg, &m, err);
	return jobshm_nvram_parse(arg, &n, err);
}

static int
opt_cb(int val, const char *optarg, int remote)
{
	jobshm_err_t err;

	if (val < 0 || val >= NOPTS)
		return -1;
	if (opt_check(val, optarg, &err) < 0) {
		if (!remote)
			fprintf(stderr, "jobshm: --%s: %s\n",
				options[val].name, err.msg);
		else
			slurm_error("jobshm: --%s: %s", options[val].name,
				    err.msg);
		return -1;
	}
	free(opt_val[val]);
	opt_val[val] = strdup(optarg);
	return 0;
}

static int
parse_args(int ac, char **av)
{
	int i;

	snprintf(state.cli_path, sizeof(state.cli_path), "%s", JOBSHM_CLI);
	for (i = 0; i < ac; i++) {
		if (!strncmp(av[i], "conf=", 5))
			snprintf(state.conf_path, sizeof(state.conf_path), "%s", av[i] + 5);
		else if (!strncmp(av[i], "cli=", 4))
			snprintf(state.cli_path, sizeof(state.cli_path), "%s", av[i] + 4);
		else {
			slurm_error("jobshm: unknown plugstack argument '%s' "
				    "(accepted: conf=PATH, cli=PATH)", av[i]);
			return -1;
		}
	}
	return 0;
}

/* Every callback gets the plugstack arguments; not all contexts call init. */
static int
load_conf(int ac, char **av)
{
	jobshm_err_t err;

	if (parse_args(ac, av) < 0) {
		snprintf(state.failure, sizeof(state.failure), "jobshm: bad plugstack "
			 "arguments (see the slurmd log)");
		return -1;
	}
	jobshm_conf_defaults(&state.conf);
	if (!state.conf_path[0])
		return 0;
	if (jobshm_conf_load(&state.conf, state.conf_path, &err) < 0) {
		snprintf(state.failure, sizeof(state.failure), "jobshm: %s", err.msg);
		slurm_error("%s", state.failure);
		return -1;
	}
	return 0;
}

/* Start `jobshm sweep` detached, so slurmd's start never waits on it. */
static void
spawn_sweep(void)
{
	pid_t pid;

	if (access(state.cli_path, X_OK) < 0) {
		slurm_error("jobshm: sweep command %s: %m: the shm of jobs "
			    "that ended while slurmd was down is not swept "
			    "(install jobshm there or set cli=PATH in "
			    "plugstack.conf)", state.cli_path);
		return;
	}
	pid = fork();

	if (pid == 0) {
		setsid();
		if (fork() == 0) {
			closefrom(3);
			execl(state.cli_path, state.cli_path, "sweep", "--quiet",
			      state.conf_path[0] ? "--conf" : NULL, state.conf_path,
			      (char *)NULL);
			_exit(127);
		}
		_exit(0);
	}
	if (pid > 0)
		waitpid(pid, NULL, 0);
	else
		slurm_error("jobshm: fork for sweep: %m");
}

static int
register_options(spank_t sp)
{
	int i;

	for (i = 0; i < NOPTS; i++) {
		if (spank_option_register(sp, &options[i]) != ESPANK_SUCCESS) {
			slurm_error("jobshm: cannot register --%s",
				    options[i].name);
			return -1;
		}
	}
	return 0;
}

int
slurm_spank_init(spank_t sp, int ac, char **av)
{
	spank_context_t ctx = spank_context();

	if (parse_args(ac, av) < 0)
		return -1;
	if (ctx != S_CTX_SLURMD && ctx != S_CTX_JOB_SCRIPT &&
	    register_options(sp) < 0)
		return -1;
	if (ctx == S_CTX_SLURMD) {
		if (load_conf(ac, av) < 0)
			return -1;
		spawn_sweep();
	}
	return 0;
}

/* A user option for this step: as given to srun, else from the job env. */
static const char *
option(spank_t sp, int i)
{
	static char buf[NOPTS][128];
	char env[128], *val = NULL;

	if (opt_val[i])
		return opt_val[i];
	if (spank_option_getopt(sp, &options[i], &val) == ESPANK_SUCCESS && val)
		return val;
	snprintf(env, sizeof(env), "SPANK__SLURM_SPANK_OPTION_jobshm_%s",
		 options[i].name);
	for (char *p = env; *p; p++)
		*p = *p == '-' ? '_' : *p;
	if (spank_getenv(sp, env, buf[i], sizeof(buf[i])) == ESPANK_SUCCESS)
		return buf[i];
	return NULL;
}

/*
 * The node this slurmd runs as.  The task's and the epilog's own
 * environment have it; the job environment may carry a stale value
 * from the step that ran srun, so it is never asked.
 */
static void
node_name(char *buf, size_t len)
{
	if (getenv("SLURMD_NODENAME")) {
		snprintf(buf, len, "%s", getenv("SLURMD_NODENAME"));
		return;
	}
	gethostname(buf, len);
	buf[strcspn(buf, ".")] = '\0';
}

static int
job_ids(spank_t sp, uint32_t *jobid, uint32_t *stepid)
{
	if (spank_get_item(sp, S_JOB_ID, jobid) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_JOB_STEPID, stepid) != ESPANK_SUCCESS)
		return -1;
	if (spank_get_item(sp, S_JOB_UID, &state.job.uid) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_JOB_GID, &state.job.gid) != ESPANK_SUCCESS)
		return -1;
	return 0;
}

/*
 * Where the job's shm goes.  hwloc is asked only when the request needs
 * it (a policy other than default, or NVRAM): probing costs
 * milliseconds at every job start.  Later steps are placed too, so
 * that a request this node cannot serve fails in every step.
 */
static int
placement(spank_t sp, const struct jobshm_nvram *nv, struct jobshm_topo *t,
	  jobshm_err_t *err)
{
	struct jobshm_mpol m = state.conf.default_mpol;
	const char *mp = option(sp, OPT_MPOL);
	char *cores = NULL;

	memset(t, 0, sizeof(*t));
	if (mp && jobshm_mpol_parse(mp, &m, err) < 0)
		return -1;
	snprintf(state.place.mode, sizeof(state.place.mode), "tmpfs");
	snprintf(state.place.policy, sizeof(state.place.policy), "default");
	if (m.kind != JOBSHM_MPOL_DEFAULT || nv->mode) {
		spank_get_item(sp, S_JOB_ALLOC_CORES, &cores);
		if (jobshm_topo_probe(state.conf.topology_xml, cores, t, err) < 0)
			return -1;
		t->fsdax = state.conf.n_nvram_paths;
		if (jobshm_place(&m, nv, t, &state.place, err) < 0)
			return -1;
	}
	return jobshm_place_huge(&state.place, &state.conf, err);
}

/* The one admission check, for a first step and a later one alike. */
static int
admit(spank_t sp, const struct jobshm_nvram *nv, uint64_t mem,
      uint64_t current, const struct jobshm_topo *t, jobshm_err_t *err)
{
	struct jobshm_request req = {
		.shm = state.shm_arg = option(sp, OPT_SHM), .nvram = *nv, .job_mem = mem,
		.current = current, .pmem = state.place.fsdax ? 0 : t->nvm_bytes,
	};

	return jobshm_admit_request(&state.conf, &req, &state.bytes, err);
}

static void
export_env(spank_t sp)
{
	char v[64];

	if (state.place.mode[0]) {
		spank_setenv(sp, "JOBSHM_MODE", state.place.mode, 1);
		spank_setenv(sp, "JOBSHM_MPOL", state.place.policy, 1);
		if (state.place.nodes[0])	/* unknown without a policy */
			spank_setenv(sp, "JOBSHM_NUMA_NODES", state.place.nodes, 1);
	}
	spank_setenv(sp, "JOBSHM_DIR", "/dev/shm", 1);
	snprintf(v, sizeof(v), "%" PRIu64, state.bytes);
	spank_setenv(sp, "JOBSHM_SIZE", v, 1);
	snprintf(v, sizeof(v), "jobshm.%" PRIu32 ".", state.job.jobid);
	spank_setenv(sp, "JOBSHM_PREFIX", v, 1);
}

/* debug = true: what was decided for this step, and why. */
static void
debug_decision(const char *nv_arg, uint64_t current)
{
	char a[32], b[32];

	if (!state.conf.debug)
		return;
	slurm_info("jobshm: job %" PRIu32 ": admitted %s (--shm=%s%s%s, "
		   "shm now %s); placement %s, policy %s%s%s; tmpfs options "
		   "'%s'", state.job.jobid, jobshm_size_format(state.bytes, a, sizeof(a)),
		   state.shm_arg ? state.shm_arg : "(default_size)",
		   nv_arg ? ", --nvram-options=" : "", nv_arg ? nv_arg : "",
		   jobshm_size_format(current, b, sizeof(b)), state.place.mode,
		   state.place.policy, state.place.nodes[0] ? " on NUMA nodes " : "",
		   state.place.nodes, state.place.opts);
}

/* The job's shm on this node now: 0 when there is none yet. */
static int
current_size(uint64_t *bytes, jobshm_err_t *err)
{
	uint64_t used;
	int m = jobshm_job_mounted(&state.job, err);

	*bytes = 0;
	if (m <= 0)
		return m;
	return jobshm_job_usage(&state.job, bytes, &used, err);
}

/* Place, admit, then create or grow the job's shm; state.failure: why not */
static int
setup_job_shm(spank_t sp, const char *node, uint64_t mem, jobshm_err_t *err)
{
	struct jobshm_nvram nv = { 0, 0 };
	struct jobshm_topo t;
	const char *nv_arg = option(sp, OPT_NVRAM);
	uint64_t current, used;

	if (nv_arg && jobshm_nvram_parse(nv_arg, &nv, err) < 0)
		return -1;
	if (current_size(&current, err) < 0 ||
	    placement(sp, &nv, &t, err) < 0 ||
	    admit(sp, &nv, mem, current, &t, err) < 0)
		return -1;
	debug_decision(nv_arg, current);
	if (state.bytes == 0 && current == 0)
		return 0;
	if (state.bytes > current || !current) {
		if (state.place.fsdax ?
		    jobshm_job_setup_fsdax(&state.job, node, state.bytes, err) < 0 :
		    jobshm_job_setup(&state.job, state.bytes, state.place.opts, err) < 0)
			return -1;
	}
	return jobshm_job_usage(&state.job, &state.bytes, &used, err);
}

static int
step_setup(spank_t sp)
{
	char node[128];
	uint32_t jobid, stepid;
	uint64_t mem_mb = 0;
	uid_t uid;
	gid_t gid;
	jobshm_err_t err;

	if (job_ids(sp, &jobid, &stepid) < 0) {
		snprintf(state.failure, sizeof(state.failure),
			 "jobshm: cannot read the job's ids from Slurm");
		return -1;
	}
	if (stepid == SLURM_EXTERN_CONT)
		return 0;
	spank_get_item(sp, S_JOB_ALLOC_MEM, &mem_mb);
	node_name(node, sizeof(node));
	uid = state.job.uid;
	gid = state.job.gid;
	if (jobshm_job_init(&state.job, &state.conf, node, jobid, &err) < 0)
		goto fail;
	state.job.uid = uid;
	state.job.gid = gid;
	if (setup_job_shm(sp, node, mem_mb << 20, &err) < 0)
		goto fail;
	if (state.bytes)
		export_env(sp);
	return 0;
fail:
	state.bytes = 0;
	snprintf(state.failure, sizeof(state.failure), "jobshm: job %" PRIu32
		 " on %s: %s", jobid, node, err.msg);
	slurm_error("%s", state.failure);
	return -1;
}

/* Set the step up once: 1 done, -1 failed (state.failure says why). */
static int
setup_once(spank_t sp, int ac, char **av)
{
	if (!state.setup)
		state.setup = load_conf(ac, av) < 0 || step_setup(sp) < 0 ?
			      -1 : 1;
	return state.setup;
}

static ino_t
namespace_of(const char *file)
{
	struct stat st;

	return stat(file, &st) == 0 ? st.st_ino : 0;
}

/* 1 if slurm.conf's line sets key ("Key=value"), its value in val */
static int
conf_line_sets(const char *line, const char *key, char *val, size_t len)
{
	size_t k = strlen(key);

	line += strspn(line, " \t");
	if (strncasecmp(line, key, k) || line[k + strspn(line + k, " \t")] != '=')
		return 0;
	line = strchr(line, '=') + 1;
	line += strspn(line, " \t");
	snprintf(val, len, "%.*s", (int)strcspn(line, " \t\n#"), line);
	return 1;
}

/*
 * 1 if slurm.conf names a job container or namespace plugin: its tasks
 * must start in the host's namespace, where its own holder is (a copy of
 * a namespace never carries another namespace's nsfs binds).
 */
static int
slurm_uses_job_container(void)
{
	const char *paths[] = { getenv("SLURM_CONF"), "/etc/slurm/slurm.conf",
				"/etc/slurm-llnl/slurm.conf" };
	char line[512], val[128];
	int found = 0;
	FILE *f = NULL;

	for (size_t i = 0; !f && i < sizeof(paths) / sizeof(paths[0]); i++)
		f = paths[i] ? fopen(paths[i], "re") : NULL;
	while (f && !found && fgets(line, sizeof(line), f))
		found = (conf_line_sets(line, "JobContainerType", val,
					sizeof(val)) ||
			 conf_line_sets(line, "NamespaceType", val,
					sizeof(val))) &&
			val[0] && strncasecmp(val, "none", 4) &&
			!strstr(val, "/none");
	if (f)
		fclose(f);
	return found;
}

/*
 * slurmstepd's thread that forks the tasks joins the job's namespace
 * (making it if this is the job's first step here), so that every task
 * starts in it and pays nothing.  Where that cannot be done, each task
 * joins by itself.
 */
static void
stepd_join(void)
{
	jobshm_err_t err;

	state.host_ns = open("/proc/thread-self/ns/mnt", O_RDONLY | O_CLOEXEC);
	if (state.host_ns < 0)
		return;
	if (jobshm_job_join(&state.job, "/dev/shm", &err) == 0)
		state.job_ns = namespace_of("/proc/thread-self/ns/mnt");
	else
		slurm_info("jobshm: job %" PRIu32 ": %s; each task enters a "
			   "namespace of its own", state.job.jobid, err.msg);
}

/*
 * In slurmstepd, as root, once per step, before any task is forked.  Its
 * process environment names the node (slurmstepd sets SLURMD_NODENAME);
 * where it does not, each task sets the step up instead.  A failure is
 * kept for the tasks: failing here would drain the node.
 */
int
slurm_spank_init_post_opt(spank_t sp, int ac, char **av)
{
	state.host_ns = -1;
	if (spank_context() == S_CTX_REMOTE && getenv("SLURMD_NODENAME") &&
	    setup_once(sp, ac, av) > 0 && state.bytes &&
	    state.conf.stepd_namespace && !slurm_uses_job_container())
		stepd_join();
	return 0;
}

/*
 * The namespace where the job's mount is, open, when a job container has
 * moved this task out of the namespace it was forked in; -1 otherwise.
 */
static int
moved_from(void)
{
	char parent[64];
	ino_t here = namespace_of("/proc/self/ns/mnt");

	if (state.job_ns)	/* forked in the job's namespace */
		return here == state.job_ns ? -1 : dup(state.host_ns);
	snprintf(parent, sizeof(parent), "/proc/%d/ns/mnt", (int)getppid());
	return here == namespace_of(parent) ? -1 :
	       open(parent, O_RDONLY | O_CLOEXEC);
}

/* This task: in the job's namespace, or with the job's mount on /dev/shm
 * in one of its own beside a job container's. */
static int
enter_job_shm(void)
{
	jobshm_err_t err;
	int host = moved_from(), rc = 0;

	if (host >= 0)
		rc = jobshm_job_enter_from(&state.job, host, "/dev/shm", &err);
	else if (!state.job_ns &&
		 (rc = jobshm_job_join(&state.job, "/dev/shm", &err)) > 0)
		rc = jobshm_job_enter(&state.job, "/dev/shm", &err);
	if (host >= 0)
		close(host);
	if (rc < 0) {
		dprintf(STDERR_FILENO, "jobshm: %s\n", err.msg);
		slurm_error("jobshm: %s", err.msg);
		return -1;
	}
	return 0;
}

/*
 * Runs in each task, as root, before it becomes the user.  A failure
 * fails the task with its reason on the task's stderr and never fails
 * slurmstepd (which would drain the node).
 */
int
slurm_spank_task_init_privileged(spank_t sp, int ac, char **av)
{
	if (setup_once(sp, ac, av) < 0) {
		dprintf(STDERR_FILENO, "%s\n", state.failure);
		return -1;
	}
	return state.bytes ? enter_job_shm() : 0;
}

int
slurm_spank_job_epilog(spank_t sp, int ac, char **av)
{
	char node[128];
	uint32_t jobid;
	jobshm_err_t err;
	int rc = 0, killed = 0;

	if (load_conf(ac, av) < 0)
		return 0;	/* nothing of ours can be mounted */
	if (spank_get_item(sp, S_JOB_ID, &jobid) != ESPANK_SUCCESS)
		return 0;
	node_name(node, sizeof(node));
	if (jobshm_job_init(&state.job, &state.conf, node, jobid, &err) < 0)
		rc = -1;
	else if (state.conf.debug && jobshm_job_reap(&state.job, &killed, &err) == 0 &&
		 killed)
		slurm_info("jobshm: epilog of job %" PRIu32 ": killed %d "
			   "process(es) of the job's user still holding its "
			   "shm", jobid, killed);
	if (rc == 0)
		rc = jobshm_job_cleanup(&state.job, &err);
	if (rc < 0) {
		slurm_error("jobshm: epilog of job %" PRIu32 " on %s: %s",
			    jobid, node, err.msg);
		return -1;
	}
	if (rc == 0 && state.conf.debug)
		slurm_info("jobshm: epilog of job %" PRIu32 " on %s: removed",
			   jobid, node);
	if (rc > 0)	/* the user's fsdax files: sweep retries, no drain */
		slurm_error("jobshm: epilog of job %" PRIu32 " on %s: %s "
			    "(left for jobshm sweep)", jobid, node, err.msg);
	return 0;
}

int
slurm_spank_exit(spank_t sp, int ac, char **av)
{
	(void)sp;
	(void)ac;
	(void)av;
	for (int i = 0; i < NOPTS; i++) {
		free(opt_val[i]);
		opt_val[i] = NULL;
	}
	return 0;
}
