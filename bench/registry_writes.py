"""Registry write cost: CPU time of one Job create + status update + delete through the
in-process client (LocalClient → Registry → MemoryStore), no processes, no HTTP. Compare two
checkouts by running it with each one's ``src`` on PYTHONPATH, alternately (a shared machine's
load moves single runs by tens of percent; CPU time, best of R rounds).

    python bench/registry_writes.py [--jobs 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from joblet.api.registry import Registry
from joblet.client.local import LocalClient
from joblet.clock import FakeClock
from joblet.store.memory import MemoryStore


def job(i: int) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": f"j{i}"},
            "spec": {"template": {"spec": {"restartPolicy": "Never",
                                           "containers": [{"name": "c", "image": "busybox", "command": ["true"]}]}}}}


async def one_round(n: int) -> float:
    registry = Registry(MemoryStore(), FakeClock())
    registry.create("namespaces", {"metadata": {"name": "default"}})
    client = LocalClient(registry)
    start = time.process_time()
    for i in range(n):
        created = await client.create("jobs", job(i), "default")
        await client.update("jobs", {**created, "status": {"active": 1}}, "status")
        await client.delete("jobs", f"j{i}", "default", propagation_policy="Background")
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(one_round(200))  # warm-up: imports, schema caches
    best = min(asyncio.run(one_round(args.jobs)) for _ in range(args.rounds))
    print(json.dumps({"benchmark": "registry_writes", "jobs": args.jobs,
                      "cpu_us_per_create_status_delete": round(best / args.jobs * 1e6, 1)}))


if __name__ == "__main__":
    main()
