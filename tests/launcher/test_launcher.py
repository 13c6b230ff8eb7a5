# SPDX-License-Identifier: GPL-2.0-or-later
"""enqueue_jobshm without a cluster: golden --dry-run output, XML against
COMPSs's schemas, and every bad flag refused before anything is sent."""
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# ENQUEUE_JOBSHM: an installed copy (tests/install/test_install.sh)
BIN = os.environ.get("ENQUEUE_JOBSHM", str(ROOT / "launcher" / "enqueue_jobshm"))
GOLDEN = Path(__file__).parent / "golden"
XSD = Path(os.environ.get("COMPSS_XSD", ROOT.parent / "shared" / "compss-xsd"))

CASES = {
    "compss_one_node": ["--worker_in_master_cpus=2", "--cpus_per_node=2",
                        "--shm=1G", "app.py", "arg1"],
    "compss_nvram_shm_wd": ["--num_nodes=2", "--exec_time=10",
                            "--cpus_per_node=48", "--worker_working_dir=shm",
                            "--lang=python", "--nvram_options=1LM:2000",
                            "--tracing=true", "--graph=true",
                            "--log_level=debug", "app.py", "a b", "it's"],
    "exec_two_nodes": ["--runtime=exec", "--num_nodes=2", "--shm=512M",
                       "--job_name=km", "--qos=debug", "--project_name=acct",
                       "--job_dependency=41", "--extra_submit_flag=--exclusive",
                       "python3", "kmeans.py", "--points", "1000"],
    "dask_two_nodes": ["--runtime=dask", "--num_nodes=2", "--cpus_per_node=4",
                       "--shm=2G", "python3", "app.py", "it's"],
}


def dry(args):
    env = dict(os.environ)
    env.pop("SLURM_JOB_ID", None)
    env.pop("COMPSS_HOME", None)
    p = subprocess.run([BIN, "--dry-run"] + args, capture_output=True,
                       text=True, env=env)
    assert p.returncode == 0, p.stderr
    return p.stdout.replace(str(Path(BIN).parent) + "/",
                            "@ROOT@/launcher/").replace(str(ROOT), "@ROOT@")


@pytest.mark.parametrize("case", sorted(CASES))
def test_dry_run_golden(case):
    out = dry(CASES[case])
    golden = GOLDEN / f"{case}.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(out)
    assert out == golden.read_text()


@pytest.mark.parametrize("case", ["compss_one_node", "compss_nvram_shm_wd"])
def test_xml_validates_against_compss_schemas(case, tmp_path):
    if not XSD.is_dir():
        pytest.skip(f"no COMPSs schemas at {XSD}")
    out = dry(CASES[case])
    project = out.split("--- project.xml")[1].split("\n", 1)[1]
    project = project.split("\n--- resources.xml")[0]
    resources = out.split("--- resources.xml ---\n")[1]
    for name, text, xsd in (("project", project, "project_schema.xsd"),
                            ("resources", resources, "resources_schema.xsd")):
        f = tmp_path / f"{name}.xml"
        f.write_text(text)
        p = subprocess.run(["xmllint", "--noout", "--schema",
                            str(XSD / xsd), str(f)], capture_output=True,
                           text=True)
        assert p.returncode == 0, p.stderr


def test_shm_working_dir_and_nvram_type():
    out = dry(CASES["compss_nvram_shm_wd"])
    assert "<WorkingDir>/dev/shm/compss.JOBID</WorkingDir>" in out
    assert "<Type>Non-volatile</Type>" in out
    assert "#SBATCH --nvram-options=1LM:2000" in out
    assert "'it'\\''s'" in out                    # shell-quoted APP_ARGS


@pytest.mark.parametrize("args,msg", [
    (["--num_nodes=0", "app"], "--num_nodes='0': expected a whole number"),
    (["--exec_time=abc", "app"], "--exec_time='abc'"),
    (["--nvram_options=3LM:10", "app"], "expected 1LM:SIZE or 2LM:SIZE"),
    (["--nvram_options=1LM", "app"], "invalid NVRAM option '1LM'"),
    (["--nvram_options=1LM:1", "app"], "from 2 to 4000"),
    (["--nvram_options=1LM:5000", "app"], "from 2 to 4000"),
    (["--nvram_options=2LM:abc", "app"], "invalid NVRAM option '2LM:abc'"),
    (["--frobnicate=1", "app"], "unrecognized option '--frobnicate=1'\n"),
    (["--num_nodes"], "option '--num_nodes' requires an argument"),
    (["--dry-run=yes", "app"], "option '--dry-run' takes no argument"),
    (["-x", "app"], "invalid option -- 'x'"),
    (["--cpus_per_node=2", "--worker_in_master_cpus=4", "app"],
     "--worker_in_master_cpus=4 is larger than --cpus_per_node=2"),
    (["--runtime=exec"], "missing APP"),
    (["--shm=10X", "app"], "--shm: invalid size '10X'"),
    (["--lang=cobol", "app"], "expected one of python, java, c"),
    (["--runtime=mpi", "app"], "--runtime='mpi'"),
    (["--worker_working_dir=relative", "app"], "--worker_working_dir"),
    (["--worker_working_dir=shm", "--worker_in_master_cpus=1", "app"],
     "needs --shm=SIZE"),
    (["--job_name=a\nb", "app"], "must be one line"),
    (["--extra_submit_flag=exclusive", "app"], "expected one sbatch option"),
    (["--worker_in_master_cpus=0", "app"],
     "give --worker_in_master_cpus=1 or more"),
])
def test_bad_input_refused_before_submit(args, msg, tmp_path):
    # a fake sbatch on PATH proves nothing is submitted
    fake = tmp_path / "sbatch"
    fake.write_text(f"#!/bin/sh\ntouch {tmp_path}/SUBMITTED\n")
    fake.chmod(0o755)
    env = dict(os.environ, PATH=f"{tmp_path}:{os.environ['PATH']}")
    p = subprocess.run([BIN] + args, capture_output=True, text=True, env=env)
    assert p.returncode != 0
    assert p.stderr.startswith("enqueue_jobshm: "), p.stderr
    assert msg in p.stderr, p.stderr
    assert not (tmp_path / "SUBMITTED").exists()


def test_help_and_version():
    p = subprocess.run([BIN, "--help"], capture_output=True, text=True)
    assert p.returncode == 0 and "--worker_working_dir" in p.stdout
    p = subprocess.run([BIN, "--version"], capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout.startswith("enqueue_jobshm ")


def test_stage_lines_before_the_application(tmp_path):
    env = tmp_path / "my-env.tar.gz"
    env.write_bytes(b"")
    out = dry(["--runtime=exec", f"--stage={env}", f"--stage={tmp_path}:py",
               "python3", "app.py"])
    lines = out.splitlines()
    stage = [i for i, l in enumerate(lines) if "jobshm.stage" in l]
    app = [i for i, l in enumerate(lines) if "jobshm-app" in l]
    assert len(stage) == 4 and stage[-1] < app[0], out
    assert f"'{env}' --name 'my-env'" in out          # from the file name
    assert f"--name 'py'" in out
    assert lines[stage[0]].startswith('srun --nodes="$SLURM_NNODES" '
                                      "--ntasks-per-node=1 ")


@pytest.mark.parametrize("src,name", [
    ("my.data.tar.gz", "my.data"), ("env.v2.tgz", "env.v2"),
    ("set.tar", "set"), ("dir.v3", "dir.v3"), ("plain", "plain"),
])
def test_default_stage_name_is_the_stages_own(tmp_path, src, name):
    """One owner of the default name: the launcher says what
    `jobshm stage` would (the library's jobshm_stage_name)."""
    path = tmp_path / src
    path.mkdir() if "." not in src or src.endswith(".v3") else \
        path.write_bytes(b"")
    out = dry(["--runtime=exec", f"--stage={path}", "app"])
    assert f"'{path}' --name '{name}'" in out, out


@pytest.mark.parametrize("val,msg", [
    ("/nonexistent/env", "--stage='/nonexistent/env': a readable"),
    ("/tmp:../x", "--stage='/tmp:../x': a readable"),
    ("/tmp:bad name", "--stage='/tmp:bad name': segment name 'bad name'"),
])
def test_bad_stage_refused(val, msg):
    p = subprocess.run([BIN, "--dry-run", f"--stage={val}", "app"],
                       capture_output=True, text=True)
    assert p.returncode != 0 and p.stderr.startswith("enqueue_jobshm: "), p
    assert msg in p.stderr, p.stderr
