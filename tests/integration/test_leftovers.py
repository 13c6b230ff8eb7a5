# SPDX-License-Identifier: GPL-2.0-or-later
"""Leaks named at each step's end (issue 33): when an srun step ends and
files it made are still in the job's shm, one line on the job's stderr
says how much, how many files and the largest name prefixes; nothing for
a step that left nothing, for files older steps or the batch script made
(even when a later step writes to them), and nothing is removed."""
import re

from conftest import sbatch, wait_done

LEFT = re.compile(r"^jobshm: step (\d+) on (\S+) left (.*)$", re.M)


def test_step_end_names_what_it_left_and_only_that():
    jobid, out = sbatch(["-w", "n1", "--mem=256M", "--shm=64M"], r"""
dd if=/dev/zero of=/dev/shm/batch-old bs=1M count=2 status=none
srun -n1 bash -c 'for f in nccl-1 nccl-2; do
    dd if=/dev/zero of=/dev/shm/$f bs=1M count=4 status=none; done
    dd if=/dev/zero of=/dev/shm/torch_x bs=1M count=1 status=none'
srun -n1 bash -c 'dd if=/dev/zero of=/dev/shm/tmp bs=1M count=1 status=none
    rm /dev/shm/tmp; echo more >> /dev/shm/batch-old; echo >> /dev/shm/nccl-1'
ls /dev/shm | tr '\n' ' '; echo
""")
    assert wait_done(jobid) == "COMPLETED", out.read_text()
    text = out.read_text()
    left = LEFT.findall(text)
    assert [(s, n) for s, n, _ in left] == [("0", "n1")], text
    assert re.fullmatch(
        r"9(\.0)?M in 3 files \(nccl-\* 8(\.0)?M, torch_\* 1(\.0)?M\); "
        r"they count against --shm=64M until removed or the job ends",
        left[0][2]), left[0][2]
    # nothing was removed: the job still sees every file
    assert "batch-old nccl-1 nccl-2 torch_x" in text, text
