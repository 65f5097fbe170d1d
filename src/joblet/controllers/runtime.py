"""The controller runtime every joblet controller runs on: a work queue, informers, a manager.

Kubernetes controllers are level-triggered reconcilers: watch events only say *which* key
to look at, a worker then reads the current state from an informer cache and converges.
This module is that machinery in asyncio form, kept deliberately close to client-go:

* :class:`WorkQueue` - keys (``namespace/name``), deduplicated while waiting, one worker
  per key at a time (a key re-added while it is processed runs again afterwards), delayed
  adds whose due time comes from an injected :class:`~joblet.clock.Clock`, and per-key
  exponential rate limiting for failed syncs (1 s doubling to 60 s).
* :class:`Informer` - list + watch of one resource into a dict cache, with add/update/delete
  handlers and secondary indexes, relisting when the watch is too old (410 Gone). It lives in
  :mod:`joblet.client.informer` (the node agent uses it too) and is re-exported here, the
  one import every controller makes.
* :class:`Controller` / :class:`ControllerManager` - start informers, wait for them to sync,
  run N workers per queue as asyncio tasks, stop everything cleanly.
* :class:`Result` - what a sync returns (controller-runtime's ``reconcile.Result``):
  ``requeue_after`` to look again later, ``terminal`` for a failure retrying cannot fix
  (logged once per object version and recorded as a Warning Event, then left until the
  object changes). An exception is a transient failure: requeued with rate limiting.

Timers: ``add_after`` arms an asyncio timer for the remaining delay, but an item only
becomes ready once ``clock.monotonic()`` has reached its due time. With a FakeClock tests
move the clock and call :meth:`WorkQueue.fire_due` instead of sleeping.

The informers themselves live in :mod:`joblet.client.informer` (the node agent uses them too)
and are re-exported here; what a sync returns is in result.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from joblet.client.events import EventRecorder
from joblet.client.informer import Informer as Informer  # re-exported: the import every controller makes
from joblet.client.informer import InformerFactory as InformerFactory
from joblet.clock import Clock
from joblet.controllers.events import TerminalReporter
from joblet.controllers.result import DONE, Result, TerminalError

Obj = dict[str, Any]
log = logging.getLogger(__name__)


class ShutDown(Exception):
    """Raised by :meth:`WorkQueue.get` once the queue is shut down and drained."""


class WorkQueue:
    """A deduplicating, delaying, rate-limiting queue of string keys (client-go semantics)."""

    def __init__(
        self,
        clock: Clock,
        name: str = "",
        base_delay: float = 1.0,
        max_delay: float = 60.0,
    ) -> None:
        self.clock = clock
        self.name = name
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._queue: deque[str] = deque()
        self._dirty: set[str] = set()
        self._processing: set[str] = set()
        self._failures: dict[str, int] = {}
        # Delayed adds: heap of (due monotonic time, seq, key) plus the earliest due per key.
        self._timers: list[tuple[float, int, str]] = []
        self._due: dict[str, float] = {}
        self._seq = 0
        self._timer_handle: asyncio.TimerHandle | None = None
        self._timer_due: float | None = None
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._shutting_down = False

    # -- adding -------------------------------------------------------------------------

    def add(self, key: str) -> None:
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        if key not in self._processing:
            self._queue.append(key)
            self._notify()

    def add_after(self, key: str, delay_seconds: float) -> None:
        """Add ``key`` once ``delay_seconds`` have passed on the clock (earliest request wins)."""
        if self._shutting_down:
            return
        if delay_seconds <= 0:
            self.add(key)
            return
        due = self.clock.monotonic() + delay_seconds
        current = self._due.get(key)
        if current is not None and current <= due:
            return
        self._due[key] = due
        self._seq += 1
        heapq.heappush(self._timers, (due, self._seq, key))
        self._arm_timer()

    def add_rate_limited(self, key: str) -> None:
        """Requeue after a failure: base_delay * 2^(failures-1), capped at max_delay."""
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        delay = min(self.base_delay * (2**failures), self.max_delay) if failures < 64 else self.max_delay
        self.add_after(key, delay)

    def forget(self, key: str) -> None:
        self._failures.pop(key, None)

    def num_requeues(self, key: str) -> int:
        return self._failures.get(key, 0)

    # -- timers -------------------------------------------------------------------------

    def fire_due(self) -> int:
        """Move every delayed key whose due time has come into the queue. Returns how many."""
        now = self.clock.monotonic()
        fired = 0
        while self._timers and self._timers[0][0] <= now:
            due, _, key = heapq.heappop(self._timers)
            if self._due.get(key) != due:
                continue  # superseded by an earlier request
            del self._due[key]
            self.add(key)
            fired += 1
        self._arm_timer()
        return fired

    def next_due_in(self) -> float | None:
        """Seconds (on the clock) until the next delayed key is due; None if none waits."""
        while self._timers and self._due.get(self._timers[0][2]) != self._timers[0][0]:
            heapq.heappop(self._timers)
        if not self._timers:
            return None
        return max(0.0, self._timers[0][0] - self.clock.monotonic())

    def waiting(self) -> dict[str, float]:
        """Delayed keys and their due time on the clock's monotonic scale (for tests)."""
        return dict(self._due)

    def _arm_timer(self) -> None:
        delay = self.next_due_in()
        if delay is None:
            self._cancel_timer()
            return
        due = self.clock.monotonic() + delay
        if self._timer_handle is not None and self._timer_due is not None and self._timer_due <= due:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (pure unit tests): fire_due() is driven by hand
        self._cancel_timer()
        self._timer_due = due
        self._timer_handle = loop.call_later(delay, self._on_timer)

    def _cancel_timer(self) -> None:
        if self._timer_handle is not None:
            self._timer_handle.cancel()
        self._timer_handle = None
        self._timer_due = None

    def _on_timer(self) -> None:
        self._timer_handle = None
        self._timer_due = None
        self.fire_due()

    # -- consuming ----------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._queue)

    def get_nowait(self) -> str | None:
        """The next ready key (marked processing), or None."""
        if not self._queue:
            return None
        key = self._queue.popleft()
        self._processing.add(key)
        self._dirty.discard(key)
        return key

    async def get(self) -> str:
        """Wait for the next key. Call :meth:`done` when finished with it."""
        while not self._queue:
            if self._shutting_down:
                raise ShutDown(self.name)
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            try:
                await fut
            except asyncio.CancelledError:
                if fut.done() and not fut.cancelled():
                    self._notify()  # pass the wake-up on to another waiter
                raise
        key = self.get_nowait()
        assert key is not None
        return key

    def done(self, key: str) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._queue.append(key)
            self._notify()

    def is_processing(self, key: str) -> bool:
        return key in self._processing

    def shutdown(self) -> None:
        self._shutting_down = True
        self._cancel_timer()
        self._notify(all_waiters=True)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def _notify(self, all_waiters: bool = False) -> None:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                if not all_waiters:
                    return


# -- controllers --------------------------------------------------------------------------

SyncFunc = Callable[[str], Awaitable[Result]]


@dataclass
class QueueWorker:
    """A queue and the function that processes its keys, run by ``workers`` tasks.

    ``recorder``/``component``: where terminal failures are recorded as Events (without a
    recorder they are only logged)."""

    queue: WorkQueue
    sync: SyncFunc
    workers: int = 1
    recorder: EventRecorder | None = None
    component: str = ""
    reporter: TerminalReporter = field(init=False)

    def __post_init__(self) -> None:
        self.reporter = TerminalReporter(self.recorder, self.component or self.queue.name)


async def process_next(queue: WorkQueue, sync: SyncFunc, reporter: TerminalReporter | None = None) -> bool:
    """Process one key and honour its outcome: a :class:`Result` (requeue after a delay,
    report a terminal failure once), or an exception (requeue rate-limited)."""
    try:
        key = await queue.get()
    except ShutDown:
        return False
    requeues = queue.num_requeues(key)
    try:
        result = await sync(key) or DONE
    except asyncio.CancelledError:
        queue.done(key)
        raise
    except TerminalError as err:
        result = Result(terminal=err.terminal)
    except Exception:
        log.exception("%s: syncing %r failed", queue.name or "queue", key)
        queue.add_rate_limited(key)
        queue.done(key)
        return True
    if result.terminal is not None:
        t = result.terminal
        (reporter or TerminalReporter(None, queue.name)).report(key, t.reason, t.message, t.obj)
    # A sync that requeued itself rate-limited (e.g. on a Conflict) keeps its failure
    # count, so its backoff grows instead of restarting at the base delay each time.
    if queue.num_requeues(key) <= requeues:
        queue.forget(key)
    if result.requeue_after is not None:
        queue.add_after(key, result.requeue_after)
    queue.done(key)
    return True


async def drain(queue: WorkQueue, sync: SyncFunc, limit: int = 10_000,
                reporter: TerminalReporter | None = None) -> int:
    """Process ready keys until the queue is empty (tests; no waiting). Returns how many."""
    processed = 0
    while len(queue) and processed < limit:
        await process_next(queue, sync, reporter)
        processed += 1
    return processed


class Controller:
    """Base class: a controller names its informers and its queue workers."""

    name: str = "controller"

    def informers(self) -> list[Informer]:
        raise NotImplementedError

    def queue_workers(self) -> list[QueueWorker]:
        raise NotImplementedError

    async def on_started(self) -> None:
        """Hook run once the informers have synced, before the workers start."""


@dataclass
class ControllerManager:
    """Starts controllers' informers (shared by identity) and workers; stops them cleanly."""

    controllers: list[Controller]
    sync_timeout: float | None = None
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    _informers: list[Informer] = field(default_factory=list)

    async def start(self) -> None:
        seen: set[int] = set()
        for c in self.controllers:
            for inf in c.informers():
                if id(inf) not in seen:
                    seen.add(id(inf))
                    self._informers.append(inf)
        for inf in self._informers:
            inf.start()
        waits = [inf.synced.wait() for inf in self._informers]
        if waits:
            await asyncio.wait_for(asyncio.gather(*waits), self.sync_timeout)
        for c in self.controllers:
            await c.on_started()
            for qw in c.queue_workers():
                for i in range(qw.workers):
                    self._tasks.append(
                        asyncio.create_task(self._worker(qw), name=f"{c.name}-{qw.queue.name}-{i}")
                    )

    @staticmethod
    async def _worker(qw: QueueWorker) -> None:
        while await process_next(qw.queue, qw.sync, qw.reporter):
            # Yield between keys: the in-process client never suspends, so a key that is
            # ready again at once (a sync that requeues itself) would otherwise hold the
            # event loop: informers could not deliver the newer object and stop() never ran.
            await asyncio.sleep(0)

    async def stop(self) -> None:
        for c in self.controllers:
            for qw in c.queue_workers():
                qw.queue.shutdown()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()
        for inf in self._informers:
            await inf.stop()
        self._informers.clear()
