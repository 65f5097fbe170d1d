"""The controller runtime honours what a sync returns: a table of outcomes (nothing, a
requeue, a transient exception, a terminal failure returned or raised) and what the work
queue and the Event recorder show afterwards, with a FakeClock (no sleeping)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from joblet.client.events import FakeRecorder
from joblet.clock import FakeClock
from joblet.controllers.events import TerminalReporter
from joblet.controllers.result import DONE, Result, Terminal, TerminalError
from joblet.controllers.runtime import WorkQueue, process_next

OBJ = {"apiVersion": "batch/v1", "kind": "CronJob",
       "metadata": {"name": "cj", "namespace": "default", "uid": "u", "resourceVersion": "5"}}


def terminal_result() -> Result:
    return Result(terminal=Terminal("FailedReplace", "could not replace job default/x", OBJ))


def raise_terminal() -> Result:
    raise TerminalError("FailedReplace", "could not replace job default/x", OBJ)


def raise_transient() -> Result:
    raise RuntimeError("connection reset")


@dataclass(frozen=True)
class Case:
    name: str
    outcome: Callable[[], Result | None]
    #: seconds until the key is due again (None: not waiting)
    due_in: float | None
    requeues: int
    events: list[str]


CASES = [
    Case("none-is-done", lambda: None, None, 0, []),
    Case("done-is-done", lambda: DONE, None, 0, []),
    Case("requeue-after", lambda: Result(requeue_after=7.5), 7.5, 0, []),
    Case("transient-error-is-rate-limited", raise_transient, 1.0, 1, []),
    Case("terminal-result-is-reported-not-retried", terminal_result, None, 0, ["FailedReplace"]),
    Case("terminal-raised-is-reported-not-retried", raise_terminal, None, 0, ["FailedReplace"]),
    Case("terminal-with-requeue-keeps-the-schedule",
         lambda: Result(requeue_after=60, terminal=Terminal("FailedReplace", "m", OBJ)), 60.0, 0, ["FailedReplace"]),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_runtime_honours_the_result(case: Case) -> None:
    async def main() -> None:
        clock = FakeClock()
        queue = WorkQueue(clock, "cronjobs")
        recorder = FakeRecorder()

        async def sync(key: str) -> Result | None:
            return case.outcome()

        queue.add("default/cj")
        assert await process_next(queue, sync, TerminalReporter(recorder, "cronjob-controller"))
        waiting = queue.waiting()
        assert (waiting["default/cj"] - clock.monotonic() if waiting else None) == case.due_in
        assert len(queue) == 0 and queue.num_requeues("default/cj") == case.requeues
        assert recorder.reasons() == case.events
        if case.events:
            assert recorder.events[0].type == "Warning" and recorder.events[0].message

    asyncio.run(main())


def test_a_terminal_failure_is_reported_once_per_object_version() -> None:
    """The same failure on every resync of an unchanged object: one Event, not one a second."""
    async def main() -> None:
        clock = FakeClock()
        queue = WorkQueue(clock, "cronjobs")
        recorder = FakeRecorder()
        reporter = TerminalReporter(recorder, "cronjob-controller")
        obj = dict(OBJ)

        async def sync(key: str) -> Result:
            return Result(terminal=Terminal("FailedReplace", "could not replace job default/x", obj))

        for _ in range(3):
            queue.add("default/cj")
            await process_next(queue, sync, reporter)
        assert recorder.reasons() == ["FailedReplace"]
        obj = {**OBJ, "metadata": {**OBJ["metadata"], "resourceVersion": "6"}}
        queue.add("default/cj")
        await process_next(queue, sync, reporter)
        assert recorder.reasons() == ["FailedReplace", "FailedReplace"]

    asyncio.run(main())
