/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests: pam_jobshm's lookup of the job a session was adopted into
 * (pam/cgjob.c), on fixture files: a process's cgroup file, a fake
 * cgroup v2 tree and a fake /proc under a temporary directory.  cgroup
 * v1 and v2 with job_<id> (CgroupJobIdPaths=yes), and cgroup v2 named by
 * the job's SLUID (Slurm 26.05's default), where the job id is read from
 * the extern slurmstepd in the job's cgroup, and every way that stepd
 * could be faked or mistaken is refused.  The layout follows Slurm
 * 26.05.3's src/plugins/cgroup/v2/cgroup_v2.c; it is not checked here
 * against a live cgroup v2 Slurm (this host's cgroups are v1).
 * The SLUID tests need root (skipped otherwise, exit 77).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "../../pam/cgjob.c"

#define SCOPE "/system.slice/node1_slurmstepd.scope"
#define SLUID "sEKNKTV3WPV500"
#define JOBCG SCOPE "/" SLUID
#define ADOPTED JOBCG "/step_extern/user/task_special"
#define STEPD_CG JOBCG "/step_extern/slurm"

static char dir[64], self[128], proc[128], cg2[128];

static void
put(const char *path, const char *fmt, ...)
{
	char full[512], *slash;
	va_list ap;
	FILE *f;

	snprintf(full, sizeof(full), "%s/%s", dir, path);
	for (slash = strchr(full + strlen(dir) + 1, '/'); slash;
	     slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		mkdir(full, 0755);
		*slash = '/';
	}
	f = fopen(full, "w");
	assert_non_null(f);
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fclose(f);
}

/* A process of the fake /proc: its uid, cgroup and title (argv area). */
static void
process(long pid, unsigned uid, const char *cgroup, const char *title,
	size_t area)
{
	char p[256], cmd[512];
	size_t n = strlen(title);

	snprintf(p, sizeof(p), "proc/%ld/status", pid);
	put(p, "Name:\tslurmstepd\nUmask:\t0022\nState:\tS (sleeping)\n"
	    "Tgid:\t%ld\nPid:\t%ld\nUid:\t%u\t%u\t%u\t%u\nGid:\t0\t0\t0\t0\n",
	    pid, pid, uid, uid, uid, uid);
	snprintf(p, sizeof(p), "proc/%ld/cgroup", pid);
	put(p, "0::%s\n", cgroup);
	/* setproctitle: the title cut to the area, padded with spaces */
	memset(cmd, ' ', area);
	memcpy(cmd, title, n < area ? n : area);
	cmd[area] = '\0';
	snprintf(p, sizeof(p), "%s/proc/%ld/cmdline", dir, pid);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fwrite(cmd, 1, area + 1, f);
	fclose(f);
}

static void
procs(const char *list)
{
	put("cg" STEPD_CG "/cgroup.procs", "%s", list);
}

static int
setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/jobshm-pamcg-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(self, sizeof(self), "%s/self.cgroup", dir);
	snprintf(proc, sizeof(proc), "%s/proc", dir);
	snprintf(cg2, sizeof(cg2), "%s/cg", dir);
	/* the extern stepd of job 4242, and the namespace/linux child */
	process(700, 0, STEPD_CG, "slurmstepd: [4242.extern]", 200);
	process(701, 0, STEPD_CG, "slurmstepd: [4242:namespace]", 200);
	procs("700\n701\n");
	put("self.cgroup", "0::" ADOPTED "\n");
	return 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == -1;
}

static int
find(uint32_t *id, char *why)
{
	struct cgjob_roots r = { self, proc, cg2 };

	*id = 0;
	return cgjob_find(&r, id, why, 512);
}

static void
test_v1_job_id(void **state)
{
	char why[512];
	uint32_t id;

	(void)state;
	put("self.cgroup", "9:name=systemd:/\n4:memory:/slurm/uid_1000/"
	    "job_57/step_extern/task_0\n2:cpuset:/slurm/uid_1000/job_57/"
	    "step_extern\n1:freezer:/slurm/uid_1000/job_57/step_extern\n0::/\n");
	assert_int_equal(find(&id, why), 1);
	assert_int_equal(id, 57);
	/* hierarchies that disagree */
	put("self.cgroup", "4:memory:/slurm/uid_1000/job_57/step_extern\n"
	    "1:freezer:/slurm/uid_1000/job_58/step_extern\n");
	assert_int_equal(find(&id, why), -1);
	assert_non_null(strstr(why, "two jobs"));
	/* not after a component naming Slurm; not a job id */
	put("self.cgroup", "4:memory:/user.slice/job_57\n1:freezer:/slurm/"
	    "job_057\n2:cpu:/slurm/job_4294967295\n3:pids:/slurm/job_\n");
	assert_int_equal(find(&id, why), 0);
	/* a SLUID on a v1 line is not looked up */
	put("self.cgroup", "4:memory:" ADOPTED "\n");
	assert_int_equal(find(&id, why), 0);
}

static void
test_v2_job_id(void **state)
{
	char why[512];
	uint32_t id;

	(void)state;
	/* CgroupJobIdPaths=yes, or Slurm before 26.05 */
	put("self.cgroup", "0::" SCOPE "/job_99/step_extern/user/task_special\n");
	assert_int_equal(find(&id, why), 1);
	assert_int_equal(id, 99);
	/* not in a job: sshd's own cgroup */
	put("self.cgroup", "0::/system.slice/ssh.service\n");
	assert_int_equal(find(&id, why), 0);
}

static void
test_v2_sluid(void **state)
{
	char why[512];
	uint32_t id;

	(void)state;
	put("self.cgroup", "0::" ADOPTED "\n");
	assert_int_equal(find(&id, why), 1);
	assert_int_equal(id, 4242);
	/* a stepmgr job's title; a title with no padding at all */
	process(700, 0, STEPD_CG, "slurmstepd: [4242.extern stepmgr]", 40);
	assert_int_equal(find(&id, why), 1);
	assert_int_equal(id, 4242);
	process(700, 0, STEPD_CG, "slurmstepd: [4242.extern]", 25);
	assert_int_equal(find(&id, why), 1);
	assert_int_equal(id, 4242);
	/* a pid that has gone (listed, no /proc entry) is skipped */
	procs("12345\n700\n");
	assert_int_equal(find(&id, why), 1);
	assert_int_equal(id, 4242);
	procs("700\n701\n");
	/* a SLUID not followed by step_extern: not an adopted session */
	put("self.cgroup", "0::" JOBCG "/step_0/user/task_0\n");
	assert_int_equal(find(&id, why), 0);
	put("self.cgroup", "0::" ADOPTED "\n");
	/* no cgroup v2 mounted */
	struct cgjob_roots r = { self, proc, NULL };
	assert_int_equal(cgjob_find(&r, &id, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "SLUID"));
}

/* Each way the extern stepd could be mistaken: refused, saying why. */
static void
test_v2_sluid_refused(void **state)
{
	char why[512], p[256];
	uint32_t id;

	(void)state;
	put("self.cgroup", "0::" ADOPTED "\n");
	/* its title cut short by a small argument area */
	process(700, 0, STEPD_CG, "slurmstepd: [4242.extern]", 17);
	assert_int_equal(find(&id, why), -1);
	assert_non_null(strstr(why, "no root slurmstepd"));
	/* another step's title; another program's */
	process(700, 0, STEPD_CG, "slurmstepd: [4242.batch]", 200);
	assert_int_equal(find(&id, why), -1);
	process(700, 0, STEPD_CG, "sleepy: [4242.extern]", 200);
	assert_int_equal(find(&id, why), -1);
	process(700, 0, STEPD_CG, "slurmstepd: [4242.extern] x", 200);
	assert_int_equal(find(&id, why), -1);
	process(700, 0, STEPD_CG, "slurmstepd: [04242.extern]", 200);
	assert_int_equal(find(&id, why), -1);
	/* a user's process with the title (any uid not root's) */
	process(700, 1000, STEPD_CG, "slurmstepd: [4243.extern]", 200);
	assert_int_equal(find(&id, why), -1);
	snprintf(p, sizeof(p), "proc/700/status");
	put(p, "Uid:\t0\t1000\t0\t0\n");
	assert_int_equal(find(&id, why), -1);
	/* root's, but in another cgroup (listed by a stale read) */
	process(700, 0, SCOPE "/sAAAAAAAAAAAAA/step_extern/slurm",
		"slurmstepd: [4243.extern]", 200);
	assert_int_equal(find(&id, why), -1);
	/* two extern stepds naming two jobs */
	process(700, 0, STEPD_CG, "slurmstepd: [4242.extern]", 200);
	process(702, 0, STEPD_CG, "slurmstepd: [4243.extern]", 200);
	procs("700\n702\n");
	assert_int_equal(find(&id, why), -1);
	assert_non_null(strstr(why, "two extern slurmstepd"));
	procs("700\n701\n");
	assert_int_equal(find(&id, why), 1);
	/* step_extern a link to another job's cgroup */
	snprintf(p, sizeof(p), "%s/cg" JOBCG "/step_extern", dir);
	char moved[256];
	snprintf(moved, sizeof(moved), "%s/cg" JOBCG "/real", dir);
	assert_int_equal(rename(p, moved), 0);
	assert_int_equal(symlink("real", p), 0);
	assert_int_equal(find(&id, why), -1);
	unlink(p);
	assert_int_equal(rename(moved, p), 0);
	assert_int_equal(find(&id, why), 1);
}

/* As root: files that are not root's only. */
static void
test_v2_sluid_owners(void **state)
{
	char why[512], p[256];
	uint32_t id;

	(void)state;
	put("self.cgroup", "0::" ADOPTED "\n");
	snprintf(p, sizeof(p), "%s/cg" STEPD_CG "/cgroup.procs", dir);
	assert_int_equal(chmod(p, 0666), 0);
	assert_int_equal(find(&id, why), -1);
	assert_non_null(strstr(why, "root's only"));
	assert_int_equal(chmod(p, 0644), 0);
	assert_int_equal(chown(p, 65534, 0), 0);
	assert_int_equal(find(&id, why), -1);
	assert_int_equal(chown(p, 0, 0), 0);
	assert_int_equal(find(&id, why), 1);
	/* the /proc entry of a process of another user */
	snprintf(p, sizeof(p), "%s/proc/700", dir);
	assert_int_equal(chown(p, 65534, 65534), 0);
	assert_int_equal(find(&id, why), -1);
	assert_int_equal(chown(p, 0, 0), 0);
	assert_int_equal(find(&id, why), 1);
	assert_int_equal(id, 4242);
}

static void
test_v2_mount(void **state)
{
	char buf[256], mi[256];

	(void)state;
	put("mountinfo", "22 1 0:21 / /sys ro - sysfs sysfs rw\n"
	    "30 22 0:26 /sub /sys/fs/cgroup/x rw - cgroup2 cgroup2 rw\n"
	    "31 22 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n");
	snprintf(mi, sizeof(mi), "%s/mountinfo", dir);
	assert_int_equal(cgjob_v2_mount(mi, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/sys/fs/cgroup");
	put("mountinfo", "35 24 0:30 / /sys/fs/cgroup/memory rw - cgroup "
	    "cgroup rw,memory\n");
	assert_int_equal(cgjob_v2_mount(mi, buf, sizeof(buf)), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v1_job_id),
		cmocka_unit_test(test_v2_job_id),
		cmocka_unit_test(test_v2_mount),
	};
	/* the fixture's files must be root's, as a real stepd's are */
	const struct CMUnitTest sluid[] = {
		cmocka_unit_test_setup_teardown(test_v2_sluid, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_v2_sluid_refused, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_v2_sluid_owners, setup,
						teardown),
	};
	int rc = cmocka_run_group_tests_name("pamcg", tests, setup, teardown);

	if (geteuid() != 0) {
		fprintf(stderr, "test_pamcg: the SLUID tests need root (root's "
			"fixture files): SKIPPED\n");
		return rc ? rc : 77;
	}
	return rc | cmocka_run_group_tests_name("pamcg-sluid", sluid, NULL,
						 NULL);
}
