#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""What sampling each job's shm costs (jobshm.conf usage_interval).

On the running test cluster (tests/cluster/cluster.sh start), the same
build and run, allocations alternated between usage_interval = 1 (a
sampler thread per step, fstatvfs once a second, the record written when
the peak or fullness changes) and usage_interval = 0 (no thread: one
sample when the step starts and one per task exit):

  1. step launch: step_scaling.py's timer, `srun -n N -O true` in an
     allocation with --shm=256M, median step time, for N in BENCH_TASKS;
  2. a job that writes continuously: a task rewriting a 192 MiB file in
     its shm for BENCH_SECONDS (sampled every second while it writes),
     its write rate in MiB/s.

  3. amplified, without Slurm: the same writer on a tmpfs of its own
     while another process reads fstatvfs of it 0, 1 and 1000 times a
     second, rounds alternated (BENCH_ONLY=amplified; needs root).

Reported: the medians and the median over pairs of (on / off), with its
spread.  BENCH_ALLOCS (default 5), BENCH_STEPS (default 8), BENCH_TASKS
(default 1,16,64), BENCH_SECONDS (default 5), BENCH_ONLY=launch or
writer: that part alone, BENCH_JSON: the numbers.
"""
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import step_scaling as ss  # noqa: E402  (its timer and allocation)

CONF = f"{ss.D}/jobshm.conf"
SECONDS = float(os.environ.get("BENCH_SECONDS", "5"))
ONLY = os.environ.get("BENCH_ONLY", "")

WRITER = """
import os, sys, time
w = os.environ.get("SHM", "/dev/shm") + "/w"
end, n, buf = time.time() + float(sys.argv[1]), 0, b"x" * (1 << 20)
while time.time() < end:
    with open(w, "wb") as f:
        for _ in range(192):
            f.write(buf)
    n += 192
    os.unlink(w)
print(n / float(sys.argv[1]))
"""


def set_interval(saved, seconds):
    text = re.sub(r"(?m)^usage_interval = .*\n", "", saved)
    with open(CONF, "w") as f:
        f.write(text + f"usage_interval = {seconds};\n")


def writer_rate(prog):
    env = dict(os.environ, SLURM_CONF=f"{ss.D}/slurm.conf")
    p = subprocess.run(["runuser", "-u", ss.USER, "--", "srun", "-Q", "-w",
                        "n1", "--mem=1G", "--shm=256M", "/usr/bin/python3",
                        prog, str(SECONDS)], env=env, capture_output=True,
                       text=True, cwd="/tmp", check=True)
    return float(p.stdout.split()[0])


def amplified(seconds=3):
    """Writer rate (MiB/s) against fstatvfs readers at 0, 1, 1000 Hz."""
    d = tempfile.mkdtemp(prefix="jobshm-bench-")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256M",
                    "jobshm-bench", d], check=True)
    out = {0: [], 1: [], 1000: []}
    try:
        for i in range(ss.ALLOCS):
            for hz in ([0, 1, 1000] if i % 2 else [1000, 1, 0]):
                pid = os.fork() if hz else 0
                if hz and pid == 0:
                    fd = os.open(d, os.O_RDONLY)
                    while True:
                        os.fstatvfs(fd)
                        time.sleep(1 / hz)
                p = subprocess.run(["/usr/bin/python3", "-c", WRITER,
                                    str(seconds)], capture_output=True,
                                   text=True, cwd=d, check=True,
                                   env=dict(os.environ, SHM=d))
                if hz:
                    os.kill(pid, 9)
                    os.waitpid(pid, 0)
                out[hz].append(float(p.stdout.split()[0]))
    finally:
        subprocess.run(["umount", d])
        os.rmdir(d)
    for hz, v in out.items():
        print(f"amplified, {hz:4d} Hz      writer {statistics.median(v):8.1f}"
              f" MiB/s [{min(v):.0f}..{max(v):.0f}]", flush=True)
    return out


def paired(saved, measure):
    """measure() with sampling on and off, alternated: (on, off) lists."""
    on, off = [], []
    for i in range(ss.ALLOCS):
        kinds = [(on, 1), (off, 0)]
        if i % 2:
            kinds.reverse()
        for out, interval in kinds:
            set_interval(saved, interval)
            out.append(measure())
    return on, off


def summary(name, on, off, unit, scale=1.0):
    r = [a / b for a, b in zip(on, off)]
    print(f"{name:24s} on {statistics.median(on) * scale:8.1f} {unit}  off "
          f"{statistics.median(off) * scale:8.1f} {unit}  on/off "
          f"{statistics.median(r):.3f} [{min(r):.3f}..{max(r):.3f}]",
          flush=True)
    return {"on": on, "off": off, "ratio": r}


def script(text):
    fd, path = tempfile.mkstemp(prefix="jobshm-bench-", suffix=".py",
                                dir="/tmp")
    os.write(fd, text.encode())
    os.close(fd)
    os.chmod(path, 0o644)
    return path


def main():
    if ONLY == "amplified":
        res = {"amplified": amplified()}
        if os.environ.get("BENCH_JSON"):
            with open(os.environ["BENCH_JSON"], "w") as f:
                json.dump(res, f, indent=1)
        return 0
    timer, writer = script(ss.TIMER), script(WRITER)
    with open(CONF) as f:
        saved = f.read()
    res = {"allocs": ss.ALLOCS, "steps": ss.STEPS, "cpus": os.cpu_count(),
           "seconds": SECONDS, "launch": {}}
    print(f"jobshm usage sampling, usage_interval 1 (on) against 0 (off): "
          f"{ss.ALLOCS} alternated pairs, {os.cpu_count()} CPUs, medians "
          f"[min..max over pairs]", flush=True)
    try:
        for n in ss.TASKS if ONLY != "writer" else []:
            on, off = paired(saved, lambda: ss.allocation(
                f"{ss.D}/slurm.conf", "n1", n, timer, ("--shm=256M",)))
            res["launch"][n] = summary(f"step launch, {n} tasks", on, off,
                                       "ms", 1000)
        if ONLY != "launch":
            on, off = paired(saved, lambda: writer_rate(writer))
            res["writer"] = summary("continuous writer", on, off, "MiB/s")
    finally:
        with open(CONF, "w") as f:
            f.write(saved)
        os.unlink(timer)
        os.unlink(writer)
    if os.environ.get("BENCH_JSON"):
        with open(os.environ["BENCH_JSON"], "w") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
