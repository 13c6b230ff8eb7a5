# SPDX-License-Identifier: GPL-2.0-or-later
"""Leftovers of jobs whose epilog never ran: swept by hand and at slurmd start."""
import os
import re
import signal
import subprocess
import time

from conftest import (BASE, CLI, D, assert_clean, job_mounts, run, sbatch,
                      wait_done, wait_file, wait_idle)

CONF = str(D / "jobshm.conf")


def plant_leftover(node, jobid):
    """What a job whose epilog never ran leaves: a mounted tmpfs with data."""
    path = BASE / node / str(jobid)
    path.mkdir(mode=0o700, parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700",
                    "jobshm", str(path)], check=True)
    (path / "data").write_bytes(b"x" * 4096)
    os.symlink("/etc/passwd", path / "link-out")
    return path


def test_sweep_by_hand_keeps_live_jobs():
    done, _ = sbatch(["--mem=256M", "--shm=16M"], "true")
    wait_done(done)
    assert_clean(done)
    live, out = sbatch(["-w", "n1", "--mem=256M", "--shm=16M"],
                       "echo keep > /dev/shm/k; echo READY; sleep 60")
    wait_file(out, "READY")
    gone = plant_leftover("n1", done)
    never = plant_leftover("n2", 66000000)    # a job id slurmctld never had

    p = run([CLI, "--conf", CONF, "sweep", "--dry-run"])
    assert f"would remove {gone}" in p.stdout, p.stdout + p.stderr
    assert f"would remove {never}" in p.stdout
    assert str(live) not in p.stdout
    assert job_mounts(done), "dry run removed something"

    p = run([CLI, "--conf", CONF, "sweep"])
    assert p.returncode == 0, p.stderr
    assert f"removed {gone}" in p.stdout
    assert_clean(done)
    assert_clean(66000000)
    assert os.path.exists("/etc/passwd")
    assert job_mounts(live), "sweep removed a live job's shm"
    run(["scancel", str(live)], check=True)
    wait_done(live)
    assert_clean(live)
    p = run([CLI, "--conf", CONF, "sweep"])
    assert "nothing to sweep" in p.stdout


def slurmd_pid(node):
    return int((D / f"slurmd.{node}.pid").read_text())


def test_sweep_when_slurmd_starts_after_dying_at_job_end():
    jobid, out = sbatch(["-w", "n2", "--mem=256M", "--shm=32M"], """
dd if=/dev/zero of=/dev/shm/data bs=1M count=16 status=none
echo READY; sleep 3
""")
    wait_file(out, "READY")
    os.kill(slurmd_pid("n2"), signal.SIGKILL)
    # the job ends while slurmd is dead: no epilog can run
    time.sleep(5)
    run(["scontrol", "update", "nodename=n2", "state=down",
         "reason=jobshm-test"], check=True)
    wait_done(jobid)
    assert job_mounts(jobid), "expected a leftover: the epilog cannot have run"
    env = dict(os.environ, SLURM_CONF=str(D / "slurm.conf"))
    subprocess.run(["slurmd", "-N", "n2", "-f", str(D / "slurm.conf")],
                   check=True, env=env)
    assert_clean(jobid, timeout=30)
    wait_idle()


def test_slurmd_start_sweeps_leftovers():
    done, _ = sbatch(["-w", "n2", "--mem=256M", "--shm=16M"], "true")
    wait_done(done)
    assert_clean(done)
    left = plant_leftover("n2", done)
    os.kill(slurmd_pid("n2"), signal.SIGTERM)
    time.sleep(1)
    assert job_mounts(done)
    env = dict(os.environ, SLURM_CONF=str(D / "slurm.conf"))
    subprocess.run(["slurmd", "-N", "n2", "-f", str(D / "slurm.conf")],
                   check=True, env=env)
    assert_clean(done, timeout=30)
    assert not left.exists()
    assert os.path.exists("/etc/passwd")
    wait_idle()


def job_info_rpcs():
    """slurmctld's count of job-info requests (all kinds), from sdiag."""
    out = run(["sdiag"], check=True).stdout
    return sum(int(m) for m in re.findall(
        r"^\s*REQUEST_JOB_INFO\w*\s*\(\s*\d+\)\s*count:(\d+)", out, re.M))


def test_sweep_asks_slurmctld_at_most_once():
    """50 leftovers and a live job: at most one request to slurmctld
    (the live job is known by its slurmstepd on the node), all 50 go."""
    live, out = sbatch(["-w", "n1", "--mem=256M", "--shm=16M"],
                       "echo READY; sleep 60")
    wait_file(out, "READY")
    left = [plant_leftover("n1" if i % 2 else "n2", 67000000 + i)
            for i in range(50)]
    before = job_info_rpcs()
    p = run([CLI, "--conf", CONF, "sweep"])
    after = job_info_rpcs()
    assert p.returncode == 0, p.stdout + p.stderr
    assert after - before <= 1, f"{after - before} job-info RPCs for one sweep"
    for path in left:
        assert not path.exists(), path
    assert job_mounts(live), "sweep removed a live job's shm"
    run(["scancel", str(live)], check=True)
    wait_done(live)
    assert_clean(live)


def test_sweep_without_slurmctld_keeps_live_jobs():
    """slurmctld unreachable: the live job is still known live (its
    slurmstepd answers), a leftover is left alone, and sweep says why."""
    live, out = sbatch(["-w", "n1", "--mem=256M", "--shm=16M"],
                       "echo READY; sleep 60")
    wait_file(out, "READY")
    gone = plant_leftover("n2", 68000000)
    conf = D / "slurm-unreachable.conf"
    text = (D / "slurm.conf").read_text()
    conf.write_text(re.sub(r"^SlurmctldPort=\d+", "SlurmctldPort=9",
                           text, flags=re.M))
    try:
        p = run([CLI, "--conf", CONF, "sweep"],
                env=dict(os.environ, SLURM_CONF=str(conf)))
    finally:
        conf.unlink()
    assert p.returncode == 1, p.stdout + p.stderr
    assert "68000000 left alone" in p.stderr, p.stderr
    assert gone.exists() and job_mounts(live)
    assert str(live) not in p.stdout
    p = run([CLI, "--conf", CONF, "sweep"])
    assert not gone.exists(), p.stdout + p.stderr
    run(["scancel", str(live)], check=True)
    wait_done(live)
    assert_clean(live)
