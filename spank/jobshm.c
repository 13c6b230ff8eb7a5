/*
 * jobshm.so - SPANK glue: maps Slurm's callbacks onto libjobshm.
 *
 *   allocator/local (sbatch, salloc, srun): register --shm, check syntax.
 *   remote (slurmstepd): admit and create/grow the job's tmpfs; each task
 *     enters a private mount namespace with it on /dev/shm.
 *   job script (epilog): unmount and remove the job's tmpfs.
 *   slurmd: sweep leftovers of jobs whose epilog never ran.
 *
 * A user's mistake never fails a slurmstepd callback (that drains the
 * node for a batch job); it is kept and fails the job's tasks instead.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <slurm/slurm.h>
#include <slurm/spank.h>

#include "jobshm.h"

SPANK_PLUGIN(jobshm, 1);

#ifndef JOBSHM_CLI
#define JOBSHM_CLI "/usr/local/bin/jobshm"
#endif

static struct {
	char conf_path[256];
	char cli_path[256];
	char *shm_opt;              /* --shm as given by the user */
	struct jobshm_conf conf;
	struct jobshm_job job;
	uint64_t bytes;             /* 0: no private shm for this step */
	char failure[JOBSHM_ERRLEN + 256];
} g;

static int shm_opt_cb(int val, const char *optarg, int remote);

static struct spank_option shm_option = {
	"shm", "SIZE",
	"Private node-wide /dev/shm of SIZE for the job (MiB, or with "
	"K/M/G/T, or N% of the job's memory; 0/none for no private shm).",
	1, 0, shm_opt_cb,
};

static int
shm_opt_cb(int val, const char *optarg, int remote)
{
	struct jobshm_size sz;
	jobshm_err_t err;

	(void)val;
	if (jobshm_size_parse(optarg, &sz, &err) < 0) {
		if (!remote)
			fprintf(stderr, "jobshm: --shm: %s\n", err.msg);
		else
			slurm_error("jobshm: --shm: %s", err.msg);
		return -1;
	}
	free(g.shm_opt);
	g.shm_opt = strdup(optarg);
	return 0;
}

static int
parse_args(int ac, char **av)
{
	int i;

	snprintf(g.cli_path, sizeof(g.cli_path), "%s", JOBSHM_CLI);
	for (i = 0; i < ac; i++) {
		if (!strncmp(av[i], "conf=", 5))
			snprintf(g.conf_path, sizeof(g.conf_path), "%s", av[i] + 5);
		else if (!strncmp(av[i], "cli=", 4))
			snprintf(g.cli_path, sizeof(g.cli_path), "%s", av[i] + 4);
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
		snprintf(g.failure, sizeof(g.failure), "jobshm: bad plugstack "
			 "arguments (see the slurmd log)");
		return -1;
	}
	jobshm_conf_defaults(&g.conf);
	if (!g.conf_path[0])
		return 0;
	if (jobshm_conf_load(&g.conf, g.conf_path, &err) < 0) {
		snprintf(g.failure, sizeof(g.failure), "jobshm: %s", err.msg);
		slurm_error("%s", g.failure);
		return -1;
	}
	return 0;
}

/* Start `jobshm sweep` detached, so slurmd's start never waits on it. */
static void
spawn_sweep(void)
{
	pid_t pid = fork();

	if (pid == 0) {
		setsid();
		if (fork() == 0) {
			closefrom(3);
			execl(g.cli_path, g.cli_path, "sweep", "--quiet",
			      g.conf_path[0] ? "--conf" : NULL, g.conf_path,
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

int
slurm_spank_init(spank_t sp, int ac, char **av)
{
	spank_context_t ctx = spank_context();

	if (parse_args(ac, av) < 0)
		return -1;
	if (ctx != S_CTX_SLURMD && ctx != S_CTX_JOB_SCRIPT &&
	    spank_option_register(sp, &shm_option) != ESPANK_SUCCESS) {
		slurm_error("jobshm: cannot register --shm");
		return -1;
	}
	if (ctx == S_CTX_SLURMD) {
		if (load_conf(ac, av) < 0)
			return -1;
		spawn_sweep();
	}
	return 0;
}

/* The user's --shm for this step: from the option, else the job env. */
static const char *
shm_request(spank_t sp)
{
	static char buf[128];
	char *val = NULL;

	if (g.shm_opt)
		return g.shm_opt;
	if (spank_option_getopt(sp, &shm_option, &val) == ESPANK_SUCCESS && val)
		return val;
	if (spank_getenv(sp, "SPANK__SLURM_SPANK_OPTION_jobshm_shm", buf,
			 sizeof(buf)) == ESPANK_SUCCESS)
		return buf;
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
	if (spank_get_item(sp, S_JOB_UID, &g.job.uid) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_JOB_GID, &g.job.gid) != ESPANK_SUCCESS)
		return -1;
	return 0;
}

static void
export_env(spank_t sp)
{
	char v[64];

	spank_setenv(sp, "JOBSHM_DIR", "/dev/shm", 1);
	snprintf(v, sizeof(v), "%" PRIu64, g.bytes);
	spank_setenv(sp, "JOBSHM_SIZE", v, 1);
	snprintf(v, sizeof(v), "jobshm.%" PRIu32 ".", g.job.jobid);
	spank_setenv(sp, "JOBSHM_PREFIX", v, 1);
}

/* Admit, then create or grow the job's tmpfs; g.failure says why not. */
static int
step_setup(spank_t sp)
{
	char node[128];
	uint32_t jobid, stepid;
	uint64_t mem_mb = 0;
	uid_t uid;
	gid_t gid;
	jobshm_err_t err;
	int m;

	if (job_ids(sp, &jobid, &stepid) < 0) {
		snprintf(g.failure, sizeof(g.failure),
			 "jobshm: cannot read the job's ids from Slurm");
		return -1;
	}
	if (stepid == SLURM_EXTERN_CONT)
		return 0;
	spank_get_item(sp, S_JOB_ALLOC_MEM, &mem_mb);
	node_name(node, sizeof(node));
	uid = g.job.uid;
	gid = g.job.gid;
	if (jobshm_job_init(&g.job, &g.conf, node, jobid, &err) < 0)
		goto fail;
	g.job.uid = uid;
	g.job.gid = gid;
	if (jobshm_admit(&g.conf, shm_request(sp), mem_mb << 20, &g.bytes,
			 &err) < 0)
		goto fail;
	m = jobshm_job_mounted(&g.job, &err);
	if (m < 0)
		goto fail;
	if (g.bytes == 0 && m == 0)
		return 0;
	if (g.bytes && jobshm_job_setup(&g.job, g.bytes, &err) < 0)
		goto fail;
	if (jobshm_job_usage(&g.job, &g.bytes, &mem_mb, &err) < 0)
		goto fail;
	export_env(sp);
	return 0;
fail:
	g.bytes = 0;
	snprintf(g.failure, sizeof(g.failure), "jobshm: job %" PRIu32
		 " on %s: %s", jobid, node, err.msg);
	slurm_error("%s", g.failure);
	return -1;
}

/*
 * Runs in each task, as root, before it becomes the user.  The node's
 * name is only known here (SLURMD_NODENAME), so the job's tmpfs is set
 * up here too; a failure fails the task with its reason on the task's
 * stderr and never fails slurmstepd (which would drain the node).
 */
int
slurm_spank_task_init_privileged(spank_t sp, int ac, char **av)
{
	jobshm_err_t err;

	if (load_conf(ac, av) < 0 || step_setup(sp) < 0) {
		dprintf(STDERR_FILENO, "%s\n", g.failure);
		return -1;
	}
	if (!g.bytes)
		return 0;
	if (jobshm_job_enter(&g.job, "/dev/shm", &err) < 0) {
		dprintf(STDERR_FILENO, "jobshm: %s\n", err.msg);
		slurm_error("jobshm: %s", err.msg);
		return -1;
	}
	return 0;
}

int
slurm_spank_job_epilog(spank_t sp, int ac, char **av)
{
	char node[128];
	uint32_t jobid;
	jobshm_err_t err;

	if (load_conf(ac, av) < 0)
		return 0;	/* nothing of ours can be mounted */
	if (spank_get_item(sp, S_JOB_ID, &jobid) != ESPANK_SUCCESS)
		return 0;
	node_name(node, sizeof(node));
	if (jobshm_job_init(&g.job, &g.conf, node, jobid, &err) < 0 ||
	    jobshm_job_cleanup(&g.job, &err) < 0) {
		slurm_error("jobshm: epilog of job %" PRIu32 " on %s: %s",
			    jobid, node, err.msg);
		return -1;
	}
	return 0;
}

int
slurm_spank_exit(spank_t sp, int ac, char **av)
{
	(void)sp;
	(void)ac;
	(void)av;
	free(g.shm_opt);
	g.shm_opt = NULL;
	return 0;
}
