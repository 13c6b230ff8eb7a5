# SPDX-License-Identifier: GPL-2.0-or-later
"""ssh sessions join the job's shm: pam_slurm_adopt, then
pam_jobshm, in a real PAM stack (a service file written here, removed
after), driven by tests/integration/pam_driver.c, which does what sshd
does in one process (account, session, then exec as the user).  The
pam_slurm_adopt is the running Slurm's own: a source-built Slurm's
(SLURM_PREFIX, as make check-slurm-src runs: tests/cluster/slurm-build.sh
installs it as PREFIX/lib/security/pam_slurm_adopt.so), else Debian's
libpam-slurm-adopt, which speaks only to the slurmstepd of its release.  A
one-node test cluster of its own (node pam1, PrologFlags=Contain for the
extern step pam_slurm_adopt adopts into) runs the jobs.  Also `jobshm
exec`, the admin's way into a job's namespace."""
import os
import secrets
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import ROOT, USER1, USER2, CLI, FINAL

D2 = Path("/tmp/jobshm-cluster-pam")
NODE = "pam1"
ENV = dict(os.environ, JOBSHM_CLUSTER_DIR=str(D2), JOBSHM_CLUSTER_NODES="1",
           JOBSHM_CLUSTER_PORT="17517", JOBSHM_CLUSTER_NODE_PREFIX="pam",
           JOBSHM_CLUSTER_CONTAIN="yes", SLURM_CONF=str(D2 / "slurm.conf"))
# a Slurm built from source (make check-slurm-src): its commands, as
# cluster.sh runs its daemons
PREFIX = os.environ.get("SLURM_PREFIX") or None
if PREFIX:
    ENV["PATH"] = f"{PREFIX}/sbin:{PREFIX}/bin:{ENV.get('PATH', '')}"
MODULE = ROOT / "pam" / "pam_jobshm.so"
SHM = 64 << 20
# what the session's command reports (the file the job wrote)
PROBE = ("echo SIZE $(df -B1 --output=size /dev/shm | tail -1); "
         "echo FILE $(cat /dev/shm/from-job-$0 2>/dev/null || echo none); "
         "echo NS $(stat -L -c %i /proc/self/ns/mnt); "
         "env | grep ^JOBSHM_ | sed 's/^/ENV /'; true")

def _major_minor(text):
    """'22.05' from 'slurm 22.05.8' or '22.05.8-4+deb12u3'."""
    import re
    m = re.search(r"(\d+)\.(\d+)", text or "")
    return f"{int(m.group(1))}.{int(m.group(2)):02d}" if m else None


def _adopt():
    """The pam_slurm_adopt of the running Slurm, or None and why not.  It
    speaks to slurmstepd in its own release's protocol, so it can adopt
    only into the Slurm it was built with."""
    # slurmd -V reads no slurm.conf (sinfo --version does, and the pam
    # cluster's is not written yet at import: it printed nothing)
    run = subprocess.run(["slurmd", "-V"], capture_output=True,
                         text=True, env=ENV).stdout.strip()
    if PREFIX:
        path = Path(PREFIX) / "lib" / "security" / "pam_slurm_adopt.so"
        if path.exists():
            return str(path), None
        return None, (f"the Slurm at {PREFIX} ({run}) has no {path} "
                      "(tests/cluster/slurm-build.sh builds it; Debian's "
                      "is for another Slurm and cannot talk to its "
                      "slurmstepd)")
    path = next((p for p in ("/lib/security/pam_slurm_adopt.so",
                             "/lib/x86_64-linux-gnu/security/"
                             "pam_slurm_adopt.so",
                             "/usr/lib64/security/pam_slurm_adopt.so")
                 if os.path.exists(p)), None)
    pkg = subprocess.run(["dpkg-query", "-W", "-f=${Version}",
                          "libpam-slurm-adopt"], capture_output=True,
                         text=True).stdout
    if not path:
        return None, ("needs libpam-slurm-adopt (tests/cluster/deps.sh "
                      "installs it)")
    if _major_minor(pkg) != _major_minor(run):
        return None, (f"Debian's pam_slurm_adopt ({pkg or 'unknown'}) is "
                      f"for another Slurm than this one ({run}): it cannot "
                      "talk to its slurmstepd (run on 22.05 by make check, "
                      "on a source-built Slurm with its own module by make "
                      "check-slurm-src)")
    return path, None


ADOPT, ADOPT_WHY = _adopt()

pytestmark = [
    pytest.mark.skipif(not ADOPT, reason=ADOPT_WHY or ""),
    pytest.mark.skipif(
        not shutil.which("pamtester") or
        not os.path.exists("/usr/include/security/pam_appl.h"),
        reason="needs pamtester and libpam0g-dev "
               "(tests/cluster/deps.sh installs them)")]


def sh(cmd, **kw):
    if "input" not in kw:
        kw["stdin"] = subprocess.DEVNULL
    return subprocess.run(cmd, env=ENV, capture_output=True, text=True,
                          timeout=120, **kw)


@pytest.fixture(scope="module")
def cluster():
    c = str(ROOT / "tests" / "cluster" / "cluster.sh")
    p = sh([c, "start"])
    if p.returncode != 0:
        sh([c, "stop"])
        pytest.fail(f"pam test cluster: {p.stderr[-2000:]}")
    if not (D2 / "cgroup.conf").exists():
        sh([c, "stop"])
        pytest.skip("pam_slurm_adopt needs proctrack/cgroup: this host has "
                    "no writable cgroup v1 memory hierarchy")
    yield
    sh([c, "stop"])


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    exe = tmp_path_factory.mktemp("pam") / "pam_driver"
    subprocess.run(["cc", "-Wall", "-o", str(exe),
                    str(ROOT / "tests" / "integration" / "pam_driver.c"),
                    "-lpam"], check=True)
    return str(exe)


@pytest.fixture(scope="module")
def service():
    """PAM services: name -> its stack (removed after)."""
    made = []

    def make(session=True, conf=None):
        name = f"jobshm-test-{secrets.token_hex(4)}"
        lines = [f"account required {ADOPT} nodename={NODE} service={name}"]
        if session:
            lines.append(f"session required {MODULE} "
                         f"conf={conf or D2 / 'jobshm.conf'} nodename={NODE}")
        lines.append("session optional pam_permit.so")
        path = Path("/etc/pam.d") / name
        path.write_text("\n".join(lines) + "\n")
        made.append(path)
        return name
    yield make
    for p in made:
        p.unlink()


def submit(args):
    """A job on pam1 that writes a file to /dev/shm, prints its mount
    namespace and stays; returns (jobid, its namespace inode)."""
    out = D2 / "out" / "pam-%j.out"
    body = ("#!/bin/bash\necho job > /dev/shm/from-job-$SLURM_JOB_ID\n"
            "echo NS $(stat -L -c %i /proc/self/ns/mnt)\nsleep 300\n")
    p = sh(["runuser", "-u", USER1, "--", "sbatch", "--parsable", "-o",
            str(out), "-w", NODE] + args, input=body, cwd=str(D2 / "out"))
    assert p.returncode == 0, p.stderr
    jobid = int(p.stdout.strip().split(";")[0])
    path = D2 / "out" / f"pam-{jobid}.out"
    end = time.time() + 60
    while time.time() < end:
        if path.exists() and "NS " in path.read_text():
            return jobid, int(path.read_text().split("NS ")[1].split()[0])
        time.sleep(0.2)
    raise AssertionError(f"job {jobid} did not start: {sh(['squeue']).stdout}")


def end(jobid):
    sh(["scancel", str(jobid)])
    # a plain job wrote it to the node's /dev/shm
    Path(f"/dev/shm/from-job-{jobid}").unlink(missing_ok=True)
    t = time.time() + 60
    while time.time() < t:
        p = sh(["scontrol", "-o", "show", "job", str(jobid)])
        st = p.stdout.split("JobState=")[1].split()[0] if "JobState=" in \
            p.stdout else "COMPLETED"
        if st in FINAL:
            return
        time.sleep(0.3)


def session(driver, name, jobid, user=USER1):
    """Open a session as sshd would and run PROBE in it (for the file of
    job jobid), in an environment as plain as sshd's."""
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
           "SLURM_CONF": ENV["SLURM_CONF"]}
    p = subprocess.run([driver, name, user, "sh", "-c", PROBE, str(jobid)],
                       env=env, capture_output=True, text=True, timeout=120,
                       stdin=subprocess.DEVNULL)
    fields = {}
    for line in p.stdout.splitlines():
        k, _, v = line.partition(" ")
        fields.setdefault(k, []).append(v)
    return p, fields


def host_ns():
    return os.stat("/proc/self/ns/mnt").st_ino


@pytest.fixture
def shm_job(cluster):
    jobid, ns = submit([f"--shm={SHM >> 20}M"])
    yield jobid, ns
    end(jobid)


def test_session_joins_job_shm(shm_job, driver, service):
    """An adopted session sees the job's sized /dev/shm with the job's
    files, in the job's mount namespace, with the job's JOBSHM_*; the same
    session without pam_jobshm in the stack has the node's /dev/shm."""
    jobid, ns = shm_job
    p, f = session(driver, service(), jobid)
    assert p.returncode == 0, p.stderr
    assert f["SIZE"] == [str(SHM)], (f, p.stderr)
    assert f["FILE"] == ["job"], (f, p.stderr)
    assert f["NS"] == [str(ns)], (f, ns, p.stderr)
    env = sorted(f.get("ENV", []))
    assert env == ["JOBSHM_DIR=/dev/shm", f"JOBSHM_PREFIX=jobshm.{jobid}.",
                   f"JOBSHM_SIZE={SHM}"], env

    p, f = session(driver, service(session=False), jobid)
    assert p.returncode == 0, p.stderr
    assert f["FILE"] == ["none"] and f["NS"] == [str(host_ns())], f
    assert "ENV" not in f, f


def test_user_without_job_refused(cluster, driver, service):
    """pam_slurm_adopt still refuses a user with no job on the node, with
    pam_jobshm in the stack (pamtester, and the driver never gets a
    session)."""
    name = service()
    p = sh(["pamtester", name, USER2, "acct_mgmt"])
    assert p.returncode != 0, p.stdout + p.stderr
    p, f = session(driver, name, 0, user=USER2)
    assert p.returncode == 3, (p.returncode, p.stderr)
    assert "NS" not in f


def test_plain_job_left_alone(cluster, driver, service):
    """A session adopted into a job without --shm keeps the node's
    /dev/shm and gets no JOBSHM_* (pam_jobshm ignores it)."""
    jobid, ns = submit([])
    try:
        p, f = session(driver, service(), jobid)
        assert p.returncode == 0, p.stderr
        assert f["NS"] == [str(host_ns())] and ns == host_ns(), (f, ns)
        assert "ENV" not in f and "jobshm" not in p.stderr, (f, p.stderr)
    finally:
        end(jobid)


def test_failure_never_locks_out(shm_job, driver, service):
    """A broken configuration: the session goes on with the node's
    /dev/shm, and the user is told why."""
    jobid, _ = shm_job
    p, f = session(driver, service(conf="/nonexistent/jobshm.conf"), jobid)
    assert p.returncode == 0, p.stderr
    assert f["NS"] == [str(host_ns())], f
    assert f"pam: jobshm: this session is not in job {jobid}'s /dev/shm" \
        in p.stderr, p.stderr


def jobshm_exec(args, user=None):
    cmd = [CLI, "exec", "--conf", str(D2 / "jobshm.conf")] + args
    if user:
        cmd = ["runuser", "-u", user, "--"] + cmd
    return sh(cmd)


def test_exec(shm_job):
    """jobshm exec runs a command in the job's namespace (root only)."""
    jobid, ns = shm_job
    p = jobshm_exec([str(jobid), "--", "sh", "-c",
                     f"cat /dev/shm/from-job-{jobid}; "
                     "stat -L -c %i /proc/self/ns/mnt"])
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["job", str(ns)], p.stdout
    p = jobshm_exec(["--node", NODE, str(jobid), "--", "false"])
    assert p.returncode == 1, p.stderr
    p = jobshm_exec([str(jobid), "--", "true"], user=USER1)
    assert p.returncode == 1 and "only root" in p.stderr, p.stderr


def test_exec_refusals(cluster):
    """A bad job id is quoted; a job without shm here is said so."""
    p = jobshm_exec(["12x", "--", "true"])
    assert p.returncode == 2 and "'12x' is not a job id" in p.stderr, p.stderr
    jobid, _ = submit([])
    try:
        p = jobshm_exec([str(jobid), "--", "true"])
        assert p.returncode == 1, p.stderr
        assert f"job {jobid} has no shm" in p.stderr, p.stderr
    finally:
        end(jobid)


def test_namespace_of_a_user_namespace_refused(shm_job, driver, service):
    """The session is in a mount namespace that a user namespace not the
    host's owns (its parent, as sshd would be seen, too: sshd's namespace
    cannot be used, and the lookup falls back to where the session is).
    A user who holds capabilities there could mount a base_path of their
    own, so pam_jobshm refuses on that path too, says why, and the session
    keeps that namespace's /dev/shm (ade9593 skipped the check on the
    fallback path and went on to look the job up, and join it, through
    the base_path that namespace shows: "the job keeps no namespace on
    this node" there)."""
    jobid, _ = shm_job
    holder = subprocess.Popen(["unshare", "-U", "-m", "--map-root-user",
                               "sleep", "300"], stdin=subprocess.DEVNULL)
    try:
        mnt = f"/proc/{holder.pid}/ns/mnt"
        t = time.time() + 10
        while os.stat(mnt).st_ino == host_ns() and time.time() < t:
            time.sleep(0.05)
        inner = os.stat(mnt).st_ino
        assert inner != host_ns()
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
               "SLURM_CONF": ENV["SLURM_CONF"]}
        # sh forks the driver (not exec): its parent, where pam_jobshm
        # looks for sshd's namespace, is in the user's namespace too
        p = subprocess.run(
            ["nsenter", f"--mount={mnt}", "--", "sh", "-c",
             '"$@"; exit $?', "sh", driver, service(), USER1, "sh", "-c",
             PROBE, str(jobid)], env=env, capture_output=True, text=True,
            timeout=120, stdin=subprocess.DEVNULL)
    finally:
        holder.kill()
        holder.wait()
    f = {}
    for line in p.stdout.splitlines():
        k, _, v = line.partition(" ")
        f.setdefault(k, []).append(v)
    assert p.returncode == 0, p.stderr
    assert f"pam: jobshm: this session is not in job {jobid}'s /dev/shm " \
        "(the namespace the session is in belongs to a user namespace not " \
        "the host's)" in p.stderr, p.stderr
    assert f["NS"] == [str(inner)] and f["FILE"] == ["none"], (f, p.stderr)
    assert "ENV" not in f, f
