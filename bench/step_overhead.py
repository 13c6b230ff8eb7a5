#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Launch overhead of --shm, paired against plain `srun true`.

Runs on the test cluster (make bench starts it).  Alternates the two
commands (A B B A ...) so drift hits both alike, and reports medians and
the median of per-pair ratios.  Two cases:

  job   srun [--shm=64M] true      a new allocation each time (the cost a
                                   user sees: mount, namespace, epilog)
  step  srun [--shm=64M] true      inside one allocation without --shm:
                                   plain steps touch nothing, --shm steps
                                   join the job shm the first one created
                                   (lock, statvfs, namespace, bind)
"""
import os
import statistics
import subprocess
import sys
import time

D = os.environ.get("JOBSHM_CLUSTER_DIR", "/tmp/jobshm-cluster")
os.environ["SLURM_CONF"] = f"{D}/slurm.conf"
USER = "jobshm-u1"
PAIRS = int(os.environ.get("BENCH_PAIRS", "30"))


def timed(cmd):
    t = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=f"{D}/out",
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def paired(plain, shm, pairs):
    a, b = [], []
    for i in range(pairs):
        order = [(plain, a), (shm, b)] if i % 2 == 0 else [(shm, b), (plain, a)]
        for cmd, out in order:
            out.append(timed(cmd))
    ratios = [y / x for x, y in zip(a, b)]
    return statistics.median(a), statistics.median(b), statistics.median(ratios)


def report(name, res):
    ma, mb, r = res
    print(f"{name:5s} plain {ma * 1000:7.1f} ms   --shm {mb * 1000:7.1f} ms   "
          f"median paired ratio {r:.3f} ({(r - 1) * 100:+.1f}%)")


def main():
    ru = ["runuser", "-u", USER, "--"]
    base = ru + ["srun", "-w", "n1", "--mem=256M"]
    for _ in range(3):  # warm up caches and the daemons
        timed(base + ["true"])
        timed(base + ["--shm=64M", "true"])
    print(f"jobshm step-launch overhead, {PAIRS} alternated pairs, "
          f"{os.cpu_count()} CPUs, Slurm {subprocess.run(['srun', '--version'], capture_output=True, text=True).stdout.strip()}")
    report("job", paired(base + ["true"], base + ["--shm=64M", "true"], PAIRS))
    # steps inside one allocation
    script = f"""
import subprocess, statistics, time, sys
sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})
from step_overhead import paired, report
report("step", paired(["srun", "true"],
                      ["srun", "--shm=64M", "true"], {PAIRS}))
"""
    subprocess.run(ru + ["salloc", "-w", "n1", "--mem=256M",
                         "/usr/bin/python3", "-c", script],
                   check=True, cwd=f"{D}/out", stderr=subprocess.DEVNULL)


if __name__ == "__main__":
    sys.exit(main())
