#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Soak: keep the test cluster busy with short --shm jobs for N minutes.

Prints jobs run, failures, peak and final Shmem and leftover mounts.
Run by `make soak` (SOAK_MINUTES, default 5).  Not part of make check.
"""
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "integration"))
from conftest import (BASE, OUT, job_mounts, run, shmem_kb,  # noqa: E402
                      wait_idle)

MINUTES = float(os.environ.get("SOAK_MINUTES", "5"))
INFLIGHT = 8
SCRIPT = """#!/bin/bash
dd if=/dev/urandom of=/dev/shm/${JOBSHM_PREFIX}a bs=1M count=16 status=none
srun --overlap bash -c 'cmp -s /dev/shm/${JOBSHM_PREFIX}a /dev/shm/${JOBSHM_PREFIX}a && echo OK'
"""


def submit():
    p = subprocess.run(["runuser", "-u", "jobshm-u1", "--", "sbatch",
                        "--parsable", "--mem=128M", "--shm=32M", "-c1",
                        "-o", str(OUT / "soak-%j.out")], input=SCRIPT,
                       capture_output=True, text=True, cwd=str(OUT))
    return int(p.stdout.strip()) if p.returncode == 0 else None


def states(ids):
    if not ids:
        return {}
    p = run(["squeue", "-h", "-t", "all", "-j", ",".join(map(str, ids)),
             "-o", "%i %T"])
    return dict(l.split() for l in p.stdout.splitlines())


def main():
    start_shmem = peak = shmem_kb()
    end = time.time() + MINUTES * 60
    live, ran, failed, submit_err = set(), 0, 0, 0
    while time.time() < end or live:
        while time.time() < end and len(live) < INFLIGHT:
            j = submit()
            if j is None:
                submit_err += 1
                time.sleep(1)
            else:
                live.add(j)
        for j, s in states(sorted(live)).items():
            if s in ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING"):
                continue
            live.discard(int(j))
            ran += 1
            out = OUT / f"soak-{j}.out"
            if s != "COMPLETED" or "OK" not in out.read_text():
                failed += 1
            out.unlink(missing_ok=True)
        peak = max(peak, shmem_kb())
        time.sleep(0.5)
    wait_idle()
    time.sleep(2)
    left = job_mounts()
    dirs = [p for p in BASE.glob("*/*")]
    print(f"soak: {MINUTES:g} min, {ran} jobs, {failed} failed, "
          f"{submit_err} submit errors; Shmem start {start_shmem} kB, "
          f"peak {peak} kB, final {shmem_kb()} kB; leftover mounts "
          f"{len(left)}, leftover dirs {len(dirs)}")
    return 1 if failed or left or dirs else 0


if __name__ == "__main__":
    sys.exit(main())
