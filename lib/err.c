/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Error messages kept in the caller's buffer. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "internal.h"

int
jobshm_fail(jobshm_err_t *err, const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	if (err) {
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	errno = saved;
	return -1;
}
