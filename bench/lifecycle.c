/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The library's cost of a job's start and end with J jobs on the node,
 * without Slurm: J jobs set up one after another (the tmpfs mounted, the
 * job's namespace made by a task joining it), then all ended (cleanup),
 * in the base DIR/%n (DIR: an empty directory of root's, mounted private
 * at the end); run it inside `unshare -m --propagation shared` (a systemd
 * node's mounts).  Prints one line per job:
 *
 *   j setup_ms namespace_ms cleanup_ms
 *
 * Needs root.  Built and run by bench/lifecycle.py:  lifecycle J DIR
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "jobshm.h"
#include "internal.h"

#define MAXJOBS 1024

static double
ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* A task of the job joins its namespace (made by the first) and exits. */
static int
join(const struct jobshm_job *job, const char *target)
{
	jobshm_err_t err;
	int status;
	pid_t pid = fork();

	if (pid == 0)
		_exit(jobshm_mntns_join(job, target, &err) == 0 ? 0 : 1);
	return pid > 0 && waitpid(pid, &status, 0) == pid &&
	       WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

int
main(int argc, char **argv)
{
	static struct jobshm_job jobs[MAXJOBS];
	static double t[MAXJOBS][3];
	struct jobshm_conf conf;
	char target[300];
	jobshm_err_t err;
	int n = argc > 2 ? atoi(argv[1]) : 0;
	double a;

	if (n < 1 || n > MAXJOBS) {
		fprintf(stderr, "lifecycle: usage: lifecycle J DIR (J: 1..%d)\n",
			MAXJOBS);
		return 2;
	}
	snprintf(target, sizeof(target), "%s.target", argv[2]);
	mkdir(target, 0755);
	jobshm_conf_defaults(&conf);
	snprintf(conf.base_path, sizeof(conf.base_path), "%s/%%n", argv[2]);
	for (int j = 0; j < n; j++) {
		if (jobshm_job_init(&jobs[j], &conf, "n1", 1000 + j, &err) < 0)
			goto fail;
		jobs[j].uid = jobs[j].gid = 65534;
		a = ms();
		if (jobshm_job_setup(&jobs[j], JOBSHM_TMPFS, 1 << 20, NULL, &err) < 0)
			goto fail;
		t[j][0] = ms() - a;
		a = ms();
		if (join(&jobs[j], target) < 0) {
			snprintf(err.msg, sizeof(err.msg), "job %d: join failed", j);
			goto fail;
		}
		t[j][1] = ms() - a;
	}
	for (int j = 0; j < n; j++) {
		a = ms();
		if (jobshm_job_cleanup(&jobs[j], &err) != 0)
			goto fail;
		t[j][2] = ms() - a;
	}
	for (int j = 0; j < n; j++)
		printf("%d %.3f %.3f %.3f\n", j + 1, t[j][0], t[j][1], t[j][2]);
	rmdir(target);
	return 0;
fail:
	fprintf(stderr, "lifecycle: %s\n", err.msg);
	return 1;
}
