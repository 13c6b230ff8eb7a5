/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * jobshm.so - SPANK glue: Slurm's callbacks translated into libjobshm's
 * calls, which make every decision (lib/step.c): allocator/local: the
 * options, their syntax and what no node could give (spank/slurm.c);
 * slurmstepd: jobshm_step_setup once per step, jobshm_task_enter and
 * jobshm_task_exit per task; epilog: jobshm_usage_end, jobshm_job_cleanup;
 * slurmd: start `jobshm sweep`.  A user's mistake never fails a slurmstepd
 * callback (that drains the node); it fails the job's tasks instead. */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <slurm/slurm.h>
#include <slurm/spank.h>

#include "jobshm.h"
#include "slurm.h"

SPANK_PLUGIN(jobshm, 1);

static struct {
	char conf_path[256], cli_path[256], node[128];
	struct jobshm_conf conf;
	struct jobshm_job job;
	struct jobshm_step step;
	int setup;                  /* step set up: 1 done, -1 failed */
	char failure[JOBSHM_ERRLEN + 256];
	char optbuf[3][128];        /* the job's options, for a step    */
	char name[64];              /* the job's name (SLURM_JOB_NAME)  */
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
opt_cb(int val, const char *optarg, int remote)
{
	union { struct jobshm_size s; struct jobshm_mpol m;
		struct jobshm_nvram n; } u;
	jobshm_err_t err;

	if (val < 0 || val >= NOPTS)
		return -1;
	if ((val == OPT_SHM ? jobshm_size_parse(optarg, &u.s, &err) :
	     val == OPT_MPOL ? jobshm_mpol_parse(optarg, &u.m, &err) :
	     jobshm_nvram_parse(optarg, &u.n, &err)) < 0) {
		if (remote)
			slurm_error("jobshm: --%s: %s", options[val].name, err.msg);
		else
			fprintf(stderr, "jobshm: --%s: %s\n", options[val].name,
				err.msg);
		return -1;
	}
	free(opt_val[val]);
	opt_val[val] = strdup(optarg);
	return 0;
}

/*
 * Every callback gets the plugstack arguments (not all contexts call
 * init): checked always, the configuration loaded where load says.
 */
static int
load_conf(int ac, char **av, int load)
{
	jobshm_err_t err;

	jobshm_conf_defaults(&state.conf);
	snprintf(state.cli_path, sizeof(state.cli_path), "%s", JOBSHM_CLI);
	for (int i = 0; i < ac; i++) {
		if (!strncmp(av[i], "conf=", 5))
			snprintf(state.conf_path, sizeof(state.conf_path), "%s", av[i] + 5);
		else if (!strncmp(av[i], "cli=", 4))
			snprintf(state.cli_path, sizeof(state.cli_path), "%s", av[i] + 4);
		else {
			slurm_error("jobshm: unknown plugstack argument '%s' "
				    "(accepted: conf=PATH, cli=PATH)", av[i]);
			snprintf(state.failure, sizeof(state.failure), "jobshm: bad "
				 "plugstack arguments (see the slurmd log)");
			return -1;
		}
	}
	if (load && state.conf_path[0] &&
	    jobshm_conf_load(&state.conf, state.conf_path, &err) < 0) {
		snprintf(state.failure, sizeof(state.failure), "jobshm: %s", err.msg);
		slurm_error("%s", state.failure);
		return -1;
	}
	return 0;
}

int
slurm_spank_init(spank_t sp, int ac, char **av)
{
	spank_context_t ctx = spank_context();
	jobshm_err_t err;

	if (load_conf(ac, av, ctx == S_CTX_SLURMD) < 0)
		return -1;
	for (int i = 0; ctx != S_CTX_SLURMD && ctx != S_CTX_JOB_SCRIPT &&
	     i < NOPTS; i++)
		if (spank_option_register(sp, &options[i]) != ESPANK_SUCCESS) {
			slurm_error("jobshm: cannot register --%s", options[i].name);
			return -1;
		}
	if (ctx == S_CTX_SLURMD &&	/* the shm of jobs ended while down */
	    jobshm_sweep_start(state.cli_path, state.conf_path, &err) < 0)
		slurm_error("jobshm: %s", err.msg);
	return 0;
}

/* A user option for this step: as given to srun, else from the job env. */
static const char *
option(spank_t sp, int i)
{
	return opt_val[i] ? opt_val[i] : jobshm_spank_option(sp, &options[i],
			state.optbuf[i], sizeof(state.optbuf[i]));
}

/* The job on this node, named as in our own environment (the job's may
 * carry a stale SLURMD_NODENAME from the step that ran srun); 1: no job. */
static int
job_init(spank_t sp, jobshm_err_t *err)
{
	const char *node = getenv("SLURMD_NODENAME");
	uint32_t jobid;

	if (spank_get_item(sp, S_JOB_ID, &jobid) != ESPANK_SUCCESS)
		return 1;
	snprintf(state.node, sizeof(state.node), "%s", node ? node : "");
	if (!node && gethostname(state.node, sizeof(state.node)) == 0)
		state.node[strcspn(state.node, ".")] = '\0';
	return jobshm_job_init(&state.job, &state.conf, state.node, jobid, err);
}

/* Set the step up once: 1 done, -1 failed (state.failure says why). */
static int
setup_once(spank_t sp, int ac, char **av, int before_fork)
{
	struct jobshm_step *s = &state.step;
	char val[JOBSHM_NODELIST];
	const char *name;
	uint32_t stepid = 0;
	uint64_t mem_mb = 0;
	jobshm_err_t err = { 0, "cannot read the job's ids from Slurm" };

	if (state.setup)
		return state.setup;
	state.setup = -1;
	if (load_conf(ac, av, 1) < 0)
		return -1;
	if (spank_get_item(sp, S_JOB_STEPID, &stepid) == ESPANK_SUCCESS &&
	    stepid == SLURM_EXTERN_CONT)
		return state.setup = 1;		/* no tasks of the user's */
	*s = (struct jobshm_step){ .shm = option(sp, OPT_SHM),
		.mpol = option(sp, OPT_MPOL), .nvram = option(sp, OPT_NVRAM),
		.before_fork = before_fork, .container = jobshm_slurm_container(),
		.batch = stepid == SLURM_BATCH_SCRIPT, .stepid = stepid,
		.name = spank_getenv(sp, "SLURM_JOB_NAME", state.name,
				     (int)sizeof(state.name)) == ESPANK_SUCCESS ?
			state.name : NULL };
	spank_get_item(sp, S_JOB_LOCAL_TASK_COUNT, &s->ntasks);
	spank_get_item(sp, S_JOB_ALLOC_MEM, &mem_mb);
	spank_get_item(sp, S_JOB_ALLOC_CORES, (char **)&s->cores);
	s->job_mem = mem_mb << 20;
	if (job_init(sp, &err) != 0 ||
	    spank_get_item(sp, S_JOB_UID, &state.job.uid) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_JOB_GID, &state.job.gid) != ESPANK_SUCCESS ||
	    jobshm_step_setup(&state.job, s, &err) < 0) {
		snprintf(state.failure, sizeof(state.failure), "jobshm: job %"
			 PRIu32 " on %s: %s", state.job.jobid, state.node, err.msg);
		slurm_error("%s", state.failure);
		return -1;
	}
	if (state.conf.debug || s->note[0])
		slurm_info("jobshm: job %" PRIu32 ": %s%s%s", state.job.jobid,
			   state.conf.debug ? s->decision : "",
			   state.conf.debug && s->note[0] ? "; " : "", s->note);
	for (size_t i = 0; (name = jobshm_step_env(&state.job, s, i, val,
						   sizeof(val))); i++)
		if (val[0])
			spank_setenv(sp, name, val, 1);
	return state.setup = 1;
}

/* In slurmstepd, as root, once per step, before any task is forked, where
 * its environment names the node (else each task sets the step up).  A
 * failure is kept for the tasks: failing here would drain the node. */
int
slurm_spank_init_post_opt(spank_t sp, int ac, char **av)
{
	spank_context_t ctx = spank_context();
	jobshm_err_t err;

	if ((ctx == S_CTX_LOCAL || ctx == S_CTX_ALLOCATOR) &&	/* at submit */
	    load_conf(ac, av, 0) == 0 && jobshm_submit_check(state.conf_path,
			opt_val[OPT_SHM], opt_val[OPT_NVRAM], &err) < 0) {
		fprintf(stderr, "jobshm: %s\n", err.msg);
		return -1;
	}
	if (ctx == S_CTX_REMOTE && getenv("SLURMD_NODENAME"))
		setup_once(sp, ac, av, 1);
	return 0;
}

/* In each task, as root, before it becomes the user.  A failure fails
 * the task, with its reason on the task's stderr, never slurmstepd. */
int
slurm_spank_task_init_privileged(spank_t sp, int ac, char **av)
{
	jobshm_err_t err;

	if (setup_once(sp, ac, av, 0) < 0) {
		dprintf(STDERR_FILENO, "%s\n", state.failure);
		return -1;
	}
	if (jobshm_task_enter(&state.job, &state.step, &err) < 0) {
		dprintf(STDERR_FILENO, "jobshm: %s\n", err.msg);
		slurm_error("jobshm: %s", err.msg);
		return -1;
	}
	return 0;
}

/* After each task, in slurmstepd: why it died, what the job used. */
int
slurm_spank_task_exit(spank_t sp, int ac, char **av)
{
	char msg[JOBSHM_ERRLEN];
	uint32_t task = 0;
	int status = 0;

	(void)ac, (void)av;	/* the step's: set up in init_post_opt */
	if (state.setup != 1 ||
	    spank_get_item(sp, S_TASK_EXIT_STATUS, &status) != ESPANK_SUCCESS)
		return 0;
	spank_get_item(sp, S_TASK_GLOBAL_ID, &task);
	if (jobshm_task_exit(&state.job, &state.step, task, status, msg,
			     sizeof(msg)) > 0)
		dprintf(STDERR_FILENO, "jobshm: %s\n", msg);
	if (jobshm_step_report(&state.job, &state.step, msg, sizeof(msg)) > 0)
		dprintf(STDERR_FILENO, "jobshm: %s\n", msg);
	if (jobshm_step_leftovers(&state.job, &state.step, msg, sizeof(msg)) > 0)
		dprintf(STDERR_FILENO, "jobshm: %s\n", msg);
	return 0;
}

int
slurm_spank_job_epilog(spank_t sp, int ac, char **av)
{
	struct jobshm_usage u;
	jobshm_err_t err;
	int rc;

	if (load_conf(ac, av, 1) < 0 || (rc = job_init(sp, &err)) > 0)
		return 0;	/* nothing of ours can be mounted */
	if (rc == 0 && jobshm_usage_end(&state.job, &u, &err) < 0)
		slurm_error("jobshm: epilog of job %" PRIu32 ": %s",
			    state.job.jobid, err.msg);
	rc = rc < 0 ? rc : jobshm_job_cleanup(&state.job, &err);
	jobshm_metrics_node(&state.conf);
	if (rc != 0)	/* > 0: held or the user's fsdax files: sweep retries */
		slurm_error("jobshm: epilog of job %" PRIu32 " on %s: %s%s",
			    state.job.jobid, state.node, err.msg,
			    rc > 0 ? " (left for jobshm sweep)" : "");
	else if (state.conf.debug)
		slurm_info("jobshm: epilog of job %" PRIu32 " on %s: removed",
			   state.job.jobid, state.node);
	return rc < 0 ? -1 : 0;
}

int
slurm_spank_exit(spank_t sp, int ac, char **av)
{
	(void)sp, (void)ac, (void)av;
	jobshm_step_end(&state.step);	/* before the plugin is unloaded */
	for (int i = 0; i < NOPTS; i++)
		free(opt_val[i]), opt_val[i] = NULL;
	return 0;
}
