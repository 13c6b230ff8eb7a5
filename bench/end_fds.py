#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""A job's end beside many descriptors (issue 30): does it grow with them?

bench/end_fds.c, built against this tree's lib/libjobshm.a (and, with
BENCH_BEFORE=COMMIT, against that commit's), ends a tmpfs job that cannot
be sealed (a file of the job unlinked and kept open: where 0.4 searched
every process on the node) with P processes of the job's user holding F
descriptors each beside it, against the same end with none.  Runs
alternate (quiet, busy) within each pair.  Reported per build: the
median end in ms of each, and the median of the paired busy/quiet ratios
with a 95% bootstrap interval (pairs resampled).

  BENCH_PROCS (16), BENCH_FDS (15000), BENCH_PAIRS (20), BENCH_BEFORE,
  BENCH_OUT=PREFIX: PREFIX.txt and PREFIX.json.  Needs root.
"""
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import lifecycle
from lifecycle import ROOT
from jobs_per_node import checkout

PROCS = int(os.environ.get("BENCH_PROCS", "16"))
FDS = int(os.environ.get("BENCH_FDS", "15000"))
PAIRS = int(os.environ.get("BENCH_PAIRS", "20"))
BEFORE = os.environ.get("BENCH_BEFORE", "")


def build(tree, out):
    return lifecycle.build(tree, out, "bench/end_fds.c")


def one(prog, procs, tmp):
    base = Path(tempfile.mkdtemp(dir=tmp))
    base.chmod(0o755)
    p = subprocess.run(["unshare", "-m", "--propagation", "shared",
                        str(prog), str(procs), str(FDS), str(base)],
                       capture_output=True, text=True)
    subprocess.run(["umount", "-R", "-l", str(base)], capture_output=True)
    shutil.rmtree(base, ignore_errors=True)
    if p.returncode:
        sys.exit(f"end_fds: {prog}: {p.stderr.strip()}")
    return float(p.stdout.split()[0])


def interval(ratios, n=2000):
    meds = sorted(statistics.median(random.choices(ratios, k=len(ratios)))
                  for _ in range(n))
    return meds[int(0.025 * n)], meds[int(0.975 * n) - 1]


def main():
    if os.geteuid():
        sys.exit("end_fds: needs root (mounts, setuid)")
    random.seed(1)
    tmp = Path(tempfile.mkdtemp(prefix="jobshm-endfds-"))
    tmp.chmod(0o755)
    progs = {"current": build(ROOT, tmp / "end_fds")}
    if BEFORE:
        progs[f"before ({BEFORE})"] = build(checkout(BEFORE),
                                            tmp / "end_fds-before")
    res = {name: {"quiet": [], "busy": []} for name in progs}
    for _ in range(PAIRS):
        for name, prog in progs.items():
            res[name]["quiet"].append(one(prog, 0, tmp))
            res[name]["busy"].append(one(prog, PROCS, tmp))
    shutil.rmtree(tmp, ignore_errors=True)
    lines = [f"end_fds: a held tmpfs job's end, {PROCS} x {FDS} descriptors "
             f"beside it against none, {PAIRS} alternated pairs"]
    for name, r in res.items():
        ratios = [b / q for b, q in zip(r["busy"], r["quiet"])]
        lo, hi = interval(ratios)
        r["ratio"], r["interval"] = statistics.median(ratios), [lo, hi]
        lines.append(f"  {name:24} quiet {statistics.median(r['quiet']):8.2f}"
                     f" ms  busy {statistics.median(r['busy']):8.2f} ms  "
                     f"busy/quiet {r['ratio']:.3f} (95% {lo:.3f}..{hi:.3f})")
    print("\n".join(lines))
    out = os.environ.get("BENCH_OUT")
    if out:
        Path(out + ".txt").write_text("\n".join(lines) + "\n")
        Path(out + ".json").write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
