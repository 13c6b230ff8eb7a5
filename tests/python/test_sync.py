# SPDX-License-Identifier: GPL-2.0-or-later
"""Node-wide locks and barriers between processes (here: forked ones; the
cluster test uses separate srun tasks)."""
import os
import signal
import time

import numpy as np
import pytest

import jobshm


def _children(n, fn):
    pids = []
    for i in range(n):
        pid = os.fork()
        if pid == 0:
            try:
                fn(i)
                os._exit(0)
            except BaseException:
                os._exit(1)
        pids.append(pid)
    return [os.waitpid(p, 0)[1] for p in pids]


def test_lock_makes_increments_exact():
    counter = jobshm.create("counter", (1,), np.int64)

    def work(_):
        c = jobshm.attach("counter")
        for _ in range(2000):
            with jobshm.Lock("counter"):
                c[0] += 1
    assert _children(4, work) == [0] * 4
    assert counter[0] == 8000


def test_lock_of_a_dead_holder_is_released_and_reported():
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        held = jobshm.Lock("l").acquire()   # kept: a dropped Lock releases
        os.write(w, b"x")
        time.sleep(60)
        os._exit(held is None)
    os.read(r, 1)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    with jobshm.Lock("l") as lock:
        assert lock.recovered
    with jobshm.Lock("l") as lock:      # released properly: not recovered
        assert not lock.recovered


def test_barrier_releases_all_parties_and_is_reusable():
    out = jobshm.create("order", (3, 2), np.int64)

    def work(i):
        b = jobshm.Barrier("b", 3, timeout=20)
        o = jobshm.attach("order")
        for rnd in range(2):
            o[i, rnd] = time.monotonic_ns()
            b.wait()
    assert _children(3, work) == [0] * 3
    assert (out[:, 1] > out[:, 0].max()).all()   # round 2 after round 1


def test_barrier_with_a_missing_party_times_out():
    t = time.monotonic()
    with pytest.raises(jobshm.BarrierTimeout) as e:
        jobshm.Barrier("never", 2, timeout=0.5).wait()
    assert 0.4 < time.monotonic() - t < 5
    assert "not all 2 parties arrived" in str(e.value)
    # the timed-out arrival was taken back: two new parties pass
    assert _children(2, lambda i: jobshm.Barrier("never", 2,
                                                 timeout=10).wait()) == [0, 0]


def test_lock_and_barrier_names_are_checked():
    with pytest.raises(ValueError):
        jobshm.Lock("../x").acquire()
    with pytest.raises(ValueError):
        jobshm.Barrier("a/b", 2).wait()
