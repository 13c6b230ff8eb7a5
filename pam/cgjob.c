/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Which Slurm job a process's cgroup names.  pam_slurm_adopt asked the
 * job's extern slurmstepd (root) to move the process into the extern
 * step's cgroup; the process is still sshd's, not the user's, so the user
 * cannot have moved it.  The cgroup names the job in one of two ways:
 *
 *  - job_<id> (cgroup v1; cgroup v2 before Slurm 26.05, and on 26.05 with
 *    CgroupJobIdPaths=yes in cgroup.conf): .../job_<id>/step_extern/...
 *  - the job's SLUID (cgroup v2 on Slurm 26.05 by default):
 *    .../slurmstepd.scope/sEKNKTV3WPV500/step_extern/user/task_special.
 *    A SLUID does not contain the job id.  The job's extern slurmstepd
 *    is in <job cgroup>/step_extern/slurm (Slurm's cgroup/v2 puts each
 *    stepd in its step's slurm/ cgroup) and its process title is
 *    "slurmstepd: [<jobid>.extern]".  It is trusted only when the
 *    cgroup.procs it is listed in is root's and writable by root only,
 *    the process is root's (all of its uids), is itself in that very
 *    cgroup, and its title is whole; everything of the process is read
 *    through one open /proc/<pid> (a pid used again by another process
 *    reads as gone, never as the other process).
 *
 * Every path here comes from the kernel (the process's cgroup file) or
 * from root; nothing is followed through a link.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgjob.h"
#include "internal.h"	/* jobshm_mountinfo_each */

#define CGPATH 4096

/* What a cgroup path names. */
struct cgname {
	enum { CG_NONE, CG_JOBID, CG_SLUID } kind;
	uint32_t jobid;		/* CG_JOBID */
	char job[CGPATH];	/* CG_SLUID: the job's cgroup, "/.../s..." */
};

/* "s" and 13 of Crockford's base32 (Slurm's print_sluid). */
static int
is_sluid(const char *c, size_t n)
{
	static const char cb32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

	if (n != 14 || c[0] != 's')
		return 0;
	for (size_t i = 1; i < n; i++)
		if (!c[i] || !strchr(cb32, c[i]))
			return 0;
	return 1;
}

/* "job_<id>": 1 (*id), 0 not one. */
static int
is_job_id(const char *c, size_t n, uint32_t *id)
{
	char buf[16];
	uint64_t v;

	if (n < 5 || n > 14 || strncmp(c, "job_", 4) || c[4] == '0')
		return 0;
	memcpy(buf, c + 4, n - 4);
	buf[n - 4] = '\0';
	if (jobshm_parse_u64(buf, 1, UINT32_MAX - 3, &v, NULL) < 0)
		return 0;
	*id = (uint32_t)v;
	return 1;
}

/*
 * What path names, looking only after a component that names Slurm:
 * job_<id> anywhere (the step is left to the job's own checks); a SLUID
 * only followed by step_extern, and only on cgroup v2.
 */
static void
cg_name(const char *path, int v2, struct cgname *out)
{
	const char *c = path, *e, *next;
	size_t n;
	int slurm = 0;

	out->kind = CG_NONE;
	while (*c == '/')
		c++;
	for (; *c; c = next) {
		e = strchr(c, '/');
		n = e ? (size_t)(e - c) : strlen(c);
		next = c + n;
		while (*next == '/')
			next++;
		if (!slurm && memmem(c, n, "slurm", 5))
			slurm = 1;
		if (!slurm)
			continue;
		if (is_job_id(c, n, &out->jobid)) {
			out->kind = CG_JOBID;
			return;
		}
		if (v2 && is_sluid(c, n) && !strncmp(next, "step_extern", 11) &&
		    (next[11] == '/' || !next[11]) &&
		    (size_t)(c + n - path) < sizeof(out->job)) {
			out->kind = CG_SLUID;
			memcpy(out->job, path, (size_t)(c + n - path));
			out->job[c + n - path] = '\0';
			return;
		}
	}
}

/* A directory below the open dir `at`, component by component, never
 * through a link; "." and ".." refused. */
static int
open_below(int at, const char *path)
{
	char buf[CGPATH], *c, *save = NULL;
	int fd = dup(at), next;

	if (fd < 0 || snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf)) {
		if (fd >= 0)
			close(fd);
		errno = ENAMETOOLONG;
		return -1;
	}
	for (c = strtok_r(buf, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		if (!strcmp(c, ".") || !strcmp(c, "..")) {
			close(fd);
			errno = EINVAL;
			return -1;
		}
		next = openat(fd, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
			      O_CLOEXEC);
		close(fd);
		if (next < 0)
			return -1;
		fd = next;
	}
	return fd;
}

/* A small file under the open dir `at`, NUL-terminated; its length or -1. */
static ssize_t
read_at(int at, const char *name, char *buf, size_t len)
{
	int fd = openat(at, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	ssize_t n = 0, got = 0;

	if (fd < 0)
		return -1;
	while ((size_t)got < len - 1 &&
	       (n = read(fd, buf + got, len - 1 - (size_t)got)) > 0)
		got += n;
	close(fd);
	if (n < 0 && got == 0)
		return -1;
	buf[got] = '\0';
	return got;
}

/* A cgroup file's line "0::<path>" (cgroup v2): the path, or NULL. */
static const char *
v2_line(char *text)
{
	char *line, *save = NULL;

	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save))
		if (!strncmp(line, "0::", 3))
			return line + 3;
	return NULL;
}

/* "Uid:" of a status file: all four ids root's. */
static int
status_root(char *text)
{
	char *u = strstr(text, "\nUid:");
	unsigned long id[4];

	return u && sscanf(u + 5, "%lu %lu %lu %lu", &id[0], &id[1], &id[2],
			   &id[3]) == 4 && !id[0] && !id[1] && !id[2] && !id[3];
}

/*
 * slurmstepd's title for the extern step: "slurmstepd: [<id>.extern]"
 * (" stepmgr" before the "]" in a stepmgr job), padded with spaces to
 * the end of its argument area.  1 (*id), 0 another title or one cut
 * short (an argument area too small for it).
 */
static int
stepd_title(const char *cmd, uint32_t *id)
{
	const char *q;
	uint64_t v;

	if (strncmp(cmd, "slurmstepd: [", 13) || cmd[13] == '0' ||
	    jobshm_parse_u64(cmd + 13, 1, UINT32_MAX - 3, &v, &q) < 0 ||
	    strncmp(q, ".extern", 7))
		return 0;
	q += 7;
	if (!strncmp(q, " stepmgr", 8))
		q += 8;
	if (*q++ != ']')
		return 0;
	while (*q == ' ')
		q++;
	if (*q)
		return 0;
	*id = (uint32_t)v;
	return 1;
}

/* Process pid, if it is a root slurmstepd of the extern step in the
 * cgroup `want`: 1 (*id), 0 not. */
static int
stepd_job(const struct cgjob_roots *r, long pid, const char *want,
	  uint32_t *id)
{
	char path[256], buf[4096];
	const char *cg;
	struct stat st;
	int dir, ok = 0;

	snprintf(path, sizeof(path), "%s/%ld", r->proc, pid);
	dir = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dir < 0)
		return 0;
	if (fstat(dir, &st) == 0 && st.st_uid == 0 &&
	    read_at(dir, "status", buf, sizeof(buf)) > 0 && status_root(buf) &&
	    read_at(dir, "cgroup", buf, sizeof(buf)) > 0 &&
	    (cg = v2_line(buf)) && !strcmp(cg, want) &&
	    read_at(dir, "cmdline", buf, sizeof(buf)) > 0)
		ok = stepd_title(buf, id);
	close(dir);
	return ok;
}

/* The job id of the job cgroup `job` (a SLUID): from its extern stepd. */
static int
sluid_job(const struct cgjob_roots *r, const char *job, uint32_t *jobid,
	  char *why, size_t len)
{
	char want[CGPATH + 32];
	struct stat st;
	int root, dir, fd, found = 0;
	uint32_t id;
	long pid;
	FILE *f;

	if (!r->cg2) {
		snprintf(why, len, "cgroup %.512s names the job by its SLUID, "
			 "and no cgroup v2 is mounted", job);
		return -1;
	}
	snprintf(want, sizeof(want), "%s/step_extern/slurm", job);
	root = open(r->cg2, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	dir = root < 0 ? -1 : open_below(root, want);
	if (root >= 0)
		close(root);
	fd = dir < 0 ? -1 : openat(dir, "cgroup.procs", O_RDONLY |
				   O_NOFOLLOW | O_CLOEXEC);
	if (dir >= 0)
		close(dir);
	if (fd < 0) {
		snprintf(why, len, "%.512s%.512s/cgroup.procs: %s", r->cg2, want,
			 strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != 0 ||
	    (st.st_mode & 022)) {
		close(fd);
		snprintf(why, len, "%.512s%.512s/cgroup.procs is not root's "
			 "only", r->cg2, want);
		return -1;
	}
	if (!(f = fdopen(fd, "r"))) {
		close(fd);
		snprintf(why, len, "fdopen: %s", strerror(errno));
		return -1;
	}
	while (fscanf(f, "%ld", &pid) == 1) {
		if (pid <= 0 || !stepd_job(r, pid, want, &id))
			continue;
		if (found && id != *jobid) {
			fclose(f);
			snprintf(why, len, "two extern slurmstepd in %.512s "
				 "name jobs %" PRIu32 " and %" PRIu32, want, *jobid, id);
			return -1;
		}
		*jobid = id;
		found = 1;
	}
	fclose(f);
	if (!found)
		snprintf(why, len, "no root slurmstepd titled '[<jobid>.extern]' "
			 "in %.512s%.512s", r->cg2, want);
	return found ? 1 : -1;
}

int
cgjob_find(const struct cgjob_roots *r, uint32_t *jobid, char *why,
	   size_t len)
{
	char line[CGPATH], *path;
	struct cgname name;
	uint32_t id = 0;
	int found = 0, rc;
	FILE *f = fopen(r->self, "re");

	why[0] = '\0';
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		path = strchr(line, ':') ? strchr(strchr(line, ':') + 1, ':') :
		       NULL;
		if (!path)
			continue;
		*path++ = '\0';
		cg_name(path, !strcmp(line, "0:"), &name);
		if (name.kind == CG_NONE)
			continue;
		if (name.kind == CG_JOBID)
			id = name.jobid;
		else if ((rc = sluid_job(r, name.job, &id, why, len)) < 0) {
			fclose(f);
			return -1;
		}
		if (found && id != *jobid) {
			fclose(f);
			snprintf(why, len, "this process's cgroups name two jobs "
				 "(%" PRIu32 " and %" PRIu32 ")", *jobid, id);
			return -1;
		}
		*jobid = id;
		found = 1;
	}
	fclose(f);
	return found;
}

struct v2mount {
	char *buf;
	size_t len;
};

static int
v2_mount(const struct jobshm_mountinfo *mi, void *arg)
{
	struct v2mount *m = arg;

	if (strncmp(mi->super, "cgroup2 ", 8) || strcmp(mi->root, "/") ||
	    strchr(mi->mp, '\\') ||
	    snprintf(m->buf, m->len, "%s", mi->mp) >= (int)m->len)
		return 0;
	return 1;
}

int
cgjob_v2_mount(const char *mountinfo, char *buf, size_t len)
{
	struct v2mount m = { buf, len };

	return jobshm_mountinfo_each(mountinfo, v2_mount, &m) == 1 ? 0 : -1;
}
