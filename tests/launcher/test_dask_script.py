# SPDX-License-Identifier: GPL-2.0-or-later
"""enqueue_jobshm --runtime=dask's batch script, without a cluster: every
Dask process speaks TLS with the job's own credentials and listens on the
node's address only, and the script runs under bash's syntax check."""
import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("ENQUEUE_JOBSHM", str(ROOT / "launcher" / "enqueue_jobshm"))


def script():
    p = subprocess.run([BIN, "--dry-run", "--runtime=dask", "--num_nodes=2",
                        "--cpus_per_node=3", "python3", "app.py"],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return p.stdout


def line(text, word):
    found = [l for l in text.splitlines() if word in l and
             not l.startswith("#")]
    assert len(found) == 1, (word, found)
    return found[0]


def test_dask_is_tls_only_with_the_jobs_credentials():
    s = script()
    tls = line(s, "tls=(")
    for flag in ("--protocol tls", '--tls-ca-file "$JOBSHM_DASK_TLS/ca.pem"',
                 '--tls-cert "$JOBSHM_DASK_TLS/cert.pem"',
                 '--tls-key "$JOBSHM_DASK_TLS/key.pem"'):
        assert flag in tls, tls
    for role in ("dask_scheduler", "dask_worker"):
        assert '"${tls[@]}"' in line(s, role)
    assert "export DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION=True\n" in s
    assert "tcp" not in s
    # made in the job, installed by one task per node, then used
    assert s.index("jobshm.dask install") < s.index("dask_scheduler")


def test_dask_listens_on_the_nodes_address_only():
    s = script()
    for role in ("dask_scheduler", "dask_worker"):
        ln = line(s, role)
        assert '--host "$a"' in ln and '--dashboard-address "$a:0"' in ln
        assert "0.0.0.0" not in ln and "--interface" not in ln
    assert line(s, "dask_worker").count("a=$(/usr/bin/python3 -m jobshm.dask "
                                        "address)") == 1
    assert "bash -ec" in line(s, "dask_worker")    # no address: no worker


def test_dask_scheduler_file_is_private():
    s = script()
    assert re.search(r'JOBSHM_DASK_SCHEDULER_FILE="\$JOBSHM_DASK_TLS/'
                     r'scheduler.json"', s)
    assert "(umask 077; exec " in line(s, "dask_scheduler")
    assert "SLURM_SUBMIT_DIR" not in line(s, "JOBSHM_DASK_SCHEDULER_FILE=")
    assert "--scheduler-file" not in line(s, "dask_worker")


def test_dask_script_is_valid_bash():
    p = subprocess.run(["bash", "-n"], input=script(), capture_output=True,
                       text=True)
    assert p.returncode == 0, p.stderr
