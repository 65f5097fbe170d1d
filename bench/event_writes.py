"""Event writes per pod: how many core/v1 Event writes (creates and count patches, seen as
ADDED and MODIFIED on a watch of the namespace's Events) a running ``joblet server`` makes for
an Indexed Job of N pods of /bin/true, and how many Events are left in the store once it is
Complete — by involved object kind and reason. Also the server's CPU time per pod (its own
process and its reaped children, from /proc: steady on a loaded machine, where wall time is not).

Each Event write is a store write, a watch event for every Event watcher (``joblet run``,
``kubectl get events -w``, the dashboard) and a row the Event TTL controller deletes an hour
later; client-go's EventCorrelator keeps a Job's per-pod ``SuccessfulCreate`` Events to ~25.

    python bench/event_writes.py [--pods 600] [--parallelism 16]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from _server import joblet_server


def cpu_seconds(pid: int) -> float:
    """utime + stime + cutime + cstime of ``pid``, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=600)
    parser.add_argument("--parallelism", type=int, default=16)
    parser.add_argument("--settle", type=float, default=3.0, help="seconds to keep counting after Complete")
    args = parser.parse_args()
    with joblet_server() as server, server.http(120) as http:
        ns = "/api/v1/namespaces/default/events"
        jobs = "/apis/batch/v1/namespaces/default/jobs"
        rv = http.get(ns).json()["metadata"]["resourceVersion"]
        writes: collections.Counter[str] = collections.Counter()
        stop = threading.Event()

        def count_writes() -> None:
            with contextlib.suppress(httpx.HTTPError), server.http(3600) as watcher, watcher.stream(
                    "GET", ns, params={"watch": "1", "resourceVersion": rv, "timeoutSeconds": "3600"}) as stream:
                for line in stream.iter_lines():
                    if stop.is_set():
                        return
                    if line:
                        ev = json.loads(line)
                        if ev["type"] in ("ADDED", "MODIFIED"):
                            writes[f"{ev['type']} {ev['object']['involvedObject'].get('kind')}"] += 1

        threading.Thread(target=count_writes, daemon=True).start()
        job: dict[str, Any] = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "events"}, "spec": {
            "completions": args.pods, "parallelism": args.parallelism, "completionMode": "Indexed",
            "template": {"spec": {"restartPolicy": "Never", "containers": [
                {"name": "c", "image": "none", "command": ["/bin/true"]}]}}}}
        cpu0, start = cpu_seconds(server.process.pid), time.perf_counter()
        http.post(jobs, json=job).raise_for_status()
        while not any(c["type"] == "Complete" and c["status"] == "True"
                      for c in (http.get(f"{jobs}/events").json().get("status") or {}).get("conditions") or []):
            time.sleep(0.5)
        seconds = time.perf_counter() - start
        time.sleep(args.settle)
        cpu = cpu_seconds(server.process.pid) - cpu0
        stop.set()
        items = http.get(ns).json()["items"]
    stored = collections.Counter(f"{e['involvedObject'].get('kind')} {e['reason']}" for e in items)
    job_events = [e for e in items if e["involvedObject"].get("kind") == "Job"]
    print(json.dumps({
        "bench": "event_writes", "pods": args.pods, "parallelism": args.parallelism,
        "event_writes": sum(writes.values()), "event_writes_per_pod": round(sum(writes.values()) / args.pods, 2),
        "writes": dict(sorted(writes.items())),
        "events_stored": len(items), "events_stored_by_kind_reason": dict(sorted(stored.items())),
        "job_events": sorted((e["reason"], e.get("count", 1), e["message"][:60]) for e in job_events)[-3:],
        "server_cpu_s": round(cpu, 2), "server_cpu_ms_per_pod": round(cpu * 1000 / args.pods, 2),
        "seconds_to_complete": round(seconds, 2),
    }))


if __name__ == "__main__":
    main()
