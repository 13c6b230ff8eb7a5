# SPDX-License-Identifier: GPL-2.0-or-later
"""A job's end that needs nobody (issue 30), on the real cluster: a
same-user process outside the job keeps a file of the job's shm by a
descriptor parked in a unix socket (SCM_RIGHTS), where no search of the
node's processes can see it.  The job ends with the node idle, not
drained; the memory is back; the outsider holds an empty file that
cannot grow; status shows the job held; sweep removes it once let go."""
import json
import os
import signal
import subprocess
import time

from conftest import (CLI, D, OUT, USER1, assert_clean, job_mounts,
                      node_states, run, sbatch, wait_done, wait_file)

MiB = 1 << 20
OUTSIDER = r"""
import array, os, socket, sys
path = sys.argv[1]
a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
fd = os.open(path, os.O_RDWR)
a.sendmsg([b"f"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                    array.array("i", [fd]))])
os.close(fd)                         # only the socket keeps it now
print("PARKED", flush=True)
sys.stdin.readline()                 # the job has ended
msg, anc, _, _ = b.recvmsg(1, socket.CMSG_SPACE(4))
fd = array.array("i", anc[0][2][:4])[0]
st = os.fstat(fd)
wrote = 0
try:
    for i in range(4):
        wrote += os.pwrite(fd, b"x" * (1 << 20), i << 20)
except OSError as e:
    print("WRITE-REFUSED", e.errno, flush=True)
print("SIZE", st.st_size, "BLOCKS", st.st_blocks, "WROTE", wrote, flush=True)
sys.stdin.readline()
"""


def status_json():
    p = run([CLI, "--conf", str(D / "jobshm.conf"), "status", "--json"],
            check=True)
    return json.loads(p.stdout)


def test_scm_rights_holder_keeps_nothing_and_node_stays_idle():
    script = OUT / "outsider.py"
    script.write_text(OUTSIDER)
    jobid, out = sbatch(["-w", "n1", "--mem=256M", "--shm=64M"], """
dd if=/dev/zero of=/dev/shm/data bs=1M count=32 status=none
echo READY $$
sleep 300
""")
    pid = int(wait_file(out, "READY").split("READY")[1].split()[0])
    outsider = subprocess.Popen(
        ["runuser", "-u", USER1, "--", "/usr/bin/python3", str(script),
         f"/proc/{pid}/root/dev/shm/data"], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, text=True, cwd=str(OUT),
        start_new_session=True)
    try:
        assert outsider.stdout.readline().strip() == "PARKED"
        run(["scancel", str(jobid)], check=True)
        wait_done(jobid)
        time.sleep(1)
        assert node_states()["n1"] in ("idle", "mixed"), node_states()
        outsider.stdin.write("\n")
        outsider.stdin.flush()
        lines = []
        while not lines or not lines[-1].startswith("SIZE"):
            lines.append(outsider.stdout.readline())
            assert lines[-1], lines      # it printed SIZE, or died
        text = "".join(lines)
        got = [l for l in lines if l.startswith("SIZE")][0].split()
        assert int(got[1]) == 0 and int(got[3]) == 0, text   # data freed
        assert int(got[5]) <= MiB, text                     # cannot grow
        held = [e for e in status_json() if e["job"] == jobid]
        assert held and held[0]["held"], status_json()
        assert held[0]["held_bytes"] <= MiB, held
    finally:   # runuser's child too: the whole session
        os.killpg(outsider.pid, signal.SIGKILL)
        outsider.wait()
    p = run([CLI, "--conf", str(D / "jobshm.conf"), "sweep"])
    assert p.returncode == 0, p.stderr
    assert_clean(jobid)
    assert not [e for e in status_json() if e["job"] == jobid]
    assert not job_mounts(jobid)
