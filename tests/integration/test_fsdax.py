# SPDX-License-Identifier: GPL-2.0-or-later
"""--nvram-options=1LM on an fsdax path (nvram_paths): a loop-mounted XFS
stands in for /mnt/pmem_fsdax0, with prjquota where the kernel has XFS
quota support."""
import os
import subprocess
import time
from pathlib import Path

import pytest

from conftest import (D, ROOT, USER1, assert_clean, conf_extra,  # noqa: F401
                      run,
                      sbatch, wait_done, wait_running)

SHOW = """
grep " /dev/shm " /proc/self/mountinfo | tail -1
env | grep -E '^JOBSHM_(MODE|MPOL|SIZE)=' | sort
"""


def _mount(img, mnt, quota):
    opts = "loop,prjquota" if quota else "loop"
    return subprocess.run(["mount", "-t", "xfs", "-o", opts, str(img),
                           str(mnt)], capture_output=True, text=True)


@pytest.fixture
def fsdax(conf_extra, tmp_path_factory):
    """A 6 GiB sparse XFS, mounted; yields (mount point, has quota)."""
    d = tmp_path_factory.mktemp("fsdax")
    img, mnt = d / "pmem.img", Path(f"{D}/pmem_fsdax0")
    with open(img, "wb") as f:
        f.truncate(6 << 30)
    subprocess.run(["mkfs.xfs", "-q", "-f", str(img)], check=True)
    mnt.mkdir(exist_ok=True)
    quota = _mount(img, mnt, True).returncode == 0
    if not quota:
        p = _mount(img, mnt, False)
        assert p.returncode == 0, p.stderr
    conf_extra(f'nvram_paths = [ "{mnt}" ];')
    yield mnt, quota
    subprocess.run(["umount", "-l", str(mnt)])
    img.unlink()


def leftovers(mnt, jobid):
    store = mnt / ".jobshm"
    return [p.name for p in store.iterdir()
            if p.name.split(".")[0] == str(jobid)] if store.exists() else []


def test_1lm_job_gets_a_private_directory_on_fsdax(fsdax):
    mnt, _ = fsdax
    jobid, out = sbatch(["--nvram-options=1LM:2"], SHOW + """
head -c 10M /dev/zero > /dev/shm/data
srun -n1 stat -c '%s %U' /dev/shm/data
""")
    state = wait_done(jobid)
    text = out.read_text()
    assert state == "COMPLETED", text
    assert f"/.jobshm/{jobid} /dev/shm " in text and " xfs " in text, text
    assert "JOBSHM_MODE=1LM" in text and "JOBSHM_MPOL=fsdax" in text
    assert f"JOBSHM_SIZE={2 << 30}" in text
    assert f"10485760 {USER1}" in text          # a later step sees it
    assert_clean(jobid)
    assert leftovers(mnt, jobid) == []


def test_admission_counts_live_reservations(fsdax):
    mnt, _ = fsdax
    a, _ = sbatch(["--nvram-options=1LM:4"], "sleep 300", name="hold")
    try:
        wait_running(a)
        for _ in range(100):
            if (mnt / ".jobshm" / f"{a}.reserve").exists():
                break
            time.sleep(0.1)
        st = run([str(ROOT / "cli" / "jobshm"), "--conf",
                  str(D / "jobshm.conf"), "status", "--json"]).stdout
        assert f'"job": {a}' in st and '"kind": "fsdax"' in st, st
        assert f'"size": {4 << 30}' in st, st
        b, out = sbatch(["--nvram-options=1LM:4"], "true")
        assert wait_done(b) == "FAILED"
        text = out.read_text()
        assert f"jobshm: job {b} on " in text, text
        assert "no room for 4G of persistent memory" in text, text
        assert "reserved" in text
        assert leftovers(mnt, b) == []
        assert_clean(b)
    finally:
        run(["scancel", str(a)])
    wait_done(a)
    assert_clean(a)
    assert leftovers(mnt, a) == []


def test_cleanup_never_follows_links_on_fsdax(fsdax, tmp_path):
    mnt, _ = fsdax
    canary = tmp_path / "canary"
    canary.write_text("keep")
    os.chmod(tmp_path, 0o755)
    jobid, out = sbatch(["--nvram-options=1LM:2"], f"""
ln -s {tmp_path} /dev/shm/to-dir
ln -s {canary} /dev/shm/to-file
mkfifo /dev/shm/fifo
mkdir -p /dev/shm/a/b/c && ln -s / /dev/shm/a/b/c/root
""")
    assert wait_done(jobid) == "COMPLETED", out.read_text()
    assert_clean(jobid)
    assert leftovers(mnt, jobid) == []
    assert canary.read_text() == "keep"


def test_sweep_finds_fsdax_leftovers_after_reboot(fsdax):
    """A reboot empties base_path (/run); the data on fsdax stays.  Plant
    what such a job leaves and let sweep find it by its reservation."""
    mnt, _ = fsdax
    store = mnt / ".jobshm"
    store.mkdir(mode=0o700, exist_ok=True)
    (store / "777").mkdir()
    (store / "777" / "data").write_text("x")
    (store / "777.reserve").write_text(f"{2 << 30} n1\n")
    p = run([str(ROOT / "cli" / "jobshm"), "--conf", str(D / "jobshm.conf"),
             "sweep"])
    assert p.returncode == 0, p.stderr
    assert f"removed {mnt}/.jobshm/777" in p.stdout
    assert leftovers(mnt, 777) == []


def test_quota_caps_the_directory(fsdax):
    mnt, quota = fsdax
    if not quota:
        pytest.skip("this kernel has no XFS quota support (mount -o "
                    "prjquota fails): the cap cannot be shown here")
    jobid, out = sbatch(["--nvram-options=1LM:2"],
                        "head -c 3G /dev/zero > /dev/shm/big; echo rc=$?")
    wait_done(jobid)
    text = out.read_text()
    assert "Disk quota exceeded" in text or "No space left" in text, text
    assert_clean(jobid)
