#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Dask k-means over a broadcast array: client.scatter(X, broadcast=True)
against jobshm.dask.share(client, X), on one node.

W worker processes of one thread (a distributed.LocalCluster; in a job
they would be enqueue_jobshm --runtime=dask's), the data X (N points x D
dims, float64) read by every task: each iteration runs one task per
fragment (a slice of X's rows) with the k-means partial sums of
examples/kmeans, and reduces them on the client.  For each size and
repetition both ways run in alternated order, each on fresh workers
(a new LocalCluster), and the bench reports:
  distribute   time to get X to the workers (scatter, or share)
  iteration    median time of an iteration
  memory       the node's memory for X after one iteration: the workers'
               anonymous RSS (their copies) plus the shm used, less the
               workers' RSS before X arrived
Medians over repetitions; ratio = jobshm / scatter per paired repetition.

  dask_bench.py --workers W [--sizes 1000000x16,...] [--reps R] [--json F]
JOBSHM_DIR must name a tmpfs for the shared segments (make bench-dask).
"""
import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
sys.path.insert(0, os.path.join(HERE, "..", "examples", "kmeans"))

import jobshm.dask as jd  # noqa: E402
from kmeans import _partial  # noqa: E402

K = 8


def partial(x, lo, hi, centers):
    """Task: k-means partial sums of rows lo..hi of x (~1 MiB at a time)."""
    k = centers.shape[0]
    sums, counts = np.zeros((k, x.shape[1])), np.zeros(k, dtype=np.int64)
    step = max(1, 2**20 // (8 * x.shape[1]))
    for i in range(lo, hi, step):
        s, c = _partial(x[i:min(hi, i + step)], centers)
        sums += s
        counts += c
    return sums, counts


def iteration(client, data, n, frags, centers):
    per = -(-n // frags)
    futs = [client.submit(partial, data, i * per, min(n, (i + 1) * per),
                          centers, pure=False) for i in range(frags)]
    parts = client.gather(futs)
    sums = sum(s for s, _ in parts)
    counts = sum(c for _, c in parts)
    return np.where(counts[:, None] > 0,
                    sums / np.maximum(counts, 1)[:, None], centers)


def anon_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    return 0


def node_kb(client):
    st = os.statvfs(os.environ["JOBSHM_DIR"])
    shm = (st.f_blocks - st.f_bfree) * st.f_frsize // 1024
    return sum(client.run(anon_kb).values()) + shm


def cluster(workers):
    """A fresh LocalCluster (no copy of an earlier run left in a worker)."""
    from distributed import Client, LocalCluster
    lc = LocalCluster(n_workers=workers, threads_per_worker=1,
                      processes=True, dashboard_address=None, memory_limit=0)
    return lc, Client(lc)


def one_way(way, X, frags, iters, workers):
    lc, client = cluster(workers)
    try:
        return measure(client, way, X, frags, iters)
    finally:
        client.close()
        lc.close()


def measure(client, way, X, frags, iters):
    base = node_kb(client)
    t = time.perf_counter()
    if way == "scatter":
        data = client.scatter(X, broadcast=True)
    else:
        data = jd.share(client, X)
    dist = time.perf_counter() - t
    centers = np.random.default_rng(1).random((K, X.shape[1]))
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        centers = iteration(client, data, X.shape[0], frags, centers)
        times.append(time.perf_counter() - t)
    mem = node_kb(client) - base
    if way == "scatter":
        data.release()
    else:
        jd.release(client, data)
    return {"distribute": dist, "iteration": statistics.median(times),
            "memory_mib": mem / 1024, "centers": float(centers.sum())}


def bench_size(n, d, a):
    X = np.random.default_rng(0).random((n, d))
    runs = {"scatter": [], "jobshm": []}
    for r in range(a.reps):
        ways = ["scatter", "jobshm"] if r % 2 == 0 else ["jobshm", "scatter"]
        for w in ways:
            runs[w].append(one_way(w, X, a.fragments, a.iterations,
                                   a.workers))
    # the same answer both ways
    assert abs(runs["scatter"][0]["centers"] - runs["jobshm"][0]["centers"]) \
        < 1e-6 * abs(runs["scatter"][0]["centers"])
    out = {"points": n, "dims": d, "mib": X.nbytes / 2**20}
    for key in ("distribute", "iteration", "memory_mib"):
        s = [x[key] for x in runs["scatter"]]
        j = [x[key] for x in runs["jobshm"]]
        out[key] = {"scatter": statistics.median(s),
                    "jobshm": statistics.median(j),
                    "ratio": statistics.median(b / a for a, b in zip(s, j)),
                    "ratio_min": min(b / a for a, b in zip(s, j)),
                    "ratio_max": max(b / a for a, b in zip(s, j))}
    return out


def show(o):
    it, di, me = o["iteration"], o["distribute"], o["memory_mib"]
    print(f"{o['points']:>8d} x {o['dims']:<4d} {o['mib']:7.0f} MiB | "
          f"iteration {it['scatter']*1e3:8.1f} / {it['jobshm']*1e3:8.1f} ms "
          f"ratio {it['ratio']:.3f} [{it['ratio_min']:.3f}..{it['ratio_max']:.3f}] | "
          f"distribute {di['scatter']:6.2f} / {di['jobshm']:6.2f} s | "
          f"memory {me['scatter']:7.0f} / {me['jobshm']:7.0f} MiB",
          flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--sizes", default="250000x16,1000000x32,2000000x64")
    p.add_argument("--fragments", type=int, default=0,
                   help="tasks per iteration (default: 4 per worker)")
    p.add_argument("--iterations", type=int, default=5)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--json")
    a = p.parse_args()
    a.fragments = a.fragments or 4 * a.workers
    if not os.environ.get("JOBSHM_DIR"):
        sys.exit("dask_bench: set JOBSHM_DIR to a tmpfs (make bench-dask)")
    print(f"Dask k-means over a broadcast array, {a.workers} workers, "
          f"{os.cpu_count()} CPUs, {a.fragments} tasks/iteration, "
          f"{a.reps} alternated reps, fresh workers each; "
          f"scatter(broadcast=True) / jobshm.dask", flush=True)
    res = []
    for size in a.sizes.split(","):
        n, d = (int(x) for x in size.split("x"))
        res.append(bench_size(n, d, a))
        show(res[-1])
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"workers": a.workers, "cpus": os.cpu_count(),
                       "fragments": a.fragments, "reps": a.reps,
                       "results": res}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
