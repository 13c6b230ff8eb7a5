/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef JOBSHM_CLI_COMMON_H
#define JOBSHM_CLI_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <sys/types.h>

/* The second line of every usage error, as sbatch and coreutils print
 * ("Try 'jobshm CMD --help' ..."; cmd NULL: the global help); 2. */
int jobshm_cli_try_help(const char *cmd);

/* "jobshm: CMD: message" on stderr, then the line above; 2. */
int jobshm_cli_usage_error(const char *cmd, const char *fmt, va_list ap);

/* The user's name, else the uid as a number. */
const char *jobshm_cli_user(uid_t uid, char *buf, size_t len);

#endif
