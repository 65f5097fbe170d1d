"""Throughput: an Indexed Job of N completions of /bin/true with parallelism P, run by
``joblet run`` on a fresh data dir, against ``seq N | xargs -P P -n1 /bin/true`` on the
same machine. Prints one JSON line with both wall times and their ratio.

    python bench/throughput.py [--completions 5000] [--parallelism 16]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _server import bench_root


def manifest(completions: int, parallelism: int) -> str:
    return json.dumps({
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "throughput"},
        "spec": {"completionMode": "Indexed", "completions": completions, "parallelism": parallelism,
                 "template": {"spec": {"restartPolicy": "Never",
                                       "containers": [{"name": "true", "image": "none", "command": ["/bin/true"]}]}}},
    })


def time_xargs(completions: int, parallelism: int) -> float:
    start = time.perf_counter()
    subprocess.run(f"seq {completions} | xargs -P {parallelism} -n1 /bin/true", shell=True, check=True)
    return time.perf_counter() - start


def time_joblet(completions: int, parallelism: int) -> tuple[float, int]:
    with tempfile.TemporaryDirectory(prefix="joblet-bench-", dir=bench_root()) as tmp:
        path = Path(tmp) / "job.json"
        path.write_text(manifest(completions, parallelism))
        env = {**os.environ, "JOBLET_DATA_DIR": str(Path(tmp) / "data")}
        env.pop("KUBECONFIG", None)
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "joblet", "run", "-f", str(path), "--data-dir",
                               str(Path(tmp) / "data")], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            sys.exit(f"joblet run failed ({proc.returncode}): {proc.stderr[-2000:]}")
        return elapsed, proc.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--completions", type=int, default=5000)
    parser.add_argument("--parallelism", type=int, default=16)
    args = parser.parse_args()
    baseline = time_xargs(args.completions, args.parallelism)
    joblet, _ = time_joblet(args.completions, args.parallelism)
    print(json.dumps({
        "benchmark": "throughput",
        "completions": args.completions,
        "parallelism": args.parallelism,
        "joblet_seconds": round(joblet, 3),
        "joblet_pods_per_second": round(args.completions / joblet, 1),
        "xargs_seconds": round(baseline, 3),
        "xargs_per_second": round(args.completions / baseline, 1),
        "ratio_of_baseline": round(baseline / joblet, 3),
        "cpus": os.cpu_count(),
    }))


if __name__ == "__main__":
    main()
