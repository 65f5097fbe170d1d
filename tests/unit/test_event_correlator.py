"""The Event correlator's decisions (client-go's EventCorrelator): aggregation of similar
Events, dedup of identical ones, the per source + object spam filter, bounded caches."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from joblet.client.correlator import (
    COMBINED_PREFIX,
    SKIP,
    Create,
    Decision,
    EventCorrelator,
    Patch,
)
from joblet.clock import FakeClock


def ref(name: str = "pi", kind: str = "Job") -> dict[str, str]:
    return {"apiVersion": "batch/v1", "kind": kind, "name": name, "namespace": "default", "uid": f"u-{name}"}


@dataclass(frozen=True)
class E:
    """One recorded Event."""

    message: str = "m"
    reason: str = "R"
    obj: str = "pi"
    component: str = "job-controller"
    type: str = "Normal"


@dataclass(frozen=True)
class Wait:
    seconds: float


def summary(d: Decision) -> str:
    if d is SKIP:
        return "skip"
    combined = "combined " if d.key[1] is None else ""
    if isinstance(d, Create):
        return f"{combined}create"
    assert isinstance(d, Patch)
    return f"{combined}patch {d.count}"


def play(steps: list[E | Wait], correlator: EventCorrelator | None = None,
         clock: FakeClock | None = None) -> list[str]:
    """Feed the steps through a correlator as the recorder does (every create succeeds)."""
    clock = clock or FakeClock()
    correlator = correlator or EventCorrelator(clock)
    out: list[str] = []
    for step in steps:
        if isinstance(step, Wait):
            clock.advance(step.seconds)
            continue
        d = correlator.correlate(step.component, "", ref(step.obj), step.type, step.reason, step.message)
        if isinstance(d, Create):
            correlator.created(d.key, f"ev{len(out)}", "default")
        out.append(summary(d))
    return out


def distinct(n: int, start: int = 0, **kw: str) -> list[E | Wait]:
    return [E(message=f"Created pod: pi-{i}", **kw) for i in range(start, start + n)]


def same(n: int, **kw: str) -> list[E | Wait]:
    return [E(**kw) for _ in range(n)]


def patches(first: int, last: int, prefix: str = "") -> list[str]:
    return [f"{prefix}patch {c}" for c in range(first, last + 1)]


CASES: list[tuple[str, list[E | Wait], list[str]]] = [
    ("identical repeats patch the count", same(3), ["create", "patch 2", "patch 3"]),
    ("dedup holds within ten minutes", [E(), Wait(599), E()], ["create", "patch 2"]),
    ("dedup forgets after ten quiet minutes", [E(), Wait(601), E()], ["create", "create"]),
    ("different messages below ten are Events of their own", distinct(9), ["create"] * 9),
    ("the tenth similar message starts the combined Event", distinct(12),
     ["create"] * 9 + ["combined create", "combined patch 2", "combined patch 3"]),
    ("a repeat of a message still in the similar set counts its own Event",
     [*distinct(10), E(message="Created pod: pi-5")], ["create"] * 9 + ["combined create", "patch 2"]),
    ("aggregation restarts after ten quiet minutes", [*distinct(9), Wait(601), E(message="new")],
     ["create"] * 10),
    ("the aggregation window rolls with each similar Event",
     [x for i in range(10) for x in (Wait(100), E(message=f"m{i}"))], ["create"] * 9 + ["combined create"]),
    ("another reason is not similar", [*distinct(9), E(message="x", reason="Other")], ["create"] * 10),
    ("another type is not similar", [*distinct(9), E(message="x", type="Warning")], ["create"] * 10),
    ("different objects aggregate independently",
     [x for i in range(10) for x in (E(message=f"a{i}", obj="a"), E(message=f"b{i}", obj="b"))],
     ["create"] * 18 + ["combined create"] * 2),
    ("the spam filter lets a burst of 25 through, then drops",
     [E(message=f"m{i}", reason=f"R{i}") for i in range(27)], ["create"] * 25 + ["skip"] * 2),
    ("patches take tokens too", same(27), ["create", *patches(2, 25), "skip", "skip"]),
    ("the bucket refills one token per five minutes",
     [*same(25), E(), Wait(299), E(), Wait(1), E(), E()],
     ["create", *patches(2, 25), "skip", "skip", "patch 28", "skip"]),
    ("dropped repeats are still counted by the next accepted patch",
     [*same(30), Wait(300), E()], ["create", *patches(2, 25), *["skip"] * 5, "patch 31"]),
    ("the refill stops at the burst", [*same(25), Wait(36000), *same(26)],
     ["create", *patches(2, 25), "create", *patches(2, 25), "skip"]),
    ("the bucket is per source", [*same(25), E(), E(component="kubelet")],
     ["create", *patches(2, 25), "skip", "create"]),
    ("the bucket is per object", [*same(25), E(), E(obj="other")],
     ["create", *patches(2, 25), "skip", "create"]),
    ("a 600-pod Job: 9 Events, one combined of 16, then Completed is dropped",
     [*distinct(600), E(message="Job completed", reason="Completed")],
     ["create"] * 9 + ["combined create", *patches(2, 16, "combined ")] + ["skip"] * 576),
]


@pytest.mark.parametrize(("steps", "expected"), [pytest.param(s, e, id=n) for n, s, e in CASES])
def test_decisions(steps: list[E | Wait], expected: list[str]) -> None:
    assert play(steps) == expected


def test_the_combined_event_carries_the_latest_message() -> None:
    clock = FakeClock()
    c = EventCorrelator(clock)
    decisions = [c.correlate("job-controller", "", ref(), "Normal", "SuccessfulCreate", f"Created pod: pi-{i}")
                 for i in range(10)]
    first = decisions[9]
    assert isinstance(first, Create) and first.message == COMBINED_PREFIX + "Created pod: pi-9"
    c.created(first.key, "pi.combined", "default")
    second = c.correlate("job-controller", "", ref(), "Normal", "SuccessfulCreate", "Created pod: pi-10")
    assert second == Patch(first.key, "pi.combined", "default", 2, COMBINED_PREFIX + "Created pod: pi-10")


def test_an_unconfirmed_create_is_not_patched() -> None:
    """A Create the spam filter dropped or the API refused has no Event to patch: the next is a Create."""
    c = EventCorrelator(FakeClock())
    d = c.correlate("x", "", ref(), "Normal", "R", "m")
    assert isinstance(d, Create)
    c.forget(d.key)
    assert isinstance(c.correlate("x", "", ref(), "Normal", "R", "m"), Create)


def test_caches_stay_bounded_and_recent_records_still_work() -> None:
    clock = FakeClock()
    c = EventCorrelator(clock, max_entries=5)
    steps: list[E | Wait] = [E(obj=f"o{i}") for i in range(12)]
    assert play([*steps, E(obj="o11")], c, clock) == ["create"] * 12 + ["patch 2"]
    assert c.sizes() == (5, 5, 5)
    # o0's records were evicted: it is new again (a full bucket, a new Event)
    assert play([E(obj="o0")], c, clock) == ["create"]



def test_unthrottled_reasons_pass_a_spent_bucket_without_a_token() -> None:
    clock = FakeClock()
    c = EventCorrelator(clock, unthrottled=frozenset({"InvalidObject"}))
    steps: list[E | Wait] = [*same(25), E(reason="InvalidObject", type="Warning"), E()]
    assert play(steps, c, clock) == ["create", *patches(2, 25), "create", "skip"]


def test_the_recorder_never_drops_the_reason_joblet_run_stops_on() -> None:
    from joblet.client.events import UNTHROTTLED_REASONS
    from joblet.controllers.events import INVALID_OBJECT_REASON

    assert INVALID_OBJECT_REASON in UNTHROTTLED_REASONS
