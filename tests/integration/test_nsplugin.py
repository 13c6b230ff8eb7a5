# SPDX-License-Identifier: GPL-2.0-or-later
"""jobshm beside Slurm 25.11+'s namespace plugins (NamespaceType): a --shm
job gets its own sized shm on /dev/shm in the batch script and in every
task of every step, a plain job gets the site's /dev/shm, /tmp stays the
job's private one in both, and nothing of the --shm job's shm is left
anywhere after it (in no process's mount table, no memory).

Two one-node test clusters of their own, one at a time (cluster.sh's
JOBSHM_CLUSTER_NAMESPACE): namespace/linux with namespace.yaml making /tmp
private, mounting a 64M tmpfs on /dev/shm (dir_confs) and a PID namespace
per job (clone_ns_flags: CLONE_NEWPID), whose slurmstepd runs inside the
job's namespaces; and namespace/tmpfs (the old job_container/tmpfs: each
task moved into the job's namespace after it is forked).  Slurm 22.05 has
neither: the tests skip there and run in `make check-slurm-src`."""
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from conftest import ROOT, USER1, CLI

CLUSTERS = {
    "linux": (Path("/run/jobshm-cluster-nsl"), "17617", "nsl"),
    "tmpfs": (Path("/run/jobshm-cluster-nst"), "17717", "nst"),
}
SHM_MB = 96
SITE_SHM_MB = 64        # cluster.sh's namespace.yaml: /dev/shm size=64m
FILL_MB = 48


def slurm_version():
    p = subprocess.run(["sinfo", "-V"], capture_output=True, text=True)
    m = re.search(r"(\d+)\.(\d+)\.(\d+)", p.stdout)
    return (tuple(int(x) for x in m.groups()), m.group(0)) if m else \
        ((0, 0, 0), "unknown")


VERSION, VERSION_TEXT = slurm_version()
pytestmark = pytest.mark.skipif(
    VERSION < (25, 11, 0),
    reason=f"NamespaceType (namespace/linux, namespace/tmpfs) is Slurm "
           f"25.11+; this is {VERSION_TEXT} "
           f"(make check-slurm-src runs these on 26.05)")

# What each process reports: its /dev/shm (the filesystem on top there:
# device, size, source), its PID namespace, and /tmp.
PROBE = r"""probe() {
    dev=$(stat -c %Hd:%Ld /dev/shm/)
    src=$(awk -v d=$dev '$3 == d && $5 == "/dev/shm" {print $(NF-1)}' \
        /proc/self/mountinfo | tail -1)
    echo "$1 DEV $dev SIZE $(df -B1M --output=size /dev/shm | tail -1)" \
        "SRC ${src:-none} PIDNS $(readlink /proc/self/ns/pid)" \
        "MNTNS $(readlink /proc/self/ns/mnt)" \
        "TMP $(cat /tmp/jobshm-ns-$SLURM_JOB_ID 2>/dev/null || echo none)" \
        "SHMF $(cat /dev/shm/jobshm-ns-$SLURM_JOB_ID 2>/dev/null || echo none)" \
        "JSIZE ${JOBSHM_SIZE:-none}"
}
export -f probe
echo tmp-$SLURM_JOB_ID > /tmp/jobshm-ns-$SLURM_JOB_ID
echo shm-$SLURM_JOB_ID > /dev/shm/jobshm-ns-$SLURM_JOB_ID
probe BATCH
dd if=/dev/zero of=/dev/shm/fill bs=1M count=@FILL@ status=none && \
    echo SHMEM $(awk '/^Shmem:/ {print $2}' /proc/meminfo)
srun -n2 bash -c 'probe TASK$SLURM_PROCID'
srun -n1 bash -c 'probe STEP2'
""".replace("@FILL@", str(FILL_MB))


@pytest.fixture(scope="module", params=sorted(CLUSTERS))
def cluster(request):
    kind = request.param
    d, port, prefix = CLUSTERS[kind]
    env = dict(os.environ, JOBSHM_CLUSTER_DIR=str(d), JOBSHM_CLUSTER_NODES="1",
               JOBSHM_CLUSTER_PORT=port, JOBSHM_CLUSTER_NODE_PREFIX=prefix,
               JOBSHM_CLUSTER_NAMESPACE=kind, SLURM_CONF=str(d / "slurm.conf"))
    c = str(ROOT / "tests" / "cluster" / "cluster.sh")
    p = subprocess.run([c, "start"], env=env, capture_output=True, text=True)
    if p.returncode != 0:
        subprocess.run([c, "stop"], env=env, capture_output=True)
        logs = "".join(f.read_text()[-1500:] for f in
                       (d / "log").glob(f"slurmd.{prefix}1.log"))
        pytest.fail(f"cluster with namespace/{kind}: {p.stderr[-1500:]}\n"
                    f"slurmd's log ends: {logs}")
    yield kind, d, env, f"{prefix}1"
    subprocess.run([c, "stop"], env=env, capture_output=True)


@pytest.fixture(autouse=True)
def node_never_drained(cluster):
    """This cluster's node is idle after every test: never drained (the
    main cluster's check, conftest's, is for the main cluster)."""
    yield
    kind, d, env, node = cluster
    end = time.time() + 60
    while True:
        p = subprocess.run(["sinfo", "-h", "-N", "-o", "%T", "-n", node],
                           env=env, capture_output=True, text=True)
        if p.stdout.strip() == "idle" or time.time() > end:
            break
        time.sleep(0.3)
    assert p.stdout.strip() == "idle", (node, p.stdout, p.stderr)


def job(cluster, args):
    """Run PROBE's script as a batch job; its id, probe lines and text."""
    kind, d, env, node = cluster
    script = d / "out" / "ns.sh"
    script.write_text("#!/bin/bash\n" + PROBE)
    script.chmod(0o755)
    p = subprocess.run(["runuser", "-u", USER1, "--", "sbatch", "--wait",
                        "--parsable", "-w", node, "-n2", "--mem=256M", "-o",
                        str(d / "out" / "ns-%j.out"), *args, str(script)],
                       env=env, capture_output=True, text=True, timeout=180,
                       cwd="/")
    assert p.returncode == 0, p.stdout + p.stderr
    jobid = int(p.stdout.strip().split(";")[0])
    text = (d / "out" / f"ns-{jobid}.out").read_text()
    probes = {}
    for line in text.splitlines():
        f = line.split()
        if f and (f[0] in ("BATCH", "STEP2") or f[0].startswith("TASK")):
            probes[f[0]] = dict(zip(f[1::2], f[2::2]))
    shmem = re.search(r"^SHMEM (\d+)", text, re.M)
    return jobid, probes, text, int(shmem.group(1)) if shmem else None


def mounts_of_dev(dev):
    """(pid, mount point) of every mount of device `dev` in any process's
    mount table on this host (all namespaces)."""
    found = []
    for m in Path("/proc").glob("[0-9]*/mountinfo"):
        try:
            lines = m.read_text().splitlines()
        except OSError:
            continue
        found += [(m.parent.name, l.split()[4]) for l in lines
                  if l.split()[2] == dev]
    return found


def shmem_kb():
    text = Path("/proc/meminfo").read_text()
    return int(re.search(r"^Shmem:\s+(\d+)", text, re.M).group(1))


def wait_gone(d, jobid, dev, during, timeout=60):
    """Nothing of the job's shm anywhere: no mount of its device in any
    namespace, no job directory, its memory given back."""
    end = time.time() + timeout
    while True:
        left = mounts_of_dev(dev)
        dirs = [str(p) for p in (d / "base").glob(f"*/{jobid}*")]
        freed = during is None or shmem_kb() <= during - (FILL_MB - 8) * 1024
        if not left and not dirs and freed:
            return
        if time.time() > end:
            raise AssertionError(f"job {jobid} left mounts {left[:5]}, "
                                 f"dirs {dirs}, Shmem {shmem_kb()} kB "
                                 f"(during the job {during} kB)")
        time.sleep(0.5)


def test_shm_job_gets_its_sized_shm_in_every_task(cluster):
    kind, d, env, node = cluster
    jobid, pr, text, during = job(cluster, [f"--shm={SHM_MB}M"])
    assert set(pr) == {"BATCH", "TASK0", "TASK1", "STEP2"}, text
    devs = {p["DEV"] for p in pr.values()}
    # one shm for the whole job on the node: the batch script and every
    # task of every step see the same filesystem, jobshm's, of the size asked
    assert len(devs) == 1, text
    for name, p in pr.items():
        assert p["SRC"] == "jobshm", (name, text)
        assert p["SIZE"] == str(SHM_MB), (name, text)
        assert p["JSIZE"] == str(SHM_MB << 20), (name, text)
        assert p["SHMF"] == f"shm-{jobid}", (name, text)
        # the job's private /tmp (the plugin's) in every step
        assert p["TMP"] == f"tmp-{jobid}", (name, text)
    assert not Path(f"/tmp/jobshm-ns-{jobid}").exists()
    if kind == "linux":   # clone_ns_flags: CLONE_NEWPID, every process
        # slurmstepd runs in the job's namespaces: every task joins the
        # one mount namespace jobshm keeps for the job on the node
        assert len({p["MNTNS"] for p in pr.values()}) == 1, text
        host_pidns = os.readlink("/proc/self/ns/pid")
        assert all(p["PIDNS"] != host_pidns for p in pr.values()), text
        assert len({p["PIDNS"] for p in pr.values()}) == 1, text
    assert during is not None, text
    wait_gone(d, jobid, devs.pop(), during)


def test_every_job_keeps_one_namespace_for_its_tasks(cluster):
    """Under namespace/linux the job's tasks join one mount namespace that
    jobshm keeps inside Slurm's, in every job: on Linux 6.18 namespace
    ids come from per-CPU batches, and keeping a namespace whose id is
    below Slurm's failed (EINVAL) in about one job in four, whose tasks
    then each made a namespace of their own."""
    kind, d, env, node = cluster
    if kind != "linux":
        pytest.skip("namespace/tmpfs moves each task into Slurm's namespace "
                    "after it is forked: each task clones the job's mount")
    script = d / "out" / "ns1.sh"
    script.write_text("#!/bin/bash\necho NS $(readlink /proc/self/ns/mnt)\n"
                      "srun -n2 bash -c 'echo NS $(readlink /proc/self/ns/mnt)'"
                      "\n")
    script.chmod(0o755)
    jobs = []
    for _ in range(8):
        p = subprocess.run(["runuser", "-u", USER1, "--", "sbatch",
                            "--parsable", "-w", node, "-n2", "--mem=128M",
                            "--shm=16M", "-o", str(d / "out" / "ns1-%j.out"),
                            str(script)], env=env, capture_output=True,
                           text=True, timeout=60, cwd="/")
        assert p.returncode == 0, p.stderr
        jobs.append(int(p.stdout.strip().split(";")[0]))
    p = subprocess.run(["runuser", "-u", USER1, "--", "srun", "-w", node,
                        "--dependency=afterany:" + ":".join(map(str, jobs)),
                        "--mem=16M", "true"], env=env, capture_output=True,
                       text=True, timeout=300, cwd="/")
    split = {}
    for j in jobs:
        text = (d / "out" / f"ns1-{j}.out").read_text()
        ns = set(re.findall(r"^NS (\S+)", text, re.M))
        assert len(re.findall(r"^NS ", text, re.M)) == 3, text
        if len(ns) != 1:
            split[j] = text
    assert not split, split


def test_plain_job_keeps_the_sites_shm(cluster):
    kind, d, env, node = cluster
    jobid, pr, text, _ = job(cluster, [])
    assert set(pr) == {"BATCH", "TASK0", "TASK1", "STEP2"}, text
    assert len({p["DEV"] for p in pr.values()}) == 1, text
    for name, p in pr.items():
        assert p["SRC"] != "jobshm" and p["JSIZE"] == "none", (name, text)
        assert p["SHMF"] == f"shm-{jobid}", (name, text)
        assert p["TMP"] == f"tmp-{jobid}", (name, text)
        if kind == "linux":     # namespace.yaml's dir_confs size=64m
            assert p["SIZE"] == str(SITE_SHM_MB), (name, text)
    # not the node's /dev/shm: the plugin's own, per job
    assert not Path(f"/dev/shm/jobshm-ns-{jobid}").exists()
    assert not list((d / "base").glob(f"*/{jobid}*"))


def test_check_config_says_who_manages_dev_shm(cluster):
    kind, d, env, node = cluster
    p = subprocess.run([CLI, "check-config", str(d / "jobshm.conf")],
                       env=env, capture_output=True, text=True, timeout=60)
    out = p.stdout + p.stderr
    assert p.returncode == 0, out
    assert f"NamespaceType=namespace/{kind}" in out, out
    # who wins, and what to configure on each side
    assert "--shm jobs get jobshm's" in out, out
    assert ("dir_confs" if kind == "linux" else "Dirs") in out, out
    if kind == "linux":
        assert "size=64m" in out, out


# Found by this test on 26.05.3 (both plugins), before pam_jobshm looked
# the job up in sshd's namespace: pam_slurm_adopt's default
# join_container=true moves the session into Slurm's namespace for the job
# in the account stack, where /proc may be the job's PID namespace's and the
# job's tmpfs may not be mounted (namespace/tmpfs), and pam_jobshm left the
# session silently (PAM_IGNORE) with the plugin's /dev/shm.
def test_adopted_pam_session_joins_the_jobs_shm_and_tmp(cluster,
                                                        tmp_path_factory):
    """An ssh-like session that the running Slurm's pam_slurm_adopt adopts
    into a --shm job, with pam_jobshm after it in the session stack (as
    test_pam.py, through its pam_driver), sees what the job's tasks see:
    the job's sized /dev/shm with the file the batch script wrote, and
    the namespace plugin's private /tmp with the job's file; under
    namespace/linux it is in the very mount namespace of the job.  The
    same session without pam_jobshm is in Slurm's namespace for the job:
    its /tmp, but the plugin's /dev/shm, not the job's.  With pam_jobshm
    failing (a configuration it cannot read) the session is told why and
    stays where pam_slurm_adopt put it: Slurm's /tmp, not the node's."""
    from test_pam import ADOPT, ADOPT_WHY, MODULE
    if not ADOPT:
        pytest.skip(ADOPT_WHY)
    kind, d, env, node = cluster
    exe = tmp_path_factory.mktemp("pamns") / "pam_driver"
    subprocess.run(["cc", "-Wall", "-o", str(exe),
                    str(ROOT / "tests" / "integration" / "pam_driver.c"),
                    "-lpam"], check=True)
    script = d / "out" / "nspam.sh"
    script.write_text(
        "#!/bin/bash\necho tmp-$SLURM_JOB_ID > /tmp/jobshm-ns-$SLURM_JOB_ID\n"
        "echo shm-$SLURM_JOB_ID > /dev/shm/jobshm-ns-$SLURM_JOB_ID\n"
        "echo MNTNS $(readlink /proc/self/ns/mnt)\nsleep 300\n")
    script.chmod(0o755)
    p = subprocess.run(["runuser", "-u", USER1, "--", "sbatch", "--parsable",
                        "-w", node, "--mem=128M", f"--shm={SHM_MB}M", "-o",
                        str(d / "out" / "nspam-%j.out"), str(script)],
                       env=env, capture_output=True, text=True, timeout=60,
                       cwd="/")
    assert p.returncode == 0, p.stderr
    jobid = int(p.stdout.strip().split(";")[0])
    out = d / "out" / f"nspam-{jobid}.out"
    services = []
    try:
        end = time.time() + 60
        while not (out.exists() and "MNTNS" in out.read_text()):
            assert time.time() < end, f"job {jobid} did not start"
            time.sleep(0.2)
        job_ns = out.read_text().split("MNTNS ")[1].split()[0]
        probe = ("echo SIZE $(df -B1M --output=size /dev/shm | tail -1) "
                 "SHMF $(cat /dev/shm/jobshm-ns-$0 2>/dev/null || echo none)"
                 " TMP $(cat /tmp/jobshm-ns-$0 2>/dev/null || echo none) "
                 "MNTNS $(readlink /proc/self/ns/mnt) "
                 "JSIZE ${JOBSHM_SIZE:-none}")

        def session(with_jobshm, conf=None):
            name = f"jobshm-test-{os.urandom(4).hex()}"
            lines = [f"account required {ADOPT} nodename={node} "
                     f"service={name}"]
            if with_jobshm:
                lines.append(f"session required {MODULE} "
                             f"conf={conf or d / 'jobshm.conf'} "
                             f"nodename={node}")
            lines.append("session optional pam_permit.so")
            path = Path("/etc/pam.d") / name
            path.write_text("\n".join(lines) + "\n")
            services.append(path)
            q = subprocess.run(
                [str(exe), name, USER1, "sh", "-c", probe, str(jobid)],
                env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                     "SLURM_CONF": env["SLURM_CONF"]},
                capture_output=True, text=True, timeout=120,
                stdin=subprocess.DEVNULL)
            assert q.returncode == 0, (q.returncode, q.stdout, q.stderr)
            f = q.stdout.split()
            return dict(zip(f[0::2], f[1::2])), q.stderr

        s, err = session(True)
        assert s["SIZE"] == str(SHM_MB), (s, err)
        assert s["SHMF"] == f"shm-{jobid}", (s, err)
        assert s["JSIZE"] == str(SHM_MB << 20), (s, err)
        assert s["TMP"] == f"tmp-{jobid}", (s, err)
        if kind == "linux":
            assert s["MNTNS"] == job_ns, (s, job_ns, err)
        s, err = session(False)
        assert s["TMP"] == f"tmp-{jobid}", (s, err)
        assert s["SHMF"] == "none" and s["JSIZE"] == "none", (s, err)
        assert s["MNTNS"] != job_ns, (s, job_ns, err)
        plugin_ns = s["MNTNS"]
        s, err = session(True, conf="/nonexistent/jobshm.conf")
        assert f"pam: jobshm: this session is not in job {jobid}'s " \
            "/dev/shm" in err, (s, err)
        assert s["TMP"] == f"tmp-{jobid}", (s, err)
        assert s["SHMF"] == "none" and s["JSIZE"] == "none", (s, err)
        assert s["MNTNS"] == plugin_ns, (s, plugin_ns, err)
    finally:
        for path in services:
            path.unlink()
        subprocess.run(["scancel", str(jobid)], env=env, capture_output=True)
        end = time.time() + 60
        while time.time() < end:
            q = subprocess.run(["squeue", "-h", "-j", str(jobid)], env=env,
                               capture_output=True, text=True)
            if not q.stdout.strip():
                break
            time.sleep(0.3)
