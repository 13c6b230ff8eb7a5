/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Helpers shared by libjobshm's files; not installed. */
#ifndef JOBSHM_INTERNAL_H
#define JOBSHM_INTERNAL_H

#include <sys/stat.h>

#include <time.h>

#include "jobshm.h"

/* Keep a message (and its code: errno when fmt has %m, else EINVAL). */
int jobshm_fail(jobshm_err_t *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int jobshm_fail_code(jobshm_err_t *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Parse an unsigned decimal in [min, max] that fills all of s. */
int jobshm_parse_u64(const char *s, uint64_t min, uint64_t max,
		     uint64_t *out, const char **end);

/*
 * Call fn for each line of a mountinfo file until fn returns non-zero;
 * returns that value, 0 at the end, -1 if the file cannot be read.
 */
struct jobshm_mountinfo {
	int id;                /* the mount's id                          */
	const char *dev;       /* "maj:min"                               */
	const char *root;      /* the mount's root within its filesystem  */
	const char *mp;        /* where it is mounted                     */
	const char *super;     /* "fstype source superoptions"            */
};
typedef int (*jobshm_mount_f)(const struct jobshm_mountinfo *mi, void *arg);
int jobshm_mountinfo_each(const char *file, jobshm_mount_f fn, void *arg);

/* place.c: a node list ("0-1,3") as a 1024-bit mask; -1 if malformed. */
int jobshm_nodes_mask(const char *list,
		     unsigned long mask[1024 / (8 * sizeof(long))]);

/* fsdax.c */
int jobshm_fsdax_create(const struct jobshm_job *job, int basefd,
			const char *node, uint64_t bytes, jobshm_err_t *err);
int jobshm_fsdax_reserved(const struct jobshm_job *job, uint64_t *bytes);
int jobshm_fsdax_remove_at(int store, uint32_t jobid);

/* fsdax.c: what the job's mount on this node is (JOBSHM_NONE: none);
 * the one place that tells a tmpfs from an fsdax directory. */
enum jobshm_kind jobshm_job_kind(const struct jobshm_job *job);

/* Remove parent/name and all below it; never follows a link. */
int jobshm_rmtree_at(int parent, const char *name);

/* ---- jobdir.c: the job directories; it calls no other file of these */

/* A root path opened component by component, never following a link,
 * each component root's and writable by root only (an existing one
 * under a sticky directory excepted); create makes what is missing,
 * never inside a directory others can write to. */
int jobshm_open_dir(const char *path, int create, jobshm_err_t *err);

/* Size and use of the filesystem fd is on, held to cap (0: none);
 * -1 (errno) on failure. */
int jobshm_fd_usage(int fd, uint64_t cap, uint64_t *size, uint64_t *used);

/* In each node directory jobshm made: the Slurm node name. */
#define JOBSHM_NODE_MARK ".jobshm-node"

/* The job's base directory, opened root-checked, and its lock (*lock: a
 * root-only file in it; the caller closes both; lock NULL: not taken). */
int jobshm_open_base(const struct jobshm_job *job, int create, int *lock,
		     jobshm_err_t *err);
#define JOBSHM_BASE_LOCK ".jobshm-lock"
/* <base>/<jobid>.held: an ended job whose memory a process still holds */
#define JOBSHM_HELD ".held"
/* <base>/<jobid>.usage: what the job used of its shm here (usage.c) */
#define JOBSHM_USAGE ".usage"
/* What a sampler's thread did: samples, those in a fast window, inotify
 * wake-ups, and whether it watches (1; 0: no thread; -errno: the watch
 * could not be made or renewed: the interval alone). */
void jobshm_sampler_counts(jobshm_sampler_t *s, unsigned long *samples,
			   unsigned long *fast, unsigned long *events,
			   int *watching);
/* jobshm_sampler_stop in a process about to exit: its inotify instance
 * and watch slot are left for the exit to close (no wait for the kernel
 * to free the watch on the way to the step's end). */
void jobshm_sampler_stop_exiting(jobshm_sampler_t *s);
/* The job's mount root the sampler samples (O_PATH), or -1. */
int jobshm_sampler_dir(jobshm_sampler_t *s);

/* leftover.c: regular files of the tmpfs at root made since `since`:
 * their bytes, count, and the largest name prefixes ("nccl-* 1.0G, ..."). */
int jobshm_leftovers(int root, const struct timespec *since, uint64_t *bytes,
		     unsigned long *files, char *prefixes, size_t len);

/* The job's base directory unlocked (-1, errno ENOENT: none), and the
 * job's directory as an O_PATH descriptor named by proc for mount(2);
 * jobshm_dir_fd does the same for name in an open base. */
int jobshm_open_base_nolock(const struct jobshm_job *job, jobshm_err_t *err);
int jobshm_open_job_dir(const struct jobshm_job *job, char *proc, size_t len,
			jobshm_err_t *err);
int jobshm_dir_fd(int basefd, const char *name, char *proc, size_t len,
		  jobshm_err_t *err);

/* The job directory's name in its base ("<jobid>"). */
const char *jobshm_job_leaf(const struct jobshm_job *job);

/* 1 if something is mounted on name in the open base, 0 if not (or
 * absent), -1 on error. */
int jobshm_mounted_at(int basefd, const char *name, jobshm_err_t *err);

/* 1 if fd is the root of a mount (a filesystem or a bind). */
int jobshm_is_mount_root(int fd);

/* Unmount (lazily) whatever is mounted on dir/name, as many times as it
 * is; never through a link. */
int jobshm_unmount_at(int dir, const char *name, jobshm_err_t *err);

/* ---- job.c: making the job's mount ------------------------------------ */

/* Room for a job's tmpfs options (jobshm_tmpfs_opts). */
#define JOBSHM_TMPFS_OPTS (JOBSHM_NODELIST + 256)

/* The options of the job's tmpfs of bytes: size, mode, owner, the NUMA
 * policy mpol ("mpol=...", or NULL) and the configured huge=. */
int jobshm_tmpfs_opts(const struct jobshm_job *job, uint64_t bytes,
		      const char *mpol, char *buf, size_t len,
		      jobshm_err_t *err);

/* Create the job's mount of kind, or grow or check the one there. */
int jobshm_job_setup(const struct jobshm_job *job, enum jobshm_kind kind,
		     uint64_t bytes, const char *mpol, jobshm_err_t *err);

/* ---- jobns.c: the job's mount namespace (mntns) ----------------------- */

/* The calling process: a private mount namespace (slave to the host's)
 * with the job's mount bound over target. */
int jobshm_mntns_enter(const struct jobshm_job *job, const char *target,
		       jobshm_err_t *err);

/* As jobshm_mntns_enter, for a process a job container moved out of the
 * namespace open at host, where the job's mount is. */
int jobshm_mntns_enter_from(const struct jobshm_job *job, int host,
			    const char *target, jobshm_err_t *err);

/* The calling thread joins the job's kept namespace, made if it is not
 * there yet: 0 joined; 1 none could be kept (err says why); -1 error. */
int jobshm_mntns_join(const struct jobshm_job *job, const char *target,
		      jobshm_err_t *err);

/* The job's own lock (its <jobid>.ns directory, made if need be,
 * root's and 0700, locked): held to make or grow its tmpfs and to make
 * its namespace, so that jobs do not wait for each other (the base lock
 * is for fsdax, whose space the node's jobs share; order: base, then
 * job).  -1 (ENOENT: the job ended while we waited). */
int jobshm_job_lock(const struct jobshm_job *job, int basefd,
		    jobshm_err_t *err);
/* At the job's end, which holds jobshm_job_lock (or -1: none), once the
 * job's directory is gone: the lock's directory removed, then let go, so
 * that no task that waited for it makes anything. */
void jobshm_mntns_end_unlock(const struct jobshm_job *job, int basefd,
			     int lock);
/* Release the job's kept mount namespace, if any (base and job locked);
 * detach: first detach every mount of the job in it (a helper enters
 * it), which a sealed, empty tmpfs (job.c) does not need. */
int jobshm_mntns_release(const struct jobshm_job *job, int basefd,
			 int detach, jobshm_err_t *err);

/* The job's kept mount namespace's nsfs file; -1 if none. */
int jobshm_mntns_stat(const struct jobshm_job *job, struct stat *st);

/* The working directory across a change of mount namespace, entered
 * again with the user's filesystem ids, "/" if it moved. */
struct jobshm_cwd {
	char path[4096];
	dev_t dev;
	ino_t ino;
};
void jobshm_cwd_save(struct jobshm_cwd *c);
int jobshm_cwd_restore(const struct jobshm_cwd *c, uid_t uid, gid_t gid,
		       jobshm_err_t *err);


/* segment.c: the open directory of a namespace. */
int jobshm_ns_dirfd(const jobshm_ns_t *ns);

/* fsdax.c: empty parent/name, never following a link nor leaving its
 * filesystem; the directory itself stays. */
int jobshm_empty_at(int parent, const char *name);
/* name directly in at: no link, no mount point crossed, never outside at. */
int jobshm_open_here(int at, const char *name, int flags);

/* usagelog.c: append a JSON line to usage_log, rotating it past
 * usage_log_max; 0 without writing where its directory does not exist. */
int jobshm_usage_log_append(const struct jobshm_conf *conf, const char *json,
			    jobshm_err_t *err);


/* jobns.c: a helper's exit status within ms, or -1 (then it is killed
 * and left: what it waits on may never answer). */
#define JOBSHM_HELPER_MS 5000
int jobshm_wait_deadline(pid_t pid, int ms, int *status);

/* metrics.c: node exporter textfiles in metrics_dir (off: "" -> 0). */
int jobshm_metrics_job(const struct jobshm_conf *c,
		       const struct jobshm_usage *u, const char *user);
void jobshm_metrics_job_remove(const struct jobshm_conf *c, uint32_t jobid,
			       const char *node);
/* metrics_dir open if root's and not writable by others; -1 if not */
int jobshm_metrics_dir_open(const struct jobshm_conf *c);
int jobshm_metrics_publish(int dir, const char *name, const char *text,
			   size_t len);
void jobshm_metrics_label(char *out, size_t len, const char *v);

/* 1 if the node's file is older than seconds (or missing) */
int jobshm_metrics_node_stale(const struct jobshm_conf *c, unsigned seconds);

#endif
