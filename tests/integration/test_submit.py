# SPDX-License-Identifier: GPL-2.0-or-later
"""Refused at submit: a --shm no node can give the job is refused by
sbatch, srun and salloc before anything is queued, in the node's words;
what is only known on the node (memory from a default, a share, a limit
that is a share of the node's RAM, --mem-per-cpu) is left to the node."""
import re

import pytest

from conftest import D, OUT, USER1, run, wait_done

CMDS = ["sbatch", "srun", "salloc"]
MEM_MSG = ("jobshm: --shm=2G (2G) is larger than the job's memory on this "
           "node (1G); ask for more --mem or a smaller --shm")
MAX_MSG = ("jobshm: --shm=3500M (3.4G) is larger than this node's limit "
           "(max_size = 3G)")
MEM_ENV = {"sbatch": "SBATCH_MEM_PER_NODE", "salloc": "SALLOC_MEM_PER_NODE",
           "srun": "SLURM_MEM_PER_NODE"}


def known_jobs():
    """Every job slurmctld knows (MinJobAge keeps ended ones)."""
    p = run(["squeue", "-h", "-a", "-t", "all", "-o", "%i"], check=True)
    return set(p.stdout.split())


def submit(cmd, args, env=(), script=None):
    argv = ["env"] + list(env) + [cmd] + list(args)
    if cmd == "sbatch":
        argv += ["--parsable", "-o", "/dev/null"]
        argv += [str(script)] if script else ["--wrap=true"]
    else:
        argv += ["true"]
    return run(argv, user=USER1, timeout=90)


def assert_refused(p, msg, before):
    assert p.returncode != 0, p.stdout + p.stderr
    lines = [l for l in p.stderr.splitlines() if l.startswith("jobshm:")]
    assert lines == [msg], p.stderr
    assert not p.stdout.strip(), p.stdout          # no job id
    assert "Granted job allocation" not in p.stderr
    assert "queued" not in p.stderr
    assert known_jobs() == before


@pytest.mark.parametrize("cmd", CMDS)
def test_shm_over_mem_refused_at_submit(cmd):
    before = known_jobs()
    assert_refused(submit(cmd, ["--mem=1G", "--shm=2G"]), MEM_MSG, before)


@pytest.mark.parametrize("cmd", CMDS)
def test_shm_over_mem_from_environment_refused(cmd):
    before = known_jobs()
    p = submit(cmd, ["--shm=2G"], env=[f"{MEM_ENV[cmd]}=1024"])
    assert_refused(p, MEM_MSG, before)


def test_shm_over_mem_from_sbatch_lines_refused(tmp_path):
    script = OUT / "submit-lines.sh"
    script.write_text("#!/bin/bash\n#SBATCH --mem=1G\n#SBATCH --shm=2G\n"
                      "echo SHOULD-NOT-RUN\n")
    script.chmod(0o644)
    before = known_jobs()
    assert_refused(submit("sbatch", [], script=script), MEM_MSG, before)


@pytest.mark.parametrize("cmd", CMDS)
def test_shm_over_max_size_refused_at_submit(cmd):
    before = known_jobs()
    assert_refused(submit(cmd, ["--shm=3500M"]), MAX_MSG, before)


@pytest.mark.parametrize("cmd", CMDS)
def test_nvram_2lm_over_max_size_refused_at_submit(cmd):
    before = known_jobs()
    assert_refused(submit(cmd, ["--nvram-options=2LM:4"]),
                   "jobshm: --nvram-options=2LM:4G (4G) is larger than this "
                   "node's limit (max_size = 3G)", before)


def assert_queued(cmd, p, before):
    """Not refused at submit: a job was made (it runs, or the node
    refuses it with the job's id in the message)."""
    assert not [l for l in p.stderr.splitlines()
                if l.startswith("jobshm: --")], p.stderr
    new = known_jobs() - before
    assert len(new) == 1, (p.stdout, p.stderr)
    jobid = int(new.pop())
    if cmd == "sbatch":
        assert int(p.stdout.strip().split(";")[0]) == jobid
    return jobid, wait_done(jobid)


@pytest.mark.parametrize("cmd", CMDS)
def test_possible_request_untouched(cmd):
    before = known_jobs()
    p = submit(cmd, ["--mem=1G", "--shm=512M"])
    assert p.returncode == 0, p.stderr
    assert assert_queued(cmd, p, before)[1] == "COMPLETED"


@pytest.mark.parametrize("args", [
    ["--shm=2G"],                              # memory: DefMemPerCPU
    ["--mem-per-cpu=512M", "--shm=2G"],        # the CPUs are the node's
    ["--mem=3900M", "--shm=90%"],              # a share: the node decides
])
@pytest.mark.parametrize("cmd", CMDS)
def test_unknown_at_submit_left_to_the_node(cmd, args):
    before = known_jobs()
    p = submit(cmd, args)
    jobid, state = assert_queued(cmd, p, before)
    if cmd == "srun":      # the node refused the step, in its words
        assert re.search(rf"jobshm: job {jobid} on n\d: --shm=", p.stderr), \
            p.stderr


@pytest.fixture
def max_share():
    """max_size as a share of RAM: the node's RAM, unknown at submit."""
    conf = D / "jobshm.conf"
    saved = conf.read_text()
    conf.write_text(re.sub(r'(?m)^max_size = .*$', 'max_size = "1%";', saved))
    yield
    conf.write_text(saved)


@pytest.mark.parametrize("cmd", CMDS)
def test_max_size_share_left_to_the_node(cmd, max_share):
    before = known_jobs()
    p = submit(cmd, ["--mem=1G", "--shm=900M"])
    assert_queued(cmd, p, before)
