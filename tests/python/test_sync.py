# SPDX-License-Identifier: GPL-2.0-or-later
"""Node-wide locks and barriers between processes (here: forked ones; the
cluster test uses separate srun tasks)."""
import os
import signal
import subprocess
import sys
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


def _within(seconds, fn):
    """fn() in a forked child; its exit status, or 'hung' (child killed)
    when it takes longer than seconds: a deadlock fails, never hangs."""
    pid = os.fork()
    if pid == 0:
        try:
            fn()
            os._exit(0)
        except BaseException:
            import traceback
            traceback.print_exc()
            os._exit(1)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return "hung"


@pytest.mark.parametrize("held", ["x", "jobshm-rro-cache"])
def test_rro_under_a_user_lock_of_the_same_name_does_not_deadlock(held):
    """Issue 21 item 4: a user's Lock and the rro cache's own locks are
    different files, whatever the names: holding Lock("x") and calling
    rro("x") (or holding any Lock and calling rro) does not block on
    itself."""
    def work():
        with jobshm.Lock(held):
            a = jobshm.rro("x", lambda: np.arange(5))
            assert a.sum() == 10
            assert jobshm.stats()["loads"] == 1
    assert _within(10, work) == 0


def test_delete_leaves_a_held_user_lock_alone():
    """Issue 21 item 4: delete("x") removes the rro cache's lock of x,
    never the file of a user's Lock("x"): another process still waits
    for the holder.  (A new process, not a fork: a forked child would
    hold our lock through its copy of the descriptor.)"""
    jobshm.rro("x", lambda: np.arange(3))
    code = ("import jobshm\nwith jobshm.Lock('x'):\n print('got', "
            "flush=True)\n")
    env = {**os.environ, "PYTHONPATH": os.path.dirname(
        os.path.dirname(jobshm.__file__))}
    with jobshm.Lock("x"):
        jobshm.delete("x")
        p = subprocess.Popen([sys.executable, "-c", code], env=env,
                             stdout=subprocess.PIPE, text=True)
        with pytest.raises(subprocess.TimeoutExpired):
            p.wait(1.0)                     # still held by us
    assert p.communicate(timeout=20)[0] == "got\n"   # released: theirs
    assert p.returncode == 0
