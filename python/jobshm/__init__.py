# SPDX-License-Identifier: GPL-2.0-or-later
"""jobshm: node-wide shared NumPy arrays for the tasks of a Slurm job.

Segments live in the job's private shm (JOBSHM_DIR, named with
JOBSHM_PREFIX); outside a jobshm job they fall back to the node's
/dev/shm (see info()["note"]).

SharedArray-compatible calls::

    a = jobshm.create("shm://x", (1000, 3), dtype=float)   # zeros, writable
    b = jobshm.attach("x", ro=True)                        # zero-copy view
    jobshm.list(); jobshm.delete("x")

And the recurrent-read-only (RRO) cache of a task runtime::

    X = jobshm.rro(data_key, lambda: np.load(path))   # or jobshm.rro(key, path)

loads X once per node (whichever worker comes first; the others wait and
attach), then every task on the node gets a read-only, zero-copy array.
A segment is built unnamed and linked into place, so no reader ever sees
half of it, and two publishers never overwrite each other.

Errors are jobshm.Error, an OSError; a missing name is also a
FileNotFoundError (jobshm.NotFound), a taken one a FileExistsError
(jobshm.Exists), a refused one a PermissionError (jobshm.PermissionDenied),
and a segment the job's shm cannot hold has errno ENOSPC.  A bad shape or
dtype is a TypeError or ValueError, as numpy's, before anything is made.
"""
import collections
import errno
import json
import math
import operator
import os
import re

import numpy as np
import numpy.lib.format as npformat

from . import _jobshm as _c
from ._jobshm import Error, Exists, NotFound, PermissionDenied

__all__ = ["create", "attach", "delete", "list", "from_array", "load",
           "publish", "rro", "stats", "info", "Error", "NotFound", "Exists",
           "PermissionDenied", "Entry", "Lock", "Barrier", "BarrierTimeout"]

from ._jobshm import HEADER, MAGIC   # the array header: lib/jobshm.h
Entry = collections.namedtuple("Entry", "name dtype shape size")
_metas = {}                    # header line -> parsed metadata


def _name(name):
    """A str, bytes (decoded as os.fsdecode does) or os.PathLike name."""
    name = os.fsdecode(name)
    if name.startswith("shm://"):
        name = name[len("shm://"):]
    _c.name_check(name)
    return name


def info():
    """dir, prefix, note (empty inside a jobshm job), size, used."""
    return _c.info()


def _fmt(n):
    return _c.size_format(min(n, 2**64 - 1))


def _reserve(name, nbytes, make, *args):
    """make(*args): a new segment for nbytes of name's data.  Where the
    job's shm cannot hold it (full, or more than any shm could), an Error
    with errno ENOSPC that says how much is free and the --shm that would
    do."""
    try:
        return make(*args)
    except (Error, OverflowError) as e:     # OverflowError: over 8E
        if isinstance(e, Error) and e.errno != errno.ENOSPC:
            raise
        shm = info()
        need = shm["used"] + HEADER + nbytes
        unit = "G" if need >= 1 << 30 else "M"          # whole G, or M
        need = -(-need // (1 << (30 if unit == "G" else 20)))
        raise Error(errno.ENOSPC, f"segment '{name}': {_fmt(nbytes)} is "
                    f"more than this job's shm can hold ({_fmt(shm['size'])},"
                    f" {_fmt(max(shm['size'] - shm['used'], 0))} free); ask "
                    f"for more with --shm={need}{unit}") from e


def _check(name, shape, dtype):
    """(shape as a tuple of ints, dtype) of a new array called name, as
    numpy.zeros takes them; TypeError or ValueError naming name if not."""
    try:
        shape = tuple(map(operator.index, shape if np.iterable(shape)
                          else (shape,)))
        dtype = np.dtype(dtype)
    except TypeError as e:
        raise TypeError(f"segment '{name}': {e} (shape: an int or a tuple "
                        "of ints; dtype: a numpy dtype)") from None
    if any(n < 0 for n in shape):
        raise ValueError(f"segment '{name}': shape {shape}: negative "
                         "dimensions are not allowed")
    if dtype.hasobject:
        raise ValueError(f"segment '{name}': dtype {dtype}: object arrays "
                         "cannot be shared (they hold pointers into one "
                         "process)")
    if dtype.itemsize == 0 and dtype.names is None:    # as numpy.frombuffer
        raise ValueError(f"segment '{name}': dtype {dtype}: itemsize cannot "
                         "be zero (give one, as in 'S8' or 'V16')")
    return shape, dtype


def _header(dtype, shape, order):
    meta = json.dumps({"descr": npformat.dtype_to_descr(np.dtype(dtype)),
                       "shape": [int(n) for n in shape], "order": order})
    raw = MAGIC + meta.encode() + b"\n"
    if len(raw) > HEADER:
        raise ValueError("array metadata too large for a jobshm header")
    return raw


def _meta(raw, name):
    """(dtype, shape, count, order) of a header line; cached, since every
    attach of a segment reads the same line."""
    m = _metas.get(raw)
    if m is not None:
        return m
    if not raw.startswith(MAGIC):
        raise Error(errno.EINVAL, f"segment '{name}' is not a jobshm array")
    meta = json.loads(raw[len(MAGIC):])
    shape = tuple(meta["shape"])
    m = (npformat.descr_to_dtype(meta["descr"]), shape,
         int(np.prod(shape, dtype=np.int64)), meta["order"])
    if len(_metas) >= 4096:
        _metas.clear()
    _metas[raw] = m
    return m


def _array(seg, name):
    dtype, shape, count, order = _meta(seg.header, name)
    a = np.frombuffer(seg, dtype=dtype, count=count, offset=HEADER)
    return a.reshape(shape, order=order)


def _new(name, dtype, shape, order, mpol=None):
    shape, dtype = _check(name, shape, dtype)
    h = _header(dtype, shape, order)
    nbytes = math.prod(shape) * dtype.itemsize
    seg = _reserve(name, nbytes, _c.create, name, HEADER + nbytes)
    if mpol is not None:        # before any page is touched
        seg.policy(mpol)
    memoryview(seg)[:len(h)] = h
    return seg


def _publish_or_attach(seg, name, ro):
    if seg.publish():
        a = _array(seg, name)
        return _readonly(a) if ro and a.flags.writeable else a
    del seg                                  # lost the race: use theirs
    return attach(name, ro=ro)


def _readonly(a):
    a.flags.writeable = False
    return a


def create(name, shape, dtype=float, mpol=None):
    """A new zero-filled shared array; shape and dtype as numpy.zeros takes
    them (TypeError or ValueError, leaving nothing, if bad).
    FileExistsError (jobshm.Exists) if the name is taken; Error with errno
    ENOSPC if the job's shm cannot hold it.  mpol gives the segment its
    own NUMA policy: "interleave" (over the job's NUMA nodes), "bind:LIST",
    "local" or "default"."""
    name = _name(name)
    seg = _new(name, dtype, shape, "C", mpol)
    a = _array(seg, name)              # before the name is taken
    if not seg.publish():
        raise Exists(errno.EEXIST, f"segment '{name}' exists")
    return a


def attach(name, ro=False, populate=False):
    """The shared array called name, zero-copy; read-only when ro.
    populate maps every page now rather than at first touch.
    FileNotFoundError (jobshm.NotFound) if there is none."""
    name = _name(name)
    return _array(_c.attach(name, not ro, populate), name)


def delete(name):
    """Remove the name (and its rro lock); attached arrays stay valid."""
    name = _name(name)
    _c.unlink(name)
    _rro.deleted(name)


def list():  # noqa: A001 - SharedArray's name
    """Entry(name, dtype, shape, size) of each array in the namespace."""
    out = []
    for name, size in _c.list():
        try:
            a = attach(name, ro=True)
            out.append(Entry(name, a.dtype, a.shape, size))
        except (Error, ValueError):
            out.append(Entry(name, None, None, size))
    return out


def from_array(name, array, ro=False, mpol=None):
    """Copy array into a new segment (one copy) and publish it."""
    name = _name(name)
    array = np.asanyarray(array)
    order = "F" if array.flags.f_contiguous and not array.flags.c_contiguous \
        else "C"
    seg = _new(name, array.dtype, array.shape, order, mpol)
    dst = _array(seg, name)
    dst[...] = array
    return _publish_or_attach(seg, name, ro)


# The header numpy writes for plain arrays; anything else goes to numpy's
# own (slower, ast-based) parser.
_NPY = re.compile(r"\{'descr': '([<>|=]?[a-zA-Z][0-9]*)', 'fortran_order': "
                  r"(True|False), 'shape': \(((?:[0-9]+, ?)*[0-9]*)\), \}")


def _npy_header(path):
    """(shape, fortran, dtype, data offset) of an .npy file."""
    with open(path, "rb", buffering=0) as f:
        head = f.read(4096)
        v1 = head[6:7] == b"\x01"
        start = 10 if v1 else 12
        hlen = int.from_bytes(head[8:start], "little")
        m = _NPY.fullmatch(head[start:start + hlen].decode("latin1").strip())
        if head[:6] == b"\x93NUMPY" and start + hlen <= len(head) and m:
            shape = tuple(int(n) for n in m[3].replace(",", " ").split())
            return shape, m[2] == "True", np.dtype(m[1]), start + hlen
        f.seek(0)
        version = npformat.read_magic(f)
        shape, fortran, dtype = npformat._read_array_header(f, version)
        return shape, fortran, dtype, f.tell()


def load(name, path, mpol=None):
    """An .npy file straight into shm (one copy), read-only; mpol as for
    create()."""
    name = _name(name)
    shape, fortran, dtype, offset = _npy_header(path)
    if dtype.hasobject:
        raise ValueError(f"{path}: object arrays cannot be shared")
    nbytes = math.prod(shape) * dtype.itemsize
    if mpol is not None:
        seg = _new(name, dtype, shape, "F" if fortran else "C", mpol)
        seg.fill(HEADER, os.fspath(path), offset, nbytes)
    else:
        h = _header(dtype, shape, "F" if fortran else "C")
        seg = _reserve(name, nbytes, _c.load, name,
                       h + bytes(HEADER - len(h)), os.fspath(path), offset,
                       nbytes)
    return _publish_or_attach(seg, name, ro=True)


def publish(name, loader, mpol=None):
    """The shared array called name; if missing, made from loader() (an
    array, or a path to an .npy file) and published atomically: every
    caller gets identical, complete data, whoever wins."""
    name = _name(name)
    try:
        return attach(name, ro=True)
    except Error as e:
        if e.errno != errno.ENOENT:
            raise
    src = loader() if callable(loader) else loader
    if isinstance(src, (str, bytes, os.PathLike)):
        return load(name, src, mpol)
    return from_array(name, src, ro=True, mpol=mpol)


class Lock:
    """A lock shared by every process of the job on this node, whatever
    started it (srun tasks, pool workers)::

        with jobshm.Lock("counter") as lock:
            if lock.recovered:      # the last holder died holding it
                repair()
            counter[0] += 1

    The kernel releases it when its holder dies; the next owner sees
    recovered == True."""

    def __init__(self, name):
        self.name = _name(name)
        self.recovered = False
        self._handle = None

    def acquire(self):
        if self._handle is not None:
            raise RuntimeError(f"jobshm.Lock('{self.name}') is held already")
        self._handle, self.recovered = _c.lock(self.name)
        return self

    def release(self):
        if self._handle is None:
            raise RuntimeError(f"jobshm.Lock('{self.name}') is not held")
        h, self._handle = self._handle, None
        _c.unlock(h)

    __enter__ = acquire

    def __exit__(self, *exc):
        self.release()


class BarrierTimeout(Error, TimeoutError):
    """Not every party reached the barrier in time (one died or never
    came); errno is ETIMEDOUT."""


class Barrier:
    """Wait until `parties` processes of the job on this node reach it::

        jobshm.Barrier("loaded", parties=int(os.environ["SLURM_NTASKS"]),
                       timeout=60).wait()

    Reusable.  With a timeout (seconds), a barrier that a participant
    never reaches raises BarrierTimeout instead of hanging."""

    def __init__(self, name, parties, timeout=None):
        if int(parties) < 1:
            raise ValueError("parties must be 1 or more")
        self.name, self.parties = _name(name), int(parties)
        self.timeout = timeout

    def wait(self, timeout=None):
        t = self.timeout if timeout is None else timeout
        try:
            _c.barrier(self.name, self.parties, -1.0 if t is None else
                       float(t))
        except Error as e:
            if e.errno == errno.ETIMEDOUT:
                raise BarrierTimeout(e.errno, e.strerror) from None
            raise


# The rro cache (rrocache.py) uses the calls above; jobshm.rro and
# jobshm.stats are its, jobshm._cache its per-process arrays.
from .rrocache import rro, stats, _rro  # noqa: E402
_cache = _rro.arrays
