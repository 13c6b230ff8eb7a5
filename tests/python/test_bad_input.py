# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 31: bad input to the runtime loses nothing and says what is
accepted, as numpy and SharedArray say it: a refused call names the
segment, raises the exception they raise, and leaves the name free."""
import errno
import gc
import os
import re
import subprocess

import numpy as np
import pytest

import jobshm


def assert_left_nothing(name, job_ns):
    """No file, no entry, and the name still free for a good create."""
    assert name not in [e.name for e in jobshm.list()]
    assert not [f for f in os.listdir(job_ns) if f.endswith(name)]
    a = jobshm.create(name, 4)
    assert a.shape == (4,) and jobshm.attach(name, ro=True).shape == (4,)
    jobshm.delete(name)


@pytest.mark.parametrize("shape", [-1, (3, -2)])
def test_negative_shape_is_refused_before_anything_is_made(shape, job_ns):
    with pytest.raises(ValueError) as e:
        jobshm.create("bi-neg", shape)
    msg = str(e.value)
    assert "'bi-neg'" in msg and "negative dimensions are not allowed" in msg
    assert str(tuple(np.atleast_1d(shape))) in msg, msg     # the bad shape
    assert_left_nothing("bi-neg", job_ns)


@pytest.mark.parametrize("make", [
    lambda n: jobshm.create(n, 3, dtype=object),
    lambda n: jobshm.create(n, 3, dtype=[("x", "<f8"), ("o", "O")]),
    lambda n: jobshm.from_array(n, np.array([{"a": 1}], dtype=object)),
    lambda n: jobshm.create(n, 3, dtype="V0"),             # 0-byte items
    lambda n: jobshm.create(n, 3, dtype="S")])
def test_object_dtype_is_refused_before_anything_is_made(make, job_ns):
    with pytest.raises(ValueError) as e:
        make("bi-obj")
    msg = str(e.value)
    assert "'bi-obj'" in msg, msg
    assert ("object arrays cannot be shared" in msg or
            "itemsize cannot be zero (give one, as in 'S8'" in msg), msg
    assert_left_nothing("bi-obj", job_ns)
    assert jobshm.create("bi-rec", 3, dtype=[]).shape == (3,)  # numpy's too


@pytest.mark.parametrize("shape,bad", [(2.5, "float"), ((2, 2.5), "float"),
                                       ("3", "str")])
def test_a_float_shape_is_a_type_error_as_numpys(shape, bad, job_ns):
    with pytest.raises(TypeError):
        np.zeros(shape)
    with pytest.raises(TypeError) as e:
        jobshm.create("bi-flt", shape)
    msg = str(e.value)
    assert "'bi-flt'" in msg, msg
    assert f"'{bad}' object cannot be interpreted as an integer" in msg, msg
    assert "an int or a tuple of ints" in msg, msg          # what is accepted
    assert_left_nothing("bi-flt", job_ns)
    for i, (ok, dims) in enumerate([
            (np.int64(3), (3,)), ([np.int32(3), 2], (3, 2)), ((2, 3), (2, 3)),
            (np.array([2, 3]), (2, 3)), (np.array(5), (5,)), ((), ())]):
        assert jobshm.create(f"bi-ok{i}", ok).shape == dims


def test_missing_and_taken_names_are_the_builtin_errors(job_ns):
    for call in (jobshm.attach, jobshm.delete):
        with pytest.raises(FileNotFoundError) as e:
            call("bi-absent")
        assert isinstance(e.value, jobshm.Error)          # old callers too
        assert e.value.errno == errno.ENOENT
        assert "'bi-absent'" in str(e.value), str(e.value)
    jobshm.create("bi-taken", 2)
    with pytest.raises(FileExistsError) as e:
        jobshm.create("bi-taken", 2)
    assert isinstance(e.value, jobshm.Error) and e.value.errno == errno.EEXIST
    assert "'bi-taken'" in str(e.value)
    assert [x.name for x in jobshm.list()] == ["bi-taken"]
    jobshm.delete("bi-taken")
    assert_left_nothing("bi-absent", job_ns)


def _room_message(msg, name, asked):
    """The parts of a no-room message: the shm's size, its free space and
    the --shm it says to ask for, in bytes, after checking its form."""
    m = re.fullmatch(rf"\[Errno {errno.ENOSPC}\] segment '{name}': "
                     rf"{re.escape(asked)} is more than this job's shm can "
                     r"hold \((\S+), (\S+) free\); ask for more with "
                     r"--shm=(\d+)([MG])", msg)
    assert m, msg
    return m[1], m[2], int(m[3]) << (20 if m[4] == "M" else 30)


def test_more_than_any_shm_names_the_segment_and_its_size(job_ns):
    with pytest.raises(OSError) as e:
        jobshm.create("bi-huge", 2**60)               # 8E of float64
    assert isinstance(e.value, jobshm.Error)
    assert e.value.errno == errno.ENOSPC
    size, _, shm = _room_message(str(e.value), "bi-huge", "8E")
    assert size == jobshm._c.size_format(jobshm.info()["size"])
    assert shm >= 8 << 60
    assert_left_nothing("bi-huge", job_ns)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to mount a tmpfs")
def test_a_full_shm_says_what_is_free_and_the_shm_to_ask(tmp_path,
                                                         monkeypatch):
    d = tmp_path / "small"
    d.mkdir(mode=0o700)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700",
                    "tmpfs", str(d)], check=True)
    try:
        monkeypatch.setenv("JOBSHM_DIR", str(d))
        jobshm.create("bi-first", 1 << 20, dtype=np.uint8)
        np.save(tmp_path / "big.npy", np.zeros(7 << 19, dtype=np.uint8))
        for make in (lambda: jobshm.create("bi-full", 7 << 19, np.uint8),
                     lambda: jobshm.load("bi-full", tmp_path / "big.npy")):
            with pytest.raises(OSError) as e:
                make()
            assert e.value.errno == errno.ENOSPC
            size, free, shm = _room_message(str(e.value), "bi-full", "3.5M")
            info = jobshm.info()
            assert size == "4M"
            assert free == jobshm._c.size_format(info["size"] - info["used"])
            assert shm >= info["used"] + (7 << 19) + jobshm.HEADER
            assert shm == 5 << 20                   # rounded up to whole M
            del e
        assert_left_nothing("bi-full", str(d))
    finally:
        jobshm._cache.clear()
        gc.collect()
        subprocess.run(["umount", str(d)], check=True)


class _Path:
    def __init__(self, p):
        self.p = p

    def __fspath__(self):
        return self.p


def test_bytes_and_pathlike_names_are_names(job_ns):
    a = jobshm.create(b"bi-bytes", 3)
    b = jobshm.from_array(_Path("shm://bi-path"), np.arange(3))
    assert jobshm.attach("bi-bytes").shape == a.shape
    assert np.array_equal(jobshm.attach(b"shm://bi-path"), b)
    assert sorted(e.name for e in jobshm.list()) == ["bi-bytes", "bi-path"]
    jobshm.delete(_Path("bi-path"))
    jobshm.delete(b"bi-bytes")
    with pytest.raises(TypeError, match="expected str, bytes or os.PathLike"):
        jobshm.create(3, 3)
    assert jobshm.list() == []
