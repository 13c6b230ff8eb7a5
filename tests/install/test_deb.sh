#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The Debian package: lintian reports no error, and it holds the plugin in
# Slurm's plugin directory, the programs, the module, the conffile and the
# plugstack line, and depends on the Slurm release it was built for.
set -euo pipefail
deb=${1:?usage: test_deb.sh FILE.deb}
fail() { echo "test_deb: $*" >&2; exit 1; }
triplet=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
files=$(dpkg -c "$deb" | awk '{print $6}')
for f in ./usr/lib/$triplet/slurm-wlm/jobshm.so ./usr/bin/jobshm \
	 ./usr/bin/enqueue_jobshm ./usr/lib/python3/dist-packages/jobshm/__init__.py \
	 ./etc/slurm/jobshm.conf ./etc/slurm/plugstack.conf.d/jobshm.conf \
	 ./usr/share/man/man8/jobshm.8.gz ./lib/$triplet/security/pam_jobshm.so \
	 ./usr/share/man/man8/pam_jobshm.8.gz; do
	grep -qxF "$f" <<<"$files" || fail "$deb lacks $f"
done
# every module of python/jobshm/ is packaged and imports from the package
x=$(mktemp -d /tmp/jobshm-deb.XXXXXX)
trap 'rm -rf "$x"' EXIT
dpkg-deb -x "$deb" "$x"
/usr/bin/python3 -I "$(dirname "$0")/import_all.py" "$x/usr/lib/python3/dist-packages" >/dev/null ||
	fail "$deb: the Python package is not whole"
dpkg-deb -f "$deb" Depends | grep -q "slurmd (>= $(dpkg-query -W -f '${Version}' \
	libslurm-dev | cut -d. -f1-2)~)" || fail "no Depends on the Slurm it was built for"
dpkg-deb --ctrl-tarfile "$deb" | tar -xOf - ./conffiles | grep -qx /etc/slurm/jobshm.conf ||
	fail "/etc/slurm/jobshm.conf is not a conffile"
out=$(lintian --allow-root "$deb" 2>&1 || true)
if grep -q '^E:' <<<"$out"; then
	echo "$out" >&2
	fail "lintian reports errors"
fi
echo "test_deb: 1 passed, 0 failed ($(grep -c '^W:' <<<"$out" || true) lintian warning(s))"
