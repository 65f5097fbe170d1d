"""CronJob schedule math: every row of the cron-schedule-math.yaml tables, plus robfig
semantics (grammar, @every, time zones, DST) checked against the pure functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml
from harness.catalog import default_catalog_dir

from joblet.api.validation.cron import ScheduleError, parse_standard
from joblet.controllers.cronjob.schedule import (
    SCHEDULED_TIMESTAMP_ANNOTATION,
    InvalidScheduleError,
    MissedSchedules,
    job_from_template,
    job_name,
    load_zone,
    most_recent_schedule_time,
    next_after,
    next_schedule_time,
    next_schedule_time_duration,
    next_times,
)

Obj = dict[str, Any]
CATALOG = default_catalog_dir()


def t(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def go_duration(text: str) -> float:
    from joblet.api.validation.cron import parse_go_duration
    return parse_go_duration(text)


def cronjob(schedule: str, creation: str, last: str | None = None, sds: int | None = None,
            time_zone: str | None = None) -> Obj:
    cj: Obj = {"apiVersion": "batch/v1", "kind": "CronJob",
               "metadata": {"name": "mycronjob", "namespace": "default", "uid": "1a2b3c", "creationTimestamp": creation},
               "spec": {"schedule": schedule, "concurrencyPolicy": "Allow", "jobTemplate": {"spec": {}}},
               "status": {}}
    if sds is not None:
        cj["spec"]["startingDeadlineSeconds"] = sds
    if last is not None:
        cj["status"]["lastScheduleTime"] = last
    if time_zone is not None:
        cj["spec"]["timeZone"] = time_zone
    return cj


def table(scenario_id: str) -> list[Any]:
    path = CATALOG / "cron-schedule-math.yaml"
    if not path.exists():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"{path} not found"))]
    doc = yaml.safe_load(path.read_text())
    (sc,) = [s for s in doc["scenarios"] if s["id"] == scenario_id]
    return [pytest.param(dict(zip(sc["columns"], row, strict=True)), id=str(row[0])) for row in sc["rows"]]


# -- the conformance tables (all rows) ---------------------------------------------------


@pytest.mark.parametrize("row", table("table-most-recent-schedule-time"))
def test_most_recent_schedule_time_table(row: dict[str, Any]) -> None:
    cj = cronjob(row["schedule"], row["creation"], row["last_schedule"], row["sds"])
    if row["want_error"]:
        with pytest.raises(InvalidScheduleError, match="less than 1 second"):
            most_recent_schedule_time(cj, t(row["now"]), row["include_sds"])
        return
    earliest, recent, missed, _ = most_recent_schedule_time(cj, t(row["now"]), row["include_sds"])
    assert earliest == t(row["want_earliest"])
    assert recent == (t(row["want_recent"]) if row["want_recent"] else None)
    assert missed.value == row["want_missed"]


@pytest.mark.parametrize("row", table("table-next-schedule-duration"))
def test_next_schedule_duration_table(row: dict[str, Any]) -> None:
    cj = cronjob(row["schedule"], row["creation"], row["last_schedule"])
    got = next_schedule_time_duration(cj, t(row["now"]))
    assert got is not None
    assert got.total_seconds() == pytest.approx(go_duration(row["want_duration"]))


@pytest.mark.parametrize("row", table("table-scheduled-timestamp-annotation-timezone"))
def test_job_from_template_table(row: dict[str, Any]) -> None:
    cj = cronjob("0 * * * *", "2016-05-19T09:00:00Z", time_zone=row["timeZone"])
    cj["spec"]["jobTemplate"]["metadata"] = {"labels": {"a": "b"}, "annotations": dict(row["template_annotations"])}
    job = job_from_template(cj, t("2016-05-19T10:00:00Z"))
    annotations = job["metadata"]["annotations"]
    assert len(annotations) == row["want_annotation_count"]
    assert annotations[SCHEDULED_TIMESTAMP_ANNOTATION] == row["want_scheduled_timestamp"]
    assert job["metadata"]["name"].startswith("mycronjob-")
    assert job["metadata"]["labels"] == {"a": "b"}


# -- Job construction ----------------------------------------------------------------------


def test_job_from_template_name_owner_and_spec() -> None:
    cj = cronjob("*/1 * * * *", "2024-01-01T00:00:00Z")
    cj["metadata"]["name"] = "hello"
    cj["spec"]["jobTemplate"]["spec"] = {"backoffLimit": 2, "template": {"spec": {"containers": []}}}
    job = job_from_template(cj, t("2024-01-01T00:00:00Z"))
    assert job["metadata"]["name"] == "hello-28401120" == job_name("hello", t("2024-01-01T00:00:00Z"))
    assert job["metadata"]["ownerReferences"] == [{"apiVersion": "batch/v1", "kind": "CronJob", "name": "hello",
                                                   "uid": "1a2b3c", "controller": True, "blockOwnerDeletion": True}]
    assert job["spec"] == cj["spec"]["jobTemplate"]["spec"]
    assert job["spec"] is not cj["spec"]["jobTemplate"]["spec"]


# -- robfig semantics ------------------------------------------------------------------------

NEXT_CASES = [
    # (id, schedule, zone, after, expected next activations)
    ("every-minute", "*/1 * * * *", None, "2024-01-01T00:00:30Z", ["2024-01-01T00:01:00Z", "2024-01-01T00:02:00Z"]),
    ("question-mark-is-star", "0 * * * ?", None, "2024-01-01T00:00:00Z", ["2024-01-01T01:00:00Z"]),
    ("hourly-descriptor", "@hourly", None, "2024-01-01T00:10:00Z", ["2024-01-01T01:00:00Z"]),
    ("weekly-is-sunday", "@weekly", None, "2024-01-01T00:00:00Z", ["2024-01-07T00:00:00Z"]),
    ("names", "0 0 1 jan mon-fri", None, "2024-01-01T00:00:00Z",
     ["2024-01-02T00:00:00Z", "2024-01-03T00:00:00Z"]),
    # robfig: dom and dow both restricted -> either matches (1st of month OR a Monday).
    ("dom-or-dow", "0 0 1 * 1", None, "2024-01-01T00:00:00Z", ["2024-01-08T00:00:00Z", "2024-01-15T00:00:00Z"]),
    # dow star -> dom alone decides.
    ("dom-and-star", "0 0 13 * *", None, "2024-01-01T00:00:00Z", ["2024-01-13T00:00:00Z", "2024-02-13T00:00:00Z"]),
    ("every-90m-from-truncated-second", "@every 1h30m", None, "2024-01-01T00:00:00.700000Z",
     ["2024-01-01T01:30:00Z", "2024-01-01T03:00:00Z"]),
    ("every-sub-second-is-one-second", "@every 10ms", None, "2024-01-01T00:00:00Z",
     ["2024-01-01T00:00:01Z", "2024-01-01T00:00:02Z"]),
    ("time-zone-field", "0 9 * * *", "Europe/Rome", "2024-07-01T00:00:00Z",
     ["2024-07-01T07:00:00Z", "2024-07-02T07:00:00Z"]),
    ("tz-prefix", "TZ=America/New_York 0 9 * * *", None, "2024-01-01T00:00:00Z", ["2024-01-01T14:00:00Z"]),
    # DST spring forward (New York 2024-03-10 02:00 -> 03:00): 02:30 does not exist and is
    # skipped, as robfig does (croniter alone would run it at 03:00).
    ("dst-spring-forward-skips-missing-time", "30 2 * * *", "America/New_York", "2024-03-09T12:00:00Z",
     ["2024-03-11T06:30:00Z", "2024-03-12T06:30:00Z"]),
    # DST fall back (2024-11-03 02:00 EDT -> 01:00 EST): 01:30 happens twice; robfig runs both.
    ("dst-fall-back-runs-repeated-time-twice", "30 1 * * *", "America/New_York", "2024-11-02T12:00:00Z",
     ["2024-11-03T05:30:00Z", "2024-11-03T06:30:00Z", "2024-11-04T06:30:00Z"]),
    ("dst-hourly-across-spring-forward", "0 * * * *", "America/New_York", "2024-03-10T05:30:00Z",
     ["2024-03-10T06:00:00Z", "2024-03-10T07:00:00Z", "2024-03-10T08:00:00Z"]),
    ("leap-day", "0 0 29 2 *", None, "2024-03-01T00:00:00Z", ["2028-02-29T00:00:00Z"]),
]


@pytest.mark.parametrize(("schedule", "zone", "after", "expected"),
                         [pytest.param(s, z, a, e, id=i) for i, s, z, a, e in NEXT_CASES])
def test_next_activations(schedule: str, zone: str | None, after: str, expected: list[str]) -> None:
    sched = parse_standard(schedule)
    tz = load_zone(zone) if zone else (load_zone(sched.location) if sched.location else UTC)
    assert next_times(sched, t(after), len(expected), tz) == [t(e) for e in expected]


def test_never_firing_schedule_has_no_next() -> None:
    assert next_after(parse_standard("59 23 31 2 *"), t("2024-01-01T00:00:00Z")) is None


@pytest.mark.parametrize(("schedule", "message"), [
    pytest.param("* * * * 7", "end of range (7) above maximum (6): 7", id="dow-7-rejected-like-robfig"),
    pytest.param("0 0 L * *", "failed to parse int from L", id="croniter-L-rejected"),
    pytest.param("5-1 * * * *", "beginning of range (5) beyond end of range (1): 5-1", id="no-wraparound-range"),
    pytest.param("0 * * * * *", "expected exactly 5 fields, found 6", id="no-seconds-field"),
    pytest.param("0 0 * * 1#2", "failed to parse int from 1#2", id="croniter-hash-rejected"),
    pytest.param("@reboot", "unrecognized descriptor: @reboot", id="reboot-not-a-robfig-descriptor"),
])
def test_croniter_extensions_rejected_like_robfig(schedule: str, message: str) -> None:
    with pytest.raises(ScheduleError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_standard(schedule)


def test_next_schedule_time_applies_deadline() -> None:
    cj = cronjob("*/5 * * * *", "2016-05-19T10:00:00Z", "2016-05-19T10:30:00Z", sds=60)
    assert next_schedule_time(cj, t("2016-05-19T10:35:30Z")) == t("2016-05-19T10:35:00Z")
    assert next_schedule_time(cj, t("2016-05-19T10:37:00Z")) is None  # 10:35 is past the deadline


def test_many_missed_still_reports_most_recent() -> None:
    cj = cronjob("*/1 * * * *", "2024-01-01T00:00:00Z")
    got = most_recent_schedule_time(cj, t("2024-01-02T00:00:30Z"))
    assert got.missed is MissedSchedules.MANY
    assert got.most_recent == t("2024-01-02T00:00:00Z")
    assert got.missed_count == 24 * 60


def test_duration_never_negative() -> None:
    cj = cronjob("0 * * * *", "2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z")
    got = next_schedule_time_duration(cj, t("2024-01-01T00:59:59.95Z"))
    assert got == timedelta(milliseconds=150)
