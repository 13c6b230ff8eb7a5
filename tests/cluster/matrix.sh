#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The integration suite on every Slurm release a site runs: Debian's
# (22.05), then each source tarball given (built once and cached by
# tests/cluster/slurm-build.sh), one after the other (one test cluster at
# a time), and one line per release at the end:
#
#   matrix: 22.05.8   174 passed, 11 skipped   (13 min)
#
#   matrix.sh [TARBALL...]     (default: ../shared/slurm/slurm-*.tar.gz)
# Exit status: 0 when every release passed.
set -uo pipefail
cd "$(dirname "$0")/../.."
[ $# -gt 0 ] || set -- ../shared/slurm/slurm-[0-9]*.tar.gz
log=$(mktemp -d /tmp/jobshm-matrix.XXXXXX)
lines=() rc=0
one() {	# name, then make's arguments
	local name=$1 t0=$SECONDS out; shift
	out="$log/$name.log"
	make "$@" cluster-test >"$out" 2>&1 || rc=1
	lines+=("$(printf 'matrix: %-9s %s   (%d min)' "$name" \
		"$(grep -E '^[=]+ .*(passed|failed|error).* in ' "$out" |
		   tail -1 | tr -d '=' | sed 's/ in [0-9.]*s.*//; s/^ *//')" \
		$(((SECONDS - t0 + 30) / 60)))")
	echo "${lines[-1]}  log: $out"
}
one "$(slurmd -V | awk '{print $2}')"
for t; do
	[ -r "$t" ] || { lines+=("matrix: $t: SKIPPED (no such tarball)"); continue; }
	prefix=$(tests/cluster/slurm-build.sh "$t") ||
		{ lines+=("matrix: $t: build failed"); rc=1; continue; }
	one "$(basename "$t" .tar.gz | sed 's/^slurm-//')" SLURM_PREFIX="$prefix"
done
make -s all >/dev/null	# the tree's build against the system's Slurm again
printf '%s\n' "${lines[@]}"
exit $rc
