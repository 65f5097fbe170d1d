"""``eventually()``: wait for a condition a real component reaches in its own time.

Why: integration tests watch real controllers, agents and processes; each file had its own
copy of this poll loop. The loop's clock is the event loop's (monotonic), not wall time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 15.0, what: str = "condition",
                     interval: float = 0.05) -> None:
    """Return once ``await check()`` is true; AssertionError naming ``what`` after ``timeout`` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(interval)
