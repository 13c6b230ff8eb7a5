#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Step launch cost against tasks per step: plain, --shm, job_container/tmpfs.

For N = 1, 16 and 64 tasks per step, each allocation (`salloc -n N -O` on
one node, overcommitted on a small machine) times STEPS steps of
`srun -n N -O true` from inside the allocation.  Allocations alternate:
plain, --shm=256M (jobshm: the first step makes the job's namespace, the
others join it) and, on a second test cluster with Slurm's
job_container/tmpfs on, a plain job (Slurm's own namespace per job).
Reported per N: the median step time of each kind, the median over
allocations of (median --shm step / median plain step of the paired
allocation), and its spread (min..max over allocations).

  BENCH_ALLOCS (default 5), BENCH_STEPS (default 8), BENCH_TASKS (1,16,64),
  BENCH_JSON: write the numbers there too, BENCH_NO_CONTAINER=1: skip it.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
D = os.environ.get("JOBSHM_CLUSTER_DIR", "/tmp/jobshm-cluster")
D2 = "/run/jobshm-bench-container"   # /tmp is private in its jobs
USER = "jobshm-u1"
ALLOCS = int(os.environ.get("BENCH_ALLOCS", "5"))
STEPS = int(os.environ.get("BENCH_STEPS", "8"))
TASKS = [int(t) for t in os.environ.get("BENCH_TASKS", "1,16,64").split(",")]

TIMER = """
import subprocess, sys, time
n, steps = sys.argv[1], int(sys.argv[2])
cmd = ["srun", "-n", n, "-O", "true"]
subprocess.run(cmd, check=True)          # not timed: the job's first step
for _ in range(steps):
    t = time.perf_counter()
    subprocess.run(cmd, check=True)
    print(time.perf_counter() - t)
"""


def container_cluster():
    """Start the job_container/tmpfs cluster; its slurm.conf, or None."""
    if os.environ.get("BENCH_NO_CONTAINER"):
        return None
    env = dict(os.environ, JOBSHM_CLUSTER_DIR=D2, JOBSHM_CLUSTER_NODES="1",
               JOBSHM_CLUSTER_PORT="17317", JOBSHM_CLUSTER_NODE_PREFIX="bc",
               JOBSHM_CLUSTER_CONTAINER="tmpfs")
    p = subprocess.run([f"{ROOT}/tests/cluster/cluster.sh", "start"], env=env,
                       capture_output=True, text=True)
    if p.returncode != 0:
        print(f"step_scaling: no job_container/tmpfs cluster: {p.stderr}",
              file=sys.stderr)
        return None
    return f"{D2}/slurm.conf"


def stop_container_cluster():
    env = dict(os.environ, JOBSHM_CLUSTER_DIR=D2, JOBSHM_CLUSTER_NODES="1",
               JOBSHM_CLUSTER_NODE_PREFIX="bc")
    subprocess.run([f"{ROOT}/tests/cluster/cluster.sh", "stop"], env=env,
                   capture_output=True)


def allocation(conf, node, n, timer, extra=()):
    """Median step time (s) of one allocation."""
    env = dict(os.environ, SLURM_CONF=conf)
    cmd = ["runuser", "-u", USER, "--", "salloc", "-Q", "-w", node,
           "-n", str(n), "-O", "--mem=1G", *extra,
           "/usr/bin/python3", timer, str(n), str(STEPS)]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True,
                       cwd="/tmp", check=True)
    return statistics.median(float(x) for x in p.stdout.split())


def measure(n, timer, conf2):
    plain, shm, cont = [], [], []
    for i in range(ALLOCS):
        kinds = [(plain, ()), (shm, ("--shm=256M",))]
        if i % 2:
            kinds.reverse()
        for out, extra in kinds:
            out.append(allocation(f"{D}/slurm.conf", "n1", n, timer, extra))
        if conf2:
            cont.append(allocation(conf2, "bc1", n, timer))
    res = {"tasks": n, "plain": plain, "shm": shm, "container": cont,
           "ratio": [b / a for a, b in zip(plain, shm)]}
    if cont:
        res["container_ratio"] = [c / a for a, c in zip(plain, cont)]
    return res


def show(r):
    def ms(v):
        return f"{statistics.median(v) * 1000:7.1f} ms"

    def ratio(v):
        return (f"{statistics.median(v):.3f} "
                f"[{min(v):.3f}..{max(v):.3f}]")
    line = (f"{r['tasks']:3d} tasks  plain {ms(r['plain'])}  --shm "
            f"{ms(r['shm'])}  ratio {ratio(r['ratio'])}")
    if r["container"]:
        line += (f"  | job_container/tmpfs {ms(r['container'])} "
                 f"ratio {ratio(r['container_ratio'])}")
    print(line, flush=True)


def main():
    fd, timer = tempfile.mkstemp(prefix="jobshm-bench-", suffix=".py",
                                 dir="/tmp")
    os.write(fd, TIMER.encode())
    os.close(fd)
    os.chmod(timer, 0o644)
    conf2 = container_cluster()
    try:
        print(f"jobshm step launch against tasks per step: {ALLOCS} "
              f"alternated allocations x {STEPS} steps, {os.cpu_count()} "
              f"CPUs, medians [min..max over allocations]", flush=True)
        results = []
        for n in TASKS:
            results.append(measure(n, timer, conf2))
            show(results[-1])
        if os.environ.get("BENCH_JSON"):
            with open(os.environ["BENCH_JSON"], "w") as f:
                json.dump({"allocs": ALLOCS, "steps": STEPS,
                           "cpus": os.cpu_count(), "results": results}, f,
                          indent=1)
    finally:
        os.unlink(timer)
        if conf2:
            stop_container_cluster()
    return 0


if __name__ == "__main__":
    sys.exit(main())
