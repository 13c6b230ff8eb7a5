/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * pam_jobshm.so - a PAM session module for the stack after
 * pam_slurm_adopt.so: a session that pam_slurm_adopt adopted into job J
 * on this node gets J's /dev/shm, as J's tasks have it, and gets
 * JOBSHM_DIR, JOBSHM_SIZE and JOBSHM_PREFIX as J's tasks do.
 *
 * Which job: the cgroup that pam_slurm_adopt put this process in (the
 * job's extern step: .../job_<id>/step_extern/..., or on cgroup v2 with
 * Slurm 26.05 .../<SLUID>/step_extern/..., see cgjob.c).  slurmstepd
 * (root) wrote it, and at this point the process is sshd's, not the
 * user's, so the user cannot have moved it.  libslurm's slurm_pid2jobid()
 * is not used: slurm_init() exits the process (fatal) when slurm.conf
 * cannot be read, which here would end sshd's session process; with
 * several slurmd on a host it picks one by an environment variable; and
 * its signature changed in Slurm 26.05.  The job found is then checked
 * here: its shm must be mounted on this node and be the session user's.
 *
 * Where: pam_slurm_adopt's join_container (its default) may have moved
 * the session into Slurm's namespace for the job (namespace/linux,
 * namespace/tmpfs, job_container/tmpfs), where /proc may be of the job's
 * PID namespace and the job's shm may not be mounted.  So the job is
 * looked up in sshd's mount namespace (the parent's, entered by pidfd),
 * then the session goes back to where pam_slurm_adopt left it and:
 *
 *  - no namespace plugin (the session is where sshd is): joins the job's
 *    kept namespace, <base>/<jobid>.ns/mnt, as every task does;
 *  - in Slurm's namespace for the job, where the job's shm is mounted
 *    and kept (namespace/linux: slurmstepd runs there and made it):
 *    joins the job's kept namespace there, the tasks' own;
 *  - in Slurm's namespace for the job, the job's shm mounted only where
 *    sshd is (namespace/tmpfs, job_container/tmpfs: slurmstepd stays
 *    outside and each task is moved in): the job's mount is cloned into
 *    a namespace of the session's own, made from Slurm's, as each task
 *    of the job gets (jobshm_mntns_enter_from): Slurm's /tmp stays.
 *
 * A session never joins a dead namespace, and never one that a user
 * namespace other than the host's owns (where a user may hold
 * capabilities and mount over base_path).
 *
 * Never fails a session: anything that goes wrong is logged (pam_syslog)
 * and said to the user (pam_info), and the session goes on where
 * pam_slurm_adopt left it.  A session not adopted into a --shm job:
 * PAM_IGNORE.  The one exception: the session cannot be put back into
 * the namespace pam_slurm_adopt left it in (the kernel refusing a
 * setns into a namespace it just left); it is then refused
 * (PAM_SESSION_ERR) rather than left in sshd's namespace, outside the
 * job's.
 *
 * Arguments: conf=PATH (jobshm.conf; default the built-in path),
 * nodename=NAME (the Slurm node name of this host; default the short
 * hostname, as pam_slurm_adopt's nodename=), debug.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pwd.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <syslog.h>
#include <unistd.h>
#include <linux/nsfs.h>

#define PAM_SM_SESSION
#include <security/pam_modules.h>
#include <security/pam_ext.h>

#include "jobshm.h"
#include "internal.h"	/* jobshm_mntns_*, jobshm_cwd_* */
#include "cgjob.h"

#define TARGET "/dev/shm"
/* linux/pidfd.h of Linux 6.11; older headers lack it */
#ifndef PIDFD_GET_MNT_NAMESPACE
#define PIDFD_GET_MNT_NAMESPACE _IO(0xFF, 3)
#endif

struct args {
	char conf[256];
	char node[128];
	int debug;
};

static int
parse_args(pam_handle_t *pamh, int argc, const char **argv, struct args *a)
{
	snprintf(a->conf, sizeof(a->conf), "%s", JOBSHM_CONF);
	gethostname(a->node, sizeof(a->node));
	a->node[sizeof(a->node) - 1] = '\0';
	a->node[strcspn(a->node, ".")] = '\0';
	a->debug = 0;
	for (int i = 0; i < argc; i++) {
		if (!strncmp(argv[i], "conf=", 5) && argv[i][5] == '/')
			snprintf(a->conf, sizeof(a->conf), "%s", argv[i] + 5);
		else if (!strncmp(argv[i], "nodename=", 9) && argv[i][9])
			snprintf(a->node, sizeof(a->node), "%s", argv[i] + 9);
		else if (!strcmp(argv[i], "debug"))
			a->debug = 1;
		else {
			pam_syslog(pamh, LOG_ERR, "bad argument '%s' (accepted: "
				   "conf=/PATH, nodename=NAME, debug)", argv[i]);
			return -1;
		}
	}
	return 0;
}

struct find {
	const char *node;
	uint32_t jobid;
	struct jobshm_entry e;
	int found;
};

static int
find_entry(const struct jobshm_entry *e, void *arg)
{
	struct find *f = arg;

	if (e->job.jobid != f->jobid || e->held || !e->mounted ||
	    (e->node[0] && strcmp(e->node, f->node)))
		return 0;
	f->e = *e;
	f->found = 1;
	return -1;
}

/* Job `jobid`'s live shm on node `node`: 1 found (in *e), 0 none, -1 err. */
static int
job_shm(const struct jobshm_conf *conf, const char *node, uint32_t jobid,
	struct jobshm_entry *e, jobshm_err_t *err)
{
	struct find f = { .node = node, .jobid = jobid };

	if (jobshm_list(conf, find_entry, &f, err) < 0 && !f.found)
		return -1;
	if (f.found)
		*e = f.e;
	return f.found;
}

static int
load_conf(const struct args *a, struct jobshm_conf *conf, jobshm_err_t *err)
{
	jobshm_conf_defaults(conf);
	/* without a config file the defaults hold, as in the plugin */
	if (!strcmp(a->conf, JOBSHM_CONF) && access(a->conf, F_OK) < 0 &&
	    errno == ENOENT)
		return 0;
	return jobshm_conf_load(conf, a->conf, err);
}

static void
put_env(pam_handle_t *pamh, const struct jobshm_entry *e)
{
	char v[96];

	pam_putenv(pamh, "JOBSHM_DIR=/dev/shm");
	snprintf(v, sizeof(v), "JOBSHM_SIZE=%" PRIu64, e->size);
	pam_putenv(pamh, v);
	snprintf(v, sizeof(v), "JOBSHM_PREFIX=jobshm.%" PRIu32 ".",
		 e->job.jobid);
	pam_putenv(pamh, v);
}

/*
 * The session's mount namespaces: `here`, where pam_slurm_adopt left it
 * (Slurm's for the job with join_container, else sshd's), and `host`,
 * sshd's, where the job is looked up.
 */
struct ns {
	int here;		/* open; -1: could not be opened */
	int host;		/* open; -1: not entered (looked up in here) */
	int same;		/* here is host: no namespace plugin joined */
	int here_ours;		/* here is owned by the host's user namespace */
	int in_host;		/* the process is in host now */
	struct jobshm_cwd cwd;	/* the working directory before */
};

/* A failure: logged, said to the user, and the session goes on. */
static int
failed(pam_handle_t *pamh, const struct ns *ns, uint32_t jobid,
       const char *why)
{
	const char *has = ns->same ? "the node's /dev/shm" :
			  "the /dev/shm of Slurm's namespace for the job";

	pam_syslog(pamh, LOG_ERR, "job %" PRIu32 ": %s; the session keeps %s",
		   jobid, why, has);
	pam_info(pamh, "jobshm: this session is not in job %" PRIu32 "'s "
		 "/dev/shm (%s); it has %s", jobid, why, has);
	return PAM_SUCCESS;
}

/* The session user's uid and gid, or -1. */
static int
session_user(pam_handle_t *pamh, uid_t *uid, gid_t *gid)
{
	const char *user = NULL;
	struct passwd pw, *r = NULL;
	char buf[4096];

	if (pam_get_user(pamh, &user, NULL) != PAM_SUCCESS || !user ||
	    getpwnam_r(user, &pw, buf, sizeof(buf), &r) != 0 || !r)
		return -1;
	*uid = r->pw_uid;
	*gid = r->pw_gid;
	return 0;
}

/* This process's mount namespace, open.  Where /proc is of another PID
 * namespace (namespace/linux with CLONE_NEWPID) /proc/self is not this
 * process: then by pidfd (Linux 6.11). */
static int
ns_self(void)
{
	int pfd, fd = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);

	if (fd >= 0)
		return fd;
	if ((pfd = (int)syscall(SYS_pidfd_open, getpid(), 0)) < 0)
		return -1;
	fd = ioctl(pfd, PIDFD_GET_MNT_NAMESPACE, 0);
	close(pfd);
	return fd;
}

/* sshd's process (this one's parent) as a pidfd, which setns takes; -1.
 * A parent that has gone (this process reparented) is not trusted: its
 * pid may be another's by now. */
static int
parent_pidfd(void)
{
	pid_t pp = getppid();
	int fd;

	if (pp <= 0 || (fd = (int)syscall(SYS_pidfd_open, pp, 0)) < 0)
		return -1;
	if (getppid() != pp) {
		close(fd);
		return -1;
	}
	return fd;
}

/* 1 if the mount namespace open at fd is owned by this process's user
 * namespace (asked where /proc is this process's): no user can hold
 * capabilities there, or mount over base_path. */
static int
owned_by_us(int fd)
{
	struct stat a, b;
	int u = ioctl(fd, NS_GET_USERNS), rc;

	if (u < 0)
		return 0;
	rc = fstat(u, &a) == 0 && stat("/proc/self/ns/user", &b) == 0 &&
	     a.st_dev == b.st_dev && a.st_ino == b.st_ino;
	close(u);
	return rc;
}

static int
same_file(int a, int b)
{
	struct stat x, y;

	return fstat(a, &x) == 0 && fstat(b, &y) == 0 &&
	       x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

/* Into the namespace open at fd (host: 1 if it is sshd's); 0 or -1. */
static int
go(struct ns *ns, int fd, int host)
{
	if (fd < 0 || setns(fd, CLONE_NEWNS) < 0)
		return -1;
	ns->in_host = host;
	return 0;
}

/*
 * Into sshd's namespace for the lookup (ns->host open), or, where that
 * cannot be, the lookup is made where the session is (ns->host -1), as
 * before pam_slurm_adopt had join_container.
 */
static void
to_host(pam_handle_t *pamh, struct ns *ns, const struct args *a)
{
	int par;

	ns->host = -1;
	ns->same = 1;
	ns->in_host = 0;
	ns->here = ns_self();
	/* checked on every path, the fallbacks' included */
	ns->here_ours = ns->here >= 0 && owned_by_us(ns->here);
	if (ns->here < 0 || (par = parent_pidfd()) < 0) {
		if (a->debug)
			pam_syslog(pamh, LOG_DEBUG, "sshd's mount namespace "
				   "cannot be reached: the job is looked up "
				   "where the session is");
		return;
	}
	/* a process of its own fs (cwd, root) may change namespace */
	if (unshare(CLONE_FS) < 0 || setns(par, CLONE_NEWNS) < 0) {
		pam_syslog(pamh, LOG_ERR, "setns into sshd's mount namespace: "
			   "%m; the job is looked up where the session is");
		close(par);
		return;
	}
	close(par);
	ns->in_host = 1;
	ns->host = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
	if (ns->host < 0 || !owned_by_us(ns->host)) {
		pam_syslog(pamh, LOG_ERR, "sshd's mount namespace is not the "
			   "host's user namespace's: the job is looked up "
			   "where the session is");
		if (ns->host >= 0)
			close(ns->host);
		ns->host = -1;
		go(ns, ns->here, 0);	/* else to_here says so */
		return;
	}
	ns->same = same_file(ns->here, ns->host);
	ns->here_ours = owned_by_us(ns->here);
}

/* Where pam_slurm_adopt left the session, unless it joined the job's
 * (in), in the working directory it had; 0 or -1 (not put back). */
static int
to_here(pam_handle_t *pamh, struct ns *ns, int in, uid_t uid, gid_t gid)
{
	jobshm_err_t err;
	int now = in || ns->here < 0 ? -1 : ns_self();

	/* by where it is, not by where we think it went: the library may
	 * have moved it (a failed clone beside namespace/tmpfs) */
	if (!in && ns->here >= 0 && (now < 0 || !same_file(now, ns->here)) &&
	    go(ns, ns->here, 0) < 0) {
		pam_syslog(pamh, LOG_ERR, "cannot put the session back into "
			   "its mount namespace: %m");
		if (now >= 0)
			close(now);
		return -1;
	}
	if (now >= 0)
		close(now);
	if (jobshm_cwd_restore(&ns->cwd, uid, gid, &err) < 0)
		pam_syslog(pamh, LOG_ERR, "%s", err.msg);
	return 0;
}

/* The job whose cgroup this process is in (read in sshd's namespace,
 * where /proc and cgroup v2 are the host's): 1, 0 none, -1 refused. */
static int
cgroup_job(pam_handle_t *pamh, const struct args *a, uint32_t *jobid)
{
	char cg2[1024], why[1024];
	struct cgjob_roots r = { "/proc/self/cgroup", "/proc", NULL };
	int found;

	if (cgjob_v2_mount("/proc/self/mountinfo", cg2, sizeof(cg2)) == 0)
		r.cg2 = cg2;
	found = cgjob_find(&r, jobid, why, sizeof(why));
	if (found < 0)
		pam_syslog(pamh, LOG_ERR, "%s: session left alone", why);
	else if (found == 0 && a->debug)
		pam_syslog(pamh, LOG_DEBUG, "in no job's cgroup: session left "
			   "alone");
	return found;
}

static int
joined(pam_handle_t *pamh, const struct args *a, const struct jobshm_entry *e,
       const char *how, int *in)
{
	*in = 1;
	put_env(pamh, e);
	if (a->debug)
		pam_syslog(pamh, LOG_DEBUG, "job %" PRIu32 " on %s: %s",
			   e->job.jobid, a->node, how);
	return PAM_SUCCESS;
}

/* The job's kept namespace, where the process is now. */
static int
join_kept(pam_handle_t *pamh, const struct args *a, const struct ns *ns,
	  struct jobshm_entry *e, int *in)
{
	struct stat st;
	jobshm_err_t err;

	if (jobshm_mntns_stat(&e->job, &st) < 0)
		return failed(pamh, ns, e->job.jobid, "the job keeps no "
			      "namespace on this node");
	if (jobshm_mntns_join(&e->job, TARGET, &err) != 0)
		return failed(pamh, ns, e->job.jobid, err.msg);
	return joined(pamh, a, e, "joined the job's kept namespace", in);
}

/* Job `jobid`'s live shm on the node where the process is now, if it is
 * the user's: 1 (*e), 0 none, -1 failed (said). */
static int
user_shm(pam_handle_t *pamh, const struct args *a, const struct ns *ns,
	 struct jobshm_conf *conf, uint32_t jobid, uid_t uid,
	 struct jobshm_entry *e)
{
	jobshm_err_t err;
	int rc = job_shm(conf, a->node, jobid, e, &err);

	if (rc < 0)
		return failed(pamh, ns, jobid, err.msg), -1;
	if (rc > 0 && e->job.uid != uid)
		return failed(pamh, ns, jobid, "the job's shm is another "
			      "user's"), -1;
	if (rc > 0)
		e->job.conf = conf;
	return rc;
}

/*
 * Put the session in job `jobid`'s shm on the node, if it is the
 * user's; *in: it is.  See the top of this file for the three cases.
 */
static int
join_job(pam_handle_t *pamh, const struct args *a, struct ns *ns,
	 uint32_t jobid, uid_t uid, int *in)
{
	struct jobshm_conf conf;
	struct jobshm_entry e;
	jobshm_err_t err;
	int rc;

	*in = 0;
	if (load_conf(a, &conf, &err) < 0)
		return failed(pamh, ns, jobid, err.msg);
	if (!ns->here_ours)
		return failed(pamh, ns, jobid, "the namespace the session is "
			      "in belongs to a user namespace not the host's");
	if (!ns->same) {
		/* Slurm's namespace for the job: the shm made there? */
		if (go(ns, ns->here, 0) < 0)
			return failed(pamh, ns, jobid, "cannot go back into "
				      "Slurm's namespace for the job");
		if ((rc = user_shm(pamh, a, ns, &conf, jobid, uid, &e)) < 0)
			return PAM_SUCCESS;
		if (rc > 0)
			return join_kept(pamh, a, ns, &e, in);
		if (go(ns, ns->host, 1) < 0)
			return failed(pamh, ns, jobid, "cannot go back into "
				      "sshd's namespace");
	}
	if ((rc = user_shm(pamh, a, ns, &conf, jobid, uid, &e)) < 0)
		return PAM_SUCCESS;
	if (rc == 0) {	/* not a --shm job here, or it has ended */
		if (a->debug)
			pam_syslog(pamh, LOG_DEBUG, "job %" PRIu32 " has no shm "
				   "on %s: session left alone", jobid, a->node);
		return PAM_IGNORE;
	}
	if (ns->same)
		return join_kept(pamh, a, ns, &e, in);
	/* mounted only where sshd is: cloned into a namespace of the
	 * session's own, made from Slurm's for the job, as each task is */
	if (go(ns, ns->here, 0) < 0)
		return failed(pamh, ns, jobid, "cannot go back into Slurm's "
			      "namespace for the job");
	if (jobshm_mntns_enter_from(&e.job, ns->host, TARGET, &err) < 0)
		return failed(pamh, ns, jobid, err.msg);
	return joined(pamh, a, &e, "the job's mount cloned into a namespace "
		      "of the session's own, made from Slurm's for the job", in);
}

PAM_EXTERN int
pam_sm_open_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	struct args a;
	struct ns ns;
	uint32_t jobid = 0;
	uid_t uid;
	gid_t gid;
	int rc = PAM_IGNORE, in = 0;

	(void)flags;
	if (parse_args(pamh, argc, argv, &a) < 0)
		return PAM_IGNORE;
	if (session_user(pamh, &uid, &gid) < 0 || uid == 0)
		return PAM_IGNORE;	/* root is never adopted */
	jobshm_cwd_save(&ns.cwd);
	to_host(pamh, &ns, &a);
	if (cgroup_job(pamh, &a, &jobid) > 0)
		rc = join_job(pamh, &a, &ns, jobid, uid, &in);
	if (to_here(pamh, &ns, in, uid, gid) < 0)
		rc = PAM_SESSION_ERR;	/* never left outside the job's */
	if (ns.here >= 0)
		close(ns.here);
	if (ns.host >= 0)
		close(ns.host);
	return rc;
}

PAM_EXTERN int
pam_sm_close_session(pam_handle_t *pamh, int flags, int argc,
		     const char **argv)
{
	(void)pamh;
	(void)flags;
	(void)argc;
	(void)argv;
	return PAM_IGNORE;
}
