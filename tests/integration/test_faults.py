# SPDX-License-Identifier: GPL-2.0-or-later
"""Faults and hostile users: whatever happens, nothing of the job is left,
the memory comes back, and the node stays up."""
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import (BASE, D, USER1, USER2, assert_clean, job_info,
                      OwnShm, job_mounts, run, sbatch, wait_done,
                      wait_file, wait_state)

CGROUP = "proctrack/cgroup" in (D / "slurm.conf").read_text()
WRITE = """
dd if=/dev/urandom of=/dev/shm/data bs=1M count=128 status=none
echo READY $$
sleep 120
"""


def pid_in(out):
    return int(wait_file(out, "READY").split("READY")[1].split()[0])


def own_filled(jobid, mb):
    """The job's own tmpfs (not the node's Shmem), holding mb MiB."""
    own = OwnShm(jobid)
    assert own.used_mb() >= mb, own.used_mb()
    return own


def test_task_killed_with_sigkill():
    jobid, out = sbatch(["--mem=512M", "--shm=200M"], WRITE)
    pid = pid_in(out)
    own = own_filled(jobid, 128)
    os.kill(pid, signal.SIGKILL)
    assert wait_done(jobid) == "FAILED"
    assert_clean(jobid)
    own.freed()


@pytest.mark.skipif(not CGROUP, reason="needs cgroup memory limits")
def test_job_out_of_memory():
    jobid, out = sbatch(["--mem=300M", "--shm=250M"], """
dd if=/dev/zero of=/dev/shm/data bs=1M count=240 status=none
echo FILLED; sleep 2
python3 -c "b = bytearray(200 << 20); print('SURV' + 'IVED')"
""")
    wait_file(out, "FILLED")
    own = own_filled(jobid, 240)
    assert wait_done(jobid) == "OUT_OF_MEMORY"
    assert "SURVIVED" not in out.read_text()
    assert_clean(jobid)
    own.freed()


def test_slurmstepd_killed_mid_job():
    jobid, out = sbatch(["-w", "n1", "--mem=512M", "--shm=200M"], WRITE)
    shell = pid_in(out)
    own = own_filled(jobid, 128)
    # the batch script's parent is its slurmstepd (its process title is
    # cut short for long job ids, so it cannot be found by name)
    stat = Path(f"/proc/{shell}/stat").read_text()
    stepd = int(stat.rsplit(")", 1)[1].split()[1])
    assert "slurmstepd" in Path(f"/proc/{stepd}/comm").read_text()
    os.kill(stepd, signal.SIGKILL)
    time.sleep(1)
    run(["scancel", str(jobid)], check=True)
    wait_done(jobid)
    assert_clean(jobid)
    own.freed()   # whatever of the job survives (orphans without a
    # cgroup), its files were emptied


def test_requeued_job_starts_with_empty_shm():
    jobid, out = sbatch(["--requeue", "--open-mode=append", "--mem=256M",
                         "--shm=32M"], """
echo RUN ${SLURM_RESTART_COUNT:-0} FILES $(ls /dev/shm | wc -l)
echo x > /dev/shm/from-run-$SLURM_RESTART_COUNT
[ "${SLURM_RESTART_COUNT:-0}" = 0 ] && { echo READY; sleep 120; }
true
""")
    wait_file(out, "READY")
    run(["scontrol", "requeue", str(jobid)], check=True)
    wait_file(out, "RUN 1", timeout=180)
    assert wait_done(jobid, timeout=180) == "COMPLETED"
    text = out.read_text()
    assert "RUN 0 FILES 0" in text and "RUN 1 FILES 0" in text, text
    assert_clean(jobid)


def test_many_jobs_and_steps_at_once():
    """50 jobs, 3 steps each (two of them at the same time): every step
    sees exactly its own job's files, no mount is lost or doubled."""
    script = """
echo $SLURM_JOB_ID > /dev/shm/batch
srun --overlap bash -c 'echo s > /dev/shm/s1' &
srun --overlap bash -c 'echo s > /dev/shm/s2' &
wait
srun --overlap bash -c 'echo OK $(ls /dev/shm | tr "\\n" ,) $(cat /dev/shm/batch)'
echo MOUNTS $(grep -c " /dev/shm " /proc/self/mountinfo)
"""
    host = Path("/proc/self/mountinfo").read_text().count(" /dev/shm ")
    jobs = [sbatch(["--mem=64M", "--shm=8M", "-c1"], script, name="many")
            for _ in range(50)]
    for jobid, out in jobs:
        assert wait_done(jobid, timeout=300) == "COMPLETED", out.read_text()
    for jobid, out in jobs:
        text = out.read_text()
        assert f"OK batch,s1,s2, {jobid}" in text, text
        assert f"MOUNTS {host + 1}" in text, text   # one bind, not two
        assert_clean(jobid)
    assert not job_mounts()


def test_hostile_contents_do_not_hurt_cleanup():
    """Links out of the shm, fifos, deep trees and many files: cleanup
    touches none of them (it unmounts) and finishes quickly."""
    victim = D / "victim"
    victim.write_text("root's file\n")
    os.chmod(victim, 0o644)
    jobid, out = sbatch(["--mem=1G", "--shm=512M"], f"""
cd /dev/shm
ln -s {victim} link-to-root-file
ln -s / link-to-root
ln {victim} hardlink 2>/dev/null || echo HARDLINK-REFUSED
mkfifo fifo
python3 - <<'PY'
import os
d = '/dev/shm/deep'
os.makedirs(d)
os.chdir(d)
for i in range(2000):
    os.mkdir('d'); os.chdir('d')
os.chdir('/dev/shm')
os.mkdir('many')
for i in range(200000):
    open(f'many/{{i}}', 'w').close()
print('PLANTED')
PY
""")
    assert wait_done(jobid, timeout=300) == "COMPLETED", out.read_text()
    assert "PLANTED" in out.read_text()
    assert_clean(jobid, timeout=10)
    assert victim.read_text() == "root's file\n"
    assert os.path.isdir("/etc") and os.path.exists("/etc/passwd")


def test_other_user_cannot_reach_through_proc():
    jobid, out = sbatch(["-w", "n1", "--mem=256M", "--shm=16M"],
                        "echo secret > /dev/shm/s; echo READY $$; sleep 60")
    pid = pid_in(out)
    p = run(["cat", f"/proc/{pid}/root/dev/shm/s"], user=USER2)
    assert p.returncode != 0 and "secret" not in p.stdout
    p = run(["ls", f"/proc/{pid}/root/dev/shm"], user=USER2)
    assert p.returncode != 0
    # the owner can (same uid), which shows the path is the right one
    p = run(["cat", f"/proc/{pid}/root/dev/shm/s"], user=USER1)
    assert p.stdout.strip() == "secret"
    run(["scancel", str(jobid)], check=True)
    wait_done(jobid)
    assert_clean(jobid)


def test_ended_job_memory_not_pinned_by_a_later_job():
    """A job started while another's shm is mounted must not keep that
    shm (and its memory) alive after the other job ends."""
    first, out1 = sbatch(["-w", "n1", "--mem=512M", "--shm=200M"], WRITE)
    pid_in(out1)
    own = own_filled(first, 128)
    second, out2 = sbatch(["-w", "n1", "--mem=256M", "--shm=8M"],
                          "echo READY $$; sleep 120")
    pid_in(out2)
    run(["scancel", str(first)], check=True)
    wait_done(first)
    assert_clean(first)
    own.freed()                   # while the second job still runs
    assert job_info(second)["JobState"] == "RUNNING"
    run(["scancel", str(second)], check=True)
    wait_done(second)
    assert_clean(second)
