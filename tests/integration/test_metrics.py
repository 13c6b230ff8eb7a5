# SPDX-License-Identifier: GPL-2.0-or-later
"""Per-job metrics for Prometheus's node exporter (issue 33): with
metrics_dir set, a running --shm job's series are served by a real node
exporter (Debian's, started here on a loopback port with its textfile
collector on that directory), with the right values, parsed by a real
parser (prometheus_client's); gone after the job's end; the node's
totals file counts the job while it runs and not after."""
import shutil
import socket
import subprocess
import time
import urllib.request

import pytest

from conftest import D, assert_clean, sbatch, wait_done, wait_file

EXPORTER = shutil.which("prometheus-node-exporter")
try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    text_string_to_metric_families = None

pytestmark = pytest.mark.skipif(
    not EXPORTER or not text_string_to_metric_families,
    reason="needs prometheus-node-exporter and python3-prometheus-client "
           "(tests/cluster/deps.sh installs them)")
MiB = 1 << 20


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def exporter(conf_extra):
    d = D / "metrics"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(mode=0o755)
    conf_extra(f'metrics_dir = "{d}";')
    port = free_port()
    p = subprocess.Popen([EXPORTER, f"--web.listen-address=127.0.0.1:{port}",
                          "--collector.disable-defaults",
                          "--collector.textfile",
                          f"--collector.textfile.directory={d}"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/metrics"
    end = time.time() + 20
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            break
        except OSError:
            if time.time() > end:
                p.kill()
                raise
            time.sleep(0.2)
    yield d, url
    p.kill()
    p.wait()
    shutil.rmtree(d, ignore_errors=True)


def scrape(url):
    """{(name, labels as a frozenset): value} of every jobshm sample."""
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name.startswith("jobshm_"):
                out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def job_series(samples, jobid):
    return {name: (dict(labels), v) for (name, labels), v in samples.items()
            if dict(labels).get("jobid") == str(jobid)}


def test_a_running_jobs_metrics_are_scraped_and_gone_after(exporter):
    d, url = exporter
    jobid, out = sbatch(["-w", "n1", "--mem=256M", "--shm=64M"], """
dd if=/dev/zero of=/dev/shm/data bs=1M count=24 status=none
echo READY; sleep 60
""")
    wait_file(out, "READY")
    end = time.time() + 15
    while True:          # within a usage_interval or two of the write
        got = job_series(scrape(url), jobid)
        if got.get("jobshm_job_used_bytes", ({}, 0))[1] >= 24 * MiB:
            break
        assert time.time() < end, (got, list(d.iterdir()))
        time.sleep(0.5)
    labels, size = got["jobshm_job_size_bytes"]
    assert size == 64 * MiB
    assert labels == {"jobid": str(jobid), "user": "jobshm-u1", "node": "n1"}
    assert 24 * MiB <= got["jobshm_job_used_bytes"][1] < 26 * MiB
    assert got["jobshm_job_peak_bytes"][1] >= 24 * MiB
    assert got["jobshm_job_full_total"][1] == 0
    assert got["jobshm_job_info"][0]["kind"] == "tmpfs"
    nodes = {dict(l)["node"]: v for (n, l), v in scrape(url).items()
             if n == "jobshm_node_jobs"}
    assert nodes.get("n1", 0) >= 1, nodes
    # a scrape never reads half a file: no temporary is ever left
    assert not [f for f in d.iterdir() if f.name.startswith(".")]
    subprocess.run(["scancel", str(jobid)], check=True)
    wait_done(jobid)
    assert_clean(jobid)
    assert not job_series(scrape(url), jobid)
    assert not list(d.glob(f"jobshm-job-{jobid}-*"))
    nodes = {dict(l)["node"]: v for (n, l), v in scrape(url).items()
             if n == "jobshm_node_admitted_bytes"}
    assert nodes.get("n1", 0) == 0, nodes


def test_a_metrics_dir_others_can_write_is_never_used(exporter):
    d, url = exporter
    d.chmod(0o777)        # a user could plant or swap files here
    jobid, out = sbatch(["-w", "n1", "--mem=256M", "--shm=16M"],
                        "echo READY; sleep 3")
    assert wait_done(jobid) == "COMPLETED", out.read_text()
    assert list(d.iterdir()) == []
