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
"""
import atexit
import collections
import errno
import json
import os
import re
import warnings

import numpy as np
import numpy.lib.format as npformat

from . import _jobshm as _c
from ._jobshm import Error

__all__ = ["create", "attach", "delete", "list", "from_array", "load",
           "publish", "rro", "stats", "info", "Error", "Entry", "Lock",
           "Barrier", "BarrierTimeout"]

from ._jobshm import HEADER, MAGIC   # the array header: lib/jobshm.h
Entry = collections.namedtuple("Entry", "name dtype shape size")
_cache = {}                    # rro: name -> read-only array, per process
_metas = {}                    # header line -> parsed metadata
POPULATE = os.environ.get("JOBSHM_POPULATE", "1") != "0"   # rro attaches


def _name(name):
    name = os.fspath(name)
    if name.startswith("shm://"):
        name = name[len("shm://"):]
    _c.name_check(name)
    return name


def info():
    """dir, prefix, note (empty inside a jobshm job), size, used."""
    return _c.info()


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
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    seg = _c.create(name, HEADER + nbytes)
    if mpol is not None:        # before any page is touched
        seg.policy(mpol)
    h = _header(dtype, shape, order)
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
    """A new zero-filled shared array; FileExistsError if the name is taken.
    mpol gives the segment its own NUMA policy: "interleave" (over the
    job's NUMA nodes), "bind:LIST", "local" or "default"."""
    name = _name(name)
    shape = (shape,) if np.isscalar(shape) else tuple(shape)
    seg = _new(name, dtype, shape, "C", mpol)
    if not seg.publish():
        raise FileExistsError(errno.EEXIST, f"segment '{name}' exists")
    return _array(seg, name)


def attach(name, ro=False, populate=False):
    """The shared array called name, zero-copy; read-only when ro.
    populate maps every page now rather than at first touch."""
    name = _name(name)
    return _array(_c.attach(name, not ro, populate), name)


def delete(name):
    """Remove the name (and its rro lock); attached arrays stay valid."""
    name = _name(name)
    _c.unlink(name)
    _cache.pop(name, None)
    _rro.forget(name)
    _c.rro_lock_remove(name)    # the cache's, never a user's Lock(name)


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
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if mpol is not None:
        seg = _new(name, dtype, shape, "F" if fortran else "C", mpol)
        seg.fill(HEADER, os.fspath(path), offset, nbytes)
    else:
        h = _header(dtype, shape, "F" if fortran else "C")
        seg = _c.load(name, h + bytes(HEADER - len(h)), os.fspath(path),
                      offset, nbytes)
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


def rro(name, loader, mpol=None):
    """Recurrent-read-only cache: this process's dict, then the node's
    shm, then loader() -- once per node -- published for everyone.
    Returns a read-only, zero-copy array.

    The cache is bounded (JOBSHM_RRO_MAX: bytes, or N% of the job's shm;
    default 90% of it): a new array that does not fit evicts the least
    recently used cached arrays of the node (readers that hold them keep
    their data), and one that still does not fit is loaded privately for
    this process, with a warning once.  A task never gets ENOSPC from
    the cache."""
    name = _name(name)
    a = _cache.get(name)
    if a is not None and _rro.hit(name):
        return a
    _cache.pop(name, None)      # evicted: let its pages go with our copy
    try:
        a = attach(name, ro=True, populate=POPULATE)
    except Error as e:
        if e.errno != errno.ENOENT:
            raise
        return _rro_miss(name, loader, mpol)
    _rro.hit(name)
    _cache[name] = a
    return a


def _rro_miss(name, loader, mpol):
    if _rro.evicted_elsewhere():
        for n in [n for n in _cache if not _rro.present(n)]:
            del _cache[n]   # evicted: its pages can go once tasks drop it
    held = _c.rro_lock(name)    # the cache's own, apart from Lock(name)
    try:
        try:            # another process loaded it while we waited
            a = attach(name, ro=True, populate=POPULATE)
            _rro.hit(name)
            _cache[name] = a
        except Error as e:
            if e.errno != errno.ENOENT:
                raise
            a = _rro.load(name, loader, mpol)
            if _rro.cached(name):       # not a private copy
                _cache[name] = a
    finally:
        _c.unlock(held)
    return a


def _source_bytes(src):
    """Bytes a source will take in shm: an array's, or a .npy file's."""
    if isinstance(src, (str, bytes, os.PathLike)):
        shape, _, dtype, _ = _npy_header(os.fspath(src))
        return int(np.prod(shape, dtype=np.int64)) * dtype.itemsize + HEADER
    return np.asanyarray(src).nbytes + HEADER


class _RroCache:
    """The node's rro cache: one file in the job's shm (changed under a
    node-wide Lock) with the node's counters and, for each cached name,
    its size and the pid that loaded it; recency by the segments' mtimes
    (touched on every hit, so shared by every process of the node).  A
    miss takes the lock once: reserve (evicting if need be) and count."""

    FIELDS = ("hits", "misses", "loads", "bytes_loaded", "evictions",
              "private_fallbacks")

    def __init__(self):
        self._hits = 0          # this process's, not yet added to the node's
        self._warned = False
        self._mine = set()
        self._node_evictions = 0    # the node's count at our last miss
        self._evictions_seen = 0

    def _ns(self):
        """(dir, prefix) of the namespace, asked of the library once per
        environment: a hit must cost one utime(), not an info()."""
        key = (os.environ.get("JOBSHM_DIR"), os.environ.get("JOBSHM_PREFIX"))
        if getattr(self, "_ns_key", None) != key:
            i = _c.info()
            self._ns_key, self._ns_val = key, (i["dir"], i["prefix"])
        return self._ns_val

    def _file(self):
        d, prefix = self._ns()
        return os.path.join(d, f".jobshm-rroindex.{prefix}")

    def _seg_path(self, name):
        d, prefix = self._ns()
        return os.path.join(d, prefix + name)

    def budget(self):
        size = _c.info()["size"]
        v = os.environ.get("JOBSHM_RRO_MAX", "90%").strip()
        try:
            if v.endswith("%"):
                return int(size * float(v[:-1]) / 100)
            return int(v)
        except ValueError:
            raise ValueError(f"jobshm: JOBSHM_RRO_MAX='{v}': expected bytes "
                             "or a share of the job's shm like 80%") from None

    def _read(self):
        """(counters, {name: [bytes, pid]}), under the cache lock."""
        try:
            with open(self._file()) as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            lines = []
        head = lines[0].split() if lines else []
        st = dict(zip(self.FIELDS, [int(x) for x in head[1:]] or
                      [0] * len(self.FIELDS)))
        idx = {n: [int(b), int(pid)] for n, b, pid in
               (l.split() for l in lines[1:] if l)}
        return st, idx

    def _write(self, st, idx):
        """In place: a file that has its pages needs no new ones, so a
        full shm seldom makes it fail; counters are best effort then."""
        data = ("# " + " ".join(str(st[k]) for k in self.FIELDS) + "\n" +
                "".join(f"{n} {b} {pid}\n" for n, (b, pid) in idx.items())
                ).encode()
        fd = os.open(self._file(), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW |
                     os.O_CLOEXEC, 0o600)
        try:
            os.pwrite(fd, data, 0)
            os.ftruncate(fd, len(data))
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise
        finally:
            os.close(fd)

    def _update(self, fn):
        """Read, change with fn(st, idx) and write back, in one hold of the
        cache lock; fn's result."""
        held = _c.rro_lock(None)    # the index's lock: no user Lock's
        try:
            st, idx = self._read()
            res = fn(st, idx)
            self._write(st, idx)
            return res
        finally:
            _c.unlock(held)

    def hit(self, name):
        """Count a hit and make name the most recent; False if it was
        evicted meanwhile."""
        try:
            os.utime(self._seg_path(name))     # recency, node-wide
        except FileNotFoundError:
            return False
        self._hits += 1
        if self._hits >= 1024:
            self.flush()
        return True

    def flush(self):
        if self._hits:
            n, self._hits = self._hits, 0
            self._update(lambda st, idx: st.update(hits=st["hits"] + n))

    def present(self, name):
        return os.path.lexists(self._seg_path(name))

    def cached(self, name):
        return name in self._mine

    def _mtime(self, name):
        try:
            return os.stat(self._seg_path(name)).st_mtime_ns
        except FileNotFoundError:
            return None

    def _stale(self, idx):
        """Names without a segment whose loader is gone (or is us): a load
        that failed, or a name deleted by hand."""
        def gone(pid):
            if pid == os.getpid():
                return True
            try:
                os.kill(pid, 0)
                return False
            except ProcessLookupError:
                return True
            except PermissionError:
                return False
        return [n for n, (_, pid) in idx.items()
                if self._mtime(n) is None and gone(pid)]

    def _evict(self, idx, need, budget):
        """Unlink the least recently used loaded names until need fits;
        the number evicted."""
        for n in self._stale(idx):
            del idx[n]
        ages = sorted((m, n) for m, n in ((self._mtime(n), n) for n in idx)
                      if m is not None)         # None: being loaded
        evicted = 0
        while sum(b for b, _ in idx.values()) + need > budget and ages:
            _, victim = ages.pop(0)
            try:
                _c.unlink(victim)   # attached readers keep their pages
            except Error:
                pass
            idx.pop(victim, None)
            evicted += 1
        return evicted

    def _reserve(self, name, need):
        """The miss's one hold of the cache lock: make room for need bytes
        (evicting the least recently used) and count; True if reserved."""
        budget = self.budget()

        def fn(st, idx):
            st["misses"] += 1
            if sum(b for b, _ in idx.values()) + need > budget:
                st["evictions"] += self._evict(idx, need, budget)
            fits = sum(b for b, _ in idx.values()) + need <= budget
            if fits:
                idx[name] = [need, os.getpid()]
                st["loads"] += 1
                st["bytes_loaded"] += need
            else:
                st["private_fallbacks"] += 1
            self._node_evictions = st["evictions"]
            return fits
        return self._update(fn)

    def _unreserve(self, name, need):
        """A reserved load that did not fit after all: private instead."""
        def fn(st, idx):
            if idx.pop(name, None) is not None:
                st["loads"] -= 1
                st["bytes_loaded"] -= need
            st["private_fallbacks"] += 1
        self._update(fn)

    def forget(self, name):
        """A name deleted by hand leaves the index."""
        if os.path.lexists(self._file()):
            self._update(lambda st, idx: idx.pop(name, None))

    def evicted_elsewhere(self):
        """True once after another process evicted: time to drop our
        references to names that are gone."""
        seen = self._evictions_seen
        self._evictions_seen = self._node_evictions
        return seen != self._node_evictions

    def load(self, name, loader, mpol):
        src = loader() if callable(loader) else loader
        need = _source_bytes(src)
        if self._reserve(name, need):
            try:
                a = (load(name, src, mpol) if isinstance(
                    src, (str, bytes, os.PathLike)) else
                    from_array(name, src, ro=True, mpol=mpol))
                self._mine.add(name)
                return a
            except Error as e:          # the shm is full of other data
                if e.errno != errno.ENOSPC:
                    self._update(lambda st, idx: idx.pop(name, None))
                    raise
                self._unreserve(name, need)
        return self._private(name, src, need)

    def _private(self, name, src, need):
        if not self._warned:
            warnings.warn(f"jobshm: rro '{name}' ({need} bytes) does not fit "
                          f"in the cache ({self.budget()} bytes): loaded "
                          "privately for this process", RuntimeWarning,
                          stacklevel=4)
            self._warned = True
        if isinstance(src, (str, bytes, os.PathLike)):
            return _readonly(np.load(src))
        return _readonly(np.asanyarray(src).view())   # no copy

    def stats(self):
        self.flush()
        return self._update(lambda st, idx: dict(st))


_rro = _RroCache()
atexit.register(lambda: _rro.flush() if _rro._hits else None)


def stats():
    """The node's rro cache: hits, misses, loads, bytes_loaded, evictions,
    private_fallbacks (every process of the job on the node)."""
    return _rro.stats()

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


class BarrierTimeout(Error):
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
