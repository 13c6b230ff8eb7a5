#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The library's start and end of a job with J jobs on the node, no Slurm.

bench/lifecycle.c, built against this tree's lib/libjobshm.a (and, with
BENCH_BEFORE=COMMIT, against that commit's, built from `git archive` in
/tmp), run inside `unshare -m --propagation shared` as a systemd node
mounts /: J jobs set up one after the other (tmpfs mounted; a task joins,
which makes the job's namespace), then all cleaned up.  Builds alternate
within each repetition.  Reported per J, medians over repetitions:

  start  setup + namespace of the last 8 jobs set up (J - 1 .. J - 8
         jobs already there): median ms
  end    cleanup of the first 8 jobs ended (J .. J - 7 jobs there)

  BENCH_JOBS (default 1,32,128), BENCH_REPS (default 5),
  BENCH_OUT=PREFIX: PREFIX.txt and PREFIX.json.  Needs root.
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from jobs_per_node import checkout   # the commit before, in /tmp, once

ROOT = Path(__file__).resolve().parents[1]
JOBS = [int(j) for j in os.environ.get("BENCH_JOBS", "1,32,128").split(",")]
REPS = int(os.environ.get("BENCH_REPS", "5"))
BEFORE = os.environ.get("BENCH_BEFORE", "")
LIBS = "-lconfig -lhwloc -ljson-c -lnuma -lpthread".split()


def build(tree, out, src="bench/lifecycle.c"):
    """src (this tree's) built against tree's lib/libjobshm.a as out."""
    subprocess.run(["make", "-s", "-C", str(tree), "lib/libjobshm.a"],
                   check=True)
    subprocess.run(["cc", "-O2", "-Wall", "-Wextra", f"-I{tree}/lib",
                    str(ROOT / src),
                    f"{tree}/lib/libjobshm.a", "-o", str(out)] + LIBS,
                   check=True)
    return out


def builds(tmp):
    b = {"current": build(ROOT, tmp / "lifecycle")}
    if BEFORE:
        b[f"before ({BEFORE})"] = build(checkout(BEFORE),
                                        tmp / "lifecycle-before")
    return b


def one(prog, j, tmp):
    base = Path(tempfile.mkdtemp(dir=tmp))
    base.chmod(0o755)
    p = subprocess.run(["unshare", "-m", "--propagation", "shared",
                        str(prog), str(j), str(base)],
                       capture_output=True, text=True)
    shutil.rmtree(base, ignore_errors=True)
    shutil.rmtree(f"{base}.target", ignore_errors=True)
    if p.returncode:
        sys.exit(f"lifecycle: {prog} {j}: {p.stderr.strip()}")
    rows = [[float(x) for x in ln.split()] for ln in p.stdout.splitlines()]
    last = rows[-8:]
    return {"start": statistics.median(r[1] + r[2] for r in last),
            "end": statistics.median(r[3] for r in rows[:8])}


def main():
    if os.geteuid():
        sys.exit("lifecycle: needs root (mounts, namespaces)")
    tmp = Path(tempfile.mkdtemp(prefix="jobshm-lifecycle-"))
    tmp.chmod(0o755)
    progs = builds(tmp)
    runs = {name: {j: [] for j in JOBS} for name in progs}
    t0 = time.time()
    for rep in range(REPS):
        for j in JOBS:
            for name, prog in progs.items():
                runs[name][j].append(one(prog, j, tmp))
    shutil.rmtree(tmp, ignore_errors=True)
    lines = [f"lifecycle.py, {time.strftime('%Y-%m-%d')}, "
             f"{os.cpu_count()} CPUs, JOBS={JOBS} REPS={REPS}, "
             f"kernel {os.uname().release}",
             "medians over repetitions, ms: start = setup + namespace of a "
             "job with J-1..J-8 others there; end = its cleanup",
             "   J | " + " | ".join(f"{n}: start end" for n in progs)]
    for j in JOBS:
        cells = []
        for name in progs:
            s = statistics.median(r["start"] for r in runs[name][j])
            e = statistics.median(r["end"] for r in runs[name][j])
            cells.append(f"{s:.2f} {e:.2f}")
        lines.append(f"{j:4} | " + " | ".join(cells))
    lines.append(f"wall time {time.time() - t0:.0f} s")
    print("\n".join(lines))
    out = os.environ.get("BENCH_OUT")
    if out:
        Path(f"{out}.txt").write_text("\n".join(lines) + "\n")
        Path(f"{out}.json").write_text(json.dumps(
            {n: {str(j): v for j, v in r.items()} for n, r in runs.items()},
            indent=1) + "\n")


if __name__ == "__main__":
    main()
