"""Per-container cost of the bubblewrap sandbox (volumes at their mountPath), measured.

Why: every pod now runs contained by bubblewrap (own PID/IPC/mount namespaces, data dir
hidden); this tells what that costs over an uncontained process. Runs N sequential ``true``
containers through the real process runtime (shim, cgroups, status file) four ways: plain
(no bwrap, what pods got before), contained without volumes, contained with one bind at an
existing path, and with a mount point that does not exist on the host (the root is then
rebuilt from its entries).
Prints one JSON line: milliseconds per container (median) and the overhead over plain.

    python bench/isolation.py [N]
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from joblet.clock import RealClock
from joblet.node.runtimes.base import ContainerRef, ContainerSpec
from joblet.node.runtimes.process import ProcessRuntime
from joblet.node.volumes import Mount

ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin"}


async def run(rt: ProcessRuntime, n: int, kind: str, scratch: Path) -> list[float]:
    times = []
    mounts = {"plain": [], "contained": [], "bind-existing": [Mount(scratch, "/mnt")],
              "bind-new-path": [Mount(scratch, "/joblet-bench-volume")]}[kind]
    for i in range(n):
        ref = ContainerRef(f"bench-{kind}", "c", i)
        spec = ContainerSpec(ref, ["true"], ENV, scratch / "logs" / kind / f"{i}.log", sandbox=kind != "plain",
                             mounts=mounts)
        t0 = time.perf_counter()
        await rt.start(spec)
        result = await rt.wait(ref)
        times.append((time.perf_counter() - t0) * 1000)
        assert result.exit_code == 0, (kind, result)
    return times


async def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        rt = ProcessRuntime(scratch / "data", RealClock())
        out: dict[str, object] = {"bench": "isolation", "containers": n}
        try:
            for kind in ("plain", "contained", "bind-existing", "bind-new-path"):
                await run(rt, 3, kind, scratch)  # warm up
                out[f"{kind}_ms"] = round(statistics.median(await run(rt, n, kind, scratch)), 2)
        finally:
            for uid in rt.pods():
                await rt.remove_pod(uid)
        plain = float(out["plain_ms"])  # type: ignore[arg-type]
        out["overhead_contained_ms"] = round(float(out["contained_ms"]) - plain, 2)  # type: ignore[arg-type]
        out["overhead_ms"] = round(float(out["bind-existing_ms"]) - plain, 2)  # type: ignore[arg-type]
        out["overhead_new_path_ms"] = round(float(out["bind-new-path_ms"]) - plain, 2)  # type: ignore[arg-type]
        print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 50))
