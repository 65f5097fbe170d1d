"""Run ``python -m joblet ...`` with tracemalloc on (from ``interval/2`` on), dumping a snapshot every ``interval`` seconds.

Why: the soak's RSS grows; diffing snapshots taken over time (``bench/soak.py --tracemalloc DIR``
starts the server through this file, ``bench/tracemalloc_diff.py DIR`` reads them) names the
allocation sites that keep growing, without any debug code in joblet itself.

    python bench/_traced.py DIR INTERVAL_SECONDS server --data-dir ... (joblet's argv)
"""

from __future__ import annotations

import gc
import os
import runpy
import sys
import threading
import time
import tracemalloc
from pathlib import Path


def dump_every(out: Path, interval: float) -> None:
    # Start tracing once the server is up: imports under tracemalloc take minutes on a busy
    # machine, and growth (not the start-up heap) is what the snapshots are for.
    time.sleep(interval / 2)
    tracemalloc.start(12)
    n = 0
    while True:
        time.sleep(interval)
        n += 1
        gc.collect()
        snap = tracemalloc.take_snapshot()
        tmp = out / f".snap-{n:03d}"
        snap.dump(str(tmp))
        os.replace(tmp, out / f"snap-{n:03d}")


def main() -> None:
    out, interval = Path(sys.argv[1]), float(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    threading.Thread(target=dump_every, args=(out, interval), daemon=True).start()
    sys.argv = ["joblet", *sys.argv[3:]]
    runpy.run_module("joblet", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
