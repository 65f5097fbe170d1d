"""Per-pod overhead of the podman runtime against the process runtime (runtime level, no API).

Why: the podman runtime is optional because every attempt pays podman's own start-up
(``podman run -d``, ``podman inspect``, a background ``podman rm``); this measures what a
trivial container (``true``) costs end to end through each runtime: start → wait, sequential
and with 4 in flight. Prints one JSON line. Usage: ``python bench/podman.py [N]``.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from joblet.clock import RealClock
from joblet.node.runtimes.base import ContainerRef, ContainerSpec, Runtime
from joblet.node.runtimes.podman import PodmanRuntime, podman_usable
from joblet.node.runtimes.process import ProcessRuntime

REPO = Path(__file__).resolve().parents[1]
ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}


def spec(data: Path, uid: str) -> ContainerSpec:
    return ContainerSpec(ContainerRef(uid, "c", 0), ["true"], dict(ENV), data / "logs" / uid / "c" / "0.log")


async def one(rt: Runtime, data: Path) -> float:
    s = spec(data, uuid.uuid4().hex[:12])
    t0 = time.perf_counter()
    await rt.start(s)
    await rt.wait(s.ref)
    return time.perf_counter() - t0


async def measure(rt: Runtime, data: Path, n: int) -> dict[str, float]:
    seq = [await one(rt, data) for _ in range(n)]
    sem = asyncio.Semaphore(4)

    async def limited() -> float:
        async with sem:
            return await one(rt, data)

    t0 = time.perf_counter()
    await asyncio.gather(*(limited() for _ in range(n)))
    wall = time.perf_counter() - t0
    if isinstance(rt, PodmanRuntime):
        await rt.drain()
    for uid in rt.pods():
        await rt.remove_pod(uid)
    return {"seq_median_ms": round(statistics.median(seq) * 1000, 1),
            "seq_max_ms": round(max(seq) * 1000, 1),
            "parallel4_pods_per_s": round(n / wall, 1)}


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    result: dict[str, Any] = {"bench": "podman", "n": n}
    root = Path(tempfile.mkdtemp(prefix="joblet-bench-podman-"))
    try:
        proc_data = root / "process"
        result["process"] = asyncio.run(measure(ProcessRuntime(proc_data, RealClock()), proc_data, n))
        why = podman_usable()
        if why:
            result["podman"] = {"skipped": why}
        else:
            pod_data = root / "podman"
            subprocess.run([str(REPO / "scripts" / "make-busybox-image.sh"), "--data-dir", str(pod_data)],
                           check=True, capture_output=True)
            rt = PodmanRuntime(pod_data, RealClock())
            result["podman"] = asyncio.run(measure(rt, pod_data, n))
            rt.cli.run_sync(["rmi", "--all", "--force"])
            shutil.rmtree(rt.paths.run_root, ignore_errors=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
