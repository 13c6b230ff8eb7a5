# SPDX-License-Identifier: GPL-2.0-or-later
"""Helpers for jobshm's integration tests against the real test cluster.

The cluster is started by tests/cluster/cluster.sh (make cluster-test does
it); these tests talk to it with the real sbatch/srun/salloc/scontrol.
"""
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
D = Path(os.environ.get("JOBSHM_CLUSTER_DIR", "/tmp/jobshm-cluster"))
OUT = D / "out"
BASE = D / "base"
CLI = str(ROOT / "cli" / "jobshm")
USER1, USER2 = "jobshm-u1", "jobshm-u2"
FINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL",
         "OUT_OF_MEMORY", "PREEMPTED", "BOOT_FAIL", "DEADLINE"}

os.environ["SLURM_CONF"] = str(D / "slurm.conf")


def run(cmd, user=None, check=False, timeout=120, **kw):
    """Run a command (as `user` when given); return CompletedProcess."""
    if user:
        cmd = ["runuser", "-u", user, "--"] + list(cmd)
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=str(OUT),
                       timeout=timeout, stdin=subprocess.DEVNULL, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"{cmd} failed ({p.returncode}):\n"
                             f"{p.stdout}\n{p.stderr}")
    return p


_submitted = []          # this test's batch jobs, cancelled if left


@pytest.fixture(autouse=True)
def _cancel_what_the_test_left():
    """One failure is one failure: whatever batch job a test submitted and
    left running (it failed before its scancel) is cancelled, and its end
    waited for, before the next test starts."""
    del _submitted[:]
    yield
    left = [j for j in _submitted if job_state(j) not in FINAL]
    if left:
        run(["scancel"] + [str(j) for j in left])
        for j in left:
            try:
                wait_done(j, timeout=60)
            except AssertionError:
                pass


def sbatch(args, script, user=USER1, name="job"):
    """Submit a batch script; return (jobid, output path)."""
    out = OUT / f"{name}-%j.out"
    body = "#!/bin/bash\n" + script + "\n"
    p = subprocess.run(["runuser", "-u", user, "--", "sbatch", "--parsable",
                        "-o", str(out)] + list(args), input=body,
                       capture_output=True, text=True, cwd=str(OUT),
                       timeout=60)
    assert p.returncode == 0, p.stderr
    jobid = int(p.stdout.strip().split(";")[0])
    _submitted.append(jobid)
    return jobid, OUT / f"{name}-{jobid}.out"


def job_info(jobid):
    p = run(["scontrol", "-o", "show", "job", str(jobid)])
    fields = dict(re.findall(r"(\w+)=(\S*)", p.stdout))
    return fields


def job_state(jobid):
    return job_info(jobid).get("JobState", "UNKNOWN")


def wait_state(jobid, states, timeout=120):
    end = time.time() + timeout
    while time.time() < end:
        s = job_state(jobid)
        if s in states:
            return s
        time.sleep(0.3)
    raise AssertionError(f"job {jobid} stuck in {job_state(jobid)}")


def wait_done(jobid, timeout=120):
    """Wait for the job's end and its epilog (no COMPLETING left)."""
    return wait_state(jobid, FINAL, timeout)


def wait_running(jobid, timeout=60):
    return wait_state(jobid, {"RUNNING"}, timeout)


def wait_file(path, text, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        if path.exists() and text in path.read_text():
            return path.read_text()
        time.sleep(0.2)
    raise AssertionError(f"{path} never showed {text!r}: "
                         f"{path.read_text() if path.exists() else '(none)'}")


def job_mounts(jobid=None):
    """jobshm mounts under the cluster's base path (all, or one job's):
    its shm, and the directory and file that keep its mount namespace."""
    lines = Path("/proc/self/mountinfo").read_text().splitlines()
    pts = [l.split()[4] for l in lines if f" {BASE}/" in l]
    if jobid is not None:
        ends = (f"/{jobid}", f"/{jobid}.ns", f"/{jobid}.ns/mnt")
        pts = [p for p in pts if p.endswith(ends)]
    return pts


def job_dirs(jobid):
    return [p for p in BASE.glob(f"*/{jobid}")] + \
        [p for p in BASE.glob(f"*/{jobid}.ns")]


class OwnShm:
    """The job's own tmpfs, held by an O_PATH descriptor of its root: what
    it holds is measured there, never by a node-wide counter (Shmem: of
    /proc/meminfo moves with whatever else runs on the host).  The
    descriptor keeps the superblock (not a byte of data, not the mount
    table entry, not the seal) after the job's end, so the end's freeing
    of the job's memory is seen exactly."""

    def __init__(self, jobid, timeout=30):
        end = time.time() + timeout
        while True:
            mounted = [p for p in BASE.glob(f"*/{jobid}") if p.is_mount()]
            if mounted:
                break
            if time.time() > end:
                raise AssertionError(f"job {jobid}'s shm never mounted")
            time.sleep(0.1)
        self.fd = os.open(mounted[0], os.O_PATH | os.O_DIRECTORY)

    def used_mb(self):
        v = os.fstatvfs(self.fd)
        return (v.f_blocks - v.f_bfree) * v.f_frsize / (1 << 20)

    def freed(self, slack_mb=1, timeout=20):
        """The job's memory is back: its tmpfs holds at most slack_mb."""
        end = time.time() + timeout
        while self.used_mb() > slack_mb:
            if time.time() > end:
                raise AssertionError(f"the job's tmpfs still holds "
                                     f"{self.used_mb():.1f} MiB")
            time.sleep(0.2)
        os.close(self.fd)


def shmem_kb():
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("Shmem:"):
            return int(line.split()[1])
    raise AssertionError("no Shmem in /proc/meminfo")


def assert_clean(jobid, timeout=20):
    """Nothing of the job left: no mount, no directory."""
    end = time.time() + timeout
    while time.time() < end:
        if not job_mounts(jobid) and not job_dirs(jobid):
            return
        time.sleep(0.2)
    raise AssertionError(f"job {jobid} left {job_mounts(jobid)} "
                         f"{job_dirs(jobid)}")


@pytest.fixture
def conf_extra():
    """Add lines to the cluster's jobshm.conf for one test."""
    conf = D / "jobshm.conf"
    saved = conf.read_text()

    def add(line):
        conf.write_text(saved + line + "\n")
    yield add
    conf.write_text(saved)


def node_states():
    p = run(["sinfo", "-h", "-N", "-o", "%N %T"], check=True)
    return dict(l.split() for l in p.stdout.splitlines())


def wait_idle(timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        st = node_states()
        if all(s == "idle" for s in st.values()):
            return st
        time.sleep(0.3)
    raise AssertionError(f"nodes not idle: {node_states()}")


@pytest.fixture(autouse=True)
def node_never_drained():
    """Every test must leave every node idle: never drained, never down."""
    yield
    st = wait_idle()
    assert all(s == "idle" for s in st.values()), st
