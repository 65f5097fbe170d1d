"""Latency: a one-pod Job of /bin/true on a running ``joblet server``, from the create
request to the Complete condition seen through a watch; p50/p95 over R runs.

    python bench/latency.py [--runs 50]
"""

from __future__ import annotations

import argparse
import json
import statistics
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


def run_span(client: httpx.Client, base: str, name: str) -> tuple[float, float]:
    """(create sent, Complete seen) on CLOCK_MONOTONIC, the clock the server's trace shares."""
    jobs = f"{base}/apis/batch/v1/namespaces/default/jobs"
    start = time.monotonic()
    created = client.post(jobs, json=job(name))
    created.raise_for_status()
    rv = created.json()["metadata"]["resourceVersion"]
    with client.stream("GET", jobs, params={"watch": "1", "fieldSelector": f"metadata.name={name}",
                                            "resourceVersion": rv, "timeoutSeconds": "30"}) as stream:
        for line in stream.iter_lines():
            if line and complete(json.loads(line)["object"]):
                return start, time.monotonic()
    raise SystemExit(f"job {name} did not complete")


def one_run(client: httpx.Client, base: str, name: str) -> float:
    start, end = run_span(client, base, name)
    return end - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    with joblet_server() as server, server.http() as client:
        one_run(client, server.url, "warmup")
        samples = [one_run(client, server.url, f"lat-{i}") for i in range(args.runs)]
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
