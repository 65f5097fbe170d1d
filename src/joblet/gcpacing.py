"""Garbage-collector pacing for a server whose heap is mostly long-lived API objects.

Why: CPython's full collection walks every object the collector tracks, and it runs each time
the long-lived objects grew by a quarter. A server that keeps a big Job's finished pods (each
~7 tracked dicts and lists, never in a reference cycle) stopped its event loop for 0.6-0.9 s
every half minute while such a Job ran (py-spy: one allocation site on the stack for that long),
the largest part of the Job GET p99 of ``bench/scale.py``; collecting the stored objects again
and again finds nothing.

So :func:`pace`, run by ``joblet server`` and by the control plane ``joblet run`` starts in
its own process (:func:`pacing`), moves the survivors of a young collection to the
permanent generation every ``freeze_seconds`` (``gc.freeze``), where collections do not look,
and once every ``full_seconds`` unfreezes everything and collects it all, so a garbage cycle
that outlived a freeze is freed within that time. Objects freed by reference counting (a
deleted pod) go at once, frozen or not.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator

from joblet.clock import Clock

FREEZE_SECONDS = 60.0
FULL_SECONDS = 3600.0


async def pace(clock: Clock, freeze_seconds: float = FREEZE_SECONDS, full_seconds: float = FULL_SECONDS) -> None:
    """Until cancelled; everything is unfrozen when it ends."""
    since_full = 0.0
    try:
        while True:
            await clock.sleep_async(freeze_seconds)
            since_full += freeze_seconds
            if since_full >= full_seconds:
                since_full = 0.0
                gc.unfreeze()
                gc.collect()
            else:
                gc.collect(1)
            gc.freeze()
    finally:
        gc.unfreeze()


@contextlib.asynccontextmanager
async def pacing(clock: Clock) -> AsyncIterator[None]:
    """:func:`pace` for as long as the block runs: one per process, around the control plane
    that keeps its heap (``joblet server``, ``joblet run`` without a server)."""
    task = asyncio.create_task(pace(clock), name="gc-pacing")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
