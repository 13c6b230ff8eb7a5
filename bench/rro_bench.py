#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Worker-runtime benchmarks (issue: worker runtime).  Paired, alternated
runs in one process; medians and spreads; a table in the PyCOMPSs study's
shape and a PNG plot of the gain against data size.

  1. attach to an existing 256 MiB segment vs np.load of the same array
     from a file in the page cache (target: attach >= 100x faster)
  2. first load into shm (jobshm.load) vs np.load (target: <= 1.15x)
  3. k-means and blocked matmul, baseline vs rro, with --workers W (default
     2) over a preset: "two-core" (scaled to a 2-core, 24 GiB machine) or
     "node" (the PyCOMPSs study's 16-worker sizes: k-means 2M points x
     32/128/256 dims, matmul up to 16x16 blocks of 1024).  Each case runs
     alternated paired repetitions (at least 5) and keeps adding them, up
     to BENCH_CASE_SECONDS (default 300), until the 95% bootstrap interval
     of the median paired gain is narrower than the gain or than 3 points.
     Pool start-up is timed apart, not as task time.  Targets, read from
     the intervals: no case wholly more than 3% below baseline; data-heavy
     k-means >= 30% faster at 2 workers, >= 50% at 16.

`make bench-rro` runs it on a private tmpfs (HUGE=within_size for 2 MiB
pages, as the `huge` config key gives jobs); it also runs inside a job with
--shm, or anywhere with JOBSHM_DIR set.  BENCH_QUICK=1 shrinks everything
for a smoke run.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
import jobshm  # noqa: E402

QUICK = os.environ.get("BENCH_QUICK") == "1"
REPS = 3 if QUICK else int(os.environ.get("BENCH_REPS", "5"))  # at least
CASE_SECONDS = float(os.environ.get("BENCH_CASE_SECONDS", "300"))
WORKERS = 2
PRESET = "two-core"
OUT = os.environ.get("BENCH_OUT", os.path.join(HERE, "results"))


def med(xs):
    return statistics.median(xs)


def spread(xs):
    return statistics.pstdev(xs) / statistics.mean(xs) * 100 if xs else 0.0


def micro(mib):
    arr = np.random.default_rng(0).random(mib * 2**20 // 8)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "a.npy")
        np.save(path, arr)
        np.load(path)                                  # into page cache
        jobshm.load("bench.a", path)
        loads, attaches, firsts, plains = [], [], [], []
        for i in range(REPS * 2):
            t = time.perf_counter(); x = np.load(path); loads.append(time.perf_counter() - t)
            del x
            t = time.perf_counter(); y = jobshm.attach("bench.a", ro=True); attaches.append(time.perf_counter() - t)
            del y
            for order in ((0, 1), (1, 0))[i % 2]:
                if order == 0:
                    t = time.perf_counter(); z = jobshm.load(f"bench.f{i}", path)
                    firsts.append(time.perf_counter() - t)
                    del z
                    jobshm.delete(f"bench.f{i}")
                else:
                    t = time.perf_counter(); z = np.load(path)
                    plains.append(time.perf_counter() - t)
                    del z
        jobshm.delete("bench.a")
    return {"mib": mib, "np_load_ms": med(loads) * 1e3,
            "attach_ms": med(attaches) * 1e3,
            "attach_speedup": med(loads) / med(attaches),
            "first_load_ms": med(firsts) * 1e3,
            "first_vs_np_load": med([f / p for f, p in zip(firsts, plains)])}


# One BLAS thread per task, as a task runtime gives each task one
# computing unit; on 2 cores, 2 workers with threaded BLAS fight each other.
ONE_THREAD = {v: "1" for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                               "MKL_NUM_THREADS")}


def blas():
    """The BLAS numpy loaded, from this process's mappings."""
    np.ones((2, 2)) @ np.ones((2, 2))
    with open("/proc/self/maps") as f:
        libs = {os.path.basename(l.split()[-1]) for l in f
                if "blas" in l.lower() and "/" in l}
    return ", ".join(sorted(libs)) or "unknown"


def app(script, args, mode):
    cmd = [sys.executable, os.path.join(HERE, "..", "examples", script),
           "--mode", mode] + args
    out = subprocess.run(cmd, check=True, capture_output=True, text=True,
                         env={**os.environ, **ONE_THREAD})
    return json.loads(out.stdout.strip().splitlines()[-1])


def gain_interval(base, rro, n=2000, seed=1):
    """Median paired gain (%) and its 95% bootstrap interval."""
    g = np.array([(b - r) / b * 100 for b, r in zip(base, rro)])
    rng = np.random.default_rng(seed)
    boot = np.median(rng.choice(g, (n, g.size)), axis=1)
    return float(np.median(g)), float(np.percentile(boot, 2.5)), \
        float(np.percentile(boot, 97.5))


def sweep_case(script, args):
    args = args + ["--workers", str(WORKERS)]
    base, rro, t0, i = [], [], time.monotonic(), 0
    while True:
        for mode in (("baseline", "rro") if i % 2 == 0 else ("rro", "baseline")):
            r = app(script, args, mode)
            (base if mode == "baseline" else rro).append(r)
        i += 1
        b = [r["seconds"] for r in base]
        r = [x["seconds"] for x in rro]
        gain, lo, hi = gain_interval(b, r)
        if i >= REPS and (hi - lo < max(abs(gain), 3.0) or QUICK or
                          time.monotonic() - t0 > CASE_SECONDS):
            break
    assert len({x["checksum"] for x in base + rro}) == 1, "results differ"
    return {"case": " ".join(args), "mbytes": base[0]["mbytes"],
            "baseline_s": med(b), "rro_s": med(r), "reps": i,
            "gain_pct": gain, "ci_lo": lo, "ci_hi": hi,
            "pool_s": med([x["pool_seconds"] for x in base + rro]),
            "spread_pct": max(spread(b), spread(r))}


def cases():
    if QUICK:
        km = [["--points", "100000", "--dims", d, "--iterations", "3"]
              for d in ("16", "64")]
        mm = [["--blocks", "2", "--block-size", "128"]]
    elif PRESET == "node":
        km = [["--points", "2000000", "--dims", d, "--fragments", "32",
               "--iterations", "10"] for d in ("32", "128", "256")]
        mm = [["--blocks", nb, "--block-size", bs]
              for nb, bs in (("8", "128"), ("8", "512"), ("16", "256"),
                             ("8", "1024"), ("16", "1024"))]
    else:
        km = [["--points", "400000", "--dims", d, "--iterations", "10",
               "--clusters", "4"] for d in ("8", "32", "128", "256")]
        mm = [["--blocks", nb, "--block-size", bs]
              for nb, bs in (("4", "128"), ("4", "512"), ("8", "256"),
                             ("4", "1024"))]
    return [("kmeans/kmeans.py", a) for a in km] + \
           [("matmul/matmul.py", a) for a in mm]


def plot(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    for appname, mark in (("kmeans", "o"), ("matmul", "s")):
        pts = [(r["mbytes"], r["gain_pct"]) for r in rows if appname in r["app"]]
        if pts:
            ax.plot(*zip(*sorted(pts)), marker=mark, label=appname)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("read-only input data (MiB)")
    ax.set_ylabel("time saved by rro vs baseline (%)")
    ax.set_title("jobshm rro gain, 2 workers, 2-core node")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


REPORTING = "/sys/module/page_reporting/parameters/page_reporting_order"


def pause_page_reporting():
    """On a VM with virtio-balloon free page reporting (this one), memory
    free for ~2 s goes back to the hypervisor and the next touch costs
    ~2 ms/MiB (0.5 GB/s instead of 11-13 GB/s, measured with a memset of
    800 MiB).  That taxes whoever allocates new memory -- the shm -- and
    spares baseline, which reuses what it just freed; no bare-metal node
    has it.  An order above the kernel's largest stops reporting for the
    run (BENCH_KEEP_VM=1 keeps it).  Returns the old value, or None."""
    if os.environ.get("BENCH_KEEP_VM") == "1":
        return None
    try:
        with open(REPORTING) as f:
            old = f.read().strip()
        with open(REPORTING, "w") as f:
            f.write("11")
        return old
    except OSError:
        return None


def restore_page_reporting(old):
    if old is not None:
        with open(REPORTING, "w") as f:
            f.write(old)


def main():
    global WORKERS, PRESET
    import argparse
    ap = argparse.ArgumentParser(description="jobshm worker-runtime bench")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--preset", choices=["two-core", "node"],
                    default="two-core")
    a = ap.parse_args()
    WORKERS, PRESET = a.workers, a.preset
    old = pause_page_reporting()
    try:
        run(old)
    finally:
        restore_page_reporting(old)


def run(paused):
    os.makedirs(OUT, exist_ok=True)
    if paused is not None:
        print(f"free page reporting to the hypervisor paused "
              f"({REPORTING}: {paused} -> 11) for this run")
    print(f"jobshm worker-runtime bench; shm: {jobshm.info()['dir']} "
          f"{jobshm.info()['note']}; BLAS: {blas()}")
    m = micro(32 if QUICK else 256)
    print(f"{m['mib']} MiB: np.load {m['np_load_ms']:.1f} ms, attach "
          f"{m['attach_ms']:.3f} ms -> attach {m['attach_speedup']:.0f}x faster; "
          f"first load into shm {m['first_load_ms']:.1f} ms = "
          f"{m['first_vs_np_load']:.2f}x np.load (median paired ratio)")
    rows = []
    print(f"{WORKERS} workers, preset {PRESET}")
    print(f"{'app':8s} {'case':64s} {'MiB':>7s} {'base s':>8s} {'rro s':>8s} "
          f"{'gain %':>7s} {'95% CI':>15s} {'reps':>4s} {'pool s':>6s}")
    for script, args in cases():
        r = sweep_case(script, args)
        r["app"] = script.split("/")[0]
        rows.append(r)
        print(f"{r['app']:8s} {r['case']:64s} {r['mbytes']:7.0f} "
              f"{r['baseline_s']:8.3f} {r['rro_s']:8.3f} {r['gain_pct']:7.1f} "
              f"[{r['ci_lo']:6.1f},{r['ci_hi']:6.1f}] {r['reps']:4d} "
              f"{r['pool_s']:6.3f}", flush=True)
    worse = [r for r in rows if r["ci_hi"] < -3]
    print("target: no case wholly more than 3% below baseline: " +
          ("met" if not worse else "NOT met: " +
           ", ".join(r["case"] for r in worse)))
    with open(os.path.join(OUT, f"rro-{WORKERS}w.json"), "w") as f:
        json.dump({"blas": blas(), "min_reps": REPS, "workers": WORKERS,
                   "preset": PRESET, "cpus": os.cpu_count(),
                   "page_reporting_paused": paused is not None,
                   "micro": m, "sweep": rows},
                  f, indent=1)
    plot(rows, os.path.join(OUT, f"rro_gain-{WORKERS}w.png"))
    print(f"wrote {OUT}/rro-{WORKERS}w.json and {OUT}/rro_gain-{WORKERS}w.png")


if __name__ == "__main__":
    main()
