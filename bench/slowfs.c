/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * slowfs: a read-only FUSE passthrough of a directory that adds a fixed
 * latency to every metadata operation (getattr, lookup by path, opendir,
 * readdir, open, readlink) -- a stand-in for a parallel filesystem's
 * metadata server under load -- and counts the operations that reach it.
 *
 *   slowfs SRC MNT DELAY_US COUNTFILE [fuse options]
 *
 * On SIGUSR1 (and at unmount) it writes "metadata N reads M bytes B" to
 * COUNTFILE.  For bench/stage_bench.py only.
 */
#define FUSE_USE_VERSION 31
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse3/fuse.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int src;                 /* the source directory */
static long delay_us;
static const char *countfile;
static atomic_long n_meta, n_read, n_bytes;

static void
slow(void)
{
	struct timespec t = { delay_us / 1000000, (delay_us % 1000000) * 1000 };

	atomic_fetch_add(&n_meta, 1);
	nanosleep(&t, NULL);
}

static const char *
rel(const char *path)
{
	return path[1] ? path + 1 : ".";
}

static int
s_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	(void)fi;
	slow();
	return fstatat(src, rel(path), st, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

static int
s_readlink(const char *path, char *buf, size_t len)
{
	ssize_t n;

	slow();
	n = readlinkat(src, rel(path), buf, len - 1);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return 0;
}

static int
s_open(const char *path, struct fuse_file_info *fi)
{
	int fd;

	slow();
	if ((fi->flags & O_ACCMODE) != O_RDONLY)
		return -EROFS;
	fd = openat(src, rel(path), O_RDONLY);
	if (fd < 0)
		return -errno;
	fi->fh = (uint64_t)fd;
	fi->keep_cache = 1;
	return 0;
}

static int
s_read(const char *path, char *buf, size_t len, off_t off,
       struct fuse_file_info *fi)
{
	ssize_t n = pread((int)fi->fh, buf, len, off);

	(void)path;
	atomic_fetch_add(&n_read, 1);
	if (n > 0)
		atomic_fetch_add(&n_bytes, n);
	return n < 0 ? -errno : (int)n;
}

static int
s_release(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	close((int)fi->fh);
	return 0;
}

static int
s_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
	  struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	struct dirent *d;
	DIR *dir;
	int fd;

	(void)off;
	(void)fi;
	(void)flags;
	slow();
	fd = openat(src, rel(path), O_RDONLY | O_DIRECTORY);
	if (fd < 0 || !(dir = fdopendir(fd)))
		return fd < 0 ? -errno : (close(fd), -ENOMEM);
	while ((d = readdir(dir)))
		if (fill(buf, d->d_name, NULL, 0, 0))
			break;
	closedir(dir);
	return 0;
}

static void
write_counts(void)
{
	FILE *f = fopen(countfile, "w");

	if (!f)
		return;
	fprintf(f, "metadata %ld reads %ld bytes %ld\n", atomic_load(&n_meta),
		atomic_load(&n_read), atomic_load(&n_bytes));
	fclose(f);
}

static void
on_usr1(int sig)
{
	(void)sig;
	write_counts();   /* not async-signal-safe in general; a bench tool */
}

static void
s_destroy(void *data)
{
	(void)data;
	write_counts();
}

static void *
s_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	/* no client-side caching of names or attributes (every stat and
	 * lookup reaches the "metadata server"), but data reads do not
	 * revalidate attributes: a read is a data operation */
	conn->want &= ~(unsigned)FUSE_CAP_AUTO_INVAL_DATA;
	cfg->entry_timeout = cfg->attr_timeout = cfg->negative_timeout = 0;
	return NULL;
}

static const struct fuse_operations ops = {
	.init = s_init, .getattr = s_getattr, .readlink = s_readlink,
	.open = s_open, .read = s_read, .release = s_release,
	.readdir = s_readdir, .destroy = s_destroy,
};

int
main(int ac, char **av)
{
	char *fargs[16] = { av[0] };
	int i, n = 1;

	if (ac < 5 || ac > 14) {
		fprintf(stderr, "usage: slowfs SRC MNT DELAY_US COUNTFILE "
			"[fuse options]\n");
		return 2;
	}
	src = open(av[1], O_RDONLY | O_DIRECTORY);
	if (src < 0) {
		fprintf(stderr, "slowfs: '%s': %s\n", av[1], strerror(errno));
		return 1;
	}
	delay_us = atol(av[3]);
	countfile = av[4];
	signal(SIGUSR1, on_usr1);
	fargs[n++] = av[2];
	for (i = 5; i < ac; i++)
		fargs[n++] = av[i];
	return fuse_main(n, fargs, &ops, NULL);
}
