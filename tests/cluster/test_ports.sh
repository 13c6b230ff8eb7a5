#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Test clusters side by side (needs root, munge and Slurm; run it under the
# cluster lock, as make check does):
#  - every cluster of the project has its own port range and node names;
#  - cluster.sh start refuses a port in use and names who holds it: any
#    process (its name and pid), a slurmctld or slurmd with its cluster;
#  - a refused start leaves the running cluster alone, and a second
#    cluster on its own ports runs its jobs itself (make demo left its
#    cluster on the port of test_container.py's: sbatch -w c1 went there).
set -euo pipefail
cd "$(dirname "$0")/../.."
P=17417		# JOBSHM_CLUSTER_PORT=17417: this test's range, 17417..17426
fail() { echo "test_ports: $*" >&2; exit 1; }

# ---- the table: one port range and one node prefix per cluster --------------
# (the literals after JOBSHM_CLUSTER_PORT / _NODE_PREFIX in every file)
files=$(git ls-files --cached --others --exclude-standard | grep -vE '^(NEWS|README.md|man/)')
# "PORT FILE" and "PREFIX FILE", one line per value and file
literal() {
	# shellcheck disable=SC2086
	{ grep -sHoE "$1[:=\"-]*$2" $files || true; } |
		sed -E "s/^([^:]*):.*[:=\"-]($2)\$/\2 \1/" | sort -u
}
ports=$(literal JOBSHM_CLUSTER_PORT '[0-9]{4,5}' | sort -n)
[ "$(wc -l <<<"$ports")" -ge 6 ] || fail "found too few cluster ports: $ports"
prev=0 prevf=
while read -r port f; do
	[ $((port - prev)) -ge 10 ] ||
		fail "the clusters of $prevf ($prev) and $f ($port) share ports" \
		     "(each uses PORT..PORT+nodes; keep them 10 apart)"
	prev=$port prevf=$f
done <<<"$ports"
prefixes=$(literal JOBSHM_CLUSTER_NODE_PREFIX '[a-z]+' | sort)
dup=$(awk '{print $1}' <<<"$prefixes" | uniq -d)
[ -z "$dup" ] || fail "node prefix '$dup' is used by two clusters" \
	"(their cgroups slurm_<node> would mix): $(grep "^$dup " <<<"$prefixes" | tr '\n' ' ')"

# ---- clusters on this host --------------------------------------------------
da=$(mktemp -d /tmp/jobshm-port-test.XXXXXX)
db=$(mktemp -d /tmp/jobshm-port-test.XXXXXX)
chmod 755 "$da" "$db"
listener=
# cluster DIR PORT PREFIX start|stop
cluster() {
	JOBSHM_CLUSTER_DIR=$1 JOBSHM_CLUSTER_PORT=$2 JOBSHM_CLUSTER_NODES=1 \
	JOBSHM_CLUSTER_NODE_PREFIX=$3 tests/cluster/cluster.sh "$4"
}
cleanup() {
	[ -z "$listener" ] || kill "$listener" 2>/dev/null || true
	cluster "$db" $((P + 3)) pv stop >/dev/null 2>&1 || true
	cluster "$da" $P pt stop >/dev/null 2>&1 || true
	rm -rf "$da" "$db"
}
trap cleanup EXIT

# any process on a port of the cluster: refused, with its name and pid
/usr/bin/python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen()
print("up", flush=True); time.sleep(120)' $((P + 1)) > "$da/listener.out" &
listener=$!
for _ in $(seq 50); do grep -q up "$da/listener.out" 2>/dev/null && break; sleep 0.1; done
grep -q up "$da/listener.out" || fail "the test's listener did not start"
if out=$(cluster "$da" $P pt start 2>&1); then
	fail "cluster.sh started with its slurmd's port $((P + 1)) taken: $out"
fi
grep -qF "port $((P + 1)) (slurmd pt1 of the cluster in $da) is in use by python3 (pid $listener)" <<<"$out" ||
	fail "the refusal does not say who holds the port: $out"
[ ! -e "$da/slurmctld.pid" ] || fail "a slurmctld was started on a refused start"
kill "$listener"; wait "$listener" 2>/dev/null || true; listener=

# a slurmctld on the port: refused, naming that cluster's directory
cluster "$da" $P pt start >/dev/null
ctld=$(cat "$da/slurmctld.pid")
if out=$(cluster "$db" $P pu start 2>&1); then
	fail "a second cluster started on the first's slurmctld port: $out"
fi
grep -qF "port $P (slurmctld of the cluster in $db) is in use by slurmctld (pid $ctld) of the cluster in $da (SLURM_CONF=$da/slurm.conf" <<<"$out" ||
	fail "the refusal does not name the cluster holding the port: $out"
# ... and a slurmd: refused too
if out=$(cluster "$db" $((P + 1)) pu start 2>&1); then
	fail "a second cluster started on the first's slurmd port: $out"
fi
grep -qE "port $((P + 1)) .* in use by slurmd \(pid [0-9]+\) of the cluster in $da " <<<"$out" ||
	fail "the refusal does not name the slurmd's cluster: $out"
[ "$(cat "$da/slurmctld.pid")" = "$ctld" ] && kill -0 "$ctld" ||
	fail "a refused start touched the running cluster's slurmctld"

# a second cluster on its own ports beside the first: each runs its own jobs
cluster "$db" $((P + 3)) pv start >/dev/null
for c in "$da pt1" "$db pv1"; do
	read -r d node <<<"$c"
	got=$(cd "$d/out" && SLURM_CONF=$d/slurm.conf timeout 60 \
		runuser -u jobshm-u1 -- srun -w "$node" --mem=64M printenv SLURMD_NODENAME) ||
		fail "a job on $node (cluster in $d) did not run"
	[ "$got" = "$node" ] || fail "a job for $node (cluster in $d) ran on '$got'"
done
echo "test_ports: 1 passed, 0 failed"
