# SPDX-License-Identifier: GPL-2.0-or-later
"""Placement on the cluster: real mounts on this (single-NUMA) host, and
hwloc XML topologies standing in for 2-socket, PMem and 2LM nodes."""
import pytest

from conftest import (D, ROOT, USER1, assert_clean, conf_extra,  # noqa: F401
                      run,
                      sbatch, wait_done, wait_file)

TOPO = ROOT / "tests" / "topo"
SHOW = """
grep " /dev/shm " /proc/self/mountinfo | tail -1
env | grep -E '^JOBSHM_(MODE|MPOL|NUMA_NODES)=' | sort
"""


@pytest.fixture
def topology(conf_extra):
    return lambda name: conf_extra(f'topology_xml = "{TOPO / name}";')


def test_huge_pages_from_config(conf_extra):
    conf_extra('huge = "within_size";')
    state, text = job(["--shm=64M"])
    assert state == "COMPLETED", text
    assert "huge=within_size" in text


def _shmem_huge_available():
    try:
        with open("/sys/kernel/mm/transparent_hugepage/shmem_enabled") as f:
            modes = f.read()
    except OSError:
        return False
    return "within_size" in modes and "[deny]" not in modes


def test_huge_pages_by_default_where_the_kernel_has_them():
    state, text = job(["--shm=64M"])
    assert state == "COMPLETED", text
    assert ("huge=within_size" in text) == _shmem_huge_available(), text


def test_huge_pages_turned_off(conf_extra):
    conf_extra('huge = "never";')
    state, text = job(["--shm=64M"])
    assert state == "COMPLETED", text
    assert "huge=within_size" not in text, text


def job(args, script=SHOW):
    jobid, out = sbatch(["--mem=3G"] + args, script)
    state = wait_done(jobid)
    assert_clean(jobid)
    return state, out.read_text()


def test_interleave_on_this_host():
    jobid, out = sbatch(["--mem=1G", "--shm=64M", "--shm-mpol=interleave"],
                        SHOW + "echo READY; sleep 30")
    wait_file(out, "READY")
    st = run([str(ROOT / "cli" / "jobshm"), "--conf", str(D / "jobshm.conf"),
              "status", "--json"], check=True).stdout
    assert f'"job": {jobid}' in st and '"mpol": "interleave:0"' in st, st
    assert '"kind": "tmpfs"' in st, st
    run(["scancel", str(jobid)], check=True)
    wait_done(jobid)
    assert_clean(jobid)
    text = out.read_text()
    assert "mpol=interleave:0" in text
    assert "JOBSHM_MPOL=interleave" in text and "JOBSHM_NUMA_NODES=0" in text
    assert "JOBSHM_MODE=tmpfs" in text


def test_bind_to_missing_node_fails_the_job_not_the_node():
    state, text = job(["--shm=64M", "--shm-mpol=bind:99"])
    assert state == "FAILED"
    assert "jobshm: job" in text and "bind:99" in text
    assert "NUMA nodes are 0" in text


@pytest.mark.parametrize("cmd", ["sbatch", "srun", "salloc"])
@pytest.mark.parametrize("opt,val", [
    ("shm-mpol", "sideways"), ("nvram-options", "3LM:10"),
    ("nvram-options", "1LM"), ("nvram-options", "1LM:1"),
    ("nvram-options", "1LM:5000"), ("nvram-options", "2LM:abc")])
def test_bad_placement_refused_at_submit(cmd, opt, val):
    args = [cmd, f"--{opt}={val}"] + (["--wrap=true"] if cmd == "sbatch"
                                      else ["true"])
    p = run(args, user=USER1, timeout=30)
    assert p.returncode != 0
    assert p.stderr.startswith(f"jobshm: --{opt}: "), p.stderr
    assert f"'{val}'" in p.stderr


@pytest.mark.parametrize("cmd", ["sbatch", "srun", "salloc"])
def test_help_lists_placement_options(cmd):
    out = run([cmd, "--help"]).stdout
    assert "--shm-mpol=POLICY" in out and "--nvram-options=MODE:SIZE" in out


def test_no_nvram_here():
    for mode in ("1LM:2", "2LM:2"):
        state, text = job([f"--nvram-options={mode}"])
        assert state == "FAILED"
        assert f"--nvram-options={mode[:3]} asked, but this node is in " \
               "mode 'no NVRAM'" in text, text


def test_2lm_node_gets_ordinary_tmpfs(topology):
    topology("mem-2lm.xml")
    state, text = job(["--nvram-options=2LM:2"])
    assert state == "COMPLETED", text
    assert "size=2097152k" in text and "mpol=" not in text
    assert "JOBSHM_MODE=2LM" in text


def test_1lm_refused_on_a_2lm_node(topology):
    topology("mem-2lm.xml")
    state, text = job(["--nvram-options=1LM:2"])
    assert state == "FAILED" and "mode '2LM'" in text, text


def test_1lm_binds_to_the_pmem_numa_nodes(topology):
    """The XML says nodes 2-3 are PMem; this host has only node 0, so the
    kernel refuses the mount -- and the message shows the binding."""
    topology("pmem-1lm.xml")
    state, text = job(["--nvram-options=1LM:2"])
    assert state == "FAILED"
    assert "mpol=bind:2-3" in text, text


def test_two_socket_topology_picks_the_job_numa_node(topology):
    topology("dram-2socket.xml")
    state, text = job(["-c1", "--shm=64M", "--shm-mpol=local"])
    assert state == "COMPLETED", text      # core 0 -> NUMA node 0
    assert "mpol=bind:0" in text and "JOBSHM_NUMA_NODES=0" in text
