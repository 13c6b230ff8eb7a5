#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The configuration reference exists once, in lib/conf.c's table of keys:
# the README's table, jobshm.conf(5) and configs/jobshm.conf must agree
# with it, and every man page carries the Makefile's version.
# libjobshm(3) has the prototype of every function of lib/jobshm.h.
set -euo pipefail
cd "$(dirname "$0")/../.."
fail() { echo "test_docs: $*" >&2; exit 1; }
cli=cli/jobshm
table=$(sed -n '/^<!-- keys: begin/,/^<!-- keys: end/p' README.md | sed '1d;$d')
[ "$table" = "$($cli check-config --keys=md)" ] ||
	fail "README's configuration table differs from the keys the loader knows (run make docs)"
version=$(make -s print-version)
for m in man/jobshm.1 man/jobshm.8 man/enqueue_jobshm.1 man/jobshm.conf.5 man/libjobshm.3; do
	grep -m1 "^\.TH" "$m" | grep -q "\"jobshm $version\"" || fail "$m is not version $version"
done
$cli check-config --keys | grep -v '^ ' | while read -r key rest; do
	grep -q "^\.B $key\$" man/jobshm.conf.5 || fail "jobshm.conf(5) lacks $key"
	def=$(sed 's/.*default \(.*\))$/\1/' <<<"$rest")
	line=$(grep -E "^#? ?$key = " configs/jobshm.conf) ||
		fail "configs/jobshm.conf does not show $key"
	case "$line" in
	"#"*) ;;	# a commented example need not be the default
	*) [ "${line#*= }" = "$def;" ] ||
		fail "configs/jobshm.conf sets $key to ${line#*= } but its default is $def" ;;
	esac
done
# libjobshm(3) documents the whole C API: every function of jobshm.h has
# its prototype there (a .BI line "type name(...")
for f in $(grep -oE 'jobshm_[a-z0-9_]+\(' lib/jobshm.h | tr -d '(' | sort -u); do
	grep -qE "^\.BI \"[^\"]*[ *]$f\(" man/libjobshm.3 ||
		fail "libjobshm(3) does not document $f (lib/jobshm.h)"
done
# the example configuration itself is valid
$cli check-config configs/jobshm.conf >/dev/null || fail "configs/jobshm.conf does not load"
echo "test_docs: 1 passed, 0 failed"
