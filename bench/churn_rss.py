"""Churn: does the server's RSS level off when pods come and go, or grow without bound?

A real ``joblet server`` runs ``--pods`` pods of ``/bin/true`` as Jobs of 20 completions
(parallelism 4, ``ttlSecondsAfterFinished: 0``, so every Job and its pods are deleted again),
five Jobs at a time, with Events expiring after ``--event-ttl`` seconds. Every ``--every``
pods it samples the server's RSS and the live Event count. What is bounded by design fills
first: each resource's watch history (10,000 events or 64 MiB) and the Events of the last TTL;
after that a flat RSS is the target. The JSON line gives MB per 1,000 pods over the first and
the last third of the run: the first is the fill, the last is what still grows.

    python bench/churn_rss.py [--pods 6000] [--every 500] [--event-ttl 30]

Faster to read than ``bench/soak.py`` (an hour of wall time for ~1,800 pods): the same growth
per pod shows in minutes.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from _server import joblet_server, rss_bytes

JOBS = "/apis/batch/v1/namespaces/default/jobs"
PODS_PER_JOB = 20


def job(name: str) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"ttlSecondsAfterFinished": 0, "completions": PODS_PER_JOB, "parallelism": 4,
                     "template": {"spec": {"restartPolicy": "Never", "containers": [
                         {"name": "c", "image": "none", "command": ["/bin/true"]}]}}}}


def per_thousand(samples: list[tuple[int, float]]) -> float:
    (p0, r0), (p1, r1) = samples[0], samples[-1]
    return round((r1 - r0) / (p1 - p0) * 1000, 1) if p1 > p0 else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pods", type=int, default=6000)
    ap.add_argument("--every", type=int, default=500)
    ap.add_argument("--event-ttl", type=int, default=30)
    args = ap.parse_args()
    samples: list[tuple[int, float]] = []
    with joblet_server("--event-ttl", str(args.event_ttl)) as server, server.http() as http:
        pid = server.process.pid
        samples.append((0, rss_bytes(pid) / 2**20))
        started, jobs = time.monotonic(), 0
        while jobs * PODS_PER_JOB < args.pods:
            for _ in range(5):
                jobs += 1
                http.post(server.url + JOBS, json=job(f"churn-{jobs}")).raise_for_status()
            while http.get(server.url + JOBS).json()["items"]:
                time.sleep(0.2)
            pods = jobs * PODS_PER_JOB
            if pods % args.every == 0:
                events = len(http.get(server.url + "/api/v1/events").json()["items"])
                samples.append((pods, rss_bytes(pid) / 2**20))
                print(f"pods {pods} rss {samples[-1][1]:.0f} MB events {events}", flush=True)
        third = max(1, len(samples) // 3)
        print(json.dumps({
            "pods": jobs * PODS_PER_JOB, "seconds": round(time.monotonic() - started, 1),
            "event_ttl": args.event_ttl,
            "rss_mb_start": round(samples[0][1]), "rss_mb_end": round(samples[-1][1]),
            "mb_per_1000_pods_first_third": per_thousand(samples[:third + 1]),
            "mb_per_1000_pods_last_third": per_thousand(samples[-third - 1:]),
        }))


if __name__ == "__main__":
    main()
