/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * pam_jobshm.so - a PAM session module for the stack after
 * pam_slurm_adopt.so: a session that pam_slurm_adopt adopted into job J
 * on this node joins J's mount namespace on the node (the one its tasks
 * use, kept at <base>/<jobid>.ns/mnt), so that it sees J's /dev/shm, and
 * gets JOBSHM_DIR, JOBSHM_SIZE and JOBSHM_PREFIX as J's tasks do.
 *
 * Which job: the cgroup that pam_slurm_adopt put this process in (the
 * job's extern step: .../job_<id>/step_extern/...).  slurmstepd (root)
 * wrote it, and at this point the process is sshd's, not the user's, so
 * the user cannot have moved it.  libslurm's slurm_pid2jobid() is not
 * used: slurm_init() exits the process (fatal) when slurm.conf cannot be
 * read, which here would end sshd's session process; with several slurmd
 * on a host it picks one by an environment variable; and its signature
 * changed in Slurm 26.05.  The job found is then checked here: its shm
 * must be mounted on this node, be the session user's, and its kept
 * namespace must be there (a session never joins a dead namespace).
 *
 * Never fails a session: anything that goes wrong is logged (pam_syslog)
 * and said to the user (pam_info), and the session goes on with the
 * host's /dev/shm.  A session not adopted into a --shm job: PAM_IGNORE.
 *
 * Arguments: conf=PATH (jobshm.conf; default the built-in path),
 * nodename=NAME (the Slurm node name of this host; default the short
 * hostname, as pam_slurm_adopt's nodename=), debug.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#define PAM_SM_SESSION
#include <security/pam_modules.h>
#include <security/pam_ext.h>

#include "jobshm.h"
#include "internal.h"	/* jobshm_mntns_stat: is the namespace kept? */

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

/* "job_<id>" as a whole path component, after one naming Slurm. */
static int
cgroup_line_job(char *path, uint32_t *jobid)
{
	char *c, *save = NULL, *end;
	int slurm = 0;
	unsigned long v;

	for (c = strtok_r(path, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		if (strstr(c, "slurm"))
			slurm = 1;
		if (!slurm || strncmp(c, "job_", 4) || !c[4])
			continue;
		errno = 0;
		v = strtoul(c + 4, &end, 10);
		if (*end || errno || c[4] == '0' || v > UINT32_MAX - 3)
			continue;
		*jobid = (uint32_t)v;
		return 1;
	}
	return 0;
}

/*
 * The job whose cgroup this process is in (cgroup v1: every hierarchy
 * Slurm uses, which must agree; v2: the one line).  1 found, 0 none,
 * -1 the hierarchies disagree.
 */
static int
cgroup_jobid(uint32_t *jobid)
{
	char line[4096], *path;
	uint32_t id;
	int found = 0;
	FILE *f = fopen("/proc/self/cgroup", "re");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		path = strchr(line, ':') ? strchr(strchr(line, ':') + 1, ':') : NULL;
		if (!path || !cgroup_line_job(path + 1, &id))
			continue;
		if (found && id != *jobid) {
			found = -1;
			break;
		}
		*jobid = id;
		found = 1;
	}
	fclose(f);
	return found;
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

/* A failure: logged, said to the user, and the session goes on. */
static int
failed(pam_handle_t *pamh, uint32_t jobid, const char *why)
{
	pam_syslog(pamh, LOG_ERR, "job %" PRIu32 ": %s; the session keeps the "
		   "host's /dev/shm", jobid, why);
	pam_info(pamh, "jobshm: this session is not in job %" PRIu32 "'s "
		 "/dev/shm (%s); it has the node's /dev/shm", jobid, why);
	return PAM_SUCCESS;
}

/* The session user's uid, or -1. */
static int
session_uid(pam_handle_t *pamh, uid_t *uid)
{
	const char *user = NULL;
	struct passwd pw, *r = NULL;
	char buf[4096];

	if (pam_get_user(pamh, &user, NULL) != PAM_SUCCESS || !user ||
	    getpwnam_r(user, &pw, buf, sizeof(buf), &r) != 0 || !r)
		return -1;
	*uid = r->pw_uid;
	return 0;
}

/* Join job `jobid`'s namespace on the node, if it is the user's. */
static int
join_job(pam_handle_t *pamh, const struct args *a, uint32_t jobid, uid_t uid)
{
	struct jobshm_conf conf;
	struct jobshm_entry e;
	struct stat st;
	jobshm_err_t err;
	int rc;

	if (load_conf(a, &conf, &err) < 0)
		return failed(pamh, jobid, err.msg);
	if ((rc = job_shm(&conf, a->node, jobid, &e, &err)) < 0)
		return failed(pamh, jobid, err.msg);
	if (rc == 0) {	/* not a --shm job here, or it has ended */
		if (a->debug)
			pam_syslog(pamh, LOG_DEBUG, "job %" PRIu32 " has no shm "
				   "on %s: session left alone", jobid, a->node);
		return PAM_IGNORE;
	}
	if (e.job.uid != uid)
		return failed(pamh, jobid, "the job's shm is another user's");
	e.job.conf = &conf;
	if (jobshm_mntns_stat(&e.job, &st) < 0)
		return failed(pamh, jobid, "the job keeps no namespace on this "
			      "node");
	if (jobshm_mntns_join(&e.job, "/dev/shm", &err) != 0)
		return failed(pamh, jobid, err.msg);
	put_env(pamh, &e);
	if (a->debug)
		pam_syslog(pamh, LOG_DEBUG, "joined the namespace of job %"
			   PRIu32 " on %s", jobid, a->node);
	return PAM_SUCCESS;
}

PAM_EXTERN int
pam_sm_open_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	struct args a;
	uint32_t jobid = 0;
	uid_t uid;
	int found;

	(void)flags;
	if (parse_args(pamh, argc, argv, &a) < 0)
		return PAM_IGNORE;
	if (session_uid(pamh, &uid) < 0 || uid == 0)
		return PAM_IGNORE;	/* root is never adopted */
	found = cgroup_jobid(&jobid);
	if (found < 0) {
		pam_syslog(pamh, LOG_ERR, "this process's cgroups name two "
			   "jobs: session left alone");
		return PAM_IGNORE;
	}
	if (found == 0) {	/* not adopted into a job */
		if (a.debug)
			pam_syslog(pamh, LOG_DEBUG, "in no job's cgroup: "
				   "session left alone");
		return PAM_IGNORE;
	}
	return join_job(pamh, &a, jobid, uid);
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
