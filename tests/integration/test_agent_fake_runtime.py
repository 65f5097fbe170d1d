"""The node agent over the in-memory FakeRuntime: pod lifecycle decisions in milliseconds.

The agent, the registry and the log store are real; only the containers are the fake's
``sh -c`` subset (joblet.node.runtimes.fake). What needs real processes (signals, cgroups,
sandbox, adoption of a live shim) stays in test_node_agent.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from joblet.api.registry import Registry
from joblet.client.local import LocalClient
from joblet.clock import RealClock
from joblet.errors import NotFound
from joblet.node.agent import NodeAgent
from joblet.node.logs import LogStore
from joblet.node.runtimes.fake import FakeHost
from joblet.node.runtimes.registry import RUNTIMES, RuntimeOptions
from joblet.store.memory import MemoryStore

Obj = dict[str, Any]


def pod(name: str, script: str, policy: str = "Never", init: str | None = None) -> Obj:
    spec: Obj = {"nodeName": "n1", "restartPolicy": policy, "terminationGracePeriodSeconds": 1,
                 "containers": [{"name": "main", "image": "busybox", "command": ["sh", "-c", script],
                                 "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {
                                             "fieldPath": "metadata.name"}}},
                                         {"name": "GREETING", "value": "hi-$(POD_NAME)"}]}]}
    if init is not None:
        spec["initContainers"] = [{"name": "setup", "image": "busybox", "command": ["sh", "-c", init]}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"}, "spec": spec}


class Node:
    def __init__(self, tmp_path: Path) -> None:
        self.clock = RealClock()
        self.logs = LogStore(tmp_path, self.clock)
        self.client = LocalClient(Registry(MemoryStore(), self.clock), self.logs)
        # the fake is built through the runtime table, as `joblet server --runtime fake` does
        self.runtime = RUNTIMES["fake"].factory(RuntimeOptions(tmp_path, self.clock))
        self.agent = NodeAgent(self.client, "n1", tmp_path, self.clock, self.runtime, crash_loop_backoff=0.05,
                               crash_loop_backoff_max=0.1, logs=self.logs)

    async def until(self, name: str, check: Callable[[Obj], bool]) -> Obj:
        async def poll() -> Obj:
            while True:
                try:
                    obj: Obj = await self.client.get("pods", name, "default")
                    if check(obj):
                        return obj
                except NotFound:
                    pass
                await asyncio.sleep(0.01)

        return await asyncio.wait_for(poll(), 10)

    async def log(self, name: str, container: str = "main") -> bytes:
        return b"".join([c async for c in self.logs.read("default", name, container)])


@asynccontextmanager
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    n = Node(tmp_path)
    await n.client.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}})
    await n.client.create("serviceaccounts", {"metadata": {"name": "default", "namespace": "default"}})
    await n.agent.start()
    try:
        yield n
    finally:
        await n.agent.stop()
        n.runtime.close()


def phase(p: str) -> Callable[[Obj], bool]:
    return lambda o: (o.get("status") or {}).get("phase") == p


def test_fake_is_a_row_of_the_runtime_table(tmp_path: Path) -> None:
    assert RUNTIMES["fake"].usable() == (True, "")
    assert isinstance(getattr(RUNTIMES["fake"].factory(RuntimeOptions(tmp_path, RealClock())), "host", None),
                      FakeHost)


def test_success_with_env_logs_and_init_order(tmp_path: Path) -> None:
    async def go() -> None:
        async with node(tmp_path) as n:
            await n.client.create("pods", pod("ok", 'echo "$GREETING"', init="echo init"))
            done = await n.until("ok", phase("Succeeded"))
            term = done["status"]["containerStatuses"][0]["state"]["terminated"]
            assert (term["exitCode"], term["reason"]) == (0, "Completed")
            assert done["status"]["initContainerStatuses"][0]["state"]["terminated"]["exitCode"] == 0
            assert await n.log("ok") == b"hi-ok\n"
            assert await n.log("ok", "setup") == b"init\n"

    asyncio.run(go())


def test_failure_exit_code_and_restarts_in_place(tmp_path: Path) -> None:
    async def go() -> None:
        async with node(tmp_path) as n:
            await n.client.create("pods", pod("bad", "echo oops >&2; exit 3"))
            await n.client.create("pods", pod("retry", "exit 2", policy="OnFailure"))
            done = await n.until("bad", phase("Failed"))
            term = done["status"]["containerStatuses"][0]["state"]["terminated"]
            assert (term["exitCode"], term["reason"]) == (3, "Error")
            retried = await n.until("retry", lambda o: any(
                cs.get("restartCount", 0) >= 2 for cs in (o.get("status") or {}).get("containerStatuses", [])))
            assert retried["status"]["containerStatuses"][0]["lastState"]["terminated"]["exitCode"] == 2

    asyncio.run(go())


def test_deleting_a_running_pod_kills_it_and_forgets_it(tmp_path: Path) -> None:
    async def go() -> None:
        async with node(tmp_path) as n:
            await n.client.create("pods", pod("victim", "echo up; sleep 30"))
            running = await n.until("victim", phase("Running"))
            uid = running["metadata"]["uid"]
            assert uid in n.runtime.pods()
            await n.client.delete("pods", "victim", "default", grace_period_seconds=1)

            async def gone() -> None:
                while True:
                    try:
                        await n.client.get("pods", "victim", "default")
                    except NotFound:
                        return
                    await asyncio.sleep(0.01)

            await asyncio.wait_for(gone(), 10)
            assert await n.log("victim") == b"up\n"  # logs outlive the pod
            await asyncio.wait_for(_forgotten(n, uid), 10)

    asyncio.run(go())


async def _forgotten(n: Node, uid: str) -> None:
    while uid in n.runtime.pods():
        await asyncio.sleep(0.01)



def test_a_pod_deleted_just_before_its_agent_stops_does_not_outlive_it(tmp_path: Path) -> None:
    """An offline ``joblet delete`` stops its plane as soon as the pods left the API, maybe
    before the agent's watch delivered their deletion: stopping, the agent still kills them (no
    later agent may come to adopt and kill them)."""
    async def go() -> None:
        async with node(tmp_path) as n:
            await n.client.create("pods", pod("late", "echo up; sleep 30"))
            uid = (await n.until("late", phase("Running")))["metadata"]["uid"]
            await n.client.delete("pods", "late", "default", grace_period_seconds=0)
            await n.agent.stop()  # in the same loop turn: its watch has not seen the deletion
            assert uid not in n.runtime.pods()

    asyncio.run(go())
