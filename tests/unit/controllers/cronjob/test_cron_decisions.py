"""One CronJob sync as a pure decision: the upstream TestControllerV2SyncCronJob table
(table-cronjob-sync-decisions, every row) plus named cases for history limits, status
reconciliation, naming, requeue times and the events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from joblet.clock import FakeClock, rfc3339
from joblet.controllers.cronjob.decisions import (
    SyncPlan,
    history_to_delete,
    status_after_create,
    sync_decision,
)
from joblet.controllers.cronjob.schedule import SCHEDULED_TIMESTAMP_ANNOTATION

Obj = dict[str, Any]
NOW = {
    "before": "2016-05-19T09:59:00Z",
    "after": "2016-05-19T10:01:00Z",
    "after+11m": "2016-05-19T10:12:00Z",
    "week": "2016-05-26T10:00:00Z",
}
DEADLINES = {None: None, "short": 10, "medium": 7200, "long": 1000000}


def t(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def clock_at(text: str) -> FakeClock:
    return FakeClock(t(text))


def cronjob(schedule: str = "0 * * * ?", policy: str = "Allow", suspend: bool = False,
            deadline: int | None = None, history: str = "none", **spec: Any) -> Obj:
    ran = history != "none"
    cj: Obj = {
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": "mycronjob", "namespace": "default", "uid": "cj-uid", "resourceVersion": "5",
                     "creationTimestamp": "2016-05-19T08:59:00Z" if ran else "2016-05-19T09:59:00Z"},
        "spec": {"schedule": schedule, "concurrencyPolicy": policy, "suspend": suspend,
                 "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 1,
                 "jobTemplate": {"metadata": {"labels": {"team": "a"}},
                                 "spec": {"parallelism": 1, "completions": 1, "template": {"spec": {}}}},
                 **spec},
        "status": {},
    }
    if deadline is not None:
        cj["spec"]["startingDeadlineSeconds"] = deadline
    if ran:
        cj["status"]["lastScheduleTime"] = "2016-05-19T09:01:00Z"
        cj["status"]["active"] = [{"kind": "Job", "name": "mycronjob-prev", "namespace": "default", "uid": "job-1"}]
    return cj


def child(name: str = "mycronjob-prev", uid: str = "job-1", finished: str | None = None,
          start: str | None = "2016-05-19T09:01:00Z", completion: str | None = None) -> Obj:
    job: Obj = {"apiVersion": "batch/v1", "kind": "Job",
                "metadata": {"name": name, "namespace": "default", "uid": uid,
                             "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": "mycronjob",
                                                  "uid": "cj-uid", "controller": True}]},
                "status": {}}
    if start:
        job["status"]["startTime"] = start
    if finished:
        job["status"]["conditions"] = [{"type": finished, "status": "True",
                                        "lastTransitionTime": completion or "2016-05-19T09:01:10Z"}]
        if finished == "Complete":
            job["status"]["completionTime"] = completion or "2016-05-19T09:01:10Z"
    return job


def jobs_for(history: str) -> list[Obj]:
    if history == "active":
        return [child()]
    if history == "done":
        return [child(finished="Complete")]
    return []


SYNC_TABLE = [
    # id, policy, suspend, schedule, deadline, history, now, want_create, want_delete, want_active, want_warnings
    ("never ran, not valid schedule, A", "Allow", False, "obvious error schedule", None, "none", "before", False, False, 0, 1),
    ("never ran, not valid schedule, F", "Forbid", False, "obvious error schedule", None, "none", "before", False, False, 0, 1),
    ("never ran, not time, A", "Allow", False, "0 * * * ?", None, "none", "before", False, False, 0, 0),
    ("never ran, is time, A", "Allow", False, "0 * * * ?", None, "none", "after", True, False, 1, 0),
    ("never ran, is time, F", "Forbid", False, "0 * * * ?", None, "none", "after", True, False, 1, 0),
    ("never ran, is time, R", "Replace", False, "0 * * * ?", None, "none", "after", True, False, 1, 0),
    ("never ran, is time, suspended", "Allow", True, "0 * * * ?", None, "none", "after", False, False, 0, 0),
    ("never ran, is time, past deadline", "Allow", False, "0 * * * ?", 10, "none", "after+11m", False, False, 0, 0),
    ("never ran, is time, not past deadline", "Allow", False, "0 * * * ?", 1000000, "none", "after", True, False, 1, 0),
    ("prev ran but done, not time, A", "Allow", False, "0 * * * ?", None, "done", "before", False, False, 0, 0),
    ("prev ran but done, is time, A", "Allow", False, "0 * * * ?", None, "done", "after", True, False, 1, 0),
    ("prev ran but done, is time, F", "Forbid", False, "0 * * * ?", None, "done", "after", True, False, 1, 0),
    ("prev ran but done, is time, suspended", "Allow", True, "0 * * * ?", None, "done", "after", False, False, 0, 0),
    ("prev ran but done, is time, past deadline", "Allow", False, "0 * * * ?", 10, "done", "after", False, False, 0, 0),
    ("prev ran but done, is time, not past deadline", "Allow", False, "0 * * * ?", 1000000, "done", "after", True, False, 1, 0),
    ("still active, not time, A", "Allow", False, "0 * * * ?", None, "active", "before", False, False, 1, 0),
    ("still active, is time, A", "Allow", False, "0 * * * ?", None, "active", "after", True, False, 2, 0),
    ("still active, is time, F", "Forbid", False, "0 * * * ?", None, "active", "after", False, False, 1, 0),
    ("still active, is time, R", "Replace", False, "0 * * * ?", None, "active", "after", True, True, 1, 0),
    ("still active, is time, suspended", "Allow", True, "0 * * * ?", None, "active", "after", False, False, 1, 0),
    ("still active, is time, past deadline", "Allow", False, "0 * * * ?", 10, "active", "after", False, False, 1, 0),
    ("still active, is time, not past deadline", "Allow", False, "0 * * * ?", 1000000, "active", "after", True, False, 2, 0),
    ("prev ran but done, long overdue, no deadline, A", "Allow", False, "0 * * * ?", None, "done", "week", True, False, 1, 1),
    ("prev ran but done, long overdue, not past deadline, F", "Forbid", False, "0 * * * ?", 1000000, "done", "week", True, False, 1, 1),
    ("prev ran but done, long overdue, past medium deadline, R", "Replace", False, "0 * * * ?", 7200, "done", "week", True, False, 1, 0),
    ("prev ran but done, long overdue, past short deadline, F", "Forbid", False, "0 * * * ?", 10, "done", "week", True, False, 1, 0),
]


@pytest.mark.parametrize(
    ("policy", "suspend", "schedule", "deadline", "history", "now", "want_create", "want_delete", "want_active",
     "want_warnings"),
    [pytest.param(*row[1:], id=row[0]) for row in SYNC_TABLE],
)
def test_sync_table(policy: str, suspend: bool, schedule: str, deadline: int | None, history: str, now: str,
                    want_create: bool, want_delete: bool, want_active: int, want_warnings: int) -> None:
    cj = cronjob(schedule, policy, suspend, deadline, history)
    plan = sync_decision(cj, jobs_for(history), clock_at(NOW[now]).now())
    assert (plan.create is not None) == want_create
    assert bool(plan.replace_deletes or plan.history_deletes) == want_delete
    assert len(plan.status.get("active") or []) + (1 if plan.create else 0) == want_active
    assert len(plan.warnings()) == want_warnings, plan.events
    if history == "done":
        assert plan.status["lastSuccessfulTime"] == "2016-05-19T09:01:10Z"


def test_too_many_missed_warns_and_still_runs_latest() -> None:
    plan = sync_decision(cronjob(history="done"), jobs_for("done"), t(NOW["week"]))
    assert [e.reason for e in plan.warnings()] == ["TooManyMissedTimes"]
    assert plan.warnings()[0].message == ("too many missed start times. Set or decrease "
                                          ".spec.startingDeadlineSeconds or check clock skew")
    assert plan.scheduled_time == t("2016-05-26T10:00:00Z")
    assert plan.create is not None and plan.create["metadata"]["name"] == "mycronjob-24404280"


def test_created_job_name_labels_annotation_and_requeue() -> None:
    plan = sync_decision(cronjob(), [], t(NOW["after"]))
    assert plan.create is not None
    meta = plan.create["metadata"]
    assert meta["name"] == f"mycronjob-{int(t('2016-05-19T10:00:00Z').timestamp()) // 60}"
    assert meta["labels"] == {"team": "a"}
    assert meta["annotations"] == {SCHEDULED_TIMESTAMP_ANNOTATION: "2016-05-19T10:00:00Z"}
    assert meta["ownerReferences"][0]["uid"] == "cj-uid"
    assert plan.requeue_after == pytest.approx(59 * 60 + 0.1)  # 11:00 - 10:01 + 100ms


def test_requeue_when_nothing_is_due() -> None:
    plan = sync_decision(cronjob(), [], t(NOW["before"]))
    assert plan.create is None and plan.requeue_after == pytest.approx(60.1)


@pytest.mark.parametrize(("spec", "reason"), [
    pytest.param({"suspend": True}, None, id="suspended-no-requeue"),
    pytest.param({"timeZone": "Mars/Olympus"}, "UnknownTimeZone", id="unknown-time-zone"),
    pytest.param({"schedule": "59 23 31 2 *"}, "InvalidSchedule", id="never-firing-schedule"),
    pytest.param({"schedule": "obvious error schedule"}, "UnparseableSchedule", id="unparseable"),
])
def test_no_scheduling_and_no_requeue(spec: dict[str, Any], reason: str | None) -> None:
    cj = cronjob()
    cj["spec"].update(spec)
    plan = sync_decision(cj, [], t(NOW["after"]))
    assert plan.create is None and plan.requeue_after is None
    assert [e.reason for e in plan.warnings()] == ([reason] if reason else [])


def test_forbid_skips_without_recording_the_slot() -> None:
    plan = sync_decision(cronjob(policy="Forbid", history="active"), jobs_for("active"), t(NOW["after"]))
    assert [e.reason for e in plan.events] == ["JobAlreadyActive"]
    assert plan.events[0].message == ("Not starting job because prior execution is running and concurrency "
                                      "policy is Forbid")
    assert plan.status["lastScheduleTime"] == "2016-05-19T09:01:00Z"
    assert plan.requeue_after is not None


def test_replace_deletes_active_jobs_then_creates() -> None:
    plan = sync_decision(cronjob(policy="Replace", history="active"), jobs_for("active"), t(NOW["after"]))
    assert [r["name"] for r in plan.replace_deletes] == ["mycronjob-prev"]
    assert plan.status["active"] == [] and plan.create is not None


def test_slot_already_handled() -> None:
    cj = cronjob(history="done")
    cj["status"]["lastScheduleTime"] = "2016-05-19T10:00:00Z"
    plan = sync_decision(cj, jobs_for("done"), t(NOW["after"]))
    assert plan.create is None and plan.requeue_after == pytest.approx(59 * 60 + 0.1)


def test_completed_active_job_is_removed_with_event() -> None:
    plan = sync_decision(cronjob(history="done"), [child(finished="Failed")], t(NOW["before"]))
    assert plan.status["active"] == [] and plan.status_changed
    assert [(e.reason, e.message) for e in plan.events] == [
        ("SawCompletedJob", "Saw completed job: mycronjob-prev, status: Failed")]
    assert "lastSuccessfulTime" not in plan.status


def test_unexpected_job_warns() -> None:
    plan = sync_decision(cronjob(), [child(name="stray", uid="x")], t(NOW["before"]))
    assert [(e.reason, e.message) for e in plan.events] == [
        ("UnexpectedJob", "Saw a job that the controller did not create or forgot: stray")]


@pytest.mark.parametrize(("missing", "dropped"), [
    pytest.param(None, True, id="no-live-check-means-missing"),
    pytest.param({"mycronjob-prev"}, True, id="confirmed-missing"),
    pytest.param(set(), False, id="found-live-kept"),
])
def test_missing_active_job(missing: set[str] | None, dropped: bool) -> None:
    plan = sync_decision(cronjob(history="active"), [], t(NOW["before"]), missing)
    assert (plan.status["active"] == []) == dropped
    assert (["MissingJob"] if dropped else []) == [e.reason for e in plan.events]
    if dropped:
        assert plan.events[0].message == "Active job went missing: mycronjob-prev"


def test_jobs_of_other_owners_ignored() -> None:
    other = child(name="other", uid="o")
    other["metadata"]["ownerReferences"][0]["name"] = "someone-else"
    plan = sync_decision(cronjob(), [other], t(NOW["before"]))
    assert plan.events == [] and not plan.status_changed


def test_deleting_cronjob_only_reconciles_status() -> None:
    cj = cronjob(history="done")
    cj["metadata"]["deletionTimestamp"] = "2016-05-19T10:00:30Z"
    plan = sync_decision(cj, jobs_for("done"), t(NOW["after"]))
    assert plan.create is None and plan.requeue_after is None and plan.history_deletes == []
    assert plan.status["active"] == []


HISTORY_CASES = [
    # id, succeeded start times, failed start times, limits (ok, failed), names deleted
    ("under-limits", ["01", "02"], ["03"], (3, 1), []),
    ("oldest-successful-first", ["05", "01", "03", "02", "04"], [], (3, 1), ["s01", "s02"]),
    ("failed-limit-default-1", [], ["01", "02", "03"], (None, None), ["f01", "f02"]),
    ("zero-limits-delete-all", ["01"], ["02"], (0, 0), ["s01", "f02"]),
    ("no-start-time-goes-last", ["", "01"], [], (1, 1), ["s01"]),
]


@pytest.mark.parametrize(("ok", "failed", "limits", "deleted"),
                         [pytest.param(o, f, lim, d, id=i) for i, o, f, lim, d in HISTORY_CASES])
def test_history_limits(ok: list[str], failed: list[str], limits: tuple[int | None, int | None],
                        deleted: list[str]) -> None:
    cj = cronjob()
    for field, limit in zip(("successfulJobsHistoryLimit", "failedJobsHistoryLimit"), limits, strict=True):
        if limit is None:
            del cj["spec"][field]
        else:
            cj["spec"][field] = limit
    jobs = [child(name=f"s{m}", uid=f"s{m}", finished="Complete", start=f"2016-05-19T09:{m}:00Z" if m else None)
            for m in ok]
    jobs += [child(name=f"f{m}", uid=f"f{m}", finished="Failed", start=f"2016-05-19T09:{m}:00Z") for m in failed]
    assert [j["metadata"]["name"] for j in history_to_delete(cj, jobs)] == deleted


def test_history_delete_drops_active_entry() -> None:
    cj = cronjob(history="active", successfulJobsHistoryLimit=0)
    plan: SyncPlan = sync_decision(cj, [child(finished="Complete")], t(NOW["before"]))
    assert [j["metadata"]["name"] for j in plan.history_deletes] == ["mycronjob-prev"]
    assert plan.status["active"] == []


def test_status_after_create() -> None:
    job = child(name="mycronjob-1", uid="new")
    status = status_after_create({"active": []}, job, t("2016-05-19T10:00:00Z"))
    assert status["lastScheduleTime"] == rfc3339(t("2016-05-19T10:00:00Z"))
    assert [r["uid"] for r in status["active"]] == ["new"]
