# SPDX-License-Identifier: GPL-2.0-or-later
"""A tiny file-based task runtime, in the style of PyCOMPSs's workers.

The master serializes each task's inputs to files (np.save); a pool of
persistent worker processes runs the tasks, and each task deserializes
its inputs -- every time (mode "baseline"), or through jobshm's
recurrent-read-only cache (mode "rro": once per node into the job's
shared memory, then zero-copy attaches), keyed by the data's unique name
(data id + version), as in Foyer et al.'s PyCOMPSs study.
"""
import multiprocessing as mp
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python"))
import jobshm  # noqa: E402

MODE = "baseline"
RUN = "run"


def _init(mode, run):
    global MODE, RUN
    MODE, RUN = mode, run


def get(path):
    """A task's read-only input, from its serialized file."""
    if MODE == "rro":
        key = f"{RUN}.{os.path.basename(path)}"
        return jobshm.rro(key, path)      # .npy straight into shm, once
    return np.load(path)


def put(workdir, name, array):
    """Serialize an input for the tasks; returns its path (its data id)."""
    path = os.path.join(workdir, f"{name}.npy")
    np.save(path, array)
    return path


POOL_SECONDS = 0.0     # start-up of the last pool: not a task's time


def _noop(_):
    return None


def pool(mode, workers, run):
    """A pool whose workers have all started (their start-up is timed
    apart, in POOL_SECONDS)."""
    global POOL_SECONDS
    t = time.perf_counter()
    p = mp.get_context("fork").Pool(workers, initializer=_init,
                                    initargs=(mode, run))
    p.map(_noop, range(workers * 4), chunksize=1)
    POOL_SECONDS = time.perf_counter() - t
    return p


def cleanup(mode, run):
    if mode != "rro":
        return
    for e in jobshm.list():
        if e.name.startswith(run + "."):
            jobshm.delete(e.name)
