"""Where the time goes when an Indexed Job's pod is deleted with grace under
``podReplacementPolicy: Failed`` (conformance scenario ``unit-replacement-failed-indexed``):
delete → the Job's status counts the pod terminating (the window the scenario checks) →
the container's TERM trap finishes → pod Failed in the API → replacement created →
replacement Running. In-process control plane with a real node agent and real pods; the
pod-failure backoff base is 1 s as in the conformance suite. Prints one JSON line (seconds
from the delete call, median of --runs; ``pod_failed_max``: the slowest run, where a
lost SIGTERM shows as the 30 s grace period).

    python bench/pod_replacement.py [--runs 3] [--trap-seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

from _server import bench_root

from joblet.clock import RealClock
from joblet.config import ControlPlaneConfig
from joblet.controlplane import ControlPlane
from joblet.node.volumes import unmount_all

CLOCK = RealClock()


def job(trap: float) -> dict[str, Any]:
    script = f"trap 'sleep {trap}; exit 143' TERM; while true; do sleep 1; done"
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "replace", "namespace": "default"},
            "spec": {"completionMode": "Indexed", "parallelism": 2, "completions": 5, "podReplacementPolicy": "Failed",
                     "template": {"spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 30,
                                           "containers": [{"name": "c", "image": "busybox",
                                                           "command": ["sh", "-c", script]}]}}}}


def index_of(pod: dict[str, Any]) -> str:
    return str(pod["metadata"].get("annotations", {}).get("batch.kubernetes.io/job-completion-index"))


async def one_run(data: Path, trap: float) -> dict[str, float]:
    plane = ControlPlane(ControlPlaneConfig(data_dir=data, pod_failure_backoff=1.0), serve_http=False)
    await plane.start()
    client = plane.client
    marks: dict[str, float] = {}
    try:
        await client.create("jobs", job(trap))
        victim: dict[str, Any] | None = None
        while victim is None:
            pods = (await client.list("pods", "default")).items
            running = [p for p in pods if (p.get("status") or {}).get("phase") == "Running"]
            if len(running) == 2:
                victim = next(p for p in running if index_of(p) == "1")
            await asyncio.sleep(0.02)
        t0 = CLOCK.monotonic()
        await client.delete("pods", victim["metadata"]["name"], "default", grace_period_seconds=30)
        uid = victim["metadata"]["uid"]
        while "replacement_running" not in marks:
            now = CLOCK.monotonic() - t0
            for p in (await client.list("pods", "default")).items:
                status = p.get("status") or {}
                if p["metadata"]["uid"] == uid:
                    terminated = ((status.get("containerStatuses") or [{}])[0].get("state") or {}).get("terminated")
                    if terminated:
                        marks.setdefault("container_terminated_reported", now)
                    if status.get("phase") == "Failed":
                        marks.setdefault("pod_failed", now)
                elif index_of(p) == "1":
                    marks.setdefault("replacement_created", now)
                    if status.get("phase") == "Running":
                        marks.setdefault("replacement_running", now)
            status = (await client.get("jobs", "replace", "default")).get("status") or {}
            if status.get("terminating") == 1:
                marks.setdefault("job_status_terminating", now)
            if not any(p["metadata"]["uid"] == uid for p in (await client.list("pods", "default")).items):
                marks.setdefault("old_pod_gone", CLOCK.monotonic() - t0)
            await asyncio.sleep(0.02)
            if CLOCK.monotonic() - t0 > 120:
                raise SystemExit("no replacement within 120 s")
        await client.delete("jobs", "replace", "default", propagation_policy="Background")
        return marks
    finally:
        await plane.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--trap-seconds", type=float, default=5.0)
    args = parser.parse_args()
    runs = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(dir=bench_root()) as tmp:
            try:
                runs.append(asyncio.run(one_run(Path(tmp) / "data", args.trap_seconds)))
            finally:
                unmount_all(Path(tmp))
    keys = sorted({k for r in runs for k in r}, key=lambda k: statistics.median(r.get(k, 0) for r in runs))
    print(json.dumps({"trap_seconds": args.trap_seconds, "runs": args.runs,
                      **{k: round(statistics.median(r[k] for r in runs if k in r), 2) for k in keys},
                      "pod_failed_max": round(max(r.get("pod_failed", 0.0) for r in runs), 2)}))


if __name__ == "__main__":
    main()
