"""The pure sync decisions: finished conditions, manageJob counts, ranking, tracking."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from joblet.clock import FakeClock, rfc3339
from joblet.controllers.job import decisions as d
from joblet.controllers.job.backoff import BackoffRecord
from joblet.controllers.job.config import JobControllerConfig
from joblet.controllers.job.pods import COMPLETION_INDEX_KEY, TRACKING_FINALIZER, sort_for_deletion

NOW = FakeClock().now()
CFG = JobControllerConfig()
_seq = 0


def at(seconds: float) -> str:
    return rfc3339(NOW + timedelta(seconds=seconds))


def job(**spec: Any) -> dict[str, Any]:
    status = spec.pop("status", {})
    restart = spec.pop("restart_policy", "Never")
    base: dict[str, Any] = {"parallelism": 1, "completions": 1, "backoffLimit": 6}
    base.update(spec)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "j", "namespace": "ns", "uid": "job-uid", "resourceVersion": "1"},
        "spec": {
            **{k: v for k, v in base.items() if v is not None},
            "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "job-uid"}},
            "template": {
                "metadata": {"labels": {"batch.kubernetes.io/controller-uid": "job-uid", "job-name": "j"}},
                "spec": {"restartPolicy": restart, "containers": [{"name": "c", "image": "busybox"}]},
            },
        },
        "status": status,
    }


def pod(
    phase: str = "Running",
    index: int | None = None,
    ready: bool = False,
    node: str = "n1",
    finalizer: bool = True,
    deleted: bool = False,
    exit_code: int | None = None,
    restarts: int = 0,
    created: float = 0,
    ready_since: float = 0,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    global _seq
    _seq += 1
    meta: dict[str, Any] = {
        "name": f"p{_seq}",
        "namespace": "ns",
        "uid": f"uid-{_seq}",
        "creationTimestamp": at(created),
        "annotations": dict(annotations or {}),
        "finalizers": [TRACKING_FINALIZER] if finalizer else [],
    }
    if index is not None:
        meta["annotations"][COMPLETION_INDEX_KEY] = str(index)
    if deleted:
        meta["deletionTimestamp"] = at(0)
        meta["deletionGracePeriodSeconds"] = 0
    cs: dict[str, Any] = {"name": "c", "restartCount": restarts, "state": {"running": {}}}
    if exit_code is not None:
        cs["state"] = {"terminated": {"exitCode": exit_code, "finishedAt": at(0)}}
    conditions = [{"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": at(ready_since)}]
    return {
        "metadata": meta,
        "spec": {"nodeName": node},
        "status": {"phase": phase, "conditions": conditions, "containerStatuses": [cs]},
    }


def succeeded(**kw: Any) -> dict[str, Any]:
    return pod("Succeeded", exit_code=0, **kw)


def failed(code: int = 1, **kw: Any) -> dict[str, Any]:
    return pod("Failed", exit_code=code, **kw)


def finished(j: dict[str, Any], pods: list[dict[str, Any]], now_offset: float = 0) -> tuple[str, str, str | None] | None:
    ctx = d.start_sync(j, pods, BackoffRecord(), NOW + timedelta(seconds=now_offset))
    c = ctx.finished_condition
    return None if c is None else (c["type"], c["reason"], c["message"])


# -- finished-condition order (§3.3 step 7) ---------------------------------------------------------

SCM = {"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached", "message": "Reached expected number of succeeded pods"}
FT = {"type": "FailureTarget", "status": "True", "reason": "DeadlineExceeded", "message": d.MSG_DEADLINE}


@pytest.mark.parametrize(
    ("j", "pods", "now", "expect"),
    [
        pytest.param(job(), [pod()], 0, None, id="running-nothing"),
        pytest.param(job(backoffLimit=2), [failed(), failed(), failed()], 0,
                     ("FailureTarget", "BackoffLimitExceeded", d.MSG_BACKOFF_LIMIT), id="failed-over-backoff-limit"),
        pytest.param(job(backoffLimit=2), [failed(), failed()], 0, None, id="failed-equal-backoff-limit"),
        pytest.param(job(backoffLimit=0), [failed()], 0, ("FailureTarget", "BackoffLimitExceeded", d.MSG_BACKOFF_LIMIT),
                     id="backoff-limit-zero"),
        pytest.param(job(backoffLimit=1, status={"failed": 1}), [failed()], 0,
                     ("FailureTarget", "BackoffLimitExceeded", d.MSG_BACKOFF_LIMIT), id="counts-status-failed"),
        pytest.param(job(backoffLimit=3, restart_policy="OnFailure", parallelism=2), [pod(restarts=2), pod(restarts=1)], 0,
                     ("FailureTarget", "BackoffLimitExceeded", d.MSG_BACKOFF_LIMIT), id="onfailure-restart-sum"),
        pytest.param(job(backoffLimit=3, restart_policy="OnFailure"), [pod(restarts=2)], 0, None, id="onfailure-below"),
        pytest.param(job(backoffLimit=0, restart_policy="OnFailure"), [pod(restarts=1)], 0,
                     ("FailureTarget", "BackoffLimitExceeded", d.MSG_BACKOFF_LIMIT), id="onfailure-limit-zero"),
        pytest.param(job(activeDeadlineSeconds=30, status={"startTime": at(0)}), [pod()], 30,
                     ("FailureTarget", "DeadlineExceeded", d.MSG_DEADLINE), id="deadline"),
        pytest.param(job(activeDeadlineSeconds=30, status={"startTime": at(0)}), [pod()], 29, None, id="before-deadline"),
        pytest.param(job(activeDeadlineSeconds=30, suspend=True, status={"startTime": at(0)}), [], 100, None,
                     id="suspended-no-deadline"),
        pytest.param(job(backoffLimit=0, activeDeadlineSeconds=1, status={"startTime": at(0)}), [failed()], 5,
                     ("FailureTarget", "BackoffLimitExceeded", d.MSG_BACKOFF_LIMIT), id="backoff-limit-before-deadline"),
        pytest.param(job(status={"conditions": [FT]}), [pod()], 0, ("Failed", "DeadlineExceeded", d.MSG_DEADLINE),
                     id="existing-failure-target"),
        pytest.param(job(backoffLimit=0, status={"conditions": [SCM]}), [failed()], 0,
                     ("SuccessCriteriaMet", "CompletionsReached", SCM["message"]), id="success-criteria-wins"),
        pytest.param(job(status={"conditions": [{**FT, "status": "False", "reason": "Manual"}]}), [pod()], 0, None,
                     id="failure-target-false-ignored"),
        pytest.param(
            job(podFailurePolicy={"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}]}),
            [failed(42)], 0, ("FailureTarget", "PodFailurePolicy", None), id="pod-failure-policy"),
        pytest.param(job(completionMode="Indexed", completions=3, parallelism=3, backoffLimitPerIndex=0, maxFailedIndexes=0),
                     [failed(index=1, annotations={"batch.kubernetes.io/job-index-failure-count": "0"})], 0,
                     ("FailureTarget", "MaxFailedIndexesExceeded", d.MSG_MAX_FAILED_INDEXES), id="max-failed-indexes"),
        pytest.param(job(completionMode="Indexed", completions=2, parallelism=2, backoffLimitPerIndex=0),
                     [failed(index=1), succeeded(index=0)], 0,
                     ("FailureTarget", "FailedIndexes", d.MSG_FAILED_INDEXES), id="failed-indexes-all-done"),
        pytest.param(job(completionMode="Indexed", completions=3, parallelism=3, backoffLimitPerIndex=0),
                     [failed(index=1), succeeded(index=0), pod(index=2)], 0, None, id="failed-indexes-others-running"),
        pytest.param(job(completionMode="Indexed", completions=10, parallelism=10, successPolicy={"rules": [{"succeededCount": 2}]}),
                     [succeeded(index=3), succeeded(index=8)], 0,
                     ("SuccessCriteriaMet", "SuccessPolicy", "Matched rules at index 0"), id="success-policy"),
        pytest.param(job(completionMode="Indexed", completions=2, parallelism=2, backoffLimitPerIndex=0,
                         successPolicy={"rules": [{"succeededCount": 1}]}),
                     [failed(index=0), succeeded(index=1)], 0,
                     ("FailureTarget", "FailedIndexes", d.MSG_FAILED_INDEXES), id="failed-indexes-before-success-policy"),
    ],
)
def test_finished_condition(j: dict[str, Any], pods: list[dict[str, Any]], now: float, expect: tuple[str, str, str | None] | None) -> None:
    got = finished(j, pods, now)
    if expect is not None and expect[2] is None and got is not None:
        got = (got[0], got[1], None)  # message checked in test_job_policy
    assert got == expect


def test_deadline_requeue_and_start_time() -> None:
    ctx = d.start_sync(job(activeDeadlineSeconds=30), [], BackoffRecord(), NOW)
    assert ctx.job["status"]["startTime"] == at(0) and ctx.start_time_changed
    assert ctx.deadline_requeue_after == 30
    ctx = d.start_sync(job(suspend=True), [], BackoffRecord(), NOW)
    assert "startTime" not in ctx.job["status"]


@pytest.mark.parametrize(
    ("j", "pods", "expect_succeeded", "expect_failed", "new_failed"),
    [
        pytest.param(job(), [succeeded(), succeeded(finalizer=False)], 1, 0, 0, id="only-finalizer-pods-are-new"),
        pytest.param(job(status={"succeeded": 2, "failed": 1}), [failed()], 2, 2, 1, id="adds-to-status"),
        pytest.param(job(status={"uncountedTerminatedPods": {"failed": ["uid-x"]}}), [], 0, 1, 0, id="uncounted-counted"),
        pytest.param(job(), [pod(deleted=True)], 0, 1, 1, id="terminating-counts-as-failed"),
        pytest.param(job(podReplacementPolicy="Failed"), [pod(deleted=True)], 0, 0, 0, id="terminating-failed-only"),
        pytest.param(job(podFailurePolicy={"rules": [{"action": "Ignore", "onExitCodes": {"operator": "In", "values": [3]}}]}),
                     [failed(3)], 0, 0, 1, id="ignored-not-counted-but-new"),
        pytest.param(job(completionMode="Indexed", completions=2, parallelism=2), [succeeded(index=1), succeeded(index=1)], 1, 0, 0,
                     id="index-counted-once"),
        pytest.param(job(completionMode="Indexed", completions=2, parallelism=2), [succeeded(index=5), failed(index=None)], 0, 0, 0,
                     id="invalid-index-ignored"),
    ],
)
def test_counting(j: dict[str, Any], pods: list[dict[str, Any]], expect_succeeded: int, expect_failed: int, new_failed: int) -> None:
    ctx = d.start_sync(j, pods, BackoffRecord(), NOW)
    assert (ctx.succeeded, ctx.failed, len(ctx.new_failed)) == (expect_succeeded, expect_failed, new_failed)


# -- manageJob -------------------------------------------------------------------------------------


def manage(j: dict[str, Any], pods: list[dict[str, Any]], backoff: BackoffRecord | None = None, now: float = 0) -> d.ManagePlan:
    ctx = d.start_sync(j, pods, backoff or BackoffRecord(), NOW + timedelta(seconds=now))
    return d.plan_manage(ctx, NOW + timedelta(seconds=now), CFG)


@pytest.mark.parametrize(
    ("j", "pods", "creates", "deletes", "batches"),
    [
        pytest.param(job(completions=10, parallelism=10), [], 10, 0, [1, 2, 4, 3], id="slow-start-1-2-4-3"),
        pytest.param(job(completions=1000, parallelism=1000), [], 500, 0, [1, 2, 4, 8, 16, 32, 64, 128, 245], id="cap-500"),
        pytest.param(job(completions=3, parallelism=2), [succeeded(finalizer=False)], 2, 0, [1, 1], id="parallelism-bound"),
        pytest.param(job(completions=3, parallelism=2, status={"succeeded": 2}), [], 1, 0, [1], id="remaining-completions"),
        pytest.param(job(completions=None, parallelism=3), [], 3, 0, [1, 2], id="work-queue"),
        pytest.param(job(completions=None, parallelism=3), [succeeded(), pod()], 0, 0, [], id="work-queue-after-success"),
        pytest.param(job(completions=8, parallelism=2), [pod(), pod(), pod(), pod()], 0, 2, [], id="scale-down"),
        pytest.param(job(parallelism=0), [], 0, 0, [], id="parallelism-zero"),
        pytest.param(job(completions=2, parallelism=3), [succeeded(), succeeded(), pod()], 0, 1, [], id="surplus-after-completions"),
        pytest.param(job(suspend=True, completions=3, parallelism=3), [pod(), pod()], 0, 2, [], id="suspend-deletes-all"),
        pytest.param(job(completions=2, parallelism=2), [pod(deleted=True, finalizer=False)], 2, 0, [1, 1], id="terminating-not-waited"),
        pytest.param(job(completions=2, parallelism=2, podReplacementPolicy="Failed"), [pod(deleted=True)], 1, 0, [1],
                     id="terminating-waited-under-failed"),
    ],
)
def test_manage_counts(j: dict[str, Any], pods: list[dict[str, Any]], creates: int, deletes: int, batches: list[int]) -> None:
    plan = manage(j, pods)
    assert (len(plan.create), len(plan.delete), plan.batches) == (creates, deletes, batches)


def test_global_backoff_holds_creation() -> None:
    plan = manage(job(), [], BackoffRecord(1, NOW), now=4)
    assert plan.create == [] and plan.requeue_after == 6
    plan = manage(job(), [], BackoffRecord(1, NOW), now=10)
    assert len(plan.create) == 1


def test_deletion_ranking() -> None:
    unscheduled = pod("Pending", node="")
    pending = pod("Pending")
    not_ready = pod("Running")
    ready_recent = pod("Running", ready=True, ready_since=50)
    ready_old_restarts = pod("Running", ready=True, ready_since=10, restarts=3)
    ready_old_new = pod("Running", ready=True, ready_since=10, created=5)
    ready_old_old = pod("Running", ready=True, ready_since=10, created=1)
    ordered = [unscheduled, pending, not_ready, ready_recent, ready_old_restarts, ready_old_new, ready_old_old]
    assert sort_for_deletion(list(reversed(ordered))) == ordered


def test_indexed_duplicates_and_out_of_range_removed_first() -> None:
    j = job(completionMode="Indexed", completions=3, parallelism=3)
    keep = pod(index=1, ready=True, ready_since=1)
    dup = pod(index=1)
    out = pod(index=7)
    plan = manage(j, [pod(index=0), keep, dup, out])
    assert {p["metadata"]["name"] for p in plan.delete} == {dup["metadata"]["name"], out["metadata"]["name"]}
    assert plan.create == []


@pytest.mark.parametrize(
    ("j", "pods", "expect"),
    [
        pytest.param(job(completionMode="Indexed", completions=5, parallelism=2), [succeeded(index=0), pod(index=1)], [2],
                     id="lowest-pending"),
        pytest.param(job(completionMode="Indexed", completions=5, parallelism=3, status={"completedIndexes": "0,2"}), [pod(index=1)],
                     [3, 4], id="skips-completed"),
        pytest.param(job(completionMode="Indexed", completions=3, parallelism=3, podReplacementPolicy="Failed"),
                     [pod(index=0, deleted=True)], [1, 2], id="terminating-held-under-failed"),
        pytest.param(job(completionMode="Indexed", completions=3, parallelism=3, backoffLimitPerIndex=1,
                         status={"failedIndexes": "1"}), [], [0, 2], id="failed-indexes-skipped"),
        pytest.param(job(completionMode="Indexed", completions=100_000, parallelism=3,
                         status={"completedIndexes": "0-49999,50001-99990", "succeeded": 99_990}),
                     [pod(index=50_000), succeeded(index=99_991)], [99_992, 99_993], id="gaps-of-a-big-job"),
    ],
)
def test_indexed_pending_indexes(j: dict[str, Any], pods: list[dict[str, Any]], expect: list[int]) -> None:
    plan = manage(j, pods)
    assert [int(p["metadata"]["annotations"][COMPLETION_INDEX_KEY]) for p in plan.create] == expect


def test_per_index_backoff_and_failure_count_annotation() -> None:
    j = job(completionMode="Indexed", completions=2, parallelism=2, backoffLimitPerIndex=2)
    first_fail = failed(index=0, annotations={"batch.kubernetes.io/job-index-failure-count": "0"})
    plan = manage(j, [first_fail, pod(index=1)], now=5)
    assert plan.create == [] and plan.requeue_after == 5
    plan = manage(j, [first_fail, pod(index=1)], now=10)
    (created,) = plan.create
    assert created["metadata"]["annotations"]["batch.kubernetes.io/job-index-failure-count"] == "1"


def test_ignored_failure_raises_ignored_count() -> None:
    j = job(completionMode="Indexed", completions=1, parallelism=1, backoffLimitPerIndex=1,
            podFailurePolicy={"rules": [{"action": "Ignore", "onExitCodes": {"operator": "In", "values": [3]}}]})
    plan = manage(j, [failed(3, index=0, annotations={"batch.kubernetes.io/job-index-failure-count": "0"})], now=10)
    ann = plan.create[0]["metadata"]["annotations"]
    assert ann["batch.kubernetes.io/job-index-failure-count"] == "0"
    assert ann["batch.kubernetes.io/job-index-ignored-failure-count"] == "1"


@pytest.mark.parametrize(
    ("name", "index", "expect"),
    [
        ("pi", None, "pi-"),
        ("pi", 3, "pi-3-"),
        ("a" * 60, 12, "a" * 54 + "-12-"),
    ],
    ids=["nonindexed", "indexed", "cut-to-58"],
)
def test_generate_name(name: str, index: int | None, expect: str) -> None:
    assert d.pod_generate_name(name, index) == expect
    assert len(expect) <= 58


def test_build_pod_indexed() -> None:
    j = job(completionMode="Indexed", completions=3, parallelism=3)
    j["spec"]["template"]["spec"]["initContainers"] = [{"name": "init", "image": "x", "env": [{"name": "JOB_COMPLETION_INDEX", "value": "keep"}]}]
    p = d.build_pod(j, 2)
    assert p["metadata"]["generateName"] == "j-2-"
    assert p["metadata"]["labels"][COMPLETION_INDEX_KEY] == "2"
    assert p["metadata"]["annotations"][COMPLETION_INDEX_KEY] == "2"
    assert p["spec"]["hostname"] == "j-2"
    assert p["metadata"]["finalizers"] == [TRACKING_FINALIZER]
    assert p["metadata"]["ownerReferences"] == [
        {"apiVersion": "batch/v1", "kind": "Job", "name": "j", "uid": "job-uid", "controller": True, "blockOwnerDeletion": True}
    ]
    assert p["spec"]["initContainers"][0]["env"] == [{"name": "JOB_COMPLETION_INDEX", "value": "keep"}]
    assert p["spec"]["containers"][0]["env"][0]["valueFrom"]["fieldRef"]["fieldPath"] == (
        "metadata.labels['batch.kubernetes.io/job-completion-index']"
    )
    assert "env" not in j["spec"]["template"]["spec"]["containers"][0], "template not mutated"


# -- completion, suspend, tracking ------------------------------------------------------------------


def run_pass(j: dict[str, Any], pods: list[dict[str, Any]], manage_called: bool = True) -> tuple[d.SyncContext, d.TrackingPlan]:
    ctx = d.start_sync(j, pods, BackoffRecord(), NOW)
    if ctx.finished_condition is not None:
        d.after_finish_deletes(ctx, len(ctx.active_pods), 0)
        changed = False
    else:
        changed = d.decide_completion(ctx, manage_called, NOW)
    needs = d.apply_active_counts(ctx, changed)
    return ctx, d.plan_tracking(ctx, needs, NOW, CFG)


def test_success_adds_interim_condition_and_uncounted_uid() -> None:
    p = succeeded()
    ctx, plan = run_pass(job(), [p])
    st = ctx.job["status"]
    assert [c["type"] for c in st["conditions"]] == ["SuccessCriteriaMet"]
    assert st["uncountedTerminatedPods"]["succeeded"] == [p["metadata"]["uid"]]
    assert plan.pods_to_remove_finalizer == [p] and plan.needs_flush
    assert not d.enact_finished(ctx, NOW), "uncounted UIDs hold the terminal condition back"
    d.count_removed_finalizers(st, set())
    assert st["succeeded"] == 1 and st["uncountedTerminatedPods"]["succeeded"] == []
    assert d.enact_finished(ctx, NOW)
    assert [c["type"] for c in st["conditions"]] == ["SuccessCriteriaMet", "Complete"]
    assert st["completionTime"] == at(0)
    assert d.finished_events(ctx.job, ctx.finished_condition or {}) == [d.EventSpec("Normal", "Completed", "Job completed")]


def test_failure_counts_running_pods_but_success_does_not() -> None:
    running = pod()
    ctx, _ = run_pass(job(backoffLimit=0, completions=2, parallelism=2), [failed(), running])
    assert running["metadata"]["uid"] in ctx.job["status"]["uncountedTerminatedPods"]["failed"]
    assert ctx.terminating == 1 and ctx.finished_condition is not None and ctx.finished_condition["type"] == "Failed"
    running = pod()
    ctx, _ = run_pass(job(completionMode="Indexed", completions=3, parallelism=3, successPolicy={"rules": [{"succeededCount": 1}]}),
                      [succeeded(index=0), running := pod(index=1)])
    assert running["metadata"]["uid"] not in ctx.job["status"]["uncountedTerminatedPods"]["failed"]


def test_terminal_condition_waits_for_terminating_pods() -> None:
    ctx, _ = run_pass(job(backoffLimit=0, completions=2, parallelism=2), [failed(), pod()])
    d.count_removed_finalizers(ctx.job["status"], set())
    assert not d.enact_finished(ctx, NOW)
    ctx.terminating = 0
    assert d.enact_finished(ctx, NOW)


def test_uncounted_cap() -> None:
    pods = [succeeded() for _ in range(600)]
    _ctx, plan = run_pass(job(completions=1000, parallelism=1), pods)
    assert len(plan.pods_to_remove_finalizer) == 500 and plan.reached_max_uncounted


def test_suspend_and_resume_conditions() -> None:
    ctx = d.start_sync(job(suspend=True), [], BackoffRecord(), NOW)
    assert d.decide_completion(ctx, True, NOW)
    assert ctx.job["status"]["conditions"][0]["reason"] == "JobSuspended"
    assert [e.reason for e in ctx.events] == ["Suspended"]
    resumed = job(status={"conditions": ctx.job["status"]["conditions"], "startTime": at(-500)})
    ctx = d.start_sync(resumed, [], BackoffRecord(), NOW)
    assert d.decide_completion(ctx, True, NOW)
    cond = ctx.job["status"]["conditions"][0]
    assert (cond["status"], cond["reason"], cond["message"]) == ("False", "JobResumed", "Job resumed")
    assert ctx.job["status"]["startTime"] == at(0)
    ctx = d.start_sync(job(), [], BackoffRecord(), NOW)
    assert not d.decide_completion(ctx, True, NOW)
    assert ctx.job["status"]["conditions"] == [], "Suspended=False is never added from nothing"


def test_delayed_deletion_holds_last_failed_pod_of_index() -> None:
    j = job(completionMode="Indexed", completions=2, parallelism=2, backoffLimitPerIndex=2)
    held = failed(index=0)
    ctx, plan = run_pass(j, [held, pod(index=1)])
    assert held not in plan.pods_to_remove_finalizer
    assert ctx.delayed_deletion[0] is held


def test_elastic_scale_down_cuts_completed_indexes() -> None:
    j = job(completionMode="Indexed", completions=3, parallelism=3, status={"completedIndexes": "0-3", "succeeded": 4})
    ctx, _ = run_pass(j, [pod(index=4)])
    assert ctx.job["status"]["completedIndexes"] == "0-2" and ctx.job["status"]["succeeded"] == 3


def test_a_big_job_folds_new_completions_into_its_runs() -> None:
    j = job(completionMode="Indexed", completions=100_000, parallelism=2,
            status={"completedIndexes": "0-49999,50002-99997", "succeeded": 99_996})
    ctx, plan = run_pass(j, [succeeded(index=50_001), succeeded(index=99_998), pod(index=99_999)])
    assert ctx.job["status"]["completedIndexes"] == "0-49999,50001-99998"
    assert ctx.job["status"]["succeeded"] == 99_998 and len(plan.pods_to_remove_finalizer) == 2
    assert 50_000 not in ctx.succeeded_indexes and 50_001 in ctx.succeeded_indexes


def test_too_many_succeeded_event() -> None:
    j = job(completions=1, status={"succeeded": 2})
    events = d.finished_events(j, {"type": "Complete"})
    assert [e.reason for e in events] == ["TooManySucceededPods", "Completed"]


def test_failure_event_carries_reason_and_message() -> None:
    events = d.finished_events(job(), {"type": "Failed", "reason": "BackoffLimitExceeded", "message": d.MSG_BACKOFF_LIMIT})
    assert events == [d.EventSpec("Warning", "BackoffLimitExceeded", d.MSG_BACKOFF_LIMIT)]


@pytest.mark.parametrize(("before", "after", "expected"), [
    pytest.param(None, job(completionMode="Indexed", completions=5, status={"completedIndexes": "0,2-3"}),
                 (3, 0), id="first-write"),
    pytest.param(job(completionMode="Indexed", completions=5, status={"completedIndexes": "0"}),
                 job(completionMode="Indexed", completions=5, status={"completedIndexes": "0-2"}), (2, 0), id="delta"),
    pytest.param(job(completionMode="Indexed", completions=5, backoffLimitPerIndex=1,
                     status={"completedIndexes": "0", "failedIndexes": "1"}),
                 job(completionMode="Indexed", completions=5, backoffLimitPerIndex=1,
                     status={"completedIndexes": "0,2", "failedIndexes": "1,3-4"}), (1, 2), id="per-index-failures"),
    pytest.param(job(completionMode="Indexed", completions=5, status={"completedIndexes": "0-4"}),
                 job(completionMode="Indexed", completions=2, status={"completedIndexes": "0-1"}), (0, 0),
                 id="scale-down-never-negative"),
    pytest.param(None, job(completionMode="Indexed", completions=3, status={"failedIndexes": "0"}), (0, 0),
                 id="failed-indexes-count-only-per-index"),
    pytest.param(None, job(completions=3, status={"succeeded": 3}), (0, 0), id="non-indexed"),
])
def test_finished_indexes_delta(before: dict[str, Any] | None, after: dict[str, Any], expected: tuple[int, int]) -> None:
    assert d.finished_indexes_delta(before, after) == expected
