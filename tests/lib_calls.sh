#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Which file of lib/ calls which (from the symbols each object defines
# and uses), and a check that no two files call each other, directly or
# round a circle.  Prints "caller -> callee" lines; exits 1 on a cycle.
# Run after `make` (it reads lib/*.o).
set -e
cd "$(dirname "$0")/.."
defs=$(mktemp) edges=$(mktemp)
trap 'rm -f "$defs" "$edges"' EXIT
for o in lib/*.o; do
	nm --defined-only "$o" | awk -v f="$(basename "$o" .o)" \
		'$2 ~ /^[TDBR]$/ && $3 ~ /^jobshm_/ {print $3, f}'
done | sort > "$defs"
for o in lib/*.o; do
	f=$(basename "$o" .o)
	nm --undefined-only "$o" | awk '$2 ~ /^jobshm_/ {print $2}' | sort |
		join - "$defs" | awk -v f="$f" '$2 != f {print f, $2}'
done | sort -u > "$edges"
awk '{print $1 " -> " $2}' "$edges"
# tsort reports a loop on stderr; an edge list without one sorts cleanly
if tsort "$edges" 2>&1 >/dev/null | grep -q loop; then
	echo "lib_calls: a circle among lib/ files:" >&2
	tsort "$edges" 2>&1 >/dev/null | sed 's/^/  /' >&2
	exit 1
fi
echo "lib_calls: no circles among $(ls lib/*.o | wc -l) files"
