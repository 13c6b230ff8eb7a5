#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""What sampling each job's shm costs (jobshm.conf usage_interval).

On the running test cluster (tests/cluster/cluster.sh start), one build,
many pairs of runs, each pair one run with usage_interval = 1 (on: a
sampler thread per step, fstatvfs once a second, and the inotify watch
on the shm's root that opens 1 ms windows of sampling, within their
budget) and one with usage_interval = 0 (off: no thread, no watch; one
sample when the step starts and one per task exit), the order of the
two alternated from pair to pair:

  1. a job that writes continuously: one task that, for BENCH_SECONDS,
     makes a file in its shm, writes 64 MiB into it in 1 MiB writes and
     removes it, again and again (about a hundred files a second: the
     watch's worst case, a window open all the time, its budget spent
     after ~2 s); its write rate in MiB/s, timed inside the task;
  2. step launch: step_scaling.py's timer, `srun -n N -O true` in an
     allocation with --shm=256M, the median of BENCH_STEPS steps, for N
     in BENCH_TASKS.

For each: the medians on and off; per pair the ratio on/off (writer:
of rates, below 1 is slower; launch: of times, above 1 is slower), their
median and min..max; a 95% bootstrap interval of the median ratio (pairs
resampled, 10000 times, fixed seed); and a sign test: in how many pairs
on was slower, and the two-sided binomial p of so many or more either
way.  The machine's load average is read before every run and written
out; before every pair the bench waits while a build runs (`make -j`).

  3. amplified, without Slurm: the same writer on a tmpfs of its own
     while another process reads fstatvfs of it 0, 1 and 1000 times a
     second, rounds alternated (BENCH_ONLY=amplified; needs root).

BENCH_PAIRS (default 16), BENCH_STEPS (default 8), BENCH_TASKS (default
1,16,64), BENCH_SECONDS (default 5), BENCH_ONLY=launch or writer: that
part alone, BENCH_JSON: the numbers.

BENCH_COMPARE=metrics compares metrics_dir set (on: the sampler's thread
also writes the job's .prom file, at most once an interval, and the end
removes it) against unset (off), usage_interval 1 in both: the cost of
the node exporter's files (issue 33).
"""
import json
import math
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import step_scaling as ss  # noqa: E402  (its timer and allocation)

CONF = f"{ss.D}/jobshm.conf"
PAIRS = int(os.environ.get("BENCH_PAIRS", "16"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "5"))
ONLY = os.environ.get("BENCH_ONLY", "")
COMPARE = os.environ.get("BENCH_COMPARE", "sampling")
METRICS = f"{ss.D}/bench-metrics"

WRITER = """
import os, sys, time
d = os.environ.get("SHM", "/dev/shm")
secs, buf = float(sys.argv[1]), b"x" * (1 << 20)
n = k = 0
t0 = time.perf_counter()
while time.perf_counter() < t0 + secs:
    w = f"{d}/w{k % 8}"                  # made: IN_CREATE
    fd = os.open(w, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    for _ in range(64):                  # written: IN_MODIFY
        os.write(fd, buf)
    os.close(fd)
    os.unlink(w)
    n, k = n + 64, k + 1
t = time.perf_counter() - t0
print(n / t, k / t)
"""


def building():
    p = subprocess.run(["pgrep", "-f", "make -j"], capture_output=True)
    return p.returncode == 0


def wait_quiet(log):
    """Wait while a build runs; the seconds waited."""
    t = time.time()
    while building():
        time.sleep(10)
    if time.time() - t > 1:
        log.append(round(time.time() - t))
    return time.time() - t


def set_interval(saved, on):
    """on (1) or off (0): usage_interval 1 or 0, or with
    BENCH_COMPARE=metrics, metrics_dir set or not."""
    if COMPARE == "metrics":
        text = re.sub(r"(?m)^(metrics_dir|usage_interval) = .*\n", "", saved)
        line = f'metrics_dir = "{METRICS}";\n' if on else ""
        line += "usage_interval = 1;\n"
    else:
        text = re.sub(r"(?m)^usage_interval = .*\n", "", saved)
        line = f"usage_interval = {on};\n"
    with open(CONF, "w") as f:
        f.write(text + line)


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
        for i in range(PAIRS):
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


def paired(saved, measure, waits):
    """measure() with sampling on and off, alternated: on, off, loads."""
    on, off, load = [], [], []
    for i in range(PAIRS):
        wait_quiet(waits)
        kinds = [(on, 1), (off, 0)]
        if i % 2:
            kinds.reverse()
        for out, interval in kinds:
            set_interval(saved, interval)
            load.append(os.getloadavg()[0])
            out.append(measure())
    return on, off, load


def bootstrap(r, n=10000, seed=23):
    """95% interval of the median of r, pairs resampled."""
    rng = random.Random(seed)
    m = sorted(statistics.median(rng.choices(r, k=len(r))) for _ in range(n))
    return m[int(0.025 * n)], m[int(0.975 * n) - 1]


def sign_test(slower, faster):
    """Two-sided binomial p of a split at least this uneven (p = 1/2)."""
    n, k = slower + faster, max(slower, faster)
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(k, n + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def summary(name, on, off, load, unit, scale, higher_is_slower):
    r = [a / b for a, b in zip(on, off)]
    lo, hi = bootstrap(r)
    slower = sum(1 for x in r if (x > 1) == higher_is_slower and x != 1)
    faster = sum(1 for x in r if x != 1) - slower
    p = sign_test(slower, faster)
    print(f"{name:26s} on {statistics.median(on) * scale:8.1f} {unit}  off "
          f"{statistics.median(off) * scale:8.1f} {unit}  on/off "
          f"{statistics.median(r):.3f} [{min(r):.3f}..{max(r):.3f}] 95% "
          f"[{lo:.3f}..{hi:.3f}]  on slower in {slower} of {len(r)} "
          f"(sign test p={p:.2f})  load {min(load):.2f}..{max(load):.2f}",
          flush=True)
    return {"on": on, "off": off, "ratio": r, "median_ratio":
            statistics.median(r), "bootstrap95": [lo, hi],
            "on_slower": slower, "on_faster": faster, "sign_p": p,
            "load1": load}


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
    waits = []
    os.makedirs(METRICS, mode=0o755, exist_ok=True)
    os.chmod(METRICS, 0o755)
    res = {"compare": COMPARE, "pairs": PAIRS, "steps": ss.STEPS, "cpus": os.cpu_count(),
           "seconds": SECONDS, "launch": {}, "waits_for_builds_s": waits,
           "load1_start": os.getloadavg()[0]}
    what = ("metrics_dir set (on: the job's .prom file) against unset "
            "(off), usage_interval 1" if COMPARE == "metrics" else
            "usage sampling, usage_interval 1 (on: thread + inotify "
            "windows) against 0 (off)")
    print(f"jobshm {what}: {PAIRS} alternated pairs, "
          f"{os.cpu_count()} CPUs, load average at start "
          f"{os.getloadavg()[0]:.2f}; medians, on/off median [min..max] "
          f"95% bootstrap of the median", flush=True)
    t0 = time.time()
    try:
        if ONLY != "launch":
            on, off, load = paired(saved, lambda: writer_rate(writer), waits)
            res["writer"] = summary("writer, files made+written", on, off,
                                    load, "MiB/s", 1.0, False)
        for n in ss.TASKS if ONLY != "writer" else []:
            on, off, load = paired(saved, lambda: ss.allocation(
                f"{ss.D}/slurm.conf", "n1", n, timer, ("--shm=256M",)),
                waits)
            res["launch"][n] = summary(f"step launch, {n} tasks", on, off,
                                       load, "ms", 1000, True)
    finally:
        with open(CONF, "w") as f:
            f.write(saved)
        os.unlink(timer)
        os.unlink(writer)
    res["seconds_total"] = round(time.time() - t0)
    res["load1_end"] = os.getloadavg()[0]
    print(f"{res['seconds_total']} s in all; load average at the end "
          f"{res['load1_end']:.2f}; waited for builds: {waits or 'never'}",
          flush=True)
    if os.environ.get("BENCH_JSON"):
        with open(os.environ["BENCH_JSON"], "w") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
