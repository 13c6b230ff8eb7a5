# SPDX-License-Identifier: GPL-2.0-or-later
"""Bad input: refused before anything is queued, or failing only the job."""
import shutil

import pytest

from conftest import (CLI, D, USER1, assert_clean, run, sbatch, wait_done)

BAD = ["abc", "-1G", "10X", "99999999T", "150%", ""]


def queued():
    return run(["squeue", "-h", "-a", "-o", "%i"], check=True).stdout.split()


@pytest.mark.parametrize("value", BAD)
@pytest.mark.parametrize("cmd", ["sbatch", "srun", "salloc"])
def test_bad_size_refused_at_submit(cmd, value):
    before = queued()
    args = [cmd, f"--shm={value}"]
    args += ["--wrap=true"] if cmd == "sbatch" else ["true"]
    p = run(args, user=USER1, timeout=30)
    assert p.returncode != 0
    first = p.stderr.splitlines()[0]
    assert first.startswith("jobshm: --shm: invalid size"), p.stderr
    assert f"'{value}'" in first
    assert "512M" in first or "1-100%" in first or "too large" in first
    assert queued() == before
    last = run(["squeue", "-h", "-a", "-o", "%i"]).stdout
    assert last.split() == before


# What only the node knows (a --shm over --mem or an absolute max_size is
# refused at submit: test_submit.py): the job's memory from DefMemPerCPU,
# a share of it
@pytest.mark.parametrize("args,why", [
    (["--shm=2G"], "larger than the job's memory on this node"),
    (["--mem=3900M", "--shm=90%"], "larger than this node's limit"),
])
def test_over_node_limits_fails_job_not_node(args, why):
    jobid, out = sbatch(args, "echo SHOULD-NOT-RUN")
    assert wait_done(jobid) == "FAILED"
    text = out.read_text()
    assert "SHOULD-NOT-RUN" not in text
    lines = [l for l in text.splitlines() if l.startswith("jobshm:")]
    assert lines and why in lines[0], text
    assert_clean(jobid)
    # node_never_drained (autouse) checks the nodes are idle afterwards


def test_over_limit_in_srun_fails_step():
    p = run(["srun", "--shm=2G", "echo", "SHOULD-NOT-RUN"], user=USER1)
    assert p.returncode != 0
    assert "SHOULD-NOT-RUN" not in p.stdout
    assert "jobshm: job" in p.stderr and "job's memory" in p.stderr


@pytest.fixture
def broken_conf():
    conf = D / "jobshm.conf"
    saved = conf.read_text()
    conf.write_text(saved + "bogus_key = 1;\n")
    yield conf, len(saved.splitlines()) + 1
    conf.write_text(saved)


def test_broken_config_fails_job_clearly(broken_conf):
    conf, line = broken_conf
    jobid, out = sbatch(["--mem=512M", "--shm=64M"], "echo SHOULD-NOT-RUN")
    assert wait_done(jobid) == "FAILED"
    text = out.read_text()
    assert "SHOULD-NOT-RUN" not in text
    assert f"jobshm: {conf}:{line}: unknown key 'bogus_key'" in text, text
    assert_clean(jobid)
    p = run([CLI, "check-config", str(conf)])
    assert p.returncode == 1
    assert p.stderr.startswith(f"jobshm: {conf}:{line}: unknown key")


def test_check_config_ok():
    p = run([CLI, "check-config", str(D / "jobshm.conf")])
    assert p.returncode == 0 and ": ok" in p.stdout


def test_check_config_names_a_missing_nvram_path(tmp_path):
    conf = tmp_path / "nv.conf"
    conf.write_text(f'nvram_paths = [ "{tmp_path}", "/nonexistent/pmem" ];\n')
    p = run([CLI, "check-config", str(conf)])
    assert p.returncode == 1
    assert any(l.startswith("jobshm: nvram_paths: '/nonexistent/pmem': "
                            "No such file or directory")
               for l in p.stderr.splitlines()), p.stderr
    assert f"nvram path {tmp_path}: " in p.stdout and "parsed, but" in p.stdout


@pytest.mark.parametrize("args,msg", [
    (["frobnicate"], "unknown command 'frobnicate'"),
    (["--bogus"], "unrecognized option"),
    ([], "no command given"),
    (["status", "extra"], "unexpected argument 'extra'"),
    (["--conf", "/nonexistent.conf", "status"], "/nonexistent.conf: cannot read"),
    (["report"], "report: no JOBID given"),
    (["report", "12x"], "report: invalid job id '12x': expected a job number"),
    (["report", "4294967296"], "invalid job id '4294967296'"),
])
def test_cli_bad_usage(args, msg):
    p = run([CLI] + args)
    assert p.returncode != 0
    assert msg in p.stderr and p.stderr.startswith(("jobshm:", CLI)), p.stderr
