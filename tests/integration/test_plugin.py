# SPDX-License-Identifier: GPL-2.0-or-later
"""The plugin on a real cluster: size, privacy, sharing, cleanup, errors."""
import json
import os
import subprocess
import time

import pytest

from conftest import (BASE, CLI, D, OUT, USER1, USER2, assert_clean,
                      OwnShm, job_mounts, run, sbatch, wait_done,
                      wait_file, wait_running)

MiB = 1 << 20


def df_size(text):
    """Size in bytes of /dev/shm from `stat -f -c '%b %S'` output."""
    for line in text.splitlines():
        if line.startswith("SHM "):
            blocks, bsize = line.split()[1:3]
            return int(blocks) * int(bsize)
    raise AssertionError(f"no SHM line in {text!r}")


STAT = 'echo SHM $(stat -f -c "%b %S" /dev/shm)'


@pytest.mark.parametrize("cmd", ["sbatch", "srun", "salloc"])
def test_help_lists_shm(cmd):
    p = run([cmd, "--help"])
    assert "--shm=SIZE" in p.stdout, p.stdout[-500:]


def test_sized_private_shm_with_env():
    jobid, out = sbatch(["--mem=1G", "--shm=256M"], f"""
{STAT}
echo FILES $(ls -A /dev/shm | wc -l)
echo TYPE $(stat -f -c %T /dev/shm)
env | grep ^JOBSHM_ | sort
""")
    assert wait_done(jobid) == "COMPLETED"
    text = out.read_text()
    assert df_size(text) == 256 * MiB
    assert "FILES 0" in text
    assert "TYPE tmpfs" in text
    assert "JOBSHM_DIR=/dev/shm" in text
    assert f"JOBSHM_SIZE={256 * MiB}" in text
    assert f"JOBSHM_PREFIX=jobshm.{jobid}." in text
    assert_clean(jobid)


def test_percent_of_job_memory():
    jobid, out = sbatch(["--mem=1000M", "--shm=10%"], STAT)
    assert wait_done(jobid) == "COMPLETED"
    # 10% of 1000 MiB, rounded up to whole pages by tmpfs
    assert abs(df_size(out.read_text()) - 100 * MiB) < 4096


def test_batch_and_srun_steps_share_contents():
    jobid, out = sbatch(["--mem=512M", "--shm=64M"], """
echo from-batch > /dev/shm/a
srun bash -c 'cat /dev/shm/a; echo from-step > /dev/shm/b'
srun --shm=64M cat /dev/shm/b
python3 -c "
from multiprocessing import shared_memory as s, resource_tracker as r
m = s.SharedMemory(name='seg', create=True, size=10); m.buf[:2] = b'ok'
r.unregister(m._name, 'shared_memory')
import os; print('POSIX', sorted(os.listdir('/dev/shm')))
m.close()
"
srun python3 -c "
from multiprocessing import shared_memory as s, resource_tracker as r
m = s.SharedMemory(name='seg'); r.unregister(m._name, 'shared_memory')
print('SEG', bytes(m.buf[:2]).decode())"
""")
    assert wait_done(jobid) == "COMPLETED", out.read_text()
    text = out.read_text()
    assert "from-batch" in text and "from-step" in text
    assert "'seg'" in text and "SEG ok" in text
    assert_clean(jobid)


def test_two_nodes_each_get_their_own():
    jobid, out = sbatch(["-N2", "--mem=512M", "--shm=32M"], """
echo batch > /dev/shm/only-on-batch-node
srun -N2 -l bash -c 'echo NODE $SLURMD_NODENAME $(ls /dev/shm | tr "\\n" ,)'
""")
    assert wait_done(jobid) == "COMPLETED", out.read_text()
    lines = [l for l in out.read_text().splitlines() if "NODE" in l]
    assert len(lines) == 2, lines
    with_file = [l for l in lines if "only-on-batch-node" in l]
    assert len(with_file) == 1, lines
    assert_clean(jobid)


@pytest.mark.parametrize("second_user", [USER1, USER2])
def test_concurrent_jobs_are_isolated(second_user):
    script = """
echo $SLURM_JOB_ID > /dev/shm/mine
sleep 3
echo SEEN $(ls /dev/shm | tr "\\n" ,) $(cat /dev/shm/mine)
"""
    a, out_a = sbatch(["-w", "n1", "--mem=256M", "--shm=16M"], script)
    b, out_b = sbatch(["-w", "n1", "--mem=256M", "--shm=16M"], script,
                      user=second_user)
    wait_running(a)
    wait_running(b)
    # a login on the node sees the node's /dev/shm, not the jobs'
    host = run(["ls", "/dev/shm"], user=USER2).stdout.split()
    assert "mine" not in host
    # nor can another user look through the base path
    p = run(["ls", str(BASE / "n1")], user=USER2)
    assert p.returncode != 0
    p = run(["cat", str(BASE / "n1" / str(a) / "mine")], user=USER2)
    assert p.returncode != 0
    assert wait_done(a) == "COMPLETED" and wait_done(b) == "COMPLETED"
    assert f"SEEN mine, {a}" in out_a.read_text()
    assert f"SEEN mine, {b}" in out_b.read_text()
    assert_clean(a)
    assert_clean(b)


def test_salloc_steps_share():
    p = run(["salloc", "--mem=256M", "--shm=32M", "bash", "-c",
             "srun bash -c 'echo x > /dev/shm/s'; srun cat /dev/shm/s; "
             f"srun bash -c '{STAT}'; echo JOB $SLURM_JOB_ID"],
            user=USER1, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "x" in p.stdout.split()
    assert f"SHM {32 * MiB // 4096} 4096" in p.stdout, p.stdout
    jobid = int(p.stdout.split("JOB ")[1].split()[0])
    wait_done(jobid)
    assert_clean(jobid)


def test_direct_srun():
    p = run(["srun", "--mem=256M", "--shm=48M", "bash", "-c", STAT],
            user=USER1)
    assert p.returncode == 0, p.stderr
    assert "SHM" in p.stdout
    blocks = p.stdout.split()
    assert int(blocks[1]) * int(blocks[2]) == 48 * MiB


def test_enospc_at_the_limit():
    jobid, out = sbatch(["--mem=512M", "--shm=32M"], """
dd if=/dev/zero of=/dev/shm/fill bs=1M count=64 2>&1
echo DD $?
python3 -c "
import os
try:
    with open('/dev/shm/more', 'wb') as f: f.write(b'x' * 4096); f.flush(); os.fsync(f.fileno())
    print('WRITE ok')
except OSError as e: print('WRITE', e.errno == 28)
"
""")
    wait_done(jobid)
    text = out.read_text()
    assert "No space left on device" in text
    assert "WRITE True" in text
    assert_clean(jobid)


def test_grow_by_later_step_never_shrinks():
    jobid, out = sbatch(["--mem=1G", "--shm=64M"], f"""
dd if=/dev/zero of=/dev/shm/f bs=1M count=40 status=none
srun --shm=128M bash -c '{STAT}'
{STAT}
srun --shm=16M bash -c '{STAT}; ls /dev/shm'
""")
    assert wait_done(jobid) == "COMPLETED", out.read_text()
    sizes = [int(l.split()[1]) * int(l.split()[2])
             for l in out.read_text().splitlines() if l.startswith("SHM")]
    assert sizes == [128 * MiB] * 3, sizes
    assert "f" in out.read_text().split()


def test_opt_out_gives_the_node_shm():
    host = os.statvfs("/dev/shm")
    p = run(["srun", "--shm=none", "bash", "-c", STAT], user=USER1)
    assert p.returncode == 0, p.stderr
    b = p.stdout.split()
    assert int(b[1]) * int(b[2]) == host.f_blocks * host.f_frsize


def _shm_job_cleanup(how):
    tl = ["-t", "1"] if how == "timeout" else []
    jobid, out = sbatch(["--mem=1G", "--shm=300M"] + tl, """
dd if=/dev/urandom of=/dev/shm/data bs=1M count=200 status=none
echo WRITTEN
while true; do dd if=/dev/zero of=/dev/shm/loop bs=1M count=50 status=none; done
""")
    wait_file(out, "WRITTEN")
    assert job_mounts(jobid), "job shm not mounted while running"
    own = OwnShm(jobid)
    assert own.used_mb() >= 200, own.used_mb()
    if how == "scancel":
        run(["scancel", str(jobid)], user=USER1, check=True)
        assert wait_done(jobid) == "CANCELLED"
    else:
        assert wait_done(jobid, timeout=200) == "TIMEOUT"
    assert_clean(jobid)
    own.freed()


def test_cleanup_after_scancel_mid_write():
    _shm_job_cleanup("scancel")


def test_cleanup_after_time_limit():
    _shm_job_cleanup("timeout")


def test_cleanup_after_normal_end_returns_memory():
    jobid, out = sbatch(["--mem=1G", "--shm=300M"], """
dd if=/dev/urandom of=/dev/shm/data bs=1M count=200 status=none
echo WRITTEN; sleep 2
""")
    wait_file(out, "WRITTEN")
    own = OwnShm(jobid)
    assert own.used_mb() >= 200, own.used_mb()
    assert wait_done(jobid) == "COMPLETED"
    assert_clean(jobid)
    own.freed()


def test_cli_status_shows_running_job():
    jobid, out = sbatch(["--mem=512M", "--shm=64M"], """
dd if=/dev/zero of=/dev/shm/f bs=1M count=10 status=none
echo READY; sleep 30
""")
    wait_file(out, "READY")
    p = run([CLI, "--conf", str(D / "jobshm.conf"), "status", "--json"],
            check=True)
    rows = [r for r in json.loads(p.stdout) if r["job"] == jobid]
    assert len(rows) == 1, p.stdout
    r = rows[0]
    assert r["user"] == USER1 and r["size"] == 64 * MiB and r["mounted"]
    assert 10 * MiB <= r["used"] < 12 * MiB
    assert r["path"] == str(BASE / r["node"] / str(jobid))
    p = run([CLI, "--conf", str(D / "jobshm.conf"), "status"], check=True)
    assert str(jobid) in p.stdout and USER1 in p.stdout and "64M" in p.stdout
    run(["scancel", str(jobid)], check=True)
    wait_done(jobid)
    assert_clean(jobid)
