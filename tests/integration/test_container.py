# SPDX-License-Identifier: GPL-2.0-or-later
"""jobshm beside Slurm's job_container/tmpfs (PrologFlags=Contain): a --shm
job gets its sized shm, a plain job keeps the container's /dev/shm, and
the container's private /tmp holds in both.  A second test cluster (node
c1, its own port and directory) runs with the container plugin on."""
import os
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT, USER1, D

D2 = Path("/run/jobshm-cluster-container")   # /tmp is private in jobs
ENV = dict(os.environ, JOBSHM_CLUSTER_DIR=str(D2), JOBSHM_CLUSTER_NODES="1",
           JOBSHM_CLUSTER_PORT="17217", JOBSHM_CLUSTER_NODE_PREFIX="c",
           JOBSHM_CLUSTER_CONTAINER="tmpfs", SLURM_CONF=str(D2 / "slurm.conf"))
SCRIPT = """#!/bin/bash
echo SHM $(df -B1M --output=size /dev/shm | tail -1)
dev=$(stat -c %Hd:%Ld /dev/shm/)   # the filesystem on top at /dev/shm
echo SRC $(awk -v d=$dev '$3 == d && $5 == "/dev/shm" {print $(NF-1)}' \
    /proc/self/mountinfo | tail -1)
echo secret > /tmp/jobshm-ct-$SLURM_JOB_ID; echo TMP $(ls /tmp | wc -l)
echo data > /dev/shm/f-$SLURM_JOB_ID
srun bash -c 'cat /dev/shm/f-$SLURM_JOB_ID /tmp/jobshm-ct-$SLURM_JOB_ID'
"""


@pytest.fixture(scope="module")
def container():
    cluster = str(ROOT / "tests" / "cluster" / "cluster.sh")
    p = subprocess.run([cluster, "start"], env=ENV, capture_output=True,
                       text=True)
    if p.returncode != 0:
        subprocess.run([cluster, "stop"], env=ENV, capture_output=True)
        pytest.fail(f"cluster with job_container/tmpfs: {p.stderr[-2000:]}")
    yield
    subprocess.run([cluster, "stop"], env=ENV, capture_output=True)


def job(args):
    """Run SCRIPT as a batch job on c1; its fields and its output."""
    script = D2 / "out" / "ct.sh"
    script.write_text(SCRIPT)
    script.chmod(0o755)
    p = subprocess.run(["runuser", "-u", USER1, "--", "sbatch", "--wait",
                        "--parsable", "-w", "c1", "--mem=256M", "-o",
                        str(D2 / "out" / "ct-%j.out"), *args, str(script)],
                       env=ENV, capture_output=True, text=True, timeout=120,
                       cwd="/tmp")
    assert p.returncode == 0, p.stdout + p.stderr
    text = (D2 / "out" / f"ct-{p.stdout.strip()}.out").read_text()
    return dict(l.split(" ", 1) for l in text.splitlines()
                if l[:4] in ("SHM ", "SRC ", "TMP ")), text


def test_shm_job_and_plain_job_beside_job_container(container):
    shm, text = job(["--shm=96M"])
    assert shm["SHM"] == "96", text
    assert shm["SRC"] == "jobshm", text          # ours on /dev/shm
    plain, text2 = job([])
    assert plain["SRC"] != "jobshm", text2        # the container's
    # the container's private /tmp held in both: one file, the job's own
    assert shm["TMP"] == "1" and plain["TMP"] == "1", text + text2
    assert not list(Path("/tmp").glob("jobshm-ct-*"))
    # a step of each job saw the batch's files (same /dev/shm and /tmp)
    assert text.count("data\nsecret") == 1 and text2.count("data\nsecret") == 1
    # nothing of the --shm job is left on the node
    left = [l for l in Path("/proc/self/mountinfo").read_text().splitlines()
            if f" {D2}/base/" in l]
    assert not left, left
