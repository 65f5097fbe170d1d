"""Recording core/v1 Events for controllers and the node agent (the client-go EventRecorder, small).

Controllers call :meth:`EventRecorder.event` synchronously; the real recorder writes the
Event through the API client in the background, so a sync never waits on it. Repeats of
the same (object, type, reason, message) within 10 minutes bump ``count`` and
``lastTimestamp`` of the existing Event with a merge patch instead of creating a new one,
as client-go's correlator does. :class:`FakeRecorder` keeps the events in a list for tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, Protocol

from joblet.client.interface import Client
from joblet.clock import Clock, rfc3339
from joblet.errors import ApiError, NotFound

Obj = dict[str, Any]
log = logging.getLogger(__name__)

DEDUP_WINDOW_SECONDS = 600.0
#: dedup records kept at most (the oldest go first).
MAX_SEEN = 4096


class Recorded:
    """What :meth:`EventRecorder.event` returns: awaiting it is optional and never blocks
    on the write (recording is fire-and-forget; use ``flush`` to wait for writes)."""

    def __await__(self) -> Generator[Any, None, None]:
        return
        yield  # pragma: no cover


RECORDED = Recorded()


class EventRecorder(Protocol):
    def event(
        self, obj: Obj, event_type: str, reason: str, message: str, component: str | None = None
    ) -> Recorded:
        """Record an Event about ``obj``; ``component`` overrides the recorder's source."""


@dataclass(frozen=True)
class RecordedEvent:
    object_key: str
    type: str
    reason: str
    message: str
    component: str | None = None


class FakeRecorder:
    """Keeps events in memory (tests)."""

    def __init__(self) -> None:
        self.events: list[RecordedEvent] = []

    def event(
        self, obj: Obj, event_type: str, reason: str, message: str, component: str | None = None
    ) -> Recorded:
        meta = obj.get("metadata") or {}
        key = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
        self.events.append(RecordedEvent(key, event_type, reason, message, component))
        return RECORDED

    def reasons(self) -> list[str]:
        return [e.reason for e in self.events]


def involved_object(obj: Obj) -> Obj:
    meta = obj.get("metadata") or {}
    ref: Obj = {
        "apiVersion": obj.get("apiVersion", ""),
        "kind": obj.get("kind", ""),
        "name": meta.get("name", ""),
        "namespace": meta.get("namespace", ""),
        "uid": meta.get("uid", ""),
    }
    if meta.get("resourceVersion"):
        ref["resourceVersion"] = str(meta["resourceVersion"])
    return ref


@dataclass
class _Seen:
    name: str
    namespace: str
    count: int
    first_timestamp: str
    last_mono: float


class ClientEventRecorder:
    """Writes Events through a :class:`Client`, deduplicating repeats within 10 minutes."""

    def __init__(self, client: Client, clock: Clock, component: str, host: str = "") -> None:
        self.client = client
        self.clock = clock
        self.component = component
        self.host = host
        self._seen: OrderedDict[tuple[str, str, str, str, str], _Seen] = OrderedDict()
        self._queue: asyncio.Queue[tuple[Obj, str, str, str, str]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._seq = 0

    def event(
        self, obj: Obj, event_type: str, reason: str, message: str, component: str | None = None
    ) -> Recorded:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return RECORDED
        if self._queue is None:
            self._queue = asyncio.Queue()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=f"events-{self.component}")
        self._queue.put_nowait((obj, event_type, reason, message, component or self.component))
        return RECORDED

    async def flush(self) -> None:
        """Wait until every queued event has been written (tests, shutdown)."""
        if self._queue is not None:
            await self._queue.join()

    async def close(self) -> None:
        await self.flush()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            item = await self._queue.get()
            try:
                await self.write(*item)
            except Exception:
                log.exception("writing event failed")
            finally:
                self._queue.task_done()

    async def write(self, obj: Obj, event_type: str, reason: str, message: str, component: str = "") -> None:
        component = component or self.component
        ref = involved_object(obj)
        namespace = ref["namespace"] or "default"
        now = self.clock.now()
        ts = rfc3339(now)
        dedup_key = (
            ref["uid"] or f"{ref['kind']}/{namespace}/{ref['name']}", component, event_type, reason, message
        )
        seen = self._seen.get(dedup_key)
        mono = self.clock.monotonic()
        if seen is not None and mono - seen.last_mono <= DEDUP_WINDOW_SECONDS:
            seen.count += 1
            seen.last_mono = mono
            self._seen.move_to_end(dedup_key)
            try:
                await self.client.patch(
                    "events", seen.name, {"count": seen.count, "lastTimestamp": ts}, seen.namespace, patch_type="merge"
                )
                return
            except NotFound:
                pass  # expired or deleted: create anew
        self._seq += 1
        name = f"{ref['name']}.{int(now.timestamp() * 1e9):x}{self._seq:x}"
        event: Obj = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": ref,
            "reason": reason,
            "message": message,
            "type": event_type,
            "source": {"component": component, **({"host": self.host} if self.host else {})},
            "count": 1,
            "firstTimestamp": ts,
            "lastTimestamp": ts,
            "reportingComponent": component,
            "reportingInstance": self.host,
        }
        try:
            await self.client.create("events", event, namespace)
        except ApiError as err:
            log.debug("event %s/%s not recorded: %s", namespace, name, err)
            return
        self._seen[dedup_key] = _Seen(name, namespace, 1, ts, mono)
        self._forget_old(mono)

    def _forget_old(self, mono: float) -> None:
        """Drop dedup records past the window, oldest first, and beyond MAX_SEEN.

        Records are kept in the order they were last used (a repeat moves its record to the
        end), so expired ones sit at the front: each write costs O(1) amortized, where a scan
        of every record cost a Job of 3,000 pods ten seconds."""
        cutoff = mono - DEDUP_WINDOW_SECONDS
        while self._seen:
            oldest_key = next(iter(self._seen))
            if len(self._seen) <= MAX_SEEN and self._seen[oldest_key].last_mono >= cutoff:
                break
            del self._seen[oldest_key]
