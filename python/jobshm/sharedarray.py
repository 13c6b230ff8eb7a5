# SPDX-License-Identifier: GPL-2.0-or-later
"""SharedArray's API on jobshm: ``import jobshm.sharedarray as SharedArray``.

The calls, errors and file format of SharedArray 3.x (with 2.x's module
functions msync, mlock and munlock as well)::

    a = SharedArray.create("shm://grid", (1000, 3), dtype=float)  # zeros
    b = SharedArray.attach("grid", ro=True)                       # zero-copy
    [d.name.decode() for d in SharedArray.list()]                 # ['grid']
    SharedArray.delete("grid")

Names: ``shm://NAME`` (or a bare NAME) is the file NAME in the job's shm
(``/dev/shm/NAME`` inside a jobshm job, which is private to the job, so
no prefix is needed; outside a job the user's own directory that
jobshm.info() names); ``file://PATH`` is the file PATH.  An array is its
data followed by SharedArray's metadata block, so arrays made by the real
SharedArray attach here and the reverse.

What jobshm adds: a shm:// name is one file name (no '/', not '.' or
'..'), so it cannot leave the directory; create() builds the file unnamed
and links it into place (no reader sees half of one, a name taken meanwhile
is FileExistsError, a planted link is never followed) and reserves the
whole array in the shm (a full shm fails create() with ENOSPC instead of
killing a writer with SIGBUS later); attach() never follows a link in the
shm and refuses a file of another user there, or in any directory others
may write to; object arrays (pointers) are refused.  No resource tracker
unlinks anything behind the user's back.
"""
import collections
import ctypes
import errno
import mmap
import operator
import os
import stat
import struct

import numpy as np

from . import info as _info

__all__ = ["create", "attach", "delete", "list", "msync", "mlock",
           "munlock", "MS_ASYNC", "MS_SYNC", "MS_INVALIDATE", "ArrayDesc"]

# msync(2) flags (Linux's values; Python's mmap module does not export them)
MS_ASYNC, MS_INVALIDATE, MS_SYNC = 1, 2, 4

PROG = "jobshm.sharedarray"
MAGIC = b"[SharedArray]"

# SharedArray 3.x's metadata, packed, at the very end of the file (the data
# starts at offset 0): magic[16], size_t size (data bytes), int typenum,
# int itemsize, int ndims, npy_intp dims[NPY_MAXDIMS].  NPY_MAXDIMS is the
# numpy SharedArray was built against: 32 before numpy 2, 64 since.
_SIZE_T = "Q" if ctypes.sizeof(ctypes.c_size_t) == 8 else "I"
_INTP = "q" if ctypes.sizeof(ctypes.c_ssize_t) == 8 else "i"
MAXDIMS = int(getattr(np, "MAXDIMS", 64))


def _layout(maxdims):
    return struct.Struct(f"=16s{_SIZE_T}iii{maxdims}{_INTP}")


_META = _layout(MAXDIMS)                       # what create() writes
_READ = [_META] + [_layout(n) for n in (32, 64) if n != MAXDIMS]

ArrayDesc = collections.namedtuple("ArrayDesc", "name dtype dims")
ArrayDesc.__doc__ = "Description of an attachable numpy shared array"

# numpy type number -> dtype char (the first char of each number wins)
_TYPECHARS = {}
for _c in np.typecodes["All"]:
    _TYPECHARS.setdefault(np.dtype(_c).num, _c)
_OBJECT = np.dtype(object).num


def _dtype(typenum, itemsize):
    """The dtype SharedArray gives an array of this type number and item
    size (flexible types take the size; structure and byte order are not
    kept, as in SharedArray); ValueError if none."""
    c = _TYPECHARS.get(typenum)
    if c is None:
        raise ValueError(f"{PROG}: unknown numpy type number {typenum}")
    if typenum == _OBJECT:
        raise ValueError(f"{PROG}: object arrays hold pointers into one "
                         "process and cannot be shared")
    if c in "SV":
        return np.dtype(f"{c}{itemsize}") if itemsize > 0 else None
    if c == "U":
        return np.dtype(f"U{itemsize // 4}") \
            if itemsize > 0 and itemsize % 4 == 0 else None
    return np.dtype(c)


_libc = ctypes.CDLL(None, use_errno=True)
for _f, _args, _ret in (
        ("mmap", [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int,
                  ctypes.c_int, ctypes.c_int, ctypes.c_long], ctypes.c_void_p),
        ("munmap", [ctypes.c_void_p, ctypes.c_size_t], ctypes.c_int),
        ("msync", [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int],
         ctypes.c_int),
        ("mlock", [ctypes.c_void_p, ctypes.c_size_t], ctypes.c_int),
        ("munlock", [ctypes.c_void_p, ctypes.c_size_t], ctypes.c_int)):
    getattr(_libc, _f).argtypes = _args
    getattr(_libc, _f).restype = _ret
_MAP_FAILED = ctypes.c_void_p(-1).value


def _oserror(name, e=None, msg=None):
    """SharedArray's error for name: the errno's OSError subclass, with the
    name as filename."""
    code = e.errno if e is not None else errno.EINVAL
    return OSError(code, msg or os.strerror(code), name)


def _not_an_array(name, why=""):
    return OSError(f"No SharedArray at this address: {name!r}{why}")


class MapOwner:
    """The base object of every array create() and attach() return (as in
    SharedArray 3.x): it owns the mapping of the whole file and unmaps it
    when the last array on it goes.  name, addr and size as SharedArray's."""

    def __init__(self, name, addr, size, iface):
        self.name, self.addr, self.size = name, addr, size
        self._iface = iface
        self._munmap = _libc.munmap     # still there at interpreter exit

    @property
    def __array_interface__(self):
        return self._iface

    def _call(self, fn, *args):
        if fn(self.addr, self.size, *args) < 0:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))

    def msync(self, flags):
        """msync(2) of the whole mapping; flags: MS_ASYNC, MS_SYNC,
        MS_INVALIDATE.  Useful for file:// arrays."""
        self._call(_libc.msync, operator.index(flags))

    def mlock(self, *args):
        """mlock(2): keep the array's pages in RAM."""
        self._call(_libc.mlock)

    def munlock(self, *args):
        """munlock(2)."""
        self._call(_libc.munlock)

    def __del__(self):
        if self.addr:
            self._munmap(self.addr, self.size)
            self.addr = 0


# ---- names -------------------------------------------------------------------

_shm_dir_cache = {}


def _shm_dir():
    """The directory of shm:// names: the job's shm inside a jobshm job,
    the user's own directory outside one (jobshm.info() says which)."""
    key = os.environ.get("JOBSHM_DIR")
    d = _shm_dir_cache.get(key)
    if d is None:
        _shm_dir_cache.clear()
        d = _shm_dir_cache[key] = _info()["dir"]
    return d


class _Place:
    """Where name lives: an open directory and a file name in it."""

    def __init__(self, name):
        if not isinstance(name, str):
            raise TypeError(f"{PROG}: the name must be str, not "
                            f"{type(name).__name__}")
        if "\0" in name:
            raise ValueError("embedded null character")
        self.name = name
        if name.startswith("file://"):
            self.shm = False
            parent, self.file = os.path.split(name[len("file://"):])
            parent = parent or "."
        else:
            if name.startswith("shm://"):
                base = name[len("shm://"):]
            elif "://" in name:
                raise _oserror(name, msg=f"{PROG}: names are shm://NAME, "
                               "file://PATH or a bare NAME")
            else:
                base = name
            base = base.lstrip("/")     # as shm_open does
            if base in ("", ".", "..") or "/" in base or \
                    len(os.fsencode(base)) > 255:
                raise _oserror(name, msg=f"{PROG}: a shm name is one file "
                               "name of 1-255 bytes: no '/' inside, not "
                               "'.' or '..'")
            self.shm, self.file = True, base
            parent = _shm_dir()
        try:
            self.dirfd = self._opendir(parent)
        except FileNotFoundError:
            if not self.shm:
                raise _oserror(name, OSError(errno.ENOENT, "")) from None
            _shm_dir_cache.clear()      # removed since: ask jobshm again
            try:
                self.dirfd = self._opendir(_shm_dir())
            except OSError as e:
                raise _oserror(name, e) from None
        except OSError as e:
            raise _oserror(name, e) from None
        try:
            st = os.fstat(self.dirfd)
        except OSError:
            os.close(self.dirfd)
            raise
        # a directory others may write to: links and their files refused
        self.shared = bool(st.st_mode & stat.S_IWOTH)
        self.nofollow = os.O_NOFOLLOW if self.shm or self.shared else 0

    @staticmethod
    def _opendir(path):
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        os.close(self.dirfd)

    def open(self, flags):
        """The file, opened; refused unless it is a plain file of the
        user's (in the shm, or a directory others may write to)."""
        if not self.file:
            raise _oserror(self.name, OSError(errno.EISDIR, ""))
        try:
            fd = os.open(self.file, flags | os.O_CLOEXEC | os.O_NONBLOCK |
                         self.nofollow, dir_fd=self.dirfd)
        except OSError as e:
            if e.errno == errno.ELOOP and self.nofollow:
                raise _oserror(self.name, e, f"{PROG}: a symbolic link, "
                               "not followed here") from None
            raise _oserror(self.name, e) from None
        try:
            st = os.fstat(fd)
            mine = st.st_uid == os.geteuid() or \
                (not self.shm and st.st_uid == 0)
            if not mine and (self.shm or self.shared):
                raise PermissionError(
                    errno.EPERM, f"{PROG}: the file belongs to uid "
                    f"{st.st_uid}, not to you, in a directory others may "
                    "write to: refused", self.name)
            if not stat.S_ISREG(st.st_mode):
                raise _not_an_array(self.name, " (not a plain file)")
            return fd, st.st_size
        except BaseException:
            os.close(fd)
            raise


def _read_meta(fd, size, name):
    """(dtype, dims) of the SharedArray whose file is fd (size bytes)."""
    for lay in _READ:
        if size < lay.size:
            continue
        raw = os.pread(fd, lay.size, size - lay.size)
        if len(raw) != lay.size or \
                raw[:len(MAGIC) + 1] != MAGIC + b"\0":
            continue
        _, _, typenum, itemsize, ndims, *dims = lay.unpack(raw)
        if not 0 <= ndims <= len(dims):
            raise ValueError(f"number of dimensions must be within "
                             f"[0, {len(dims)}]")
        dims = tuple(dims[:ndims])
        dtype = _dtype(typenum, itemsize)
        if dtype is None or any(d < 0 for d in dims):
            raise _not_an_array(name, " (its metadata is not valid)")
        need = dtype.itemsize * int(np.prod(dims, dtype=object))
        if need > size - lay.size:
            raise _not_an_array(name, f" (its {need} bytes of data do not "
                                f"fit in the {size}-byte file)")
        return dtype, dims
    raise _not_an_array(name)


def _map(fd, size, name, writable, dtype, dims):
    """The array on a new shared mapping of the whole file; its base is the
    MapOwner, which unmaps it when the last array on it goes."""
    prot = mmap.PROT_READ | (mmap.PROT_WRITE if writable else 0)
    addr = _libc.mmap(None, size, prot, mmap.MAP_SHARED, fd, 0)
    if addr is None or addr == _MAP_FAILED:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), name)
    iface = {"version": 3, "shape": dims, "typestr": dtype.str,
             "data": (addr, not writable), "strides": None}
    if dtype.kind == "V":
        iface["descr"] = dtype.descr
    owner = MapOwner(name, addr, size, iface)
    return np.asarray(owner)


def _dims(shape):
    """shape as numpy.zeros takes it: a number or a sequence of numbers."""
    try:
        dims = (operator.index(shape),)
    except TypeError:
        dims = tuple(operator.index(n) for n in shape)
    if any(d < 0 for d in dims):
        raise ValueError("negative dimensions are not allowed")
    if len(dims) > MAXDIMS:
        raise ValueError(f"number of dimensions must be within [0, "
                         f"{MAXDIMS}]")
    return dims


# ---- SharedArray's calls -----------------------------------------------------

def create(name, shape, dtype=float):
    """A new zero-filled array called name (shm://NAME, file://PATH or a
    bare NAME); FileExistsError if the name is taken.  shape and dtype as
    numpy.zeros takes them."""
    dims = _dims(shape)
    dt = np.dtype(dtype)
    if dt.itemsize == 0:
        raise ValueError("unsupported data type has element size of 0!")
    out = _dtype(dt.num, dt.itemsize)
    nbytes = dt.itemsize * int(np.prod(dims, dtype=object))
    size = nbytes + _META.size
    meta = _META.pack(MAGIC, nbytes, dt.num, dt.itemsize, len(dims),
                      *dims, *([0] * (MAXDIMS - len(dims))))
    with _Place(name) as p:
        if not p.file:
            raise _oserror(name, OSError(errno.EISDIR, ""))
        fd = _new_file(p, size, meta)
        try:
            return _map(fd, size, name, True, out, dims)
        finally:
            os.close(fd)


def _new_file(p, size, meta):
    """The file, made whole and then named (or, where the file system
    cannot make unnamed files, made with O_EXCL and filled)."""
    mode = 0o600 if p.shm else 0o666        # file://: the umask applies
    try:
        fd = os.open(".", os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, mode,
                     dir_fd=p.dirfd)
    except OSError as e:
        if e.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
            raise _oserror(p.name, e) from None
        fd = None
    if fd is None:
        try:
            fd = os.open(p.file, os.O_RDWR | os.O_CREAT | os.O_EXCL |
                         os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=p.dirfd)
        except OSError as e:
            raise _oserror(p.name, e) from None
        named = True
    else:
        named = False
    try:
        _fill(fd, p, size, meta)
        if not named:
            try:
                os.link(f"/proc/self/fd/{fd}", p.file, dst_dir_fd=p.dirfd,
                        follow_symlinks=True)
            except OSError as e:
                raise _oserror(p.name, e) from None
        return fd
    except BaseException:
        if named:
            try:
                os.unlink(p.file, dir_fd=p.dirfd)
            except OSError:
                pass
        os.close(fd)
        raise


def _fill(fd, p, size, meta):
    try:
        if p.shm:       # reserve it now: ENOSPC here, never SIGBUS later
            os.posix_fallocate(fd, 0, size)
        else:           # a sparse file, as SharedArray makes
            os.ftruncate(fd, size)
        if os.pwrite(fd, meta, size - len(meta)) != len(meta):
            raise OSError(errno.EIO, "short write of the metadata")
    except OSError as e:
        raise _oserror(p.name, e) from None


def attach(name, ro=False):
    """The array called name, zero-copy; read-only (mapped so) when ro."""
    with _Place(name) as p:
        fd, size = p.open(os.O_RDONLY if ro else os.O_RDWR)
        try:
            dtype, dims = _read_meta(fd, size, name)
            return _map(fd, size, name, not ro, dtype, dims)
        finally:
            os.close(fd)


def delete(name):
    """Remove the name of a SharedArray; arrays attached to it stay valid.
    A file that is not a SharedArray is left alone (OSError)."""
    with _Place(name) as p:
        fd, size = p.open(os.O_RDONLY)
        try:
            _read_meta(fd, size, name)
        finally:
            os.close(fd)
        try:
            os.unlink(p.file, dir_fd=p.dirfd)
        except OSError as e:
            raise _oserror(name, e) from None


def list():  # noqa: A001 - SharedArray's name
    """A tuple of ArrayDesc(name: bytes, dtype: numpy scalar type, dims:
    tuple) for each shm:// array."""
    out = []
    with _Place("shm://x") as p:        # the shm directory; p.file set below
        with os.scandir(p.dirfd) as it:
            for ent in sorted(it, key=lambda e: e.name):
                if not ent.is_file(follow_symlinks=False):
                    continue
                p.file = ent.name
                try:
                    fd, size = p.open(os.O_RDONLY)
                except OSError:
                    continue
                try:
                    dtype, dims = _read_meta(fd, size, ent.name)
                except (OSError, ValueError):
                    continue
                finally:
                    os.close(fd)
                out.append(ArrayDesc(os.fsencode(ent.name), dtype.type, dims))
    return tuple(out)


# ---- SharedArray 2.x's module functions --------------------------------------

def _owner(array):
    if not isinstance(array, np.ndarray):
        raise TypeError(f"argument 1 must be numpy.ndarray, not "
                        f"{type(array).__name__}")
    if array.base is None:
        raise RuntimeError("Can't find the base object of the given numpy "
                           "array")
    if not isinstance(array.base, MapOwner):
        raise RuntimeError("The base object of the given numpy array isn't "
                           "a SharedArray")
    return array.base


def msync(array, flags):
    """msync(2) of an array create() or attach() returned (2.x's call;
    3.x's is array.base.msync(flags))."""
    if not isinstance(flags, int):
        raise TypeError(f"argument 2 must be int, not {type(flags).__name__}")
    _owner(array).msync(flags)


def mlock(array):
    """mlock(2) of an array create() or attach() returned."""
    _owner(array).mlock()


def munlock(array):
    """munlock(2) of an array create() or attach() returned."""
    _owner(array).munlock()
