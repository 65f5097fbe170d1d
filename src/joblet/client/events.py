"""Recording core/v1 Events for controllers and the node agent (the client-go EventRecorder, small).

Controllers call :meth:`EventRecorder.event` synchronously; the real recorder writes the
Event through the API client in the background, so a sync never waits on it. What it writes
is decided by :class:`joblet.client.correlator.EventCorrelator`, client-go's: Events differing
only in message combine after 10, repeats bump ``count`` and ``lastTimestamp`` of the existing
Event with a merge patch, and a source's Events about one object are rate-limited (25, then
one per 5 minutes; the rest are dropped). :class:`FakeRecorder` keeps every event in a list
for tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Generator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from joblet.client.correlator import MAX_ENTRIES, EventCorrelator, LogKey, Patch, Skip
from joblet.client.interface import Client
from joblet.clock import Clock, rfc3339
from joblet.errors import ApiError, NotFound

Obj = dict[str, Any]
log = logging.getLogger(__name__)

#: records each of the recorder's correlation caches keeps at most (the oldest go first).
MAX_SEEN = MAX_ENTRIES
#: Event reasons never dropped by the spam filter: the terminal failure of an object
#: (joblet.controllers.events.INVALID_OBJECT_REASON), which ``joblet run`` stops on, and how a
#: Job ended (recordJobFinished's reasons). Each comes once per object, so it cannot spam; a
#: 3,000-pod Job has spent its 25 tokens long before it ends, and upstream then drops the
#: Event that says why it failed — joblet promises failed Jobs do not go unnoticed, and
#: ``kubectl describe job`` keeps showing it.
UNTHROTTLED_REASONS = frozenset({
    "InvalidObject", "Completed", "TooManySucceededPods", "BackoffLimitExceeded", "DeadlineExceeded",
    "PodFailurePolicy", "FailedIndexes", "MaxFailedIndexesExceeded",
})


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


class ClientEventRecorder:
    """Writes Events through a :class:`Client`, as :class:`EventCorrelator` decides: similar
    Events combined, repeats counted, a source's Events about one object rate-limited."""

    def __init__(self, client: Client, clock: Clock, component: str, host: str = "",
                 correlator: EventCorrelator | None = None) -> None:
        self.client = client
        self.clock = clock
        self.component = component
        self.host = host
        self.correlator = correlator or EventCorrelator(clock, max_entries=MAX_SEEN,
                                                         unthrottled=UNTHROTTLED_REASONS)
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
        decision = self.correlator.correlate(component, self.host, ref, event_type, reason, message)
        if isinstance(decision, Skip):
            return
        now = self.clock.now()
        ts = rfc3339(now)
        count = 1
        if isinstance(decision, Patch):
            body: Obj = {"count": decision.count, "lastTimestamp": ts}
            if decision.message is not None:
                body["message"] = decision.message
            try:
                await self.client.patch("events", decision.name, body, decision.namespace, patch_type="merge")
                return
            except NotFound:  # expired or deleted: create anew, with the count so far (as client-go)
                message, count = decision.message or message, decision.count
        else:
            message = decision.message
        await self._create(decision.key, ref, component, event_type, reason, message, count, now)

    async def _create(self, key: LogKey, ref: Obj, component: str, event_type: str, reason: str,
                      message: str, count: int, now: datetime) -> None:
        namespace = ref["namespace"] or "default"
        ts = rfc3339(now)
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
            "count": count,
            "firstTimestamp": ts,
            "lastTimestamp": ts,
            "reportingComponent": component,
            "reportingInstance": self.host,
        }
        try:
            await self.client.create("events", event, namespace)
        except ApiError as err:
            self.correlator.forget(key)
            log.debug("event %s/%s not recorded: %s", namespace, name, err)
            return
        self.correlator.created(key, name, namespace)
