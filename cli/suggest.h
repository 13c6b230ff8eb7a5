/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef JOBSHM_CLI_SUGGEST_H
#define JOBSHM_CLI_SUGGEST_H

/* jobshm suggest: av[0] is "suggest"; returns an exit code. */
int jobshm_cli_suggest(int ac, char **av);

#endif
