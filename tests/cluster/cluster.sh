#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A private Slurm cluster on this host for jobshm's tests: one slurmctld and
# NODES slurmd (n1..nN, each its own port, spool and base path), private
# SLURM_CONF, ports, spool, logs and pids.  Never touches a system Slurm.
#
#   cluster.sh start | stop | status | env
#
# Environment: JOBSHM_CLUSTER_DIR (default /tmp/jobshm-cluster),
# SLURM_PREFIX (default: the system's Slurm), JOBSHM_CLUSTER_NODES (default 2), JOBSHM_CLUSTER_PORT (default 16817),
# JOBSHM_CLUSTER_CONTAINER (tmpfs: Slurm's job_container/tmpfs on too),
# JOBSHM_CLUSTER_NAMESPACE (linux|tmpfs: Slurm 25.11+'s NamespaceType=
# namespace/linux, with a PID namespace, or namespace/tmpfs on too),
# JOBSHM_CLUSTER_CONTAIN (yes: PrologFlags=Contain, an extern step per job
# for pam_slurm_adopt),
# JOBSHM_CLUSTER_NODE_PREFIX (default n), JOBSHM_CLUSTER_CGROUP (auto: cgroup v1 memory limits where this host has
# a writable v1 memory hierarchy, as Slurm sites run it; no: none),
# JOBSHM_CLUSTER_PROPAGATION (shared, the default: the cluster's directory
# is mounted shared, as everything is on a systemd node; private: as on a
# node whose / is private -- see set_propagation), JOBSHM_CLUSTER_CPUS
# and JOBSHM_CLUSTER_MEMORY (each node's CPUs and RealMemory in MiB,
# default 2 and 4096; CPUs above this host's are taken from slurm.conf,
# SlurmdParameters=config_overrides), JOBSHM_CLUSTER_SLURM_EXTRA (lines
# added to slurm.conf).
#
# A cluster uses the TCP ports PORT (slurmctld) and PORT+1..PORT+NODES (its
# slurmd); start refuses a port that is in use and says who holds it.  Each
# cluster of the project has its own directory, node names (so its cgroups,
# slurm_<node>, are its own) and port range, so that any of them may run
# beside any other (tests/cluster/test_ports.sh checks this table):
#   main test cluster  /tmp/jobshm-cluster             n1 n2  16817
#   make demo          /tmp/jobshm-demo                demo1  16917
#   test_upgrade.sh    /tmp/jobshm-upgrade-cluster     up1    17017
#   test_deb_cluster   /tmp/jobshm-deb-cluster         deb1   17117
#   test_container.py  /run/jobshm-cluster-container   c1     17217
#   step_scaling.py    /run/jobshm-bench-container     bc1    17317
#   test_ports.sh      /tmp/jobshm-port-test.*         pt1    17417
#   test_nsplugin.py   /run/jobshm-cluster-nsl         nsl1   17617
#                      /run/jobshm-cluster-nst         nst1   17717
#   jobs_per_node.py   /tmp/jobshm-bench-jobs          bj1    17817
set -euo pipefail

# SLURM_PREFIX: a Slurm other than the system's (its daemons and commands)
if [ -n "${SLURM_PREFIX:-}" ]; then
	export PATH="$SLURM_PREFIX/sbin:$SLURM_PREFIX/bin:$PATH"
fi
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
D=${JOBSHM_CLUSTER_DIR:-/tmp/jobshm-cluster}
NODES=${JOBSHM_CLUSTER_NODES:-2}
PORT=${JOBSHM_CLUSTER_PORT:-16817}
HOST=$(hostname -s)
PLUGIN=${JOBSHM_PLUGIN:-$ROOT/spank/jobshm.so}
CLI=${JOBSHM_CLI:-$ROOT/cli/jobshm}
TEST_USERS="jobshm-u1 jobshm-u2"
CGROUP=${JOBSHM_CLUSTER_CGROUP:-auto}
CONTAINER=${JOBSHM_CLUSTER_CONTAINER:-}
NAMESPACE=${JOBSHM_CLUSTER_NAMESPACE:-}
case $NAMESPACE in ""|linux|tmpfs) ;; *) echo "cluster.sh:" \
	"JOBSHM_CLUSTER_NAMESPACE='$NAMESPACE' (accepted: linux, tmpfs)" >&2; exit 2 ;; esac
PROPAGATION=${JOBSHM_CLUSTER_PROPAGATION:-shared}
CPUS=${JOBSHM_CLUSTER_CPUS:-2} MEMORY=${JOBSHM_CLUSTER_MEMORY:-4096}
case $PROPAGATION in shared|private) ;; *) echo "cluster.sh:" \
	"JOBSHM_CLUSTER_PROPAGATION='$PROPAGATION' (accepted: shared, private)" >&2; exit 2 ;; esac
BASE=$D/base JC=
# job_container/tmpfs (and the namespace plugins) make /tmp private in each
# job: the cluster (its config, spool and jobshm's base) must be elsewhere
if [ "$CONTAINER" = tmpfs ] || [ -n "$NAMESPACE" ]; then
	case "$D/" in /tmp/*) echo "cluster.sh: with a job container," \
		"JOBSHM_CLUSTER_DIR must be outside /tmp" >&2; exit 2 ;; esac
	JC=$D/jc
fi

die() { echo "cluster.sh: $*" >&2; exit 1; }

# node names: n1..nN (the tests know them); the demo uses its own prefix so
# that its cgroups (slurm_<node>) never mix with the test cluster's
node_names() { seq -f "${JOBSHM_CLUSTER_NODE_PREFIX:-n}%g" 1 "$NODES"; }

ensure_users() {
	local u
	for u in $TEST_USERS; do
		id "$u" >/dev/null 2>&1 || useradd -M -d /tmp -s /bin/bash "$u"
	done
}

ensure_munge() {
	[ -s /etc/munge/munge.key ] || {
		mkdir -p /etc/munge
		dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 2>/dev/null
		chown munge:munge /etc/munge/munge.key
		chmod 400 /etc/munge/munge.key
	}
	if ! munge -n >/dev/null 2>&1; then
		mkdir -p /run/munge /var/log/munge /var/lib/munge
		chown munge:munge /run/munge /var/log/munge /var/lib/munge
		# without our descriptors: munged outlives the cluster, and a
		# lock the caller holds (flock around a test run) would be held
		# by it for ever
		(for fd in /proc/$BASHPID/fd/*; do
			fd=${fd##*/}; [ "$fd" -gt 2 ] && eval "exec $fd>&-"
		 done; exec runuser -u munge -- /usr/sbin/munged)
		sleep 0.5
		munge -n >/dev/null || die "munged did not start"
	fi
}

# proctrack/task plugins: cgroup v1 when usable, else plain process tracking
track_plugins() {
	if [ "$CGROUP" != no ] && [ -w /sys/fs/cgroup/memory ] &&
	   [ -d /sys/fs/cgroup/freezer ]; then
		printf 'CgroupPlugin=cgroup/v1\nConstrainRAMSpace=yes\n%s\n' \
		       'ConstrainSwapSpace=yes' > "$D/cgroup.conf"
		echo "ProctrackType=proctrack/cgroup"
		echo "TaskPlugin=task/cgroup"
	else
		[ "$CGROUP" = yes ] && die "no writable cgroup v1 memory hierarchy"
		rm -f "$D/cgroup.conf"
		echo "ProctrackType=proctrack/linuxproc"
		echo "TaskPlugin=task/none"
	fi
}

write_conf() {
	local i=0 n
	mkdir -p "$D"/{state,log,spool,out,base}
	chmod 1777 "$D/out"
	for n in $(node_names); do mkdir -p "$D/tmp/$n"; chmod 1777 "$D/tmp/$n"; done
	cat > "$D/slurm.conf" <<EOC
ClusterName=jobshmtest
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool/%n
# per-node TmpFS: PMIx puts its per-step directory there, and two slurmd on
# one host would collide in /tmp (multi-node MPI)
TmpFS=$D/tmp/%n
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd.%n.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd.%n.log
SlurmctldDebug=info
SlurmdDebug=debug
PlugStackConfig=$D/plugstack.conf
$(track_plugins)
$([ "${JOBSHM_CLUSTER_CONTAIN:-}" != yes ] || echo PrologFlags=Contain)
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
SlurmdTimeout=30
InactiveLimit=0
KillWait=2
MinJobAge=600
DefMemPerCPU=256
RebootProgram=/bin/true
# job ids never repeat across restarts of the test cluster (its state is
# wiped), so nothing left by an earlier run -- an output file, a cgroup --
# can be mistaken for a new job's
FirstJobId=$(( $(date +%s) % 60000000 + 1 ))
EOC
	for n in $(node_names); do
		i=$((i + 1))
		echo "NodeName=$n NodeHostname=$HOST NodeAddr=127.0.0.1" \
		     "Port=$((PORT + i)) CPUs=$CPUS RealMemory=$MEMORY" \
		     "State=UNKNOWN" >> "$D/slurm.conf"
	done
	# more CPUs than this host has (jobs_per_node.py's 128 on 2)
	[ "$CPUS" -le "$(nproc)" ] ||
		echo "SlurmdParameters=config_overrides" >> "$D/slurm.conf"
	[ -z "${JOBSHM_CLUSTER_SLURM_EXTRA:-}" ] ||
		printf '%s\n' "$JOBSHM_CLUSTER_SLURM_EXTRA" >> "$D/slurm.conf"
	echo "PartitionName=debug Nodes=ALL Default=YES MaxTime=60 State=UP" \
		>> "$D/slurm.conf"
	[ "$CONTAINER" != tmpfs ] || write_container_conf
	[ -z "$NAMESPACE" ] || write_namespace_conf
	if [ -n "$JC" ]; then	# srun in a job reads it too,
		install -m 755 "$PLUGIN" "$D/jobshm.so"	# where /tmp is private
		PLUGIN=$D/jobshm.so
	fi
	echo "required $PLUGIN conf=$D/jobshm.conf cli=$CLI" > "$D/plugstack.conf"
	write_jobshm_conf
}

# Slurm's own per-job namespace beside jobshm's (a private /tmp and
# /dev/shm per job); each node its own base
write_container_conf() {
	local n
	printf 'JobContainerType=job_container/tmpfs\nPrologFlags=Contain\n' \
		>> "$D/slurm.conf"
	echo "AutoBasePath=true" > "$D/job_container.conf"
	for n in $(node_names); do
		echo "NodeName=$n BasePath=$JC/$n" >> "$D/job_container.conf"
	done
}

# Slurm 25.11+'s namespace plugins: namespace/linux (namespace.yaml: a
# private /tmp, the site's 64M /dev/shm, a PID namespace per job) or
# namespace/tmpfs (job_container.conf)
write_namespace_conf() {
	local n
	printf 'NamespaceType=namespace/%s\nPrologFlags=Contain\n' "$NAMESPACE" \
		>> "$D/slurm.conf"
	if [ "$NAMESPACE" = linux ]; then	# base_path gets /<node> added
		cat > "$D/namespace.yaml" <<EOY
defaults:
  auto_base_path: true
  base_path: "$JC"
  clone_ns_flags:
    - "CLONE_NEWPID"
  dir_confs:
    - path: "/tmp"
    - path: "/dev/shm"
      tmpfs: true
      options: "size=64m,mode=1777"
EOY
		return
	fi
	echo "AutoBasePath=true" > "$D/job_container.conf"
	for n in $(node_names); do
		echo "NodeName=$n BasePath=$JC/$n" >> "$D/job_container.conf"
	done
}

write_jobshm_conf() {
	cat > "$D/jobshm.conf" <<EOC
# jobshm.conf of the test cluster
base_path = "$BASE/%n";
default_size = 0;
max_size = "3G";
allow_opt_out = true;
count_against_job_mem = true;
EOC
}

wait_idle() {
	local t
	for t in $(seq 1 120); do
		if [ "$(sinfo -h -N -o '%T' 2>/dev/null | grep -c '^idle$')" = "$NODES" ]
		then
			return 0
		fi
		sleep 0.5
	done
	sinfo -N >&2 || true
	tail -20 "$D"/log/*.log >&2 || true
	die "nodes did not become idle"
}

start_slurmd() {
	SLURM_CONF="$D/slurm.conf" slurmd -N "$1" -f "$D/slurm.conf" \
		|| die "slurmd $1 did not start (see $D/log/slurmd.$1.log)"
}

# The SLURM_CONF of a slurmctld or slurmd: its -f, else its environment's
slurm_conf_of() {
	local a prev=
	while IFS= read -r -d '' a; do
		[ "$prev" = -f ] && { echo "$a"; return 0; }
		case $a in -f?*) echo "${a#-f}"; return 0 ;; esac
		prev=$a
	done < "/proc/$1/cmdline" 2>/dev/null || true
	tr '\0' '\n' < "/proc/$1/environ" 2>/dev/null | sed -n 's/^SLURM_CONF=//p' | head -1
}

# Who listens on TCP port $1: "NAME (pid N) of the cluster in DIR ...", or
# nothing when the port is free
port_holder() {
	local line pid name conf who=
	if ! command -v ss >/dev/null; then
		printf ':%04X 0+:0+ 0A ' "$1" | grep -qiE -f - /proc/net/tcp /proc/net/tcp6 2>/dev/null &&
			echo "a process (install iproute2 for ss, to see which)"
		return 0
	fi
	line=$(ss -Hltnp "sport = :$1" 2>/dev/null || true)
	[ -n "$line" ] || return 0
	for pid in $(grep -oE 'pid=[0-9]+' <<<"$line" | cut -d= -f2 | sort -un); do
		name=$(cat "/proc/$pid/comm" 2>/dev/null || echo "?")
		conf=
		case $name in slurmctld|slurmd) conf=$(slurm_conf_of "$pid") ;; esac
		who+="${who:+, }$name (pid $pid)"
		[ -z "$conf" ] || who+=" of the cluster in ${conf%/*}"
		[ -z "$conf" ] || who+=" (SLURM_CONF=$conf; stop it with"
		[ -z "$conf" ] || who+=" JOBSHM_CLUSTER_DIR=${conf%/*} $0 stop)"
	done
	echo "${who:-a process in another namespace (ss shows no pid)}"
}

# the cluster's ports must be free (after stopping its own daemons): a
# daemon of another cluster there would take this cluster's jobs
check_ports() {
	local i=0 n who
	who=$(port_holder "$PORT")
	[ -z "$who" ] || die "port $PORT (slurmctld of the cluster in $D) is in" \
		"use by $who; stop that, or set JOBSHM_CLUSTER_PORT to another" \
		"port (this cluster uses PORT..PORT+$NODES)"
	for n in $(node_names); do
		i=$((i + 1))
		who=$(port_holder $((PORT + i)))
		[ -z "$who" ] || die "port $((PORT + i)) (slurmd $n of the cluster" \
			"in $D) is in use by $who; stop that, or set" \
			"JOBSHM_CLUSTER_PORT to another port (this cluster uses" \
			"PORT..PORT+$NODES)"
	done
}

# Mount propagation as on a real node.  Every systemd node mounts /
# shared (shared:1 in mountinfo), and each namespace made from it -- each
# job's, a slave of the host's -- receives every mount and unmount made
# after it: later jobs' tmpfs under base_path, Slurm's job container
# mounts.  This host's / may be private (PID 1 is not systemd), where
# nothing propagates and such bugs cannot show (issue 22 item 0).  So the
# cluster's directory -- its base_path, job container bases, spool and
# TmpFS: every path its jobs mount on or under -- is a bind of its own,
# made rshared (or rprivate with JOBSHM_CLUSTER_PROPAGATION=private, as a
# node with a private / has it, whatever this host's / is).  Only this
# directory changes: the host's / and its other mounts stay as they are,
# and the daemons and the tests stay in the host's namespace, where the
# tests see the jobs' mounts.  stop unmounts it.
set_propagation() {
	mkdir -p "$D"
	mountpoint -q "$D" || mount --bind "$D" "$D" ||
		die "cannot bind $D on itself (for its propagation)"
	mount --make-r"$PROPAGATION" "$D" ||
		die "cannot make $D $PROPAGATION"
}

# srun (as a test user) loads the plugin, and the users' jobs import the
# runtime, from this tree: refuse early, saying why, where they cannot
# (a clone under /root, which is 0700)
users_reach_tree() {
	local u=${TEST_USERS%% *}

	runuser -u "$u" -- test -r "$PLUGIN" -a -x "$ROOT/python" && return
	die "the test user $u cannot read $PLUGIN (a directory above it is" \
	    "not searchable by others, as /root is): clone jobshm where every" \
	    "user can read it (e.g. /srv or /opt), or chmod o+x its parents"
}

start() {
	[ -x "$PLUGIN" ] || [ -f "$PLUGIN" ] || die "no plugin at $PLUGIN (run make)"
	stop >/dev/null 2>&1 || true
	check_ports
	ensure_users
	users_reach_tree
	ensure_munge
	set_propagation
	write_conf
	export SLURM_CONF="$D/slurm.conf"
	slurmctld -f "$D/slurm.conf" || die "slurmctld did not start"
	local n
	for n in $(node_names); do start_slurmd "$n"; done
	wait_idle
	echo "cluster.sh: $NODES node(s) up ($D mounted $PROPAGATION);" \
	     "export SLURM_CONF=$D/slurm.conf"
}

kill_pidfile() {
	local f=$1 pid t
	[ -f "$f" ] || return 0
	pid=$(cat "$f")
	kill "$pid" 2>/dev/null || { rm -f "$f"; return 0; }
	for t in $(seq 1 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$pid" 2>/dev/null || true
	rm -f "$f"
}

stop() {
	local f m
	export SLURM_CONF="$D/slurm.conf"
	# only a running slurmctld of ours: without one (or without its
	# slurm.conf) scancel waits minutes for a controller
	if [ -f "$D/slurm.conf" ] && [ -f "$D/slurmctld.pid" ] &&
	   kill -0 "$(cat "$D/slurmctld.pid")" 2>/dev/null; then
		timeout 30 scancel --quiet -u jobshm-u1 2>/dev/null || true
	fi
	for f in "$D"/slurmd.*.pid "$D/slurmctld.pid"; do kill_pidfile "$f"; done
	# leftovers of a crashed run: unmount what lives under our base
	{ grep -E " ($BASE|${JC:-/nonexistent})/" /proc/self/mountinfo || true; } |
		awk '{print $5}' | sort -r |
		while read -r m; do umount -l "$m" || true; done
	# the top of base_path, which jobshm makes a private mount of its own
	! mountpoint -q "$BASE" || umount -l "$BASE" || true
	rm -rf "$D/state" "$D/spool" "$D/out" "$D/tmp" ${JC:+"$JC"}
	remove_stale_cgroups
	# the bind of set_propagation (and any stacked by an interrupted start)
	while mountpoint -q "$D"; do umount -l "$D" || break; done
}

# Empty cgroups that slurmstepds killed by the fault tests left behind
# (cgroup v1 directories can only be removed empty and deepest first).
remove_stale_cgroups() {
	local n
	for n in $(node_names); do
		find /sys/fs/cgroup/*/slurm_"$n" -depth -type d \
			-exec rmdir {} + 2>/dev/null || true
	done
}

# restart every slurmd (an upgrade of the plugin takes effect so)
restart_slurmd() {
	local n
	export SLURM_CONF="$D/slurm.conf"
	for n in $(node_names); do
		kill_pidfile "$D/slurmd.$n.pid"
		start_slurmd "$n"
	done
	wait_idle_or_busy
}

wait_idle_or_busy() {
	local t
	for t in $(seq 1 120); do
		sinfo -h -N -o '%T' 2>/dev/null | grep -qvE '^(idle|allocated|mixed)$' ||
			return 0
		sleep 0.5
	done
	die "nodes did not come back after restarting slurmd"
}

case "${1:-}" in
start) start ;;
restart-slurmd) restart_slurmd ;;
stop) stop ;;
status) SLURM_CONF="$D/slurm.conf" sinfo -N ;;
env) echo "export SLURM_CONF=$D/slurm.conf" ;;
write-jobshm-conf) write_jobshm_conf ;;
*) echo "usage: $0 start|stop|restart-slurmd|status|env" >&2; exit 2 ;;
esac
