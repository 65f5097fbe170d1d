"""Events expire an hour after they were last written, as upstream's ``kube-apiserver
--event-ttl`` (default 1h) makes them.

Why: every pod start, eviction and scheduling failure records an Event; without an expiry a
steady stream of small Jobs grows the store (and every Event list) forever. Upstream attaches an
etcd lease to each Event write; joblet's store has no leases, so a sweep runs once per
``interval`` and deletes the Events last written before a sweep that is ``ttl`` old: each sweep
notes the store's resourceVersion (:class:`Sweeps`), and the store lists the Events written up
to a resourceVersion at the cost of those alone. Reading every Event each minute (the store
keeps them packed) stopped the event loop for over a second a minute with 300,000 Events.
Events already stored when the sweeps began (a restart) expire by their last recording
(``lastTimestamp``, else ``series.lastObservedTime``, ``eventTime``,
``metadata.creationTimestamp``), the only time they carry.
"""

from __future__ import annotations

import contextlib
import logging
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from joblet.client.interface import Client
from joblet.clock import Clock, parse_time_or_none
from joblet.errors import ApiError, NotFound
from joblet.objects import rv_of

log = logging.getLogger(__name__)

EVENT_TTL_SECONDS = 3600.0


def last_recorded(event: dict[str, Any]) -> datetime | None:
    series = event.get("series") or {}
    for value in (event.get("lastTimestamp"), series.get("lastObservedTime") if isinstance(series, dict) else None,
                  event.get("eventTime"), (event.get("metadata") or {}).get("creationTimestamp")):
        when = parse_time_or_none(value)
        if when is not None:
            return when
    return None


def recorded_before(event: dict[str, Any], cutoff: datetime) -> bool:
    """Whether the Event was recorded last before ``cutoff`` (the expiry's pure decision)."""
    when = last_recorded(event)
    return when is not None and when < cutoff


@dataclass
class Sweeps:
    """What the sweeps so far tell the next one: the store's resourceVersion at each (an hour's
    worth), and at the first."""

    first_rv: int | None = None
    seen: deque[tuple[datetime, int]] = field(default_factory=deque)


def written_by(seen: deque[tuple[datetime, int]], cutoff: datetime) -> int:
    """The store's resourceVersion at the last sweep at or before ``cutoff`` (0: no sweep that
    old): every object written up to it was written before ``cutoff``. Forgets older sweeps."""
    while len(seen) > 1 and seen[1][0] <= cutoff:
        seen.popleft()
    return seen[0][1] if seen and seen[0][0] <= cutoff else 0


async def expire_events(client: Client, clock: Clock, ttl: float = EVENT_TTL_SECONDS,
                        sweeps: Sweeps | None = None) -> int:
    """Delete the expired Events now; how many went. Without ``sweeps`` (or on the first), every
    Event is read and expires by its timestamps; after it only those written up to the first
    sweep or up to one an hour old are read (keep ``sweeps`` from one call to the next)."""
    sweeps = sweeps if sweeps is not None else Sweeps()
    now = clock.now()
    cutoff = now - timedelta(seconds=ttl)
    through = written_by(sweeps.seen, cutoff)
    bound = None if sweeps.first_rv is None else max(through, sweeps.first_rv)
    listed = await client.list("events", written_through=bound,
                               keep=lambda event: rv_of(event) <= through or recorded_before(event, cutoff))
    rv = int(listed.resource_version or 0)
    sweeps.seen.append((now, rv))
    if sweeps.first_rv is None:
        sweeps.first_rv = rv
    gone = 0
    for event in listed.items:
        meta = event["metadata"]
        with contextlib.suppress(NotFound):
            await client.delete("events", str(meta["name"]), str(meta.get("namespace") or ""))
            gone += 1
    return gone


async def run(client: Client, clock: Clock, ttl: float, interval: float) -> None:
    """Sweep every ``interval`` seconds until cancelled."""
    sweeps = Sweeps()
    while True:
        try:
            await expire_events(client, clock, ttl, sweeps)
        except ApiError as err:
            log.warning("expiring events failed: %s", err)
        await clock.sleep_async(interval)
