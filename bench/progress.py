"""Progress refresh: how often ``joblet run`` of an Indexed Job of /bin/true prints a new progress
line (``job/NAME: S/N succeeded, A active, ...``; off a terminal it prints one per change) while
the Job runs: lines per second and the longest gap between two.

    python bench/progress.py [--completions 10000] [--parallelism 16]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _server import bench_root
from throughput import manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--completions", type=int, default=10_000)
    parser.add_argument("--parallelism", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="joblet-bench-", dir=bench_root()) as tmp:
        path = Path(tmp) / "job.json"
        path.write_text(manifest(args.completions, args.parallelism))
        env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "JOBLET_DATA_DIR")}
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "joblet", "run", "-f", str(path), "--data-dir",
                                 str(Path(tmp) / "data")], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
        assert proc.stdout is not None
        stamps = [time.perf_counter() for line in proc.stdout if line.startswith("job/throughput: ")]
        wall = time.perf_counter() - start
        if proc.wait() != 0:
            sys.exit(f"joblet run failed ({proc.returncode})")
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    span = stamps[-1] - stamps[0] if len(stamps) > 1 else 0.0
    print(json.dumps({
        "benchmark": "progress", "completions": args.completions, "parallelism": args.parallelism,
        "wall_seconds": round(wall, 1), "progress_lines": len(stamps),
        "refreshes_per_second": round((len(stamps) - 1) / span, 2) if span else 0.0,
        "longest_gap_seconds": round(max(gaps), 2) if gaps else None,
        "load_average_1m": round(os.getloadavg()[0], 2),
    }))


if __name__ == "__main__":
    main()
