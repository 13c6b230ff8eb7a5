# SPDX-License-Identifier: GPL-2.0-or-later
"""Stage a Python environment (or any tree) into the job's shm, once per
node, so that every task imports from memory instead of the parallel
filesystem.

  python3 -m jobshm.stage SRC [--name NAME]     (or: jobshm stage ...)

SRC is a directory or a tar archive (.tar, .tar.gz/.tgz, .tar.bz2,
.tar.xz); an archive whose members all sit under one top directory is
staged as that directory's contents.  The first task on a node copies it
to $JOBSHM_DIR/stage/NAME under a temporary name and renames it into
place; the others wait and reuse it (a progress line on a terminal).
Prints the environment that points a task at it, as shell `export`
lines:  eval "$(jobshm stage env.tar.gz)".  Runs as the user; staged
bytes count against the job's --shm.
"""
import argparse
import contextlib
import errno
import lzma
import os
import shutil
import stat
import sys
import tarfile
import time
import zlib

import jobshm

PROG = "jobshm stage"


class StageError(Exception):
    pass


def _fmt(n):
    return jobshm._c.size_format(int(n))


def _blocks(size):
    return (size + 4095) // 4096 * 4096


def default_name(src):
    """The library's default name for a stage of src (the launcher's too)."""
    try:
        return jobshm._c.stage_name(src)
    except ValueError as e:
        raise StageError(f"'{src}': {e}; give --name") from None


_EXT = (".tar", ".tar.gz", ".tgz", ".tar.xz", ".tar.bz2")
_MAGIC = ((b"\x1f\x8b", "gz", "gzip"), (b"BZh", "bz2", "bzip2"),
          (b"\xfd7zXZ\x00", "xz", "xz"))
# a wrapping top directory these names are not: env_for looks for them
_KEEP = ("bin", "lib", "lib64", "site-packages", "dist-packages")


@contextlib.contextmanager
def _tar(src):
    """src open as a tar archive, its compression told by its first
    bytes.  Whatever fails to read in it is StageError: not an archive
    (it does not open and its name is no archive's), else damaged."""
    with open(src, "rb") as f:
        head = f.read(6)
    mode, how = next(((m, h) for b, m, h in _MAGIC if head.startswith(b)),
                     ("", ""))
    opened = False
    try:
        with tarfile.open(src, "r:" + mode) as t:
            opened = True
            yield t
    except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError,
            OSError) as e:
        if isinstance(e, OSError) and e.errno is not None:
            raise                           # not the archive's fault
        if not opened and not src.endswith(_EXT):
            raise StageError(f"'{src}' is not a directory, a tar archive "
                             f"({', '.join(_EXT)}) or a plain file: nothing "
                             "was staged") from None
        why = "unexpected end of data" if isinstance(e, EOFError) else \
            str(e).split("\n")[0]
        raise StageError(f"'{src}' is damaged: {why}"
                         + (f" ({how})" if how else "")
                         + "; nothing was staged") from None


def _plain_file(src):
    """1 if src is a plain file staged as itself: regular, not empty, not
    compressed, not named as an archive, and no tar (a dataset, a .npy)."""
    if not os.path.isfile(src) or src.endswith(_EXT) or \
            os.path.getsize(src) == 0:
        return False
    with open(src, "rb") as f:
        head = f.read(6)
    return not any(head.startswith(b) for b, _, _ in _MAGIC) and \
        not tarfile.is_tarfile(src)


def _inside(root, path):
    root = os.path.abspath(root)
    return os.path.commonpath([root, os.path.abspath(path)]) == root


def _top(members):
    """The one directory every member sits under, where it only wraps the
    tree (not bin, lib, site-packages..., not a package), else None."""
    parts = [[p for p in m.name.split("/") if p not in ("", ".")]
             for m in members]
    tops = {p[0] for p in parts if p}
    if len(tops) != 1 or not any(len(p) > 1 for p in parts):
        return None
    top = tops.pop()
    if top in _KEEP or [top, "__init__.py"] in parts or any(
            p == [top] and not m.isdir() for p, m in zip(parts, members)):
        return None
    return top


def _strip(m, top):
    """m renamed as if archived from inside top (hard links' targets too)."""
    for a in ("name", "linkname") if m.islnk() else ("name",):
        parts = [p for p in getattr(m, a).split("/") if p not in ("", ".")]
        if parts[:1] == [top]:
            setattr(m, a, "/".join(parts[1:]) or ".")


def _checked_members(tar, src):
    """The archive's members, or StageError naming the first that could
    write outside the stage: absolute, '..', a link out, a device; a
    wrapping top directory taken off, and checked again without it.
    Returns the members and that directory's name (else None)."""
    members = _check(tar.getmembers(), src)
    top = _top(members)
    if top:
        for m in members:
            _strip(m, top)
        _check(members, src)
    return members, top


def _check(members, src):
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
    """Bytes the stage will take in shm (file sizes in 4 KiB blocks), and
    the bytes to copy."""
    if _plain_file(src):
        sizes = [os.path.getsize(src)]
    elif os.path.isdir(src):
        sizes = []
        for d, _, files in os.walk(src):
            for f in files:
                st = os.lstat(os.path.join(d, f))
                if stat.S_ISREG(st.st_mode):
                    sizes.append(st.st_size)
    else:
        with _tar(src) as t:
            sizes = [m.size for m in _checked_members(t, src)[0]
                     if m.isfile()]
    return sum(_blocks(n) for n in sizes), sum(sizes)


class _Progress:
    """Bytes done/total, rate and ETA on one line of stderr, at most four
    times a second, and last the totals; nothing unless stderr is a
    terminal."""

    def __init__(self, total):
        self.total, self.done = total, 0
        self.t0 = self.shown = time.monotonic()
        self.on = os.isatty(2) and total > 0

    def add(self, n):
        self.done += n
        if self.on and time.monotonic() - self.shown >= 0.25:
            self._show()

    def _show(self):
        self.shown = time.monotonic()
        rate = self.done / max(self.shown - self.t0, 1e-3)
        eta = int((self.total - self.done) / rate) if rate else 0
        pct = 100 * self.done // self.total if self.total else 100
        sys.stderr.write(f"\r{_fmt(self.done)} / {_fmt(self.total)} "
                         f"{pct:3d}%  {_fmt(rate)}/s  ETA "
                         f"{eta // 60}:{eta % 60:02d}\x1b[K")
        sys.stderr.flush()

    def end(self):
        if self.on:
            self._show()
            sys.stderr.write("\n")


def _pour(fin, fout, bar):
    while True:
        b = fin.read(1 << 20)
        if not b:
            return
        fout.write(b)
        bar.add(len(b))


_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class _Refused(Exception):
    """A member whose path goes through a link or a non-directory."""


def _parts(name):
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:           # never, even where the text stays inside
        raise _Refused(name)
    return parts


def _walk(top, parts, create):
    """The directory top/parts[0]/... opened component by component with
    O_NOFOLLOW, relative to the descriptor top, so no link (an earlier
    member's, or anything else's) is ever followed; create makes missing
    directories (0700).  A descriptor the caller closes."""
    fd = os.dup(top)
    try:
        for i, p in enumerate(parts):
            if create:
                try:
                    os.mkdir(p, 0o700, dir_fd=fd)
                except FileExistsError:
                    pass
            try:
                nfd = os.open(p, _DIR, dir_fd=fd)
            except OSError as e:
                if e.errno in (errno.ELOOP, errno.ENOTDIR, errno.ENOENT):
                    raise _Refused("/".join(parts[:i + 1])) from None
                raise
            os.close(fd)
            fd = nfd
        return fd
    except BaseException:
        os.close(fd)
        raise


def _member(t, m, top, bar):
    """Create one member inside the directory open as top; its parent
    directories are walked, never through a link."""
    parts = _parts(m.name)
    if not parts:
        return
    if m.isdir():
        os.close(_walk(top, parts, True))
        return
    parent = _walk(top, parts[:-1], True)
    last = parts[-1]
    try:
        if m.isfile():
            fd = os.open(last, os.O_WRONLY | os.O_CREAT | os.O_EXCL |
                         os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=parent)
            with os.fdopen(fd, "wb") as out:
                _pour(t.extractfile(m), out, bar)
                os.fchmod(out.fileno(), m.mode & 0o755 | 0o400)
        elif m.issym():
            os.symlink(m.linkname, last, dir_fd=parent)
        else:                               # a hard link: to a member
            src = _parts(m.linkname)
            sdir = _walk(top, src[:-1], False)
            try:
                os.link(src[-1], last, src_dir_fd=sdir, dst_dir_fd=parent,
                        follow_symlinks=False)
            finally:
                os.close(sdir)
    finally:
        os.close(parent)


def _links_stay_inside(dest, src):
    """StageError naming the first link of the staged tree whose target,
    followed through the tree's other links, leaves it (a target that is
    textually inside can leave through an earlier link: a -> ., b ->
    a/a/../..)."""
    root = os.path.realpath(dest)
    for d, dirs, files in os.walk(dest):
        for x in dirs + files:
            p = os.path.join(d, x)
            if os.path.islink(p) and not _inside(root, os.path.realpath(p)):
                raise StageError(f"'{src}': link "
                                 f"'{os.path.relpath(p, dest)}' -> "
                                 f"'{os.readlink(p)}' leads outside the "
                                 "stage: refused")


def _extract(src, dest, bar):
    """Extract member by member in archive order, each resolved against
    the tree as it is made: every parent component is opened with
    O_NOFOLLOW relative to its parent's descriptor, files are created
    O_EXCL|O_NOFOLLOW, so nothing is ever created outside dest; a member
    whose path goes through a link is refused.  Last, every link must
    lead inside dest."""
    os.mkdir(dest, 0o700)
    top = os.open(dest, _DIR)
    try:
        with _tar(src) as t:
            members, strip = _checked_members(t, src)
            if strip:
                print(f"{PROG}: '{src}': its members are under {strip}/: "
                      "staged its contents", file=sys.stderr)
            for m in members:
                try:
                    _member(t, m, top, bar)
                except _Refused as e:
                    raise StageError(f"'{src}': member '{m.name}' goes "
                                     f"through '{e}', a link or not a "
                                     "directory: refused") from None
                except FileExistsError:
                    raise StageError(f"'{src}': member '{m.name}' is in "
                                     "the archive twice: refused") from None
    finally:
        os.close(top)
    _links_stay_inside(dest, src)


def _copy(src, dest, bar):
    def copy(s, d):
        with open(s, "rb") as fin, open(d, "xb") as fout:
            _pour(fin, fout, bar)
        shutil.copystat(s, d)
    try:
        if os.path.isdir(src):
            shutil.copytree(src, dest, symlinks=True, copy_function=copy)
        elif _plain_file(src):
            print(f"{PROG}: '{src}' is no archive: staged as one file",
                  file=sys.stderr)
            copy(src, dest)
        else:
            _extract(src, dest, bar)
    finally:
        bar.end()


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
        need, nbytes = _need(src)
        shm = jobshm._c.info()              # the job's size, fsdax cap included
        free = max(shm["size"] - shm["used"], 0)
        if need > free:
            raise StageError(f"'{src}' needs {_fmt(need)} in the job's shm "
                             f"but {_fmt(free)} is free: ask for a larger "
                             "--shm")
        tmp = os.path.join(root, f".tmp.{name}.{os.getpid()}")
        try:
            _copy(src, tmp, _Progress(nbytes))
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
