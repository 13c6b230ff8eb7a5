# SPDX-License-Identifier: GPL-2.0-or-later
"""Dask in a jobshm job: enqueue_jobshm --runtime=dask starts a scheduler
and workers on two nodes, and jobshm.dask shares an array once per node."""
import json
import re
import subprocess
import time

from conftest import OUT, ROOT, USER1, assert_clean, run, wait_done

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

c = jd.client()
X = np.arange(400000, dtype=np.float64).reshape(-1, 8)
Xs = jd.share(c, X)
assert jd.share(c, X).key == Xs.key           # same data, same segment
res = c.gather(c.map(task, [Xs] * 16, range(16), pure=False))
Y = jd.share(c, X + 1)                        # new data, new segment
assert Y.key != Xs.key
jd.release(c, Y)
print("RESULT", json.dumps({"key": Xs.key, "sum": float(X.sum()),
                            "tasks": res}))
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
    assert_clean(jobid)
    # nothing of Dask left on the nodes
    time.sleep(1)
    left = subprocess.run(["pgrep", "-u", USER1, "-f", "distributed.cli"],
                          capture_output=True, text=True).stdout
    assert not left.strip(), left
    assert not (OUT / f".jobshm-dask-{jobid}.json").exists()
