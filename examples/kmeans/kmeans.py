#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""K-means as in the PyCOMPSs study's Algorithm 1: the points are split
into fragments; each iteration runs cluster_partial_sum per fragment as a
task and reduces the partial sums on the master.  Fragments are read-only
and read every iteration: recurrent read-only data.

  kmeans.py --mode baseline|rro --points N --dims D --fragments F
            --clusters K --iterations I --workers W --workdir DIR
Prints one JSON line: mode, sizes, seconds, checksum of the centers.
"""
import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import taskrun  # noqa: E402


def cluster_partial_sum(frag_path, centers):
    """Task: for one fragment, the per-cluster sums and counts."""
    x = taskrun.get(frag_path)
    k = centers.shape[0]
    sums, counts = np.zeros((k, x.shape[1])), np.zeros(k, dtype=np.int64)
    step = max(1, 2**20 // (8 * x.shape[1]))  # ~1 MiB of rows: one pass
    for i in range(0, x.shape[0], step):       # over memory, not two
        sums_add, counts_add = _partial(x[i:i + step], centers)
        sums += sums_add
        counts += counts_add
    return sums, counts


def _partial(x, centers):
    # argmin over clusters of |x - c|^2 = |x|^2 - 2 x.c + |c|^2: the |x|^2
    # term is the same for every cluster, so it is left out
    label = ((centers * centers).sum(1) - 2 * (x @ centers.T)).argmin(1)
    k = centers.shape[0]
    onehot = np.zeros((x.shape[0], k))
    onehot[np.arange(x.shape[0]), label] = 1.0
    return onehot.T @ x, np.bincount(label, minlength=k)


def make_fragments(a, workdir):
    rng = np.random.default_rng(a.seed)
    per = a.points // a.fragments
    paths = []
    for i in range(a.fragments):
        frag = rng.random((per, a.dims))
        paths.append(taskrun.put(workdir, f"kmeans.frag{i}.v1", frag))
    return paths, np.random.default_rng(a.seed + 1).random((a.clusters, a.dims))


def kmeans(a, paths, centers):
    with taskrun.pool(a.mode, a.workers, a.run) as p:
        for _ in range(a.iterations):
            parts = p.starmap(cluster_partial_sum,
                              [(f, centers) for f in paths])
            sums = sum(s for s, _ in parts)
            counts = sum(c for _, c in parts)
            centers = np.where(counts[:, None] > 0,
                               sums / np.maximum(counts, 1)[:, None], centers)
    return centers


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mode", choices=["baseline", "rro"], default="rro")
    ap.add_argument("--points", type=int, default=200_000)
    ap.add_argument("--dims", type=int, default=64)
    ap.add_argument("--fragments", type=int, default=8)
    ap.add_argument("--clusters", type=int, default=8)
    ap.add_argument("--iterations", type=int, default=5)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workdir")
    ap.add_argument("--run", default=f"km{os.getpid()}")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=a.workdir) as wd:
        paths, centers = make_fragments(a, wd)
        t = time.perf_counter()
        centers = kmeans(a, paths, centers)
        secs = time.perf_counter() - t - taskrun.POOL_SECONDS
    taskrun.cleanup(a.mode, a.run)
    out = {"app": "kmeans", "mode": a.mode, "points": a.points,
           "dims": a.dims, "fragments": a.fragments,
           "mbytes": a.points * a.dims * 8 / 2**20, "seconds": secs,
           "pool_seconds": taskrun.POOL_SECONDS,
           "checksum": float(np.round(centers.sum(), 9))}
    print(json.dumps(out), flush=True)
    return out


if __name__ == "__main__":
    main()
