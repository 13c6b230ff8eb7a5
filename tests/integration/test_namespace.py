# SPDX-License-Identifier: GPL-2.0-or-later
"""One mount namespace per job per node: made by the job's first task on
the node, kept by a bind of its nsfs file under the root-only base, joined
by every later task and step, released at the job's end."""
import os
import re

import pytest

from conftest import (BASE, OUT, USER2, assert_clean, conf_extra,  # noqa: F401
                      run, sbatch, wait_done, wait_file, wait_running)


def namespaces(text):
    return re.findall(r"mnt:\[\d+\]", text)


def test_tasks_and_steps_join_one_namespace_per_node():
    jobid, out = sbatch(["-N2", "-n4", "--mem=512M", "--shm=64M"], """
echo BATCH $SLURMD_NODENAME $(readlink /proc/self/ns/mnt)
srun -n4 bash -c 'echo STEP1 $SLURMD_NODENAME $(readlink /proc/self/ns/mnt) \
    $(pwd)'
srun -n4 --shm=96M bash -c 'echo STEP2 $SLURMD_NODENAME \
    $(readlink /proc/self/ns/mnt) $(df -B1M --output=size /dev/shm | tail -1)'
touch /dev/shm/x
srun -N1 -n1 -w $SLURMD_NODENAME ls /dev/shm/x
ls -la """ + str(BASE / "n1") + """ 2>&1 | head -1
""")
    wait_done(jobid)
    text = out.read_text()
    seen = re.findall(r"^(?:BATCH|STEP\d) (\S+) (mnt:\[\d+\])", text, re.M)
    assert len(seen) == 9, text
    per_node = {}
    for node, ns in seen:
        per_node.setdefault(node, set()).add(ns)
    # one namespace on each node, for the batch script and every step
    assert sorted(per_node) == ["n1", "n2"], text
    assert all(len(v) == 1 for v in per_node.values()), text
    assert per_node["n1"] != per_node["n2"], text
    # the working directory is kept across setns
    assert text.count(f" {OUT}\n") == 4, text
    # a later step that grows the shm is seen in the namespace
    assert text.count(" 96\n") == 4, text
    assert "/dev/shm/x" in text
    # the user cannot look into the base where the namespace is kept
    assert "Permission denied" in text, text
    assert_clean(jobid)


def test_other_jobs_get_their_own_namespace():
    a, out_a = sbatch(["-w", "n1", "--mem=256M", "--shm=32M"],
                      "readlink /proc/self/ns/mnt; echo READY; sleep 30",
                      name="nsa")
    wait_file(out_a, "READY")
    b, out_b = sbatch(["-w", "n1", "--mem=256M", "--shm=32M"], """
readlink /proc/self/ns/mnt
grep -c " """ + str(BASE) + """/" /proc/self/mountinfo
nsenter --mount=""" + str(BASE / "n1" / f"{a}.ns" / "mnt") + """ true \\
    && echo ENTERED || echo REFUSED
""", user=USER2, name="nsb")
    wait_done(b)
    run(["scancel", str(a)])
    wait_done(a)
    na, nb = namespaces(out_a.read_text()), namespaces(out_b.read_text())
    assert na and nb and na != nb
    text = out_b.read_text()
    # nothing under the base in its namespace: no mount of job a's
    assert text.splitlines()[1] == "0", text
    assert "REFUSED" in text and "ENTERED" not in text, text
    assert_clean(a)
    assert_clean(b)


def test_namespace_released_after_scancel():
    jobid, out = sbatch(["-w", "n2", "-n2", "--mem=256M", "--shm=32M"],
                        "srun -n2 sleep 60 & sleep 1; echo READY; wait")
    wait_file(out, "READY")
    wait_running(jobid)
    assert (BASE / "n2" / f"{jobid}.ns").exists()
    run(["scancel", str(jobid)], check=True)
    wait_done(jobid)
    assert_clean(jobid)


@pytest.mark.parametrize("joins", [True, False])
def test_slurmstepd_joins_unless_told_not_to(conf_extra, joins):
    """stepd_namespace (default true): slurmstepd joins the job's namespace
    and forks the tasks in it; false: it stays in the host's and each task
    joins by itself (the first one's helper makes it)."""
    if not joins:
        conf_extra("stepd_namespace = false;")
    jobid, out = sbatch(["-w", "n1", "-n2", "--mem=256M", "--shm=48M"], """
echo BATCH $(readlink /proc/self/ns/mnt)
srun -n2 bash -c 'echo STEP $(readlink /proc/self/ns/mnt) $(pwd) \
    $(df -B1M --output=size /dev/shm | tail -1)'
grep -c " """ + str(BASE) + """/" /proc/self/mountinfo
echo STEPD $PPID; echo READY; sleep 30
""")
    wait_file(out, "READY")
    stepd = int(re.search(r"STEPD (\d+)", out.read_text()).group(1))
    batch_stepd = os.readlink(f"/proc/{stepd}/ns/mnt")    # slurmstepd's
    run(["scancel", str(jobid)])
    wait_done(jobid)
    text = out.read_text()
    ns = namespaces(text)
    assert len(ns) == 3 and len(set(ns)) == 1, text
    assert text.count(f" {OUT} 48\n") == 2, text
    assert "\n0\nSTEPD" in text, text
    assert (batch_stepd == ns[0]) == joins, (batch_stepd, text)
    assert_clean(jobid)
