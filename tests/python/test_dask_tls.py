# SPDX-License-Identifier: GPL-2.0-or-later
"""jobshm.dask's credentials for the Dask runtime (without a cluster): a
CA of the job's own signs the one certificate, the files are 0600 in a
new 0700 directory and never written through a link, and a Dask
scheduler with them lets in only a client that holds them."""
import asyncio
import json
import os
import ssl
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import jobshm.dask as jd

ROOT = Path(__file__).resolve().parents[2]


def load(pem):
    from cryptography import x509
    return x509.load_pem_x509_certificate(pem.encode())


def test_one_certificate_signed_by_the_jobs_own_ca():
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization as ser
    from cryptography.hazmat.primitives.asymmetric import ec

    c = jd.credentials()
    assert sorted(c) == ["ca.pem", "cert.pem", "key.pem"]
    ca, cert = load(c["ca.pem"]), load(c["cert.pem"])
    ca.public_key().verify(cert.signature, cert.tbs_certificate_bytes,
                           ec.ECDSA(cert.signature_hash_algorithm))
    bc = x509.BasicConstraints
    assert ca.extensions.get_extension_for_class(bc).value.ca
    assert not cert.extensions.get_extension_for_class(bc).value.ca
    key = ser.load_pem_private_key(c["key.pem"].encode(), None)
    assert key.public_key().public_numbers() == \
        cert.public_key().public_numbers()
    assert c["key.pem"].count("PRIVATE KEY-----") == 2    # the CA's: gone
    assert jd.credentials()["ca.pem"] != c["ca.pem"]  # new for every job


def test_install_writes_0600_files_in_a_new_0700_directory(tmp_path):
    tmp_path.chmod(0o700)
    old = os.umask(0)
    try:
        jd.install(str(tmp_path / "tls"), jd.credentials())
    finally:
        os.umask(old)
    d = tmp_path / "tls"
    assert stat.S_IMODE(d.lstat().st_mode) == 0o700
    assert {f.name: stat.S_IMODE(f.lstat().st_mode) for f in d.iterdir()} \
        == {"ca.pem": 0o600, "cert.pem": 0o600, "key.pem": 0o600}


def test_install_replaces_a_directory_left_by_a_requeued_job(tmp_path):
    tmp_path.chmod(0o700)
    jd.install(str(tmp_path / "tls"), jd.credentials())
    c = jd.credentials()
    jd.install(str(tmp_path / "tls"), c)
    assert (tmp_path / "tls" / "key.pem").read_text() == c["key.pem"]


def test_install_never_follows_a_planted_link(tmp_path):
    tmp_path.chmod(0o700)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "tls").symlink_to(elsewhere)
    with pytest.raises(OSError):
        jd.install(str(tmp_path / "tls"), jd.credentials())
    assert list(elsewhere.iterdir()) == []


def test_install_replaces_a_link_in_the_directory_never_writes_through_it(
        tmp_path):
    tmp_path.chmod(0o700)
    (tmp_path / "tls").mkdir(mode=0o700)
    target = tmp_path / "target"
    target.write_text("untouched")
    (tmp_path / "tls" / "key.pem").symlink_to(target)
    jd.install(str(tmp_path / "tls"), jd.credentials())
    key = tmp_path / "tls" / "key.pem"
    assert not key.is_symlink() and "PRIVATE KEY" in key.read_text()
    assert stat.S_IMODE(key.lstat().st_mode) == 0o600
    assert target.read_text() == "untouched"


def test_two_installs_at_once_leave_whole_files(tmp_path):
    """Several slurmd on one host share /dev/shm without a job shm."""
    tmp_path.chmod(0o700)
    c = jd.credentials()
    env = dict(os.environ, PYTHONPATH=str(ROOT / "python"))
    ps = [subprocess.Popen([sys.executable, "-m", "jobshm.dask", "install",
                            str(tmp_path / "tls")], stdin=subprocess.PIPE,
                           text=True, env=env) for _ in range(4)]
    for p in ps:
        p.stdin.write(json.dumps(c))
        p.stdin.close()
    assert [p.wait() for p in ps] == [0] * 4
    assert {f.name: f.read_text() for f in (tmp_path / "tls").iterdir()} == c


def test_install_refuses_a_directory_others_can_use(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    with pytest.raises(RuntimeError, match="only you can use"):
        jd.install(str(shared / "tls"), jd.credentials())
    assert not (shared / "tls").exists()


def cmd(*args, stdin=""):
    env = dict(os.environ, PYTHONPATH=str(ROOT / "python"))
    return subprocess.run([sys.executable, "-m", "jobshm.dask", *args],
                          input=stdin, capture_output=True, text=True,
                          env=env)


@pytest.mark.parametrize("args,stdin,msg", [
    (["bogus"], "", "jobshm.dask: expected 'credentials', 'install DIR' or "
     "'address', not 'bogus'"),
    (["install", "/nonexistent/x/y"], "not json",
     "jobshm.dask: install: stdin is not what 'credentials' writes"),
    (["install", "/nonexistent/x/y"], '{"key.pem": "x"}',
     "jobshm.dask: install: expected ca.pem, cert.pem, key.pem"),
])
def test_bad_input(args, stdin, msg):
    p = cmd(*args, stdin=stdin)
    assert p.returncode != 0 and p.stderr.startswith(msg), p.stderr


def test_client_never_falls_back_to_plain_tcp(monkeypatch):
    monkeypatch.delenv("JOBSHM_DASK_TLS", raising=False)
    monkeypatch.setenv("JOBSHM_DASK_SCHEDULER_FILE", "/nonexistent")
    with pytest.raises(RuntimeError, match="JOBSHM_DASK_TLS is not set"):
        jd.client(timeout=1)


def write(d, files):
    d.mkdir(mode=0o700)
    for name, text in files.items():
        (d / name).write_text(text)
    return {k: str(d / k) for k in files}


class Tls:
    """A client's TLS that trusts any server, with the given client cert."""

    def __init__(self, files):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.ctx.check_hostname, self.ctx.verify_mode = False, ssl.CERT_NONE
        if files:
            self.ctx.load_cert_chain(files["cert.pem"], files["key.pem"])


async def attempt(address, files):
    from distributed.core import rpc

    args = {"ssl_context": Tls(files).ctx, "require_encryption": True}
    try:
        async with rpc(address, timeout=3, connection_args=args) as r:
            await r.identity()
        return False
    except OSError:
        return True


def test_scheduler_lets_in_only_a_client_with_the_jobs_certificate(
        tmp_path, monkeypatch):
    d = tmp_path / "tls"
    tmp_path.chmod(0o700)
    jd.install(str(d), jd.credentials())
    monkeypatch.setenv("JOBSHM_DASK_TLS", str(d))
    ok, refused = asyncio.run(handshake(d, tmp_path))
    assert ok and refused == [True, True], refused


async def handshake(d, tmp_path):
    """The job's client gets in; TLS with another CA's certificate, or
    with none, is refused."""
    from distributed import Client, Scheduler, Security

    other = write(tmp_path / "other", jd.credentials())
    sec = Security(tls_ca_file=str(d / "ca.pem"), require_encryption=True,
                   tls_scheduler_cert=str(d / "cert.pem"),
                   tls_scheduler_key=str(d / "key.pem"))
    async with Scheduler(host="127.0.0.1", port=0, protocol="tls",
                         security=sec, dashboard_address="127.0.0.1:0") as s:
        assert s.address.startswith("tls://127.0.0.1:")
        async with Client(s.address, asynchronous=True, timeout=10,
                          security=jd.security()) as c:
            ok = c.scheduler_info()["address"] == s.address
        return ok, [await attempt(s.address, f) for f in (other, None)]
