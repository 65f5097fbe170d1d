"""Pod-failure backoff: delay table, record folding, finish times, per-index delays."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from joblet.clock import FakeClock, rfc3339
from joblet.controllers.job.backoff import (
    BackoffRecord,
    backoff_delay,
    finished_time,
    new_backoff_record,
    remaining_time,
    remaining_time_per_index,
)

T0 = FakeClock().now()


def at(seconds: float) -> str:
    return rfc3339(T0 + timedelta(seconds=seconds))


def pod(phase: str, finished: float, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": f"p{finished}", "creationTimestamp": at(-100), "annotations": annotations or {}},
        "status": {
            "phase": phase,
            "containerStatuses": [{"name": "c", "state": {"terminated": {"exitCode": 0 if phase == "Succeeded" else 1, "finishedAt": at(finished)}}}],
        },
    }


@pytest.mark.parametrize(
    ("failures", "delay"),
    [(0, 0), (1, 10), (2, 20), (3, 40), (4, 80), (5, 160), (6, 320), (7, 600), (8, 600), (30, 600)],
    ids=lambda v: str(v),
)
def test_backoff_delay_table(failures: int, delay: float) -> None:
    assert backoff_delay(failures, 10, 600) == delay


@pytest.mark.parametrize(
    ("base", "cap", "failures", "delay"),
    [(1, 8, 1, 1), (1, 8, 4, 8), (1, 8, 5, 8), (0.5, 600, 3, 2)],
    ids=["base-1", "cap-reached", "cap-held", "fractional-base"],
)
def test_backoff_delay_is_configurable(base: float, cap: float, failures: int, delay: float) -> None:
    assert backoff_delay(failures, base, cap) == delay


@pytest.mark.parametrize(
    ("prev", "succeeded", "failed", "expect"),
    [
        pytest.param(BackoffRecord(), [], [], BackoffRecord(), id="nothing-new"),
        pytest.param(BackoffRecord(), [], [3, 1], BackoffRecord(2, T0 + timedelta(seconds=3)), id="failures-add-latest-time"),
        pytest.param(BackoffRecord(2, T0), [], [5], BackoffRecord(3, T0 + timedelta(seconds=5)), id="accumulates"),
        pytest.param(BackoffRecord(4, T0), [1], [], BackoffRecord(0, None), id="success-resets"),
        pytest.param(BackoffRecord(4, T0), [5], [2, 7, 9], BackoffRecord(2, T0 + timedelta(seconds=9)), id="only-failures-after-success"),
        pytest.param(BackoffRecord(4, T0), [9], [2, 7], BackoffRecord(0, None), id="success-last"),
    ],
)
def test_new_backoff_record(prev: BackoffRecord, succeeded: list[float], failed: list[float], expect: BackoffRecord) -> None:
    rec = new_backoff_record(prev, [pod("Succeeded", t) for t in succeeded], [pod("Failed", t) for t in failed])
    assert rec == expect


def test_remaining_time_counts_from_last_failure() -> None:
    rec = BackoffRecord(2, T0)
    assert remaining_time(rec, T0 + timedelta(seconds=5), 10, 600) == 15
    assert remaining_time(rec, T0 + timedelta(seconds=25), 10, 600) == 0


@pytest.mark.parametrize(
    ("status", "meta", "expect"),
    [
        pytest.param(
            {"containerStatuses": [{"state": {"terminated": {"finishedAt": at(5)}}}, {"state": {"terminated": {"finishedAt": at(7)}}}]},
            {}, 7, id="latest-container-finish",
        ),
        pytest.param(
            {"containerStatuses": [{"state": {"terminated": {"finishedAt": at(5)}}}, {"state": {"running": {}}}],
             "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": at(3)}]},
            {}, 3, id="ready-false-when-not-all-terminated",
        ),
        pytest.param({}, {"deletionTimestamp": at(40), "deletionGracePeriodSeconds": 30}, 10, id="deletion-minus-grace"),
        pytest.param({}, {}, -100, id="creation-timestamp"),
    ],
)
def test_finished_time(status: dict[str, Any], meta: dict[str, Any], expect: float) -> None:
    p = {"metadata": {"creationTimestamp": at(-100), **meta}, "status": status}
    assert finished_time(p) == T0 + timedelta(seconds=expect)


@pytest.mark.parametrize(
    ("annotations", "now", "expect"),
    [
        pytest.param({}, 0, 10, id="first-failure-10s"),
        pytest.param({"batch.kubernetes.io/job-index-failure-count": "1"}, 5, 15, id="second-failure-20s"),
        pytest.param(
            {"batch.kubernetes.io/job-index-failure-count": "1", "batch.kubernetes.io/job-index-ignored-failure-count": "1"},
            0, 40, id="ignored-failures-count-too",
        ),
        pytest.param({}, 11, 0, id="elapsed"),
    ],
)
def test_remaining_time_per_index(annotations: dict[str, str], now: float, expect: float) -> None:
    p = pod("Failed", 0, annotations)
    assert remaining_time_per_index(p, T0 + timedelta(seconds=now), 10, 600) == expect
    assert remaining_time_per_index(None, T0, 10, 600) == 0
