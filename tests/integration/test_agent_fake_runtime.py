"""The node agent over the in-memory FakeRuntime: pod lifecycle decisions in milliseconds.

The agent, the registry and the log store are real; only the containers are the fake's
``sh -c`` subset (joblet.node.runtimes.fake), and time is a FakeClock: crash-loop backoff,
``activeDeadlineSeconds`` and heartbeats keep the kubelet's real values (10 s, 60 s, ...) and
the tests move the clock past them (``clock.advance``) instead of shrinking knobs and
waiting. What needs real processes (signals, cgroups, sandbox, adoption of a live shim) stays
in test_node_agent.py, in real time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from joblet.api.registry import Registry
from joblet.client.local import LocalClient
from joblet.clock import FakeClock, RealClock, rfc3339
from joblet.errors import NotFound, ServiceUnavailable
from joblet.node.agent import NodeAgent
from joblet.node.logs import LogStore
from joblet.node.podworker import CONFIG_RETRY_FIRST, STATUS_RETRY_FIRST
from joblet.node.runtimes.fake import FakeHost
from joblet.node.runtimes.registry import RUNTIMES, RuntimeOptions
from joblet.store.memory import MemoryStore

Obj = dict[str, Any]
HEARTBEAT = 40.0


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
        self.clock = FakeClock()
        self.logs = LogStore(tmp_path, self.clock)
        self.client = LocalClient(Registry(MemoryStore(), self.clock), self.logs)
        # the fake is built through the runtime table, as `joblet server --runtime fake` does
        self.runtime = RUNTIMES["fake"].factory(RuntimeOptions(tmp_path, self.clock))
        # the kubelet's crash-loop backoff (10 s doubling to 300 s); heartbeats apart from it
        self.agent = NodeAgent(self.client, "n1", tmp_path, self.clock, self.runtime, crash_loop_backoff=10,
                               crash_loop_backoff_max=300, heartbeat_seconds=HEARTBEAT, logs=self.logs)

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

    async def sleeping(self, seconds: float) -> None:
        """Until something sleeps ``seconds`` on the fake clock: advancing by that wakes it."""
        async def poll() -> None:
            while not any(abs(left - seconds) < 1e-6 for left in self.clock.sleeping()):
                await asyncio.sleep(0.01)

        await asyncio.wait_for(poll(), 10)

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
        for uid in n.runtime.pods():  # pods still running (a restart loop) keep their mounts past stop()
            await n.agent.remove_pod(uid)
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


def restarts(count: int) -> Callable[[Obj], bool]:
    return lambda o: any(cs.get("restartCount", 0) >= count for cs in (o.get("status") or {}).get("containerStatuses", []))


def waiting(o: Obj) -> Obj:
    statuses = (o.get("status") or {}).get("containerStatuses") or [{}]
    return dict((statuses[0].get("state") or {}).get("waiting") or {})


def test_failure_exit_code_and_restarts_in_place(tmp_path: Path) -> None:
    async def go() -> None:
        async with node(tmp_path) as n:
            await n.client.create("pods", pod("bad", "echo oops >&2; exit 3"))
            await n.client.create("pods", pod("retry", "exit 2", policy="OnFailure"))
            done = await n.until("bad", phase("Failed"))
            term = done["status"]["containerStatuses"][0]["state"]["terminated"]
            assert (term["exitCode"], term["reason"]) == (3, "Error")
            retried = await n.until("retry", restarts(1))  # the first restart is immediate
            assert retried["status"]["containerStatuses"][0]["lastState"]["terminated"]["exitCode"] == 2

    asyncio.run(go())


def test_crash_loop_backoff_doubles_on_the_clock(tmp_path: Path) -> None:
    """The kubelet's backoff: restart 1 at once, then 10 s, 20 s, ... with the container waiting in
    CrashLoopBackOff; no restart happens before the clock reaches the delay."""
    async def go() -> None:
        async with node(tmp_path) as n:
            await n.client.create("pods", pod("retry", "exit 2", policy="OnFailure"))
            backing = await n.until("retry", lambda o: restarts(1)(o) and bool(waiting(o)))
            assert waiting(backing)["reason"] == "CrashLoopBackOff"
            assert waiting(backing)["message"].startswith("back-off 10s restarting failed container=main pod=retry_")
            await n.sleeping(10)
            n.clock.advance(9)
            await asyncio.sleep(0.05)
            assert (await n.client.get("pods", "retry", "default"))["status"]["containerStatuses"][0][
                "restartCount"] == 1
            n.clock.advance(1)
            second = await n.until("retry", lambda o: restarts(2)(o) and bool(waiting(o)))
            assert waiting(second)["message"].startswith("back-off 20s ")
            events = (await n.client.list("events", "default")).items
            assert sum(e["reason"] == "BackOff" for e in events if e["involvedObject"]["name"] == "retry") >= 1

    asyncio.run(go())


def test_active_deadline_fails_the_pod_when_the_clock_reaches_it(tmp_path: Path) -> None:
    async def go() -> None:
        async with node(tmp_path) as n:
            slow = pod("slow", "echo up; sleep 3600")
            slow["spec"]["activeDeadlineSeconds"] = 120
            await n.client.create("pods", slow)
            await n.until("slow", phase("Running"))
            await n.sleeping(120)
            n.clock.advance(119)
            await asyncio.sleep(0.05)
            assert (await n.client.get("pods", "slow", "default"))["status"]["phase"] == "Running"
            n.clock.advance(1)
            done = await n.until("slow", phase("Failed"))
            assert (done["status"]["reason"], done["status"]["message"]) == (
                "DeadlineExceeded", "Pod was active on the node longer than the specified deadline")
            term = done["status"]["containerStatuses"][0]["state"]["terminated"]
            assert (term["exitCode"], term.get("signal")) == (143, 15)

    asyncio.run(go())


def test_heartbeat_renews_the_node_on_the_clock(tmp_path: Path) -> None:
    async def go() -> None:
        async with node(tmp_path) as n:
            def beat(node_obj: Obj) -> str:
                ready = next(c for c in node_obj["status"]["conditions"] if c["type"] == "Ready")
                return str(ready["lastHeartbeatTime"])

            first = beat(await n.client.get("nodes", "n1"))
            await n.sleeping(HEARTBEAT)
            n.clock.advance(HEARTBEAT)

            async def renewed() -> str:
                while (now := beat(await n.client.get("nodes", "n1"))) == first:
                    await asyncio.sleep(0.01)
                return now

            assert await asyncio.wait_for(renewed(), 10) == rfc3339(n.clock.now())

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


def test_config_error_is_retried_with_backoff_on_the_clock(tmp_path: Path) -> None:
    """A missing secret keeps the container in CreateContainerConfigError; the agent rechecks after
    0.2 s, 0.4 s, ... (capped at 5 s) of clock time, so the container starts only once the clock
    has moved past the pending retry."""
    async def go() -> None:
        async with node(tmp_path) as n:
            p = pod("late", 'echo "$TOKEN"')
            p["spec"]["containers"][0]["env"].append(
                {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "later", "key": "t"}}})
            await n.client.create("pods", p)
            stuck = await n.until("late", lambda o: waiting(o).get("reason") == "CreateContainerConfigError")
            assert waiting(stuck)["message"] == 'secret "later" not found'
            await n.sleeping(CONFIG_RETRY_FIRST)
            n.clock.advance(CONFIG_RETRY_FIRST)
            await n.sleeping(2 * CONFIG_RETRY_FIRST)  # the second check failed too: the wait doubled
            await n.client.create("secrets", {"apiVersion": "v1", "kind": "Secret",
                                              "metadata": {"name": "later", "namespace": "default"},
                                              "stringData": {"t": "ok"}})
            await asyncio.sleep(0.05)
            assert waiting(await n.client.get("pods", "late", "default"))["reason"] == "CreateContainerConfigError"
            n.clock.advance(2 * CONFIG_RETRY_FIRST)
            await n.until("late", phase("Succeeded"))
            assert await n.log("late") == b"ok\n"

    asyncio.run(go())


def test_an_agent_started_again_after_stop_supervises_its_pods_again(tmp_path: Path) -> None:
    async def go() -> None:
        async with node(tmp_path) as n:
            await n.client.create("pods", pod("steady", "echo up; sleep 3600"))
            uid = (await n.until("steady", phase("Running")))["metadata"]["uid"]
            await n.agent.stop()
            assert n.agent.workers == {} and uid in n.runtime.pods()  # the container outlives the agent
            await n.agent.start()

            async def supervised() -> None:
                while uid not in n.agent.workers:
                    await asyncio.sleep(0.01)

            await asyncio.wait_for(supervised(), 10)
            await n.client.delete("pods", "steady", "default", grace_period_seconds=0)
            await asyncio.wait_for(_forgotten(n, uid), 10)

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


def test_the_exit_that_ends_a_pod_is_written_with_its_phase(tmp_path: Path) -> None:
    """A pod's last container exit and its terminal phase are one status write: no status where
    the container has terminated and the pod still says Running (each write wakes the Job
    controller and every watcher)."""
    async def go() -> list[tuple[str, str]]:
        async with node(tmp_path) as n:
            seen: list[tuple[str, str]] = []
            created = await n.client.create("pods", pod("once", "exit 0"))

            async def collect() -> None:
                async for batch in n.client.watch("pods", "default", created["metadata"]["resourceVersion"]):
                    for ev in batch:
                        status = ev.object.get("status") or {}
                        state = ((status.get("containerStatuses") or [{}])[0].get("state") or {"-": 0})
                        seen.append((str(status.get("phase")), next(iter(state))))
                        if status.get("phase") == "Succeeded":
                            return

            await asyncio.wait_for(collect(), 10)
            return seen

    seen = asyncio.run(go())
    assert seen[-1] == ("Succeeded", "terminated"), seen
    assert not [s for s in seen[:-1] if s[1] == "terminated"], seen
    # started and ended within RUNNING_REPORT_DELAY: neither its first status (startTime,
    # ContainerCreating) nor Running was written, only the end
    assert seen == [("Succeeded", "terminated")], seen


def test_status_writes_the_server_refuses_are_retried_not_dropped(tmp_path: Path) -> None:
    """An API server that is unreachable or frozen for a while (split mode, SIGSTOP) answers a
    status write with 503: the worker tries again on the clock (0.2 s, doubling) and the pod
    still reaches Succeeded; before, the exception ended the worker and the pod stayed Pending."""
    async def go() -> None:
        async with node(tmp_path) as n:
            real_update, refused = n.client.update, []

            async def update(resource: str, obj: Obj, **kw: Any) -> Obj:
                if resource == "pods" and kw.get("subresource") == "status" and len(refused) < 2:
                    refused.append(obj["metadata"]["name"])
                    raise ServiceUnavailable("cannot reach the API server: Server disconnected")
                return await real_update(resource, obj, **kw)

            n.client.update = update  # type: ignore[method-assign]
            await n.client.create("pods", pod("flaky", "exit 0"))
            await n.sleeping(STATUS_RETRY_FIRST)
            n.clock.advance(STATUS_RETRY_FIRST)
            await n.sleeping(2 * STATUS_RETRY_FIRST)
            n.clock.advance(2 * STATUS_RETRY_FIRST)
            done = await n.until("flaky", phase("Succeeded"))
            assert refused == ["flaky", "flaky"]
            assert done["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 0

    asyncio.run(go())
