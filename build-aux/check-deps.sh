#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Before the first compile: the headers jobshm builds against, each with
# the Debian package that has it.  Names every missing one and `make deps`
# in one message, instead of the compiler's first "No such file".
#   check-deps.sh CC "CFLAGS"      (exit 1 if any is missing)
cc=$1 flags=$2
missing=
for pair in libconfig.h:libconfig-dev hwloc.h:libhwloc-dev json-c/json.h:libjson-c-dev \
	    numa.h:libnuma-dev slurm/spank.h:libslurm-dev \
	    security/pam_appl.h:libpam0g-dev Python.h:python3-dev; do
	h=${pair%%:*} pkg=${pair#*:}
	# shellcheck disable=SC2086
	printf '#include <%s>\n' "$h" | $cc $flags -E -x c - >/dev/null 2>&1 ||
		missing="$missing $pkg"
done
[ -z "$missing" ] && exit 0
echo "make: missing build dependencies:$missing" >&2
echo "make: run 'make deps' (as root: tests/cluster/deps.sh installs them" \
     "and what the tests need), or install them with apt-get" >&2
exit 1
