# SPDX-License-Identifier: GPL-2.0-or-later
"""The bounded rro cache in a real job: k-means whose fragments (1 GiB)
are four times the job's shm (256M) finishes with the baseline's answer,
evicts, and never asks for more than the job's shm."""
import json

from conftest import ROOT, assert_clean, sbatch, wait_done

PY = f"/usr/bin/python3"


def test_kmeans_four_times_the_shm():
    args = "--points 2097152 --dims 64 --fragments 16 --iterations 2"
    jobid, out = sbatch(["--mem=2G", "--shm=256M", "-c2"], f"""
export TMPDIR=$(mktemp -d)
for mode in baseline rro; do
  {PY} {ROOT}/examples/kmeans/kmeans.py --mode $mode {args} --workdir $TMPDIR
done
PYTHONPATH={ROOT}/python {PY} -c 'import jobshm, json; print("STATS", json.dumps(jobshm.stats()))'
rm -rf $TMPDIR
""")
    assert wait_done(jobid, timeout=600) == "COMPLETED", out.read_text()
    text = out.read_text()
    runs = [json.loads(l) for l in text.splitlines() if l.startswith("{")]
    assert [r["mode"] for r in runs] == ["baseline", "rro"], text
    assert runs[0]["checksum"] == runs[1]["checksum"], runs
    st = json.loads(text.split("STATS ", 1)[1].splitlines()[0])
    assert st["evictions"] > 0, st
    assert st["loads"] + st["private_fallbacks"] >= 16, st
    assert "No space left" not in text and "Bus error" not in text, text
    assert_clean(jobid)
