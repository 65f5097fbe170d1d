"""A node that stops heartbeating, end to end: a real in-process control plane (its own node
agent running real processes) plus a second Node object nobody heartbeats ("ghost"). Pods
bound to the ghost end Failed with ``DisruptionTarget``; a Job whose podFailurePolicy
ignores that condition replaces its pod on the live node without counting a failure; a
ghost that heartbeats again is Ready again."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from joblet.client.interface import Client
from joblet.clock import RealClock, rfc3339
from joblet.config import ControlPlaneConfig
from joblet.controlplane import ControlPlane
from joblet.errors import NotFound
from support import waiting

#: this file's components take a while on a busy machine
eventually = functools.partial(waiting.eventually, timeout=20.0)

Obj = dict[str, Any]
HEARTBEAT_TIMEOUT = 3.0
OLD = "2020-01-01T00:00:00Z"


def run(tmp_path: Path, body: Callable[[ControlPlane], Awaitable[None]]) -> None:
    async def main() -> None:
        cfg = ControlPlaneConfig(data_dir=tmp_path / "data", node_name="live",
                                 node_heartbeat_timeout=HEARTBEAT_TIMEOUT, pod_failure_backoff=0.1)
        plane = ControlPlane(cfg, serve_http=False)
        await plane.start()
        try:
            await body(plane)
        finally:
            await plane.stop()

    asyncio.run(main())


async def create_ghost(client: Client, heartbeat: str = OLD) -> Obj:
    node = await client.create("nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {
        "name": "ghost", "labels": {"kubernetes.io/hostname": "ghost"}}})
    return await set_ready(client, node, heartbeat)


async def set_ready(client: Client, node: Obj, heartbeat: str) -> Obj:
    body = dict(await client.get("nodes", node["metadata"]["name"]))
    body["status"] = {"capacity": {"cpu": "64", "memory": "64Gi", "pods": "110"},
                      "allocatable": {"cpu": "64", "memory": "64Gi", "pods": "110"},
                      "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                      "lastHeartbeatTime": heartbeat, "lastTransitionTime": heartbeat}]}
    return await client.update("nodes", body, subresource="status")


def disruption(pod: Obj) -> Obj | None:
    return next((c for c in (pod.get("status") or {}).get("conditions") or [] if c.get("type") == "DisruptionTarget"),
                None)


async def ready_status(client: Client, name: str) -> str:
    node = await client.get("nodes", name)
    return str(next(c["status"] for c in node["status"]["conditions"] if c["type"] == "Ready"))


def test_pod_on_a_silent_node_fails_with_disruption_target(tmp_path: Path) -> None:
    async def body(plane: ControlPlane) -> None:
        client = plane.client
        ghost = await create_ghost(client)
        await client.create("pods", {"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": "stranded", "finalizers": ["example.com/hold"]}, "spec": {
            "nodeName": "ghost", "restartPolicy": "Never",
            "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "30"]}]}}, "default")

        async def failed() -> bool:
            pod = await client.get("pods", "stranded", "default")
            return bool(pod["status"].get("phase") == "Failed")

        await eventually(failed, what="the stranded pod to fail")
        pod = await client.get("pods", "stranded", "default")
        cond = disruption(pod)
        assert cond is not None
        assert (cond["status"], cond["reason"], cond["message"]) == (
            "True", "DeletionByTaintManager", "Taint manager: deleting due to NoExecute taint")
        assert pod["metadata"]["deletionTimestamp"]  # deleted, held only by our finalizer
        node = await client.get("nodes", "ghost")
        ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
        assert (ready["status"], ready["reason"], ready["message"]) == (
            "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.")
        assert {t["effect"] for t in node["spec"]["taints"]} == {"NoSchedule", "NoExecute"}
        assert await ready_status(client, "live") == "True"  # the real agent keeps its node alive

        # The ghost's kubelet comes back: Ready=True, taints gone.
        await set_ready(client, ghost, rfc3339(RealClock().now()))

        async def ready_again() -> bool:
            node = await client.get("nodes", "ghost")
            return await ready_status(client, "ghost") == "True" and not node["spec"].get("taints")

        await eventually(ready_again, what="the ghost to be Ready and untainted")
        await client.patch("pods", "stranded", {"metadata": {"finalizers": None}}, "default")

    run(tmp_path, body)


def test_job_ignores_the_disruption_and_replaces_the_pod(tmp_path: Path) -> None:
    async def body(plane: ControlPlane) -> None:
        client = plane.client
        seen: list[Obj] = []

        async def record() -> None:
            async for batch in client.watch("pods", "default"):
                seen.extend(e.object for e in batch)

        recorder = asyncio.create_task(record())
        try:
            await create_ghost(client)
            # Only the ghost can take the Job's first pod.
            await client.patch("nodes", "live", {"spec": {"unschedulable": True}})
            await client.create("jobs", {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "work"}, "spec": {
                "backoffLimit": 0,
                "podFailurePolicy": {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]},
                "template": {"spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1, "containers": [
                    {"name": "c", "image": "busybox", "command": ["sh", "-c", "echo done"]}]}}}}, "default")

            async def bound_to_ghost() -> bool:
                pods = (await client.list("pods", "default", label_selector="batch.kubernetes.io/job-name=work")).items
                return any(p["spec"].get("nodeName") == "ghost" for p in pods)

            await eventually(bound_to_ghost, what="the first pod bound to the ghost")
            await client.patch("nodes", "live", {"spec": {"unschedulable": None}})

            async def complete() -> bool:
                job = await client.get("jobs", "work", "default")
                return any(c["type"] == "Complete" and c["status"] == "True"
                           for c in job["status"].get("conditions") or [])

            await eventually(complete, what="the Job to complete on the live node")
            job = await client.get("jobs", "work", "default")
            assert job["status"].get("succeeded") == 1
            assert not job["status"].get("failed")  # the disrupted pod is not counted
            disrupted = [p for p in seen if p["spec"].get("nodeName") == "ghost" and disruption(p)]
            assert disrupted and disrupted[-1]["status"]["phase"] == "Failed"
            assert disruption(disrupted[-1])["reason"] == "DeletionByTaintManager"  # type: ignore[index]

            async def ghost_pod_gone() -> bool:
                uids = {p["metadata"]["uid"] for p in disrupted}
                pods = (await client.list("pods", "default")).items
                return not any(p["metadata"]["uid"] in uids for p in pods)

            await eventually(ghost_pod_gone, what="the disrupted pod to be deleted")
        finally:
            recorder.cancel()
            with contextlib.suppress(asyncio.CancelledError, NotFound):
                await recorder

    run(tmp_path, body)
