# SPDX-License-Identifier: GPL-2.0-or-later
"""Node-wide locks and barriers between separate srun tasks of a job."""
from conftest import ROOT, assert_clean, sbatch, wait_done

PY = f"PYTHONPATH={ROOT}/python /usr/bin/python3"


def run_tasks(ntasks, code, timeout=240):
    """Create a counter, run `code` in ntasks srun tasks, print it."""
    jobid, out = sbatch(["-N1", "-n2", "--mem=1G", "--shm=64M"], f"""
{PY} -c 'import jobshm, numpy; jobshm.create("counter", (1,), numpy.int64)'
T=$(mktemp -d)
cat > $T/task.py <<'EOT'
import os, signal, sys, time
import numpy as np
import jobshm
rank = int(os.environ["SLURM_PROCID"])
{code}
EOT
srun --overcommit -n {ntasks} env {PY} $T/task.py
echo SRUN rc=$?
{PY} -c 'import jobshm; print("COUNTER", int(jobshm.attach("counter")[0]))'
rm -rf $T
""")
    assert wait_done(jobid, timeout=timeout) == "COMPLETED", out.read_text()
    assert_clean(jobid)
    return out.read_text()


def test_lock_counter_is_exact_across_srun_tasks():
    text = run_tasks(8, """
c = jobshm.attach("counter")
for _ in range(10000):
    with jobshm.Lock("counter"):
        c[0] += 1
""")
    assert "COUNTER 80000" in text, text
    assert "SRUN rc=0" in text, text


def test_a_holder_killed_mid_section_lets_the_others_go_on():
    text = run_tasks(4, """
c = jobshm.attach("counter")
if rank == 0:
    held = jobshm.Lock("counter").acquire()
    os.kill(os.getpid(), signal.SIGKILL)      # dies holding it
time.sleep(0.5)
for _ in range(1000):
    with jobshm.Lock("counter") as lock:
        if lock.recovered:
            print("RECOVERED by", rank, flush=True)
        c[0] += 1
""")
    assert "COUNTER 3000" in text, text
    assert text.count("RECOVERED by") == 1, text


def test_a_barrier_with_a_killed_party_fails_within_its_timeout():
    text = run_tasks(4, """
b = jobshm.Barrier("start", parties=4, timeout=3)
b.wait()                                 # all four: passes
if rank == 0:
    os.kill(os.getpid(), signal.SIGKILL)
t = time.monotonic()
try:
    b.wait()
    print("PASSED-BARRIER", rank, flush=True)
except jobshm.BarrierTimeout as e:
    print("TIMEOUT", rank, round(time.monotonic() - t, 1), e, flush=True)
""")
    lines = [l for l in text.splitlines() if l.startswith("TIMEOUT")]
    assert len(lines) == 3 and "PASSED-BARRIER" not in text, text
    assert all(2.5 <= float(l.split()[2]) <= 10 for l in lines), lines
    assert "not all 4 parties arrived" in text
