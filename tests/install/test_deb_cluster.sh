#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The Debian package on a private cluster: dpkg -i, a --shm job through the
# packaged plugin, command and module, then dpkg --purge leaves nothing.
set -euo pipefail
cd "$(dirname "$0")/../.."
deb=$(readlink -f "${1:?usage: test_deb_cluster.sh FILE.deb}")
export JOBSHM_CLUSTER_DIR=/tmp/jobshm-deb-cluster JOBSHM_CLUSTER_PORT=17117
export JOBSHM_CLUSTER_NODES=1 JOBSHM_CLUSTER_NODE_PREFIX=deb
D=$JOBSHM_CLUSTER_DIR
fail() { echo "test_deb_cluster: $*" >&2; exit 1; }
triplet=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
dpkg -s jobshm >/dev/null 2>&1 && fail "a jobshm package is installed already"
done_() {
	tests/cluster/cluster.sh stop >/dev/null 2>&1 || true
	dpkg --purge jobshm >/dev/null 2>&1 || true
}
trap done_ EXIT
dpkg -i "$deb" >/dev/null
# every module of python/jobshm/ is installed and imports from there
/usr/bin/python3 -I tests/install/import_all.py /usr/lib/python3/dist-packages >/dev/null ||
	fail "the installed Python package is not whole"
files=$(dpkg -L jobshm | while read -r f; do [ -d "$f" ] || echo "$f"; done)
JOBSHM_PLUGIN=/usr/lib/$triplet/slurm-wlm/jobshm.so JOBSHM_CLI=/usr/bin/jobshm \
	tests/cluster/cluster.sh start >/dev/null
export SLURM_CONF=$D/slurm.conf
out=$(cd "$D/out" && runuser -u jobshm-u1 -- srun --mem=256M --shm=48M bash -c \
	'stat -f -c "SHM %b %S" /dev/shm; env -u PYTHONPATH /usr/bin/python3 -c "import jobshm, jobshm.stage, jobshm.dask; print(\"MOD\", jobshm.__file__)"')
read -r _ blocks bsize <<<"$(grep '^SHM' <<<"$out")"
[ $((blocks * bsize)) = $((48 << 20)) ] || fail "the job's /dev/shm is not 48M: $out"
grep -q '^MOD /usr/lib/python3/dist-packages/jobshm/__init__.py$' <<<"$out" ||
	fail "the packaged module was not imported: $out"
for _ in $(seq 50); do	# the epilog runs after srun returns
	/usr/bin/jobshm --conf "$D/jobshm.conf" status | grep -q "no job shm" && break
	sleep 0.2
done
/usr/bin/jobshm --conf "$D/jobshm.conf" status | grep -q "no job shm" ||
	fail "the job's shm was not removed at its end"
tests/cluster/cluster.sh stop >/dev/null || true
dpkg --purge jobshm >/dev/null
left=$(for f in $files; do [ -e "$f" ] && echo "$f"; done; true)
[ -z "$left" ] || fail "left after purge: $left"
[ ! -e /etc/slurm/jobshm.conf ] || fail "/etc/slurm/jobshm.conf left after purge"
echo "test_deb_cluster: 1 passed, 0 failed"
