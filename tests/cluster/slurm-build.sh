#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Build a Slurm release from a source tarball once, into a cache directory
# keyed by the tarball's sha256 and what is built, and print its prefix.
# Later runs on the same machine reuse the build.  Beside Slurm itself it
# installs the release's own pam_slurm_adopt (contribs/pam_slurm_adopt) as
# PREFIX/lib/security/pam_slurm_adopt.so, for tests/integration/test_pam.py:
# a distribution's module only talks to the slurmstepd of its own release.
#
#   slurm-build.sh TARBALL        prints the prefix (build log on stderr)
#
# Environment: JOBSHM_SLURM_CACHE (default /var/cache/jobshm/slurm).
set -euo pipefail

tarball=${1:?usage: slurm-build.sh TARBALL}
[ -r "$tarball" ] || { echo "slurm-build.sh: cannot read '$tarball'" >&2; exit 1; }
cache=${JOBSHM_SLURM_CACHE:-/var/cache/jobshm/slurm}
# several slurmd on one host (the test cluster) need multiple-slurmd support
opts="--disable-debug --without-rpath --enable-multiple-slurmd"
# pam_slurm_adopt needs libpam and libpam_misc (libpam0g-dev): fail here,
# not later, where they are missing
opts="$opts --enable-pam"
# mpi/pmix, with Debian's PMIx (libpmix-dev) where it is installed
pmix=$(ls -d /usr/lib/*/pmix2 2>/dev/null | head -1)
[ -n "$pmix" ] && opts="$opts --with-pmix=$pmix"
# serializer/json (json-c): data_parser needs it to read namespace.yaml
# (NamespaceType=namespace/linux; without it slurmd stops at start)
[ -e /usr/include/json-c/json.h ] && opts="$opts --with-json=/usr"
# what is installed besides Slurm is part of the key: a cache made before
# the PAM module was built is not taken for one with it
extras="contribs/pam_slurm_adopt"
sum=$( (sha256sum <"$tarball"; echo "$opts"; echo "$extras") |
	sha256sum | cut -c1-16)
prefix=$cache/$sum
pamdir=$prefix/lib/security
complete() {
	[ -x "$prefix/sbin/slurmd" ] && [ -f "$pamdir/pam_slurm_adopt.so" ] &&
		[ -f "$prefix/.complete" ]
}
if complete; then
	echo "$prefix"
	exit 0
fi
# one build per key at a time: a second caller waits for the first and
# takes its result instead of removing the prefix under it
mkdir -p "$cache"
exec 9>"$prefix.lock"
flock 9
if complete; then
	echo "$prefix"
	exit 0
fi
work=$(mktemp -d /tmp/jobshm-slurm-build.XXXXXX)
trap 'rm -rf "$work"' EXIT
rm -rf "$prefix"
mkdir -p "$prefix"
tar -xzf "$tarball" -C "$work"
src=$(find "$work" -mindepth 1 -maxdepth 1 -type d | head -1)
{
	cd "$src"
	# shellcheck disable=SC2086
	./configure --prefix="$prefix" --sysconfdir="$prefix/etc" $opts \
		>"$work/configure.log" 2>&1 ||
		{ tail -30 "$work/configure.log"; exit 1; }
	make -j"$(( $(nproc) + 1 ))" >"$work/make.log" 2>&1 ||
		{ tail -30 "$work/make.log"; exit 1; }
	make install >"$work/install.log" 2>&1 ||
		{ tail -30 "$work/install.log"; exit 1; }
	# contribs are not built by the top-level make; PAM_DIR is where its
	# Makefile installs the module (set here, not by configure's
	# --with-pam_dir, which would put the prefix into the key's input)
	make -C contribs/pam_slurm_adopt PAM_DIR="$pamdir" install \
		>"$work/pam.log" 2>&1 ||
		{ tail -30 "$work/pam.log"; exit 1; }
	[ -f "$pamdir/pam_slurm_adopt.so" ] ||
		{ echo "slurm-build.sh: no $pamdir/pam_slurm_adopt.so" \
			"after the install"; exit 1; }
} >&2
touch "$prefix/.complete"
echo "$prefix"
