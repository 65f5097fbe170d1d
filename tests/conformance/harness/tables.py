"""``kind: table`` scenarios, run against joblet's pure decision functions.

Why: tables are input/output specifications of pure functions (backoff delay, cron schedule
math, Job-from-CronJob construction). Their semantics live in prose (``description``/
``notes``), so each table id has an adapter here mapping rows to one joblet function. A table
whose function does not exist yet (the CronJob controller is written later) is skipped with
that reason; a table id without an adapter is skipped as "no adapter" (a harness gap).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from .catalog import Scenario
from .matching import parse_go_duration, parse_rfc3339

Obj = dict[str, Any]


class TableSkip(Exception):
    """The table cannot run here (reason in the message)."""


def _function(module: str, *names: str) -> Callable[..., Any]:
    try:
        mod = importlib.import_module(module)
    except ImportError as e:
        raise TableSkip(f"{module} is not importable ({e}); the code under test does not exist yet") from None
    for name in names:
        fn = getattr(mod, name, None)
        if callable(fn):
            return fn  # type: ignore[no-any-return]
    raise TableSkip(f"{module} has none of {names}")


def _rows(scenario: Scenario) -> list[dict[str, Any]]:
    columns = list(scenario.raw["columns"])
    return [dict(zip(columns, row, strict=True)) for row in scenario.raw["rows"]]


def _seconds(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value)


# ------------------------------------------------------------------ job tables


def table_backoff_delay(scenario: Scenario) -> list[str]:
    fn = _function("joblet.controllers.job.backoff", "backoff_delay")
    problems = []
    for row in _rows(scenario):
        got = _seconds(fn(int(row["failures_after_last_success"]), 10.0, 600.0))
        if got != float(row["delay_s"]):
            problems.append(f"failures={row['failures_after_last_success']}: delay {got} != {row['delay_s']}")
    return problems


# ------------------------------------------------------------------ cron tables

CRON_MODULES = ("joblet.controllers.cronjob.schedule", "joblet.controllers.cronjob")


def _cron_function(*names: str) -> Callable[..., Any]:
    reasons = []
    for module in CRON_MODULES:
        try:
            return _function(module, *names)
        except TableSkip as e:
            reasons.append(str(e))
    raise TableSkip("CronJob pure functions absent: " + "; ".join(reasons))


def _cronjob(row: dict[str, Any]) -> Obj:
    cj: Obj = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "mycronjob", "namespace": "default", "uid": "1a2b3c",
                     "creationTimestamp": row.get("creation")},
        "spec": {"schedule": row.get("schedule"), "concurrencyPolicy": "Allow",
                 "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "OnFailure",
                                                                  "containers": [{"name": "c", "image": "busybox"}]}}}}},
        "status": {},
    }
    if row.get("sds") is not None:
        cj["spec"]["startingDeadlineSeconds"] = int(row["sds"])
    if row.get("last_schedule"):
        cj["status"]["lastScheduleTime"] = row["last_schedule"]
    return cj


def _time(value: Any) -> datetime | None:
    return parse_rfc3339(value) if value is not None else None


def _missed_class(value: Any) -> str | None:
    if value is None:
        return None
    if hasattr(value, "name"):
        value = value.name
    text = str(value).lower()
    for cls in ("none", "few", "many"):
        if cls in text:
            return cls
    return text


def table_most_recent_schedule_time(scenario: Scenario) -> list[str]:
    fn = _cron_function("most_recent_schedule_time", "mostRecentScheduleTime")
    problems = []
    for row in _rows(scenario):
        try:
            earliest, recent, missed = fn(_cronjob(row), _time(row["now"]), bool(row["include_sds"]))[:3]
            error = False
        except Exception:
            earliest = recent = missed = None
            error = True
        if error != bool(row["want_error"]):
            problems.append(f"{row['name']}: error={error}, want {row['want_error']}")
            continue
        if error:
            continue
        if earliest != _time(row["want_earliest"]):
            problems.append(f"{row['name']}: earliest {earliest} != {row['want_earliest']}")
        if recent != _time(row["want_recent"]):
            problems.append(f"{row['name']}: most recent {recent} != {row['want_recent']}")
        if _missed_class(missed) != row["want_missed"]:
            problems.append(f"{row['name']}: missed {missed} != {row['want_missed']}")
    return problems


def table_next_schedule_duration(scenario: Scenario) -> list[str]:
    fn = _cron_function("next_schedule_time_duration", "next_schedule_duration")
    problems = []
    for row in _rows(scenario):
        got = _seconds(fn(_cronjob(row), _time(row["now"])))
        want = parse_go_duration(str(row["want_duration"]))
        if got is None or abs(got - want) > 1e-6:
            problems.append(f"{row['name']}: {got}s != {row['want_duration']} ({want}s)")
    return problems


def table_scheduled_timestamp_annotation(scenario: Scenario) -> list[str]:
    fn = _cron_function("job_from_template", "get_job_from_template")
    key = "batch.kubernetes.io/cronjob-scheduled-timestamp"
    problems = []
    for row in _rows(scenario):
        cj = _cronjob({"schedule": "0 * * * *", "creation": "2016-05-19T09:00:00Z"})
        cj["spec"]["jobTemplate"]["metadata"] = {"labels": {"a": "b"}, "annotations": dict(row["template_annotations"])}
        if row["timeZone"] is not None:
            cj["spec"]["timeZone"] = row["timeZone"]
        job = fn(cj, _time("2016-05-19T10:00:00Z"))
        meta = job.get("metadata") or {}
        ann = meta.get("annotations") or {}
        if len(ann) != int(row["want_annotation_count"]):
            problems.append(f"tz={row['timeZone']}: {len(ann)} annotations {ann}, want {row['want_annotation_count']}")
        if ann.get(key) != row["want_scheduled_timestamp"]:
            problems.append(f"tz={row['timeZone']}: {key}={ann.get(key)!r}, want {row['want_scheduled_timestamp']!r}")
        if not str(meta.get("generateName") or meta.get("name") or "").startswith("mycronjob-"):
            problems.append(f"tz={row['timeZone']}: name {meta.get('name') or meta.get('generateName')!r} lacks prefix")
    return problems


# The fixture times of TestControllerV2SyncCronJob, as the table's description states them.
SYNC_NOW = {"before": "2016-05-19T09:59:00Z", "after": "2016-05-19T10:01:00Z",
            "after+11m": "2016-05-19T10:12:00Z", "week": "2016-05-26T10:00:00Z"}
SYNC_DEADLINES = {"short": 10, "medium": 7200, "long": 1000000}


def _sync_cronjob(row: dict[str, Any]) -> Obj:
    ran = row["history"] != "none"
    cj = _cronjob({"schedule": row["schedule"],
                   "creation": "2016-05-19T08:59:00Z" if ran else "2016-05-19T09:59:00Z"})
    cj["spec"].update({"concurrencyPolicy": row["policy"], "suspend": bool(row["suspend"]),
                       "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 1})
    deadline = row.get("deadline")
    if deadline is not None:
        cj["spec"]["startingDeadlineSeconds"] = int(SYNC_DEADLINES.get(deadline, deadline))
    if ran:
        cj["status"]["lastScheduleTime"] = "2016-05-19T09:01:00Z"
        cj["status"]["active"] = [{"kind": "Job", "name": "mycronjob-prev", "namespace": "default", "uid": "job-1"}]
    return cj


def _sync_jobs(history: str) -> list[Obj]:
    """The one Job created at 09:01: still active, or Complete at 09:01:10."""
    if history == "none":
        return []
    job: Obj = {"apiVersion": "batch/v1", "kind": "Job",
                "metadata": {"name": "mycronjob-prev", "namespace": "default", "uid": "job-1",
                             "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": "mycronjob",
                                                  "uid": "1a2b3c", "controller": True}]},
                "status": {"startTime": "2016-05-19T09:01:00Z"}}
    if history == "done":
        job["status"]["conditions"] = [{"type": "Complete", "status": "True",
                                        "lastTransitionTime": "2016-05-19T09:01:10Z"}]
        job["status"]["completionTime"] = "2016-05-19T09:01:10Z"
    return [job]


def table_cronjob_sync_decisions(scenario: Scenario) -> list[str]:
    fn = _cron_function("sync_decision", "sync_cronjob")
    problems = []
    for row in _rows(scenario):
        now = _time(SYNC_NOW.get(row["now"], row["now"]))
        plan = fn(_sync_cronjob(row), _sync_jobs(row["history"]), now)
        created = plan.create is not None
        deleted = bool(plan.replace_deletes or plan.history_deletes)
        active = len((plan.status or {}).get("active") or []) + (1 if created else 0)
        warnings = len(plan.warnings())
        got = (created, deleted, active, warnings)
        want = (bool(row["want_create"]), bool(row["want_delete"]), int(row["want_active"]), int(row["want_warnings"]))
        if got != want:
            problems.append(f"{row['name']}: (create, delete, active, warnings) = {got}, want {want}")
    return problems


TABLES: dict[str, Callable[[Scenario], list[str]]] = {
    "table-backoff-delay-function": table_backoff_delay,
    "table-most-recent-schedule-time": table_most_recent_schedule_time,
    "table-next-schedule-duration": table_next_schedule_duration,
    "table-scheduled-timestamp-annotation-timezone": table_scheduled_timestamp_annotation,
    "table-cronjob-sync-decisions": table_cronjob_sync_decisions,
}


def run_table(scenario: Scenario) -> list[str]:
    """Problems (empty = pass); raises TableSkip when the table cannot run here."""
    adapter = TABLES.get(scenario.id)
    if adapter is None:
        raise TableSkip(f"no adapter for table {scenario.id!r} (harness gap)")
    return adapter(scenario)
