/* One reader of /proc/PID/mountinfo for the three places that need it. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

int
jobshm_mountinfo_each(const char *file, jobshm_mount_f fn, void *arg)
{
	char line[1024], dev[32], root[320], mp[320];
	const char *sep;
	FILE *f = fopen(file, "re");
	int rc = 0;

	if (!f)
		return -1;
	while (rc == 0 && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%*s %*s %31s %319s %319s", dev, root, mp) != 3)
			continue;
		sep = strstr(line, " - ");
		rc = fn(dev, root, mp, sep ? sep + 3 : "", arg);
	}
	fclose(f);
	return rc;
}
