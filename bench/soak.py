"""Soak: a real ``joblet server`` under steady load for a long time; do its resources stay flat?

Load: a CronJob every minute, a stream of small Jobs (one every ``--job-interval`` seconds, each
with ``ttlSecondsAfterFinished: 30`` so the TTL controller and the garbage collector clean up),
and ``--watches`` (default 50) open watches on pods, re-opened when the server ends them.
Every minute: the server's RSS, open fds, the data dir's size, the store's object count and
the p99 of the API requests of that minute. At the end one JSON line: first/last samples and
least-squares slopes per hour (the target: flat; Events expire after 1 h, ``--event-ttl``).

    python bench/soak.py [--minutes 60] [--job-interval 2] [--watches 50] [--event-ttl 3600]
                         [--tracemalloc DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from _server import dir_size, joblet_server, rss_bytes

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
from joblet.kubeconfig import load_access

NS = "/api/v1/namespaces/default"
JOBS = "/apis/batch/v1/namespaces/default/jobs"


def container(command: str) -> dict[str, Any]:
    return {"name": "c", "image": "busybox", "command": ["sh", "-c", command]}


def small_job(name: str) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"ttlSecondsAfterFinished": 30, "backoffLimit": 0, "template": {"spec": {
                "restartPolicy": "Never", "containers": [container("echo soak")]}}}}


def cronjob() -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "every-minute"},
            "spec": {"schedule": "* * * * *", "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 1,
                     "jobTemplate": {"spec": {"backoffLimit": 0, "template": {"spec": {
                         "restartPolicy": "Never", "containers": [container("date")]}}}}}}


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def slope_per_hour(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value), per hour."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    den = sum((t - mx) ** 2 for t, _ in points)
    return 0.0 if den == 0 else sum((t - mx) * (v - my) for t, v in points) / den * 3600


def p99(values: list[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


class Load:
    def __init__(self, kubeconfig: Path) -> None:
        access = load_access(kubeconfig)
        self.make = lambda timeout: httpx.Client(
            base_url=access.server, verify=access.ssl_context(), timeout=timeout,
            headers={"Authorization": f"Bearer {access.token}"})
        self.stop = threading.Event()
        self.latencies: list[float] = []
        self.lock = threading.Lock()
        self.errors = 0
        self.jobs = 0

    def request(self, client: httpx.Client, method: str, path: str, **kw: Any) -> httpx.Response | None:
        start = time.monotonic()
        try:
            response = client.request(method, path, **kw)
        except httpx.HTTPError:
            self.errors += 1
            return None
        with self.lock:
            self.latencies.append(time.monotonic() - start)
        if response.status_code >= 500:
            self.errors += 1
        return response

    def jobs_stream(self, interval: float) -> None:
        with self.make(30) as client:
            i = 0
            while not self.stop.wait(interval):
                i += 1
                r = self.request(client, "POST", JOBS, json=small_job(f"soak-{i}"))
                if r is not None and r.status_code == 201:
                    self.jobs += 1
                self.request(client, "GET", f"{NS}/pods", params={"limit": "50"})

    def watch(self) -> None:
        with self.make(httpx.Timeout(30, read=None)) as client:
            while not self.stop.is_set():
                try:
                    with client.stream("GET", f"{NS}/pods", params={"watch": "1", "timeoutSeconds": "300"}) as r:
                        for _ in r.iter_lines():
                            if self.stop.is_set():
                                return
                except httpx.HTTPError:
                    self.stop.wait(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--job-interval", type=float, default=2.0)
    parser.add_argument("--watches", type=int, default=50)
    parser.add_argument("--event-ttl", type=float, default=3600.0,
                        help="the server's --event-ttl (seconds); shorter shows the plateau in a short run")
    parser.add_argument("--tracemalloc", type=Path, metavar="DIR",
                        help="run the server under tracemalloc, a snapshot per minute in DIR "
                             "(read them with bench/tracemalloc_diff.py DIR)")
    args = parser.parse_args()

    launcher = ("-m", "joblet") if args.tracemalloc is None else (
        str(Path(__file__).resolve().parent / "_traced.py"), str(args.tracemalloc), "60")
    with joblet_server("--event-ttl", str(args.event_ttl), launcher=launcher, timeout=60) as server:
        data, proc = server.data_dir, server.process
        load = Load(server.kubeconfig)
        with load.make(10) as client:
            while load.request(client, "GET", "/version") is None:
                time.sleep(0.1)
            load.request(client, "POST", "/apis/batch/v1/namespaces/default/cronjobs", json=cronjob())
            threads = [threading.Thread(target=load.watch, daemon=True) for _ in range(args.watches)]
            threads.append(threading.Thread(target=load.jobs_stream, args=(args.job_interval,), daemon=True))
            for t in threads:
                t.start()
            start = time.monotonic()
            samples: list[dict[str, float]] = []
            end = start + args.minutes * 60
            while time.monotonic() < end:
                time.sleep(min(60.0, max(0.0, end - time.monotonic())))
                with load.lock:
                    latencies, load.latencies = load.latencies, []
                events = load.request(client, "GET", f"{NS}/events")
                jobs = load.request(client, "GET", JOBS)
                samples.append({
                    "t": time.monotonic() - start, "rss_mb": rss_bytes(proc.pid) / 2**20,
                    "fds": open_fds(proc.pid), "data_mb": dir_size(data) / 2**20,
                    "p99_ms": p99(latencies) * 1000,
                    "events": len(events.json()["items"]) if events is not None else -1,
                    "jobs": len(jobs.json()["items"]) if jobs is not None else -1,
                })
                print(json.dumps({"sample": samples[-1]}), file=sys.stderr, flush=True)
            load.stop.set()
    keys = ("rss_mb", "fds", "data_mb", "p99_ms", "events", "jobs")
    print(json.dumps({
        "bench": "soak", "minutes": args.minutes, "job_interval_s": args.job_interval, "watches": args.watches,
        "event_ttl_s": args.event_ttl,
        "jobs_created": load.jobs, "errors": load.errors, "samples": len(samples),
        "first": {k: round(samples[0][k], 2) for k in keys} if samples else {},
        "last": {k: round(samples[-1][k], 2) for k in keys} if samples else {},
        "slope_per_hour": {k: round(slope_per_hour([(s["t"], s[k]) for s in samples]), 2) for k in keys},
    }))


if __name__ == "__main__":
    main()
