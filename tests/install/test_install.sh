#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Install into a temporary DESTDIR, check the file list and pkg-config,
# then uninstall and check nothing is left (as lz4's test_install.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(mktemp -d)
chmod 755 "$root"	# the runtime's tests use it as other users too
trap 'rm -rf "$root"' EXIT

pyver=$(/usr/bin/python3 -c 'import sys; print("python%d.%d" % sys.version_info[:2])')
# the default install place of the module must be on Debian's sys.path
/usr/bin/python3 -c "import sys; assert '/usr/local/lib/$pyver/dist-packages' in sys.path" || {
	echo "test_install: /usr/local/lib/$pyver/dist-packages is not on sys.path" >&2
	exit 1; }
# no install trap: a plain `make` first, then install to another PREFIX:
# the plugin must run the sweep command where it was installed
tracked=$(git status --porcelain --untracked-files=no 2>/dev/null)
make -s
make -s install DESTDIR="$root" PREFIX=/opt/jobshm
grep -q -a /opt/jobshm/bin/jobshm "$root/opt/jobshm/lib/slurm/jobshm.so" || {
	echo "test_install: the plugin does not point at /opt/jobshm/bin/jobshm" >&2
	exit 1; }
"$root/opt/jobshm/bin/jobshm" --version | grep -qx "jobshm $(make -s print-version)" || {
	echo "test_install: jobshm --version is not the Makefile's version" >&2
	exit 1; }
# a PREFIX install stays under PREFIX: the PAM module too (issue 31), and
# nothing outside it is named even by a dry run
if make -s -n install PREFIX=/opt/jobshm | grep -q -- "/lib/$(gcc -print-multiarch)/security"; then
	echo "test_install: install PREFIX=/opt/jobshm writes the system's PAM directory" >&2
	exit 1
fi
if make -s -n uninstall PREFIX=/opt/jobshm | grep -q -- "/lib/$(gcc -print-multiarch)/security"; then
	echo "test_install: uninstall PREFIX=/opt/jobshm removes the system's PAM module" >&2
	exit 1
fi
# a build or install with another PREFIX changes no tracked file (issue 35)
if [ "$(git status --porcelain --untracked-files=no 2>/dev/null)" != "$tracked" ]; then
	git status --porcelain --untracked-files=no >&2
	echo "test_install: the build or install changed tracked files" >&2
	exit 1
fi
want="/opt/jobshm/bin/enqueue_jobshm
/opt/jobshm/bin/jobshm
/opt/jobshm/include/jobshm.h
/opt/jobshm/include/jobshm_build.h
/opt/jobshm/lib/libjobshm.a
/opt/jobshm/lib/libjobshm.so
/opt/jobshm/lib/libjobshm.so.0
/opt/jobshm/lib/pkgconfig/jobshm.pc
/opt/jobshm/lib/security/pam_jobshm.so
/opt/jobshm/lib/$pyver/dist-packages/jobshm/_jobshm$(/usr/bin/python3 -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
/opt/jobshm/lib/slurm/jobshm.so
/opt/jobshm/share/man/man1/enqueue_jobshm.1
/opt/jobshm/share/man/man1/jobshm.1
/opt/jobshm/share/man/man3/libjobshm.3
/opt/jobshm/share/man/man5/jobshm.conf.5
/opt/jobshm/share/man/man8/jobshm.8
/opt/jobshm/share/man/man8/pam_jobshm.8"
# every module of python/jobshm/ is installed: a new one is never left out
want=$(for f in python/jobshm/*.py; do
	echo "/opt/jobshm/lib/$pyver/dist-packages/jobshm/${f##*/}"; done |
	cat - <(echo "$want") | sort)
got=$(cd "$root" && find . -type f -o -type l | sed 's|^\.||' | sort)
if [ "$got" != "$want" ]; then
	echo "test_install: unexpected file list:" >&2
	diff <(echo "$want") <(echo "$got") >&2 || true
	exit 1
fi
PKG_CONFIG_SYSROOT_DIR="$root" PKG_CONFIG_PATH="$root/opt/jobshm/lib/pkgconfig" \
	pkg-config --cflags --libs jobshm | grep -q -- "-ljobshm" || {
	echo "test_install: pkg-config jobshm failed" >&2; exit 1; }
# every module imports from the installed tree alone (not from python/)
site=$root/opt/jobshm/lib/$pyver/dist-packages
mods=$(cd python && ls jobshm/*.py | sed -e 's|/__init__\.py$||' -e 's|\.py$||' -e 's|/|.|')
(cd "$root" && PYTHONPATH=$site JOBSHM_DIR=/dev/shm /usr/bin/python3 -s -c '
import importlib, sys
for m in sys.argv[2:]:
    f = importlib.import_module(m).__file__
    assert f.startswith(sys.argv[1] + "/"), f"{m} is {f}, not from {sys.argv[1]}"
import jobshm
assert jobshm.info()["dir"] == "/dev/shm"' "$site" $mods) || {
	echo "test_install: the installed modules do not all import:" $mods >&2
	exit 1; }
# the runtime's tests on the installed module, the launcher's on the
# installed enqueue_jobshm
tests=$(pwd)/tests
out=$(cd "$root" && PYTHONPATH=$site /usr/bin/python3 -s -m pytest -q 	-p no:cacheprovider "$tests/python" 2>&1) || {
	tail -40 <<<"$out" >&2
	echo "test_install: tests/python fail on the installed module" >&2
	exit 1; }
out=$(cd "$root" && ENQUEUE_JOBSHM=$root/opt/jobshm/bin/enqueue_jobshm 	/usr/bin/python3 -s -m pytest -q -p no:cacheprovider "$tests/launcher" 2>&1) || {
	tail -40 <<<"$out" >&2
	echo "test_install: tests/launcher fail on the installed enqueue_jobshm" >&2
	exit 1; }
# the shared library exports the API of jobshm.h and nothing else
api=$(grep -oE 'jobshm_[a-z0-9_]+\(' lib/jobshm.h | tr -d '(' | sort -u)
exported=$(nm -D --defined-only "$root/opt/jobshm/lib/libjobshm.so.0" |
	awk '$2 == "T" || $2 == "D" || $2 == "B" {sub(/@.*/, "", $3); print $3}' | sort -u)
if [ "$api" != "$exported" ]; then
	echo "test_install: libjobshm.so exports other than jobshm.h's API:" >&2
	diff <(echo "$api") <(echo "$exported") >&2 || true
	exit 1
fi
make -s uninstall DESTDIR="$root" PREFIX=/opt/jobshm
left=$(find "$root" -type f -o -type l)
if [ -n "$left" ]; then
	echo "test_install: left after uninstall: $left" >&2
	exit 1
fi
echo "test_install: 1 passed, 0 failed"
