"""CronJob and TTL on the assembled in-process control plane, with real processes.

A real ``*/1 * * * *`` CronJob must create a Job at a minute boundary and see it complete.
Instead of waiting up to a minute, the plane runs on an :class:`OffsetClock`: real time
plus an offset chosen so that "now" is 1.5 s before the next minute boundary when the
CronJob is created. Timers still run on the real monotonic clock, so the controller's
requeue (next time + 100 ms) fires for real about 1.6 s later.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from joblet.client.interface import Client
from joblet.clock import RealClock, parse_time
from joblet.config import ControlPlaneConfig
from joblet.controllers.cronjob.schedule import SCHEDULED_TIMESTAMP_ANNOTATION, job_name
from joblet.controlplane import ControlPlane
from joblet.errors import NotFound
from support.waiting import eventually

Obj = dict[str, Any]


class OffsetClock(RealClock):
    """Real time shifted by ``offset``; monotonic time is untouched."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return super().now() + self.offset

    def jump_to_before_next_minute(self, seconds_before: float) -> datetime:
        """Shift so that now is ``seconds_before`` the next minute boundary; return that boundary."""
        real = super().now()
        boundary = real.replace(second=0, microsecond=0) + timedelta(minutes=1)
        self.offset = boundary - timedelta(seconds=seconds_before) - real
        return boundary


def cronjob_manifest(name: str, command: str = "true", **spec: Any) -> Obj:
    return {
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": name},
        "spec": {"schedule": "*/1 * * * *", **spec, "jobTemplate": {
            "metadata": {"labels": {"app": name}},
            "spec": {"template": {"spec": {
                "restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                "containers": [{"name": "c", "image": "busybox", "command": ["sh", "-c", command]}]}}}}},
    }


def run(tmp_path: Path, clock: RealClock, body: Callable[[Client], Awaitable[None]]) -> None:
    async def main() -> None:
        plane = ControlPlane(ControlPlaneConfig(data_dir=tmp_path / "data"), serve_http=False, clock=clock)
        await plane.start()
        try:
            await body(plane.client)
        finally:
            await plane.stop()

    asyncio.run(main())


async def event_reasons(client: Client, name: str) -> list[str]:
    events = (await client.list("events", "default")).items
    return [e["reason"] for e in events if (e.get("involvedObject") or {}).get("name") == name]


def test_every_minute_cronjob_creates_and_completes_a_job(tmp_path: Path) -> None:
    clock = OffsetClock()

    async def body(client: Client) -> None:
        boundary = clock.jump_to_before_next_minute(1.5)
        cj = await client.create("cronjobs", cronjob_manifest("tick"), "default")
        expected = job_name("tick", boundary)

        async def job_created() -> bool:
            try:
                await client.get("jobs", expected, "default")
            except NotFound:
                return False
            return True

        await eventually(job_created, timeout=10, what=f"job {expected}")
        job = await client.get("jobs", expected, "default")
        assert job["metadata"]["annotations"][SCHEDULED_TIMESTAMP_ANNOTATION] == boundary.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert job["metadata"]["labels"]["app"] == "tick"
        assert job["metadata"]["ownerReferences"] == [{
            "apiVersion": "batch/v1", "kind": "CronJob", "name": "tick", "uid": cj["metadata"]["uid"],
            "controller": True, "blockOwnerDeletion": True}]

        async def done() -> bool:
            status = (await client.get("cronjobs", "tick", "default")).get("status") or {}
            return bool(status.get("lastSuccessfulTime")) and not status.get("active")

        await eventually(done, timeout=20, what="cronjob sees the job complete")
        status = (await client.get("cronjobs", "tick", "default"))["status"]
        assert parse_time(status["lastScheduleTime"]) == boundary
        assert parse_time(status["lastSuccessfulTime"]) >= boundary

        async def events_written() -> bool:
            return {"SuccessfulCreate", "SawCompletedJob"} <= set(await event_reasons(client, "tick"))

        await eventually(events_written, timeout=5, what="events")
        reasons = await event_reasons(client, "tick")
        assert "UnexpectedJob" not in reasons and "MissingJob" not in reasons

    run(tmp_path, clock, body)


def test_ttl_deletes_finished_job_and_its_pods(tmp_path: Path) -> None:
    async def body(client: Client) -> None:
        await client.create("jobs", {
            "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "short-lived"},
            "spec": {"ttlSecondsAfterFinished": 0, "template": {"spec": {
                "restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                "containers": [{"name": "c", "image": "busybox", "command": ["sh", "-c", "true"]}]}}}}, "default")

        async def gone() -> bool:
            try:
                await client.get("jobs", "short-lived", "default")
            except NotFound:
                pods = (await client.list("pods", "default",
                                          label_selector="batch.kubernetes.io/job-name=short-lived")).items
                return not pods
            return False

        await eventually(gone, timeout=20, what="job and pods deleted by TTL")

    run(tmp_path, RealClock(), body)
