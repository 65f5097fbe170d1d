"""Event recording cost: CPU time to record the Events of an N-pod Job — N ``SuccessfulCreate``
on the Job, ``Scheduled``, ``Created`` and ``Started`` on each pod, ``Completed`` — through the
recorder joblet's controllers and node agent use (ClientEventRecorder → LocalClient → Registry
→ MemoryStore), in process, no HTTP. Prints CPU µs per pod (best of R rounds: a shared machine's
load moves single runs by tens of percent) and the Events left in the store. Compare two
checkouts by running it with each one's ``src`` on PYTHONPATH, alternately.

    python bench/event_recorder.py [--pods 600] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from joblet.api.registry import Registry
from joblet.client.events import ClientEventRecorder
from joblet.client.local import LocalClient
from joblet.clock import FakeClock
from joblet.store.memory import MemoryStore


def obj(kind: str, name: str, api_version: str) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind,
            "metadata": {"name": name, "namespace": "default", "uid": f"uid-{kind}-{name}"}}


async def one_round(pods: int) -> tuple[float, int]:
    clock = FakeClock()
    client = LocalClient(Registry(MemoryStore(), clock))
    await client.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}})
    # one recorder (one name sequence) for all sources: on a FakeClock two would name Events alike
    recorder = ClientEventRecorder(client, clock, "job-controller")
    job = obj("Job", "big", "batch/v1")
    start = time.process_time()
    for i in range(pods):
        pod = obj("Pod", f"big-{i}", "v1")
        recorder.event(job, "Normal", "SuccessfulCreate", f"Created pod: big-{i}")
        recorder.event(pod, "Normal", "Scheduled", f"Successfully assigned default/big-{i} to node",
                       component="default-scheduler")
        recorder.event(pod, "Normal", "Created", "Created container c", component="kubelet")
        recorder.event(pod, "Normal", "Started", "Started container c", component="kubelet")
        if i % 16 == 15:
            clock.advance(0.05)
            await recorder.flush()
    recorder.event(job, "Normal", "Completed", "Job completed")
    await recorder.flush()
    cpu = time.process_time() - start
    stored = len((await client.list("events", "default")).items)
    await recorder.close()
    return cpu, stored


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    results = [asyncio.run(one_round(args.pods)) for _ in range(args.rounds)]
    best = min(cpu for cpu, _ in results)
    print(json.dumps({"bench": "event_recorder", "pods": args.pods, "rounds": args.rounds,
                      "cpu_us_per_pod": round(best * 1e6 / args.pods), "events_stored": results[0][1]}))


if __name__ == "__main__":
    main()
