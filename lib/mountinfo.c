/* SPDX-License-Identifier: GPL-2.0-or-later */
/* One reader of /proc/PID/mountinfo for every place that needs it. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

int
jobshm_mountinfo_each(const char *file, jobshm_mount_f fn, void *arg)
{
	char line[1024], dev[32], root[320], mp[320];
	struct jobshm_mountinfo mi = { 0, dev, root, mp, "" };
	const char *sep;
	FILE *f = fopen(file, "re");
	int rc = 0;

	if (!f)
		return -1;
	while (rc == 0 && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%d %*s %31s %319s %319s", &mi.id, dev, root,
			   mp) != 4)
			continue;
		sep = strstr(line, " - ");
		mi.super = sep ? sep + 3 : "";
		rc = fn(&mi, arg);
	}
	fclose(f);
	return rc;
}
