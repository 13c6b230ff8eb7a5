/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * pam_driver SERVICE USER CMD [ARGS...]: what sshd does with PAM, in
 * one process, for tests/integration/test_pam.py.  As root: the account
 * stack (pam_slurm_adopt adopts this process into the user's job), the
 * session stack (pam_jobshm), then the session's environment, and exec
 * CMD as USER in this same process, which stays in the session.
 *
 * Exit: 3 the account stack refused, 4 the session stack failed, else
 * CMD's.  PAM's info and error messages go to stderr as "pam: ...".
 */
#define _GNU_SOURCE
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <security/pam_appl.h>

static int
conv(int n, const struct pam_message **msg, struct pam_response **resp,
     void *arg)
{
	struct pam_response *r = calloc((size_t)n, sizeof(*r));

	(void)arg;
	if (!r)
		return PAM_BUF_ERR;
	for (int i = 0; i < n; i++)
		if (msg[i]->msg_style == PAM_TEXT_INFO ||
		    msg[i]->msg_style == PAM_ERROR_MSG)
			fprintf(stderr, "pam: %s\n", msg[i]->msg);
	*resp = r;
	return PAM_SUCCESS;
}

static int
become(const char *user)
{
	struct passwd *pw = getpwnam(user);

	if (!pw || initgroups(user, pw->pw_gid) < 0 ||
	    setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0) {
		perror("pam_driver: become the user");
		return -1;
	}
	return 0;
}

int
main(int ac, char **av)
{
	struct pam_conv c = { conv, NULL };
	pam_handle_t *pamh = NULL;
	char **env;
	int rc;

	if (ac < 4) {
		fprintf(stderr, "usage: pam_driver SERVICE USER CMD [ARGS...]\n");
		return 2;
	}
	if (pam_start(av[1], av[2], &c, &pamh) != PAM_SUCCESS)
		return 2;
	if ((rc = pam_acct_mgmt(pamh, 0)) != PAM_SUCCESS) {
		fprintf(stderr, "pam_driver: account: %s\n",
			pam_strerror(pamh, rc));
		return 3;
	}
	if ((rc = pam_open_session(pamh, 0)) != PAM_SUCCESS) {
		fprintf(stderr, "pam_driver: session: %s\n",
			pam_strerror(pamh, rc));
		return 4;
	}
	for (env = pam_getenvlist(pamh); env && *env; env++)
		putenv(*env);
	if (become(av[2]) < 0)
		return 5;
	execvp(av[3], av + 3);
	perror("pam_driver: exec");
	return 127;
}
