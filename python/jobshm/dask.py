# SPDX-License-Identifier: GPL-2.0-or-later
"""Dask on jobshm: a NumPy array shared with every worker once per node.

    import jobshm.dask
    client = jobshm.dask.client()          # the job's scheduler
    Xs = jobshm.dask.share(client, X)      # once per node, in the job's shm
    futures = client.map(partial_sums, [Xs] * n, range(n))

`share` publishes X in the job's shm on each node that has workers (the
client's node from its own memory, every other node from one copy sent to
one of its workers) and returns a small handle.  A task that is given the
handle receives the array itself: attached zero-copy and read-only, one
mapping per worker process, whatever the number of tasks.  The segment's
name carries a hash of the contents, so new data is a new segment; it is
removed with the job's shm, or earlier by `release`.

Dask's own way, `client.scatter(X, broadcast=True)`, keeps one copy in
every worker process: a node with 16 workers holds 16.
"""
import hashlib
import json
import os
import socket
import time

import numpy as np

import jobshm

_attached = {}


def _attach(key):
    """In a worker: the shared array called key (one mapping per process)."""
    a = _attached.get(key)
    if a is None:
        a = _attached[key] = jobshm.attach(key, ro=True)
    return a


class Shared:
    """Handle of an array shared once per node; a task given it gets the
    array (read-only, zero-copy), not the handle."""

    __slots__ = ("key", "shape", "dtype")

    def __init__(self, key, shape, dtype):
        self.key, self.shape, self.dtype = key, tuple(shape), np.dtype(dtype)

    def __reduce__(self):
        return _attach, (self.key,)

    @property
    def array(self):
        """The array, attached here (the client's node)."""
        return _attach(self.key)

    def __repr__(self):
        return f"jobshm.dask.Shared({self.key!r}, {self.shape}, {self.dtype})"


def _node():
    return os.environ.get("SLURMD_NODENAME") or socket.gethostname()


def _where():
    """Where a process is: (node, the job's shm it sees)."""
    i = jobshm.info()
    return _node(), i["dir"], i["prefix"]


def _publish(key, array):
    jobshm.publish(key, lambda: array)
    return _where()


def _token(a):
    h = hashlib.blake2b(digest_size=10)
    h.update(f"{a.dtype.str}{a.shape}".encode())
    h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def _one_worker_per_node(client):
    """{(node, shm dir, prefix): a worker address} of the client's workers."""
    nodes = {}
    for addr, where in sorted(client.run(_where).items()):
        nodes.setdefault(tuple(where), addr)
    return nodes


def share(client, array, name="dask"):
    """Publish array in the job's shm on every node with a worker; return
    the handle to give tasks.  The same contents give the same handle."""
    array = np.ascontiguousarray(array)
    key = f"{name}-{_token(array)}"
    here = _where()
    for where, addr in _one_worker_per_node(client).items():
        if where == here:       # the client's node: from its own memory
            _publish(key, array)
            continue
        fut = client.scatter(array, workers=[addr], broadcast=False)
        try:
            client.submit(_publish, key, fut, workers=[addr],
                          allow_other_workers=False, pure=False).result()
        finally:
            fut.release()
    return Shared(key, array.shape, array.dtype)


def _delete(key):
    _attached.pop(key, None)
    try:
        jobshm.delete(key)
    except jobshm.Error:
        pass
    return True


def release(client, shared):
    """Remove a shared array from every node before the job ends (tasks
    that still hold it keep their pages until they let go)."""
    client.run(_delete, shared.key,
               workers=list(_one_worker_per_node(client).values()))
    _delete(shared.key)


def client(timeout=300):
    """A Client of the job's Dask scheduler (enqueue_jobshm --runtime=dask
    starts it), once every expected worker has joined."""
    from distributed import Client

    f = os.environ.get("JOBSHM_DASK_SCHEDULER_FILE")
    if not f:
        raise RuntimeError("jobshm.dask: JOBSHM_DASK_SCHEDULER_FILE is not "
                           "set (start the job with enqueue_jobshm "
                           "--runtime=dask)")
    end = time.monotonic() + timeout
    while not os.path.exists(f) and time.monotonic() < end:
        time.sleep(0.2)
    with open(f) as fh:
        json.load(fh)           # complete before Client reads it
    c = Client(scheduler_file=f, timeout=timeout)
    n = int(os.environ.get("JOBSHM_DASK_WORKERS", "0"))
    if n:
        c.wait_for_workers(n, timeout=max(1, end - time.monotonic()))
    return c
