"""Client-side CPU per request of joblet's HTTP client (``joblet.client.http.HttpClient``), the
client ``joblet node``, the CLI against a server and the Python clients' tests use.

A ``joblet server --components api`` on a fresh data dir; this process runs ``--concurrency``
tasks that each read and write a ConfigMap, then pause ``--think`` seconds, in a loop (the
pattern of a node agent's pod workers: GET, PUT, a pod runs), while ``--watches`` watch streams stay open (its informers) and the pool
holds ``--connections`` keep-alive connections, most of them idle (its other pods' workers,
waiting for their containers). Prints one
JSON line: requests, wall seconds and this process's CPU (getrusage, every thread) per
request — the figure that a loaded machine does not distort. Compare two trees with
``PYTHONPATH=tree/src``.

    python bench/http_client.py [--requests 4000] [--concurrency 16] [--think 0.05] [--watches 4] [--connections 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import time

from _server import joblet_server

from joblet.client.http import HttpClient
from joblet.kubeconfig import load_access


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def load(kubeconfig: str, requests: int, concurrency: int, watches: int, connections: int,
               think: float) -> dict[str, float]:
    client = HttpClient.from_access(load_access(kubeconfig))
    names = [f"cm-{i}" for i in range(concurrency)]
    for name in names:
        await client.create("configmaps", {"metadata": {"name": name}, "data": {"n": "0"}}, "default")

    async def watch() -> None:
        async for _ in client.watch("configmaps", "default"):
            pass

    watchers = [asyncio.create_task(watch()) for _ in range(watches)]
    left = requests

    async def worker(name: str) -> None:
        nonlocal left
        n = 0
        while left > 0:
            left -= 2
            obj = await client.get("configmaps", name, "default")
            n += 1
            obj["data"] = {"n": str(n)}
            await client.update("configmaps", obj)
            await asyncio.sleep(think)  # a pod runs

    # warm: imports done, and the pool holds --connections keep-alive connections, most of them
    # idle during the run as a node agent's are while its pods run
    await asyncio.gather(*(client.get("configmaps", names[i % concurrency], "default") for i in range(connections)))
    left = requests
    cpu, start = cpu_seconds(), time.perf_counter()
    await asyncio.gather(*(worker(name) for name in names))
    elapsed, used = time.perf_counter() - start, cpu_seconds() - cpu
    for task in watchers:
        task.cancel()
    await asyncio.gather(*watchers, return_exceptions=True)
    await client.close()
    return {"seconds": elapsed, "cpu": used}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--watches", type=int, default=4)
    parser.add_argument("--think", type=float, default=0.05, help="seconds each task pauses after its PUT")
    parser.add_argument("--connections", type=int, default=20, help="keep-alive connections opened before the run")
    args = parser.parse_args()
    with joblet_server("--components", "api") as server:
        m = asyncio.run(load(str(server.kubeconfig), args.requests, args.concurrency, args.watches,
                             args.connections, args.think))
    print(json.dumps({
        "benchmark": "http_client", "requests": args.requests, "concurrency": args.concurrency,
        "watches": args.watches, "connections": args.connections, "think": args.think, "seconds": round(m["seconds"], 3),
        "requests_per_second": round(args.requests / m["seconds"], 1),
        "client_cpu_us_per_request": round(m["cpu"] * 1e6 / args.requests),
        "load_average_1m": round(os.getloadavg()[0], 2), "cpus": os.cpu_count(),
    }))


if __name__ == "__main__":
    main()
