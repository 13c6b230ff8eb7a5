# SPDX-License-Identifier: GPL-2.0-or-later
"""enqueue_jobshm's command line without a cluster (issue 31): a missing
APP said first, defaults valid together, the option a misspelt one means,
and --parsable.  A fake sbatch on PATH stands for Slurm's: it keeps its
arguments and the script it is given and answers as sbatch does."""
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("ENQUEUE_JOBSHM", str(ROOT / "launcher" / "enqueue_jobshm"))

# sbatch's answers: "Submitted batch job N", with --parsable "N[;CLUSTER]"
FAKE_SBATCH = """#!/bin/sh
printf '%s\\n' "$@" >"$FAKE/args"
cat >"$FAKE/script"
for a in "$@"; do
    [ "$a" = --parsable ] && { echo "$FAKE_PARSABLE"; exit 0; }
done
echo "Submitted batch job 4242"
"""


def launch(args, tmp_path, parsable="4242"):
    fake = tmp_path / "sbatch"
    fake.write_text(FAKE_SBATCH)
    fake.chmod(0o755)
    env = dict(os.environ, PATH=f"{tmp_path}:{os.environ['PATH']}",
               FAKE=str(tmp_path), FAKE_PARSABLE=parsable)
    env.pop("SLURM_JOB_ID", None)
    return subprocess.run([BIN] + args, capture_output=True, text=True,
                          env=env)


TRY = "Try 'enqueue_jobshm --help' for more information."


def refused(p, tmp_path):
    """stderr's lines, the first "enqueue_jobshm: ...", nothing submitted"""
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert not (tmp_path / "script").exists()
    assert p.stderr.startswith("enqueue_jobshm: "), p.stderr
    return p.stderr.splitlines()


def test_no_arguments_says_app_is_missing_first(tmp_path):
    first, *rest = refused(launch([], tmp_path), tmp_path)
    assert "missing APP" in first, first
    assert rest == [TRY]            # and nothing about the defaults


@pytest.mark.parametrize("args,wim", [
    ([], 1), (["--cpus_per_node=4"], 4), (["--num_nodes=2"], 0),
])
def test_app_alone_with_the_defaults_is_submitted(args, wim, tmp_path):
    """On one node the master is the only worker and runs tasks on all its
    CPUs; on more, the others are the workers (as before)."""
    p = launch(args + ["app.py"], tmp_path)
    assert p.returncode == 0 and p.stderr == "", p.stderr
    assert p.stdout == "Submitted batch job 4242\n"
    assert f" --worker_in_master_cpus={wim} " in \
        (tmp_path / "script").read_text()


@pytest.mark.parametrize("opt,meant", [
    ("--num_node=2", "--num_nodes"),       # a prefix is not taken as it
    ("--num-nodes=2", "--num_nodes"),      # - for _
    ("--dry_run", "--dry-run"),            # _ for -
    ("--lnag=c", "--lang"),                # two letters swapped
    ("--exec_tmie=5", "--exec_time"),
    ("--parseable", "--parsable"),
    ("--log=debug", "--log_level"),        # the one option it begins
    ("--worker_in_master=1", "--worker_in_master_cpus"),
])
def test_misspelt_option_names_the_one_meant(opt, meant, tmp_path):
    first, *rest = refused(launch(["--runtime=exec", opt, "app"],
                                  tmp_path), tmp_path)
    assert first == (f"enqueue_jobshm: unrecognized option '{opt}'; "
                     f"did you mean '{meant}'?")
    assert rest == [TRY]


@pytest.mark.parametrize("opt", [
    "--frobnicate=1",
    "--job=x",           # begins two options: neither is guessed
    "--host=a",          # near the hidden --hosts, which is never offered
    "--tag=x",           # 2 edits from --lang: too many for 3 letters
])
def test_unknown_option_without_a_guess(opt, tmp_path):
    first, *rest = refused(launch(["--runtime=exec", opt, "app"],
                                  tmp_path), tmp_path)
    assert first == f"enqueue_jobshm: unrecognized option '{opt}'"
    assert rest == [TRY]


@pytest.mark.parametrize("answer", ["4242", "4242;cluster_a"])
def test_parsable_prints_only_the_job_id(answer, tmp_path):
    args = ["--runtime=exec", "--num_nodes=2", "python3", "app.py"]
    p = launch(["--parsable"] + args, tmp_path, parsable=answer)
    assert p.returncode == 0 and p.stderr == "", p.stderr
    assert p.stdout == answer + "\n"
    assert "--parsable" in (tmp_path / "args").read_text().splitlines()
    # the same script as without it, which --dry-run prints
    dry = subprocess.run([BIN, "--dry-run"] + args, capture_output=True,
                         text=True)
    assert (tmp_path / "script").read_text() == dry.stdout
    # and it chains: the id is a --job_dependency
    jobid = p.stdout.strip().split(";")[0]
    p = launch(["--parsable", f"--job_dependency={jobid}"] + args, tmp_path)
    assert p.returncode == 0, p.stderr
    assert "#SBATCH --dependency=afterany:4242\n" in \
        (tmp_path / "script").read_text()


def test_without_parsable_sbatch_says_it_all(tmp_path):
    p = launch(["--runtime=exec", "app"], tmp_path)
    assert p.returncode == 0 and p.stdout == "Submitted batch job 4242\n"
    assert "--parsable" not in (tmp_path / "args").read_text()


def test_parsable_in_help_and_dry_run_unchanged():
    p = subprocess.run([BIN, "--help"], capture_output=True, text=True)
    assert "--parsable" in p.stdout
    args = ["--dry-run", "--runtime=exec", "app"]
    plain = subprocess.run([BIN] + args, capture_output=True, text=True)
    p = subprocess.run([BIN, "--parsable"] + args, capture_output=True,
                       text=True)
    assert p.returncode == 0 and p.stdout == plain.stdout
