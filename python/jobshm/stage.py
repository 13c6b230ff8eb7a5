# SPDX-License-Identifier: GPL-2.0-or-later
"""Stage a Python environment (or any tree) into the job's shm, once per
node, so that every task imports from memory instead of the parallel
filesystem.

  python3 -m jobshm.stage SRC [--name NAME]     (or: jobshm stage ...)

SRC is a directory, a tar archive (.tar, .tar.gz/.tgz, .tar.bz2, .tar.xz)
or a single file.  The first task on a node copies it to
$JOBSHM_DIR/stage/NAME under a temporary name and renames it into place;
the others wait and reuse it.  Prints the environment that points a task
at it, as shell `export` lines:  eval "$(jobshm stage env.tar.gz)".
Runs as the user; staged bytes count against the job's --shm.
"""
import argparse
import os
import shutil
import stat
import sys
import tarfile

import jobshm

PROG = "jobshm stage"
ARCHIVES = (".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar")


class StageError(Exception):
    pass


def _fmt(n):
    for unit in ("B", "K", "M", "G", "T"):
        if n < 1024 or unit == "T":
            return f"{n:.1f}{unit}" if unit != "B" else f"{n}B"
        n /= 1024
    return str(n)


def _blocks(size):
    return (size + 4095) // 4096 * 4096


def default_name(src):
    base = os.path.basename(os.path.normpath(src))
    for ext in ARCHIVES:
        if base.endswith(ext):
            return base[:-len(ext)]
    return base


def _inside(root, path):
    root = os.path.abspath(root)
    return os.path.commonpath([root, os.path.abspath(path)]) == root


def _checked_members(tar, src):
    """The archive's members, or StageError naming the first that could
    write outside the stage: absolute, '..', a link out, a device."""
    members = tar.getmembers()
    for m in members:
        name = m.name
        if name.startswith("/") or ".." in name.split("/"):
            raise StageError(f"'{src}': member '{name}' is absolute or "
                             "holds '..': refused")
        if m.isdev() or m.isfifo():
            raise StageError(f"'{src}': member '{name}' is a device or "
                             "fifo: refused")
        if m.issym() or m.islnk():
            target = m.linkname if m.islnk() else os.path.join(
                os.path.dirname(name), m.linkname)
            if m.linkname.startswith("/") or not _inside("/r", os.path.join(
                    "/r", target)):
                raise StageError(f"'{src}': link '{name}' -> '{m.linkname}' "
                                 "points outside the archive: refused")
    return members


def _need(src):
    """Bytes the stage will take in shm (file sizes in 4 KiB blocks)."""
    if os.path.isdir(src):
        total = 0
        for d, _, files in os.walk(src):
            for f in files:
                st = os.lstat(os.path.join(d, f))
                total += _blocks(st.st_size) if stat.S_ISREG(st.st_mode) else 0
        return total
    if tarfile.is_tarfile(src):
        with tarfile.open(src) as t:
            return sum(_blocks(m.size) for m in _checked_members(t, src)
                       if m.isfile())
    return _blocks(os.path.getsize(src))


def _extract(src, dest):
    """Extract member by member, never through a link: a directory made
    by us, files created O_EXCL|O_NOFOLLOW, links made last."""
    os.mkdir(dest, 0o700)
    with tarfile.open(src) as t:
        links = []
        for m in _checked_members(t, src):
            path = os.path.join(dest, m.name)
            if not _inside(dest, path):
                raise StageError(f"'{src}': member '{m.name}' leaves the stage")
            if m.isdir():
                os.makedirs(path, 0o700, exist_ok=True)
            elif m.isfile():
                os.makedirs(os.path.dirname(path), 0o700, exist_ok=True)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL |
                             os.O_NOFOLLOW, 0o600)
                with os.fdopen(fd, "wb") as out:
                    shutil.copyfileobj(t.extractfile(m), out, 1 << 20)
                os.chmod(path, m.mode & 0o755 | 0o400)
            else:
                links.append(m)
        for m in links:
            path = os.path.join(dest, m.name)
            os.makedirs(os.path.dirname(path), 0o700, exist_ok=True)
            if m.issym():
                os.symlink(m.linkname, path)
            else:
                os.link(os.path.join(dest, m.linkname), path,
                        follow_symlinks=False)


def _copy(src, dest):
    if os.path.isdir(src):
        shutil.copytree(src, dest, symlinks=True)
    elif tarfile.is_tarfile(src):
        _extract(src, dest)
    else:
        shutil.copy2(src, dest)


def env_for(path):
    """Shell lines pointing a task at a staged tree."""
    out = []
    if not os.path.isdir(path):
        return [f"export JOBSHM_STAGED={path}"]
    py = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    if os.path.isdir(os.path.join(path, "bin")):
        out.append(f'export PATH={path}/bin:"$PATH"')
    libs = [os.path.join(path, d) for d in ("lib", "lib64")
            if os.path.isdir(os.path.join(path, d))]
    if libs:
        out.append("export LD_LIBRARY_PATH=" + ":".join(libs) +
                   '${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}')
    if os.path.isfile(os.path.join(path, "bin", "python3")) and \
            os.path.isdir(os.path.join(path, "lib", py)):
        out.append(f"export PYTHONHOME={path}")          # a whole interpreter
    else:
        site = [p for p in (os.path.join(path, "lib", py, "site-packages"),
                            os.path.join(path, "site-packages"),
                            os.path.join(path, "dist-packages"), path)
                if os.path.isdir(p)]
        out.append("export PYTHONPATH=" + site[0] +
                   '${PYTHONPATH:+:$PYTHONPATH}')
    out.append(f"export JOBSHM_STAGED={path}")
    return out


def stage(src, name=None):
    """Stage src once per node; returns the staged path."""
    if not os.environ.get("JOBSHM_DIR"):
        raise StageError("not in a jobshm job (no JOBSHM_DIR): run it in a "
                         "job with --shm")
    if not os.path.exists(src):
        raise StageError(f"'{src}': no such file or directory")
    if not os.access(src, os.R_OK):
        raise StageError(f"'{src}': not readable")
    name = name or default_name(src)
    try:
        jobshm._c.name_check(name)
    except ValueError as e:
        raise StageError(f"--name '{name}': {e}") from None
    root = os.path.join(os.environ["JOBSHM_DIR"], "stage")
    os.makedirs(root, 0o700, exist_ok=True)
    final = os.path.join(root, name)
    with jobshm.Lock(f"stage.{name}"):
        if os.path.lexists(final):
            return final                    # another task staged it
        need = _need(src)
        sv = os.statvfs(root)
        free = sv.f_bavail * sv.f_frsize
        if need > free:
            raise StageError(f"'{src}' needs {_fmt(need)} in the job's shm "
                             f"but {_fmt(free)} is free: ask for a larger "
                             "--shm")
        tmp = os.path.join(root, f".tmp.{name}.{os.getpid()}")
        try:
            _copy(src, tmp)
            os.rename(tmp, final)           # nobody sees half a stage
        except BaseException:
            if os.path.isdir(tmp) and not os.path.islink(tmp):
                shutil.rmtree(tmp, ignore_errors=True)
            elif os.path.lexists(tmp):
                os.unlink(tmp)
            raise
    return final


def main(argv=None):
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    ap.add_argument("src")
    ap.add_argument("--name")
    a = ap.parse_args(argv)
    try:
        path = stage(a.src, a.name)
    except StageError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"{PROG}: '{a.src}': {e.strerror}"
              + (f" ({e.filename})" if e.filename else ""), file=sys.stderr)
        return 1
    print("\n".join(env_for(path)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
