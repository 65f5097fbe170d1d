"""The Event recorder the Job controller writes through: shape, source, 10-minute dedup."""

from __future__ import annotations

import asyncio

import pytest

from joblet.api.registry import Registry
from joblet.client.events import ClientEventRecorder, FakeRecorder
from joblet.client.local import LocalClient
from joblet.clock import FakeClock
from joblet.store.memory import MemoryStore

JOB = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pi", "namespace": "default", "uid": "u-1"}}


def test_events_are_written_and_deduplicated_within_ten_minutes() -> None:
    async def main() -> None:
        clock = FakeClock()
        client = LocalClient(Registry(MemoryStore(), clock))
        await client.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}})
        rec = ClientEventRecorder(client, clock, "job-controller")
        await rec.event(JOB, "Normal", "SuccessfulCreate", "Created pod: pi-abcde")
        rec.event(JOB, "Normal", "SuccessfulCreate", "Created pod: pi-abcde")
        await rec.flush()
        (ev,) = (await client.list("events", "default")).items
        assert ev["involvedObject"] == {"apiVersion": "batch/v1", "kind": "Job", "name": "pi", "namespace": "default", "uid": "u-1"}
        assert (ev["type"], ev["reason"], ev["message"], ev["count"]) == ("Normal", "SuccessfulCreate", "Created pod: pi-abcde", 2)
        assert ev["source"] == {"component": "job-controller"}
        assert ev["firstTimestamp"] and ev["lastTimestamp"]
        clock.advance(601)
        rec.event(JOB, "Normal", "SuccessfulCreate", "Created pod: pi-abcde")
        rec.event(JOB, "Warning", "BackoffLimitExceeded", "Job has reached the specified backoff limit", component="other")
        await rec.flush()
        events = (await client.list("events", "default")).items
        assert len(events) == 3
        assert {e["source"]["component"] for e in events} == {"job-controller", "other"}
        await rec.close()

    asyncio.run(main())


def test_fake_recorder_keeps_events() -> None:
    rec = FakeRecorder()
    rec.event(JOB, "Normal", "Completed", "Job completed")
    assert rec.reasons() == ["Completed"] and rec.events[0].object_key == "default/pi"


def test_dedup_records_stay_bounded_and_recent_ones_still_dedup(monkeypatch: pytest.MonkeyPatch) -> None:
    import joblet.client.events as events

    async def main() -> None:
        clock = FakeClock()
        client = LocalClient(Registry(MemoryStore(), clock))
        await client.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}})
        rec = ClientEventRecorder(client, clock, "job-controller")
        for i in range(12):
            rec.event(JOB, "Normal", "SuccessfulCreate", f"Created pod: pi-{i}")
        rec.event(JOB, "Normal", "SuccessfulCreate", "Created pod: pi-11")  # the newest: still remembered
        await rec.flush()
        assert len(rec._seen) == 5
        counts = {e["message"]: e["count"] for e in (await client.list("events", "default")).items}
        assert counts["Created pod: pi-11"] == 2 and len(counts) == 12
        await rec.close()

    monkeypatch.setattr(events, "MAX_SEEN", 5)
    asyncio.run(main())
