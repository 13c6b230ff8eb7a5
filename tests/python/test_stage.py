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
        assert "needs 3M in the job's shm but" in str(e.value)
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


def make_tar_links(path, members):
    """As make_tar, with hard links: (name, "hard", target)."""
    with tarfile.open(path, "w") as t:
        for name, kind, val in members:
            ti = tarfile.TarInfo(name)
            if kind == "file":
                ti.size = len(val)
                t.addfile(ti, io.BytesIO(val))
                continue
            if kind == "sym":
                ti.type, ti.linkname = tarfile.SYMTYPE, val
            elif kind == "hard":
                ti.type, ti.linkname = tarfile.LNKTYPE, val
            else:
                ti.type = tarfile.DIRTYPE
            t.addfile(ti)


def _tree(top, skip):
    """Every path under top (not under skip), with its type and target."""
    out = {}
    for d, dirs, files in os.walk(top):
        dirs[:] = [x for x in dirs if os.path.join(d, x) != skip]
        for x in dirs + files:
            p = os.path.join(d, x)
            out[p] = os.readlink(p) if os.path.islink(p) else \
                os.lstat(p).st_mode
    return out


# q -> . makes q/q/q the stage itself, so up -> ../../.. passes the textual
# check (q/q/q/../../.. is the stage) but really is three levels above the
# stage's temporary directory: tmp_path, where the victim's home is.
_UP = [("mod.py", "file", b"evil\n"), ("q", "sym", "."),
       ("q/q/q/up", "sym", "../../..")]


@pytest.mark.parametrize("members", [
    _UP + [("up/home/.ssh/authorized_keys", "sym", "mod.py")],
    _UP + [("up/home/.ssh/authorized_keys", "file", b"ssh-rsa AAAA evil")],
    _UP + [("up/home/.ssh/hard", "hard", "mod.py")],
    _UP + [("up/home/.ssh/newdir", "dir", None)],
    _UP + [("up/home/.ssh/newdir/f", "file", b"x")],
    [("q", "sym", "."), ("q/q/esc", "sym", "../home/.ssh/x")],
    [("a", "sym", "."), ("b", "sym", "a/a/a/../../../home")],
    [("d", "dir", None), ("d/l", "sym", "."), ("d/l/l/h", "sym", "../..")],
    [("abs", "sym", "/etc")],
    [("x", "sym", "y/../../home")],
])
def test_links_through_links_create_nothing_outside(tmp_path, monkeypatch,
                                                     members):
    """Issue 20 item 6: members resolve against the real tree as it is
    made; nothing is ever created (or pointed at) outside the stage."""
    job = tmp_path / "job"
    job.mkdir()
    (tmp_path / "home" / ".ssh").mkdir(parents=True)
    monkeypatch.setenv("JOBSHM_DIR", str(job))
    tb = tmp_path / "hostile.tar"
    make_tar_links(tb, members)
    before = _tree(str(tmp_path), str(job))
    with pytest.raises(st.StageError, match="refused") as e:
        st.stage(str(tb))
    assert "hostile.tar" in str(e.value)
    assert _tree(str(tmp_path), str(job)) == before
    assert os.listdir(job / "stage") == []


def test_link_through_link_fails_the_command(tmp_path):
    job = tmp_path / "job"
    job.mkdir()
    (tmp_path / "home" / ".ssh").mkdir(parents=True)
    tb = tmp_path / "env.tar"
    make_tar_links(tb, _UP + [("up/home/.ssh/authorized_keys", "sym",
                               "mod.py")])
    out = subprocess.run([sys.executable, "-m", "jobshm.stage", str(tb)],
                         capture_output=True, text=True,
                         env={**os.environ, "JOBSHM_DIR": str(job)})
    assert out.returncode == 1, out
    assert out.stderr.startswith(f"jobshm stage: '{tb}': member "), out.stderr
    assert "refused" in out.stderr
    assert not os.path.lexists(tmp_path / "home" / ".ssh" / "authorized_keys")
    assert os.listdir(job / "stage") == []


def test_links_inside_the_stage_still_work(tmp_path, job_ns):
    tb = tmp_path / "ok.tar"
    make_tar_links(tb, [("pkg/m.py", "file", b"Z = 3\n"),
                        ("pkg/sub", "dir", None),
                        ("pkg/sub/up", "sym", ".."),
                        ("alias", "sym", "pkg"),
                        ("pkg/hard.py", "hard", "pkg/m.py"),
                        ("./top.py", "file", b"T = 1\n")])
    p = st.stage(str(tb))
    assert open(f"{p}/alias/m.py").read() == "Z = 3\n"
    assert open(f"{p}/pkg/sub/up/hard.py").read() == "Z = 3\n"
    assert os.stat(f"{p}/pkg/hard.py").st_ino == os.stat(f"{p}/pkg/m.py").st_ino
    assert open(f"{p}/top.py").read() == "T = 1\n"


@pytest.mark.parametrize("src,name", [
    ("/x/my.data.tar.gz", "my.data"), ("env.v2.tgz", "env.v2"),
    ("/x/set.tar", "set"), ("/x/dir.v3/", "dir.v3"), ("plain", "plain"),
])
def test_default_name_is_the_librarys(src, name):
    """The same names as enqueue_jobshm --stage gives (test_launcher.py)."""
    assert st.default_name(src) == name
