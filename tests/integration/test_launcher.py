# SPDX-License-Identifier: GPL-2.0-or-later
"""enqueue_jobshm end to end: the k-means example through the launcher
(--runtime=exec) on one node and on two, each node with its own shm."""
import json
import re

import pytest

from conftest import OUT, ROOT, USER1, assert_clean, run, wait_done

BIN = str(ROOT / "launcher" / "enqueue_jobshm")
MiB = 1 << 20


@pytest.mark.parametrize("nodes", [1, 2])
def test_kmeans_through_launcher(nodes):
    out = OUT / f"launch{nodes}-%j.out"
    app = (f"echo NODE $SLURMD_NODENAME $JOBSHM_ROLE $JOBSHM_SIZE "
           f"$(stat -f -c '%b %S' /dev/shm); "
           f"/usr/bin/python3 {ROOT}/examples/kmeans/kmeans.py --mode rro "
           f"--points 20000 --dims 16 --fragments 4 --iterations 2 "
           f"--workdir /tmp")
    p = run([BIN, "--runtime=exec", f"--num_nodes={nodes}",
             "--cpus_per_node=2", "--shm=64M", "--exec_time=5",
             f"--extra_submit_flag=--output={out}",
             "--extra_submit_flag=--mem=512M", "bash", "-c", app], user=USER1)
    assert p.returncode == 0, p.stderr
    m = re.match(r"Submitted batch job (\d+)", p.stdout)
    assert m, p.stdout
    jobid = int(m.group(1))
    assert wait_done(jobid, timeout=180) == "COMPLETED"
    text = (OUT / f"launch{nodes}-{jobid}.out").read_text()
    nodes_seen = re.findall(r"NODE (\S+) (\S+) (\d+) (\d+) (\d+)", text)
    assert len(nodes_seen) == nodes, text
    assert {n[1] for n in nodes_seen} == ({"master", "worker"} if nodes == 2
                                          else {"master"})
    for _, _, size, blocks, bsize in nodes_seen:
        assert int(size) == 64 * MiB == int(blocks) * int(bsize)
    results = [json.loads(l) for l in text.splitlines() if l.startswith("{")]
    assert len(results) == nodes
    assert len({r["checksum"] for r in results}) == 1
    assert_clean(jobid)


def test_stage_numpy_on_two_nodes_and_import_it_from_the_job_shm():
    """--stage: each node gets its own copy of the environment in its job
    shm, and the application imports numpy from there."""
    import shutil
    env = OUT / "stage-env"
    shutil.rmtree(env, ignore_errors=True)
    shutil.copytree("/usr/lib/python3/dist-packages/numpy",
                    env / "site-packages" / "numpy", symlinks=True)
    shutil.copystat(OUT, env)
    out = OUT / "stage-%j.out"
    app = ("/usr/bin/python3 -c 'import os, numpy; print(\"NUMPY\", "
           "os.environ[\"SLURMD_NODENAME\"], numpy.__file__)'")
    p = run([BIN, "--runtime=exec", "--num_nodes=2", "--cpus_per_node=1",
             "--shm=256M", "--exec_time=5", f"--stage={env}:pyenv",
             f"--extra_submit_flag=--output={out}",
             "--extra_submit_flag=--mem=1G", "bash", "-c", app], user=USER1)
    assert p.returncode == 0, p.stderr
    jobid = int(re.match(r"Submitted batch job (\d+)", p.stdout).group(1))
    assert wait_done(jobid, timeout=180) == "COMPLETED"
    text = (OUT / f"stage-{jobid}.out").read_text()
    seen = re.findall(r"NUMPY (\S+) (\S+)", text)
    assert len({n for n, _ in seen}) == 2, text
    assert all(f == "/dev/shm/stage/pyenv/site-packages/numpy/__init__.py"
               for _, f in seen), text
    assert_clean(jobid)
    shutil.rmtree(env)
