"""The assembled control plane, in-process, with real processes: garbage collection with
each propagation policy, namespace deletion, and scheduling onto a node with room."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from joblet.client.interface import Client
from joblet.config import ControlPlaneConfig
from joblet.controlplane import ControlPlane
from joblet.errors import NotFound
from support.builders import job, pod_spec
from support.waiting import eventually

Obj = dict[str, Any]


def job_manifest(name: str, command: str = "sleep 30", **spec: Any) -> Obj:
    return job(name, template=pod_spec(command, grace=1), **spec)


async def pods_of(client: Client, job: str, ns: str = "default") -> list[Obj]:
    return (await client.list("pods", ns, label_selector=f"batch.kubernetes.io/job-name={job}")).items


async def gone(client: Client, resource: str, name: str, ns: str = "default") -> bool:
    try:
        await client.get(resource, name, ns)
    except NotFound:
        return True
    return False


async def delete_pods_left(client: Client) -> None:
    """Pods the test left running (orphans) would outlive the plane with their processes and
    tmpfs mounts, as a stopped agent leaves running pods for the next one: delete them."""
    for pod in (await client.list("pods")).items:
        try:
            await client.delete("pods", pod["metadata"]["name"], pod["metadata"]["namespace"], grace_period_seconds=0)
        except NotFound:
            pass


def run(tmp_path: Path, body: Callable[[Client], Awaitable[None]]) -> None:
    async def main() -> None:
        plane = ControlPlane(ControlPlaneConfig(data_dir=tmp_path / "data"), serve_http=False)
        await plane.start()
        try:
            await body(plane.client)
            await delete_pods_left(plane.client)
        finally:
            await plane.stop()

    asyncio.run(main())


@pytest.mark.parametrize(("policy", "pods_remain"), [
    pytest.param("Background", False, id="background-deletes-pods"),
    pytest.param("Foreground", False, id="foreground-deletes-pods-first"),
    pytest.param("Orphan", True, id="orphan-keeps-pods-without-owner"),
])
def test_job_deletion_propagation(tmp_path: Path, policy: str, pods_remain: bool) -> None:
    async def body(client: Client) -> None:
        await client.create("jobs", job_manifest("gc", parallelism=2, completions=2))
        await eventually(lambda: _running(client, "gc", 2), what="2 running pods")
        names = [p["metadata"]["name"] for p in await pods_of(client, "gc")]
        await client.delete("jobs", "gc", "default", propagation_policy=policy)  # type: ignore[arg-type]
        await eventually(lambda: gone(client, "jobs", "gc"), what="job gone")
        if pods_remain:
            await asyncio.sleep(0.5)
            for name in names:
                pod = await client.get("pods", name, "default")
                assert not pod["metadata"].get("ownerReferences")
                assert "batch.kubernetes.io/job-tracking" not in (pod["metadata"].get("finalizers") or [])
        else:
            for name in names:
                await eventually(lambda n=name: gone(client, "pods", n), what=f"pod {name} gone")

    run(tmp_path, body)


async def _running(client: Client, job: str, n: int) -> bool:
    pods = await pods_of(client, job)
    return sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Running") >= n


def test_plain_delete_of_a_job_orphans_its_pods_as_upstream(tmp_path: Path) -> None:
    async def body(client: Client) -> None:
        await client.create("jobs", job_manifest("plain"))
        await eventually(lambda: _running(client, "plain", 1), what="running pod")
        await client.delete("jobs", "plain", "default")
        await eventually(lambda: gone(client, "jobs", "plain"), what="job gone")
        (pod,) = await pods_of(client, "plain")
        assert not pod["metadata"].get("ownerReferences")

    run(tmp_path, body)


def test_namespace_deletion_removes_everything_in_it(tmp_path: Path) -> None:
    async def body(client: Client) -> None:
        await client.create("namespaces", {"metadata": {"name": "scratch"}})
        await client.create("configmaps", {"metadata": {"name": "cm", "namespace": "scratch"}, "data": {"a": "b"}})
        await client.create("jobs", job_manifest("long"), "scratch")
        await eventually(lambda: _running_in(client, "scratch"), what="pod running in scratch")
        deleted = await client.delete("namespaces", "scratch")
        assert deleted["status"]["phase"] == "Terminating"
        await eventually(lambda: gone(client, "namespaces", "scratch", ""), timeout=20, what="namespace gone")
        assert (await client.list("pods", "scratch")).items == []

    run(tmp_path, body)


async def _running_in(client: Client, ns: str) -> bool:
    return any((p.get("status") or {}).get("phase") == "Running" for p in (await client.list("pods", ns)).items)


def test_pod_that_does_not_fit_waits_then_runs_when_room_frees_up(tmp_path: Path) -> None:
    async def body(client: Client) -> None:
        (node,) = (await client.list("nodes")).items
        cpu = node["status"]["allocatable"]["cpu"]
        big = {"requests": {"cpu": cpu}}
        first = job_manifest("first", "sleep 1")
        first["spec"]["template"]["spec"]["containers"][0]["resources"] = big
        second = job_manifest("second", "true")
        second["spec"]["template"]["spec"]["containers"][0]["resources"] = big
        await client.create("jobs", first)
        await eventually(lambda: _running(client, "first", 1), what="first pod running")
        await client.create("jobs", second)

        async def unschedulable() -> bool:
            pods = await pods_of(client, "second")
            conds = [c for p in pods for c in (p.get("status") or {}).get("conditions") or []]
            return any(c["type"] == "PodScheduled" and c["status"] == "False" for c in conds)

        await eventually(unschedulable, what="second pod unschedulable")
        events = (await client.list("events", "default", field_selector="reason=FailedScheduling")).items
        assert events and "Insufficient cpu" in events[0]["message"]
        await eventually(lambda: _complete(client, "second"), timeout=20, what="second job complete")

    run(tmp_path, body)


async def _complete(client: Client, job: str) -> bool:
    obj = await client.get("jobs", job, "default")
    return any(c["type"] == "Complete" and c["status"] == "True" for c in (obj.get("status") or {}).get("conditions") or [])


def test_foreground_delete_of_a_finished_job_completes(tmp_path: Path) -> None:
    """The last dependent going away must bring the owner's finalizer removal."""
    async def body(client: Client) -> None:
        await client.create("jobs", job_manifest("done", "true"))
        await eventually(lambda: _complete(client, "done"), what="job complete")
        await client.delete("jobs", "done", "default", propagation_policy="Foreground")
        await eventually(lambda: gone(client, "jobs", "done"), what="job gone")
        assert await pods_of(client, "done") == []

    run(tmp_path, body)
