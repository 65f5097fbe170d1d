"""Latency: a one-pod Job of /bin/true on a running ``joblet server``, from the create
request to the Complete condition seen through a watch; p50/p95 over R runs.

The client works as a controller built on client-go does: its requests go over a kept-alive
connection and one watch of the namespace's Jobs runs the whole time (opened before the first
run), so the span is the server's work, not TLS handshakes. Until this round the watch was
opened per run after the create and left mid-response, which closed the connection: each run
then paid two new TLS connections (~3 ms each here) on its critical path. Runs are 50 ms apart
(the previous Job's tail, finalizer removal and Events, done before the next create).

    python bench/latency.py [--runs 50]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import threading
import time

import httpx
from _server import joblet_server


def job(name: str) -> dict[str, object]:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"template": {"spec": {"restartPolicy": "Never",
                                           "containers": [{"name": "c", "image": "none", "command": ["/bin/true"]}]}}}}


def complete(obj: dict[str, object]) -> bool:
    conds = (obj.get("status") or {}).get("conditions") or []  # type: ignore[union-attr]
    return any(c.get("type") == "Complete" and c.get("status") == "True" for c in conds)


class CompletionWatch:
    """One watch of the default namespace's Jobs, in a thread for the whole benchmark: when each
    Job was first seen Complete, on CLOCK_MONOTONIC (the clock the server's trace shares)."""

    def __init__(self, client: httpx.Client, base: str) -> None:
        self._jobs = f"{base}/apis/batch/v1/namespaces/default/jobs"
        self._client = client
        self._seen: dict[str, float] = {}
        self._changed = threading.Condition()
        self._rv = client.get(self._jobs).raise_for_status().json()["metadata"]["resourceVersion"]
        threading.Thread(target=self._follow, daemon=True).start()

    def _follow(self) -> None:
        with contextlib.suppress(httpx.HTTPError), self._client.stream("GET", self._jobs, params={"watch": "1", "resourceVersion": self._rv,
                                                             "timeoutSeconds": "3600"}) as stream:
            for line in stream.iter_lines():
                if not line:
                    continue
                obj = json.loads(line)["object"]
                if complete(obj):
                    with self._changed:
                        self._seen.setdefault(obj["metadata"]["name"], time.monotonic())
                        self._changed.notify_all()

    def complete_at(self, name: str, timeout: float = 30.0) -> float:
        with self._changed:
            if not self._changed.wait_for(lambda: name in self._seen, timeout):
                raise SystemExit(f"job {name} did not complete")
            return self._seen[name]


def run_span(client: httpx.Client, watch: CompletionWatch, base: str, name: str) -> tuple[float, float]:
    """(create sent, Complete seen) on CLOCK_MONOTONIC, the clock the server's trace shares."""
    start = time.monotonic()
    client.post(f"{base}/apis/batch/v1/namespaces/default/jobs", json=job(name)).raise_for_status()
    end = watch.complete_at(name)
    time.sleep(0.05)  # the Job's tail (finalizer removal, Events) before the next run
    return start, end


def one_run(client: httpx.Client, watch: CompletionWatch, base: str, name: str) -> float:
    start, end = run_span(client, watch, base, name)
    return end - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    with joblet_server() as server, server.http() as client, server.http() as watching:
        watch = CompletionWatch(watching, server.url)
        one_run(client, watch, server.url, "warmup")
        samples = [one_run(client, watch, server.url, f"lat-{i}") for i in range(args.runs)]
    samples.sort()
    p95 = samples[min(len(samples) - 1, max(0, round(0.95 * len(samples)) - 1))]
    print(json.dumps({
        "benchmark": "latency",
        "runs": args.runs,
        "p50_ms": round(statistics.median(samples) * 1000, 1),
        "p95_ms": round(p95 * 1000, 1),
        "max_ms": round(samples[-1] * 1000, 1),
    }))


if __name__ == "__main__":
    main()
