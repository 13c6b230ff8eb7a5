# SPDX-License-Identifier: GPL-2.0-or-later
"""The runtimes HPC users already run, inside jobshm jobs: their shared
memory lands in the job's shm, not the node's, and nothing is left on the
node after the job, even when a worker is killed."""
import os
import re

import pytest

from conftest import BASE, OUT, assert_clean, run, sbatch, wait_done, wait_file

PY = "/usr/bin/python3"


def host_shm():
    return set(os.listdir("/dev/shm"))


def job_dir_entries(jobid):
    return {p.name for d in BASE.glob(f"*/{jobid}") for p in d.iterdir()}


def test_multiprocessing_shared_memory_lives_in_the_job_shm():
    before = host_shm()
    jobid, out = sbatch(["-w", "n1", "--mem=512M", "--shm=64M"], f"""
{PY} - <<'EOT' &
import os, signal
from multiprocessing import shared_memory
m = shared_memory.SharedMemory(name=f"mp-{{os.environ['SLURM_JOB_ID']}}",
                               create=True, size=16 << 20)
m.buf[:4] = b"data"
print("READY", m.name, flush=True)
signal.pause()            # killed with SIGKILL: never unlinks
EOT
worker=$!
sleep 60
""")
    wait_file(out, "READY")
    assert f"mp-{jobid}" in job_dir_entries(jobid)
    assert f"mp-{jobid}" not in host_shm()
    os.system("pkill -KILL -f 'shared_memory' -u jobshm-u1")
    os.system(f"scancel {jobid}")
    wait_done(jobid)
    assert_clean(jobid)
    assert host_shm() <= before | {e for e in host_shm()
                                   if not e.startswith("mp-")}
    assert not any(e == f"mp-{jobid}" for e in host_shm())


@pytest.mark.skipif(os.system(f"{PY} -c 'import joblib' 2>/dev/null") != 0,
                    reason="python3-joblib is not installed")
def test_joblib_memmaps_in_the_job_shm_and_leaves_nothing():
    before = {e for e in host_shm() if e.startswith("joblib")}
    jobid, out = sbatch(["-w", "n1", "--mem=2600M", "--shm=2100M", "-c2"],
                        f"""
{PY} - <<'EOT'
import os, numpy as np
from joblib import Parallel, delayed
def where(a):
    return getattr(a, "filename", None), float(a.sum())
def die(a):
    os.kill(os.getpid(), 9)
x = np.ones(8 << 20)           # 64 MiB: memmapped to the workers
for name, total in Parallel(n_jobs=2, max_nbytes="1M")(
        delayed(where)(x) for _ in range(2)):
    print("MEMMAP", name, total, flush=True)
try:
    Parallel(n_jobs=2, max_nbytes="1M")(delayed(die)(x) for _ in range(2))
except Exception as e:
    print("WORKER DIED", type(e).__name__, flush=True)
EOT
""")
    assert wait_done(jobid, timeout=300) == "COMPLETED", out.read_text()
    text = out.read_text()
    maps = re.findall(r"MEMMAP (\S+) (\S+)", text)
    assert len(maps) == 2 and all(t == str(float(8 << 20)) for _, t in maps)
    assert all(m.startswith("/dev/shm/joblib_memmapping_folder_")
               for m, _ in maps), text
    assert "WORKER DIED" in text, text
    assert_clean(jobid)
    assert {e for e in host_shm() if e.startswith("joblib")} <= before


def no_mpi():
    """Why MPI cannot run here, or None: mpi4py and Slurm's mpi/pmix."""
    if os.system(f"{PY} -c 'import mpi4py' 2>/dev/null") != 0:
        return "python3-mpi4py is not installed"
    p = run(["srun", "--mpi=list"])
    if "pmix" not in p.stdout + p.stderr:
        return "this Slurm has no mpi/pmix plugin (built without PMIx)"
    return None


MPI_PROG = """
import os, numpy as np
from mpi4py import MPI
c = MPI.COMM_WORLD
r, n = c.Get_rank(), c.Get_size()
x = np.arange(1 << 20, dtype=np.float64) * (r + 1)
if r == 0:                                  # point to point, 8 MiB
    c.Send(x, dest=1, tag=7)
elif r == 1:
    y = np.empty_like(x)
    c.Recv(y, source=0, tag=7)
    print("P2P", float(y.sum()) == float(np.arange(1 << 20).sum()), flush=True)
node = c.Split_type(MPI.COMM_TYPE_SHARED)  # an MPI-3 shared window
win = MPI.Win.Allocate_shared(8 * 1024 if node.rank == 0 else 0, 8, comm=node)
buf, _ = win.Shared_query(0)
a = np.ndarray(buffer=buf, dtype=np.float64, shape=(1024,))
win.Fence()
a[node.rank] = node.rank + 1
win.Fence()
if node.rank == 0:
    print("WIN", a[:node.size].tolist(), flush=True)
    print("SHM", " ".join(sorted(os.listdir("/dev/shm"))), flush=True)
c.Barrier()
if os.environ.get("HOLD"):
    print("HELD", r, flush=True)
    import time; time.sleep(120)
"""


@pytest.mark.skipif(no_mpi() is not None, reason=str(no_mpi()))
def test_mpi_shared_memory_transport_and_window_in_the_job_shm():
    prog = OUT / "mpi_prog.py"        # readable by the job's user
    prog.write_text(MPI_PROG)
    prog.chmod(0o644)
    before = host_shm()
    jobid, out = sbatch(["-w", "n1", "-n2", "--mem=1G", "--shm=512M"], f"""
export OMPI_MCA_btl=self,vader OMPI_MCA_pml=ob1
srun --mpi=pmix -n 2 {PY} {prog}
echo SRUN rc=$?
HOLD=1 srun --mpi=pmix -n 2 {PY} {prog} &
sleep 120
""")
    wait_file(out, "HELD", timeout=120)
    text = out.read_text()
    assert "P2P True" in text and "WIN [1.0, 2.0]" in text, text
    assert "SRUN rc=0" in text, text
    shm = text.split("SHM ", 1)[1].splitlines()[0].split()
    assert any("vader" in e or "sm_segment" in e for e in shm), shm
    live = job_dir_entries(jobid)
    assert any("vader" in e for e in live), live        # in the job's shm
    assert not any(e in before or e in host_shm() for e in live)
    os.system("pkill -KILL -u jobshm-u1 -f mpi_prog.py")
    os.system(f"scancel {jobid}")
    wait_done(jobid)
    assert_clean(jobid)
    assert not {e for e in host_shm() - before if "vader" in e}


MPI_2NODES = """
import numpy as np, socket, os
from mpi4py import MPI
c = MPI.COMM_WORLD
r = c.Get_rank()
x = np.full(1 << 16, float(r))
y = np.empty_like(x)
peer = (r + 2) % 4                      # the same local rank on the other node
c.Sendrecv(x, dest=peer, recvbuf=y, source=peer)
node = c.Split_type(MPI.COMM_TYPE_SHARED)
print("RANK", r, os.environ["SLURMD_NODENAME"], "GOT", int(y[0]),
      "LOCAL", node.size, flush=True)
"""


@pytest.mark.skipif(no_mpi() is not None, reason=str(no_mpi()))
def test_mpi_two_nodes_two_ranks_each():
    prog = OUT / "mpi_2nodes.py"
    prog.write_text(MPI_2NODES)
    prog.chmod(0o644)
    jobid, out = sbatch(["-N2", "--ntasks-per-node=2", "--mem=1G",
                         "--shm=256M"], f"""
export OMPI_MCA_btl=self,vader,tcp OMPI_MCA_pml=ob1
srun --mpi=pmix {PY} {prog}
echo SRUN rc=$?
""")
    assert wait_done(jobid, timeout=180) == "COMPLETED", out.read_text()
    text = out.read_text()
    ranks = re.findall(r"RANK (\d) (\S+) GOT (\d) LOCAL (\d)", text)
    assert sorted(int(r) for r, *_ in ranks) == [0, 1, 2, 3], text
    assert all(int(got) == (int(r) + 2) % 4 and local == "2"
               for r, _, got, local in ranks), ranks
    assert len({n for _, n, _, _ in ranks}) == 2, ranks
    assert "SRUN rc=0" in text
    assert_clean(jobid)
