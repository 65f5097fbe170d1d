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
        jobs = [{**JOB, "metadata": {**JOB["metadata"], "name": f"pi-{i}", "uid": f"u-{i}"}} for i in range(12)]
        for job in jobs:
            rec.event(job, "Normal", "SuccessfulCreate", "Created pod: x")
        rec.event(jobs[-1], "Normal", "SuccessfulCreate", "Created pod: x")  # the newest: still remembered
        await rec.flush()
        assert rec.correlator.sizes() == (5, 5, 5)
        counts = {e["involvedObject"]["name"]: e["count"] for e in (await client.list("events", "default")).items}
        assert counts["pi-11"] == 2 and len(counts) == 12
        await rec.close()

    monkeypatch.setattr(events, "MAX_SEEN", 5)
    asyncio.run(main())


def test_a_big_jobs_similar_events_are_combined_and_rate_limited() -> None:
    """client-go's correlator: 9 Events, then one combined Event counting on, until the Job's
    25 tokens are spent; the rest are dropped until the bucket refills (one per 5 minutes)."""

    async def main() -> None:
        clock = FakeClock()
        client = LocalClient(Registry(MemoryStore(), clock))
        await client.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}})
        rec = ClientEventRecorder(client, clock, "job-controller")
        for i in range(30):
            rec.event(JOB, "Normal", "SuccessfulCreate", f"Created pod: pi-{i}")
        await rec.flush()
        events = (await client.list("events", "default")).items
        assert len(events) == 10
        (combined,) = [e for e in events if e["message"].startswith("(combined")]
        assert (combined["message"], combined["count"]) == ("(combined from similar events): Created pod: pi-24", 16)
        # the combined Event was deleted (Event TTL): the next accepted one creates it anew, counting on
        await client.delete("events", combined["metadata"]["name"], "default")
        clock.advance(300)
        rec.event(JOB, "Normal", "SuccessfulCreate", "Created pod: pi-30")
        rec.event(JOB, "Normal", "SuccessfulDelete", "Deleted pod: pi-1")  # no token left: dropped
        rec.event(JOB, "Warning", "InvalidObject", "cannot process this object")  # never dropped
        rec.event(JOB, "Warning", "BackoffLimitExceeded", "Job has reached the specified backoff limit")  # nor how it ended
        await rec.flush()
        events = (await client.list("events", "default")).items
        assert [e["reason"] for e in events if e["type"] == "Warning"] == ["InvalidObject", "BackoffLimitExceeded"]
        (combined,) = [e for e in events if e["message"].startswith("(combined")]
        assert (combined["message"], combined["count"]) == ("(combined from similar events): Created pod: pi-30", 22)
        assert [e for e in events if e["reason"] == "SuccessfulDelete"] == []
        await rec.close()

    asyncio.run(main())
