/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Error messages kept in the caller's buffer. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

/*
 * The code is the errno of the call that failed when the message reports
 * it (%m), else EINVAL: a refusal of what was asked.
 */
static void
vfail(jobshm_err_t *err, int code, const char *fmt, va_list ap)
{
	int saved = errno;

	if (err) {
		err->code = code;
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	}
	errno = saved;
}

int
jobshm_fail(jobshm_err_t *err, const char *fmt, ...)
{
	va_list ap;
	int code = strstr(fmt, "%m") && errno ? errno : EINVAL;

	va_start(ap, fmt);
	vfail(err, code, fmt, ap);
	va_end(ap);
	return -1;
}

int
jobshm_fail_code(jobshm_err_t *err, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(err, code, fmt, ap);
	va_end(ap);
	return -1;
}
