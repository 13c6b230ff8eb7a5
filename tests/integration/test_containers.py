# SPDX-License-Identifier: GPL-2.0-or-later
"""Containers started inside a --shm job see the job's sized /dev/shm:
Charliecloud's ch-run (unprivileged, binds the host's /dev) and rootless
Podman run as the job's user (`-v /dev/shm:/dev/shm`: without it Podman
mounts a 64M tmpfs of its own; `--ipc=host` would do too where the node
has /dev/mqueue).  Every task of the job on a node, and each container in
it, sees one filesystem (the same device number), of the job's size, with
the job's files; after the job nothing holds it (no process, no mount in
any namespace).  The image is a directory made here from the host's own
programs (no registry); Podman imports it as a tarball (`podman import`)
into a storage of the user's under the cluster's out directory.  Runs on
the main test cluster (node n1)."""
import os
import pwd
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import OUT, USER1, wait_done

SHM_MB = 96
PROGS = ["/bin/dash", "/usr/bin/stat", "/usr/bin/cat"]
# rootless podman without systemd: cgroupfs, events in a file, no network,
# vfs (no fuse-overlayfs).  Its pause process holds one user and mount
# namespace for all of a user's podman commands that share a storage,
# made where the first of them ran: each job gets a storage of its own
# (--root, --runroot, --tmpdir under the job's directory), the image read
# from a shared store (vfs.imagestore), so its containers start from the
# job's namespace and no other's.


def hybrid_v2_controllers():
    """A hybrid cgroup layout (v1 hierarchies, and v2 at .../unified) whose
    v2 hierarchy still holds a controller: on this project's VMs hugetlb,
    which no v1 hierarchy mounts (systemd would mount it there)."""
    unified = Path("/sys/fs/cgroup/unified/cgroup.controllers")
    return unified.exists() and unified.read_text().split()


# crun (podman's default runtime) refuses such a layout before anything
# of the job is involved ("cgroups in hybrid mode not supported, drop all
# controllers from cgroupv2"); runc runs there, rootless, with podman's
# cgroupfs manager (tests/cluster/deps.sh installs it for this).
RUNTIME = (["--runtime=runc"] if hybrid_v2_controllers() and
           shutil.which("runc") else [])
PODMAN = ["--cgroup-manager=cgroupfs", "--events-backend=file",
          "--storage-driver=vfs"] + RUNTIME


def make_image(root):
    """A minimal image directory: /bin/sh, stat, cat and their libraries,
    and the mount points ch-run and podman need."""
    if root.exists():
        shutil.rmtree(root)
    for d in ("bin", "usr/bin", "dev", "proc", "sys", "tmp", "home", "etc",
              "mnt", "run", "var/tmp"):
        (root / d).mkdir(parents=True, exist_ok=True)
    for prog in PROGS:
        shutil.copy2(prog, root / "usr/bin" / Path(prog).name)
        libs = subprocess.run(["ldd", prog], capture_output=True,
                              text=True).stdout
        for lib in re.findall(r"(/\S+\.so\S*)", libs):
            dst = root / lib.lstrip("/")
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(os.path.realpath(lib), dst)
    shutil.copy2("/bin/dash", root / "bin/sh")
    for f in ("etc/passwd", "etc/group"):
        (root / f).write_text("")
    subprocess.run(["chmod", "-R", "a+rX", str(root)], check=True)


def job_text(jobid, out):
    state = wait_done(jobid)
    text = out.read_text()
    assert state == "COMPLETED", f"{state}: {text}"
    return text


def probes(text, tag):
    """{task: {field: value}} of the lines 'tag TASK k v k v ...'."""
    got = {}
    for line in text.splitlines():
        f = line.split()
        if len(f) > 2 and f[0] == tag:
            got[f[1]] = dict(zip(f[2::2], f[3::2]))
    return got


def nothing_left(dev, timeout=30):
    """No container process of the job's user is left, and no mount of
    the job's device is in any process's mount table (any namespace)."""
    uid = pwd.getpwnam(USER1).pw_uid
    end = time.time() + timeout
    while True:
        procs, mounts = [], []
        for p in Path("/proc").glob("[0-9]*"):
            try:
                comm = (p / "comm").read_text().strip()
                if p.stat().st_uid == uid and comm.split()[0] in TOOLS:
                    procs.append((p.name, comm))
                mounts += [(p.name, comm, l.split()[4]) for l in
                           (p / "mountinfo").read_text().splitlines()
                           if l.split()[2] == dev]
            except OSError:
                continue
        if not procs and not mounts:
            return
        if time.time() > end:
            raise AssertionError(f"left: processes {procs[:10]}, "
                                 f"mounts {mounts[:10]}")
        time.sleep(0.5)


def check_job(text, tag):
    """Every task's container saw the job's shm: one device, the job's
    size, the batch script's file; returns that device as maj:min."""
    batch = re.search(r"^BATCH DEV (\d+) MM (\S+)", text, re.M)
    assert batch, text
    got = probes(text, tag)
    assert sorted(got) == ["0", "1"], text
    for task, p in got.items():
        assert p["HOST"] == batch.group(1), (task, text)   # the task's
        assert p["IN"] == batch.group(1), (task, text)     # the container's
        assert int(p["BLOCKS"]) * int(p["BSIZE"]) == SHM_MB << 20, (task, text)
        assert p["FILE"] == "from-batch", (task, text)
    return batch.group(2)


TOOLS = {"ch-run", "podman", "conmon", "catatonit", "runc", "crun",
         "slirp4netns", "fuse-overlayfs"}
BATCH = r"""
echo from-batch > /dev/shm/batch-file
echo BATCH DEV $(stat -c %d /dev/shm/) MM $(stat -c %Hd:%Ld /dev/shm/)
srun -n2 @OUT@/ct-task.sh "$@"
"""
# A task: its /dev/shm's device, then the container's (started by the
# command in the arguments after the tag): device, size (blocks, block
# size) and the batch script's file.
TASK_SCRIPT = r"""#!/bin/bash
tag=$1; shift
if [ "$tag" = PM ]; then   # podman's storage and run directories, per job
    run=/tmp/jobshm-pm-$SLURM_JOB_ID  # (podman: a runroot of 50 bytes at most)
    export XDG_RUNTIME_DIR=$run
    mkdir -p -m 700 $run
    set -- podman --root $HOME/jobs/$SLURM_JOB_ID --runroot $run/rr \
        --tmpdir $run/tmp --storage-opt vfs.imagestore=$HOME/storage "$@"
fi
set -- $(stat -c %d /dev/shm/) $("$@" /bin/sh -c "/usr/bin/stat -c %d \
    /dev/shm/; /usr/bin/stat -f -c '%b %S' /dev/shm/; \
    /usr/bin/cat /dev/shm/batch-file")
echo $tag $SLURM_PROCID HOST $1 IN $2 BLOCKS $3 BSIZE $4 FILE $5
"""


def container_job(name, tag, args, cmd):
    """A --shm job whose two tasks each run `cmd` (a container's command
    line, then sh -c ...); its text after it ended."""
    task = OUT / "ct-task.sh"
    task.write_text(TASK_SCRIPT)
    task.chmod(0o755)
    batch = OUT / f"{name}.sh"
    batch.write_text("#!/bin/bash\n" + BATCH.replace("@OUT@", str(OUT)))
    batch.chmod(0o755)
    p = subprocess.run(["runuser", "-u", USER1, "--", "sbatch", "--parsable",
                        "-o", str(OUT / f"{name}-%j.out"), "-w", "n1", "-n2",
                        f"--shm={SHM_MB}M", *args, str(batch), tag, *cmd],
                       capture_output=True, text=True, cwd=str(OUT),
                       timeout=60)
    assert p.returncode == 0, p.stderr
    jobid = int(p.stdout.strip().split(";")[0])
    return job_text(jobid, OUT / f"{name}-{jobid}.out")


@pytest.fixture(scope="module")
def image():
    root = OUT / "ctimg"
    make_image(root)
    return root


@pytest.mark.skipif(not shutil.which("ch-run"),
                    reason="needs Charliecloud's ch-run (Debian's "
                           "charliecloud-runtime; tests/cluster/deps.sh)")
def test_charliecloud_sees_the_jobs_shm(image):
    text = container_job("ch", "CH", ["--mem=512M"],
                         ["ch-run", str(image), "--"])
    nothing_left(check_job(text, "CH"))


def subid_ok(user):
    """Rootless podman maps the user's subordinate ids (newuidmap)."""
    for f in ("/etc/subuid", "/etc/subgid"):
        p = Path(f)
        if not p.exists() or not any(l.startswith(user + ":")
                                     for l in p.read_text().splitlines()):
            subprocess.run(["usermod", "--add-subuids", "200000-265535",
                            "--add-subgids", "200000-265535", user],
                           check=True)
    return shutil.which("newuidmap") and shutil.which("newgidmap")


@pytest.fixture(scope="module")
def podman_store(image):
    """The user's podman storage with the image imported from a tarball."""
    if not shutil.which("podman"):
        pytest.skip("needs Debian's podman (tests/cluster/deps.sh)")
    if not subid_ok(USER1):
        pytest.skip("rootless podman needs newuidmap/newgidmap (Debian's "
                    "uidmap; tests/cluster/deps.sh)")
    store = OUT / "podman-store"
    if store.exists():
        shutil.rmtree(store)
    store.mkdir()
    shutil.chown(store, USER1, USER1)
    tar = OUT / "ctimg.tar"
    subprocess.run(["tar", "-C", str(image), "-cf", str(tar), "."],
                   check=True)
    tar.chmod(0o644)
    env = ["env", f"HOME={store}", f"XDG_RUNTIME_DIR={store / 'run'}"]
    podman = ["runuser", "-u", USER1, "--", *env, "podman", "--root",
              str(store / "storage"), *PODMAN]
    subprocess.run(["runuser", "-u", USER1, "--", "mkdir", "-m", "700",
                    str(store / "run")], check=True)
    p = subprocess.run(podman + ["import", str(tar),
                                 "localhost/jobshm-tiny:1"],
                       capture_output=True, text=True, timeout=120,
                       cwd=str(store))
    assert p.returncode == 0, f"podman import as {USER1}: {p.stderr}"
    # the import's pause process (outside any job) is not wanted
    subprocess.run(podman + ["system", "migrate"], capture_output=True,
                   timeout=60, cwd=str(store))
    yield store
    shutil.rmtree(store, ignore_errors=True)


def test_rootless_podman_sees_the_jobs_shm(podman_store):
    cmd = PODMAN + ["run", "--rm", "--network=none", "-v",
                    "/dev/shm:/dev/shm", "localhost/jobshm-tiny:1"]
    text = container_job("pm", "PM", ["--mem=768M",
                                      f"--export=ALL,HOME={podman_store}"],
                         cmd)
    nothing_left(check_job(text, "PM"))
    for d in Path("/tmp").glob("jobshm-pm-*"):
        shutil.rmtree(d, ignore_errors=True)
