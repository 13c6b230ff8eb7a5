# SPDX-License-Identifier: GPL-2.0-or-later
"""jobshm.sharedarray: SharedArray 3.x's calls, errors and file format,
call by call and in the ways programs use it, and jobshm's guarantees
kept under that API."""
import errno
import multiprocessing as mp
import os
import subprocess
import sys
import time

import numpy as np
import pytest

import jobshm
import jobshm.sharedarray as SharedArray

MAGIC = b"[SharedArray]"


def sa_meta(dtype, dims, maxdims):
    """SharedArray 3.x's metadata block, built here byte by byte from its
    layout (src/shared_array.h, packed): char magic[16]; size_t size;
    int typenum; int itemsize; int ndims; npy_intp dims[NPY_MAXDIMS]."""
    dt = np.dtype(dtype)
    nbytes = dt.itemsize * int(np.prod(dims, dtype=np.int64))
    order = sys.byteorder
    return (MAGIC.ljust(16, b"\0") + nbytes.to_bytes(8, order) +
            dt.num.to_bytes(4, order, signed=True) +
            dt.itemsize.to_bytes(4, order, signed=True) +
            len(dims).to_bytes(4, order, signed=True) +
            b"".join(d.to_bytes(8, order, signed=True) for d in dims) +
            bytes(8 * (maxdims - len(dims))))


def parse_meta(raw, maxdims):
    """The fields of a metadata block at the end of raw, per that layout."""
    m = raw[-(36 + 8 * maxdims):]
    order = sys.byteorder
    ndims = int.from_bytes(m[32:36], order, signed=True)
    return {"magic": m[:16], "size": int.from_bytes(m[16:24], order),
            "typenum": int.from_bytes(m[24:28], order, signed=True),
            "itemsize": int.from_bytes(m[28:32], order, signed=True),
            "dims": tuple(int.from_bytes(m[36 + 8 * i:44 + 8 * i], order,
                                         signed=True) for i in range(ndims))}


# ---- SharedArray's README, call by call ------------------------------------

def test_readme_example(job_ns):
    a = SharedArray.create("shm://test", 10)
    b = SharedArray.attach("shm://test")
    a[0] = 42
    assert b[0] == 42
    del a
    assert b[0] == 42
    assert [d.name for d in SharedArray.list()] == [b"test"]
    SharedArray.delete("test")
    assert b[0] == 42                       # the data lives while attached
    assert SharedArray.list() == ()
    with pytest.raises(FileNotFoundError):
        SharedArray.attach("shm://test")


def test_create_is_zeros_with_numpy_zeros_shape_and_dtype():
    for shape, dtype in [(10, float), ((3, 4), np.int32), ([2, 2, 2], "u1"),
                         ((), None), ((0, 5), np.complex128),
                         ((2,), "U7"), (4, "S3"), (3, "?")]:
        a = SharedArray.create("z", shape, dtype)
        ref = np.zeros(shape, dtype)
        assert a.shape == ref.shape and a.dtype == ref.dtype
        assert (a == ref).all() and a.flags.c_contiguous and a.flags.writeable
        SharedArray.delete("z")
    assert SharedArray.create("d", 2).dtype == np.float64   # dtype=float


def test_create_by_key_is_the_file_dev_shm_KEY_in_a_job(job_ns):
    """Inside a job the shm is private: shm://KEY is $JOBSHM_DIR/KEY (that
    is /dev/shm/KEY in the job), no prefix, so code that checks
    os.path.exists("/dev/shm/" + key) finds it."""
    SharedArray.create("shm://key1", 3)
    SharedArray.create("key2", 3)                 # bare means shm://
    SharedArray.create("shm:///key3", 3)          # as shm_open: leading /
    assert sorted(os.listdir(job_ns)) == ["key1", "key2", "key3"]
    assert os.stat(os.path.join(job_ns, "key1")).st_mode & 0o777 == 0o600


def test_outside_a_job_shm_names_live_in_the_users_directory(monkeypatch):
    monkeypatch.delenv("JOBSHM_DIR")
    monkeypatch.setenv("JOBSHM_PREFIX", "")
    key = f"sa-outside-{os.getpid()}"
    d = jobshm.info()["dir"]
    assert d == f"/dev/shm/jobshm-{os.geteuid()}"
    try:
        SharedArray.create(key, 5)[:] = 7
        assert os.path.exists(os.path.join(d, key))
        assert not os.path.exists("/dev/shm/" + key)
        assert SharedArray.attach(key, ro=True).sum() == 35
        assert key.encode() in [e.name for e in SharedArray.list()]
    finally:
        SharedArray.delete(key)
    assert not os.path.exists(os.path.join(d, key))


def test_list_entries_carry_name_bytes_dtype_and_dims():
    SharedArray.create("grid", (4, 5), np.int16)
    (e,) = SharedArray.list()
    assert isinstance(SharedArray.list(), tuple)
    assert e.name == b"grid" and e.dtype is np.int16 and e.dims == (4, 5)
    name, dtype, dims = e                          # a struct sequence
    assert (name, dtype, dims) == (b"grid", np.int16, (4, 5))
    # what programs do with it
    assert [a.name.decode() for a in SharedArray.list()] == ["grid"]


def test_list_and_delete_by_prefix():
    for i in range(3):
        SharedArray.create(f"run1_{i}", 2)
    SharedArray.create("run2_0", 2)
    for a in SharedArray.list():
        if a.name.decode().startswith("run1_"):
            SharedArray.delete(a.name.decode())
    assert [a.name for a in SharedArray.list()] == [b"run2_0"]


def test_list_shows_only_sharedarrays_and_jobshm_list_is_unchanged(job_ns):
    """jobshm's own segments, other files, links and directories are not
    SharedArrays; jobshm.list() still shows only jobshm's segments."""
    jobshm.create("native", 4)
    SharedArray.create("sa", 4)
    with open(os.path.join(job_ns, "notes.txt"), "w") as f:
        f.write("x" * 1000)
    os.symlink("sa", os.path.join(job_ns, "link"))
    os.mkdir(os.path.join(job_ns, "dir"))
    assert [e.name for e in SharedArray.list()] == [b"sa"]
    assert [e.name for e in jobshm.list()] == ["native"]
    assert jobshm.list()[0].shape == (4,)
    with pytest.raises(OSError, match="No SharedArray at this address"):
        SharedArray.attach("notes.txt")
    with pytest.raises(OSError, match="No SharedArray at this address"):
        SharedArray.delete("jobshm.4242.native")   # jobshm's is left alone
    assert jobshm.attach("native").shape == (4,)


def _write_row(args):
    name, i = args
    a = SharedArray.attach(name)
    a[i] = np.arange(a.shape[1]) + 100 * i
    return os.getpid()


def test_pool_children_write_rows_of_the_parents_array():
    a = SharedArray.create("shm://rows", (8, 16), np.int64)
    with mp.get_context("fork").Pool(4) as pool:
        pids = pool.map(_write_row, [("shm://rows", i) for i in range(8)])
    assert os.getpid() not in pids
    assert (a == np.arange(16) + 100 * np.arange(8)[:, None]).all()


def test_attach_read_write_and_read_only():
    a = SharedArray.create("rw", 4)
    b = SharedArray.attach("rw")
    b[1] = 5
    assert a[1] == 5 and b.flags.writeable
    r = SharedArray.attach("rw", ro=True)
    assert not r.flags.writeable
    with pytest.raises(ValueError):
        r[0] = 1
    with pytest.raises(ValueError):           # as SharedArray's: no way back
        r.setflags(write=True)
    # and the kernel enforces it: the mapping itself is read-only
    addr = r.__array_interface__["data"][0]
    perms = [l.split()[1] for l in open("/proc/self/maps")
             if int(l.split("-")[0], 16) == addr]
    assert perms == ["r--s"]


def test_base_object_and_memory_calls(tmp_path):
    a = SharedArray.create("shm://b", 1000)
    base = a.base
    assert base.name == "shm://b"
    assert base.addr == a.__array_interface__["data"][0]
    assert base.size == os.path.getsize(os.path.join(
        os.environ["JOBSHM_DIR"], "b"))
    for flags in (SharedArray.MS_SYNC, SharedArray.MS_ASYNC,
                  SharedArray.MS_SYNC | SharedArray.MS_INVALIDATE):
        base.msync(flags)
        base.msync(flags=flags)
        SharedArray.msync(a, flags)             # 2.x's module function
    def locked_kb():
        for line in open("/proc/self/status"):
            if line.startswith("VmLck:"):
                return int(line.split()[1])
    before = locked_kb()
    base.mlock()
    assert locked_kb() - before >= base.size // 1024
    base.munlock()
    assert locked_kb() == before
    SharedArray.mlock(a)
    assert locked_kb() - before >= base.size // 1024
    SharedArray.munlock(a)
    assert locked_kb() == before
    with pytest.raises(OSError) as e:           # msync(2) refuses both
        base.msync(SharedArray.MS_SYNC | SharedArray.MS_ASYNC)
    assert e.value.errno == errno.EINVAL
    with pytest.raises(RuntimeError):           # a view's base is the array
        SharedArray.mlock(a[1:])
    with pytest.raises(RuntimeError):
        SharedArray.munlock(np.zeros(3)[1:])
    with pytest.raises(TypeError):
        SharedArray.msync([1, 2], SharedArray.MS_SYNC)
    with pytest.raises(TypeError):
        SharedArray.msync(a, "sync")


def test_file_arrays(tmp_path, monkeypatch):
    path = tmp_path / "x.arr"
    a = SharedArray.create(f"file://{path}", (3, 3), np.float32)
    a[:] = np.arange(9).reshape(3, 3)
    a.base.msync(SharedArray.MS_SYNC)
    raw = path.read_bytes()
    assert raw[:36] == np.arange(9, dtype=np.float32).tobytes()
    assert np.array_equal(SharedArray.attach(f"file://{path}", ro=True), a)
    assert SharedArray.list() == ()             # list() is the shm only
    monkeypatch.chdir(tmp_path)                 # a relative path
    assert SharedArray.attach("file://x.arr").sum() == 36
    with pytest.raises(FileExistsError):
        SharedArray.create("file://x.arr", 3)
    SharedArray.delete("file://x.arr")
    assert not path.exists()
    with pytest.raises(FileNotFoundError):
        SharedArray.attach(f"file://{tmp_path}/missing")
    with pytest.raises(FileNotFoundError):
        SharedArray.create(f"file://{tmp_path}/no/such/dir", 3)


def test_errors_are_sharedarrays(job_ns):
    SharedArray.create("x", 3)
    with pytest.raises(FileExistsError) as e:
        SharedArray.create("shm://x", 3)
    assert e.value.errno == errno.EEXIST and e.value.filename == "shm://x"
    for call in (SharedArray.attach, SharedArray.delete):
        with pytest.raises(FileNotFoundError) as e:
            call("shm://missing")
        assert e.value.errno == errno.ENOENT
        assert e.value.filename == "shm://missing"
    with pytest.raises(OSError) as e:
        SharedArray.create("http://x", 3)
    assert e.value.errno == errno.EINVAL and "file://" in str(e.value)
    with pytest.raises(ValueError, match="negative dimensions"):
        SharedArray.create("neg", (2, -1))
    with pytest.raises(ValueError, match="number of dimensions"):
        SharedArray.create("deep", (1,) * (SharedArray.MAXDIMS + 1))
    with pytest.raises(ValueError, match="element size of 0"):
        SharedArray.create("empty", 3, "S0")
    with pytest.raises(ValueError, match="object arrays"):
        SharedArray.create("obj", 3, object)
    with pytest.raises(TypeError):
        SharedArray.create(b"x", 3)
    with pytest.raises(TypeError):
        SharedArray.attach("x", True, 1)
    assert sorted(os.listdir(job_ns)) == ["x"]     # nothing else was made


@pytest.mark.parametrize("bad", ["a/b", "..", ".", "", "shm://", "shm://..",
                                 "shm://../x", "../../etc/passwd",
                                 "shm:///../x", "x" * 256])
def test_shm_names_cannot_leave_the_directory(bad, job_ns):
    for call in (lambda n: SharedArray.create(n, 3), SharedArray.attach,
                 SharedArray.delete):
        with pytest.raises(OSError) as e:
            call(bad)
        assert e.value.errno == errno.EINVAL and e.value.filename == bad
        assert "no '/'" in str(e.value)
    assert os.listdir(job_ns) == []
    assert not os.path.exists(os.path.join(os.path.dirname(job_ns), "x"))


# ---- the file format ---------------------------------------------------------

@pytest.mark.parametrize("maxdims", [32, 64])   # numpy 1's and numpy 2's
@pytest.mark.parametrize("arr", [
    np.arange(12.0).reshape(3, 4), np.arange(5, dtype=np.int8),
    np.array([[1 + 2j]], dtype=np.complex64), np.array(7, dtype=np.uint32),
    np.array(["ab", "cde"]), np.zeros((2, 0, 3))])
def test_a_file_in_sharedarrays_format_attaches(arr, maxdims, job_ns):
    """What the real SharedArray writes: the data at offset 0, then its
    metadata block, the last bytes of the file."""
    with open(os.path.join(job_ns, "theirs"), "wb") as f:
        f.write(arr.tobytes() + sa_meta(arr.dtype, arr.shape, maxdims))
    got = SharedArray.attach("theirs", ro=True)
    assert got.dtype == arr.dtype and got.shape == arr.shape
    assert np.array_equal(got, arr)
    (e,) = SharedArray.list()
    assert (e.name, e.dtype, e.dims) == (b"theirs", arr.dtype.type, arr.shape)
    SharedArray.delete("theirs")
    assert os.listdir(job_ns) == []


@pytest.mark.parametrize("dtype", [np.float64, np.int32, np.uint16, "U3",
                                   np.complex128, np.bool_])
def test_our_file_is_in_sharedarrays_format(dtype, job_ns):
    a = SharedArray.create("ours", (2, 3), dtype)
    a[...] = np.arange(6).reshape(2, 3).astype(dtype)
    raw = open(os.path.join(job_ns, "ours"), "rb").read()
    maxdims = SharedArray.MAXDIMS
    assert maxdims == getattr(np, "MAXDIMS", 64)   # the numpy we run on
    assert len(raw) == a.nbytes + 36 + 8 * maxdims
    assert raw[:a.nbytes] == a.tobytes()
    m = parse_meta(raw, maxdims)
    dt = np.dtype(dtype)
    assert m == {"magic": MAGIC + b"\0\0\0", "size": a.nbytes,
                 "typenum": dt.num, "itemsize": dt.itemsize, "dims": (2, 3)}
    assert raw[-(36 + 8 * maxdims):] == sa_meta(dt, (2, 3), maxdims)


def test_bad_metadata_is_refused_not_mapped(job_ns):
    """A file whose metadata claims more data than it holds (SharedArray
    would map past its end) or a type it cannot be is refused."""
    p = os.path.join(job_ns, "liar")
    with open(p, "wb") as f:
        f.write(bytes(16) + sa_meta(np.float64, (1000,), SharedArray.MAXDIMS))
    with pytest.raises(OSError, match="do not fit"):
        SharedArray.attach("liar")
    with open(p, "wb") as f:
        f.write(bytes(8) + sa_meta(object, (1,), SharedArray.MAXDIMS))
    with pytest.raises(ValueError, match="object arrays"):
        SharedArray.attach("liar")
    assert SharedArray.list() == ()


# ---- jobshm's guarantees -----------------------------------------------------

def test_create_is_atomic_for_readers_and_racing_creators(job_ns):
    """A reader attaching while the array is made finds nothing or the
    whole array, never a file without its metadata; of racing creators,
    one wins and the others get FileExistsError."""
    reader = subprocess.Popen([sys.executable, "-c", """
import os, sys, jobshm.sharedarray as SharedArray
print("ready", flush=True)
seen = 0
while not os.path.exists(os.path.join(os.environ["JOBSHM_DIR"], "done")):
    try:
        a = SharedArray.attach("big")
        seen += 1
        if a.shape != (16 << 20,):
            sys.exit("wrong shape")
    except FileNotFoundError:
        pass
    except OSError as e:
        sys.exit(f"half an array: {e}")
print(seen)
"""], env=os.environ, stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout.readline() == "ready\n"
        for _ in range(30):
            SharedArray.create("big", 16 << 20, np.uint8)
            time.sleep(0.002)
            SharedArray.delete("big")
        SharedArray.create("done", 1)
        assert reader.wait(timeout=60) == 0
        assert int(reader.stdout.read()) > 0
    finally:
        reader.kill()

    def creator(q):
        try:
            SharedArray.create("race", 1 << 20)
            q.put("won")
        except FileExistsError:
            q.put("lost")
    q = mp.get_context("fork").Queue()
    procs = [mp.get_context("fork").Process(target=creator, args=(q,))
             for _ in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    assert sorted(q.get() for _ in procs) == ["lost"] * 7 + ["won"]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to mount a tmpfs")
def test_a_full_shm_fails_create_with_enospc(tmp_path, monkeypatch):
    """create() reserves the array: an shm too small fails it now with
    ENOSPC, instead of a SIGBUS in whoever writes the last pages."""
    d = tmp_path / "small"
    d.mkdir(mode=0o700)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700",
                    "tmpfs", str(d)], check=True)
    try:
        monkeypatch.setenv("JOBSHM_DIR", str(d))
        with pytest.raises(OSError) as e:
            SharedArray.create("huge", 4 << 20, np.uint8)
        assert e.value.errno == errno.ENOSPC
        assert os.listdir(d) == []
        SharedArray.create("fits", 1 << 10, np.uint8)[:] = 1
    finally:
        subprocess.run(["umount", str(d)], check=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to plant files "
                    "of another user")
def test_planted_arrays_and_links_are_refused(job_ns, tmp_path):
    """Another user's file in the shm is never attached; a link there is
    never followed; in a directory others may write to (file://), another
    user's file or link is refused and a link planted at the name of a new
    array is never written through."""
    SharedArray.create("planted", 3)
    os.chown(os.path.join(job_ns, "planted"), 65534, 65534)
    with pytest.raises(PermissionError, match="belongs to uid 65534"):
        SharedArray.attach("planted")
    assert SharedArray.list() == ()
    SharedArray.create("mine", 3)
    os.symlink("mine", os.path.join(job_ns, "alias"))
    with pytest.raises(OSError, match="symbolic link") as e:
        SharedArray.attach("alias")
    assert e.value.errno == errno.ELOOP

    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    os.symlink(victim, shared / "new")                  # the attacker's link
    os.lchown(shared / "new", 65534, 65534)
    with pytest.raises(FileExistsError):
        SharedArray.create(f"file://{shared}/new", 1000)
    assert victim.read_bytes() == b"precious"
    with pytest.raises(OSError):
        SharedArray.attach(f"file://{shared}/new")
    theirs = shared / "theirs"
    theirs.write_bytes(bytes(8) + sa_meta(np.float64, (1,),
                                          SharedArray.MAXDIMS))
    os.chown(theirs, 65534, 65534)
    with pytest.raises(PermissionError, match="belongs to uid 65534"):
        SharedArray.attach(f"file://{theirs}")
    own = tmp_path / "own"                  # not shared: as SharedArray
    own.mkdir()
    theirs.rename(own / "theirs")
    assert SharedArray.attach(f"file://{own}/theirs").shape == (1,)


def test_real_sharedarrays_in_the_nodes_dev_shm_attach_as_files(monkeypatch):
    """Outside a job, an array the SharedArray package made in the node's
    /dev/shm is not under shm:// (that is the user's own directory) but
    attaches as file:///dev/shm/NAME."""
    monkeypatch.delenv("JOBSHM_DIR")
    monkeypatch.setenv("JOBSHM_PREFIX", "")
    key = f"sa-real-{os.getpid()}"
    arr = np.arange(6, dtype=np.int32)
    with open("/dev/shm/" + key, "xb") as f:
        f.write(arr.tobytes() + sa_meta(arr.dtype, arr.shape,
                                        SharedArray.MAXDIMS))
    try:
        with pytest.raises(FileNotFoundError):
            SharedArray.attach(key)
        assert np.array_equal(SharedArray.attach(f"file:///dev/shm/{key}"),
                              arr)
    finally:
        SharedArray.delete(f"file:///dev/shm/{key}")
    assert not os.path.exists("/dev/shm/" + key)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run as a user "
                    "of its own")
def test_outside_a_job_a_removed_user_directory_is_made_again():
    """jobshm makes the user's directory again when it is gone (a node
    cleanup removed it): so does shm:// after it was first looked up.
    As a uid of its own, so that no other test's directory is removed."""
    uid, d = 64997, "/dev/shm/jobshm-64997"
    code = f"""
import subprocess, os, jobshm.sharedarray as SharedArray
SharedArray.create("k", 1)
subprocess.run(["rm", "-rf", "{d}"], check=True)
SharedArray.create("k", 2)
print(os.path.exists("{d}/k"), SharedArray.attach("k").shape)
"""
    env = {k: v for k, v in os.environ.items() if k != "JOBSHM_DIR"}
    env["JOBSHM_PREFIX"] = ""
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(jobshm.__file__))
    try:
        out = subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={uid}",
                              "--clear-groups", sys.executable, "-c", code],
                             env=env, capture_output=True, text=True, cwd="/")
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == ["True", "(2,)"]
    finally:
        subprocess.run(["rm", "-rf", d, d + ".1"])
