# SPDX-License-Identifier: GPL-2.0-or-later
"""Leaks named at each step's end (issue 33): when an srun step ends and
files it made are still in the job's shm, one line on the job's stderr
says how much, how many files and the largest name prefixes; nothing for
a step that left nothing, for files older steps or the batch script made
(even when a later step writes to them), and nothing is removed."""
import json
import os
import re
import time

from conftest import CLI, D, run, sbatch, wait_done, wait_file

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


def test_report_log_and_metrics_carry_the_same_figure(conf_extra):
    """What a step left is in the job's record: the node exporter's file
    shows it while the job runs, and the usage log and jobshm report
    after its end."""
    log = D / "log" / "jobshm-leftovers.log"
    log.unlink(missing_ok=True)
    mdir = D / "metrics-leftovers"
    mdir.mkdir(exist_ok=True)
    os.chmod(mdir, 0o755)
    conf_extra(f'usage_log = "{log}";\nmetrics_dir = "{mdir}";')
    jobid, out = sbatch(["-w", "n1", "--mem=256M", "--shm=64M"], r"""
srun -n1 bash -c 'dd if=/dev/zero of=/dev/shm/nccl-1 bs=1M count=4 \
    status=none'
echo STEPDONE; sleep 5
""")
    wait_file(out, "STEPDONE")
    prom = mdir / f"jobshm-job-{jobid}-n1.prom"
    metric = re.compile(r"^jobshm_job_step_leftover_bytes\{[^}]*jobid=\""
                        + str(jobid) + r"\"[^}]*\} (\d+)$", re.M)
    seen, end = None, time.time() + 10
    while time.time() < end:
        m = metric.search(prom.read_text()) if prom.exists() else None
        if m and int(m.group(1)):
            seen = int(m.group(1))
            break
        time.sleep(0.2)
    assert seen == 4 << 20, prom.read_text() if prom.exists() else "none"
    assert wait_done(jobid) == "COMPLETED", out.read_text()
    end = time.time() + 20
    while not log.exists() and time.time() < end:
        time.sleep(0.2)
    (r,) = [json.loads(l) for l in log.read_text().splitlines()
            if json.loads(l)["job"] == jobid]
    assert (r["left_step"], r["left_files"], r["left_bytes"]) == \
        (0, 1, 4 << 20), r
    p = run([CLI, "--conf", str(D / "jobshm.conf"), "report", str(jobid)],
            check=True)
    assert "  step 0 left 4M in 1 file in its shm at its end" in \
        p.stdout.splitlines(), p.stdout
