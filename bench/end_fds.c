/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * One job's end while the node's processes hold many descriptors: a tmpfs
 * job (16 MiB, 8 MiB written) whose end cannot seal (a file the job's
 * user unlinked and keeps open: the worst case, where jobshm 0.4 searched
 * every process on the node), with P processes of the job's user holding
 * F descriptors each (of /dev/null: not the job's) beside it.  Prints the
 * end's wall time (jobshm_job_cleanup) in ms.
 *
 *   end_fds P F DIR      (DIR: an empty directory of root's)
 *
 * Needs root.  Built and run by bench/end_fds.py.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "jobshm.h"
#include "internal.h"

#define NOBODY 65534

static double
ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* A process of the job's user with f descriptors open; it says when. */
static pid_t
fd_holder(int f)
{
	struct rlimit r = { (rlim_t)f + 64, (rlim_t)f + 64 };
	int ready[2], fd;
	pid_t pid;

	if (pipe(ready) < 0)
		return -1;
	if ((pid = fork()) == 0) {
		close(ready[0]);
		if (setrlimit(RLIMIT_NOFILE, &r) < 0 || setgid(NOBODY) < 0 ||
		    setuid(NOBODY) < 0 || (fd = open("/dev/null", O_RDONLY)) < 0)
			_exit(1);
		for (int i = 1; i < f; i++)
			if (dup(fd) < 0)
				_exit(2);
		if (write(ready[1], "x", 1) != 1)
			_exit(3);
		pause();
		_exit(0);
	}
	close(ready[1]);
	if (pid < 0 || read(ready[0], &fd, 1) != 1)
		pid = -1;
	close(ready[0]);
	return pid;
}

int
main(int argc, char **argv)
{
	struct jobshm_conf conf;
	struct jobshm_job job;
	jobshm_err_t err;
	char path[400];
	pid_t holders[64];
	int p, f, fd, rc;
	double t;

	if (argc != 4 || (p = atoi(argv[1])) < 0 || p > 64 ||
	    (f = atoi(argv[2])) < 1)
		return fprintf(stderr, "usage: end_fds P F DIR\n"), 2;
	jobshm_conf_defaults(&conf);
	snprintf(conf.base_path, sizeof(conf.base_path), "%s/%%n", argv[3]);
	if (jobshm_job_init(&job, &conf, "b1", 4242, &err) < 0)
		return fprintf(stderr, "end_fds: %s\n", err.msg), 1;
	job.uid = job.gid = NOBODY;
	if (jobshm_job_setup(&job, JOBSHM_TMPFS, 16 << 20, NULL, &err) < 0)
		return fprintf(stderr, "end_fds: %s\n", err.msg), 1;
	snprintf(path, sizeof(path), "%s/kept", job.path);
	fd = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0 || posix_fallocate(fd, 0, 8 << 20) != 0 || unlink(path) < 0)
		return fprintf(stderr, "end_fds: %s: %m\n", path), 1;
	for (int i = 0; i < p; i++)
		if ((holders[i] = fd_holder(f)) < 0)
			return fprintf(stderr, "end_fds: holder: %m\n"), 1;
	t = ms();
	rc = jobshm_job_cleanup(&job, &err);
	t = ms() - t;
	printf("%.3f %d\n", t, rc);
	for (int i = 0; i < p; i++) {
		kill(holders[i], SIGKILL);
		waitpid(holders[i], &rc, 0);
	}
	close(fd);
	jobshm_job_cleanup(&job, &err);	/* the frozen rest */
	return 0;
}
