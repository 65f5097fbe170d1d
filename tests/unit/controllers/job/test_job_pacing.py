"""Pacing of pod-triggered Job syncs: a sync that walks all of a Job's pods is not repeated
before ``factor`` times its own duration has passed, so each sync takes in more finished pods."""

from __future__ import annotations

import pytest

from joblet.controllers.job.controller import paced_delay


@pytest.mark.parametrize(("now", "last_end", "last_duration", "factor", "delay"), [
    (10.0, 10.0, 0.001, 2.0, 0.002),   # right after a 1 ms sync: 2 ms
    (10.5, 10.0, 0.200, 2.0, 0.0),     # a 200 ms sync ended 500 ms ago: due already
    (10.1, 10.0, 0.200, 2.0, 0.3),     # ... ended 100 ms ago: 300 ms more
    (10.0, 10.0, 0.0, 2.0, 0.0),       # a fake clock's syncs take no time: never delayed
    (10.0, 10.0, 0.5, 0.0, 0.0),       # factor 0 turns pacing off
])
def test_paced_delay(now: float, last_end: float, last_duration: float, factor: float, delay: float) -> None:
    assert paced_delay(now, last_end, last_duration, factor) == pytest.approx(delay)
