"""Events expire an hour after they were last recorded, as upstream's ``kube-apiserver
--event-ttl`` (default 1h) makes them.

Why: every pod start, eviction and scheduling failure records an Event; without an expiry a
steady stream of small Jobs grows the store (and every Event list) forever. Upstream attaches an
etcd lease to each Event write; joblet's store has no leases, so this sweep deletes every Event
whose last recording (``lastTimestamp``, else ``series.lastObservedTime``, ``eventTime``,
``metadata.creationTimestamp``) is older than the TTL, once per ``interval``.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime, timedelta
from typing import Any

from joblet.client.interface import Client
from joblet.clock import Clock, parse_time_or_none
from joblet.errors import ApiError, NotFound

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


async def expire_events(client: Client, clock: Clock, ttl: float = EVENT_TTL_SECONDS) -> int:
    """Delete the expired Events now; how many went. Only the expired ones are listed: the store
    keeps Events packed, and a list of all of them would decode every one at once, each minute."""
    cutoff = clock.now() - timedelta(seconds=ttl)
    listed = await client.list("events", keep=lambda event: recorded_before(event, cutoff))
    gone = 0
    for event in listed.items:
        meta = event["metadata"]
        with contextlib.suppress(NotFound):
            await client.delete("events", str(meta["name"]), str(meta.get("namespace") or ""))
            gone += 1
    return gone


async def run(client: Client, clock: Clock, ttl: float, interval: float) -> None:
    """Sweep every ``interval`` seconds until cancelled."""
    while True:
        try:
            await expire_events(client, clock, ttl)
        except ApiError as err:
            log.warning("expiring events failed: %s", err)
        await clock.sleep_async(interval)
