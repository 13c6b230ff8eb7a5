# SPDX-License-Identifier: GPL-2.0-or-later
"""The jobshm Python module: SharedArray calls, load, publish, rro."""
import errno
import multiprocessing as mp
import os
import subprocess
import sys
import time

import numpy as np
import pytest

import jobshm


def test_create_attach_delete_roundtrip(job_ns):
    a = jobshm.create("shm://grid", (4, 5), dtype=np.int32)
    assert a.dtype == np.int32 and a.shape == (4, 5) and not a.any()
    a[2, 3] = 42
    b = jobshm.attach("grid")
    assert b[2, 3] == 42
    b[0, 0] = 1                      # read-write attach writes through
    assert a[0, 0] == 1
    assert os.path.exists(os.path.join(job_ns, "jobshm.4242.grid"))
    names = [e.name for e in jobshm.list()]
    assert names == ["grid"]
    jobshm.delete("grid")
    assert jobshm.list() == []
    assert a[2, 3] == 42             # still mapped after delete


def test_populated_attach_sees_the_same_data():
    a = jobshm.from_array("pop", np.arange(100000.0))
    assert np.array_equal(jobshm.attach("pop", ro=True, populate=True), a)


def test_readonly_attach_cannot_write():
    jobshm.create("ro", 10)
    r = jobshm.attach("ro", ro=True)
    assert not r.flags.writeable
    with pytest.raises(ValueError):
        r[0] = 1


def test_create_existing_fails():
    jobshm.create("dup", 3)
    with pytest.raises(FileExistsError):
        jobshm.create("dup", 3)


@pytest.mark.parametrize("arr", [
    np.arange(12.0).reshape(3, 4),
    np.asfortranarray(np.arange(12).reshape(3, 4)),
    np.zeros(3, dtype=[("x", "<f4"), ("n", "<i8")]),
    np.array([], dtype=np.uint8),
    np.float32(3.5) * np.ones((2, 2, 2), dtype=np.float32),
])
def test_from_array_preserves(arr):
    out = jobshm.from_array("a", arr)
    assert out.dtype == arr.dtype and out.shape == arr.shape
    assert np.array_equal(out, arr)
    assert np.array_equal(jobshm.attach("a", ro=True), arr)


def test_load_npy_equals_np_load(tmp_path):
    for i, arr in enumerate([np.random.rand(100, 7),
                             np.asfortranarray(np.random.rand(9, 3)),
                             np.arange(10, dtype=">i4")]):
        p = tmp_path / f"x{i}.npy"
        np.save(p, arr)
        got = jobshm.load(f"x{i}", p)
        assert np.array_equal(got, np.load(p)) and got.dtype == arr.dtype
        assert not got.flags.writeable


@pytest.mark.parametrize("arr", [
    np.array(3.0), np.zeros((0, 4)), np.zeros((2, 3), order="F"),
    np.arange(6, dtype="<u2").reshape(3, 2), np.zeros(3, dtype="U5"),
    np.zeros(2, dtype=[("a", "<f8"), ("b", "<i2")]),      # numpy's parser
    np.zeros((1,) * 20)])
def test_npy_header_fast_path_agrees_with_numpy(arr, tmp_path):
    p = tmp_path / "h.npy"
    np.save(p, arr)
    with open(p, "rb") as f:
        version = np.lib.format.read_magic(f)
        want = np.lib.format._read_array_header(f, version) + (f.tell(),)
    assert jobshm._npy_header(p) == want
    got = jobshm.load("h", p)
    assert np.array_equal(got, arr) and got.dtype == arr.dtype
    assert got.flags.f_contiguous == arr.flags.f_contiguous


def test_load_refuses_object_arrays(tmp_path):
    p = tmp_path / "o.npy"
    np.save(p, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError):
        jobshm.load("o", p)
    assert jobshm.list() == []


@pytest.mark.parametrize("bad", ["../etc/passwd", "a/b", "", ".hidden",
                                 "x" * 201, "shm://../x", "sp ace", "é"])
def test_names_cannot_escape(bad, job_ns):
    with pytest.raises(ValueError):
        jobshm.create(bad, 1)
    with pytest.raises(ValueError):
        jobshm.attach(bad)
    assert os.listdir(job_ns) == []


def test_prefix_keeps_jobs_apart(monkeypatch):
    jobshm.create("same", 2)
    monkeypatch.setenv("JOBSHM_PREFIX", "jobshm.4343.")
    assert jobshm.list() == []
    with pytest.raises(jobshm.Error):
        jobshm.attach("same")


def test_outside_a_job_says_so(monkeypatch):
    monkeypatch.delenv("JOBSHM_DIR")
    assert "not in a jobshm job" in jobshm.info()["note"]
    monkeypatch.setenv("JOBSHM_DIR", "/nonexistent")
    with pytest.raises(jobshm.Error, match="/nonexistent"):
        jobshm.create("x", 1)


def test_array_outlives_its_name_and_handle():
    a = jobshm.from_array("keep", np.arange(1000))
    jobshm.delete("keep")
    import gc
    gc.collect()
    assert a.sum() == sum(range(1000))


def test_rro_is_cached_and_read_only():
    calls = []
    x = jobshm.rro("k", lambda: calls.append(1) or np.arange(5.0))
    y = jobshm.rro("k", lambda: calls.append(1) or np.arange(5.0))
    assert x is y and calls == [1] and not x.flags.writeable


# ---- races between worker processes ----------------------------------------

def _rro_worker(args):
    name, log, delay = args
    def loader():
        with open(log, "a") as f:
            f.write("load\n")
        time.sleep(delay)
        return np.arange(1 << 20, dtype=np.float64) * 3
    a = jobshm.rro(name, loader)
    return float(a.sum()), a.shape, bool(a.flags.writeable)


def _publish_worker(args):
    name, delay = args
    def loader():
        time.sleep(delay)
        return np.arange(1 << 20, dtype=np.float64) * 3
    a = jobshm.publish(name, loader)
    return float(a.sum()), a.shape


def test_racing_rro_loads_once_and_all_agree(tmp_path):
    log = tmp_path / "loads"
    want = float((np.arange(1 << 20, dtype=np.float64) * 3).sum())
    with mp.get_context("fork").Pool(16) as pool:
        res = pool.map(_rro_worker, [("race", str(log), 0.5)] * 32)
    assert all(r == (want, (1 << 20,), False) for r in res), res
    assert log.read_text() == "load\n"          # once per node


def test_racing_publishers_all_get_complete_data():
    want = float((np.arange(1 << 20, dtype=np.float64) * 3).sum())
    with mp.get_context("fork").Pool(16) as pool:
        res = pool.map(_publish_worker, [("pub", 0.2)] * 32)
    assert all(r == (want, (1 << 20,)) for r in res), res
    assert [e.name for e in jobshm.list()] == ["pub"]


def _policy_of(a):
    """The NUMA policy /proc/self/numa_maps shows for a's mapping."""
    start = a.__array_interface__["data"][0] - jobshm.HEADER
    with open("/proc/self/numa_maps") as f:
        for line in f:
            if int(line.split()[0], 16) == start:
                return line.split()[1]
    raise AssertionError(f"no mapping at {start:#x}")


@pytest.mark.parametrize("mpol,shown", [
    ("interleave", "interleave:0"), ("bind:0", "bind:0"),
    ("local", "local"), ("default", "default")])
def test_segment_gets_its_own_numa_policy(mpol, shown, tmp_path,
                                          monkeypatch):
    monkeypatch.delenv("JOBSHM_NUMA_NODES", raising=False)
    a = jobshm.create("p", (1024, 512), mpol=mpol)
    a[:] = 1.0
    assert _policy_of(a) == shown
    src = np.arange(300000.0)
    np.save(tmp_path / "s.npy", src)
    b = jobshm.load("q", tmp_path / "s.npy", mpol=mpol)
    assert _policy_of(b) == shown and np.array_equal(b, src)
    assert _policy_of(jobshm.attach("q")) == shown   # the file keeps it


@pytest.mark.parametrize("mpol,why", [
    ("sideways", "invalid policy 'sideways'"),
    ("bind:99", "not available to this job"),
    ("bind:1-0", "invalid policy")])
def test_bad_segment_policy_leaves_nothing(mpol, why):
    with pytest.raises((jobshm.Error, ValueError)) as e:
        jobshm.create("bad", 100, mpol=mpol)
    assert why in str(e.value), str(e.value)
    assert jobshm.list() == []


def test_outside_a_job_uses_a_directory_of_the_users(monkeypatch):
    """Security finding 7: outside a job the namespace is the user's own
    0700 directory, not the node's shared /dev/shm."""
    monkeypatch.delenv("JOBSHM_DIR")
    monkeypatch.setenv("JOBSHM_PREFIX", "")
    d = jobshm.info()["dir"]
    assert d == f"/dev/shm/jobshm-{os.geteuid()}"
    st = os.stat(d)
    assert st.st_uid == os.geteuid() and st.st_mode & 0o777 == 0o700


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to plant files "
                    "of another user")
def test_planted_segment_and_lock_of_another_user_refused(job_ns):
    """Security finding 7: a segment or an rro lock that another user
    planted is never attached or waited on."""
    a = np.arange(10)
    jobshm.from_array("planted", a)
    path = os.path.join(job_ns, "jobshm.4242.planted")
    os.chown(path, 65534, 65534)
    with pytest.raises(jobshm.Error, match="of yours"):
        jobshm.attach("planted")
    for kind in ("rrolock", "lock"):      # the rro cache's, a user's
        lock = os.path.join(job_ns, f".jobshm-{kind}.jobshm.4242.squat")
        fd = os.open(lock, os.O_CREAT | os.O_WRONLY, 0o600)
        os.close(fd)
        os.chown(lock, 65534, 65534)
    with pytest.raises(jobshm.Error, match="not a file of yours") as e:
        jobshm.rro("squat", lambda: a)
    assert e.value.errno == errno.EPERM
    with pytest.raises(jobshm.Error, match="not a file of yours"):
        jobshm.Lock("squat").acquire()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as two "
                    "users")
def test_squatted_user_directory_is_never_used(monkeypatch):
    """Issue 20 item 8, as a real attack: user nobody makes the victim's
    /dev/shm/jobshm-<uid> first; the victim's runtime (another uid) works
    in a directory of its own and never writes into the squatted one."""
    victim, squat = 64998, "/dev/shm/jobshm-64998"
    subprocess.run(f"rm -rf {squat} {squat}.*", shell=True, check=True)
    os.mkdir(squat, 0o700)
    os.chown(squat, 65534, 65534)
    code = ("import jobshm; a = jobshm.from_array('x', [1, 2, 3]); "
            "print(jobshm.info()['dir']); print(jobshm.info()['note']); "
            "print(jobshm.attach('x', ro=True).sum())")
    env = {k: v for k, v in os.environ.items() if k != "JOBSHM_DIR"}
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(jobshm.__file__))
    try:
        out = subprocess.run(["setpriv", f"--reuid={victim}",
                              f"--regid={victim}", "--clear-groups",
                              sys.executable, "-c", code], env=env,
                             capture_output=True, text=True, cwd="/")
        assert out.returncode == 0, out.stderr
        d, note, total = out.stdout.splitlines()
        assert d == f"{squat}.1" and total == "6"
        assert f"{squat} belongs to uid 65534 (nobody)" in note
        assert os.listdir(squat) == []
        st = os.stat(d)
        assert st.st_uid == victim and st.st_mode & 0o777 == 0o700
    finally:
        subprocess.run(f"rm -rf {squat} {squat}.*", shell=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as two "
                    "users")
def test_eight_squats_and_the_dask_directory_name_the_squatter():
    """Issue 30: user nobody makes all eight fallback names of the victim
    first.  The runtime refuses with an error that names the squatter and
    the way out (JOBSHM_DIR); the Dask TLS directory the launcher uses
    outside a --shm job is the runtime's own directory (one squat skipped),
    and where it too is taken the install says whose it is and what to do."""
    victim, squat = 64997, "/dev/shm/jobshm-64997"
    names = [squat] + [f"{squat}.{i}" for i in range(1, 8)]
    env = {k: v for k, v in os.environ.items() if k != "JOBSHM_DIR"}
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(jobshm.__file__))
    as_victim = ["setpriv", f"--reuid={victim}", f"--regid={victim}",
                 "--clear-groups", sys.executable, "-c"]
    tls_dir = ("import jobshm; print(jobshm.info()['dir'])")
    subprocess.run(f"rm -rf {squat} {squat}.*", shell=True, check=True)
    try:
        os.mkdir(squat, 0o700)
        os.chown(squat, 65534, 65534)
        out = subprocess.run(as_victim + [tls_dir], env=env, cwd="/",
                             capture_output=True, text=True)
        assert out.returncode == 0 and out.stdout.strip() == names[1], out
        subprocess.run(f"rm -rf {names[1]}", shell=True, check=True)
        for n in names[1:]:
            os.mkdir(n, 0o700)
            os.chown(n, 65534, 65534)
        out = subprocess.run(as_victim + [tls_dir], env=env, cwd="/",
                             capture_output=True, text=True)
        assert out.returncode != 0
        assert f"{squat} belongs to uid 65534 (nobody)" in out.stderr, out
        assert "set JOBSHM_DIR" in out.stderr, out.stderr
        assert all(os.listdir(n) == [] for n in names)
        # the install into a squatted parent: whose, and the way out
        out = subprocess.run(
            as_victim + ["import sys, jobshm.dask as d; "
                         "d.install(sys.argv[1], dict.fromkeys("
                         "d.TLS_FILES, 'x'))", f"{squat}/.jobshm-dask-1"],
            env=env, cwd="/", capture_output=True, text=True)
        assert out.returncode != 0
        assert "belongs to uid 65534 (nobody)" in out.stderr, out.stderr
        assert "--shm" in out.stderr and "JOBSHM_DIR" in out.stderr
        assert os.listdir(squat) == []
    finally:
        subprocess.run(f"rm -rf {squat} {squat}.*", shell=True)
