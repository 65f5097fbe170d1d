"""Job sync cost against Job size: CPU time of the Job controller's decisions for one sync
(start_sync, plan_manage, decide_completion, apply_active_counts, plan_tracking) of an Indexed
Job of N completions, 90% of them counted (a few holes), 8 pods newly succeeded and 8 running.
No I/O: the API writes a sync makes are the same at any size. Compare two checkouts by running
it with each one's ``src`` on PYTHONPATH (CPU time, best of R rounds).

    python bench/job_sync.py [--completions 1000 10000 100000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import time
from datetime import UTC, datetime
from typing import Any

from joblet.api.intervals import format_intervals
from joblet.controllers.job import decisions as d
from joblet.controllers.job.backoff import BackoffRecord
from joblet.controllers.job.config import JobControllerConfig
from joblet.controllers.job.pods import COMPLETION_INDEX_KEY, TRACKING_FINALIZER

Obj = dict[str, Any]
NOW = datetime(2024, 1, 1, 0, 5, tzinfo=UTC)


def _pod(ix: int, phase: str) -> Obj:
    return {"metadata": {"name": f"p{ix}", "namespace": "default", "uid": f"u{ix}", "finalizers": [TRACKING_FINALIZER],
                         "annotations": {COMPLETION_INDEX_KEY: str(ix)}, "labels": {COMPLETION_INDEX_KEY: str(ix)}},
            "status": {"phase": phase}}


def _case(completions: int) -> tuple[Obj, list[Obj]]:
    rng = random.Random(1)
    done = completions * 9 // 10
    holes = set(rng.sample(range(done), 16))
    completed = set(range(done)) - holes
    job = {"apiVersion": "batch/v1", "kind": "Job",
           "metadata": {"name": "j", "namespace": "default", "uid": "ju", "resourceVersion": "5"},
           "spec": {"completions": completions, "parallelism": 16, "completionMode": "Indexed", "backoffLimit": 6,
                    "template": {"spec": {"containers": [{"name": "c", "image": "x"}], "restartPolicy": "Never"}}},
           "status": {"succeeded": len(completed), "active": 16, "completedIndexes": format_intervals(completed),
                      "startTime": "2024-01-01T00:00:00Z", "uncountedTerminatedPods": {}}}
    pods = [_pod(ix, "Succeeded") for ix in sorted(holes)[:8]] + [_pod(ix, "Running") for ix in range(done, done + 8)]
    return job, pods


def _sync(job: Obj, pods: list[Obj], config: JobControllerConfig) -> None:
    ctx = d.start_sync(copy.deepcopy(job), pods, BackoffRecord(), NOW, True, set())
    d.plan_manage(ctx, NOW, config)
    d.decide_completion(ctx, True, NOW)
    d.apply_active_counts(ctx, False)
    d.plan_tracking(ctx, False, NOW, config)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--completions", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--syncs", type=int, default=100)
    args = parser.parse_args()
    config = JobControllerConfig()
    result: dict[str, float] = {}
    for completions in args.completions:
        job, pods = _case(completions)
        best = float("inf")
        for _ in range(args.rounds):
            start = time.process_time()
            for _ in range(args.syncs):
                _sync(job, pods, config)
            best = min(best, (time.process_time() - start) / args.syncs)
        result[str(completions)] = round(best * 1e6)
    print(json.dumps({"benchmark": "job_sync", "cpu_us_per_sync_by_completions": result}))


if __name__ == "__main__":
    main()
