#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Install what jobshm needs to build and test, from Debian's packages.
# Idempotent: installs only what is missing.  Needs root.
set -euo pipefail

PKGS="build-essential pkg-config slurmd slurmctld slurm-client munge
libslurm-dev libhwloc-dev hwloc libnuma-dev numactl libconfig-dev
libcmocka-dev python3-dev python3-numpy python3-pytest python3-matplotlib
libxml2-utils xfsprogs clang libclang-rt-14-dev valgrind util-linux
procps libopenblas0-pthread debhelper dh-python dpkg-dev fakeroot lintian rpm
python3-joblib python3-distributed openmpi-bin python3-mpi4py libpmix2 libpmix-dev
fuse3 libfuse3-dev python3-scipy libmunge-dev libpam0g-dev libpam-slurm-adopt
pamtester"
# libpam0g-dev: builds pam_jobshm.so; libpam-slurm-adopt, pamtester:
# tests/integration/test_pam.py runs ssh-like sessions through them.
PKGS="$PKGS git cpio iproute2 e2fsprogs groff-base"
PKGS="$PKGS charliecloud-runtime podman uidmap runc libyaml-dev libjson-c-dev"
PKGS="$PKGS python3-torch"
PKGS="$PKGS prometheus-node-exporter python3-prometheus-client"
PKGS="$PKGS python3-cryptography librsvg2-bin"
# librsvg2-bin: rsvg-convert renders jobshm suggest --svg's picture
# (tests/install/test_suggest.sh).
# python3-cryptography: jobshm.dask makes the job's CA and keys with it
# (tests/python/test_dask_tls.py); a fresh Debian 12 lacks it.
# prometheus-node-exporter, python3-prometheus-client:
# tests/integration/test_metrics.py scrapes a real node exporter's
# textfile collector over HTTP and parses what it serves.
# python3-torch: tests/integration/test_usage.py runs PyTorch's DataLoader
# with workers in a too-small --shm (large: skipped with the reason if absent).
# charliecloud-runtime (ch-run), podman and uidmap (newuidmap for rootless
# podman): tests/integration/test_containers.py runs both in --shm jobs.
# libyaml-dev, libjson-c-dev: Slurm 26.05 built from source reads
# namespace.yaml (namespace/linux, tests/integration/test_nsplugin.py)
# with its serializer/yaml and data_parser (serializer/json).
# git: make deb/rpm pack what git tracks (git ls-files), test_upgrade.sh
# builds the previous release from git, test_make.sh copies the tree.
# cpio: test_rpm.sh unpacks the RPM (rpm2cpio) to import its Python package.
# iproute2: ss, with which cluster.sh names who holds a port it needs.
# e2fsprogs: mkfs.ext4 for tests/unit/test_fsdax.c's ext4 image.
# groff-base: tests/install/test_docs.sh renders every man page (groff -ww).
# libmunge-dev: make check-slurm-src configures Slurm 26.05 from source,
# which needs munge's headers (auth/munge).
# libopenblas0-pthread: an optimized BLAS for numpy, as on any HPC node;
# with Debian's reference BLAS the example tasks are compute-bound and the
# worker-runtime bench measures the BLAS, not the data path.

missing=$(for p in $PKGS; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null |
		grep -q "install ok installed" || echo "$p"
done)
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "deps.sh: needs root to install:" $missing >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# the packages' own daemons must not start on install (no systemd here)
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
chmod 755 /usr/sbin/policy-rc.d
trap 'rm -f /usr/sbin/policy-rc.d' EXIT
apt-get install -y -q --no-install-recommends $missing
