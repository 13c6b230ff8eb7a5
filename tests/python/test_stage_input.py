# SPDX-License-Identifier: GPL-2.0-or-later
"""jobshm stage on bad or awkward input (issue 31): a damaged archive or a
file that is none is one line and nothing staged; an archive of one top
directory is staged as its contents; a progress line on a terminal only."""
import gzip
import os
import pty
import re
import subprocess
import sys
import tarfile
import time

import pytest

PY = f"python{sys.version_info[0]}.{sys.version_info[1]}"


def run_stage(*args):
    return subprocess.run([sys.executable, "-m", "jobshm.stage", *args],
                          capture_output=True, text=True)


def stage_root(job_ns):
    return os.path.join(job_ns, "stage")


def make_env(top):
    """top/env: a virtual environment's layout, with a hard link and a
    symlink."""
    env = top / "env"
    pkg = env / "lib" / PY / "site-packages" / "pkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("X = 42\n")
    (env / "bin").mkdir()
    (env / "bin" / "tool").write_bytes(os.urandom(300_000))
    os.link(env / "bin" / "tool", env / "bin" / "tool2")
    os.symlink("tool", env / "bin" / "alias")
    return env


@pytest.mark.parametrize("name,cut,why", [
    ("env.tar.gz", 0.5, "unexpected end of data (gzip)"),
    ("env.tar.gz", 10, "unexpected end of data (gzip)"),
    ("env.tar.xz", 0.5, "unexpected end of data (xz)"),
    ("env.tar", 0.7, "unexpected end of data"),
])
def test_a_damaged_archive_is_one_line_and_nothing_staged(tmp_path, job_ns,
                                                          name, cut, why):
    good = tmp_path / f"good.{name}"
    with tarfile.open(good, "w:" + name.partition(".tar")[2][1:]) as t:
        t.add(make_env(tmp_path), arcname=".")
    data = good.read_bytes()
    tb = tmp_path / name
    tb.write_bytes(data[:cut if cut > 1 else int(len(data) * cut)])
    out = run_stage(str(tb))
    assert out.returncode == 1, out
    assert out.stderr == f"jobshm stage: '{tb}' is damaged: {why}; " \
        "nothing was staged\n", out.stderr
    assert out.stdout == ""
    assert os.listdir(stage_root(job_ns)) == []


@pytest.mark.parametrize("name,data", [
    ("data.gz", gzip.compress(b"gzip, but no tar inside\n" * 100)),
    ("env.tar.gz", b"named as an archive, but text\n"),
    ("blank", b""),
], ids=["gzip-of-no-tar", "archive-name-of-text", "empty"])
def test_a_file_that_is_no_archive_is_refused(tmp_path, job_ns, name, data):
    f = tmp_path / name
    f.write_bytes(data)
    out = run_stage(str(f))
    assert out.returncode == 1, out
    assert out.stderr.count("\n") == 1 and "nothing was staged" in \
        out.stderr, out.stderr
    assert ("is damaged" in out.stderr) if name.endswith(".tar.gz") else \
        ("is not a directory, a tar archive" in out.stderr), out.stderr
    assert out.stdout == ""
    assert os.listdir(stage_root(job_ns)) == []


def test_a_plain_file_is_staged_as_itself_and_says_so(tmp_path, job_ns):
    """A dataset (not compressed, not named as an archive) is staged as the
    one file it is, as the runtime guide promises, and the command says so
    rather than succeed silently."""
    f = tmp_path / "notes.txt"
    f.write_bytes(b"not an archive\n")
    out = run_stage(str(f))
    assert out.returncode == 0, out
    assert "is no archive: staged as one file" in out.stderr, out.stderr
    staged = os.path.join(stage_root(job_ns), "notes.txt")
    assert open(staged, "rb").read() == b"not an archive\n"


def test_one_top_directory_is_staged_as_its_contents(tmp_path, job_ns):
    """`tar czf env.tar.gz env/`: the printed PATH and PYTHONPATH are the
    staged bin/ and site-packages/, and pkg imports from there."""
    tb = tmp_path / "env.tar.gz"
    with tarfile.open(tb, "w:gz") as t:
        t.add(make_env(tmp_path), arcname="env")
    out = run_stage(str(tb))
    assert out.returncode == 0, out
    assert out.stderr == f"jobshm stage: '{tb}': its members are under " \
        "env/: staged its contents\n"
    p = os.path.join(stage_root(job_ns), "env")
    lines = out.stdout.splitlines()
    assert f'export PATH={p}/bin:"$PATH"' in lines
    site = f"{p}/lib/{PY}/site-packages"
    assert f"export PYTHONPATH={site}" "${PYTHONPATH:+:$PYTHONPATH}" in lines
    assert not os.path.exists(f"{p}/env")
    imp = subprocess.run([sys.executable, "-c", "import pkg; print(pkg.X)"],
                         capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": site})
    assert imp.stdout == "42\n", imp
    assert os.stat(f"{p}/bin/tool2").st_ino == os.stat(f"{p}/bin/tool").st_ino
    assert os.readlink(f"{p}/bin/alias") == "tool"
    # a link that stays inside only through the top directory is refused
    # once that directory is taken off
    w = tmp_path / "w"
    (w / "d").mkdir(parents=True)
    os.symlink("../x", w / "l")                 # w/l -> x, then l -> ../x
    with tarfile.open(tmp_path / "w.tar", "w") as t:
        t.add(w, arcname="w")
    out = run_stage(str(tmp_path / "w.tar"))
    assert out.returncode == 1 and "refused" in out.stderr, out
    assert os.listdir(stage_root(job_ns)) == ["env"]


def test_progress_on_a_terminal_only(tmp_path, job_ns):
    src = tmp_path / "data"
    src.mkdir()
    for i in range(3):
        (src / f"part{i}").write_bytes(b"\0" * (8 << 20))
    t0 = time.monotonic()
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(sys.executable, [sys.executable, "-m", "jobshm.stage",
                                  str(src)])
    text = b""
    while True:
        try:
            b = os.read(fd, 65536)
        except OSError:
            break
        if not b:
            break
        text += b
    os.close(fd)
    assert os.waitpid(pid, 0)[1] == 0, text
    elapsed = time.monotonic() - t0
    text = text.decode()
    bars = re.findall(r"\r(\S+) / 24M +(\d+)%  \S+/s  ETA \d+:\d\d", text)
    assert bars and bars[-1] == ("24M", "100"), text
    assert len(bars) <= 4 * elapsed + 2, text           # a few a second
    assert "export JOBSHM_STAGED=" in text
    out = run_stage(str(src), "--name", "piped")        # stderr a pipe
    assert out.returncode == 0 and out.stderr == "", out
