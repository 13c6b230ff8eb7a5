#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# An upgrade while a job runs: a job started under the previous release's
# plugin (jobshm 0.2.0, commit e3188ff) keeps its shm across installing
# this build over it and restarting slurmd; jobshm status lists it
# meanwhile; a new step sees its files; its end is cleaned up.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
OLD=${JOBSHM_UPGRADE_FROM:-e3188ff}
export JOBSHM_CLUSTER_DIR=/tmp/jobshm-upgrade-cluster JOBSHM_CLUSTER_PORT=17017
export JOBSHM_CLUSTER_NODES=1 JOBSHM_CLUSTER_NODE_PREFIX=up
D=$JOBSHM_CLUSTER_DIR
fail() { echo "test_upgrade: $*" >&2; exit 1; }
if ! git cat-file -e "$OLD^{commit}" 2>/dev/null; then
	echo "test_upgrade: SKIPPED (commit $OLD of the previous release is not in this clone)"
	exit 0
fi
tmp=$(mktemp -d /tmp/jobshm-upgrade.XXXXXX)
chmod 755 "$tmp"	# sbatch (the user) loads the plugin too
trap '"$ROOT/tests/cluster/cluster.sh" stop >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
git archive "$OLD" | tar -xf - -C "$tmp" --one-top-level=old
env -u CI make -s -C "$tmp/old" spank/jobshm.so cli/jobshm >/dev/null 2>&1 ||
	fail "the previous release ($OLD) does not build here"
mkdir "$tmp/inst"
cp "$tmp/old/spank/jobshm.so" "$tmp/old/cli/jobshm" "$tmp/inst/"
JOBSHM_PLUGIN=$tmp/inst/jobshm.so JOBSHM_CLI=$tmp/inst/jobshm \
	tests/cluster/cluster.sh start >/dev/null
export SLURM_CONF=$D/slurm.conf
cd "$D/out"
jobid=$(runuser -u jobshm-u1 -- sbatch --parsable -o "$D/out/up-%j.out" \
	--mem=256M --shm=32M --wrap 'echo kept > /dev/shm/before; echo READY; sleep 60')
for _ in $(seq 100); do grep -q READY "up-$jobid.out" 2>/dev/null && break; sleep 0.3; done
grep -q READY "up-$jobid.out" || fail "the job under $OLD did not start"
# the upgrade: this build installed over the old files, slurmd restarted
cp "$ROOT/spank/jobshm.so" "$ROOT/cli/jobshm" "$tmp/inst/"
"$ROOT/tests/cluster/cluster.sh" restart-slurmd >/dev/null
"$tmp/inst/jobshm" --conf "$D/jobshm.conf" status 2>/dev/null | grep -q "^$jobid " ||
	fail "jobshm status does not list the running job after the upgrade"
got=$(runuser -u jobshm-u1 -- srun --jobid="$jobid" --overlap --mem=64M cat /dev/shm/before)
[ "$got" = kept ] || fail "a new step of the job does not see its shm: '$got'"
scancel "$jobid"
for _ in $(seq 100); do
	[ -e "$D/base/up1/$jobid" ] || break
	sleep 0.3
done
[ ! -e "$D/base/up1/$jobid" ] || fail "the job's shm was not removed at its end"
grep -q " $D/base/up1/$jobid " /proc/self/mountinfo && fail "the job's tmpfs is still mounted"
echo "test_upgrade: 1 passed, 0 failed"
