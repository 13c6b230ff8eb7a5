#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The RPM (built here with Debian's rpm; it cannot be installed here): its
# file list, its config files and its dependency on the Slurm release.
set -euo pipefail
rpmf=${1:?usage: test_rpm.sh FILE.rpm}
fail() { echo "test_rpm: $*" >&2; exit 1; }
files=$(rpm -qlp "$rpmf" 2>/dev/null)
for f in /usr/bin/jobshm /usr/bin/enqueue_jobshm /etc/slurm/jobshm.conf \
	 /etc/slurm/plugstack.conf.d/jobshm.conf /usr/share/man/man8/jobshm.8; do
	grep -qxF "$f" <<<"$files" || fail "$rpmf lacks $f"
done
grep -q '/slurm/jobshm.so$' <<<"$files" || fail "no plugin in $rpmf"
grep -q '/security/pam_jobshm.so$' <<<"$files" || fail "no PAM module in $rpmf"
grep -q '/jobshm/__init__.py$' <<<"$files" || fail "no Python module in $rpmf"
# every module of python/jobshm/ is packaged and imports from the package
x=$(mktemp -d /tmp/jobshm-rpm.XXXXXX)
trap 'rm -rf "$x"' EXIT
rpm2cpio "$rpmf" | (cd "$x" && cpio -idm --quiet)
init=$(cd "$x" && find . -path '*/jobshm/__init__.py' | head -1)
/usr/bin/python3 -I "$(dirname "$0")/import_all.py" "$x/${init%/jobshm/__init__.py}" >/dev/null ||
	fail "$rpmf: the Python package is not whole"
[ "$(rpm -qp --configfiles "$rpmf" 2>/dev/null | sort)" = "/etc/slurm/jobshm.conf
/etc/slurm/plugstack.conf.d/jobshm.conf" ] || fail "config files are not %config"
mm=$(dpkg-query -W -f '${Version}' libslurm-dev | cut -d. -f1-2)
rpm -qp --requires "$rpmf" 2>/dev/null | grep -qx "slurm-slurmd >= $mm" ||
	fail "no Requires on slurm-slurmd >= $mm"
rpm -qp --conflicts "$rpmf" 2>/dev/null | grep -q "slurm-slurmd >= " ||
	fail "no Conflicts with the next Slurm release"
echo "test_rpm: 1 passed, 0 failed"
