#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Import scaling: N concurrent importers of numpy and scipy on one node,
straight from a slow source against `jobshm stage` then import from the
job's shm.

The source is bench/slowfs (a FUSE passthrough adding DELAY_US to every
metadata operation and counting the operations that reach it), standing
in for a parallel filesystem under load.  Each measurement gets a fresh
mount (no client cache carried over) and, for the staged runs, a fresh
tmpfs as the job's shm.  Reported per N: wall time until every importer
has imported, and the metadata operations, reads and bytes that reached
the source.

  make bench-stage [STAGE_N=1,2] [DELAY_US=500]
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PY = "/usr/bin/python3"
PKGS = ("numpy", "scipy")
IMPORT = "import numpy, scipy.linalg, scipy.sparse, scipy.optimize"
NS = [int(n) for n in os.environ.get("STAGE_N", "1,2").split(",")]
DELAY = os.environ.get("DELAY_US", "500")
REPS = int(os.environ.get("STAGE_REPS", "3"))
OUT = os.environ.get("BENCH_OUT", os.path.join(HERE, "results"))


def make_env(top):
    """The source: site-packages/ (imported directly) and the same tree
    as one archive, env.tar (staged: one file read whole, the way DLFM and
    Spindle fan out a single object instead of thousands of files)."""
    env = os.path.join(top, "env")
    for p in PKGS:
        src = f"/usr/lib/python3/dist-packages/{p}"
        shutil.copytree(src, os.path.join(env, "site-packages", p),
                        symlinks=True)
    subprocess.run(["tar", "-C", env, "-cf", os.path.join(top, "env.tar"),
                    "site-packages"], check=True)
    os.rename(os.path.join(top, "env.tar"), os.path.join(env, "env.tar"))
    return env


class Slow:
    """A fresh slowfs mount of env for one measurement."""

    def __init__(self, env, top):
        self.mnt = tempfile.mkdtemp(dir=top)
        self.count = self.mnt + ".count"
        self.p = subprocess.Popen([os.path.join(HERE, "slowfs"), env,
                                   self.mnt, DELAY, self.count, "-f",
                                   "-o", "ro"])
        for _ in range(100):
            if os.path.ismount(self.mnt):
                return
            time.sleep(0.05)
        raise RuntimeError("slowfs did not mount")

    def counts(self):
        subprocess.run(["fusermount3", "-u", self.mnt], check=True)
        self.p.wait()
        f = open(self.count).read().split()
        os.rmdir(self.mnt)
        return {"metadata": int(f[1]), "reads": int(f[3]), "bytes": int(f[5])}


def run_n(n, cmd, env):
    t = time.perf_counter()
    ps = [subprocess.Popen(["bash", "-c", cmd], env=env) for _ in range(n)]
    assert all(p.wait() == 0 for p in ps), cmd
    return time.perf_counter() - t


def direct(n, env, top):
    s = Slow(env, top)
    secs = run_n(n, f"{PY} -c '{IMPORT}'",
                 {**os.environ, "PYTHONPATH": s.mnt + "/site-packages"})
    return secs, s.counts()


def staged(n, env, top):
    s = Slow(env, top)
    shm = tempfile.mkdtemp(dir=top)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2g", "benchshm", shm],
                   check=True)
    try:
        e = {**os.environ, "JOBSHM_DIR": shm, "JOBSHM_PREFIX": "b.",
             "PYTHONPATH": os.path.join(HERE, "..", "python")}
        cmd = (f'eval "$({PY} -m jobshm.stage {s.mnt}/env.tar --name env)" && '
               f"{PY} -c '{IMPORT}'")
        secs = run_n(n, cmd, e)
        return secs, s.counts()
    finally:
        subprocess.run(["umount", shm])
        os.rmdir(shm)


def main():
    subprocess.run(["make", "-s", "-C", os.path.join(HERE, ".."),
                    "bench/slowfs"], check=True)
    os.makedirs(OUT, exist_ok=True)
    top = tempfile.mkdtemp(prefix="jobshm-stage-bench.")
    rows = []
    try:
        env = make_env(top)
        print(f"{IMPORT}; source: slowfs, {DELAY} us per metadata op; "
              f"{REPS} reps, medians; {os.cpu_count()} CPUs")
        print(f"{'N':>3} {'direct s':>9} {'staged s':>9} {'speedup':>8} "
              f"{'direct meta':>11} {'staged meta':>11} {'staged MiB':>10}")
        for n in NS:
            d = [direct(n, env, top) for _ in range(REPS)]
            s = [staged(n, env, top) for _ in range(REPS)]
            med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
            r = {"n": n, "direct_s": med([x[0] for x in d]),
                 "staged_s": med([x[0] for x in s]),
                 "direct_ops": d[0][1], "staged_ops": s[0][1]}
            r["speedup"] = r["direct_s"] / r["staged_s"]
            rows.append(r)
            print(f"{n:3d} {r['direct_s']:9.2f} {r['staged_s']:9.2f} "
                  f"{r['speedup']:8.2f} {r['direct_ops']['metadata']:11d} "
                  f"{r['staged_ops']['metadata']:11d} "
                  f"{r['staged_ops']['bytes'] / 2**20:10.1f}", flush=True)
    finally:
        shutil.rmtree(top, ignore_errors=True)
    with open(os.path.join(OUT, "stage.json"), "w") as f:
        json.dump({"import": IMPORT, "delay_us": int(DELAY), "reps": REPS,
                   "cpus": os.cpu_count(), "rows": rows}, f, indent=1)
    print(f"wrote {OUT}/stage.json")


if __name__ == "__main__":
    sys.exit(main())
