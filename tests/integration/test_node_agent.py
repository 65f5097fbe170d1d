"""The node agent end to end: registry + LocalClient + real processes through the process runtime."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from joblet.client.interface import Event, ObjectList
from joblet.clock import RealClock, rfc3339
from joblet.errors import AlreadyExists, Conflict, NotFound
from joblet.node.agent import NodeAgent
from joblet.node.logs import LogStore
from joblet.node.runtimes.process import ProcessRuntime
from joblet.objects import find_condition

try:  # the real in-process stack, once the registry is importable
    from joblet.api.registry import Registry
    from joblet.client.local import LocalClient
    from joblet.store.memory import MemoryStore

    REAL_STACK = True
except ImportError:  # pragma: no cover - while the registry is being written
    REAL_STACK = False

Obj = dict[str, Any]


def pod(name: str, script: str, policy: str = "Never", **spec: Any) -> Obj:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default",
                     "labels": {"batch.kubernetes.io/job-completion-index": "4"}},
        "spec": {
            "nodeName": "n1", "restartPolicy": policy, "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": "main", "image": "busybox", "command": ["sh", "-c", script],
                "env": [
                    {"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
                        "fieldPath": "metadata.labels['batch.kubernetes.io/job-completion-index']"}}},
                    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "GREETING", "value": "hi-$(POD_NAME)"},
                ],
            }],
            **spec,
        },
    }


class TinyClient:
    """The few Client methods the agent uses, over a dict (used until the registry imports)."""

    def __init__(self, clock: RealClock) -> None:
        self.clock = clock
        self.objects: dict[tuple[str, str, str], Obj] = {}
        self.rv = 0
        self.changed = asyncio.Condition()
        self.events: list[tuple[int, Event]] = []

    async def _emit(self, kind: str, obj: Obj) -> None:
        self.events.append((self.rv, Event(kind, obj)))
        async with self.changed:
            self.changed.notify_all()

    async def get(self, resource: str, name: str, namespace: str = "") -> Obj:
        try:
            return self.objects[(resource, namespace, name)]
        except KeyError:
            raise NotFound(f'{resource} "{name}" not found') from None

    async def list(self, resource: str, namespace: str | None = None, label_selector: str | None = None,
                   field_selector: str | None = None) -> ObjectList:
        return ObjectList([o for (r, _, _), o in self.objects.items() if r == resource], str(self.rv))

    async def create(self, resource: str, obj: Obj, namespace: str | None = None, dry_run: bool = False) -> Obj:
        md = obj["metadata"]
        key = (resource, md.get("namespace", ""), md["name"])
        if key in self.objects:
            raise AlreadyExists(f'{resource} "{md["name"]}" already exists')
        self.rv += 1
        new = {**obj, "metadata": {**md, "uid": f"uid-{md['name']}-{self.rv}",
                                   "resourceVersion": str(self.rv)}}
        self.objects[key] = new
        await self._emit("ADDED", new)
        return new

    async def update(self, resource: str, obj: Obj, subresource: str | None = None) -> Obj:
        md = obj["metadata"]
        key = (resource, md.get("namespace", ""), md["name"])
        old = await self.get(resource, md["name"], md.get("namespace", ""))
        if md.get("resourceVersion") not in (None, old["metadata"]["resourceVersion"]):
            raise Conflict("the object has been modified")
        self.rv += 1
        new = {**old, "status": obj.get("status")} if subresource == "status" else {**obj, "status": old.get("status")}
        new["metadata"] = {**old["metadata"], "resourceVersion": str(self.rv)}
        self.objects[key] = new
        await self._emit("MODIFIED", new)
        return new

    async def delete(self, resource: str, name: str, namespace: str = "", propagation_policy: Any = None,
                     grace_period_seconds: int | None = None, preconditions: Any = None) -> Obj:
        obj = await self.get(resource, name, namespace)
        self.rv += 1
        if grace_period_seconds == 0:
            del self.objects[(resource, namespace, name)]
            await self._emit("DELETED", obj)
            return obj
        new = {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(self.rv),
                                   "deletionTimestamp": rfc3339(self.clock.now()),
                                   "deletionGracePeriodSeconds": grace_period_seconds or 30}}
        self.objects[(resource, namespace, name)] = new
        await self._emit("MODIFIED", new)
        return new

    async def watch(self, resource: str, namespace: str | None = None, resource_version: str | None = None,
                    label_selector: str | None = None, field_selector: str | None = None,
                    timeout_seconds: float | None = None) -> Any:
        seen = int(resource_version or self.rv)
        while True:
            batch = [e for rv, e in self.events if rv > seen]
            if batch:
                seen = self.events[-1][0]
                yield batch
                continue
            async with self.changed:
                await self.changed.wait()


class Env:
    def __init__(self, tmp_path: Path) -> None:
        self.clock = RealClock()
        self.logs = LogStore(tmp_path, self.clock)
        self.client: Any
        if REAL_STACK:
            self.client = LocalClient(Registry(MemoryStore(), self.clock), self.logs)
        else:
            self.client = TinyClient(self.clock)
        self.data = tmp_path
        self.agent = self.new_agent()

    async def setup(self) -> None:
        if REAL_STACK:
            await self.client.create("namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                    "metadata": {"name": "default"}})

    def new_agent(self) -> NodeAgent:
        runtime = ProcessRuntime(self.data, self.clock, cache_dir=self.data.parent / "shim-cache")
        return NodeAgent(self.client, "n1", self.data, self.clock, runtime, crash_loop_backoff=0.2,
                         crash_loop_backoff_max=0.4, logs=self.logs)

    async def until(self, name: str, check: Callable[[Obj], bool], timeout: float = 15) -> Obj:
        end = time.monotonic() + timeout
        while True:
            try:
                obj = await self.client.get("pods", name, "default")
                if check(obj):
                    return obj
            except NotFound:
                pass
            if time.monotonic() > end:
                raise AssertionError(f"pod {name} never satisfied the check")
            await asyncio.sleep(0.02)

    async def gone(self, name: str, timeout: float = 15) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                await self.client.get("pods", name, "default")
            except NotFound:
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"pod {name} was not deleted")


def phase(p: str) -> Callable[[Obj], bool]:
    return lambda o: (o.get("status") or {}).get("phase") == p


def scenario(fn: Callable[[Env], Awaitable[None]]) -> Callable[[Path], None]:
    def test(tmp_path: Path) -> None:
        async def go() -> None:
            env = Env(tmp_path)
            await env.setup()
            await env.agent.start()
            try:
                await fn(env)
            finally:
                await env.agent.stop()
                for uid in env.agent.runtime.pods():
                    await env.agent.runtime.remove_pod(uid)
        asyncio.run(asyncio.wait_for(go(), 40))
    test.__name__ = fn.__name__
    return test


@scenario
async def test_registers_node(env: Env) -> None:
    node = await env.client.get("nodes", "n1")
    assert node["metadata"]["labels"]["kubernetes.io/hostname"] == "n1"
    assert node["status"]["capacity"]["pods"] == "1000"
    assert find_condition(node, "Ready")["status"] == "True"  # type: ignore[index]


@scenario
async def test_pod_succeeds_with_env_and_logs(env: Env) -> None:
    await env.client.create("pods", pod("ok", 'echo "$JOB_COMPLETION_INDEX $GREETING $HOSTNAME"'))
    done = await env.until("ok", phase("Succeeded"))
    cs = done["status"]["containerStatuses"][0]
    assert cs["state"]["terminated"]["exitCode"] == 0
    assert cs["state"]["terminated"]["reason"] == "Completed"
    assert find_condition(done, "Ready")["status"] == "False"  # type: ignore[index]
    assert done["status"]["podIP"] == "127.0.0.1"
    chunks = [c async for c in env.logs.read("default", "ok")]
    assert b"".join(chunks) == b"4 hi-ok ok\n"


@scenario
async def test_failed_pod_with_never(env: Env) -> None:
    await env.client.create("pods", pod("bad", "exit 3"))
    done = await env.until("bad", phase("Failed"))
    term = done["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (term["exitCode"], term["reason"]) == (3, "Error")


@scenario
async def test_on_failure_restarts_in_place(env: Env) -> None:
    marker = env.data / "count"
    script = f'echo x >> {marker}; [ $(wc -l < {marker}) -ge 3 ]'
    await env.client.create("pods", pod("retry", script, policy="OnFailure"))
    done = await env.until("retry", phase("Succeeded"))
    cs = done["status"]["containerStatuses"][0]
    assert cs["restartCount"] == 2
    assert cs["lastState"]["terminated"]["exitCode"] == 1
    assert env.logs.attempts("default", "retry", "main") == [0, 1, 2]


@scenario
async def test_init_containers_run_first(env: Env) -> None:
    p = pod("init", "cat $HOME/../x 2>/dev/null; echo main")
    p["spec"]["initContainers"] = [{"name": "setup", "image": "busybox", "command": ["sh", "-c", "echo init"]}]
    await env.client.create("pods", p)
    done = await env.until("init", phase("Succeeded"))
    assert done["status"]["initContainerStatuses"][0]["state"]["terminated"]["exitCode"] == 0
    assert find_condition(done, "Initialized")["status"] == "True"  # type: ignore[index]


@scenario
async def test_active_deadline(env: Env) -> None:
    await env.client.create("pods", pod("slow", "sleep 30", activeDeadlineSeconds=1))
    done = await env.until("slow", phase("Failed"))
    assert done["status"]["reason"] == "DeadlineExceeded"
    assert done["status"]["message"] == "Pod was active on the node longer than the specified deadline"


@scenario
async def test_graceful_deletion_kills_and_removes(env: Env) -> None:
    await env.client.create("pods", pod("victim", "trap '' TERM; echo up; sleep 30"))
    await env.until("victim", phase("Running"))
    await env.client.delete("pods", "victim", "default", grace_period_seconds=1)
    await env.gone("victim")
    # logs outlive the pod
    assert b"".join([c async for c in env.logs.read("default", "victim")]) == b"up\n"


@scenario
async def test_restarted_agent_adopts_and_never_reruns(env: Env) -> None:
    marker = env.data / "runs"
    await env.client.create("pods", pod("long", f"echo run >> {marker}; sleep 1; exit 4"))
    await env.until("long", phase("Running"))
    await env.agent.stop()  # "kill -9": the shim keeps running
    env.agent = env.new_agent()
    await env.agent.start()
    done = await env.until("long", phase("Failed"))
    assert done["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 4
    assert marker.read_text() == "run\n"
    await env.agent.stop()
    env.agent = env.new_agent()
    await env.agent.start()
    await asyncio.sleep(0)  # a third agent sees a finished pod and leaves it alone
    await env.until("long", phase("Failed"))
    assert marker.read_text() == "run\n"
