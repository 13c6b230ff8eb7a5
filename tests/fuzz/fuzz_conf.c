/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libFuzzer target: the config loader on arbitrary files. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "jobshm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct jobshm_conf conf;
	jobshm_err_t err;
	char path[64];
	int fd = memfd_create("jobshm-fuzz", MFD_CLOEXEC);

	if (fd < 0)
		return 0;
	if (write(fd, data, len) != (ssize_t)len) {
		close(fd);
		return 0;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	jobshm_conf_defaults(&conf);
	if (jobshm_conf_load(&conf, path, &err) == 0) {
		if (conf.base_path[0] != '/' || strstr(conf.base_path, "/../"))
			abort();
		if (strstr(conf.base_path, "%n") != strrchr(conf.base_path, '%'))
			abort();	/* at most one %n, and only %n */
		for (int i = 0; i < conf.n_nvram_paths; i++)
			if (conf.nvram_paths[i][0] != '/' ||
			    strstr(conf.nvram_paths[i], "/../"))
				abort();
	} else if (strncmp(err.msg, path, strlen(path)) != 0) {
		abort();	/* errors always start with the file name */
	}
	close(fd);
	return 0;
}
