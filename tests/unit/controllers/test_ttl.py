"""TTL-after-finished: the pure expiry decision as a table, and the reconciler against a
real registry (in-memory store) driven by a FakeClock: requeue for the remaining time,
re-read live before deleting, Foreground delete with a uid precondition."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from joblet.client.interface import Client
from joblet.clock import FakeClock
from joblet.config import ControlPlaneConfig
from joblet.controllers.runtime import InformerFactory, drain
from joblet.controllers.ttl import TTLAfterFinishedController, needs_cleanup, time_left
from joblet.controlplane import ControlPlane
from joblet.errors import NotFound
from joblet.objects import FOREGROUND_FINALIZER
from joblet.store.memory import MemoryStore

Obj = dict[str, Any]
FINISHED_AT = "2024-01-01T00:00:00Z"
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def job(ttl: int | None, condition: str | None = "Complete", deleting: bool = False,
        transition: str | None = FINISHED_AT) -> Obj:
    j: Obj = {"metadata": {"name": "j", "namespace": "default", "uid": "u"}, "spec": {}, "status": {}}
    if ttl is not None:
        j["spec"]["ttlSecondsAfterFinished"] = ttl
    if condition:
        cond: Obj = {"type": condition, "status": "True"}
        if transition:
            cond["lastTransitionTime"] = transition
        j["status"]["conditions"] = [cond]
    if deleting:
        j["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:01Z"
    return j


TIME_LEFT_CASES = [
    # id, job, seconds after finish, expected time left (None: TTL does not apply)
    ("no-ttl", job(None), 0, None),
    ("not-finished", job(10, condition=None), 0, None),
    ("suspended-not-finished", job(10, condition="Suspended"), 0, None),
    ("being-deleted", job(10, deleting=True), 100, None),
    ("complete-waits", job(10), 4, 6.0),
    ("failed-waits", job(10, condition="Failed"), 4, 6.0),
    ("expired", job(10), 10, 0.0),
    ("ttl-zero-at-once", job(0), 0, 0.0),
    ("long-expired", job(10), 3600, -3590.0),
    ("finish-in-future-clock-skew-waits", job(10, transition="2024-01-01T00:01:00Z"), 0, 70.0),
]


@pytest.mark.parametrize(("obj", "after", "expected"),
                         [pytest.param(o, a, e, id=i) for i, o, a, e in TIME_LEFT_CASES])
def test_time_left(obj: Obj, after: float, expected: float | None) -> None:
    clock = FakeClock(T0)
    clock.advance(after)
    assert time_left(obj, clock.now()) == expected


def test_finished_without_transition_time_is_an_error() -> None:
    assert needs_cleanup(job(10, transition=None))
    with pytest.raises(ValueError, match="finished"):
        time_left(job(10, transition=None), T0)


# -- reconciler ---------------------------------------------------------------------------


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


async def finished_job(client: Client, name: str, ttl: int, clock: FakeClock) -> Obj:
    created = await client.create("jobs", {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
        "spec": {"ttlSecondsAfterFinished": ttl, "template": {"spec": {
            "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}, "default")
    now = clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    created = dict(created)
    created["status"] = {"startTime": now, "completionTime": now, "succeeded": 1, "conditions": [
        {"type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": now, "lastProbeTime": now},
        {"type": "Complete", "status": "True", "lastTransitionTime": now, "lastProbeTime": now}]}
    return await client.update("jobs", created, subresource="status")


def test_reconciler_deletes_foreground_after_ttl(tmp_path: Path) -> None:
    clock = FakeClock(T0)

    async def body(client: Client) -> None:
        await finished_job(client, "done", 30, clock)
        ctl = TTLAfterFinishedController(client, clock, InformerFactory(client))
        await ctl.jobs.list_once()
        assert await drain(ctl.queue, ctl.sync) == 1
        assert list(ctl.queue.waiting().values()) == [clock.monotonic() + 30]  # requeued for the rest
        clock.advance(29)
        assert ctl.queue.fire_due() == 0
        clock.advance(1)
        assert ctl.queue.fire_due() == 1
        await drain(ctl.queue, ctl.sync)
        # No garbage collector runs here: the Job waits on the foregroundDeletion finalizer.
        live = await client.get("jobs", "done", "default")
        assert live["metadata"]["deletionTimestamp"]
        assert FOREGROUND_FINALIZER in live["metadata"]["finalizers"]

    with_plane(tmp_path, clock, body)


def test_reconciler_rereads_ttl_before_deleting(tmp_path: Path) -> None:
    clock = FakeClock(T0)

    async def body(client: Client) -> None:
        await finished_job(client, "extended", 10, clock)
        ctl = TTLAfterFinishedController(client, clock, InformerFactory(client))
        await ctl.jobs.list_once()
        clock.advance(10)
        # The TTL is raised after the cache saw the Job: the live read wins.
        await client.patch("jobs", "extended", {"spec": {"ttlSecondsAfterFinished": 100}}, "default")
        await drain(ctl.queue, ctl.sync)
        live = await client.get("jobs", "extended", "default")
        assert not live["metadata"].get("deletionTimestamp")
        assert list(ctl.queue.waiting().values()) == [clock.monotonic() + 90]

    with_plane(tmp_path, clock, body)


def test_reconciler_ignores_a_job_already_gone(tmp_path: Path) -> None:
    clock = FakeClock(T0)

    async def body(client: Client) -> None:
        await finished_job(client, "gone", 0, clock)
        ctl = TTLAfterFinishedController(client, clock, InformerFactory(client))
        await ctl.jobs.list_once()
        await client.delete("jobs", "gone", "default", propagation_policy="Background")
        await drain(ctl.queue, ctl.sync)  # NotFound on the live read is fine
        with pytest.raises(NotFound):
            await client.get("jobs", "gone", "default")

    with_plane(tmp_path, clock, body)
