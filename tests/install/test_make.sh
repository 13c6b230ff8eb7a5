#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The newcomer's `make`: in a fresh copy of the tree (what git tracks, no
# build output), a plain `make` builds everything (the plugin, the CLI, the
# library, the Python extension, the launcher, the man pages); and every
# target of the Makefile that is not a file is .PHONY.
set -euo pipefail
cd "$(dirname "$0")/../.."
fail() { echo "test_make: $*" >&2; exit 1; }
tree=$(mktemp -d /tmp/jobshm-make.XXXXXX)
trap 'rm -rf "$tree"' EXIT

# every target named like a command (no '/', '.', '%' or '$') is .PHONY
targets=$(grep -oE '^[a-z][a-z0-9_-]*:([^=]|$)' Makefile | cut -d: -f1 | sort -u)
phony=$(awk '/^\.PHONY:/ {p = 1} p {print} p && !/\\$/ {p = 0}' Makefile |
	tr -d '\\' | sed 's/^\.PHONY://' | tr -s ' \t' '\n' | grep . | sort -u)
missing=$(comm -23 <(echo "$targets") <(echo "$phony"))
[ -z "$missing" ] || fail "targets not in .PHONY:" $missing

git ls-files --cached --others --exclude-standard |
	while read -r f; do [ -e "$f" ] && echo "$f"; done |
	tar -cf - -T - | tar -xf - -C "$tree"
# shellcheck disable=SC2016
built=$(make -s -C "$tree" -f Makefile -f - print-built <<<'print-built: ; @echo $(BUILT)')
(cd "$tree" && env -u MAKEFLAGS -u MFLAGS make -s -j2 >build.log 2>&1) || {
	tail -30 "$tree/build.log" >&2; fail "make in a fresh tree failed"; }
ext=$(/usr/bin/python3 -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
mans=$(cd "$tree" && ls man/*.in | sed 's/\.in$//')
for f in spank/jobshm.so cli/jobshm lib/libjobshm.so.0 lib/libjobshm.a \
	 "python/jobshm/_jobshm$ext" launcher/enqueue_jobshm $mans $built; do
	[ -s "$tree/$f" ] || fail "a plain make in a fresh tree did not build $f"
done

# without a build dependency (here: libconfig's header hidden by a
# compiler that cannot find it), a plain make names the package and
# `make deps` before any compile fails (issue 31)
cat > "$tree/nolibconfig-cc" <<'CC'
#!/bin/bash
# gcc, except that <libconfig.h> is not there
if [ "${*: -1}" = - ]; then
	src=$(cat); grep -q 'libconfig\.h' <<<"$src" && exit 1
	exec gcc "$@" <<<"$src"
fi
for a; do case $a in *.c) grep -q '<libconfig\.h>' "$a" 2>/dev/null &&
	{ echo "$a: fatal error: libconfig.h: No such file or directory" >&2; exit 1; };; esac; done
exec gcc "$@"
CC
chmod +x "$tree/nolibconfig-cc"
(cd "$tree" && make -s clean >/dev/null 2>&1 && env -u MAKEFLAGS -u MFLAGS \
	make -s CC="$tree/nolibconfig-cc" >nodeps.log 2>&1) &&
	fail "make without libconfig's header succeeded"
grep -q "missing build dependencies: libconfig-dev" "$tree/nodeps.log" &&
	grep -q "make deps" "$tree/nodeps.log" || {
	cat "$tree/nodeps.log" >&2; fail "make without libconfig-dev did not name it and make deps"; }
! grep -q "fatal error" "$tree/nodeps.log" ||
	fail "make without libconfig-dev reached the compiler: $(cat "$tree/nodeps.log")"
echo "test_make: 2 passed, 0 failed"
