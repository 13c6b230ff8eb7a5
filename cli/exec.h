/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef JOBSHM_CLI_EXEC_H
#define JOBSHM_CLI_EXEC_H

/* jobshm exec: av[0] is "exec"; returns an exit code or execs. */
int jobshm_cli_exec(int ac, char **av);

#endif
