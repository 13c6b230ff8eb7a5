# SPDX-License-Identifier: GPL-2.0-or-later
"""jobshm suggest on usage logs written here, with known answers (no
Slurm): the figures per user and job name, the --shm to ask for, the
flags, the filters, bad input, and --svg rendered by rsvg-convert with
one point per record where the log puts it.  Real jobs' logs:
tests/integration/test_usage.py::test_suggest_from_real_jobs."""
import json
import os
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLI = os.environ.get("JOBSHM_CLI", str(ROOT / "cli" / "jobshm"))
M = 1 << 20
G = 1 << 30
NOW = int(time.time())
SVG = "{http://www.w3.org/2000/svg}"


def rec(job, size, peak, name=None, uid=0, full=0, node="n1", ago=3600):
    r = {"job": job, "node": node, "uid": uid, "kind": "tmpfs",
         "size": size, "peak": peak, "final": 0, "full": full,
         "start": NOW - ago - 60, "end": NOW - ago}
    if name is not None:
        r["name"] = name
    return json.dumps(r)


@pytest.fixture
def log(tmp_path):
    lines = [rec(100 + i, 8 * G, (i + 1) * 100 * M, "train")
             for i in range(20)]
    lines += [rec(200, G, G, "prep", full=3),
              rec(300, 2 * G, 300 * M, "two-nodes", node="n1"),
              rec(300, 2 * G, 500 * M, "two-nodes", node="n2"),
              rec(400, 512 * M, 400 * M),               # an older jobshm's
              "not json at all",
              rec(500, 64 * M, 60 * M, "old", ago=40 * 86400),
              rec(600, 256 * M, 10 * M, "other-user", uid=65534),
              rec(800, 4 * G, 800 * M, "headroom")]
    p = tmp_path / "usage.log"
    p.write_text("\n".join(lines) + "\n")
    return p


def suggest(*args, conf=None):
    env = dict(os.environ)
    env.pop("JOBSHM_CONF", None)
    cmd = [CLI] + (["--conf", str(conf)] if conf else []) + ["suggest"]
    return subprocess.run(cmd + [str(a) for a in args], capture_output=True,
                          text=True, env=env, stdin=subprocess.DEVNULL,
                          timeout=60)


def groups(p):
    assert p.returncode == 0, p.stderr
    return {(g["uid"], g["name"]): g for g in json.loads(p.stdout)}


def test_figures_and_advice(log):
    g = groups(suggest("--json", log))
    train = g[(0, "train")]
    # peaks 100M..2000M: p50 is the 10th (1000M), p95 the 19th (1900M);
    # 1900M plus a quarter is 2375M, rounded up to 3G (... 2G, 3G, 4G)
    assert (train["runs"], train["records"], train["asked_median"],
            train["peak_p50"], train["peak_p95"], train["peak_max"]) == \
        (20, 20, 8 * G, 1000 * M, 1900 * M, 2000 * M), train
    assert (train["suggest"], train["suggest_bytes"]) == ("3G", 3 * G)
    assert (train["oversized"], train["full"]) == (20, 0), train
    # filled: its need is not known; twice what it had
    prep = g[(0, "prep")]
    assert (prep["full"], prep["suggest"]) == (1, "2G"), prep
    assert "filled up in 1 of 1" in prep["note"], prep
    # one job on two nodes: one run, two records; 500M + 25% -> 768M
    two = g[(0, "two-nodes")]
    assert (two["runs"], two["records"], two["suggest"]) == (1, 2,
                                                               "768M"), two
    # an older log line without a name: grouped under ""
    assert g[(0, "")]["jobs"] == [400]
    assert g[(65534, "other-user")]["suggest"] == "16M"
    # 800M plus a quarter is 1000M: 1G (with a half, 1536M)
    assert g[(0, "headroom")]["suggest"] == "1G", g[(0, "headroom")]


def test_table_and_bad_line(log):
    p = suggest(log)
    assert p.returncode == 0, p.stderr
    assert p.stderr == f"jobshm: suggest: {log}:25: not a usage record " \
        "(skipped)\n", p.stderr
    head, *rows = p.stdout.splitlines()
    assert head.split()[:3] == ["USER", "NAME", "RUNS"], head
    train = [r for r in rows if r.split()[1] == "train"]
    assert len(train) == 1 and "--shm=3G" in train[0], rows
    assert "asked 4x or more what it used in 20 of 20" in train[0], train
    assert [r.split()[1] for r in rows if r.startswith("root")][0] == "-"


def test_filters(log):
    g = groups(suggest("--json", "--name", "train", log))
    assert list(g) == [(0, "train")]
    g = groups(suggest("--json", "--user", "65534", log))
    assert list(g) == [(65534, "other-user")]
    g = groups(suggest("--json", "--user", "root", log))
    assert (0, "old") in g and (65534, "other-user") not in g
    g = groups(suggest("--json", "--since", "30", log))
    assert (0, "old") not in g and (0, "train") in g


def test_max_size_is_named(log, tmp_path):
    conf = tmp_path / "jobshm.conf"
    conf.write_text('max_size = "2G";\n')
    g = groups(suggest("--json", "--name", "train", log, conf=conf))
    assert "above max_size 2G" in g[(0, "train")]["note"], g


@pytest.mark.parametrize("args,rc,says", [
    (["--since", "0"], 2, "invalid --since '0': expected a whole number "
     "of days from 1"),
    (["--since", "3x"], 2, "invalid --since '3x'"),
    (["--user", "no-such-user-here"], 2, "unknown user "
     "'no-such-user-here': expected a user name or a uid"),
    (["--bogus"], 2, "unrecognized option '--bogus'"),
    (["/nonexistent/usage.log"], 1, "cannot read '/nonexistent/usage.log': "
     "No such file or directory"),
])
def test_bad_input(args, rc, says):
    p = suggest(*args)
    assert p.returncode == rc, (p.returncode, p.stderr)
    assert p.stderr.startswith("jobshm: suggest: "), p.stderr
    assert says in p.stderr, p.stderr
    assert p.stdout == "", p.stdout


def test_nothing_to_say(tmp_path, log):
    empty = tmp_path / "empty.log"
    empty.write_text("")
    p = suggest(empty)
    assert p.returncode == 1 and "no usage records" in p.stderr, p.stderr
    p = suggest("--name", "nothing-by-this-name", log)
    assert p.returncode == 1 and "no usage records match" in p.stderr
    conf = tmp_path / "off.conf"
    conf.write_text('usage_log = "";\n')
    p = suggest(conf=conf)
    assert p.returncode == 1 and "usage_log is off" in p.stderr, p.stderr


@pytest.mark.skipif(not shutil.which("rsvg-convert"),
                    reason="needs rsvg-convert (librsvg2-bin; "
                           "tests/cluster/deps.sh installs it)")
def test_svg_renders_and_matches_the_log(log, tmp_path):
    lines = log.read_text().splitlines()
    # a name that is markup: escaped, the picture still parses
    lines.append(rec(700, 32 * M, 8 * M, "<b>&'\""))
    log.write_text("\n".join(lines) + "\n")
    svg = tmp_path / "s.svg"
    p = suggest("--svg", svg, log)
    assert p.returncode == 0, p.stderr
    png = tmp_path / "s.png"
    r = subprocess.run(["rsvg-convert", "-o", str(png), str(svg)],
                       capture_output=True, text=True)
    assert r.returncode == 0 and png.stat().st_size > 5000, r.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    root = ET.parse(svg).getroot()
    pts = [c for c in root.iter(SVG + "circle")
           if "job" in c.get("class", "").split()]
    want = [json.loads(l) for l in lines if l.startswith("{")]
    got = sorted((int(c.get("data-job")), int(c.get("data-size")),
                  int(c.get("data-peak"))) for c in pts)
    assert got == sorted((r["job"], r["size"], r["peak"]) for r in want)
    full = [int(c.get("data-job")) for c in pts if "full" in c.get("class")]
    assert full == [200]
    # log scales, both axes alike: 4x the size is the same step anywhere
    x = {(int(c.get("data-job")), int(c.get("data-size"))):
         float(c.get("cx")) for c in pts}
    y = {int(c.get("data-job")): float(c.get("cy")) for c in pts}
    d1 = x[(600, 256 * M)] - x[(500, 64 * M)]
    d2 = x[(100, 8 * G)] - x[(300, 2 * G)]
    assert abs(d1 - d2) < 0.2 and d1 > 0, (d1, d2)
    # higher peak, higher on the page (smaller y); job 119 peaked at 2000M
    assert y[119] < y[100]
    titles = [c.find(SVG + "title").text for c in pts
              if c.get("data-job") == "700"]
    assert titles == ["job 700 (root, <b>&'\")"], titles
