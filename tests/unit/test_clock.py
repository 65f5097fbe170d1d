"""The clock module's wire-format helpers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from joblet.clock import FakeClock, canonicalize_json_patch_times, canonicalize_times, parse_time, rfc3339

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


def test_fake_clock_moves_only_when_told() -> None:
    clock = FakeClock(datetime(2024, 1, 1, tzinfo=UTC))
    before = clock.monotonic()
    clock.advance(90)
    assert rfc3339(clock.now()) == "2024-01-01T00:01:30Z"
    assert clock.monotonic() - before == 90
    assert parse_time("2024-01-01T00:01:30Z") == clock.now()
