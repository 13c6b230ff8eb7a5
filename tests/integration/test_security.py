# SPDX-License-Identifier: GPL-2.0-or-later
"""The security review's attacks that need real jobs (the others are in
tests/unit/test_attacks.c), and the debug log an admin reads to check."""
from conftest import D, wait_done, sbatch

MiB = 1 << 20
STAT = 'echo SHM $(stat -f -c "%b %S" /dev/shm)'


def shm_sizes(text):
    return [int(l.split()[1]) * int(l.split()[2])
            for l in text.splitlines() if l.startswith("SHM")]


def test_later_step_nvram_cannot_grow_the_shm():
    """Finding 2: on a node without NVRAM, a later step's
    --nvram-options=1LM:100 (GB) fails and the job's shm stays 512M for
    that and every later step (it became 100 GiB)."""
    jobid, out = sbatch(["-w", "n1", "--mem=1024M", "--shm=512M"], f"""
srun --nvram-options=1LM:100 bash -c '{STAT}'; echo NVRAM-STEP rc=$?
srun --nvram-options=2LM:100 bash -c '{STAT}'; echo 2LM-STEP rc=$?
{STAT}
srun bash -c '{STAT}'
""")
    assert wait_done(jobid) == "COMPLETED", out.read_text()
    text = out.read_text()
    assert "NVRAM-STEP rc=0" not in text and "2LM-STEP rc=0" not in text, text
    assert shm_sizes(text) == [512 * MiB] * 2, text
    assert "1LM asked, but this node is in mode 'no NVRAM'" in text, text


def test_node_directory_carries_the_slurm_node_name():
    """Finding 5: sweep and status go by the marker jobshm wrote, which
    names the Slurm node (n2), not the host."""
    jobid, out = sbatch(["-w", "n2", "--mem=256M", "--shm=16M"], "true")
    assert wait_done(jobid) == "COMPLETED", out.read_text()
    mark = D / "base" / "n2" / ".jobshm-node"
    assert mark.read_text() == "n2\n"
    assert mark.stat().st_uid == 0 and mark.stat().st_mode & 0o077 == 0


def test_debug_says_what_was_decided(conf_extra):
    """debug = true: the slurmd log says what was admitted, where, with
    which mount options, and that the epilog removed it."""
    conf_extra("debug = true;")
    jobid, out = sbatch(["-w", "n1", "--mem=512M", "--shm=64M"], "true")
    assert wait_done(jobid) == "COMPLETED", out.read_text()
    log = (D / "log" / "slurmd.n1.log").read_text()
    assert f"jobshm: job {jobid}: admitted 64M (--shm=64M" in log, log[-2000:]
    assert "placement tmpfs, policy default" in log
    assert f"jobshm: epilog of job {jobid} on n1: removed" in log
