/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What the admin command's commands say alike (jobshm.c, exec.c,
 * suggest.c). */
#include <pwd.h>
#include <stdio.h>

#include "common.h"

static const char prog[] = "jobshm";

int
jobshm_cli_try_help(const char *cmd)
{
	fprintf(stderr, "Try '%s%s%s --help' for more information.\n", prog,
		cmd ? " " : "", cmd ? cmd : "");
	return 2;
}

int
jobshm_cli_usage_error(const char *cmd, const char *fmt, va_list ap)
{
	fprintf(stderr, "%s: %s%s", prog, cmd ? cmd : "", cmd ? ": " : "");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	return jobshm_cli_try_help(cmd);
}

const char *
jobshm_cli_user(uid_t uid, char *buf, size_t len)
{
	struct passwd *pw = getpwuid(uid);

	if (pw)
		snprintf(buf, len, "%s", pw->pw_name);
	else
		snprintf(buf, len, "%u", (unsigned)uid);
	return buf;
}
