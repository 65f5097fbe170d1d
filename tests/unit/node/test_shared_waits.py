"""SharedWaits: one wait per container attempt, kept as its exit once it returned."""

from __future__ import annotations

import asyncio
import gc
import weakref
from datetime import UTC, datetime

import pytest

from joblet.node.runtimes.base import ContainerExit, ContainerRef
from joblet.node.runtimes.records import SharedWaits

REF = ContainerRef("uid-1", "c", 0)
EXIT = ContainerExit(0, "Completed", datetime(2026, 1, 1, tzinfo=UTC))


def test_a_returned_wait_is_kept_as_its_exit_and_not_run_again() -> None:
    waits = SharedWaits()
    calls: list[int] = []
    tasks: list[weakref.ref[asyncio.Task[object]]] = []

    async def waiter() -> ContainerExit:
        calls.append(1)
        task = asyncio.current_task()
        assert task is not None
        tasks.append(weakref.ref(task))
        await asyncio.sleep(0)
        return EXIT

    async def body() -> None:
        first, second = await asyncio.gather(waits.wait(REF, waiter), waits.wait(REF, waiter))
        assert first is second is EXIT
        await asyncio.sleep(0)
        assert await waits.wait(REF, waiter) is EXIT
        gc.collect()
        assert tasks[0]() is None  # the finished attempt's task is not kept

    asyncio.run(body())
    assert calls == [1]
    assert waits.forget_pod("uid-1") == [REF]
    assert waits.forget_pod("uid-1") == []


def test_a_failed_wait_fails_every_caller_without_running_again() -> None:
    waits = SharedWaits()
    calls: list[int] = []

    async def waiter() -> ContainerExit:
        calls.append(1)
        raise OSError("status unreadable")

    async def body() -> None:
        for _ in range(2):
            with pytest.raises(OSError, match="status unreadable"):
                await waits.wait(REF, waiter)

    asyncio.run(body())
    assert calls == [1]
    assert waits.forget_pod("uid-1") == [REF]
