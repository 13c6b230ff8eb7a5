# SPDX-License-Identifier: GPL-2.0-or-later
"""jobshm stage: once per node, never half, never outside the stage."""
import io
import os
import subprocess
import sys
import tarfile

import pytest

from jobshm import stage as st


def make_tar(path, members):
    """members: (name, kind, data-or-target)."""
    with tarfile.open(path, "w:gz") as t:
        for name, kind, val in members:
            ti = tarfile.TarInfo(name)
            if kind == "file":
                ti.size = len(val)
                t.addfile(ti, io.BytesIO(val))
            elif kind == "sym":
                ti.type, ti.linkname = tarfile.SYMTYPE, val
                t.addfile(ti)
            elif kind == "dir":
                ti.type = tarfile.DIRTYPE
                t.addfile(ti)


@pytest.fixture
def env_dir(tmp_path):
    d = tmp_path / "env"
    (d / "lib" / "python3.11" / "site-packages" / "pkg").mkdir(parents=True)
    (d / "lib" / "python3.11" / "site-packages" / "pkg" / "__init__.py"
     ).write_text("X = 42\n")
    (d / "bin").mkdir()
    return d


def test_stage_a_directory_once_and_reuse(env_dir, job_ns):
    p = st.stage(str(env_dir))
    assert p == os.path.join(job_ns, "stage", "env")
    assert open(f"{p}/lib/python3.11/site-packages/pkg/__init__.py").read() \
        == "X = 42\n"
    assert st.stage(str(env_dir)) == p                  # reused
    lines = st.env_for(p)
    assert f'export PATH={p}/bin:"$PATH"' in lines
    assert any(l.startswith(f"export PYTHONPATH={p}/lib/python3.11/"
                            "site-packages") for l in lines) or \
        sys.version_info[:2] != (3, 11)


def test_stage_a_tarball_and_print_the_environment(tmp_path, job_ns):
    tb = tmp_path / "tools.tar.gz"
    make_tar(tb, [("site-packages/m.py", "file", b"Y = 1\n"),
                  ("site-packages/alias.py", "sym", "m.py")])
    out = subprocess.run([sys.executable, "-m", "jobshm.stage", str(tb)],
                         capture_output=True, text=True,
                         env={**os.environ})
    assert out.returncode == 0, out.stderr
    staged = os.path.join(job_ns, "stage", "tools")
    assert f"export PYTHONPATH={staged}/site-packages" in out.stdout
    assert os.readlink(f"{staged}/site-packages/alias.py") == "m.py"


@pytest.mark.parametrize("members", [
    [("../evil", "file", b"x")],
    [("/abs/evil", "file", b"x")],
    [("a/../../evil", "file", b"x")],
    [("l", "sym", "/etc")],
    [("d/l", "sym", "../../evil")],
])
def test_hostile_tarballs_write_nothing(tmp_path, job_ns, members):
    tb = tmp_path / "bad.tar.gz"
    make_tar(tb, [("ok.txt", "file", b"fine")] + members)
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(st.StageError, match="refused"):
        st.stage(str(tb))
    assert sorted(os.listdir(tmp_path)) == before
    assert not os.path.exists(os.path.join(job_ns, "stage", "bad"))
    assert [e for e in os.listdir(os.path.join(job_ns, "stage"))] == []


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a small tmpfs")
def test_too_big_says_how_much_and_leaves_nothing(tmp_path, monkeypatch):
    small = tmp_path / "shm"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "s", str(small)],
                   check=True)
    try:
        monkeypatch.setenv("JOBSHM_DIR", str(small))
        big = tmp_path / "big.bin"
        big.write_bytes(b"x" * (3 << 20))
        with pytest.raises(st.StageError) as e:
            st.stage(str(big))
        assert "needs 3.0M in the job's shm but" in str(e.value)
        assert "free" in str(e.value) and "--shm" in str(e.value)
        assert os.listdir(small / "stage") == []
    finally:
        subprocess.run(["umount", str(small)])


def test_many_tasks_one_copy(env_dir, job_ns):
    pids = []
    for _ in range(4):
        pid = os.fork()
        if pid == 0:
            os._exit(0 if st.stage(str(env_dir), "shared").endswith(
                "/stage/shared") else 1)
        pids.append(pid)
    assert [os.waitpid(p, 0)[1] for p in pids] == [0] * 4
    root = os.path.join(job_ns, "stage")
    assert sorted(os.listdir(root)) == ["shared"]       # no temporaries


def test_missing_source_and_bad_name_are_named(job_ns, tmp_path):
    with pytest.raises(st.StageError, match="'/nonexistent/env': no such"):
        st.stage("/nonexistent/env")
    with pytest.raises(st.StageError, match="--name '../x'"):
        st.stage(str(tmp_path), "../x")
    out = subprocess.run([sys.executable, "-m", "jobshm.stage", "/nope"],
                         capture_output=True, text=True)
    assert out.returncode == 1
    assert out.stderr.startswith("jobshm stage: '/nope': no such")
