"""GC pacing: survivors are frozen out of collections, and a frozen garbage cycle is still freed
by the periodic full collection."""

from __future__ import annotations

import asyncio
import gc
import weakref

from joblet.clock import FakeClock
from joblet.gcpacing import pace, pacing


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the collector frees it


async def until_sleeping(clock: FakeClock) -> None:
    while not clock.sleeping():
        await asyncio.sleep(0)


def test_survivors_are_frozen_and_a_frozen_cycle_is_freed_by_the_full_collection() -> None:
    clock = FakeClock()

    async def body() -> None:
        task = asyncio.create_task(pace(clock, freeze_seconds=60, full_seconds=180))
        try:
            await until_sleeping(clock)
            cycle = Node()
            dead = weakref.ref(cycle)
            clock.advance(60)
            await until_sleeping(clock)
            assert gc.get_freeze_count() > 0
            del cycle
            gc.collect()  # a frozen cycle is out of every collection's reach...
            assert dead() is not None
            clock.advance(60)
            await until_sleeping(clock)
            assert dead() is not None
            clock.advance(60)  # ...until the full collection, every full_seconds
            await until_sleeping(clock)
            assert dead() is None
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        assert gc.get_freeze_count() == 0  # ended: nothing stays frozen

    asyncio.run(body())


def test_pacing_runs_while_the_block_runs_and_unfreezes_after() -> None:
    clock = FakeClock()

    def pacers() -> list[asyncio.Task[object]]:
        return [t for t in asyncio.all_tasks() if t.get_name() == "gc-pacing" and not t.done()]

    async def body() -> None:
        async with pacing(clock):
            assert len(pacers()) == 1
            await until_sleeping(clock)
            clock.advance(60)
            while gc.get_freeze_count() == 0:
                await asyncio.sleep(0)
        assert pacers() == [] and gc.get_freeze_count() == 0

    asyncio.run(body())
