"""Where a parallelism slot sits idle: ``joblet run`` of an Indexed Job of N x /bin/true (as
``bench/throughput.py`` runs it) under ``bench/latency_trace.py``'s hooks, then the cycle of
each slot, pod by pod.

Why: at parallelism P, throughput ≈ P / (time a slot takes from one pod's exit to the next
pod's exit), so the cycle's gaps — container exit →
Succeeded written → the Job sync that sees it → replacement created → bound → the agent starts
it → container started — say where the time goes. The k-th pod to succeed frees the slot the
(P+k)-th pod created takes; gaps are paired that way. Also prints the average number of running
containers (rtstart → shim exit) and of pods between creation and Succeeded.

    python bench/slot_trace.py [--completions 1500] [--parallelism 16] [--events FILE]
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _server import bench_root
from latency_trace import HOOKS
from throughput import manifest


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--completions", type=int, default=1500)
    parser.add_argument("--parallelism", type=int, default=16)
    parser.add_argument("--keep", metavar="FILE", help="copy the raw trace here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="joblet-bench-", dir=bench_root()) as tmp:
        job = Path(tmp) / "job.json"
        job.write_text(manifest(args.completions, args.parallelism))
        trace = Path(tmp) / "trace"
        subprocess.run([sys.executable, "-c", HOOKS, str(trace), "run", "-f", str(job), "--data-dir",
                        str(Path(tmp) / "data")], check=True, stdout=subprocess.DEVNULL)
        raw = trace.read_text()
        if args.keep:
            Path(args.keep).write_text(raw)
    created: dict[str, float] = {}  # uid -> time
    name_uid: dict[str, str] = {}
    bound: dict[str, float] = {}
    succeeded: dict[str, float] = {}
    worker: dict[str, float] = {}
    rtstart: dict[str, float] = {}
    started: dict[str, float] = {}
    exited: dict[str, float] = {}
    syncs: list[tuple[float, float]] = []
    open_sync: list[float] = []
    for line in raw.splitlines():
        t_s, label, ident = [*line.split(" ", 2), ""][:3]
        t = float(t_s)
        if label.startswith("store.") and ident.startswith("pods/"):
            f = ident.split("|")
            _, name, uid = f[0].split("/")
            name_uid[name] = uid
            if label == "store.ADDED":
                created.setdefault(uid, t)
            if "node=True" in f and uid not in bound:
                bound[uid] = t
            if "phase=Succeeded" in f and uid not in succeeded:
                succeeded[uid] = t
        elif label == "worker+":
            worker.setdefault(name_uid.get(ident, ident), t)
        elif label == "rtstart+":
            rtstart.setdefault(ident, t)
        elif label == "rtstart-":
            started.setdefault(ident, t)
        elif label == "shim.exited":
            exited.setdefault(ident, t)
        elif label == "jobsync+":
            open_sync.append(t)
        elif label == "jobsync-" and open_sync:
            syncs.append((open_sync.pop(0), t))
    order_created = sorted(created, key=created.__getitem__)
    order_done = sorted(succeeded, key=succeeded.__getitem__)
    sync_starts = [s for s, _ in syncs]
    gaps: dict[str, list[float]] = {k: [] for k in (
        "exit->Succeeded", "Succeeded->sync start", "sync start->replacement created",
        "created->bound", "bound->worker", "worker->rtstart", "rtstart->started", "total exit->started")}
    p = args.parallelism
    for k, uid in enumerate(order_done):
        if p + k >= len(order_created):
            break
        new = order_created[p + k]
        if uid not in exited or new not in started:
            continue
        i = bisect.bisect_left(sync_starts, succeeded[uid])
        sync = sync_starts[i] if i < len(sync_starts) else created[new]
        sync = min(sync, created[new])
        gaps["exit->Succeeded"].append(succeeded[uid] - exited[uid])
        gaps["Succeeded->sync start"].append(sync - succeeded[uid])
        gaps["sync start->replacement created"].append(created[new] - sync)
        gaps["created->bound"].append(bound[new] - created[new])
        gaps["bound->worker"].append(worker[new] - bound[new])
        gaps["worker->rtstart"].append(rtstart[new] - worker[new])
        gaps["rtstart->started"].append(started[new] - rtstart[new])
        gaps["total exit->started"].append(started[new] - exited[uid])
    print(f"{'gap':34} {'median ms':>9} {'p90 ms':>8} {'mean ms':>8}")
    for name, xs in gaps.items():
        if xs:
            print(f"{name:34} {statistics.median(xs) * 1e3:9.2f} {pct(xs, 0.9) * 1e3:8.2f} {statistics.fmean(xs) * 1e3:8.2f}")
    t0, t1 = min(created.values()), max(succeeded.values())
    running = sum(min(exited.get(u, t1), t1) - s for u, s in rtstart.items()) / (t1 - t0)
    alive = sum(succeeded.get(u, t1) - c for u, c in created.items()) / (t1 - t0)
    durs = [e - s for s, e in syncs]
    between = [b[0] - a[1] for a, b in itertools.pairwise(syncs)]
    print(json.dumps({
        "benchmark": "slot_trace", "completions": args.completions, "parallelism": p,
        "seconds": round(t1 - t0, 3), "pods_per_second": round(len(succeeded) / (t1 - t0), 1),
        "avg_running_containers": round(running, 2), "avg_pods_created_not_succeeded": round(alive, 2),
        "job_syncs": len(syncs), "sync_ms_median": round(statistics.median(durs) * 1e3, 2),
        "sync_ms_p90": round(pct(durs, 0.9) * 1e3, 2),
        "between_syncs_ms_median": round(statistics.median(between) * 1e3, 2) if between else None,
    }))


if __name__ == "__main__":
    main()
