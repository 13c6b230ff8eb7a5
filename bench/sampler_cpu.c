/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The usage sampler's own CPU in its worst case, without Slurm (as root):
 * jobshm_sampler_start(job, 1) on a 256M job tmpfs made under a scratch
 * base in /tmp, the process's main thread idle in waitpid, and a child
 * that for SECONDS (argv[1], default 5) makes a file in the shm, writes
 * 64 MiB into it and removes it, again and again (an inotify window open
 * all the time).  Prints the samples taken and the process's CPU
 * (getrusage RUSAGE_SELF: the sampler thread's, in effect).
 *
 *   cc -O2 -Ilib -o /tmp/sampler_cpu bench/sampler_cpu.c $(LIB_SRC of
 *   the Makefile) -lconfig -lhwloc -lnuma -lpthread && /tmp/sampler_cpu 10
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "jobshm.h"
#include "internal.h"
static char top[64]; static struct jobshm_conf conf;
static double secs(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec/1e9;}
int main(int argc, char **argv)
{
	struct jobshm_job job; jobshm_err_t err; struct rusage a, b;
	unsigned long n, f, e; int w; double T = argc > 1 ? atof(argv[1]) : 5;
	static char buf[1 << 20];
	snprintf(top, sizeof(top), "/tmp/jobshm-cpu-XXXXXX"); mkdtemp(top); chmod(top, 0755);
	jobshm_conf_defaults(&conf);
	snprintf(conf.base_path, sizeof(conf.base_path), "%s/%%n", top);
	jobshm_job_init(&job, &conf, "n1", 99, &err); job.uid = job.gid = 65534;
	if (jobshm_job_setup(&job, JOBSHM_TMPFS, 256 << 20, NULL, &err)) { fprintf(stderr, "%s\n", err.msg); return 1; }
	jobshm_sampler_t *s = jobshm_sampler_start(&job, 1, &err);
	getrusage(RUSAGE_SELF, &a);
	pid_t pid = fork();
	if (pid == 0) {
		double end = secs() + T; long k = 0; char p[400];
		while (secs() < end) {
			snprintf(p, sizeof(p), "%s/w%ld", job.path, k++ % 8);
			int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
			for (int i = 0; i < 64; i++) if (write(fd, buf, sizeof(buf)) < 0) break;
			close(fd); unlink(p);
		}
		printf("writer: %ld files, %.0f MiB/s\n", k, k * 64 / T);
		fflush(stdout);
		_exit(0);
	}
	waitpid(pid, NULL, 0);
	getrusage(RUSAGE_SELF, &b);
	jobshm_sampler_counts(s, &n, &f, &e, &w);
	double cpu = (b.ru_utime.tv_sec - a.ru_utime.tv_sec + b.ru_stime.tv_sec - a.ru_stime.tv_sec) +
		(b.ru_utime.tv_usec - a.ru_utime.tv_usec + b.ru_stime.tv_usec - a.ru_stime.tv_usec) / 1e6;
	printf("sampler over %.0f s: %lu samples (%lu fast), %lu wake-ups, CPU %.1f ms = %.2f ms/s (%.3f%% of a CPU)\n",
	       T, n, f, e, cpu * 1e3, cpu * 1e3 / T, cpu * 100 / T);
	jobshm_sampler_stop(s);
	jobshm_job_cleanup(&job, &err);
	char cmd[300]; snprintf(cmd, sizeof(cmd), "umount -R -l %s/*/* 2>/dev/null; umount -l %s 2>/dev/null; rm -rf %s", top, top, top);
	return system(cmd);
}
