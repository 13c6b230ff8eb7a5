/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libjobshm - per-job node-wide shared memory for Slurm jobs.
 *
 * The library has no Slurm dependency.  Every function that can fail
 * returns 0 on success and -1 on failure, with a message in the
 * caller's jobshm_err_t.  Nothing here prints or exits.
 */
#ifndef JOBSHM_H
#define JOBSHM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "jobshm_build.h"   /* JOBSHM_VERSION, from the Makefile */
#define JOBSHM_ERRLEN 512

/*
 * An error: an errno-style code to branch on (the errno of the failed
 * call, or EINVAL for input that was refused, ENOSPC for what does not
 * fit) and the message to print.
 */
typedef struct {
	int code;
	char msg[JOBSHM_ERRLEN];
} jobshm_err_t;

/* ---- sizes ------------------------------------------------------------ */

/* A parsed --shm value: either none, an absolute size, or a percentage. */
struct jobshm_size {
	int none;          /* --shm=0 or --shm=none                          */
	unsigned percent;  /* 1..100 when given as N%, else 0               */
	uint64_t bytes;    /* absolute size when percent == 0 and !none     */
};

/* The accepted forms, for messages. */
#define JOBSHM_SIZE_FORMS \
	"a size like 512 (MiB), 512M, 4G, 1T, 100K, a share of the job's " \
	"memory like 50% (1-100), or 0/none"

int jobshm_size_parse(const char *s, struct jobshm_size *out,
		      jobshm_err_t *err);

/* Turn a parsed size into bytes; `whole` is what N% refers to. */
int jobshm_size_resolve(const struct jobshm_size *sz, uint64_t whole,
			uint64_t *bytes, jobshm_err_t *err);

/* Human-readable size ("1.5G") into buf. */
const char *jobshm_size_format(uint64_t bytes, char *buf, size_t len);

/* ---- placement: NUMA policy, NVRAM, topology --------------------------- */

/* Room for any NUMA node list of up to 1024 nodes ("0,2,4,...,1022"). */
#define JOBSHM_NODELIST 2560

enum { JOBSHM_MPOL_DEFAULT, JOBSHM_MPOL_LOCAL, JOBSHM_MPOL_INTERLEAVE,
       JOBSHM_MPOL_BIND };

struct jobshm_mpol {          /* --shm-mpol=local|interleave|bind:LIST|default */
	int kind;
	char nodes[JOBSHM_NODELIST];  /* bind: the user's list               */
};

struct jobshm_nvram {         /* --nvram-options=1LM:SIZE|2LM:SIZE           */
	int mode;             /* 0 none, 1 App Direct, 2 Memory Mode          */
	uint64_t bytes;
};

struct jobshm_topo {          /* what hwloc says about this node             */
	char near[JOBSHM_NODELIST]; /* DRAM NUMA nodes near the job's cores  */
	char all[JOBSHM_NODELIST];  /* every DRAM NUMA node                  */
	char nvm[JOBSHM_NODELIST];  /* persistent-memory NUMA nodes (1LM)    */
	uint64_t nvm_bytes;   /* their memory, for 1LM admission             */
	int memcache;         /* memory-side caches: Memory Mode (2LM)       */
	int nnuma;
	int fsdax;            /* fsdax paths configured (nvram_paths)        */
};

/* What a job's shm is on a node. */
enum jobshm_kind {
	JOBSHM_NONE,          /* no private shm                              */
	JOBSHM_TMPFS,         /* a tmpfs of its own (DRAM, 2LM, PMem NUMA)   */
	JOBSHM_FSDAX,         /* 1LM: a directory on an fsdax path           */
};

/* "tmpfs", "fsdax", or "" for JOBSHM_NONE. */
const char *jobshm_kind_name(enum jobshm_kind kind);

struct jobshm_placement {     /* what the job's shm gets                     */
	char mode[8];         /* tmpfs, 1LM or 2LM (JOBSHM_MODE)             */
	char policy[16];      /* JOBSHM_MPOL                                 */
	char nodes[JOBSHM_NODELIST];      /* JOBSHM_NUMA_NODES               */
	char opts[JOBSHM_NODELIST + 64];  /* its tmpfs NUMA policy ("mpol=...") */
	enum jobshm_kind kind;  /* a tmpfs, or (1LM) an fsdax directory      */
};

int jobshm_mpol_parse(const char *s, struct jobshm_mpol *m, jobshm_err_t *err);
int jobshm_nvram_parse(const char *s, struct jobshm_nvram *n,
		       jobshm_err_t *err);

/* Probe (or load topology_xml); cores is Slurm's core list or NULL. */
int jobshm_topo_probe(const char *xml, const char *cores,
		      struct jobshm_topo *out, jobshm_err_t *err);
const char *jobshm_topo_mode(const struct jobshm_topo *t);

/* Check a request against the node and say how to mount. */
int jobshm_place(const struct jobshm_mpol *m, const struct jobshm_nvram *nv,
		 const struct jobshm_topo *t, struct jobshm_placement *out,
		 jobshm_err_t *err);

/* ---- configuration ---------------------------------------------------- */

#define JOBSHM_NVRAM_PATHS 4

struct jobshm_conf {
	char base_path[256];          /* may hold one %n component          */
	struct jobshm_size default_size;
	struct jobshm_size max_size;  /* percent = share of node RAM        */
	int allow_opt_out;
	int count_against_job_mem;
	char topology_xml[256];       /* "" = probe the node with hwloc      */
	char huge[16];                /* tmpfs huge= ("" = auto)             */
	struct jobshm_mpol default_mpol;
	char nvram_paths[JOBSHM_NVRAM_PATHS][128];  /* fsdax mounts for 1LM */
	int n_nvram_paths;
	int stepd_namespace;          /* slurmstepd joins the job's namespace */
	int debug;                    /* log what was decided and why       */
	char usage_log[240];          /* JSON lines of each job's use, "": off */
	char metrics_dir[240];        /* node exporter's textfile dir, "": off */
	uint64_t usage_log_max;       /* rotated past this many bytes (0: never) */
	unsigned usage_interval;      /* seconds between samples (0: at task
					 exits and the epilog only)          */
};

/* The keys of jobshm.conf, for documentation: i = 0, 1, ... until NULL. */
struct jobshm_conf_key {
	const char *name, *type, *def, *help;
};
const struct jobshm_conf_key *jobshm_conf_key(size_t i);

#define JOBSHM_DEFAULT_BASE "/run/jobshm/%n"
#define JOBSHM_USAGE_LOG "/var/log/slurm/jobshm-usage.log"

void jobshm_conf_defaults(struct jobshm_conf *conf);

/* Load a libconfig file over the defaults; errors are "file:line: text". */
int jobshm_conf_load(struct jobshm_conf *conf, const char *path,
		     jobshm_err_t *err);

/* Expand %n in base_path with `node` (NULL or "" refuses a %n path). */
int jobshm_conf_base(const struct jobshm_conf *conf, const char *node,
		     char *buf, size_t len, jobshm_err_t *err);

/* base_path up to its %n component (all of it without %n). */
int jobshm_conf_top(const struct jobshm_conf *conf, char *buf, size_t len);

/* max_size resolved against this node's RAM. */
uint64_t jobshm_conf_max_bytes(const struct jobshm_conf *conf);
const char *jobshm_conf_huge(const struct jobshm_conf *conf);

/* ---- admission -------------------------------------------------------- */

/*
 * Decide the size a job gets on this node.  `request` is the user's
 * value or NULL; job_mem is the job's memory on the node in bytes
 * (0 = unknown).  *bytes is 0 when the job gets no private shm.
 */
int jobshm_admit(const struct jobshm_conf *conf, const char *request,
		 uint64_t job_mem, uint64_t *bytes, jobshm_err_t *err);

/*
 * Every request in full: the one admission check.  A later step's
 * request is admitted with `current` set (the job's shm on this node
 * now); DRAM sizes may grow within the limits, persistent memory (1LM)
 * never grows.  pmem is the capacity of the node's persistent-memory
 * NUMA nodes when the 1LM shm would be a tmpfs on them (0: not known).
 * With submit set (sbatch, srun, salloc, before anything is queued) only
 * what is certain there is refused: a max_size given as a share of the
 * node's RAM, a share of the job's memory and a missing --shm (the
 * node's default_size) are left to the node (*bytes 0).
 */
struct jobshm_request {
	const char *shm;             /* --shm as typed; NULL: default_size  */
	struct jobshm_nvram nvram;   /* --nvram-options; mode 0: not given  */
	uint64_t job_mem;            /* the job's memory here, 0 = unknown  */
	uint64_t current;            /* the job's shm here now, 0 = none    */
	uint64_t pmem;               /* PMem NUMA capacity, 0 = unknown     */
	int submit;                  /* 1: at submit, on the submit host    */
};

int jobshm_admit_request(const struct jobshm_conf *conf,
			 const struct jobshm_request *req, uint64_t *bytes,
			 jobshm_err_t *err);

/* ---- per-job lifecycle ------------------------------------------------ */

struct jobshm_job {
	uint32_t jobid;
	uid_t uid;
	gid_t gid;
	char path[320];    /* <base>/<jobid>                                 */
	char top[256];     /* base_path up to %n: every node's job mounts    */
	char node[128];    /* the Slurm node name it was made for ("": any)  */
	const struct jobshm_conf *conf;   /* set by init; must outlive job  */
};

int jobshm_job_init(struct jobshm_job *job, const struct jobshm_conf *conf,
		    const char *node, uint32_t jobid, jobshm_err_t *err);

/* 1 if the job's shm is mounted, 0 if not, -1 on error. */
int jobshm_job_mounted(const struct jobshm_job *job, jobshm_err_t *err);





/* Size and use of a mounted job shm (an fsdax job's size: its share). */
int jobshm_job_usage(const struct jobshm_job *job, uint64_t *size,
		     uint64_t *used, jobshm_err_t *err);

/*
 * Kill (SIGKILL) the processes of the job's user that still hold the
 * job's tmpfs in their mount namespace: orphans of a dead slurmstepd.
 * For ended jobs only; jobshm_job_cleanup calls it.
 */
int jobshm_job_reap(const struct jobshm_job *job, int *killed,
		    jobshm_err_t *err);

/*
 * Reap, unmount (never following links), remove the job's directory,
 * and remove its fsdax directory and reservation if it has one.  Returns
 * 0 when all is gone, -1 when the job's mount could not be removed, and
 * 1 (with err) when only its fsdax data remains: the user's files could
 * not all be removed (a process of theirs kept changing the tree), so
 * the reservation is kept and sweep tries again; nothing is lost and
 * the node need not be drained for it.
 */
int jobshm_job_cleanup(const struct jobshm_job *job, jobshm_err_t *err);

/* The node's totals in metrics_dir (jobshm.prom: running jobs, their
 * sizes and use, what ended jobs still hold), after a job's end; 0 when
 * metrics_dir is unset, -1 when it cannot be written. */
int jobshm_metrics_node(const struct jobshm_conf *conf);

/* fsdax reservations on this host, for sweep (after a reboot there is
 * no job directory under base_path left to find them by). */
typedef int (*jobshm_fsdax_f)(const char *path, uint32_t jobid,
			      uint64_t bytes, const char *node, void *arg);
int jobshm_fsdax_each(const struct jobshm_conf *conf, jobshm_fsdax_f fn,
		      void *arg, jobshm_err_t *err);

/*
 * The quotas an fsdax path keeps: JOBSHM_QUOTA_PROJECT and/or
 * JOBSHM_QUOTA_USER (0: none, jobs are not capped), -1 if unreadable.
 * A job is capped only with both; with project quotas alone it is
 * refused (its owner could move files out of the job's project).
 */
#define JOBSHM_QUOTA_PROJECT 1
#define JOBSHM_QUOTA_USER    2
int jobshm_fsdax_quota(const char *path, jobshm_err_t *err);

/* Free space on an fsdax path, and what live jobs have reserved of it. */
int jobshm_fsdax_space(const char *path, uint64_t *avail, uint64_t *reserved,
		       jobshm_err_t *err);

/* Remove a job's fsdax directory (links never followed) and reservation. */
int jobshm_fsdax_remove(const struct jobshm_conf *conf, uint32_t jobid,
			jobshm_err_t *err);

/* ---- usage: what a job used of its shm on a node (lib/usage.c) ------- */

/* A job's use of its shm on one node: a record, or a line of usage_log. */
struct jobshm_usage {
	uint32_t jobid;
	uid_t uid;
	char node[128];
	char kind[8];          /* "tmpfs", "fsdax"                            */
	uint64_t size;         /* its size (the largest, if a step grew it)   */
	uint64_t peak;         /* the most used at any sample                 */
	uint64_t used;         /* used at the last sample (the epilog: final) */
	unsigned full;         /* times a sample found it full               */
	int full_now;          /* full at the last sample                    */
	int64_t start, end;    /* first and last sample, seconds since 1970   */
	char name[64];         /* the job's name ("": not known)              */
	/* what the last srun step that left files in the shm left there, as
	 * its end's line said (left_files 0: no step left any)               */
	uint32_t left_step, left_files;
	uint64_t left_bytes;
};

/* 1 if used of size is full: less free than 1% of size or 64 MiB. */
int jobshm_usage_full(uint64_t size, uint64_t used);

/*
 * Sample the job's shm on this node (as root, where it is mounted):
 * once now and, with interval > 0, every interval seconds in a thread of
 * its own (every signal blocked) -- and every millisecond for a moment
 * after a file is made or grown in the shm's root, within a budget
 * (lib/usage.c) -- into the job's record on the node,
 * which every step adds to.  _now samples at once: *u is the record with
 * used as now, *full_in_step (if not NULL) the times this sampler saw
 * the shm become full.  _stop samples a last time, ends the thread and
 * frees; call it before the code is unloaded.
 */
typedef struct jobshm_sampler jobshm_sampler_t;
jobshm_sampler_t *jobshm_sampler_start(const struct jobshm_job *job,
				       unsigned interval, jobshm_err_t *err);
int jobshm_sampler_now(jobshm_sampler_t *s, struct jobshm_usage *u,
		       unsigned *full_in_step);
void jobshm_sampler_stop(jobshm_sampler_t *s);
/* The job's name into its record (for usage_log and jobshm suggest):
 * what is not a letter, digit or "._+-" becomes '_'; the first kept. */
int jobshm_sampler_name(jobshm_sampler_t *s, const char *name);
/* What step stepid left in the shm at its end into the record (the
 * figure jobshm report, the usage log and the metrics carry). */
int jobshm_sampler_leftovers(jobshm_sampler_t *s, uint32_t stepid,
			     uint64_t bytes, uint32_t files);

/* The record of a running job on this node; -1 (ENOENT) if none. */
int jobshm_usage_read(const struct jobshm_job *job, struct jobshm_usage *u,
		      jobshm_err_t *err);

/*
 * At the job's epilog, before the cleanup: the last sample, the record
 * appended to usage_log (nothing where its directory does not exist) and
 * removed.  1: no record (no shm here); -1: the log could not be written.
 */
int jobshm_usage_end(const struct jobshm_job *job, struct jobshm_usage *u,
		     jobshm_err_t *err);

/* "n1: peak 3.1G of 4G (78%), full 0 times" */
const char *jobshm_usage_summary(const struct jobshm_usage *u, char *buf,
				 size_t len);

/* A record as usage_log's JSON object (one line), and back (-1: not one). */
const char *jobshm_usage_json(const struct jobshm_usage *u, char *buf,
			      size_t len);
int jobshm_usage_parse(const char *line, struct jobshm_usage *u);

/* fn for each record of jobid (0: all) in usage_log.1, then usage_log;
 * stops when fn returns < 0, and returns that. */
typedef int (*jobshm_usage_f)(const struct jobshm_usage *u, void *arg);
int jobshm_usage_log_each(const struct jobshm_conf *conf, uint32_t jobid,
			  jobshm_usage_f fn, void *arg);
/* As jobshm_usage_log_each; bad (when not NULL) is told the file and line
 * of each line that is not a record (skipped). */
typedef void (*jobshm_usage_bad_f)(const char *path, unsigned line,
				   void *arg);
int jobshm_usage_log_scan(const struct jobshm_conf *conf, uint32_t jobid,
			  jobshm_usage_f fn, jobshm_usage_bad_f bad,
			  void *arg);
/* As _scan, for every record of one file (a log from any node): -1
 * (errno) if it cannot be opened, -2 if fn said stop, else 0. */
int jobshm_usage_file_scan(const char *path, jobshm_usage_f fn,
			   jobshm_usage_bad_f bad, void *arg);

/* ---- a job step on a node: the plugin's two calls ---------------------- */

/*
 * A step of a job on this node: what the user asked for and what Slurm
 * says (the caller sets them), and what jobshm_step_setup decided.
 */
struct jobshm_step {
	const char *shm;      /* --shm as typed; NULL: default_size          */
	const char *mpol;     /* --shm-mpol; NULL: default_mpol              */
	const char *nvram;    /* --nvram-options; NULL: not given            */
	const char *cores;    /* the job's cores here (Slurm's list) or NULL */
	uint64_t job_mem;     /* the job's memory here in bytes, 0: unknown  */
	int before_fork;      /* called in the process that forks the tasks
				 (slurmstepd), before it does              */
	int container;        /* a job container moves the tasks out of the
				 namespace they are forked in              */
	int batch;            /* the batch step                              */
	unsigned ntasks;      /* its tasks on this node (for the report)     */
	uint32_t stepid;      /* Slurm's step id (for the leftovers line)    */
	const char *name;     /* the job's name (for the usage log) or NULL  */
	/* set by jobshm_step_setup */
	enum jobshm_kind kind;  /* JOBSHM_NONE: no private shm in this step  */
	uint64_t bytes;       /* the job's shm on this node (JOBSHM_SIZE)    */
	uint64_t before;      /* the same before this step, 0: none          */
	struct jobshm_placement place;  /* JOBSHM_MODE, _MPOL, _NUMA_NODES  */
	char decision[JOBSHM_ERRLEN];   /* what was decided and why         */
	char note[JOBSHM_ERRLEN];  /* why the tasks enter one by one, or "" */
	int host_ns;          /* the namespace it was set up in, open, or -1 */
	ino_t job_ns;         /* the job's, when the caller's thread joined  */
	jobshm_sampler_t *sampler;  /* before_fork: samples the job's shm    */
	int report;           /* this step says what the job used here: the
				 batch step, or the step that made the shm */
	unsigned exited;      /* its tasks that have exited                 */
	struct timespec started;  /* when it was set up (realtime, coarse)  */
};

/*
 * Everything a step needs before its tasks start, as root, once per step
 * and node: parse the options, place (asking hwloc only when the request
 * needs it), admit, create the job's shm (a tmpfs or, for 1LM on an
 * nvram path, an fsdax directory) or grow or check the one a step before
 * made, and, with before_fork and stepd_namespace and no container, move
 * the calling thread into the job's mount namespace, so that the tasks
 * are forked inside it.  job comes from jobshm_job_init, with its uid
 * and gid set.  A refusal (the user's mistake) is -1 with EINVAL or
 * ENOSPC, and the reason.
 */
int jobshm_step_setup(const struct jobshm_job *job, struct jobshm_step *step,
		      jobshm_err_t *err);

/*
 * The task environment of a set-up step: the name of its i-th variable
 * (JOBSHM_DIR, JOBSHM_SIZE, JOBSHM_PREFIX, JOBSHM_MODE, JOBSHM_MPOL,
 * JOBSHM_NUMA_NODES) with its value in buf ("": not set), NULL after the
 * last, and from the first when the step has no private shm.
 */
const char *jobshm_step_env(const struct jobshm_job *job,
			    const struct jobshm_step *step, size_t i,
			    char *buf, size_t len);

/*
 * In the process that forked the tasks, when a task has exited with
 * status (as waitpid gives it): 1 with msg when it died of SIGBUS or
 * exited non-zero while the job's shm was full, or after it became full
 * during the step ("task 3 on n1 died of SIGBUS while /dev/shm was full
 * (256M of 256M); try --shm=512M"), else 0.
 */
int jobshm_task_exit(const struct jobshm_job *job, struct jobshm_step *step,
		     uint32_t task, int status, char *msg, size_t len);

/*
 * 1 with the summary of what the job used here in buf (as
 * jobshm_usage_summary), when this step reports it and its last task has
 * exited; else 0.
 */
int jobshm_step_report(const struct jobshm_job *job,
		       const struct jobshm_step *step, char *buf, size_t len);

/*
 * 1 with a line in buf when this srun step's last task has exited on the
 * node and files it made are still in the job's shm ("step 3 on n1 left
 * 1.1G in 3 files (nccl-* 1.0G, torch_* 0.1G); they count against
 * --shm=2G until removed or the job ends"); else 0.  Nothing for the
 * batch step or the step that made the shm (a plain srun's end is its
 * job's), nor for files older steps or the batch script made; nothing is
 * removed.
 */
int jobshm_step_leftovers(const struct jobshm_job *job,
			  const struct jobshm_step *step, char *buf,
			  size_t len);

/* At the step's end, in the process that ends with it (slurmstepd):
 * stop sampling (before the code is unloaded); the inotify instance is
 * left for the process's exit to close. */
void jobshm_step_end(struct jobshm_step *step);

/*
 * In a task, as root, before it becomes the user: give it the job's
 * shm on /dev/shm.  It is in the job's namespace already (forked there),
 * joins it, enters a namespace of its own where none can be kept, or,
 * when a job container moved it, clones the job's mount beside the
 * container's.  Nothing to do when step->kind is JOBSHM_NONE.
 */
int jobshm_task_enter(const struct jobshm_job *job,
		      const struct jobshm_step *step, jobshm_err_t *err);

/* ---- node-wide listing ------------------------------------------------ */

struct jobshm_entry {
	char node[128];    /* "" when base_path has no %n                   */
	struct jobshm_job job;
	int mounted;
	uint64_t size, used;
	char mpol[64];     /* the tmpfs mpol= option, "" when none           */
	enum jobshm_kind kind;  /* JOBSHM_NONE when not mounted             */
	int unmarked;      /* a root-only node directory without jobshm's
			      marker (made by 0.2 or older): listed, never
			      swept, until a step or epilog marks it        */
	int held;          /* > 0: an ended job whose memory these many
			      processes still hold (not of the job's user:
			      the reaper killed those); size etc. unset    */
	char holders[256]; /* "pid (comm), ..." of those processes           */
};

typedef int (*jobshm_entry_f)(const struct jobshm_entry *e, void *arg);

/*
 * Call fn for every job directory under base_path on this host (every
 * node name when base_path holds %n).  Stops early if fn returns < 0.
 */
int jobshm_list(const struct jobshm_conf *conf, jobshm_entry_f fn, void *arg,
		jobshm_err_t *err);

/*
 * Start `cli sweep --quiet [--conf conf_path]` detached (for slurmd's
 * start: it never waits for it): the shm of jobs that ended while slurmd
 * was down.  -1 if cli cannot be run or the fork fails.
 */
int jobshm_sweep_start(const char *cli, const char *conf_path,
		       jobshm_err_t *err);

/* ---- segments: the worker API inside a job ---------------------------- */

/*
 * A job's segment namespace: the directory (JOBSHM_DIR, else /dev/shm)
 * and name prefix (JOBSHM_PREFIX, else "") of its segments.  Outside a
 * jobshm job, jobshm_ns_note() says so.
 */
typedef struct jobshm_ns jobshm_ns_t;
typedef struct jobshm_seg jobshm_seg_t;

#define JOBSHM_NAME_MAX 200   /* segment names: [A-Za-z0-9._-], no leading . */

/*
 * A shared array segment: a header of JOBSHM_ARRAY_HEADER bytes -- the
 * magic line, then one line of JSON metadata (dtype, shape, order) --
 * and the data, page-aligned, after it.  The Python module writes and
 * reads it; these are its one definition.
 */
#define JOBSHM_ARRAY_HEADER 4096
#define JOBSHM_ARRAY_MAGIC "JOBSHM\x01\n"

jobshm_ns_t *jobshm_ns_open(jobshm_err_t *err);
void jobshm_ns_close(jobshm_ns_t *ns);
const char *jobshm_ns_dir(const jobshm_ns_t *ns);
const char *jobshm_ns_prefix(const jobshm_ns_t *ns);
const char *jobshm_ns_note(const jobshm_ns_t *ns);   /* "" inside a job */
int jobshm_ns_usage(const jobshm_ns_t *ns, uint64_t *size, uint64_t *used,
		    jobshm_err_t *err);

/* 0 if `name` is a valid segment name, else -1 with the reason. */
int jobshm_name_check(const char *name, jobshm_err_t *err);

/*
 * The name a staged SRC gets by default (jobshm stage, enqueue_jobshm
 * --stage): its last path component less an archive suffix (.tar.gz,
 * .tgz, .tar.bz2, .tar.xz, .tar), checked as a segment name.
 */
int jobshm_stage_name(const char *src, char *buf, size_t len,
		      jobshm_err_t *err);

/*
 * A new, unnamed (O_TMPFILE) segment of `size` bytes, mapped read-write.
 * Nobody can see it until jobshm_seg_publish(); if the process dies
 * first, it vanishes.
 */
jobshm_seg_t *jobshm_seg_create(jobshm_ns_t *ns, const char *name,
				size_t size, jobshm_err_t *err);

/*
 * Give a created segment its name, atomically.  Returns 1 if this call
 * published it, 0 if another publisher got there first (the caller
 * should then drop this one and attach the existing), -1 on error.
 */
int jobshm_seg_publish(jobshm_seg_t *seg, jobshm_err_t *err);

/*
 * Map an existing segment (zero-copy).  flags: JOBSHM_WRITABLE maps it
 * read-write; JOBSHM_POPULATE maps every page now (one batch instead of a
 * fault per page later: for data that will be read whole, as rro's).
 */
#define JOBSHM_WRITABLE 1
#define JOBSHM_POPULATE 2
jobshm_seg_t *jobshm_seg_attach(jobshm_ns_t *ns, const char *name,
				int flags, jobshm_err_t *err);

/*
 * Read `len` bytes of the file at `path`, from `file_off`, straight into
 * the segment at `seg_off`: one copy, no intermediate buffer.
 */
int jobshm_seg_fill(jobshm_seg_t *seg, size_t seg_off, const char *path,
		    uint64_t file_off, size_t len, jobshm_err_t *err);

/*
 * A new unnamed segment holding `hlen` bytes of `header` then `len` bytes
 * of the file at `path` from `file_off`, copied by the kernel from page
 * cache to page cache (sendfile): one copy, no zeroing pass, and a full
 * shm is an ENOSPC error, never a SIGBUS.  Publish it as any other.
 */
jobshm_seg_t *jobshm_seg_load(jobshm_ns_t *ns, const char *name,
			      const void *header, size_t hlen,
			      const char *path, uint64_t file_off, size_t len,
			      jobshm_err_t *err);

/*
 * Give a new, unpublished segment its own NUMA policy (libnuma's mbind on
 * its mapping, which tmpfs keeps as the file's policy): "interleave" (over
 * JOBSHM_NUMA_NODES, else every node allowed), "bind:LIST", "local" or
 * "default".  Call it before filling the segment: pages already there
 * keep their place.
 */
int jobshm_seg_policy(jobshm_seg_t *seg, const char *policy,
		      jobshm_err_t *err);

void *jobshm_seg_addr(const jobshm_seg_t *seg);
size_t jobshm_seg_size(const jobshm_seg_t *seg);
int jobshm_seg_writable(const jobshm_seg_t *seg);
void jobshm_seg_close(jobshm_seg_t *seg);     /* unmap; the name stays */

int jobshm_seg_unlink(jobshm_ns_t *ns, const char *name, jobshm_err_t *err);

/* Every published segment of the namespace: fn(name, size, arg). */
typedef int (*jobshm_seg_f)(const char *name, uint64_t size, void *arg);
int jobshm_seg_list(jobshm_ns_t *ns, jobshm_seg_f fn, void *arg,
		    jobshm_err_t *err);

/* ---- node-wide locks and barriers (lib/sync.c) ------------------------ */

/*
 * A lock shared by every process of the job on this node (srun tasks,
 * pool workers).  The kernel releases it when its holder dies; the next
 * owner then gets *recovered = 1 (the data it guards may be half
 * changed).  Blocks until acquired.
 */
typedef struct jobshm_lock jobshm_lock_t;
jobshm_lock_t *jobshm_lock_acquire(jobshm_ns_t *ns, const char *name,
				   int *recovered, jobshm_err_t *err);
void jobshm_lock_release(jobshm_lock_t *lock);

/*
 * The rro cache's own locks (python/jobshm/rrocache.py), never a file of a
 * user's lock of the same name: one per name, and with name NULL the
 * cache's index.  Released with jobshm_lock_release.  _remove removes a
 * name's lock file (once its segment is deleted) unless it is held.
 */
jobshm_lock_t *jobshm_rro_lock(jobshm_ns_t *ns, const char *name,
			       jobshm_err_t *err);
int jobshm_rro_lock_remove(jobshm_ns_t *ns, const char *name,
			   jobshm_err_t *err);

/*
 * Wait until `parties` processes of the job on this node have called it
 * for name; reusable.  timeout in seconds (< 0: forever); when it passes
 * (a participant died or never came) returns -1 with code ETIMEDOUT and
 * takes this arrival back.
 */
int jobshm_barrier_wait(jobshm_ns_t *ns, const char *name, unsigned parties,
			double timeout, jobshm_err_t *err);

#endif /* JOBSHM_H */
