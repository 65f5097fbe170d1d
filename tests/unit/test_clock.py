"""The clock module: the fake clock, and the wire-format helpers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from joblet.clock import (
    FakeClock,
    canonicalize_json_patch_times,
    canonicalize_times,
    parse_time,
    rfc3339,
    rfc3339_micro,
)

CASES = [
    ("offset-becomes-z", {"status": {"startTime": "2024-01-01T01:00:00+01:00"}},
     {"status": {"startTime": "2024-01-01T00:00:00Z"}}),
    ("fraction-dropped", {"metadata": {"creationTimestamp": "2024-01-01T00:00:00.123456Z"}},
     {"metadata": {"creationTimestamp": "2024-01-01T00:00:00Z"}}),
    ("conditions-in-lists", {"status": {"conditions": [{"lastTransitionTime": "2024-01-01T00:00:00+00:00"}]}},
     {"status": {"conditions": [{"lastTransitionTime": "2024-01-01T00:00:00Z"}]}}),
    ("container-state", {"state": {"terminated": {"startedAt": "2024-01-01T00:00:00+00:00"}}},
     {"state": {"terminated": {"startedAt": "2024-01-01T00:00:00Z"}}}),
    ("micro-time-kept-micro", {"eventTime": "2024-01-01T00:00:00.5+00:00"},
     {"eventTime": "2024-01-01T00:00:00.500000Z"}),
    ("other-strings-untouched", {"message": "2024-01-01T00:00:00+00:00"},
     {"message": "2024-01-01T00:00:00+00:00"}),
    ("unparseable-left-for-validation", {"startTime": "yesterday"}, {"startTime": "yesterday"}),
    ("null-kept", {"completionTime": None}, {"completionTime": None}),
]


@pytest.mark.parametrize(("given", "want"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_canonicalize_times(given: dict[str, object], want: dict[str, object]) -> None:
    assert canonicalize_times(given) == want


def test_json_patch_values_are_canonicalized() -> None:
    ops: list[object] = [{"op": "replace", "path": "/status/startTime", "value": "2024-01-01T00:00:00+00:00"}]
    canonicalize_json_patch_times(ops)
    assert ops == [{"op": "replace", "path": "/status/startTime", "value": "2024-01-01T00:00:00Z"}]


@pytest.mark.parametrize(("when", "want", "want_micro"), [
    (datetime(2026, 12, 8, 3, 4, 5, 6, tzinfo=UTC), "2026-12-08T03:04:05Z", "2026-12-08T03:04:05.000006Z"),
    (datetime(2026, 1, 1, 1, 0, 0, 999999, tzinfo=timezone(timedelta(hours=2))), "2025-12-31T23:00:00Z",
     "2025-12-31T23:00:00.999999Z"),
    (datetime(5, 2, 3, 4, 5, 6, tzinfo=UTC), "0005-02-03T04:05:06Z", "0005-02-03T04:05:06.000000Z"),
], ids=["utc", "offset-to-utc", "four-digit-year"])
def test_wire_times_are_utc_with_a_z(when: datetime, want: str, want_micro: str) -> None:
    assert (rfc3339(when), rfc3339_micro(when)) == (want, want_micro)
    assert parse_time(want) == when.replace(microsecond=0)


def test_fake_clock_moves_only_when_told() -> None:
    clock = FakeClock(datetime(2024, 1, 1, tzinfo=UTC))
    before = clock.monotonic()
    clock.advance(90)
    assert rfc3339(clock.now()) == "2024-01-01T00:01:30Z"
    assert clock.monotonic() - before == 90
    assert parse_time("2024-01-01T00:01:30Z") == clock.now()


def test_canonicalize_times_is_iterative_and_depth_limited() -> None:
    from joblet.clock import TooDeep

    deep: object = {"startTime": "2024-01-02T03:04:05+00:00"}
    for _ in range(5000):  # far past the recursion limit: must not raise RecursionError
        deep = [deep]
    canonicalize_times(deep)
    inner = deep
    while isinstance(inner, list):
        inner = inner[0]
    assert inner == {"startTime": "2024-01-02T03:04:05Z"}
    with pytest.raises(TooDeep):
        canonicalize_times(deep, max_depth=100)
    canonicalize_times({"a": [[{"b": 1}]]}, max_depth=4)
    with pytest.raises(TooDeep):
        canonicalize_times({"a": [[{"b": 1}]]}, max_depth=3)


def test_out_of_range_times_are_left_for_validation() -> None:
    assert canonicalize_times({"startTime": "9999-12-31T23:59:59-23:00"}) == {"startTime": "9999-12-31T23:59:59-23:00"}


def test_fake_sleep_moves_fake_time_and_returns_at_once() -> None:
    clock = FakeClock()
    start_now, start_mono = clock.now(), clock.monotonic()
    clock.sleep(2.5)
    clock.sleep(-1)  # a negative wait (an overdue deadline) does not move time back
    assert clock.monotonic() - start_mono == 2.5
    assert (clock.now() - start_now).total_seconds() == 2.5


def test_fake_async_sleep_returns_only_when_time_is_advanced_past_its_deadline() -> None:
    import asyncio

    async def scenario() -> None:
        clock = FakeClock()
        sleeper = asyncio.ensure_future(clock.sleep_async(10))
        await asyncio.sleep(0)
        assert clock.sleeping() == [10.0]
        clock.advance(9.5)
        await asyncio.sleep(0)
        assert not sleeper.done()
        assert clock.sleeping() == [0.5]
        clock.advance(0.5)
        await asyncio.wait_for(sleeper, 1)
        assert clock.sleeping() == []

    asyncio.run(scenario())


def test_fake_async_sleep_is_cut_short_by_a_wakeup_event_and_leaves_no_sleeper() -> None:
    import asyncio

    async def scenario() -> None:
        clock = FakeClock()
        stop = asyncio.Event()
        sleeper = asyncio.ensure_future(clock.sleep_async(60, stop))
        for _ in range(3):
            await asyncio.sleep(0)
        assert clock.sleeping() == [60.0]
        stop.set()
        await asyncio.wait_for(sleeper, 1)
        assert clock.sleeping() == []
        await asyncio.wait_for(clock.sleep_async(60, stop), 1)  # already set: no wait at all
        await asyncio.wait_for(clock.sleep_async(0), 1)

    asyncio.run(scenario())


def test_fake_clock_advanced_from_another_thread_wakes_the_loop_sleeper() -> None:
    import asyncio
    import threading

    async def scenario() -> None:
        clock = FakeClock()
        sleeper = asyncio.ensure_future(clock.sleep_async(5))
        await asyncio.sleep(0)
        threading.Thread(target=clock.advance, args=(5,)).start()
        await asyncio.wait_for(sleeper, 5)

    asyncio.run(scenario())


def test_real_async_sleep_waits_or_wakes() -> None:
    import asyncio

    from joblet.clock import RealClock

    async def scenario() -> None:
        clock = RealClock()
        stop = asyncio.Event()
        start = clock.monotonic()
        await clock.sleep_async(0.05)
        assert clock.monotonic() - start >= 0.04
        asyncio.get_running_loop().call_later(0.01, stop.set)
        await asyncio.wait_for(clock.sleep_async(60, stop), 5)

    asyncio.run(scenario())


def test_within_waits_a_grace_period_on_the_clock_or_until_the_task_ends() -> None:
    import asyncio

    from joblet.clock import within

    async def scenario() -> None:
        clock = FakeClock()
        stubborn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        grace = asyncio.ensure_future(within(clock, stubborn, 30))
        while clock.sleeping() != [30.0]:
            await asyncio.sleep(0)
        clock.advance(29)
        await asyncio.sleep(0)
        assert not grace.done()
        clock.advance(1)
        assert await asyncio.wait_for(grace, 1) is False
        polite: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        grace = asyncio.ensure_future(within(clock, polite, 30))
        while not clock.sleeping():
            await asyncio.sleep(0)
        polite.set_result(None)
        assert await asyncio.wait_for(grace, 1) is True
        assert clock.sleeping() == []

    asyncio.run(scenario())
