"""``joblet run``'s progress between two Job status writes: the follower counts the pods it
watches, shows whichever of pods and Job is further along, and prints a changed line at most
once per pacer period (fake time), never one for nothing and never one past the Job's end."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import pytest
from rich.console import Console

from joblet.cli.follow import Follower
from joblet.cli.progress import PERIOD, Counts, Pacer, PodTally, line_to_print, merged_counts, progress_line
from joblet.clock import FakeClock

Obj = dict[str, Any]
INDEX = "batch.kubernetes.io/job-completion-index"


def pod(uid: str, phase: str = "Running", index: int | None = None, deleting: bool = False) -> Obj:
    meta: Obj = {"name": f"p-{uid}", "uid": uid, "labels": {} if index is None else {INDEX: str(index)}}
    if deleting:
        meta["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    return {"metadata": meta, "status": {"phase": phase}}


def job(status: Obj | None = None, completions: int | None = 10, **spec: Any) -> Obj:
    return {"metadata": {"name": "j", "uid": "ju"}, "spec": {"completions": completions, **spec},
            "status": status or {}}


# -- counting the pods ------------------------------------------------------------------------------

TALLY_CASES = [
    # (indexed, events, (succeeded, active, failed, terminating), whether the last event changed a count)
    (False, [("+", pod("a"))], (0, 1, 0, 0), True),
    (False, [("+", pod("a")), ("+", pod("a"))], (0, 1, 0, 0), False),  # a MODIFIED that moves nothing
    (False, [("+", pod("a")), ("+", pod("a", "Succeeded"))], (1, 0, 0, 0), True),
    (False, [("+", pod("a", "Succeeded")), ("+", pod("a", "Running"))], (1, 0, 0, 0), False),  # finished stays
    (False, [("+", pod("a")), ("+", pod("a", "Failed"))], (0, 0, 1, 0), True),
    (False, [("+", pod("a")), ("+", pod("a", deleting=True))], (0, 0, 0, 1), True),
    (False, [("+", pod("a")), ("+", pod("a", deleting=True)), ("-", pod("a"))], (0, 0, 0, 0), True),
    (False, [("+", pod("a", "Succeeded")), ("-", pod("a"))], (1, 0, 0, 0), False),  # counted stays counted
    (False, [("+", pod("a", "Succeeded")), ("+", pod("b", "Succeeded"))], (2, 0, 0, 0), True),
    # Indexed: a second pod of an index that already succeeded adds no completion
    (True, [("+", pod("a", "Succeeded", 3)), ("+", pod("b", "Succeeded", 3))], (1, 0, 0, 0), True),
    (True, [("+", pod("a", "Succeeded", 3)), ("+", pod("b", "Succeeded", 4))], (2, 0, 0, 0), True),
]


@pytest.mark.parametrize(("indexed", "events", "expected", "last_changed"), TALLY_CASES)
def test_the_tally_follows_pod_events(indexed: bool, events: list[tuple[str, Obj]],
                                      expected: tuple[int, int, int, int], last_changed: bool) -> None:
    tally = PodTally(indexed)
    changed = False
    for kind, p in events:
        changed = tally.observe(p) if kind == "+" else tally.deleted(p)
    assert (tally.succeeded, tally.active, tally.failed, tally.terminating) == expected
    assert changed is last_changed


def test_a_relist_forgets_running_pods_that_are_gone_and_keeps_finished_ones() -> None:
    tally = PodTally()
    for p in (pod("a"), pod("b"), pod("c", "Succeeded")):
        tally.observe(p)
    assert tally.relisted({"b"}) is True
    assert (tally.succeeded, tally.active) == (1, 1)
    assert tally.relisted({"b"}) is False


# -- what the line shows -----------------------------------------------------------------------------

def tally_of(*pods: Obj, indexed: bool = False) -> PodTally:
    tally = PodTally(indexed)
    for p in pods:
        tally.observe(p)
    return tally


MERGE_CASES = [
    # no pod seen yet: the Job's status, its uncounted finished pods included
    (job({"succeeded": 2, "active": 3, "failed": 1, "uncountedTerminatedPods": {"succeeded": ["x"], "failed": ["y"]}}),
     PodTally(), Counts(3, 3, 2, 0)),
    # pods further along than the Job's last write
    (job({"succeeded": 1, "active": 2}), tally_of(pod("a", "Succeeded"), pod("b", "Succeeded"), pod("c")),
     Counts(2, 1, 0, 0)),
    # the Job further along (the follower's pod watch is behind): the Job's counts win
    (job({"succeeded": 5, "failed": 2, "active": 1}), tally_of(pod("a", "Succeeded"), pod("b", "Failed")),
     Counts(5, 0, 2, 0)),
    # under a podFailurePolicy a failed pod may be ignored: failures are the Job's alone
    (job({"failed": 0}, podFailurePolicy={"rules": []}), tally_of(pod("a", "Failed")), Counts(0, 0, 0, 0)),
    # never more succeeded than completions (duplicates of an index in the uncounted list)
    (job({"succeeded": 1, "uncountedTerminatedPods": {"succeeded": ["x", "y"]}}, completions=2), PodTally(),
     Counts(2, 0, 0, 0)),
    (job({"terminating": 1}), tally_of(pod("a", deleting=True)), Counts(0, 0, 0, 1)),
]


@pytest.mark.parametrize(("job_obj", "tally", "expected"), MERGE_CASES)
def test_merged_counts(job_obj: Obj, tally: PodTally, expected: Counts) -> None:
    assert merged_counts(job_obj, tally) == expected


def test_the_line_reads_like_before() -> None:
    line = progress_line(job({"succeeded": 1, "active": 2}), tally_of(pod("a", "Succeeded"), pod("b", "Succeeded"),
                                                                      pod("c", deleting=True)))
    assert line == "job/j: 2/10 succeeded, 0 active, 0 failed, 1 terminating"
    suspended = job({"conditions": [{"type": "Suspended", "status": "True"}]}, completions=None)
    assert progress_line(suspended) == "job/j: 0 succeeded, 0 active, 0 failed, suspended"


COMPLETE = {"conditions": [{"type": "Complete", "status": "True"}], "succeeded": 10}
PRINT_CASES = [
    # (job, tally, last line printed, total printed, line expected or None)
    (job({"active": 2}), PodTally(), "", 0, "job/j: 0/10 succeeded, 2 active, 0 failed"),
    (job({"active": 2}), PodTally(), "job/j: 0/10 succeeded, 2 active, 0 failed", 2, None),  # nothing new
    (job({"active": 2}), tally_of(pod("a", "Succeeded"), pod("b")), "job/j: 0/10 succeeded, 2 active, 0 failed", 2,
     "job/j: 1/10 succeeded, 1 active, 0 failed"),  # a pod finished before the Job counted it
    (job(COMPLETE), PodTally(), "", 0, None),  # the summary says it
    (job({"succeeded": 9}, completions=10), tally_of(*(pod(str(i), "Succeeded") for i in range(10))), "", 0, None),
    # an active pod gone before its finish is counted: no step backwards...
    (job({}), tally_of(pod("a", "Succeeded")), "job/j: 1/10 succeeded, 1 active, 0 failed", 2, None),
    # ...unless pods are being stopped
    (job({}), tally_of(pod("a", "Succeeded"), pod("b", deleting=True)), "x", 3,
     "job/j: 1/10 succeeded, 0 active, 0 failed, 1 terminating"),
]


@pytest.mark.parametrize(("job_obj", "tally", "last", "total", "expected"), PRINT_CASES)
def test_line_to_print(job_obj: Obj, tally: PodTally, last: str, total: int, expected: str | None) -> None:
    assert line_to_print(job_obj, tally, last, total) == expected


# -- how often ---------------------------------------------------------------------------------------

PACER_CASES = [
    # (times of the prints asked for, the delay each one is told)
    ([0.0], [0.0]),  # the first change prints at once
    ([0.0, 0.1], [0.0, PERIOD - 0.1]),  # the next one waits for the period
    ([0.0, PERIOD + 0.1, 2 * PERIOD], [0.0, 0.0, 0.0]),  # a late print does not push the grid back
    ([0.0, 5.0, 5.1], [0.0, 0.0, PERIOD - 0.1]),  # after a quiet spell the grid starts again
]


@pytest.mark.parametrize(("times", "delays"), PACER_CASES)
def test_pacer(times: list[float], delays: list[float]) -> None:
    clock, pacer, start = FakeClock(), Pacer(), FakeClock().monotonic()
    told = []
    for t in times:
        clock.advance(start + t - clock.monotonic())
        told.append(round(pacer.delay(clock.monotonic()), 6))
        clock.advance(told[-1])
        pacer.printed(clock.monotonic())
    assert told == [round(d, 6) for d in delays]


def test_the_follower_prints_pod_progress_between_job_writes_at_most_once_per_period() -> None:
    async def scenario() -> list[str]:
        clock, out = FakeClock(), io.StringIO()
        console = Console(file=out, force_terminal=False, width=200)
        follower = Follower(client=None, console=console, namespace="default", job_name="j",  # type: ignore[arg-type]
                            indexed=True, job=job({}, completions=4), clock=clock)
        task = asyncio.ensure_future(follower.render_progress())

        async def settle() -> None:
            for _ in range(5):
                await asyncio.sleep(0)

        try:
            follower.on_job(job({"active": 2}, completions=4))
            await settle()  # first line at once
            follower.on_pod(pod("a", index=0))
            follower.on_pod(pod("b", index=1))
            follower.on_pod_deleted(pod("zz"))  # unknown pod: nothing changes, nothing printed
            follower.on_pod(pod("a", "Succeeded", 0))
            await settle()
            assert clock.sleeping() == [pytest.approx(PERIOD)]  # within the period: waits
            follower.on_pod(pod("b", "Succeeded", 1))  # folded into the same line
            clock.advance(PERIOD)
            await settle()
            follower.on_job(job({"succeeded": 2}, completions=4))  # the Job catches up: same counts
            clock.advance(PERIOD)
            await settle()
            follower.on_pod(pod("c", "Succeeded", 2))
            follower.on_pod(pod("d", "Succeeded", 3))
            clock.advance(PERIOD)
            await settle()  # 4/4: the summary says it
        finally:
            task.cancel()
        return out.getvalue().splitlines()

    assert asyncio.run(scenario()) == ["job/j: 0/4 succeeded, 2 active, 0 failed",
                                       "job/j: 2/4 succeeded, 0 active, 0 failed"]
