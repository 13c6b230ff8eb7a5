# SPDX-License-Identifier: GPL-2.0-or-later
"""The recurrent-read-only (rro) cache of jobshm: jobshm.rro() and
jobshm.stats().

The node's cache is one file in the job's shm (changed under the cache's
own lock, lib/sync.c) with the node's counters and, for each cached
name, its size and the pid that loaded it; recency by the segments'
mtimes (touched on every hit, so shared by every process of the node).
Each process keeps its own dict of the arrays it got.  A miss takes the
name's lock (one load per node) and the index's lock once: reserve
(evicting if need be) and count.
"""
import atexit
import errno
import os
import warnings

import numpy as np

from . import _jobshm as _c
from . import (Error, HEADER, _name, _npy_header, _readonly, attach,
               from_array, load)


def _source_bytes(src):
    """Bytes a source will take in shm: an array's, or a .npy file's."""
    if isinstance(src, (str, bytes, os.PathLike)):
        shape, _, dtype, _ = _npy_header(os.fspath(src))
        return int(np.prod(shape, dtype=np.int64)) * dtype.itemsize + HEADER
    return np.asanyarray(src).nbytes + HEADER


def _is_path(src):
    return isinstance(src, (str, bytes, os.PathLike))


class RroCache:
    """This process's view of the node's rro cache; all its state is set
    up here."""

    FIELDS = ("hits", "misses", "loads", "bytes_loaded", "evictions",
              "private_fallbacks", "eviction_failures")

    def __init__(self):
        self.arrays = {}            # name -> read-only array, this process's
        self.populate = os.environ.get("JOBSHM_POPULATE", "1") != "0"
        self._hits = 0              # ours, not yet added to the node's
        self._warned = False        # the "does not fit" warning, once
        self._mine = set()          # names this process loaded into shm
        self._node_evictions = 0    # the node's count at our last miss
        self._evictions_seen = 0
        self._ns_key = None         # (JOBSHM_DIR, JOBSHM_PREFIX) ...
        self._ns_val = None         # ... and their (dir, prefix)

    # ---- the calls of jobshm -------------------------------------------

    def get(self, name, loader, mpol=None):
        """jobshm.rro(): this process's dict, then the node's shm, then
        loader() -- once per node -- published for everyone."""
        name = _name(name)
        a = self.arrays.get(name)
        if a is not None and self.hit(name):
            return a
        self.arrays.pop(name, None)     # evicted: let its pages go
        try:
            a = attach(name, ro=True, populate=self.populate)
        except Error as e:
            if e.errno != errno.ENOENT:
                raise
            return self._miss(name, loader, mpol)
        self.hit(name)
        self.arrays[name] = a
        return a

    def _miss(self, name, loader, mpol):
        if self.evicted_elsewhere():
            for n in [n for n in self.arrays if not self.present(n)]:
                del self.arrays[n]  # evicted: pages go once tasks drop it
        held = _c.rro_lock(name)    # the cache's own, apart from Lock(name)
        try:
            try:        # another process loaded it while we waited
                a = attach(name, ro=True, populate=self.populate)
                self.hit(name)
                self.arrays[name] = a
            except Error as e:
                if e.errno != errno.ENOENT:
                    raise
                a = self.load(name, loader, mpol)
                if self.cached(name):       # not a private copy
                    self.arrays[name] = a
        finally:
            _c.unlock(held)
        return a

    def deleted(self, name):
        """jobshm.delete(name): the name leaves our dict, the node's index
        and the cache's lock of it (never a user's Lock(name))."""
        self.arrays.pop(name, None)
        self.forget(name)
        _c.rro_lock_remove(name)

    # ---- the node's index ----------------------------------------------

    def _ns(self):
        """(dir, prefix) of the namespace, asked of the library once per
        environment: a hit must cost one utime(), not an info()."""
        key = (os.environ.get("JOBSHM_DIR"), os.environ.get("JOBSHM_PREFIX"))
        if self._ns_key != key:
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
        """(counters, {name: [bytes, pid]}), under the cache lock; a
        counter the file lacks (written by an older jobshm) is 0."""
        try:
            with open(self._file()) as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            lines = []
        head = [int(x) for x in lines[0].split()[1:]] if lines else []
        st = dict(zip(self.FIELDS, head + [0] * len(self.FIELDS)))
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
        cache's index lock; fn's result."""
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

    def _evict(self, st, idx, need, budget):
        """Unlink the least recently used loaded names until need fits,
        counting evictions and failed ones.  A name whose segment could
        not be removed stays in the index (its bytes are still in the
        shm), so the budget never drifts."""
        for n in self._stale(idx):
            del idx[n]
        ages = sorted((m, n) for m, n in ((self._mtime(n), n) for n in idx)
                      if m is not None)         # None: being loaded
        while sum(b for b, _ in idx.values()) + need > budget and ages:
            _, victim = ages.pop(0)
            try:
                _c.unlink(victim)   # attached readers keep their pages
            except Error as e:
                if e.errno != errno.ENOENT:     # gone already: just drop
                    st["eviction_failures"] += 1
                    continue
            idx.pop(victim, None)
            st["evictions"] += 1

    def _reserve(self, name, need):
        """The miss's one hold of the cache lock: make room for need bytes
        (evicting the least recently used) and count; True if reserved."""
        budget = self.budget()

        def fn(st, idx):
            st["misses"] += 1
            if sum(b for b, _ in idx.values()) + need > budget:
                self._evict(st, idx, need, budget)
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
                a = (load(name, src, mpol) if _is_path(src) else
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
                          stacklevel=6)
            self._warned = True
        if _is_path(src):
            return _readonly(np.load(src))
        return _readonly(np.asanyarray(src).view())   # no copy

    def stats(self):
        self.flush()
        return self._update(lambda st, idx: dict(st))


_rro = RroCache()
atexit.register(_rro.flush)


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
    return _rro.get(name, loader, mpol)


def stats():
    """The node's rro cache: hits, misses, loads, bytes_loaded, evictions,
    private_fallbacks, eviction_failures (every process of the job on the
    node; an eviction whose segment could not be removed is a failure,
    and the name stays counted against the budget)."""
    return _rro.stats()
