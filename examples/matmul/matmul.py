#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Blocked matrix multiplication as in the PyCOMPSs study's Algorithm 2:
C = A x B over NB x NB blocks of BS x BS; the task for block C[i][j]
multiplies A[i][k] by B[k][j] for every k.  Each A and B block is read
by NB tasks: recurrent read-only data.

  matmul.py --mode baseline|rro --blocks NB --block-size BS --workers W
Prints one JSON line: mode, sizes, seconds, checksum of C.
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


def block_product(a_paths, b_paths):
    """Task: C[i][j] = sum over k of A[i][k] @ B[k][j]."""
    c = None
    for ap, bp in zip(a_paths, b_paths):
        p = taskrun.get(ap) @ taskrun.get(bp)
        c = p if c is None else c + p
    return c


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mode", choices=["baseline", "rro"], default="rro")
    ap.add_argument("--blocks", type=int, default=4)
    ap.add_argument("--block-size", type=int, default=256)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workdir")
    ap.add_argument("--run", default=f"mm{os.getpid()}")
    a = ap.parse_args(argv)
    nb, bs = a.blocks, a.block_size
    rng = np.random.default_rng(a.seed)
    with tempfile.TemporaryDirectory(dir=a.workdir) as wd:
        A = [[taskrun.put(wd, f"A{i}_{k}.v1", rng.random((bs, bs)))
              for k in range(nb)] for i in range(nb)]
        B = [[taskrun.put(wd, f"B{k}_{j}.v1", rng.random((bs, bs)))
              for j in range(nb)] for k in range(nb)]
        t = time.perf_counter()
        with taskrun.pool(a.mode, a.workers, a.run) as p:
            C = p.starmap(block_product,
                          [(A[i], [B[k][j] for k in range(nb)])
                           for i in range(nb) for j in range(nb)])
        secs = time.perf_counter() - t - taskrun.POOL_SECONDS
    taskrun.cleanup(a.mode, a.run)
    out = {"app": "matmul", "mode": a.mode, "blocks": nb, "block_size": bs,
           "mbytes": 2 * nb * nb * bs * bs * 8 / 2**20, "seconds": secs,
           "pool_seconds": taskrun.POOL_SECONDS,
           "checksum": float(np.round(sum(c.sum() for c in C), 6))}
    print(json.dumps(out), flush=True)
    return out


if __name__ == "__main__":
    main()
