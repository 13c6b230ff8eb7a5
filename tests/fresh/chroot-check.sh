#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The newcomer's path, and CI's, on a machine as fresh as one host can
# give: a new Debian 12 (debootstrap --variant=minbase, nothing installed
# by hand), a fresh clone of this repository in it with ../shared beside
# it, and in it, as root with CI=true and no stdin, what CI runs:
# `bash .ci/run` (deps.sh, make, make demo, make check, make demo-stop,
# make check-slurm-src).  The chroot has its own /etc (users, munge key,
# Slurm, packages), /tmp, /run and /dev/shm; it shares this host's kernel,
# /proc, /sys and cgroups (which a fresh VM would have of its own) and,
# with --cache, the Slurm source builds in /var/cache/jobshm (else it
# builds Slurm 26.05 itself).  Run nothing else that starts a test cluster
# meanwhile: it uses the same ports.
#
#   tests/fresh/chroot-check.sh [--cache] [DIR]   (default /srv/fresh;
#                     needs root, debootstrap and Debian's mirror)
# Prints the summary lines; exit status: .ci/run's.  Log: DIR/check.log.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
cache=
[ "${1:-}" = --cache ] && { cache=1; shift; }
dir=${1:-/srv/fresh}
root=$dir/root
[ "$(id -u)" = 0 ] || { echo "chroot-check: needs root" >&2; exit 1; }
if [ ! -x "$root/usr/bin/apt-get" ]; then
	mkdir -p "$dir"
	debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian
fi
cp /etc/resolv.conf "$root/etc/resolv.conf"
# the tree as a new user gets it: a clone of what is committed
rm -rf "$root/work" && mkdir -p "$root/work"
git clone -q "$here" "$root/work/main"
[ -d "$here/../shared" ] && cp -a "$here/../shared" "$root/work/shared"
cat > "$root/work/run.sh" <<'RUN'
#!/bin/bash
set -uo pipefail
export CI=true DEBIAN_FRONTEND=noninteractive
cd /work/main
apt-get update -q >/dev/null && apt-get install -y -q make >/dev/null
t0=$SECONDS
bash .ci/run </dev/null; rc=$?
echo "== .ci/run: rc $rc in $(((SECONDS - t0) / 60)) min"
exit $rc
RUN
chmod +x "$root/work/run.sh"
rc=0
unshare -m --propagation private bash -c '
	set -e; r=$1
	# its root a mount of its own, as a machine'"'"'s / is (a job'"'"'s
	# namespace marks it a slave: EINVAL where / is no mount)
	mount --bind "$r" "$r"
	mount --rbind /proc "$r/proc"; mount --rbind /sys "$r/sys"
	mount --rbind /dev "$r/dev"
	mount -t tmpfs -o mode=1777 shm "$r/dev/shm"
	mount -t tmpfs -o mode=755 run "$r/run"
	if [ -n "$2" ]; then mkdir -p /var/cache/jobshm "$r/var/cache/jobshm"
		mount --bind /var/cache/jobshm "$r/var/cache/jobshm"; fi
	# pivot_root, not chroot: a namespace the job joins (setns) has its
	# root at the namespace'"'"'s, which a chroot would escape
	cd "$r"; mkdir -p .oldroot
	pivot_root . .oldroot
	umount -l /.oldroot; rmdir /.oldroot
	mount --make-rshared /	# as a systemd node mounts it
	exec /work/run.sh' _ "$root" "$cache" >"$dir/check.log" 2>&1 || rc=$?
grep -E '^== |[0-9]+ passed|[0-9]+ failed|SKIPPED|: ok|: [0-9]+ passed' "$dir/check.log" | tail -60
exit $rc
