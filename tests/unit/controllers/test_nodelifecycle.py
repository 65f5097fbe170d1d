"""The node lifecycle controller: table tests of its pure decisions, and the reconciler
against a real registry (memory store) driven by a FakeClock."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from joblet.client.events import FakeRecorder
from joblet.client.interface import Client
from joblet.clock import FakeClock, rfc3339
from joblet.config import ControlPlaneConfig
from joblet.controllers.nodelifecycle import (
    NODE_STATUS_UNKNOWN_MESSAGE,
    PODGC_MESSAGE,
    PODGC_REASON,
    TAINT_EVICTION_MESSAGE,
    TAINT_EVICTION_REASON,
    UNREACHABLE_TAINT,
    HeartbeatSeen,
    NodeLifecycleController,
    eviction_delay,
    evictions,
    failed_pod_status,
    lost_node_status,
    observe_heartbeat,
    wanted_taints,
)
from joblet.controllers.runtime import InformerFactory, drain
from joblet.controlplane import ControlPlane
from joblet.errors import NotFound
from joblet.store.memory import MemoryStore

Obj = dict[str, Any]
T0 = datetime(2024, 1, 1, tzinfo=UTC)
TIMEOUT = 40.0


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def node(ready: str | None = "True", heartbeat: float = 0, transition: float = 0, taints: list[Obj] | None = None,
         reason: str = "KubeletReady") -> Obj:
    n: Obj = {"metadata": {"name": "n1"}, "spec": {}, "status": {"conditions": []}}
    if ready is not None:
        n["status"]["conditions"].append({"type": "Ready", "status": ready, "reason": reason,
                                          "lastHeartbeatTime": rfc3339(at(heartbeat)),
                                          "lastTransitionTime": rfc3339(at(transition))})
    if taints is not None:
        n["spec"]["taints"] = taints
    return n


def pod(name: str, phase: str = "Running", tolerations: list[Obj] | None = None, conditions: list[Obj] | None = None,
        deleting: bool = False) -> Obj:
    p: Obj = {"metadata": {"name": name, "namespace": "default", "uid": name},
              "spec": {"nodeName": "n1", "tolerations": tolerations or []},
              "status": {"phase": phase, "conditions": conditions or []}}
    if deleting:
        p["metadata"]["deletionTimestamp"] = rfc3339(T0)
    return p


# -- heartbeat observation ---------------------------------------------------------------------

OBSERVE_CASES = [
    # id, previous, heartbeat on the node, now, expected probe time
    ("first-sight-gets-a-full-grace-period", None, 0, 100, 100),
    ("unchanged-heartbeat-keeps-the-probe", HeartbeatSeen(rfc3339(at(0)), at(5)), 0, 100, 5),
    ("new-heartbeat-moves-the-probe-to-now", HeartbeatSeen(rfc3339(at(0)), at(5)), 10, 12, 12),
]


@pytest.mark.parametrize(("previous", "heartbeat", "now", "probe"),
                         [pytest.param(p, h, n, e, id=i) for i, p, h, n, e in OBSERVE_CASES])
def test_observe_heartbeat(previous: HeartbeatSeen | None, heartbeat: float, now: float, probe: float) -> None:
    assert observe_heartbeat(previous, node(heartbeat=heartbeat), at(now)).probe == at(probe)


# -- node status ---------------------------------------------------------------------------------

STATUS_CASES = [
    # id, node, probe, now, expected Ready status (None: no change), message
    ("fresh-heartbeat-no-change", node(), 0, 39, None, None),
    ("expired-heartbeat-becomes-unknown", node(), 0, 40, "Unknown", NODE_STATUS_UNKNOWN_MESSAGE),
    ("already-unknown-no-change", node("Unknown", reason="NodeStatusUnknown"), 0, 100, None, None),
    ("never-posted-status", node(None), 0, 40, "Unknown", "Kubelet never posted node status."),
]


@pytest.mark.parametrize(("obj", "probe", "now", "ready", "message"),
                         [pytest.param(o, p, n, r, m, id=i) for i, o, p, n, r, m in STATUS_CASES])
def test_lost_node_status(obj: Obj, probe: float, now: float, ready: str | None, message: str | None) -> None:
    seen = HeartbeatSeen("x", at(probe))
    status = lost_node_status(obj, seen, at(now), TIMEOUT)
    if ready is None:
        assert status is None
        return
    assert status is not None
    cond = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (cond["status"], cond["reason"], cond["message"]) == (ready, "NodeStatusUnknown", message)
    assert cond["lastTransitionTime"] == rfc3339(at(now))
    if obj["status"]["conditions"]:
        assert cond["lastHeartbeatTime"] == obj["status"]["conditions"][0]["lastHeartbeatTime"]  # kept


# -- taints ------------------------------------------------------------------------------------------

OTHER = {"key": "example.com/gpu", "effect": "NoSchedule"}
OURS = [{"key": UNREACHABLE_TAINT, "effect": "NoSchedule"},
        {"key": UNREACHABLE_TAINT, "effect": "NoExecute", "timeAdded": rfc3339(at(50))}]
TAINT_CASES = [
    # id, node, expected taints (None: unchanged)
    ("ready-untainted-unchanged", node(), None),
    ("lost-gets-unreachable-taints", node("Unknown", taints=[OTHER]), [OTHER, *OURS]),
    ("lost-already-tainted-unchanged", node("Unknown", taints=OURS), None),
    ("ready-again-loses-our-taints-only", node("True", taints=[OTHER, *OURS]), [OTHER]),
    ("ready-again-no-taints-left", node("True", taints=OURS), []),
    ("not-ready-false-keeps-taints", node("False", taints=OURS), None),
]


@pytest.mark.parametrize(("obj", "expected"), [pytest.param(o, e, id=i) for i, o, e in TAINT_CASES])
def test_wanted_taints(obj: Obj, expected: list[Obj] | None) -> None:
    assert wanted_taints(obj, at(50)) == expected


# -- evictions ------------------------------------------------------------------------------------

TOLERATE_ALL = {"operator": "Exists"}
TOLERATE_30 = {"key": UNREACHABLE_TAINT, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30}
TOLERATE_NOSCHEDULE = {"key": UNREACHABLE_TAINT, "operator": "Exists", "effect": "NoSchedule"}
DELAY_CASES = [
    ("no-tolerations-evicted-at-once", [], 0.0),
    ("tolerates-everything-forever", [TOLERATE_ALL], None),
    ("toleration-seconds", [TOLERATE_30], 30.0),
    ("smallest-toleration-seconds-wins", [TOLERATE_30, {**TOLERATE_30, "tolerationSeconds": 10}], 10.0),
    ("negative-seconds-is-zero", [{**TOLERATE_30, "tolerationSeconds": -5}], 0.0),
    ("noschedule-toleration-does-not-count", [TOLERATE_NOSCHEDULE], 0.0),
    ("other-key-does-not-count", [{"key": "other", "operator": "Exists"}], 0.0),
    ("equal-operator-empty-value", [{"key": UNREACHABLE_TAINT, "operator": "Equal"}], None),
]


@pytest.mark.parametrize(("tolerations", "expected"), [pytest.param(t, e, id=i) for i, t, e in DELAY_CASES])
def test_eviction_delay(tolerations: list[Obj], expected: float | None) -> None:
    assert eviction_delay(pod("p", tolerations=tolerations)) == expected


FAILED_BY_US = [{"type": "DisruptionTarget", "status": "True", "reason": TAINT_EVICTION_REASON}]
EVICTION_CASES = [
    # id, pods, seconds since the node was lost, expected names now, expected next_in
    ("running-and-pending-go", [pod("a"), pod("b", phase="Pending")], 0, ["a", "b"], None),
    ("finished-pods-keep-their-outcome", [pod("a", phase="Succeeded"), pod("b", phase="Failed")], 0, [], None),
    ("terminating-pod-goes-too", [pod("a", deleting=True)], 0, ["a"], None),
    ("failed-by-us-but-not-deleted-goes-again", [pod("a", phase="Failed", conditions=FAILED_BY_US)], 0, ["a"], None),
    ("failed-by-us-and-deleting-is-done", [pod("a", phase="Failed", conditions=FAILED_BY_US, deleting=True)], 0, [],
     None),
    ("tolerating-pod-waits", [pod("a", tolerations=[TOLERATE_30]), pod("b")], 10, ["b"], 20.0),
    ("tolerating-pod-goes-when-due", [pod("a", tolerations=[TOLERATE_30])], 30, ["a"], None),
    ("tolerating-forever-stays", [pod("a", tolerations=[TOLERATE_ALL])], 3600, [], None),
]


@pytest.mark.parametrize(("pods", "after", "names", "next_in"),
                         [pytest.param(p, a, n, x, id=i) for i, p, a, n, x in EVICTION_CASES])
def test_evictions(pods: list[Obj], after: float, names: list[str], next_in: float | None) -> None:
    plan = evictions(pods, T0, at(after), TAINT_EVICTION_REASON)
    assert [p["metadata"]["name"] for p in plan.now] == names
    assert plan.next_in == next_in


def test_failed_pod_status_marks_disruption_and_not_ready() -> None:
    ready = {"type": "Ready", "status": "True", "lastTransitionTime": rfc3339(T0)}
    scheduled = {"type": "PodScheduled", "status": "True", "lastTransitionTime": rfc3339(T0)}
    status = failed_pod_status(pod("a", conditions=[scheduled, ready]), at(60), TAINT_EVICTION_REASON,
                               TAINT_EVICTION_MESSAGE)
    assert status["phase"] == "Failed"
    by_type = {c["type"]: c for c in status["conditions"]}
    assert by_type["PodScheduled"] == scheduled
    assert (by_type["Ready"]["status"], by_type["Ready"]["lastTransitionTime"]) == ("False", rfc3339(at(60)))
    assert by_type["DisruptionTarget"] == {
        "type": "DisruptionTarget", "status": "True", "reason": "DeletionByTaintManager",
        "message": "Taint manager: deleting due to NoExecute taint", "lastProbeTime": None,
        "lastTransitionTime": rfc3339(at(60))}


# -- reconciler -------------------------------------------------------------------------------------


def with_plane(tmp_path: Path, clock: FakeClock, body: Callable[[Client], Awaitable[None]]) -> None:
    async def main() -> None:
        plane = ControlPlane(ControlPlaneConfig(data_dir=tmp_path / "data"), run_controllers=False,
                             serve_http=False, clock=clock, store=MemoryStore())
        await plane.start()
        try:
            await body(plane.client)
        finally:
            await plane.stop()

    asyncio.run(main())


async def create_node(client: Client, name: str, clock: FakeClock) -> Obj:
    created = await client.create("nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}})
    return await heartbeat(client, created, clock)


async def heartbeat(client: Client, obj: Obj, clock: FakeClock) -> Obj:
    now = rfc3339(clock.now())
    body = dict(await client.get("nodes", obj["metadata"]["name"]))
    body["status"] = {"capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"}, "conditions": [
        {"type": "Ready", "status": "True", "reason": "KubeletReady", "lastHeartbeatTime": now,
         "lastTransitionTime": now}]}
    return await client.update("nodes", body, subresource="status")


async def create_pod(client: Client, name: str, node_name: str, **spec: Any) -> Obj:
    return await client.create("pods", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {
        "nodeName": node_name, "restartPolicy": "Never",
        "containers": [{"name": "c", "image": "busybox", "command": ["true"]}], **spec}}, "default")


async def step(ctl: NodeLifecycleController) -> None:
    """What the running informers and timers would do: refresh the caches, fire due keys, sync."""
    await ctl.nodes.list_once()
    await ctl.pods.list_once()
    ctl.queue.fire_due()
    await drain(ctl.queue, ctl.sync)


async def pod_or_none(client: Client, name: str) -> Obj | None:
    try:
        return await client.get("pods", name, "default")
    except NotFound:
        return None


def test_node_that_stops_heartbeating_loses_its_pods_and_gets_them_back_when_ready(tmp_path: Path) -> None:
    clock = FakeClock(T0)

    async def body(client: Client) -> None:
        n1 = await create_node(client, "n1", clock)
        await create_pod(client, "runs", "n1")
        await create_pod(client, "tolerates", "n1", tolerations=[TOLERATE_30])
        recorder = FakeRecorder()
        ctl = NodeLifecycleController(client, clock, InformerFactory(client), TIMEOUT, recorder)
        await step(ctl)
        assert list(ctl.queue.waiting().values()) == [pytest.approx(clock.monotonic() + TIMEOUT, abs=0.01)]

        clock.advance(30)  # a heartbeat in time resets the grace period
        n1 = await heartbeat(client, n1, clock)
        await step(ctl)
        clock.advance(39)
        await step(ctl)
        assert (await client.get("nodes", "n1"))["status"]["conditions"][0]["status"] == "True"
        assert await pod_or_none(client, "runs") is not None

        clock.advance(1.1)  # 40 s without a new heartbeat
        await step(ctl)
        lost = await client.get("nodes", "n1")
        ready = lost["status"]["conditions"][0]
        assert (ready["status"], ready["reason"], ready["message"]) == (
            "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.")
        assert [(t["key"], t["effect"]) for t in lost["spec"]["taints"]] == [
            (UNREACHABLE_TAINT, "NoSchedule"), (UNREACHABLE_TAINT, "NoExecute")]
        assert await pod_or_none(client, "runs") is None  # failed, then deleted (no finalizer here)
        assert await pod_or_none(client, "tolerates") is not None
        assert "NodeNotReady" in recorder.reasons() and "TaintManagerEviction" in recorder.reasons()

        clock.advance(30)  # tolerationSeconds ran out
        await step(ctl)
        assert await pod_or_none(client, "tolerates") is None

        await heartbeat(client, lost, clock)  # the agent is back
        await step(ctl)
        back = await client.get("nodes", "n1")
        assert back["status"]["conditions"][0]["status"] == "True"
        assert not back["spec"].get("taints")

    with_plane(tmp_path, clock, body)


def test_failed_pod_keeps_its_finalizer_holder_informed(tmp_path: Path) -> None:
    """With a finalizer (the Job controller's), the Failed pod with DisruptionTarget stays
    visible until the finalizer is removed: that is what the Job controller counts."""
    clock = FakeClock(T0)

    async def body(client: Client) -> None:
        await create_node(client, "n1", clock)
        created = await client.create("pods", {"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": "tracked", "finalizers": ["batch.kubernetes.io/job-tracking"]}, "spec": {
            "nodeName": "n1", "restartPolicy": "Never",
            "containers": [{"name": "c", "image": "busybox", "command": ["true"]}]}}, "default")
        ctl = NodeLifecycleController(client, clock, InformerFactory(client), TIMEOUT)
        await step(ctl)
        clock.advance(TIMEOUT)
        await step(ctl)
        await step(ctl)  # a second pass must not touch it again
        failed = await client.get("pods", "tracked", "default")
        assert failed["metadata"]["uid"] == created["metadata"]["uid"]
        assert failed["metadata"]["deletionTimestamp"]
        assert failed["status"]["phase"] == "Failed"
        target = [c for c in failed["status"]["conditions"] if c["type"] == "DisruptionTarget"]
        assert [(c["status"], c["reason"], c["message"]) for c in target] == [
            ("True", TAINT_EVICTION_REASON, TAINT_EVICTION_MESSAGE)]

    with_plane(tmp_path, clock, body)


def test_pod_bound_to_a_node_that_does_not_exist_is_collected_after_quarantine(tmp_path: Path) -> None:
    clock = FakeClock(T0)

    async def body(client: Client) -> None:
        await client.create("pods", {"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": "orphan", "finalizers": ["example.com/hold"]}, "spec": {
            "nodeName": "gone", "restartPolicy": "Never",
            "containers": [{"name": "c", "image": "busybox", "command": ["true"]}]}}, "default")
        ctl = NodeLifecycleController(client, clock, InformerFactory(client), TIMEOUT)
        await step(ctl)
        clock.advance(TIMEOUT - 1)
        await step(ctl)
        assert (await client.get("pods", "orphan", "default"))["status"].get("phase") != "Failed"
        clock.advance(1)
        await step(ctl)
        failed = await client.get("pods", "orphan", "default")
        assert failed["status"]["phase"] == "Failed"
        assert failed["metadata"]["deletionTimestamp"]
        target = [c for c in failed["status"]["conditions"] if c["type"] == "DisruptionTarget"]
        assert [(c["reason"], c["message"]) for c in target] == [(PODGC_REASON, PODGC_MESSAGE)]

    with_plane(tmp_path, clock, body)


def test_a_controller_that_was_frozen_gives_the_node_a_fresh_grace_period(tmp_path: Path) -> None:
    """The expiry check runs three timeouts late (the server was SIGSTOPped): this controller saw
    nothing meanwhile, so the node gets a fresh grace period instead of losing its pods; a node
    still silent after that is lost as usual."""
    clock = FakeClock(T0)

    async def body(client: Client) -> None:
        await create_node(client, "n1", clock)
        await create_pod(client, "runs", "n1")
        ctl = NodeLifecycleController(client, clock, InformerFactory(client), TIMEOUT, FakeRecorder())
        await step(ctl)
        clock.advance(3 * TIMEOUT)  # frozen: the timer fires long after it was due
        await step(ctl)
        assert (await client.get("nodes", "n1"))["status"]["conditions"][0]["status"] == "True"
        assert await pod_or_none(client, "runs") is not None

        clock.advance(TIMEOUT + 0.1)  # on time now, and still no heartbeat
        await step(ctl)
        assert (await client.get("nodes", "n1"))["status"]["conditions"][0]["status"] == "Unknown"
        assert await pod_or_none(client, "runs") is None

    with_plane(tmp_path, clock, body)
