"""Scale: a 100,000-completion Indexed Job (parallelism 64) on a running ``joblet server``:
wall time, peak RSS of the server process, API GET latency of the Job while it runs
(p50/p99), and the size of the data dir at the end.

    python bench/scale.py [--completions 100000] [--parallelism 64]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from _server import dir_size, joblet_server, peak_rss_bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--completions", type=int, default=100_000)
    parser.add_argument("--parallelism", type=int, default=64)
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args()
    manifest = {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "scale"},
        "spec": {"completionMode": "Indexed", "completions": args.completions, "parallelism": args.parallelism,
                 "template": {"spec": {"restartPolicy": "Never",
                                       "containers": [{"name": "c", "image": "none", "command": ["/bin/true"]}]}}},
    }
    get_ms: list[float] = []
    with joblet_server() as server, server.http() as client:
        url = f"{server.url}/apis/batch/v1/namespaces/default/jobs"
        start = time.perf_counter()
        client.post(url, json=manifest).raise_for_status()
        deadline = start + args.timeout
        succeeded = 0
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            job = client.get(f"{url}/scale").json()
            get_ms.append((time.perf_counter() - t0) * 1000)
            succeeded = (job.get("status") or {}).get("succeeded", 0)
            conds = (job.get("status") or {}).get("conditions") or []
            if any(c["type"] in ("Complete", "Failed") and c["status"] == "True" for c in conds):
                break
            time.sleep(0.2)
        wall = time.perf_counter() - start
        peak = peak_rss_bytes(server.process.pid)
        size = dir_size(server.data_dir)
    get_ms.sort()
    print(json.dumps({
        "benchmark": "scale",
        "completions": args.completions,
        "parallelism": args.parallelism,
        "succeeded": succeeded,
        "wall_seconds": round(wall, 1),
        "pods_per_second": round(succeeded / wall, 1),
        "peak_rss_mb": round(peak / 2**20, 1),
        "get_p50_ms": round(statistics.median(get_ms), 2),
        "get_p99_ms": round(get_ms[min(len(get_ms) - 1, int(0.99 * len(get_ms)))], 2),
        "data_dir_mb": round(size / 2**20, 1),
    }))


if __name__ == "__main__":
    main()
