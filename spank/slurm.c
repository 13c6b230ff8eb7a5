/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the plugin reads of Slurm beyond the SPANK API.
 *
 * A step's options: Slurm hands a job's plugin options to its later
 * steps in the environment, SPANK__SLURM_SPANK_OPTION_<plugin>_<name>.
 *
 * The job container: from the configuration the daemon runs with
 * (libslurm's slurm_conf, which Slurm read itself, Include lines and all).
 *
 * The job's memory as sbatch, salloc and srun parsed it, for the checks
 * made before anything is queued.  SPANK offers no item for it in these
 * contexts (S_CTX_ALLOCATOR has only the uid and gid), so this reads the
 * command's own option table the way cli_filter plugins do: Slurm links
 * sbatch, salloc and srun with -export-dynamic, their options live in
 * the global `opt` (a slurm_opt_t, command line, #SBATCH lines and
 * environment merged), and libslurmfull's slurm_option_isset() and
 * slurm_option_get() read it by option name (22.05 to 26.05).  Nothing
 * here parses options again; where any piece is missing the answer is
 * "not known" and the node decides.
 *
 * --mem-per-cpu is not used: the job's memory on a node is then that
 * times the CPUs Slurm allocates there, which can exceed what the
 * options ask for (whole cores, --exclusive, several tasks on a node),
 * so no submit-time answer is certain.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slurm/slurm.h>

#include "jobshm.h"
#include "slurm.h"

/* weak: absent in a program without libslurm */
extern slurm_conf_t slurm_conf __attribute__((weak));
#if SLURM_VERSION_NUMBER >= SLURM_VERSION_NUM(25, 11, 0)
#define CONTAINER_PLUGIN namespace_plugin
#else
#define CONTAINER_PLUGIN job_container_plugin
#endif

int
jobshm_slurm_container(void)
{
	const char *p = &slurm_conf ? slurm_conf.CONTAINER_PLUGIN : NULL;

	return p && *p && !strstr(p, "none");
}

const char *
jobshm_spank_option(spank_t sp, struct spank_option *o, char *buf, size_t len)
{
	char env[128], *val = NULL;

	if (spank_option_getopt(sp, o, &val) == ESPANK_SUCCESS && val)
		return val;
	snprintf(env, sizeof(env), "SPANK__SLURM_SPANK_OPTION_jobshm_%s",
		 o->name);
	for (char *p = env; *p; p++)
		*p = *p == '-' ? '_' : *p;
	return spank_getenv(sp, env, buf, (int)len) == ESPANK_SUCCESS ? buf :
	       NULL;
}

typedef char *(*option_get_f)(void *opt, const char *name);
typedef bool (*option_isset_f)(void *opt, const char *name);
typedef void (*xfree_f)(void *);

static struct {
	void *opt;
	option_get_f get;
	option_isset_f isset;
	xfree_f xfree;
} s;

/* The command's option table and libslurmfull's readers; -1: absent. */
static int
slurm_options(void)
{
	const char *prog = program_invocation_short_name;

	if (strcmp(prog, "sbatch") && strcmp(prog, "salloc") &&
	    strcmp(prog, "srun"))
		return -1;
	s.opt = dlsym(RTLD_DEFAULT, "opt");
	*(void **)&s.get = dlsym(RTLD_DEFAULT, "slurm_option_get");
	*(void **)&s.isset = dlsym(RTLD_DEFAULT, "slurm_option_isset");
	*(void **)&s.xfree = dlsym(RTLD_DEFAULT, "slurm_xfree_ptr");
	if (!s.xfree)
		*(void **)&s.xfree = dlsym(RTLD_DEFAULT, "xfree_ptr");
	return s.opt && s.get && s.isset && s.xfree ? 0 : -1;
}

/* A step of a running job: its --mem is the step's, not the job's. */
static int
in_a_job(void)
{
	return !strcmp(program_invocation_short_name, "srun") &&
	       (getenv("SLURM_JOB_ID") || getenv("SLURM_JOBID") ||
		s.isset(s.opt, "jobid"));
}

uint64_t
jobshm_submit_mem(void)
{
	struct jobshm_size sz;
	jobshm_err_t err;
	char *val;
	int ok;

	if (slurm_options() < 0 || in_a_job() || !s.isset(s.opt, "mem") ||
	    s.isset(s.opt, "mem-per-cpu") || s.isset(s.opt, "mem-per-gpu"))
		return 0;
	if (!(val = s.get(s.opt, "mem")))
		return 0;
	/* Slurm's own spelling: MiB bare, else G, T or P: --mem's syntax */
	ok = jobshm_size_parse(val, &sz, &err) == 0 && !sz.none && !sz.percent;
	s.xfree(val);
	return ok ? sz.bytes : 0;
}

int
jobshm_submit_check(const char *conf_path, const char *shm, const char *nvram,
		    jobshm_err_t *err)
{
	struct jobshm_request req = { .shm = shm, .submit = 1 };
	struct jobshm_conf conf;
	uint64_t bytes;

	jobshm_conf_defaults(&conf);
	if ((!shm && !nvram) || (conf_path[0] &&	/* unreadable here: */
	     jobshm_conf_load(&conf, conf_path, err) < 0) ||	/* the node's */
	    (nvram && jobshm_nvram_parse(nvram, &req.nvram, err) < 0))
		return 0;
	req.job_mem = jobshm_submit_mem();
	return jobshm_admit_request(&conf, &req, &bytes, err);
}
