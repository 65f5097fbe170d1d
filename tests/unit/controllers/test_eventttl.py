"""Event expiry (``--event-ttl``, upstream's 1h): which Events go, against a real registry."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from joblet.api.registry import Registry
from joblet.client.interface import ObjectList
from joblet.client.local import LocalClient
from joblet.clock import FakeClock, rfc3339
from joblet.controllers.eventttl import Sweeps, expire_events, recorded_before
from joblet.store.memory import MemoryStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def event(name: str, **times: str) -> dict[str, object]:
    return {"metadata": {"name": name, "namespace": "default", "creationTimestamp": rfc3339(T0)},
            "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
            "reason": "Started", "message": "m", "type": "Normal", **times}


def test_expired_uses_the_last_recording() -> None:
    now = T0 + timedelta(hours=2)
    events = [event("old"), event("renewed", lastTimestamp=rfc3339(now - timedelta(minutes=5))),
              event("series", series={"count": 2, "lastObservedTime": rfc3339(now - timedelta(minutes=1))}),
              event("edge", lastTimestamp=rfc3339(now - timedelta(hours=1)))]
    cutoff = now - timedelta(seconds=3600)
    assert [e["metadata"]["name"] for e in events if recorded_before(e, cutoff)] == ["old"]  # "edge" is exactly 1 h old: kept


def test_expire_events_deletes_only_expired_ones() -> None:
    clock = FakeClock(T0)
    registry = Registry(MemoryStore(), clock)
    registry.create("namespaces", {"metadata": {"name": "default"}})
    client = LocalClient(registry)

    async def body() -> None:
        await client.create("events", event("first", lastTimestamp=rfc3339(T0)), "default")
        clock.advance(1800)
        await client.create("events", event("second", lastTimestamp=rfc3339(clock.now())), "default")
        clock.advance(1801)
        assert await expire_events(client, clock, 3600) == 1
        assert [e["metadata"]["name"] for e in (await client.list("events")).items] == ["second"]

    asyncio.run(body())


def test_expire_events_lists_only_the_expired_ones() -> None:
    # The store keeps Events packed: a sweep must not hold every Event decoded at once.
    clock = FakeClock(T0)
    registry = Registry(MemoryStore(), clock)
    registry.create("namespaces", {"metadata": {"name": "default"}})
    client = LocalClient(registry)
    listed: list[int] = []
    plain_list = client.list

    async def counting_list(*args: Any, **kwargs: Any) -> ObjectList:
        result = await plain_list(*args, **kwargs)
        listed.append(len(result.items))
        return result

    client.list = counting_list  # type: ignore[method-assign]

    async def body() -> None:
        for i in range(3):
            await client.create("events", event(f"old{i}", lastTimestamp=rfc3339(T0)), "default")
        clock.advance(3601)
        for i in range(5):
            await client.create("events", event(f"new{i}", lastTimestamp=rfc3339(clock.now())), "default")
        assert await expire_events(client, clock, 3600) == 3

    asyncio.run(body())
    assert listed == [3]


def test_after_the_first_sweep_an_event_expires_an_hour_after_its_last_write() -> None:
    # As upstream's lease per Event write: what counts after the first sweep is when the Event was
    # written (to within one sweep interval), not the time it says; stored before the first sweep,
    # the time it says is all there is.
    clock = FakeClock(T0)
    registry = Registry(MemoryStore(), clock)
    registry.create("namespaces", {"metadata": {"name": "default"}})
    client = LocalClient(registry)
    sweeps = Sweeps()
    ancient = rfc3339(T0 - timedelta(hours=5))

    async def sweep_after(seconds: float) -> list[str]:
        clock.advance(seconds)
        await expire_events(client, clock, 3600, sweeps)
        return sorted(e["metadata"]["name"] for e in (await client.list("events")).items)

    async def body() -> None:
        await client.create("events", event("before-old", lastTimestamp=ancient), "default")
        await client.create("events", event("before-recent", lastTimestamp=rfc3339(T0)), "default")
        assert await sweep_after(0) == ["before-recent"]  # the first sweep: by the time each says
        await client.create("events", event("claims-old", lastTimestamp=ancient), "default")  # written at T0
        assert await sweep_after(60) == ["before-recent", "claims-old"]  # its time says 5 h: kept
        await client.create("events", event("renewed", lastTimestamp=rfc3339(clock.now())), "default")
        assert await sweep_after(1800) == ["before-recent", "claims-old", "renewed"]
        renewed = await client.get("events", "renewed", "default")
        await client.update("events", {**renewed, "count": 2})  # written again at T0 + 31 min
        # T0 + 1 h - 1 s: before-recent's time is over an hour old; claims-old was written after
        # the sweep at T0, the last one at least an hour old, so it stays for now
        assert await sweep_after(1799) == ["claims-old", "renewed"]
        assert await sweep_after(2) == ["renewed"]  # T0 + 1 h + 1 s: the sweep at T0 + 1 min saw it written
        assert await sweep_after(1800) == ["renewed"]  # T0 + 1 h 31 min: its second write keeps it
        assert await sweep_after(1799) == []  # an hour after the first sweep that saw its second write

    asyncio.run(body())
