# SPDX-License-Identifier: GPL-2.0-or-later
"""The bounded rro cache: LRU eviction shared by the node's processes,
private loads for what never fits, node-wide stats."""
import os
import warnings

import numpy as np
import pytest

import jobshm

MiB = 1 << 20
ONE = MiB + jobshm.HEADER if hasattr(jobshm, "HEADER") else MiB + 4096


def arr(i):
    return np.full(MiB // 8, float(i))


@pytest.fixture(autouse=True)
def three_arrays(monkeypatch):
    monkeypatch.setenv("JOBSHM_RRO_MAX", str(3 * ONE))
    jobshm._rro._warned = False


def cached():
    return sorted(e.name for e in jobshm.list())


def test_evicts_least_recently_used_and_stays_in_budget():
    for i in "abc":
        assert jobshm.rro(i, lambda i=i: arr(ord(i)))[0] == ord(i)
    jobshm.rro("a", None)                # a is now the most recent
    assert jobshm.rro("d", lambda: arr(4))[0] == 4
    assert cached() == ["a", "c", "d"]   # b was the least recent
    for i in range(5, 12):
        assert jobshm.rro(f"x{i}", lambda i=i: arr(i))[0] == i
        assert len(cached()) <= 3
    st = jobshm.stats()
    assert st["evictions"] == 8 and st["private_fallbacks"] == 0, st
    assert st["loads"] == 11 and st["misses"] == 11, st
    assert st["bytes_loaded"] == 11 * ONE and st["hits"] >= 1, st


def test_recency_is_shared_between_processes():
    for i in "abc":
        jobshm.rro(i, lambda i=i: arr(ord(i)))
    pid = os.fork()
    if pid == 0:                         # another worker reads a
        jobshm._cache.clear()
        os._exit(0 if jobshm.rro("a", None)[0] == ord("a") else 1)
    assert os.waitpid(pid, 0)[1] == 0
    jobshm.rro("d", lambda: arr(4))
    assert "a" in cached() and "b" not in cached()


def test_eviction_leaves_a_reader_its_data():
    r, w = os.pipe()
    r2, w2 = os.pipe()
    jobshm.rro("kept", lambda: arr(7))
    pid = os.fork()
    if pid == 0:
        x = jobshm.attach("kept", ro=True)
        os.write(w, b"x")
        os.read(r2, 1)                   # evicted meanwhile
        os._exit(0 if (x == 7).all() and "kept" not in
                 [e.name for e in jobshm.list()] else 1)
    os.read(r, 1)
    for i in range(4):
        jobshm.rro(f"e{i}", lambda i=i: arr(i))
    os.write(w2, b"x")
    assert os.waitpid(pid, 0)[1] == 0


def test_what_never_fits_is_private_with_one_warning():
    big = np.ones(4 * MiB // 8)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        a = jobshm.rro("big", lambda: big)
        b = jobshm.rro("big2", lambda: big * 2)
    assert a.sum() == big.size and b[0] == 2 and not a.flags.writeable
    assert len([x for x in w if "does not fit" in str(x.message)]) == 1
    assert "big" not in cached()
    assert jobshm.stats()["private_fallbacks"] == 2


def test_bad_budget_is_refused(monkeypatch):
    monkeypatch.setenv("JOBSHM_RRO_MAX", "lots")
    with pytest.raises(ValueError, match="JOBSHM_RRO_MAX='lots'"):
        jobshm.rro("y", lambda: arr(1))


def _index():
    return jobshm._rro._update(lambda st, idx: dict(idx))


def test_a_failed_eviction_is_counted_and_keeps_its_bytes(job_ns):
    """Issue 21 item 4: an eviction whose segment cannot be removed is
    counted (stats()["eviction_failures"]) and its name stays in the
    index, so the budget does not drift; the next victim goes instead."""
    for i in "abc":
        jobshm.rro(i, lambda i=i: arr(ord(i)))
    seg = os.path.join(job_ns, "jobshm.4242.a")     # the least recent
    os.unlink(seg)
    os.mkdir(seg)                                    # unlink() fails on it
    open(os.path.join(seg, "f"), "w").close()
    os.utime(seg, ns=(1, 1))
    assert jobshm.rro("d", lambda: arr(4))[0] == 4
    st = jobshm.stats()
    assert st["eviction_failures"] == 1 and st["evictions"] == 1, st
    assert sorted(_index()) == ["a", "c", "d"]       # a still counts
    assert sorted(cached()) == ["c", "d"]            # b went instead
    assert sum(b for b, _ in _index().values()) <= 3 * ONE


def test_the_cache_is_its_own_module():
    from jobshm import rrocache
    assert jobshm.rro is rrocache.rro and jobshm.stats is rrocache.stats
    assert jobshm._cache is rrocache._rro.arrays
    assert set(jobshm.stats()) == set(rrocache.RroCache.FIELDS)
