"""Watch fan-out and bounded history, shared by every store backend.

Why a module of its own: every backend (memory, SQLite, later PostgreSQL) keeps the same
contract for watches — events appear only after the write that made them is durable, a
watch can resume from a resourceVersion as long as the history still reaches back that
far, and anything older is ``410 Gone``. Backends hand committed batches to a
:class:`WatchHub`; the hub appends them to a per-resource history and delivers each event
to the watchers of that resource (all namespaces, or the event's namespace) only, so a
delivery costs O(matching watchers), not O(all watchers).

History entries keep each event's object as the JSON the store already encoded for it, not
as the dict: a dict of a pod takes ~4.7x its JSON in Python objects (12 KB for a 2.6 KB pod),
so holding dicts made the 64 MiB bound ~300 MiB per resource in fact. A replay (a watch
resuming from an older resourceVersion) decodes the entries it sends; live delivery hands
every watcher the same dict, as before. The byte bound counts the JSON plus
:data:`ENTRY_OVERHEAD` per entry, so it is what the history holds in memory.

A watcher wakes its consumer through a future created lazily on the event loop that
awaits it; deliveries from another thread go through ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import NamedTuple

import orjson

from joblet.errors import Gone
from joblet.store.interface import EventType, WatchEvent

DEFAULT_HISTORY_EVENTS = 10_000
DEFAULT_HISTORY_BYTES = 64 * 1024 * 1024
#: bytes one history entry takes besides its JSON (the entry tuple, the bytes header, the rv
#: int, the deque slot), measured with tracemalloc on CPython 3.11 and rounded up.
ENTRY_OVERHEAD = 160


class CommittedEvent(NamedTuple):
    """One event of a committed batch, with what the hub needs to route and keep it."""

    resource: str
    namespace: str
    event: WatchEvent
    data: bytes  # the event's object as JSON (what the history keeps)


class _Entry(NamedTuple):
    """One event in the history: its object stays encoded until a replay needs it."""

    resource_version: int
    type: EventType
    namespace: str
    data: bytes

    def decode(self) -> WatchEvent:
        return WatchEvent(self.type, orjson.loads(self.data), self.resource_version)


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class StoreWatch:
    """One watch stream (implements :class:`joblet.store.interface.Watch`)."""

    __slots__ = ("_closed", "_events", "_hub", "_loop", "_waiter", "min_rv", "namespace", "resource")

    def __init__(self, hub: WatchHub, resource: str, namespace: str | None, min_rv: int) -> None:
        self._hub = hub
        self.resource = resource
        self.namespace = namespace
        self.min_rv = min_rv  # events at or below this rv were already seen (or predate the watch)
        self._events: list[WatchEvent] = []
        self._waiter: asyncio.Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def poll(self) -> list[WatchEvent]:
        events = self._events
        if events:
            self._events = []
        return events

    async def next_batch(self, timeout: float | None = None) -> list[WatchEvent]:
        if not self._events:
            if self._closed:
                raise StopAsyncIteration
            loop = asyncio.get_running_loop()
            fut: asyncio.Future[None] = loop.create_future()
            self._waiter, self._loop = fut, loop
            timer = loop.call_later(timeout, _wake, fut) if timeout is not None else None
            try:
                await fut
            finally:
                self._waiter = None
                if timer is not None:
                    timer.cancel()
            if not self._events and self._closed:
                raise StopAsyncIteration
        return self.poll()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._events = []
        self._hub.unsubscribe(self)
        self._notify()

    def __aiter__(self) -> StoreWatch:
        return self

    async def __anext__(self) -> list[WatchEvent]:
        return await self.next_batch()

    # -- called by the hub ------------------------------------------------------------

    def _append(self, event: WatchEvent) -> bool:
        """Queue one event; True if it was queued (the caller wakes us once per batch)."""
        if event.resource_version <= self.min_rv:
            return False
        self._events.append(event)
        return True

    def _notify(self) -> None:
        fut = self._waiter
        if fut is None or fut.done():
            return
        loop = self._loop
        if loop is None or asyncio.events._get_running_loop() is loop:
            fut.set_result(None)
        elif not loop.is_closed():
            loop.call_soon_threadsafe(_wake, fut)


@dataclass
class _History:
    """Committed events of one resource, oldest first; every event with rv > floor is here."""

    floor: int
    events: deque[_Entry] = field(default_factory=deque)
    bytes: int = 0


@dataclass
class _Watchers:
    everywhere: set[StoreWatch] = field(default_factory=set)
    by_namespace: dict[str, set[StoreWatch]] = field(default_factory=dict)


class WatchHub:
    """Per-resource history plus the live watchers, fed one committed batch at a time."""

    def __init__(
        self,
        start_rv: int = 0,
        history_events: int = DEFAULT_HISTORY_EVENTS,
        history_bytes: int = DEFAULT_HISTORY_BYTES,
    ) -> None:
        self._start_rv = start_rv
        self._max_events = max(1, history_events)
        self._max_bytes = history_bytes
        self._histories: dict[str, _History] = {}
        self._watchers: dict[str, _Watchers] = {}

    def reset(self, start_rv: int) -> None:
        """Forget all history: nothing at or before start_rv can be replayed (e.g. after a restart)."""
        self._start_rv = start_rv
        self._histories.clear()

    def subscribe(
        self, resource: str, namespace: str | None, since_rv: int | None, current_rv: int
    ) -> StoreWatch:
        """A watch of events after since_rv (None: after current_rv); Gone if history is too short.

        Events with rv in (last committed, current_rv] are still pending in the store; they
        reach this watcher through :meth:`publish` when they commit.
        """
        if since_rv is None:
            watch = StoreWatch(self, resource, namespace, current_rv)
        else:
            history = self._histories.get(resource)
            floor = history.floor if history is not None else self._start_rv
            if since_rv < floor:
                raise Gone(f"too old resource version: {since_rv} ({floor})")
            watch = StoreWatch(self, resource, namespace, since_rv)
            if history is not None and history.events and history.events[-1].resource_version > since_rv:
                for entry in history.events:
                    if entry.resource_version > since_rv and (namespace is None or entry.namespace == namespace):
                        watch._append(entry.decode())
            if watch._events:
                watch.min_rv = watch._events[-1].resource_version
        watchers = self._watchers.get(resource)
        if watchers is None:
            watchers = self._watchers[resource] = _Watchers()
        if namespace is None:
            watchers.everywhere.add(watch)
        else:
            watchers.by_namespace.setdefault(namespace, set()).add(watch)
        return watch

    def unsubscribe(self, watch: StoreWatch) -> None:
        watchers = self._watchers.get(watch.resource)
        if watchers is None:
            return
        if watch.namespace is None:
            watchers.everywhere.discard(watch)
        else:
            in_ns = watchers.by_namespace.get(watch.namespace)
            if in_ns is not None:
                in_ns.discard(watch)
                if not in_ns:
                    del watchers.by_namespace[watch.namespace]

    def publish(self, batch: list[CommittedEvent]) -> None:
        """Record a committed batch (in rv order) and deliver it to the matching watchers."""
        woken: set[StoreWatch] = set()
        histories = self._histories
        all_watchers = self._watchers
        for committed in batch:
            resource = committed.resource
            history = histories.get(resource)
            if history is None:
                history = histories[resource] = _History(self._start_rv)
            event = committed.event
            # An exact-size copy: orjson's output keeps its whole write buffer (at least 4 KiB,
            # 16 KiB for a 1.3 KB pod), which would make the history 3-12x its byte count.
            data = bytes(memoryview(committed.data))
            history.events.append(_Entry(event.resource_version, event.type, committed.namespace, data))
            history.bytes += len(data) + ENTRY_OVERHEAD
            if len(history.events) > self._max_events or history.bytes > self._max_bytes:
                self._trim(history)
            watchers = all_watchers.get(resource)
            if watchers is None:
                continue
            for watch in watchers.everywhere:
                if watch._append(event):
                    woken.add(watch)
            if watchers.by_namespace:
                in_ns = watchers.by_namespace.get(committed.namespace)
                if in_ns:
                    for watch in in_ns:
                        if watch._append(event):
                            woken.add(watch)
        for watch in woken:
            watch._notify()

    def _trim(self, history: _History) -> None:
        events = history.events
        while len(events) > 1 and (len(events) > self._max_events or history.bytes > self._max_bytes):
            oldest = events.popleft()
            history.bytes -= len(oldest.data) + ENTRY_OVERHEAD
            history.floor = oldest.resource_version

    def close_all(self) -> None:
        for watchers in list(self._watchers.values()):
            for watch in list(watchers.everywhere):
                watch.close()
            for in_ns in list(watchers.by_namespace.values()):
                for watch in list(in_ns):
                    watch.close()
        self._watchers.clear()

    def history_bytes(self, resource: str) -> int:
        """Bytes the history of ``resource`` holds (JSON plus per-entry overhead)."""
        history = self._histories.get(resource)
        return history.bytes if history is not None else 0

    def watcher_count(self, resource: str) -> int:
        watchers = self._watchers.get(resource)
        if watchers is None:
            return 0
        return len(watchers.everywhere) + sum(len(s) for s in watchers.by_namespace.values())
