/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What a step left in the job's shm: the files made since it started
 * (their birth time, else their change time, against the step's start)
 * that are still there when its last task has exited, by the largest
 * name prefixes.  Read from the job's tmpfs itself (the host's view, in
 * which no user can mount), walked without following a link or leaving
 * it, bounded; nothing is removed (a segment kept for the next step is
 * normal) and no other process is looked at.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "internal.h"

#define MAX_ENTRIES 200000	/* a walk at most this long          */
#define MAX_DEPTH 16
#define PREFIXES 32

struct prefix {
	char name[24];
	uint64_t bytes;
};

struct tally {
	struct timespec since;
	dev_t dev;
	unsigned long seen, files;
	uint64_t bytes;
	struct prefix p[PREFIXES];
	int np;
};

/* "nccl-" of "nccl-1234", "torch_" of "torch_shm_x", "x" of "x": the
 * letters up to the first separator or digit, and that separator. */
static void
prefix_of(const char *name, char *out, size_t len)
{
	size_t n = 0;

	while (name[n] && n + 2 < len && isalpha((unsigned char)name[n]))
		n++;
	if (n && (name[n] == '-' || name[n] == '_' || name[n] == '.'))
		n++;
	if (!n)
		n = strnlen(name, len - 2) ? 1 : 0;
	snprintf(out, len, "%.*s", (int)n, name);
}

static void
add(struct tally *t, const char *name, uint64_t bytes)
{
	char pre[sizeof(t->p[0].name)];
	int i;

	prefix_of(name, pre, sizeof(pre));
	for (i = 0; i < t->np && strcmp(t->p[i].name, pre); i++)
		;
	if (i == t->np && t->np == PREFIXES)
		i = PREFIXES - 1;	/* the rest, with the last */
	else if (i == t->np)
		snprintf(t->p[t->np++].name, sizeof(pre), "%s", pre);
	t->p[i].bytes += bytes;
	t->files++;
	t->bytes += bytes;
}

static int
newer(const struct statx *sx, const struct timespec *since)
{
	const struct statx_timestamp *ts = sx->stx_mask & STATX_BTIME ?
					    &sx->stx_btime : &sx->stx_ctime;

	return ts->tv_sec > since->tv_sec || (ts->tv_sec == since->tv_sec &&
					      ts->tv_nsec >= since->tv_nsec);
}

static void
walk(int dir, struct tally *t, int depth)
{
	struct dirent *d;
	struct statx sx;
	DIR *dp = fdopendir(dir);
	int sub;

	if (!dp) {
		close(dir);
		return;
	}
	while ((d = readdir(dp)) && t->seen++ < MAX_ENTRIES) {
		if (!strcmp(d->d_name, ".") || !strcmp(d->d_name, ".."))
			continue;
		if (statx(dirfd(dp), d->d_name, AT_SYMLINK_NOFOLLOW |
			  AT_STATX_DONT_SYNC, STATX_BASIC_STATS | STATX_BTIME,
			  &sx) < 0 ||
		    makedev(sx.stx_dev_major, sx.stx_dev_minor) != t->dev)
			continue;
		if (S_ISREG(sx.stx_mode) && newer(&sx, &t->since))
			add(t, d->d_name, sx.stx_blocks * 512);
		else if (S_ISDIR(sx.stx_mode) && depth < MAX_DEPTH &&
			 (sub = jobshm_open_here(dirfd(dp), d->d_name,
						 O_RDONLY | O_DIRECTORY)) >= 0)
			walk(sub, t, depth + 1);
	}
	closedir(dp);
}

/* The three prefixes that hold most, as "nccl-* 1.0G, torch_* 0.1G". */
static void
largest(struct tally *t, char *buf, size_t len)
{
	char sz[32];
	size_t n = 0;

	buf[0] = '\0';
	for (int k = 0; k < 3 && k < t->np; k++) {
		int best = k;

		for (int i = k + 1; i < t->np; i++)
			if (t->p[i].bytes > t->p[best].bytes)
				best = i;
		struct prefix tmp = t->p[k];

		t->p[k] = t->p[best];
		t->p[best] = tmp;
		n += (size_t)snprintf(buf + n, n < len ? len - n : 0, "%s%s* %s",
				      k ? ", " : "", t->p[k].name,
				      jobshm_size_format(t->p[k].bytes, sz,
							 sizeof(sz)));
	}
}

int
jobshm_leftovers(int root, const struct timespec *since, uint64_t *bytes,
		 unsigned long *files, char *prefixes, size_t len)
{
	struct tally t = { .since = *since };
	struct stat st;
	int dir = openat(root, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (dir < 0 || fstat(dir, &st) < 0) {
		if (dir >= 0)
			close(dir);
		return -1;
	}
	t.dev = st.st_dev;
	walk(dir, &t, 0);
	largest(&t, prefixes, len);
	*bytes = t.bytes;
	*files = t.files;
	return 0;
}
