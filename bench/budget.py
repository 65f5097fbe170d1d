"""Per-pod CPU budget: where ``joblet run``'s own CPU time goes for each pod of an Indexed Job of
/bin/true, by stage (create, bind, spawn, status, count, events, log, store, other).

The process's CPU time (every thread, not its children: getrusage at exit) is split by the share
of py-spy samples whose stack falls in each stage, so the figures hold on a loaded machine where
wall time does not. Needs py-spy (``pip install py-spy``) and root (py-spy reads the process).

``os.posix_spawnp`` holds the GIL while the vfork'd child runs to its exec, which on a loaded
machine is ~1 ms of the main thread's *wall* time per pod, not CPU; py-spy samples it all the
same. So the samples at the spawn call (up to what its measured wall time at the sample rate
accounts for) are taken out of the split and reported apart, as ``spawn_wait_us_per_pod``.

    python bench/budget.py [--pods 1000] [--parallelism 16]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _server import bench_root, joblet_argv
from throughput import manifest

# (stage, markers): a sample belongs to the first stage one of whose markers is in its stack.
STAGES: list[tuple[str, tuple[str, ...]]] = [
    ("events", ("ClientEventRecorder", "EventRecorder", "record_event", "EventCorrelator")),
    ("log", ("Follower._stream_logs", "LogStore.", "logs.py")),
    ("store", ("MemoryStore.flush", "MemoryStore._scheduled_flush", "SqliteStore._persist", "WatchCache")),
    ("bind", ("scheduler.py",)),
    ("create", ("PodControl.create",)),
    ("count", ("controllers/job/",)),
    ("status", ("PodWorker.write_status", "PodWorker.build_status", "PodWorker.conclude", "PodWorker.lifecycle")),
    ("spawn", ("node/", "ProcessRuntime", "shim")),
    ("cli", ("cli/",)),
]


def stage_of(stack: str) -> str:
    for stage, markers in STAGES:
        if any(m in stack for m in markers):
            return stage
    return "other"


RATE = 250  # py-spy samples per second
SPAWN_CALL = "timed_spawn ("  # a leaf frame here is the posix_spawnp call (timed by RUSAGE_WRAPPER)


def classify(raw: Path) -> collections.Counter[str]:
    """Samples per stage, and under ``spawn call`` those whose leaf is the spawn call."""
    counts: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        leaf = stack.rsplit(";", 1)[-1]
        if leaf.startswith("_worker (concurrent") or "select (selectors" in leaf or "_bootstrap" in leaf:
            continue  # idle pool threads and the loop waiting: not CPU
        counts[stage_of(stack)] += int(n)
        if leaf.startswith(SPAWN_CALL):
            counts["spawn call"] += int(n)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--parallelism", type=int, default=16)
    parser.add_argument("--keep", help="also write the raw py-spy stacks here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="joblet-bench-", dir=bench_root()) as tmp:
        job = Path(tmp) / "job.json"
        job.write_text(manifest(args.pods, args.parallelism))
        raw, usage = Path(args.keep or Path(tmp) / "stacks.txt"), Path(tmp) / "rusage.json"
        env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "JOBLET_DATA_DIR")}
        proc = subprocess.run(["py-spy", "record", "--gil", "-r", str(RATE), "-f", "raw", "-o", str(raw), "--",
                               *joblet_argv(usage, "run", "-f", str(job), "--data-dir", str(Path(tmp) / "data"))],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if proc.returncode != 0:
            sys.exit(f"joblet run failed ({proc.returncode}): {proc.stderr[-2000:]}")
        cpu = json.loads(usage.read_text())
        counts = classify(raw)
    total_us = (cpu["user"] + cpu["sys"]) * 1e6 / args.pods
    waiting = min(counts.pop("spawn call", 0), round(cpu.get("spawn_wall", 0.0) * RATE))
    counts["spawn"] -= waiting
    samples = sum(counts.values()) or 1
    print(json.dumps({
        "benchmark": "budget", "pods": args.pods, "parallelism": args.parallelism,
        "cpu_us_per_pod": round(total_us), "user_s": round(cpu["user"], 2), "sys_s": round(cpu["sys"], 2),
        "stages_us_per_pod": {s: round(total_us * counts[s] / samples) for s, _ in [*STAGES, ("other", ())]},
        "spawn_wait_us_per_pod": round(cpu.get("spawn_wall", 0.0) * 1e6 / args.pods),
        "spawn_wait_samples_left_out": waiting,
    }))


if __name__ == "__main__":
    main()
