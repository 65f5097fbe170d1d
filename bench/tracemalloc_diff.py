"""Which allocation sites grew between two tracemalloc snapshots of a soak's server.

Why: ``bench/soak.py --tracemalloc DIR`` leaves a snapshot per minute in DIR; this prints the
sites (innermost joblet frame, and the full traceback of the largest) whose live bytes grew
most between the first and the last snapshot (or the two named), plus each snapshot's total,
so a leak shows as a site that grows every minute and a bounded structure as one that levels off.

    python bench/tracemalloc_diff.py DIR [--top 25] [--first snap-002] [--last snap-030]
"""

from __future__ import annotations

import argparse
import tracemalloc
from pathlib import Path


def total_mb(snap: tracemalloc.Snapshot) -> float:
    return sum(s.size for s in snap.statistics("filename")) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dir", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--first")
    parser.add_argument("--last")
    parser.add_argument("--frames", type=int, default=6, help="frames of each traceback to print")
    args = parser.parse_args()
    names = sorted(p.name for p in args.dir.glob("snap-*"))
    first = args.first or names[0]
    last = args.last or names[-1]
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
              tracemalloc.Filter(False, "<frozen importlib._bootstrap_external>")]
    a = tracemalloc.Snapshot.load(str(args.dir / first)).filter_traces(ignore)
    b = tracemalloc.Snapshot.load(str(args.dir / last)).filter_traces(ignore)
    print(f"{first}: {total_mb(a):.1f} MB traced   {last}: {total_mb(b):.1f} MB traced")
    print("\n== by line (innermost frame) ==")
    for stat in b.compare_to(a, "lineno")[: args.top]:
        print(f"{stat.size_diff / 2**20:+8.2f} MB {stat.count_diff:+8d} blocks  now {stat.size / 2**20:7.2f} MB  "
              f"{stat.traceback[0].filename}:{stat.traceback[0].lineno}")
    print("\n== by traceback ==")
    for stat in b.compare_to(a, "traceback")[: args.top]:
        print(f"{stat.size_diff / 2**20:+8.2f} MB {stat.count_diff:+8d} blocks  now {stat.size / 2**20:7.2f} MB")
        for frame in list(stat.traceback)[-args.frames:]:
            print(f"      {frame.filename}:{frame.lineno}")


if __name__ == "__main__":
    main()
