"""Event expiry (``--event-ttl``, upstream's 1h): which Events go, against a real registry."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from joblet.api.registry import Registry
from joblet.client.interface import ObjectList
from joblet.client.local import LocalClient
from joblet.clock import FakeClock, rfc3339
from joblet.controllers.eventttl import expire_events, recorded_before
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
    # The store keeps Events as JSON: a sweep must not hold every Event decoded at once.
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
