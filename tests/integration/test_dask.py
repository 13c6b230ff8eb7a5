# SPDX-License-Identifier: GPL-2.0-or-later
"""Dask in a jobshm job: enqueue_jobshm --runtime=dask starts a scheduler
and workers on two nodes, and jobshm.dask shares an array once per node;
all of it over TLS with the job's own credentials, which nobody else (no
other user, no process of the user without them) can get past."""
import json
import os
import pwd
import re
import subprocess
import time
from pathlib import Path

from conftest import (OUT, ROOT, USER1, USER2, assert_clean, run, wait_done,
                      wait_file)

BIN = str(ROOT / "launcher" / "enqueue_jobshm")
APP = """
import json, os
import numpy as np
import jobshm, jobshm.dask as jd

def task(a, i):
    import os, jobshm
    segs = sorted(e.name for e in jobshm.list() if e.name.startswith("dask-"))
    return {"node": os.environ["SLURMD_NODENAME"], "pid": os.getpid(),
            "writeable": a.flags.writeable, "owns": a.flags.owndata,
            "part": float(a[i::16].sum()), "segs": segs,
            "shm": os.environ.get("JOBSHM_DIR")}

def tls():
    d = os.environ["JOBSHM_DASK_TLS"]
    st = os.lstat(d)
    return {"dir": d, "mode": st.st_mode & 0o7777, "uid": st.st_uid,
            "files": {f: os.lstat(os.path.join(d, f)).st_mode & 0o7777
                      for f in os.listdir(d)}}

c = jd.client()
info = c.scheduler_info()
addrs = [info["address"]] + list(info["workers"]) + \
    [w["nanny"] for w in info["workers"].values()]
X = np.arange(400000, dtype=np.float64).reshape(-1, 8)
Xs = jd.share(c, X)
assert jd.share(c, X).key == Xs.key           # same data, same segment
res = c.gather(c.map(task, [Xs] * 16, range(16), pure=False))
Y = jd.share(c, X + 1)                        # new data, new segment
assert Y.key != Xs.key
jd.release(c, Y)
print("RESULT", json.dumps({"key": Xs.key, "sum": float(X.sum()),
                            "tasks": res, "addrs": addrs, "uid": os.getuid(),
                            "tls": [tls()] + list(c.run(tls).values())}))
"""


def test_dask_on_two_nodes_shares_once_per_node():
    app = OUT / "dask_app.py"
    app.write_text(APP)
    out = OUT / "dask-%j.out"
    p = run([BIN, "--runtime=dask", "--num_nodes=2", "--cpus_per_node=2",
             "--shm=128M", "--exec_time=5",
             f"--extra_submit_flag=--output={out}",
             "--extra_submit_flag=--mem=1G", "/usr/bin/python3", str(app)],
            user=USER1)
    assert p.returncode == 0, p.stderr
    jobid = int(re.match(r"Submitted batch job (\d+)", p.stdout).group(1))
    state = wait_done(jobid, timeout=240)
    text = (OUT / f"dask-{jobid}.out").read_text()
    log = OUT / f"dask-{jobid}.log"
    assert state == "COMPLETED", text + (log.read_text()[-3000:]
                                         if log.exists() else "")
    r = json.loads(text.split("RESULT ", 1)[1].splitlines()[0])
    tasks = r["tasks"]
    assert {t["node"] for t in tasks} == {"n1", "n2"}
    assert len({(t["node"], t["pid"]) for t in tasks}) >= 3   # 4 workers
    # every task got the array itself: read-only, not a copy of its own
    assert not any(t["writeable"] or t["owns"] for t in tasks)
    assert abs(sum(t["part"] for t in tasks) - r["sum"]) < 1e-6 * r["sum"]
    # one segment per node (the released one is gone), in the job's shm
    assert all(t["segs"] == [r["key"]] for t in tasks), tasks
    assert all(t["shm"] == "/dev/shm" for t in tasks)
    # TLS only, on the nodes' NodeAddr (127.0.0.1 here), not 0.0.0.0
    assert all(a.startswith("tls://127.0.0.1:") for a in r["addrs"]), r
    # the credentials: 0600 files in a 0700 directory in the job's shm of
    # each node; the scheduler file there too, 0600
    key_files = {"ca.pem": 0o600, "cert.pem": 0o600, "key.pem": 0o600}
    for t in r["tls"]:
        assert t["dir"] == f"/dev/shm/.jobshm-dask-{jobid}", t
        assert t["mode"] == 0o700 and t["uid"] == r["uid"], t
        extra = {k: v for k, v in t["files"].items() if k not in key_files}
        assert {k: t["files"][k] for k in key_files} == key_files, t
        assert extra in ({}, {"scheduler.json": 0o600}), t
    assert {"scheduler.json": 0o600} == {k: v for k, v in
                                         r["tls"][0]["files"].items()
                                         if k == "scheduler.json"}
    assert_clean(jobid)
    # nothing of Dask left on the nodes
    time.sleep(1)
    left = subprocess.run(["pgrep", "-u", USER1, "-f", "distributed.cli"],
                          capture_output=True, text=True).stdout
    assert not left.strip(), left
    assert not (OUT / f".jobshm-dask-{jobid}.json").exists()


# The attacker: a distributed.Client's client.run(fn) on the scheduler, and
# the "run" call of every worker and nanny, with fn (pickled by value, as
# Dask sends it) appending to a marker file.  Each address is tried as
# announced, as plain tcp, as TLS without a client certificate and as TLS
# with a certificate of the attacker's own CA (trusting any server).
ATTACK = """
import asyncio, json, os, ssl, sys, tempfile

from distributed import Client, Security
from distributed.core import rpc
from distributed.protocol import pickle

import jobshm.dask as jd

addrs, marker = json.loads(sys.argv[1]), sys.argv[2]


def fn(path=marker):
    import os
    with open(path, "a") as f:
        f.write(f"uid {os.getuid()} pid {os.getpid()}\\n")
    return "RAN"


class Tls(Security):
    def __init__(self, own_cert):
        super().__init__(require_encryption=True)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.ctx.check_hostname, self.ctx.verify_mode = False, ssl.CERT_NONE
        if own_cert:
            d = tempfile.mkdtemp()
            for name, text in jd.credentials().items():
                with open(os.path.join(d, name), "w") as f:
                    f.write(text)
            self.ctx.load_cert_chain(os.path.join(d, "cert.pem"),
                                     os.path.join(d, "key.pem"))

    def get_connection_args(self, role):
        return {"ssl_context": self.ctx, "require_encryption": True,
                "extra_conn_args": {}}


def variants(addr):
    host = addr.split("://", 1)[1]
    return [("as-announced", addr, None), ("tcp", "tcp://" + host, None),
            ("tls-no-cert", "tls://" + host, Tls(False)),
            ("tls-own-cert", "tls://" + host, Tls(True))]


async def scheduler(addr, sec):
    kw = {"security": sec} if sec else {}
    async with Client(addr, asynchronous=True, timeout=4, **kw) as c:
        return repr(await c.run(fn))


async def server(addr, sec):
    args = sec.get_connection_args("client") if sec else {}
    async with rpc(addr, timeout=4, connection_args=args) as r:
        return repr(await r.run(function=pickle.dumps(fn)))


async def attempt(i, how, addr, sec):
    try:
        f = scheduler if i == 0 else server
        return [addr, how, "RAN " + await asyncio.wait_for(f(addr, sec), 30)]
    except Exception as e:
        return [addr, how, f"refused: {type(e).__name__}: {e}"[:200]]


async def main():
    print("ATTACK", json.dumps(await asyncio.gather(*[
        attempt(i, how, a, sec) for i, addr in enumerate(addrs)
        for how, a, sec in variants(addr)])))

asyncio.run(main())
"""

WAIT_APP = """
import json, os, sys, time
import jobshm.dask as jd

c = jd.client()
i = c.scheduler_info()
addrs = [i["address"]] + list(i["workers"]) + \\
    [w["nanny"] for w in i["workers"].values()]
with open(sys.argv[1] + ".tmp", "w") as f:
    json.dump(addrs, f)
os.chmod(sys.argv[1] + ".tmp", 0o644)
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
end = time.time() + 240
while not os.path.exists(sys.argv[1] + ".done") and time.time() < end:
    time.sleep(0.2)
print("RESULT", json.dumps(c.run(os.getpid)))
"""


def listeners(user):
    """Local addresses of the TCP sockets user's Python processes (Dask's)
    listen on (srun's own, Slurm's business, are left out)."""
    uid = pwd.getpwnam(user).pw_uid
    out = subprocess.run(["ss", "-Hltnpe"], capture_output=True, text=True,
                         check=True).stdout
    return [l.split()[3] for l in out.splitlines()
            if f" uid:{uid} " in l and '(("python3"' in l]


def attack(user, addrs, marker):
    env = dict(os.environ, PYTHONPATH=str(ROOT / "python"), HOME="/tmp")
    for k in [k for k in env if k.startswith(("DASK_", "JOBSHM_"))]:
        del env[k]
    p = run(["/usr/bin/python3", "-c", ATTACK, json.dumps(addrs),
             str(marker)], user=user, env=env, timeout=120)
    assert "ATTACK " in p.stdout, p.stderr[-3000:]
    return json.loads(p.stdout.split("ATTACK ", 1)[1].splitlines()[0])


def test_dask_refuses_other_users_and_clients_without_the_jobs_keys():
    app, addr_file = OUT / "dask_wait_app.py", OUT / "dask-addrs.json"
    marker = OUT / "dask-pwned"
    for f in (addr_file, marker, OUT / "dask-addrs.json.done"):
        f.unlink(missing_ok=True)
    app.write_text(WAIT_APP)
    out = OUT / "dask-wait-%j.out"
    p = run([BIN, "--runtime=dask", "--num_nodes=2", "--cpus_per_node=1",
             "--shm=64M", "--exec_time=5",
             f"--extra_submit_flag=--output={out}",
             "--extra_submit_flag=--mem=1G", "/usr/bin/python3", str(app),
             str(addr_file)], user=USER1)
    assert p.returncode == 0, p.stderr
    jobid = int(re.match(r"Submitted batch job (\d+)", p.stdout).group(1))
    log = OUT / f"dask-{jobid}.log"
    try:
        wait_file(addr_file, "]", timeout=180)
        addrs = json.loads(addr_file.read_text())
        assert len(addrs) == 5, addrs           # scheduler, 2 workers, 2 nannies
        # another user on the node, and the same user outside the job
        # (without the job's credentials): every attempt refused
        for user in (USER2, USER1):
            res = attack(user, addrs, marker)
            assert len(res) == 20, res
            ran = [r for r in res if not r[2].startswith("refused")]
            assert not ran, (user, ran)
        assert not marker.exists(), marker.read_text()
        # nothing of the job's listens on every interface
        socks = listeners(USER1)
        assert socks and all(s.startswith("127.0.0.1:") for s in socks), socks
    finally:
        (OUT / "dask-addrs.json.done").touch()
        state = wait_done(jobid, timeout=240)
    text = (OUT / f"dask-wait-{jobid}.out").read_text()
    assert state == "COMPLETED", text + (log.read_text()[-3000:]
                                         if log.exists() else "")
    assert len(json.loads(text.split("RESULT ", 1)[1].splitlines()[0])) == 2
    # the servers themselves refused the handshakes
    assert "TLS handshake failed" in log.read_text()
    assert not marker.exists()
    assert_clean(jobid)


NOSHM_APP = """
import json, os
import jobshm.dask as jd

def tls():
    d = os.environ["JOBSHM_DASK_TLS"]
    return {"dir": d, "mode": os.lstat(d).st_mode & 0o7777,
            "files": {f: os.lstat(os.path.join(d, f)).st_mode & 0o7777
                      for f in os.listdir(d)}}

c = jd.client()
print("RESULT", json.dumps({"nodes": sorted(c.run(lambda: os.environ[
    "SLURMD_NODENAME"]).values()), "tls": [tls()] + list(c.run(tls).values()),
    "addr": c.scheduler.address}))
"""


def test_dask_without_a_job_shm_keeps_its_keys_in_the_users_own_dir():
    # no --shm (the test cluster's default_size is 0): the node's /dev/shm,
    # shared by the two slurmd of this host; the keys go to the user's own
    # /dev/shm/jobshm-UID, 0700, and two installs at once leave them whole
    app = OUT / "dask_noshm_app.py"
    app.write_text(NOSHM_APP)
    out = OUT / "dask-noshm-%j.out"
    p = run([BIN, "--runtime=dask", "--num_nodes=2", "--cpus_per_node=1",
             "--exec_time=5", f"--extra_submit_flag=--output={out}",
             "--extra_submit_flag=--mem=1G", "/usr/bin/python3", str(app)],
            user=USER1)
    assert p.returncode == 0, p.stderr
    jobid = int(re.match(r"Submitted batch job (\d+)", p.stdout).group(1))
    state = wait_done(jobid, timeout=240)
    text = (OUT / f"dask-noshm-{jobid}.out").read_text()
    assert state == "COMPLETED", text
    r = json.loads(text.split("RESULT ", 1)[1].splitlines()[0])
    assert r["nodes"] == ["n1", "n2"] and r["addr"].startswith("tls://127.")
    uid = pwd.getpwnam(USER1).pw_uid
    for t in r["tls"]:
        assert t["dir"] == f"/dev/shm/jobshm-{uid}/.jobshm-dask-{jobid}", t
        assert t["mode"] == 0o700, t
        assert all(m == 0o600 for m in t["files"].values()), t
        assert {"ca.pem", "cert.pem", "key.pem"} <= set(t["files"]), t
    own = Path(f"/dev/shm/jobshm-{uid}")
    assert own.stat().st_uid == uid and own.stat().st_mode & 0o777 == 0o700
    # removed when the batch step ends (here both nodes share this host's)
    assert not (own / f".jobshm-dask-{jobid}").exists()
