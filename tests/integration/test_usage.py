# SPDX-License-Identifier: GPL-2.0-or-later
"""What each job used of its shm, and why a task died of a full one.

Per job and node: the peak, the final use, the size and the times it
became full, sampled by the slurmstepd of every step; one line on the
job's stderr at its end, a JSON line in the node's usage log at the
epilog, `jobshm report JOBID`, and peak/full in `jobshm status --json`.
A task that dies of SIGBUS or exits non-zero while the shm is full is
told so on the step's stderr, with a --shm to try."""
import json
import re
import time

import pytest

from conftest import (CLI, D, OUT, USER1, run, sbatch, wait_done, wait_file,
                      wait_running)

PY = "/usr/bin/python3"
LOG = D / "log" / "jobshm-usage.log"


@pytest.fixture
def usage_log(conf_extra):
    for p in (LOG, LOG.with_name(LOG.name + ".1")):
        p.unlink(missing_ok=True)
    conf_extra(f'usage_log = "{LOG}";')
    yield LOG


def records(jobid):
    return [json.loads(l) for l in LOG.read_text().splitlines()
            if json.loads(l)["job"] == jobid] if LOG.exists() else []


def jobshm_lines(text):
    return [l for l in text.splitlines() if l.startswith("jobshm:")]


def test_batch_job_reports_peak_final_and_full(usage_log):
    # 100M written and removed (peak 100M, final 0); then filled twice
    jobid, out = sbatch(["-w", "n1", "--mem=1G", "--shm=256M"], """
dd if=/dev/zero of=/dev/shm/a bs=1M count=100 status=none; sleep 2.5
rm /dev/shm/a; sleep 2.5
for i in 1 2; do
  dd if=/dev/zero of=/dev/shm/f bs=1M status=none 2>/dev/null; sleep 2.5
  rm /dev/shm/f; sleep 2.5
done
dd if=/dev/zero of=/dev/shm/end bs=1M count=10 status=none
""", name="usage")
    assert wait_done(jobid) == "COMPLETED"
    text = out.read_text()
    assert jobshm_lines(text) == [
        "jobshm: n1: peak 256M of 256M (100%), full 2 times"], text
    end = time.time() + 20
    while not records(jobid) and time.time() < end:
        time.sleep(0.3)
    (r,) = records(jobid)
    assert (r["node"], r["kind"], r["size"], r["peak"], r["final"],
            r["full"]) == ("n1", "tmpfs", 256 << 20, 256 << 20, 10 << 20, 2)
    assert r["end"] >= r["start"] > 0
    p = run([CLI, "--conf", str(D / "jobshm.conf"), "report", str(jobid)],
            check=True)
    assert p.stdout.startswith(f"job {jobid} on n1: peak 256M of 256M "
                               "(100%), full 2 times, final 10M (user "
                               f"{USER1}, tmpfs, "), p.stdout
    p = run([CLI, "--conf", str(D / "jobshm.conf"), "report", "--json",
             str(jobid)], check=True)
    (j,) = json.loads(p.stdout)
    assert j["peak"] == 256 << 20 and j["full"] == 2 and not j["running"]


def test_every_step_adds_to_the_one_record(usage_log):
    # the batch step writes 30M, a srun step 120M more: one line, from the
    # batch step, with the step's peak in it
    jobid, out = sbatch(["-w", "n1", "--mem=1G", "--shm=256M"], """
dd if=/dev/zero of=/dev/shm/b bs=1M count=30 status=none
srun sh -c 'dd if=/dev/zero of=/dev/shm/s bs=1M count=120 status=none; \
    sleep 2.5; rm /dev/shm/s'
""", name="usage")
    assert wait_done(jobid) == "COMPLETED"
    text = out.read_text()
    assert jobshm_lines(text) == [
        "jobshm: n1: peak 150M of 256M (58%), full 0 times"], text


def test_srun_job_reports_on_each_node(usage_log):
    p = run(["srun", "-N2", "--mem=512M", "--shm=64M", "sh", "-c",
             "dd if=/dev/zero of=/dev/shm/x bs=1M count=16 status=none"],
            user=USER1)
    assert p.returncode == 0, p.stderr
    assert sorted(jobshm_lines(p.stderr)) == [
        "jobshm: n1: peak 16M of 64M (25%), full 0 times",
        "jobshm: n2: peak 16M of 64M (25%), full 0 times"], p.stderr


def test_status_json_shows_peak_of_a_running_job(usage_log):
    jobid, out = sbatch(["-w", "n1", "--mem=1G", "--shm=128M"], """
dd if=/dev/zero of=/dev/shm/a bs=1M count=48 status=none; sleep 2.5
rm /dev/shm/a; echo WRITTEN; sleep 60
""", name="usage")
    wait_file(out, "WRITTEN")
    p = run([CLI, "--conf", str(D / "jobshm.conf"), "status", "--json"],
            check=True)
    (e,) = [e for e in json.loads(p.stdout) if e["job"] == jobid]
    assert (e["used"], e["peak"], e["full"]) == (0, 48 << 20, 0), e
    p = run([CLI, "--conf", str(D / "jobshm.conf"), "report", str(jobid)],
            check=True)
    assert p.stdout.startswith(f"job {jobid} on n1: peak 48M of 128M (37%), "
                               "full 0 times, final 0B"), p.stdout
    assert p.stdout.rstrip().endswith("still running)"), p.stdout
    run(["scancel", str(jobid)])
    wait_done(jobid)


def test_usage_log_rotates_by_size(usage_log, conf_extra):
    conf_extra(f'usage_log = "{LOG}";\nusage_log_max = "1K";')
    ids = []
    for _ in range(8):       # about 200 bytes a record
        p = run(["srun", "--mem=256M", "--shm=16M", "true"], user=USER1)
        assert p.returncode == 0, p.stderr
    old = LOG.with_name(LOG.name + ".1")
    end = time.time() + 20
    while not old.exists() and time.time() < end:
        time.sleep(0.3)
    assert old.exists() and LOG.exists()
    assert LOG.stat().st_size <= 1024 and old.stat().st_size <= 1024
    assert LOG.stat().st_mode & 0o777 == 0o600
    for f in (LOG, old):
        for l in f.read_text().splitlines():
            json.loads(l)


# ---- a task that died of a full shm -----------------------------------

MMAP_WRITER = """
import mmap, os
fd = os.open("/dev/shm/big", os.O_RDWR | os.O_CREAT, 0o600)
os.ftruncate(fd, 512 << 20)
m = mmap.mmap(fd, 512 << 20)
for off in range(0, 512 << 20, 4096):    # SIGBUS past the shm's 256M
    m[off] = 1
"""

NUMPY_WRITER = """
import numpy as np
a = np.ones(4 << 20)                     # 32 MiB
with open("/dev/shm/arr", "wb") as f:
    for _ in range(16):                  # ENOSPC past the shm's 256M
        a.tofile(f)
"""


def program(name, text):
    p = OUT / name
    p.write_text(text)
    p.chmod(0o644)
    return p


def test_sigbus_in_a_full_shm_is_explained():
    prog = program("mmap_writer.py", MMAP_WRITER)
    p = run(["srun", "-w", "n1", "--mem=1G", "--shm=256M", PY, str(prog)],
            user=USER1)
    assert p.returncode != 0
    assert ("jobshm: task 0 on n1 died of SIGBUS while /dev/shm was full "
            "(256M of 256M); try --shm=512M") in jobshm_lines(p.stderr), \
        p.stderr


def test_enospc_exit_in_a_full_shm_is_explained():
    prog = program("numpy_writer.py", NUMPY_WRITER)
    p = run(["srun", "-w", "n1", "--mem=1G", "--shm=256M", PY, str(prog)],
            user=USER1)
    assert p.returncode != 0 and "OSError" in p.stderr, p.stderr
    assert ("jobshm: task 0 on n1 exited with status 1 while /dev/shm was "
            "full (256M of 256M); try --shm=512M") in jobshm_lines(p.stderr), \
        p.stderr


def test_batch_script_dying_of_a_full_shm_is_explained():
    prog = program("mmap_writer.py", MMAP_WRITER)
    jobid, out = sbatch(["-w", "n1", "--mem=1G", "--shm=256M"],
                        f"{PY} {prog}", name="usage")
    assert wait_done(jobid) == "FAILED"
    lines = jobshm_lines(out.read_text())
    assert lines[0] == ("jobshm: task 0 on n1 exited with status 135 while "
                        "/dev/shm was full (256M of 256M); try --shm=512M")
    assert lines[1] == "jobshm: n1: peak 256M of 256M (100%), full 1 time"


def test_suggestion_stays_within_the_limits():
    # 2G of a 3G max_size: 4G would be over it, so max_size; with --mem
    # too small for that, say so
    prog = program("numpy_writer_big.py",
                   NUMPY_WRITER.replace("range(16)", "range(80)"))
    p = run(["srun", "-w", "n1", "--mem=2300M", "--shm=2G", PY, str(prog)],
            user=USER1, timeout=180)
    assert ("jobshm: task 0 on n1 exited with status 1 while /dev/shm was "
            "full (2G of 2G); try --shm=3G with --mem=3G or more"
            ) in jobshm_lines(p.stderr), p.stderr


def test_failure_without_a_full_shm_says_nothing():
    p = run(["srun", "-w", "n1", "--mem=512M", "--shm=64M", "sh", "-c",
             "dd if=/dev/zero of=/dev/shm/x bs=1M count=8 status=none; "
             "exit 3"], user=USER1)
    assert p.returncode == 3
    assert jobshm_lines(p.stderr) == [
        "jobshm: n1: peak 8M of 64M (12%), full 0 times"], p.stderr


TORCH_LOADER = """
import torch
from torch.utils.data import DataLoader, Dataset

class Big(Dataset):
    def __len__(self):
        return 64
    def __getitem__(self, i):
        return torch.ones(8 << 20)        # 32 MiB; a batch of 2: 64 MiB

if __name__ == "__main__":
    kept = []                             # batches held: the shm fills
    for batch in DataLoader(Big(), batch_size=2, num_workers=2):
        kept.append(batch)
"""


def no_torch():
    if run([PY, "-c", "import torch.utils.data"]).returncode != 0:
        return "python3-torch is not installed (tests/cluster/deps.sh)"
    return None


@pytest.mark.skipif(no_torch() is not None, reason=str(no_torch()))
def test_pytorch_dataloader_workers_in_a_small_shm():
    # The workers hand batches over in shared memory; past 256M a worker
    # dies of SIGBUS and the DataLoader raises in the task.  The full shm
    # lasts only while that worker dies (its segment goes with it within
    # milliseconds), far less than the sampling interval: it is seen
    # because each batch's segment is made in the shm (shm_open,
    # ftruncate), which opens a window of 1 ms samples.  The task's exit
    # is explained, with a --shm to try.
    prog = program("torch_loader.py", TORCH_LOADER)
    p = run(["srun", "-w", "n1", "-c2", "--mem=2G", "--shm=256M", PY,
             str(prog)], user=USER1, timeout=300)
    assert p.returncode != 0
    assert "insufficient shared memory (shm)" in p.stderr, p.stderr
    lines = jobshm_lines(p.stderr)
    assert lines[-1].startswith("jobshm: n1: peak ") and \
        " of 256M (" in lines[-1] and \
        not lines[-1].endswith("full 0 times"), p.stderr
    explained = re.compile(
        r"jobshm: task 0 on n1 exited with status 1 (while /dev/shm was "
        r"full \(\S+ of 256M\)|after /dev/shm became full during the step "
        r"\(peak \S+ of 256M\)); try --shm=512M")
    assert lines[:-1] and all(explained.fullmatch(l) for l in lines[:-1]), \
        p.stderr


MPI_BIG = """
import numpy as np
from mpi4py import MPI
c = MPI.COMM_WORLD
x = np.ones(8 << 20)                      # 64 MiB
if c.Get_rank() == 0:
    c.Send(x, dest=1)
else:
    y = np.empty_like(x)
    c.Recv(y, source=0)
    print("GOT", int(y.sum()), flush=True)
"""


def no_mpi():
    from test_runtimes import no_mpi as why
    return why()


@pytest.mark.skipif(no_mpi() is not None, reason=str(no_mpi()))
@pytest.mark.parametrize("shm,ok", [("32M", True), ("4M", False)])
def test_open_mpi_shared_memory_transfer_larger_than_the_shm(shm, ok):
    # Open MPI's shared-memory transport (vader, single copy off: every
    # byte through its segments) pipelines a 64 MiB message through
    # fixed segments: 32M of shm is enough.  In 4M its segments cannot be
    # made and MPI_Init fails before anything is written: the shm was
    # never full, and jobshm says only what the job used.
    prog = program("mpi_big.py", MPI_BIG)
    env = ["OMPI_MCA_btl=self,vader", "OMPI_MCA_pml=ob1",
           "OMPI_MCA_btl_vader_single_copy_mechanism=none"]
    p = run(["env"] + env + ["srun", "-w", "n1", "-n2", "--mem=1G",
                             f"--shm={shm}", "--mpi=pmix", PY, str(prog)],
            user=USER1, timeout=180)
    assert (p.returncode == 0) == ok, p.stderr
    assert ("GOT 8388608" in p.stdout) == ok, p.stdout + p.stderr
    lines = jobshm_lines(p.stderr)
    assert lines and all(l.startswith(f"jobshm: n1: peak ") and
                         f" of {shm} (" in l for l in lines), p.stderr


def test_suggest_from_real_jobs(usage_log):
    """jobshm suggest on the log real jobs wrote: the job's name comes
    from Slurm into the record; two runs of one name that used a fraction
    of what they asked are grouped and flagged, and the one that filled
    its shm is told to ask twice what it had."""
    ids = []
    for mb in (40, 60):
        jobid, _ = sbatch(["-w", "n1", "--mem=1G", "--shm=256M", "-J",
                           "suggest-small"],
                          f"dd if=/dev/zero of=/dev/shm/a bs=1M count={mb} "
                          "status=none; sleep 2.5", name="suggest")
        ids.append(jobid)
    full, _ = sbatch(["-w", "n1", "--mem=1G", "--shm=32M", "-J",
                      "suggest-full"],
                     "dd if=/dev/zero of=/dev/shm/f bs=1M status=none "
                     "2>/dev/null; sleep 2.5; rm /dev/shm/f", name="suggest")
    for j in ids + [full]:
        wait_done(j)
    end = time.time() + 20
    while not all(records(j) for j in ids + [full]) and time.time() < end:
        time.sleep(0.3)
    recs = {j: records(j)[0] for j in ids + [full]}
    assert [recs[j]["name"] for j in ids + [full]] == \
        ["suggest-small"] * 2 + ["suggest-full"], recs
    p = run([CLI, "--conf", str(D / "jobshm.conf"), "suggest", "--json"],
            check=True)
    groups = {g["name"]: g for g in json.loads(p.stdout)}
    small, filled = groups["suggest-small"], groups["suggest-full"]
    peaks = sorted(recs[j]["peak"] for j in ids)
    assert (small["user"], small["runs"], small["asked_median"],
            small["peak_max"], small["oversized"], small["full"]) == \
        (USER1, 2, 256 << 20, peaks[-1], 2, 0), small
    assert sorted(small["jobs"]) == sorted(ids), small
    # the p95 of two runs is the larger; plus a quarter, rounded up
    assert 1.25 * peaks[-1] <= small["suggest_bytes"] < 1.5 * 1.25 * \
        peaks[-1], small
    assert (filled["full"], filled["suggest"]) == (1, "64M"), filled
    p = run([CLI, "--conf", str(D / "jobshm.conf"), "suggest", "--name",
             "suggest-full"], check=True)
    (line,) = [l for l in p.stdout.splitlines()[1:]]
    assert line.split()[:2] == [USER1, "suggest-full"], p.stdout
    assert "--shm=64M" in line and "filled up in 1 of 1" in line, p.stdout
