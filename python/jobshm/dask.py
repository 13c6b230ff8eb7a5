# SPDX-License-Identifier: GPL-2.0-or-later
"""Dask on jobshm: a NumPy array shared with every worker once per node.

    import jobshm.dask
    client = jobshm.dask.client()          # the job's scheduler
    Xs = jobshm.dask.share(client, X)      # once per node, in the job's shm
    futures = client.map(partial_sums, [Xs] * n, range(n))

`share` publishes X in the job's shm on each node that has workers (the
client's node from its own memory, every other node from one copy sent to
one of its workers) and returns a small handle.  A task that is given the
handle receives the array itself: attached zero-copy and read-only, one
mapping per worker process, whatever the number of tasks.  The segment's
name carries a hash of the contents, so new data is a new segment; it is
removed with the job's shm, or earlier by `release`.

Dask's own way, `client.scatter(X, broadcast=True)`, keeps one copy in
every worker process: a node with 16 workers holds 16.

The job's Dask speaks TLS only, with a CA of its own: enqueue_jobshm's
batch script runs `python3 -m jobshm.dask credentials` (a new CA, and one
certificate and key it signs, as JSON on stdout; the CA's key is never
kept) into `python3 -m jobshm.dask install DIR` on every node (files 0600
in a 0700 directory, JOBSHM_DASK_TLS), and binds every listener to
`python3 -m jobshm.dask address` (the node's address from Slurm).  Only a
process holding the certificate and key can connect: `client()` does.
"""
import hashlib
import json
import os
import stat
import re
import socket
import subprocess
import sys
import time

import numpy as np

import jobshm

_attached = {}


def _attach(key):
    """In a worker: the shared array called key (one mapping per process)."""
    a = _attached.get(key)
    if a is None:
        a = _attached[key] = jobshm.attach(key, ro=True)
    return a


class Shared:
    """Handle of an array shared once per node; a task given it gets the
    array (read-only, zero-copy), not the handle."""

    __slots__ = ("key", "shape", "dtype")

    def __init__(self, key, shape, dtype):
        self.key, self.shape, self.dtype = key, tuple(shape), np.dtype(dtype)

    def __reduce__(self):
        return _attach, (self.key,)

    @property
    def array(self):
        """The array, attached here (the client's node)."""
        return _attach(self.key)

    def __repr__(self):
        return f"jobshm.dask.Shared({self.key!r}, {self.shape}, {self.dtype})"


def _node():
    return os.environ.get("SLURMD_NODENAME") or socket.gethostname()


def _where():
    """Where a process is: (node, the job's shm it sees)."""
    i = jobshm.info()
    return _node(), i["dir"], i["prefix"]


def _publish(key, array):
    jobshm.publish(key, lambda: array)
    return _where()


def _token(a):
    h = hashlib.blake2b(digest_size=10)
    h.update(f"{a.dtype.str}{a.shape}".encode())
    h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def _one_worker_per_node(client):
    """{(node, shm dir, prefix): a worker address} of the client's workers."""
    nodes = {}
    for addr, where in sorted(client.run(_where).items()):
        nodes.setdefault(tuple(where), addr)
    return nodes


def share(client, array, name="dask"):
    """Publish array in the job's shm on every node with a worker; return
    the handle to give tasks.  The same contents give the same handle."""
    array = np.ascontiguousarray(array)
    key = f"{name}-{_token(array)}"
    here = _where()
    for where, addr in _one_worker_per_node(client).items():
        if where == here:       # the client's node: from its own memory
            _publish(key, array)
            continue
        fut = client.scatter(array, workers=[addr], broadcast=False)
        try:
            client.submit(_publish, key, fut, workers=[addr],
                          allow_other_workers=False, pure=False).result()
        finally:
            fut.release()
    return Shared(key, array.shape, array.dtype)


def _delete(key):
    _attached.pop(key, None)
    try:
        jobshm.delete(key)
    except jobshm.Error:
        pass
    return True


def release(client, shared):
    """Remove a shared array from every node before the job ends (tasks
    that still hold it keep their pages until they let go)."""
    client.run(_delete, shared.key,
               workers=list(_one_worker_per_node(client).values()))
    _delete(shared.key)


def _job_env(name):
    v = os.environ.get(name)
    if not v:
        raise RuntimeError(f"jobshm.dask: {name} is not set (start the job "
                           "with enqueue_jobshm --runtime=dask)")
    return v


def security():
    """The job's distributed.Security: TLS with the job's CA, certificate
    and key (JOBSHM_DASK_TLS), nothing unencrypted."""
    from distributed import Security

    d = _job_env("JOBSHM_DASK_TLS")
    return Security(tls_ca_file=os.path.join(d, "ca.pem"),
                    tls_client_cert=os.path.join(d, "cert.pem"),
                    tls_client_key=os.path.join(d, "key.pem"),
                    require_encryption=True)


def client(timeout=300):
    """A Client of the job's Dask scheduler (enqueue_jobshm --runtime=dask
    starts it), over TLS with the job's credentials, once every expected
    worker has joined."""
    from distributed import Client

    f = _job_env("JOBSHM_DASK_SCHEDULER_FILE")
    sec = security()
    end = time.monotonic() + timeout
    while not os.path.exists(f) and time.monotonic() < end:
        time.sleep(0.2)
    with open(f) as fh:
        json.load(fh)           # complete before Client reads it
    c = Client(scheduler_file=f, security=sec, timeout=timeout)
    n = int(os.environ.get("JOBSHM_DASK_WORKERS", "0"))
    if n:
        c.wait_for_workers(n, timeout=max(1, end - time.monotonic()))
    return c


# --- the job's credentials and address (python3 -m jobshm.dask ...) ---

def _cert(subject, issuer, key, signer, ca, days):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID as Eku

    now = time.time()
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
         .public_key(key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(_utc(now - 3600))     # nodes' clocks differ
         .not_valid_after(_utc(now + days * 86400))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None),
                        critical=True))
    if not ca:
        b = b.add_extension(x509.ExtendedKeyUsage(
            [Eku.SERVER_AUTH, Eku.CLIENT_AUTH]), critical=False)
    return b.sign(signer, hashes.SHA256())


def _utc(t):
    import datetime
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc)


def credentials(days=400):
    """{"ca.pem", "cert.pem", "key.pem": PEM text}: a new CA and one
    certificate and key it signs, for every process of the job (scheduler,
    workers, clients).  The CA's key is dropped: nothing else is signed."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization as ser
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    job = os.environ.get("SLURM_JOB_ID", "?")
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), \
        ec.generate_private_key(ec.SECP256R1())
    ca_name = name(f"jobshm dask CA, job {job}")
    ca = _cert(ca_name, ca_name, ca_key, ca_key, True, days)
    cert = _cert(name(f"jobshm dask, job {job}"), ca_name, key, ca_key,
                 False, days)
    pem = ser.Encoding.PEM
    return {"ca.pem": ca.public_bytes(pem).decode(),
            "cert.pem": cert.public_bytes(pem).decode(),
            "key.pem": key.private_bytes(pem, ser.PrivateFormat.PKCS8,
                                         ser.NoEncryption()).decode()}


TLS_FILES = ("ca.pem", "cert.pem", "key.pem")


def _private_dir(path, dir_fd=None, mkdir=False):
    """An open descriptor of path: a directory of ours that only we can
    use (0700), never a link; made (0700) first if mkdir and missing."""
    if mkdir:
        try:
            os.mkdir(path, 0o700, dir_fd=dir_fd)
        except FileExistsError:
            pass
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW |
                     os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError as e:
        try:
            st = os.lstat(path, dir_fd=dir_fd)
        except OSError:
            raise e from None
        raise type(e)(e.errno, f"jobshm.dask: cannot use {path}: "
                      f"{_whose(st)}; run the job with --shm, or set "
                      "JOBSHM_DIR to a 0700 directory of yours") from None
    st = os.fstat(fd)
    if st.st_uid != os.geteuid() or st.st_mode & 0o077:
        os.close(fd)
        raise RuntimeError(f"jobshm.dask: {path} is not a directory of "
                           f"yours that only you can use (mode 0700): "
                           f"{_whose(st)}; run the job with --shm, or set "
                           "JOBSHM_DIR to a 0700 directory of yours")
    return fd


def _whose(st):
    """Who made a directory we cannot use, for the error."""
    import pwd
    try:
        owner = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        owner = "no name"
    if st.st_uid != os.geteuid():
        return f"it belongs to uid {st.st_uid} ({owner})"
    if not stat.S_ISDIR(st.st_mode):
        return "it is not a directory"
    return f"it has mode {st.st_mode & 0o777:04o}"


def install(path, files):
    """Write files ({name: text}, the names of TLS_FILES) 0600 into the
    0700 directory path (made if missing), whose parent must be ours and
    0700 too: the job's shm, or our own /dev/shm/jobshm-UID (made if
    missing).  Each file is written under a new name and renamed over the
    old one, so no link is followed, a requeued job's files are replaced,
    and two installs of the same credentials at once (several slurmd on
    one host sharing /dev/shm) leave them whole."""
    if sorted(files) != sorted(TLS_FILES):
        raise ValueError(f"expected {', '.join(TLS_FILES)} on stdin")
    os.umask(0o077)
    parent, name = os.path.split(os.path.abspath(path))
    pfd = _private_dir(parent, mkdir=True)
    try:
        fd = _private_dir(name, dir_fd=pfd, mkdir=True)
    finally:
        os.close(pfd)
    try:
        for f in TLS_FILES:
            _replace(fd, f, files[f])
    finally:
        os.close(fd)


def _replace(dirfd, name, text):
    tmp = f".{name}.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW |
                 os.O_CLOEXEC, 0o600, dir_fd=dirfd)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, name, src_dir_fd=dirfd, dst_dir_fd=dirfd)


def address():
    """This node's address in the cluster: Slurm's NodeAddr for it (the
    address slurmctld and srun reach it at), as an IP address (IPv4 where
    it has one)."""
    node = _node()
    p = subprocess.run(["scontrol", "-o", "show", "node", node],
                       capture_output=True, text=True)
    m = re.search(r"(?:^|\s)NodeAddr=(\S+)", p.stdout)
    if p.returncode != 0 or not m:
        raise RuntimeError(f"jobshm.dask: no NodeAddr for node '{node}' "
                           f"from scontrol: {p.stderr.strip()}")
    ai = socket.getaddrinfo(m.group(1), None, type=socket.SOCK_STREAM)
    return sorted(ai, key=lambda a: a[0] != socket.AF_INET)[0][4][0]


def _read_json(f):
    try:
        return json.load(f)
    except ValueError:
        raise ValueError("stdin is not what 'credentials' writes") from None


def main(argv):
    """credentials | install DIR | address (for enqueue_jobshm's script)."""
    cmd = argv[1] if len(argv) > 1 else ""
    try:
        if cmd == "credentials" and len(argv) == 2:
            json.dump(credentials(), sys.stdout)
        elif cmd == "install" and len(argv) == 3:
            install(argv[2], _read_json(sys.stdin))
        elif cmd == "address" and len(argv) == 2:
            print(address())
        else:
            sys.exit("jobshm.dask: expected 'credentials', 'install DIR' "
                     f"or 'address', not {' '.join(argv[1:])!r}")
    except (OSError, RuntimeError, ValueError) as e:
        sys.exit(f"jobshm.dask: {cmd}: {e}")


if __name__ == "__main__":
    main(sys.argv)
