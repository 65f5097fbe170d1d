"""How long one LIST of many pods stops the server: a ``joblet server`` holding N pods (Pending:
their nodeSelector matches no node, so nothing runs), read whole and in chunks of 500 as kubectl
does (``?limit=500`` then ``continue``), as JSON and as kubectl's Table, while a second client
GETs one object every 10 ms. Prints one JSON line: per mode, the LIST's wall time and the
slowest probe GET meanwhile (the longest the event loop was unavailable to anyone else).

    python bench/list_chunks.py [--pods 20000] [--chunk 500]
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from typing import Any

import httpx
from _server import Server, joblet_server

PODS = "/api/v1/namespaces/default/pods"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


def pod(i: int) -> dict[str, Any]:
    return {"metadata": {"name": f"p-{i:06d}", "labels": {"app": "list-chunks"}},
            "spec": {"restartPolicy": "Never", "nodeSelector": {"list-chunks": "nowhere"},
                     "containers": [{"name": "c", "image": "none", "command": ["/bin/true"],
                                     "env": [{"name": "INDEX", "value": str(i)}]}]}}


def read_all(client: httpx.Client, accept: str, chunk: int | None) -> int:
    """Every pod, in one request or in chunks; how many."""
    count, token = 0, ""
    while True:
        params = {"limit": str(chunk)} if chunk else {}
        if token:
            params["continue"] = token
        answer = client.get(PODS, params=params, headers={"Accept": accept}).raise_for_status().json()
        count += len(answer.get("items") or answer.get("rows") or [])
        token = (answer.get("metadata") or {}).get("continue") or ""
        if not token:
            return count


def measured(server: Server, client: httpx.Client, accept: str, chunk: int | None) -> dict[str, float]:
    stop = threading.Event()
    worst = [0.0]

    def probe() -> None:
        with server.http() as c:
            while not stop.is_set():
                t0 = time.perf_counter()
                c.get("/api/v1/namespaces/default/configmaps/absent")
                worst[0] = max(worst[0], time.perf_counter() - t0)
                time.sleep(0.01)

    client.get(PODS, params={"limit": "1"}, headers={"Accept": accept})  # warm: the first Table costs ~0.2 s once
    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    time.sleep(0.5)
    worst[0] = 0.0
    t0 = time.perf_counter()
    count = read_all(client, accept, chunk)
    wall = time.perf_counter() - t0
    time.sleep(0.2)
    stop.set()
    thread.join()
    return {"pods": count, "list_ms": round(wall * 1000, 1), "slowest_probe_ms": round(worst[0] * 1000, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=20_000)
    parser.add_argument("--chunk", type=int, default=500)
    args = parser.parse_args()
    with joblet_server(timeout=60) as server, server.http() as client:
        for i in range(args.pods):
            client.post(PODS, json=pod(i)).raise_for_status()
        result: dict[str, Any] = {"benchmark": "list_chunks", "pods": args.pods, "chunk": args.chunk}
        for name, accept in (("json", "application/json"), ("table", TABLE)):
            result[f"{name}_whole"] = measured(server, client, accept, None)
            result[f"{name}_chunked"] = measured(server, client, accept, args.chunk)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
