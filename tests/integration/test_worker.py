# SPDX-License-Identifier: GPL-2.0-or-later
"""The worker runtime inside real jobs: the examples in both modes give
the same results, use the job's shm, and leave nothing behind."""
import json

from conftest import ROOT, assert_clean, sbatch, wait_done

PY = "/usr/bin/python3"


def run_example(app, args):
    script = "\n".join(
        f"{PY} {ROOT}/examples/{app} --mode {mode} {args} --workdir $TMPDIR"
        for mode in ("baseline", "rro"))
    jobid, out = sbatch(["--mem=1G", "--shm=256M", "-c2"], f"""
export TMPDIR=$(mktemp -d)
{script}
echo SEGMENTS $(ls /dev/shm | grep -c '^jobshm\\.' || true)
rm -rf $TMPDIR
""")
    assert wait_done(jobid, timeout=300) == "COMPLETED", out.read_text()
    lines = [json.loads(l) for l in out.read_text().splitlines()
             if l.startswith("{")]
    assert [r["mode"] for r in lines] == ["baseline", "rro"], lines
    assert lines[0]["checksum"] == lines[1]["checksum"]
    assert "SEGMENTS 0" in out.read_text()   # the run deleted its segments
    assert_clean(jobid)
    return lines


def test_kmeans_both_modes_agree():
    run_example("kmeans/kmeans.py",
                "--points 40000 --dims 32 --fragments 4 --iterations 3")


def test_matmul_both_modes_agree():
    run_example("matmul/matmul.py", "--blocks 3 --block-size 64")


def test_rro_segments_live_in_the_job_shm():
    jobid, out = sbatch(["--mem=512M", "--shm=64M"], f"""
cd {ROOT}/python
{PY} -c "
import jobshm, numpy as np
a = jobshm.rro('x', lambda: np.arange(1000.0))
print('INFO', jobshm.info()['dir'], repr(jobshm.info()['note']))
"
ls /dev/shm
srun {PY} -c "
import sys; sys.path.insert(0, '{ROOT}/python')
import jobshm; print('STEP', jobshm.attach('x', ro=True).sum())"
""")
    assert wait_done(jobid) == "COMPLETED", out.read_text()
    text = out.read_text()
    assert "INFO /dev/shm ''" in text
    assert f"jobshm.{jobid}.x" in text
    assert "STEP 499500.0" in text
    assert_clean(jobid)
