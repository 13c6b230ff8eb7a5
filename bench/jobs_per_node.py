#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Jobs per node: start, end and mount entries with J jobs on one node.

On a one-node test cluster of its own (bj1, port 17817, CPUs=128 and 8 GiB
taken from slurm.conf over this host's, the cluster's directory mounted
shared as a systemd node has it: cluster.sh's JOBSHM_CLUSTER_PROPAGATION),
J concurrent single-task sleeping batch jobs (--mem=16M), plain or with
--shm=1M, submitted at once as one job array (one job per array task; each
its own jobshm mount and namespace), 50 ms after a whole second: slurmctld
schedules them in its background pass at the next one (SchedulerParameters
defer and batch_sched_delay=0), so its wait is the same in every run.  Runs alternate plain and --shm
(paired).  Measured per run:

  start  from the submission to each job's task running: the batch script
         writes the time (CLOCK_REALTIME) first thing; median and last job;
  end    from scancel to the node being clean: the last of the J jobs'
         epilogs done (slurmd's log, "completed epilog", to the ms); the
         run then waits for no job left in squeue, no slurmstepd of these
         jobs and no mount of theirs under base_path (end_squeue: the
         time that was seen, in steps of one squeue call, ~60 ms);
  mounts with all J running: the entries of the host's mount table plus
         those of each job's task (/proc/<pid>/mountinfo), and the largest
         single task's table.

  BENCH_JOBS (default 1,32,128), BENCH_REPS (pairs per J, default 4;
  BENCH_REPS_ONE for J = 1, default 12),
  BENCH_BEFORE=COMMIT: the same again with that commit's plugin and
  jobshm (built from `git archive` in /tmp), BENCH_BEFORE_REPS (default 2),
  BENCH_OUT=PREFIX: write PREFIX.txt and PREFIX.json,
  JOBSHM_CLUSTER_PROPAGATION (shared by default, or private),
  BENCH_BASE_FS: tmpfs (the default: the cluster's directory, and so
  base_path, on a tmpfs, as base_path's default /run/jobshm/%n is on a
  real node) or disk (this host's /tmp as it is).
"""
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

from usage_sampling import bootstrap

ROOT = Path(__file__).resolve().parents[1]
D = Path("/tmp/jobshm-bench-jobs")
BASE = D / "base"
USER = "jobshm-u1"
CLUSTER_ENV = dict(JOBSHM_CLUSTER_DIR=str(D), JOBSHM_CLUSTER_NODES="1",
                   JOBSHM_CLUSTER_PORT="17817", JOBSHM_CLUSTER_NODE_PREFIX="bj",
                   JOBSHM_CLUSTER_CPUS="128", JOBSHM_CLUSTER_MEMORY="8192",
                   # every array task started in the scheduling pass that
                   # sees the submission (the default depth is 100); that
                   # pass is slurmctld's background one, which runs at each
                   # whole second (defer: none at submission; no
                   # batch_sched_delay: the first second after it)
                   JOBSHM_CLUSTER_SLURM_EXTRA="SchedulerParameters="
                   "default_queue_depth=1000,bf_interval=5,defer,"
                   "batch_sched_delay=0")
JOBS = [int(j) for j in os.environ.get("BENCH_JOBS", "1,32,128").split(",")]
REPS = int(os.environ.get("BENCH_REPS", "4"))
# J = 1 is cheap and its start the noisiest (slurmctld's scheduling)
REPS_ONE = int(os.environ.get("BENCH_REPS_ONE", "12"))
BEFORE = os.environ.get("BENCH_BEFORE", "")
BEFORE_REPS = int(os.environ.get("BENCH_BEFORE_REPS", "2"))
PROPAGATION = os.environ.get("JOBSHM_CLUSTER_PROPAGATION", "shared")
BASE_FS = os.environ.get("BENCH_BASE_FS", "tmpfs")
OUT = D / "out"
SUBMIT_PHASE = 0.05     # s after a whole second of the realtime clock
TICKS = os.sysconf("SC_CLK_TCK")
# the time now, the node's uptime now and its slurmstepd's start (in
# clock ticks since boot: /proc/PPID/stat's 22nd field, after the name)
SCRIPT = """#!/bin/bash
read -r up _ < /proc/uptime
st=$(< /proc/$PPID/stat); set -- ${{st##*) }}
echo "$(date +%s.%N) $up ${{20}}" > {out}/m.$SLURM_JOB_ID.$$.tmp
mv {out}/m.$SLURM_JOB_ID.$$.tmp {out}/m.$SLURM_JOB_ID.$$
exec sleep 3600
"""


def log(*a):
    print(*a, flush=True)


def sh(cmd, check=True, **kw):
    env = dict(os.environ, SLURM_CONF=str(D / "slurm.conf"), **CLUSTER_ENV)
    return subprocess.run(cmd, env=env, capture_output=True, text=True,
                          check=check, **kw)


def cluster(action, plugin=None, cli=None):
    env = dict(os.environ, **CLUSTER_ENV)
    if action == "start" and BASE_FS == "tmpfs":
        # cluster.sh makes it shared (or private) as it is; stop unmounts
        D.mkdir(exist_ok=True)
        if subprocess.run(["mountpoint", "-q", str(D)]).returncode:
            subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755",
                            "jobshm-bench", str(D)], check=True)
    if plugin:
        env.update(JOBSHM_PLUGIN=plugin, JOBSHM_CLI=cli)
    p = subprocess.run([str(ROOT / "tests/cluster/cluster.sh"), action],
                       env=env, capture_output=True, text=True)
    if p.returncode and action == "start":
        raise SystemExit(f"jobs_per_node: cluster start failed:\n{p.stderr}")
    return p.stdout.strip()


def checkout(commit):
    """That commit's tree (`git archive`), in /tmp, made once; its path."""
    d = Path(f"/tmp/jobshm-before-{commit}")
    if not (d / "Makefile").exists():
        d.mkdir(exist_ok=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit],
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(d)], input=archive, check=True)
    return d


def build_before(commit):
    """That commit's plugin and jobshm, built in /tmp; their paths."""
    d = checkout(commit)
    if not (d / "spank/jobshm.so").exists():
        subprocess.run(["make", "-s", "-C", str(d), "spank/jobshm.so",
                        "cli/jobshm"], check=True, capture_output=True)
    return str(d / "spank/jobshm.so"), str(d / "cli/jobshm")


def base_mounts(lines, jobids=None):
    pts = [ln.split()[4] for ln in lines if f" {BASE}/" in ln]
    if jobids is not None:
        pts = [p for p in pts
               if re.search(r"/(\d+)(\.ns(/mnt)?)?$", p) and
               int(re.search(r"/(\d+)(\.ns(/mnt)?)?$", p).group(1)) in jobids]
    return pts


def stepds(jobids):
    """pids of slurmstepds of these jobs."""
    found = []
    for c in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            a = c.read_bytes().split(b"\0")[0].decode(errors="replace")
        except OSError:
            continue
        m = re.match(r"slurmstepd: \[(\d+)\.", a)
        if m and int(m.group(1)) in jobids:
            found.append(int(c.parent.name))
    return found


SLURMD_LOG = D / "log" / "slurmd.bj1.log"
EPILOG_DONE = re.compile(r"^\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{3})\] "
                         r"(?:debug:\s+)?completed epilog for jobid (\d+)")


def log_size():
    try:
        return SLURMD_LOG.stat().st_size
    except OSError:
        return 0


def epilogs_done(since, jobids):
    """{jobid: time its epilog completed} from slurmd's log after byte
    `since` (its timestamps: local time, ms)."""
    done = {}
    with open(SLURMD_LOG, errors="replace") as f:
        f.seek(since)
        for ln in f:
            m = EPILOG_DONE.match(ln)
            if m and int(m.group(3)) in jobids:
                t = time.mktime(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S"))
                done[int(m.group(3))] = t + int(m.group(2)) / 1000
    return done


def one_run(j, shm):
    """(start latencies s, end s, mount counts) of J jobs at once."""
    for f in OUT.glob("m.*"):
        f.unlink()
    args = ["runuser", "-u", USER, "--", "sbatch", "--parsable",
            "-w", "bj1", "-n", "1", "--mem=16M", "-o", "/dev/null",
            "-t", "30"]
    if j > 1:
        args.append(f"--array=0-{j - 1}")
    if shm:
        args.append("--shm=1M")
    # submitted at the same phase of slurmctld's second every time: its
    # scheduling then waits the same for plain and --shm (it was 0.3, 1.3
    # or 2.4 s, after whatever the run before had done)
    time.sleep(1 + SUBMIT_PHASE - time.time() % 1)
    t0 = time.time()
    p = sh(args, input=SCRIPT.format(out=OUT), cwd=str(OUT))
    arrayid = p.stdout.strip().split(";")[0]
    deadline = t0 + 60 + j
    while True:
        marks = [m for m in OUT.glob("m.*") if not m.name.endswith(".tmp")]
        if len(marks) >= j:
            break
        if time.time() > deadline:
            q = sh(["squeue", "-h", "-o", "%i %T %r"], check=False).stdout
            raise SystemExit(f"jobs_per_node: {len(marks)} of {j} jobs "
                             f"started in {deadline - t0:.0f} s:\n{q}")
        time.sleep(0.05)
    starts, launches, jobs = [], [], {}
    for m in marks:
        _, jobid, pid = m.name.split(".")
        now, up, ticks = m.read_text().split()
        starts.append(float(now) - t0)
        launches.append(float(up) - int(ticks) / TICKS)
        jobs[int(jobid)] = int(pid)
    time.sleep(0.5)   # every step's setup done (a task writes first)
    host = Path("/proc/self/mountinfo").read_text().splitlines()
    per = []
    for pid in jobs.values():
        per.append(len(Path(f"/proc/{pid}/mountinfo").read_text()
                       .splitlines()))
    jobids = set(jobs)
    nmounts = len(base_mounts(host, jobids))
    since = log_size()
    t1 = time.time()
    sh(["scancel", arrayid])
    while True:
        q = sh(["squeue", "-h", "-o", "%A"], check=False).stdout.split()
        left = jobids & {int(x) for x in q if x.isdigit()}
        host_now = Path("/proc/self/mountinfo").read_text().splitlines()
        if (not left and not stepds(jobids) and
                not base_mounts(host_now, jobids)):
            break
        if time.time() > t1 + 120:
            raise SystemExit(f"jobs_per_node: not clean 120 s after "
                             f"scancel: {len(left)} jobs, "
                             f"{len(stepds(jobids))} slurmstepd, "
                             f"{base_mounts(host_now, jobids)[:5]}")
        time.sleep(0.05)
    end_squeue = time.time() - t1
    for _ in range(30):     # slurmd's log may lag its messages
        done = epilogs_done(since, jobids)
        if len(done) == len(jobids):
            break
        time.sleep(0.1)
    # a line missing (128 epilogs log at once): the squeue time, counted
    end = max(done.values()) - t1 if len(done) == len(jobids) else end_squeue
    return {"jobs": j, "shm": shm, "start_median": statistics.median(starts),
            "start_last": max(starts), "end": end, "end_squeue": end_squeue,
            "epilogs_unlogged": len(jobids) - len(done),
            "launch_median": statistics.median(launches),
            "launch_max": max(launches),
            "host_entries": len(host), "job_mounts_on_host": nmounts,
            "task_entries_max": max(per), "task_entries_median":
            statistics.median(per), "total_entries": len(host) + sum(per)}


def series(label, reps, plugin=None, cli=None):
    log(cluster("start", plugin, cli))
    runs = []
    try:
        # one job first: the node's base directory and its top's private
        # mount are made by the first --shm job; not timed
        one_run(1, True)
        for j in JOBS:
            for r in range(reps if j > 1 else max(reps, REPS_ONE)):
                order = [False, True] if r % 2 == 0 else [True, False]
                for shm in order:
                    res = one_run(j, shm)
                    res.update(label=label, rep=r)
                    runs.append(res)
                    log(f"  {label} J={j:3d} {'--shm' if shm else 'plain'} "
                        f"rep {r}: start {res['start_median']:.2f}/"
                        f"{res['start_last']:.2f} s, launch {res['launch_median']:.3f}/"
                        f"{res['launch_max']:.3f} s, end {res['end']:.2f} s, "
                        f"entries {res['total_entries']} (task max "
                        f"{res['task_entries_max']})")
    finally:
        cluster("stop")
    return runs


def spread(v):
    """median [min..max] (95% interval of the median, pairs resampled)"""
    if not v:
        return "-"
    lo, hi = bootstrap(v)
    return (f"{statistics.median(v):.3f} [{min(v):.3f}..{max(v):.3f}] "
            f"({lo:.3f}..{hi:.3f})")


def summary(runs, label):
    """Lines of text and rows: per J, medians of plain and --shm over
    the runs, and the median [min..max] of the paired --shm/plain ratio."""
    keys = ("start_median", "start_last", "launch_median", "end", "end_squeue",
            "total_entries", "task_entries_max")
    lines = [f"{label}: medians over runs; ratio --shm/plain: median "
             f"[min..max] (95% interval of the median) over pairs",
             "   J pairs | start s: plain --shm ratio | last start s: "
             "plain --shm | launch ms: plain --shm ratio | end s: plain "
             "--shm ratio | mount entries: plain --shm (largest task "
             "table)"]
    out = []
    for j in JOBS:
        p = sorted((r for r in runs if r["jobs"] == j and not r["shm"]
                    and r["label"] == label), key=lambda r: r["rep"])
        s = sorted((r for r in runs if r["jobs"] == j and r["shm"]
                    and r["label"] == label), key=lambda r: r["rep"])
        if not p or not s:
            continue
        ratio = {k: [b[k] / a[k] for a, b in zip(p, s)]
                 for k in ("start_median", "launch_median", "end")}
        med = {k: (statistics.median(x[k] for x in p),
                   statistics.median(x[k] for x in s)) for k in keys}
        out.append({"label": label, "jobs": j, "pairs": len(p),
                    **{f"{k}_ratio": v for k, v in ratio.items()},
                    **{f"{k}_plain": v[0] for k, v in med.items()},
                    **{f"{k}_shm": v[1] for k, v in med.items()}})
        lines.append(
            f"{j:4d} {len(p):5d} | {med['start_median'][0]:.3f} "
            f"{med['start_median'][1]:.3f} {spread(ratio['start_median'])}"
            f" | {med['start_last'][0]:.3f} {med['start_last'][1]:.3f} | "
            f"{med['launch_median'][0] * 1000:.0f} "
            f"{med['launch_median'][1] * 1000:.0f} "
            f"{spread(ratio['launch_median'])} | {med['end'][0]:.3f} "
            f"{med['end'][1]:.3f} {spread(ratio['end'])} | "
            f"{med['total_entries'][0]:.0f} {med['total_entries'][1]:.0f} "
            f"({med['task_entries_max'][0]:.0f} "
            f"{med['task_entries_max'][1]:.0f})")
    return lines, out


def main():
    if os.geteuid() != 0:
        raise SystemExit("jobs_per_node: run as root (it starts a cluster)")
    t = time.time()
    log(f"jobshm jobs per node: J = {JOBS}, {REPS} alternated pairs each, "
        f"node bj1 CPUs=128 on {os.cpu_count()} CPUs, --mem=16M, --shm=1M, "
        f"{D} ({BASE_FS}) mounted {PROPAGATION}")
    runs = series("current", REPS)
    before = None
    if BEFORE:
        plugin, cli = build_before(BEFORE)
        log(f"the same with {BEFORE}'s plugin and jobshm ({plugin})")
        runs += series(f"before ({BEFORE})", BEFORE_REPS, plugin, cli)
        before = f"before ({BEFORE})"
    text, table = summary(runs, "current")
    if before:
        t2, tb2 = summary(runs, before)
        text += [""] + t2
        table += tb2
    text.append(f"\nwall time {time.time() - t:.0f} s")
    log("\n".join(text))
    if os.environ.get("BENCH_OUT"):
        prefix = os.environ["BENCH_OUT"]
        head = (f"jobs_per_node.py, {time.strftime('%Y-%m-%d')}, "
                f"{os.cpu_count()} CPUs, JOBS={JOBS} REPS={REPS} "
                f"REPS_ONE={REPS_ONE} "
                f"BEFORE={BEFORE or '-'} BEFORE_REPS={BEFORE_REPS}, "
                f"propagation {PROPAGATION}, base on {BASE_FS}\n")
        Path(prefix + ".txt").write_text(head + "\n".join(text) + "\n")
        Path(prefix + ".json").write_text(json.dumps(
            {"jobs": JOBS, "reps": REPS, "before": BEFORE, "base_fs": BASE_FS,
             "before_reps": BEFORE_REPS, "propagation": PROPAGATION,
             "cpus": os.cpu_count(), "summary": table, "runs": runs},
            indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
