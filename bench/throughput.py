"""Throughput: an Indexed Job of N completions of /bin/true with parallelism P, run by
``joblet run`` on a fresh data dir, against ``seq N | xargs -P P -n1 /bin/true`` on the
same machine. Prints one JSON line with both wall times and their ratio.

    python bench/throughput.py [--completions 5000] [--parallelism 16] [--store postgresql://…]

With ``--store URL`` the same Job also runs on that store (``joblet run --store``, the URL passed
in JOBLET_STORE, never on argv) right after the default SQLite run, and the line adds both
pods-per-second figures, the ratio ``store_vs_sqlite`` (target ≥ 0.7 for PostgreSQL) and each
run's CPU seconds (the joblet process and its children, from rusage; the database server's own
CPU is not in it). The database is emptied of joblet's tables first: give it a scratch database.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def empty_store(url: str) -> None:
    """Drop joblet's tables from a scratch PostgreSQL database (each run starts empty)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS joblet_objects, joblet_events, joblet_rv")


def time_joblet(completions: int, parallelism: int, store: str | None = None) -> tuple[float, float]:
    """Wall seconds and CPU seconds of one ``joblet run`` of the Job."""
    with tempfile.TemporaryDirectory(prefix="joblet-bench-", dir=bench_root()) as tmp:
        path = Path(tmp) / "job.json"
        path.write_text(manifest(completions, parallelism))
        env = {**os.environ, "JOBLET_DATA_DIR": str(Path(tmp) / "data")}
        env.pop("KUBECONFIG", None)
        env.pop("JOBLET_STORE", None)
        if store is not None:
            empty_store(store)
            env["JOBLET_STORE"] = store
        cpu = children_cpu()
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "joblet", "run", "-f", str(path), "--data-dir",
                               str(Path(tmp) / "data")], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            sys.exit(f"joblet run failed ({proc.returncode}): {proc.stderr[-2000:]}")
        return elapsed, children_cpu() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--completions", type=int, default=5000)
    parser.add_argument("--parallelism", type=int, default=16)
    parser.add_argument("--store", metavar="URL", default=os.environ.get("JOBLET_BENCH_STORE"),
                        help="also run on this store (a scratch postgresql:// database) and compare with SQLite; "
                        "env JOBLET_BENCH_STORE works too")
    args = parser.parse_args()
    baseline = time_xargs(args.completions, args.parallelism)
    joblet, joblet_cpu = time_joblet(args.completions, args.parallelism)
    extra: dict[str, object] = {}
    if args.store:
        other, other_cpu = time_joblet(args.completions, args.parallelism, args.store)
        extra = {
            "store": args.store.split("://", 1)[0],
            "sqlite_cpu_seconds": round(joblet_cpu, 3),
            "store_seconds": round(other, 3),
            "store_pods_per_second": round(args.completions / other, 1),
            "store_cpu_seconds": round(other_cpu, 3),
            "store_vs_sqlite": round(joblet / other, 3),
        }
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
        **extra,
    }))


if __name__ == "__main__":
    main()
