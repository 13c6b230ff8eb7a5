/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The batch script and COMPSs's project.xml/resources.xml. */
#include <stdlib.h>
#include <string.h>

#include "jobshm_build.h"
#include "opts.h"

/* the interpreter the build was made for (make PYTHON=), as the CLI's */
#define PY JOBSHM_PYTHON

/* Single-quote for the shell: ' becomes '\'' */
static void
sh_quote(FILE *f, const char *s)
{
	fputc('\'', f);
	for (; *s; s++) {
		if (*s == '\'')
			fputs("'\\''", f);
		else
			fputc(*s, f);
	}
	fputc('\'', f);
}

static void
sbatch_lines(FILE *f, const struct request *r)
{
	int i;

	fprintf(f, "#SBATCH --nodes=%u\n#SBATCH --ntasks-per-node=1\n",
		r->num_nodes);
	fprintf(f, "#SBATCH --cpus-per-task=%u\n#SBATCH --time=%u\n",
		r->cpus_per_node, r->exec_time);
	if (r->job_name)
		fprintf(f, "#SBATCH --job-name=%s\n", r->job_name);
	if (r->qos)
		fprintf(f, "#SBATCH --qos=%s\n", r->qos);
	if (r->project)
		fprintf(f, "#SBATCH --account=%s\n", r->project);
	if (r->dependency)
		fprintf(f, "#SBATCH --dependency=afterany:%s\n", r->dependency);
	if (r->shm)
		fprintf(f, "#SBATCH --shm=%s\n", r->shm);
	if (r->nvram)
		fprintf(f, "#SBATCH --nvram-options=%s\n", r->nvram);
	for (i = 0; i < r->nextra; i++)
		fprintf(f, "#SBATCH %s\n", r->extra[i]);
}

static void
app_args(FILE *f, const struct request *r)
{
	char **a;

	for (a = r->app; *a; a++) {
		fputc(' ', f);
		sh_quote(f, *a);
	}
	fputc('\n', f);
}

static void
python_path(FILE *f, const char *pydir)
{
	fprintf(f, "export PYTHONPATH=");
	sh_quote(f, pydir);
	fprintf(f, "${PYTHONPATH:+:$PYTHONPATH}\n");
}

/*
 * Each --stage: one reader per node copies it into the job's shm (sbcast
 * cannot reach it: slurmd writes in the node's namespace, not the job's
 * private /dev/shm), then the batch step exports the environment that
 * uses it, which every later step inherits.
 */
static void
stage_lines(FILE *f, const struct request *r)
{
	int i;

	for (i = 0; i < r->nstage; i++) {
		fprintf(f, "srun --nodes=\"$SLURM_NNODES\" --ntasks-per-node=1 "
			PY " -m jobshm.stage ");
		sh_quote(f, r->stage[i].src);
		fprintf(f, " --name ");
		sh_quote(f, r->stage[i].name);
		fprintf(f, " >/dev/null\neval \"$(" PY " -m "
			"jobshm.stage ");
		sh_quote(f, r->stage[i].src);
		fprintf(f, " --name ");
		sh_quote(f, r->stage[i].name);
		fprintf(f, ")\"\n");
	}
}

static void
exec_body(FILE *f, const struct request *r, const char *pydir)
{
	if (!r->nstage)
		python_path(f, pydir);
	fprintf(f, "# every node runs APP once; node 0 is the master\n"
		"srun --kill-on-bad-exit=1 bash -c 'export JOBSHM_ROLE=worker; "
		"[ \"$SLURM_NODEID\" = 0 ] && JOBSHM_ROLE=master; exec \"$@\"' "
		"jobshm-app");
	app_args(f, r);
}

/*
 * Dask's credentials: a CA of the job's own and one certificate and key
 * it signs, made in the batch step and sent by srun (one task per node)
 * into a new 0700 directory on every node, files 0600: in the job's shm
 * (private to the job's namespace, gone with the job), else in the
 * user's own directory in /dev/shm, as the runtime finds it.  Every Dask process of the job (and a
 * plain distributed.Client in APP, from DASK_* in the environment) speaks
 * TLS with them and nothing else; their HTTP endpoints are off.
 */
static void
dask_tls(FILE *f)
{
	/* outside a --shm job the runtime's own directory of the user's
	 * (one another user squatted is skipped, as by the runtime) */
	fprintf(f, "export JOBSHM_DASK_TLS=\"${JOBSHM_DIR:-$(" PY " -c "
		"'import jobshm; print(jobshm.info()[\"dir\"])')}/"
		".jobshm-dask-$SLURM_JOB_ID\"\n"
		"export JOBSHM_DASK_SCHEDULER_FILE=\"$JOBSHM_DASK_TLS/"
		"scheduler.json\"\n"
		"export DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION=True\n"
		"export DASK_DISTRIBUTED__COMM__TLS__CA_FILE=\"$JOBSHM_DASK_TLS/"
		"ca.pem\"\n"
		"export DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT=\""
		"$JOBSHM_DASK_TLS/cert.pem\"\n"
		"export DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY=\""
		"$JOBSHM_DASK_TLS/key.pem\"\n"
		"export DASK_DISTRIBUTED__SCHEDULER__HTTP__ROUTES='[]' "
		"DASK_DISTRIBUTED__WORKER__HTTP__ROUTES='[]'\n"
		"log=\"${SLURM_SUBMIT_DIR:-$PWD}/dask-$SLURM_JOB_ID.log\"\n"
		"trap 'kill $(jobs -p) 2>/dev/null; rm -rf \"$JOBSHM_DASK_TLS\"' "
		"EXIT\n"
		PY " -m jobshm.dask credentials | srun "
		"--nodes=\"$SLURM_NNODES\" --ntasks-per-node=1 --input=all "
		PY " -m jobshm.dask install \"$JOBSHM_DASK_TLS\"\n"
		"tls=(--protocol tls --tls-ca-file \"$JOBSHM_DASK_TLS/ca.pem\" "
		"--tls-cert \"$JOBSHM_DASK_TLS/cert.pem\" --tls-key "
		"\"$JOBSHM_DASK_TLS/key.pem\")\n");
}

/*
 * The scheduler in the batch step, listening on this node's address in
 * Slurm (NodeAddr) only, its file 0600 in the credentials' directory.
 */
static void
dask_scheduler(FILE *f)
{
	fprintf(f, "a=$(" PY " -m jobshm.dask address)\n"
		"(umask 077; exec " PY " -m distributed.cli."
		"dask_scheduler --scheduler-file \"$JOBSHM_DASK_SCHEDULER_FILE\" "
		"\"${tls[@]}\" --host \"$a\" --port 0 --no-dashboard "
		"--dashboard-address \"$a:0\") >>\"$log\" 2>&1 &\n"
		"for i in $(seq 600); do [ -s \"$JOBSHM_DASK_SCHEDULER_FILE\" ] "
		"&& break; sleep 0.1; done\n"
		"DASK_SCHEDULER_ADDRESS=$(" PY " -c 'import json, sys; "
		"print(json.load(open(sys.argv[1]))[\"address\"])' "
		"\"$JOBSHM_DASK_SCHEDULER_FILE\")\n"
		"export DASK_SCHEDULER_ADDRESS\n");
}

/* n worker processes of one thread on every node (one srun task per
 * node, so each is in the job's shm), each on its node's NodeAddr. */
static void
dask_workers(FILE *f, unsigned n)
{
	fprintf(f, "srun --overlap --ntasks-per-node=1 bash -ec 'a=$(" PY
		" -m jobshm.dask address); exec " PY " -m "
		"distributed.cli.dask_worker --host \"$a\" --dashboard-address "
		"\"$a:0\" \"$@\"' dask-worker \"$DASK_SCHEDULER_ADDRESS\" "
		"\"${tls[@]}\" --nworkers %u --nthreads 1 --memory-limit 0 "
		"--no-dashboard --death-timeout 120 --local-directory "
		"\"${TMPDIR:-/tmp}\" >>\"$log\" 2>&1 &\n", n);
}

/*
 * Dask: the scheduler in the batch step (node 0), --cpus_per_node worker
 * processes on every node, then APP here with the scheduler's address
 * and the job's TLS settings in its environment.  Everything is stopped
 * when APP ends, and at the job's end in any case.
 */
static void
dask_body(FILE *f, const struct request *r, const char *pydir)
{
	if (!r->nstage)
		python_path(f, pydir);
	fprintf(f, "# Dask: scheduler here, %u worker(s) on every node, then "
		"APP here;\n# TLS only, with the job's own CA, certificate and "
		"key (only processes\n# holding them can connect), listening on "
		"each node's NodeAddr only\n"
		"export JOBSHM_DASK_WORKERS=$((SLURM_JOB_NUM_NODES * %u))\n",
		r->cpus_per_node, r->cpus_per_node);
	dask_tls(f);
	dask_scheduler(f);
	dask_workers(f, r->cpus_per_node);
	for (char **a = r->app; *a; a++) {
		sh_quote(f, *a);
		fputc(*(a + 1) ? ' ' : '\n', f);
	}
}

static void
compss_body(FILE *f, const struct request *r, const char *self)
{
	fprintf(f, "xml=$(mktemp -d)\nhosts=$(scontrol show hostnames "
		"\"$SLURM_JOB_NODELIST\" | paste -sd,)\n");
	sh_quote(f, self);
	fprintf(f, " --write-xml=\"$xml\" --hosts=\"$hosts\" --num_nodes=%u "
		"--cpus_per_node=%u --worker_in_master_cpus=%u "
		"--worker_working_dir=", r->num_nodes, r->cpus_per_node,
		r->worker_in_master_cpus);
	sh_quote(f, r->worker_wd);
	if (r->shm)
		fprintf(f, " --shm=%s", r->shm);
	if (r->nvram)
		fprintf(f, " --nvram_options=%s", r->nvram);
	fprintf(f, " || exit 1\n"
		"launch=$(command -v launch_compss || command -v runcompss) || "
		"{ echo 'enqueue_jobshm: neither launch_compss nor runcompss "
		"is on PATH' >&2; exit 1; }\n"
		"\"$launch\" --master_node=\"${hosts%%%%,*}\" "
		"--worker_nodes=\"${hosts#*,}\" --project=\"$xml/project.xml\" "
		"--resources=\"$xml/resources.xml\" --lang=%s --tracing=%s "
		"--graph=%s --log_level=%s --cpu_affinity=", r->lang, r->tracing,
		r->graph, r->log_level);
	sh_quote(f, r->cpu_affinity);
	fprintf(f, " --master_working_dir=");
	sh_quote(f, r->master_wd);
	app_args(f, r);
}

void
write_batch(FILE *f, const struct request *r, const char *self)
{
	char pydir[4096];
	const char *slash = strrchr(self, '/');

	/* the Python module next to the launcher: ../python in the source
	 * tree, else the installed one on the default path */
	snprintf(pydir, sizeof(pydir), "%.*s/../python",
		 slash ? (int)(slash - self) : 1, slash ? self : ".");
	fprintf(f, "#!/bin/bash\n# written by enqueue_jobshm\n");
	sbatch_lines(f, r);
	fprintf(f, "set -e\n");
	if (r->nstage) {
		python_path(f, pydir);
		stage_lines(f, r);
	}
	if (!strcmp(r->runtime, "exec"))
		exec_body(f, r, pydir);
	else if (!strcmp(r->runtime, "dask"))
		dask_body(f, r, pydir);
	else
		compss_body(f, r, self);
}
