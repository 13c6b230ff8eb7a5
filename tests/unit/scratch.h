/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The scratch fixture of the unit tests that mount job tmpfs (include
 * after cmocka.h and jobshm.h): a fresh base under /tmp for each group,
 * unmounted and removed after it, and jobs of user nobody.
 */
#ifndef JOBSHM_TEST_SCRATCH_H
#define JOBSHM_TEST_SCRATCH_H

static char top[64];
/* (the top of base_path becomes a private mount: teardown unmounts it) */
static struct jobshm_conf conf;

static int
setup(void **state)
{
	(void)state;
	snprintf(top, sizeof(top), "/tmp/jobshm-unit-XXXXXX");
	if (!mkdtemp(top))
		return -1;
	chmod(top, 0755);
	jobshm_conf_defaults(&conf);
	snprintf(conf.base_path, sizeof(conf.base_path), "%s/%%n", top);
	return 0;
}

static int
teardown(void **state)
{
	char cmd[256];

	(void)state;
	snprintf(cmd, sizeof(cmd), "umount -R -l %s/*/* 2>/dev/null; "
		 "umount -l %s 2>/dev/null; rm -rf %s", top, top, top);
	return system(cmd) == -1;
}

static void
job_for(struct jobshm_job *job, const char *node, uint32_t id)
{
	jobshm_err_t err;

	assert_int_equal(jobshm_job_init(job, &conf, node, id, &err), 0);
	job->uid = 65534;
	job->gid = 65534;
}

/*
 * A loop-mounted image of SIZE made with MKFS ("mkfs.xfs -q -f", ...),
 * mounted with OPTS ("loop,prjquota") at top/NAME (written to mnt);
 * 0, or -1 where this kernel cannot (the caller skips).
 */
static inline int
loop_mount(const char *name, const char *size, const char *mkfs,
	   const char *opts, char *mnt, size_t len)
{
	char cmd[1024];

	snprintf(mnt, len, "%s/%s", top, name);
	snprintf(cmd, sizeof(cmd), "truncate -s %s %s.img && %s %s.img >/dev/null "
		 "&& mkdir %s && mount -o %s %s.img %s 2>/dev/null", size, mnt,
		 mkfs, mnt, mnt, opts, mnt, mnt);
	return system(cmd) == 0 ? 0 : -1;
}

#endif
