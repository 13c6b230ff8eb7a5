#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# make demo: a local one-node Slurm with jobshm, one job with --shm, and
# proof that nothing of the job is left after it ends.
# make demo-stop (demo.sh stop): stop the demo's cluster.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export JOBSHM_CLUSTER_DIR=${JOBSHM_CLUSTER_DIR:-/tmp/jobshm-demo}
export JOBSHM_CLUSTER_NODES=1 JOBSHM_CLUSTER_PORT=${JOBSHM_CLUSTER_PORT:-16917}
export JOBSHM_CLUSTER_NODE_PREFIX=demo
D=$JOBSHM_CLUSTER_DIR
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

[ "${1:-}" != stop ] || exec "$ROOT/tests/cluster/cluster.sh" stop

"$ROOT/tests/cluster/cluster.sh" start
export SLURM_CONF=$D/slurm.conf
cd "$D/out"

say "The node's own /dev/shm (what a login on the node sees)"
df -h /dev/shm

say "srun --shm=512M: the job gets a private /dev/shm of 512M"
runuser -u jobshm-u1 -- env -u JOBSHM_CLUSTER_DIR -u JOBSHM_CLUSTER_NODES \
  -u JOBSHM_CLUSTER_PORT -u JOBSHM_CLUSTER_NODE_PREFIX srun --mem=1G --shm=512M bash -c '
  df -h /dev/shm; env | grep ^JOBSHM_ | sort
  dd if=/dev/zero of=/dev/shm/${JOBSHM_PREFIX}data bs=1M count=100 status=none
  echo "wrote 100M; the job sees:"; ls -l /dev/shm
  echo "another 500M does not fit:"
  dd if=/dev/zero of=/dev/shm/more bs=1M count=500 2>&1 | grep -i "no space" || true'

say "After the job: no mount, no directory left on the node"
for i in $(seq 1 100); do   # the epilog runs just after the job ends
	[ -z "$(squeue -h)" ] && break; sleep 0.2
done
grep -F " $D/base/" /proc/self/mountinfo || echo "(no jobshm mounts)"
find "$D/base" -mindepth 2 ! -name '.jobshm-*' | grep . ||
	echo "(no job directories; the node's lock and marker stay)"
"$ROOT/cli/jobshm" --conf "$D/jobshm.conf" status

say "The demo cluster keeps running: export SLURM_CONF=$SLURM_CONF"
echo "Stop it with: make demo-stop"
