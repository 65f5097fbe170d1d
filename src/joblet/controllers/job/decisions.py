"""What the Job controller decides in one sync, as pure functions (upstream syncJob & co).

The reconciler (:mod:`joblet.controllers.job.controller`) reads a Job and its pods from the
informer caches and walks a pass in these steps, doing the I/O between them:

1. :func:`start_sync` - classify pods, count newly finished ones, set startTime, fold the
   backoff record, and look for a finished condition (§3.3 steps 3-7).
2. Either the Job is finishing: the reconciler deletes the active pods and calls
   :func:`after_finish_deletes`; or :func:`plan_manage` says which pods to create/delete
   (§3.4), the reconciler does it, and :func:`decide_completion` checks success and the
   Suspended condition.
3. :func:`plan_tracking` - the ``uncountedTerminatedPods`` protocol (§3.14): which UIDs go
   into status, whose finalizers come off, interim conditions. After the finalizer
   patches, :func:`count_removed_finalizers` moves UIDs into the counters and
   :func:`enact_finished` adds the terminal condition.

Everything here takes ``now`` and a config; nothing reads a clock or does I/O. The
``SyncContext`` is the one mutable value passed along (its ``job`` is a private copy).

One module (~880 lines): the pure half of syncJob; its stages pass one SyncContext along, so
splitting it would scatter one data flow. Table-tested in tests/unit/controllers/job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from joblet.api.intervals import (
    IndexRuns,
    count_intervals,
    format_intervals,
    parse_indexes_lenient,
    parse_runs_lenient,
)
from joblet.clock import parse_time_or_none, rfc3339
from joblet.controllers.job import pods as podutil
from joblet.controllers.job.backoff import (
    BackoffRecord,
    finished_time,
    new_backoff_record,
    remaining_time,
    remaining_time_per_index,
)
from joblet.controllers.job.config import JobControllerConfig
from joblet.controllers.job.policy import FAIL_INDEX, match_pod_failure_policy, match_success_policy
from joblet.objects import deep_copy, owner_ref

Obj = dict[str, Any]

JOB_CONTROLLER_NAME = "kubernetes.io/job-controller"
SUCCESS_CRITERIA_MET = "SuccessCriteriaMet"
FAILURE_TARGET = "FailureTarget"
COMPLETE = "Complete"
FAILED = "Failed"
SUSPENDED = "Suspended"

REASON_BACKOFF_LIMIT = "BackoffLimitExceeded"
REASON_DEADLINE = "DeadlineExceeded"
REASON_POD_FAILURE_POLICY = "PodFailurePolicy"
REASON_MAX_FAILED_INDEXES = "MaxFailedIndexesExceeded"
REASON_FAILED_INDEXES = "FailedIndexes"
REASON_COMPLETIONS_REACHED = "CompletionsReached"
REASON_SUCCESS_POLICY = "SuccessPolicy"

MSG_BACKOFF_LIMIT = "Job has reached the specified backoff limit"
MSG_DEADLINE = "Job was active longer than specified deadline"
MSG_MAX_FAILED_INDEXES = "Job has exceeded the specified maximal number of failed indexes"
MSG_FAILED_INDEXES = "Job has failed indexes"
MSG_COMPLETIONS_REACHED = "Reached expected number of succeeded pods"

MAX_GENERATED_NAME_PREFIX = 58  # 63 - 5 random characters
COMPLETION_INDEX_ENV = "JOB_COMPLETION_INDEX"


@dataclass(frozen=True)
class EventSpec:
    type: str
    reason: str
    message: str


# -- small facts about a Job -------------------------------------------------------------------


def spec_of(job: Obj) -> Obj:
    s: Obj = job.get("spec") or {}
    return s


def status_of(job: Obj) -> Obj:
    s: Obj = job.setdefault("status", {})
    return s


def is_indexed(job: Obj) -> bool:
    return spec_of(job).get("completionMode") == "Indexed"


def completion_mode_known(job: Obj) -> bool:
    return spec_of(job).get("completionMode") in (None, "NonIndexed", "Indexed")


def completions_of(job: Obj) -> int | None:
    c = spec_of(job).get("completions")
    return None if c is None else int(c)


def parallelism_of(job: Obj) -> int:
    p = spec_of(job).get("parallelism")
    return 1 if p is None else int(p)


def has_backoff_limit_per_index(job: Obj) -> bool:
    return spec_of(job).get("backoffLimitPerIndex") is not None


def backoff_limit_of(job: Obj) -> int:
    b = spec_of(job).get("backoffLimit")
    if b is None:
        return podutil.MAX_INT32 if has_backoff_limit_per_index(job) else 6
    return int(b)


def is_suspended(job: Obj) -> bool:
    return bool(spec_of(job).get("suspend"))


def only_replace_failed_pods(job: Obj) -> bool:
    spec = spec_of(job)
    return spec.get("podReplacementPolicy") == "Failed" or spec.get("podFailurePolicy") is not None


def managed_by_external(job: Obj) -> str | None:
    managed_by = spec_of(job).get("managedBy")
    if managed_by is not None and managed_by != JOB_CONTROLLER_NAME:
        return str(managed_by)
    return None


def find_condition(conditions: list[Obj], ctype: str) -> Obj | None:
    for cond in conditions:
        if cond.get("type") == ctype:
            return cond
    return None


def is_pod_failed(pod: Obj, job: Obj) -> bool:
    """Failed phase; or, unless only failed pods are replaced, deleted and not Succeeded."""
    ph = podutil.phase(pod)
    if ph == "Failed":
        return True
    if only_replace_failed_pods(job):
        return False
    return podutil.deleting(pod) and ph != "Succeeded"


def new_condition(ctype: str, status: str, reason: str, message: str, now: datetime) -> Obj:
    ts = rfc3339(now)
    return {
        "type": ctype,
        "status": status,
        "lastProbeTime": ts,
        "lastTransitionTime": ts,
        "reason": reason,
        "message": message,
    }


def ensure_condition(
    conditions: list[Obj], ctype: str, status: str, reason: str, message: str, now: datetime
) -> bool:
    """ensureJobConditionStatus: overwrite in place if different, append unless False."""
    for i, cond in enumerate(conditions):
        if cond.get("type") == ctype:
            if cond.get("status") != status or cond.get("reason") != reason or cond.get("message") != message:
                conditions[i] = new_condition(ctype, status, reason, message, now)
                return True
            return False
    if status != "False":
        conditions.append(new_condition(ctype, status, reason, message, now))
        return True
    return False


# -- context of one sync --------------------------------------------------------------------


@dataclass
class SyncContext:
    job: Obj
    pods: list[Obj]
    active_pods: list[Obj]
    ready: int
    terminating: int
    uncounted_succeeded: set[str]
    uncounted_failed: set[str]
    expected_rm_finalizers: set[str]
    new_succeeded: list[Obj]
    new_failed: list[Obj]
    succeeded: int
    failed: int
    new_backoff: BackoffRecord
    satisfied: bool
    finished_condition: Obj | None = None
    # as runs: a sync costs what the live pods and the runs cost, not every completed index
    prev_succeeded_indexes: IndexRuns = field(default_factory=IndexRuns)
    succeeded_indexes: IndexRuns = field(default_factory=IndexRuns)
    failed_indexes: set[int] | None = None
    delayed_deletion: dict[int, Obj] = field(default_factory=dict)
    deadline_requeue_after: float | None = None
    active: int = 0
    start_time_changed: bool = False
    events: list[EventSpec] = field(default_factory=list)

    @property
    def indexed(self) -> bool:
        return is_indexed(self.job)


def _valid_index(pod: Obj, completions: int | None) -> bool:
    ix = podutil.completion_index(pod)
    return ix != podutil.UNKNOWN_INDEX and completions is not None and ix < completions


def _valid_unaccounted(job: Obj, pod: Obj, exclude: set[str], expected_rm: set[str]) -> bool:
    """getValidPodsWithFilter's precondition: finalizer, not yet accounted, valid index."""
    if not podutil.has_tracking_finalizer(pod):
        return False
    uid = podutil.uid(pod)
    if uid in exclude or uid in expected_rm:
        return False
    return not is_indexed(job) or _valid_index(pod, completions_of(job))


def non_ignored_failed_count(job: Obj, failed_pods: list[Obj]) -> int:
    policy = spec_of(job).get("podFailurePolicy")
    if policy is None:
        return len(failed_pods)
    return sum(1 for p in failed_pods if match_pod_failure_policy(policy, p).count_failed)


def fail_job_message(job: Obj, pods: list[Obj]) -> str | None:
    """The message of the first failed pod whose first matching rule is FailJob."""
    policy = spec_of(job).get("podFailurePolicy")
    if policy is None:
        return None
    for p in pods:
        if is_pod_failed(p, job):
            verdict = match_pod_failure_policy(policy, p)
            if verdict.fail_job_message is not None:
                return verdict.fail_job_message
    return None


def past_backoff_limit_on_failure(job: Obj, pods: list[Obj]) -> bool:
    """OnFailure: summed restartCounts of Pending/Running pods reach backoffLimit (> 0 for 0)."""
    template_spec = (spec_of(job).get("template") or {}).get("spec") or {}
    if template_spec.get("restartPolicy") != "OnFailure":
        return False
    total = sum(podutil.restart_count_sum(p) for p in pods if podutil.phase(p) in ("Running", "Pending"))
    limit = backoff_limit_of(job)
    if limit == 0:
        return total > 0
    return total >= limit


def past_active_deadline(job: Obj, now: datetime) -> bool:
    ads = spec_of(job).get("activeDeadlineSeconds")
    start = parse_time_or_none(status_of(job).get("startTime"))
    if ads is None or start is None or is_suspended(job):
        return False
    return (now - start).total_seconds() >= int(ads)


def is_index_failed(job: Obj, pod: Obj) -> bool:
    """An index fails on a FailIndex match or a counted failure at the per-index limit."""
    counted = False
    if is_pod_failed(pod, job):
        policy = spec_of(job).get("podFailurePolicy")
        if policy is not None:
            verdict = match_pod_failure_policy(policy, pod)
            if verdict.action == FAIL_INDEX:
                return True
            counted = verdict.count_failed
        else:
            counted = True
    limit = int(spec_of(job).get("backoffLimitPerIndex") or 0)
    return counted and podutil.index_failure_count(pod) >= limit


def finished_indexes_delta(before: Obj | None, after: Obj) -> tuple[int, int]:
    """Indexes a status write newly completed and newly failed (the latter only with
    backoffLimitPerIndex), as upstream's ``recordJobPodFinished`` counts them for
    ``job_controller_job_finished_indexes_total``; never negative (a scale-down drops indexes)."""
    if not is_indexed(after):
        return 0, 0
    if before is not None and (before.get("metadata") or {}).get("uid") != (after.get("metadata") or {}).get("uid"):
        before = None
    completions = completions_of(after) or 0

    def count(job: Obj | None, key: str) -> int:
        text = ((job or {}).get("status") or {}).get(key)
        return count_intervals(parse_runs_lenient(str(text or ""), completions))

    succeeded = count(after, "completedIndexes") - count(before, "completedIndexes")
    failed = 0
    if spec_of(after).get("backoffLimitPerIndex") is not None:
        failed = count(after, "failedIndexes") - count(before, "failedIndexes")
    return max(0, succeeded), max(0, failed)


def calculate_succeeded_indexes(job: Obj, pods: list[Obj]) -> tuple[IndexRuns, IndexRuns]:
    completions = completions_of(job) or 0
    prev = IndexRuns.parse_lenient(str(status_of(job).get("completedIndexes") or ""), completions)
    return prev, prev.with_indexes(
        podutil.completion_index(p)
        for p in pods
        if podutil.phase(p) == "Succeeded" and _valid_index(p, completions) and podutil.has_tracking_finalizer(p)
    )


def calculate_failed_indexes(job: Obj, pods: list[Obj]) -> set[int]:
    completions = completions_of(job) or 0
    failed_str = status_of(job).get("failedIndexes")
    result = parse_indexes_lenient(str(failed_str), completions) if failed_str is not None else set()
    for p in pods:
        if _valid_index(p, completions) and podutil.has_tracking_finalizer(p) and is_index_failed(job, p):
            result.add(podutil.completion_index(p))
    return result


def pods_with_delayed_deletion(ctx: SyncContext) -> dict[int, Obj]:
    """Per index, the last failed pod whose finalizer stays until its replacement exists."""
    job = ctx.job
    completions = completions_of(job) or 0
    active_indexes = {podutil.completion_index(p) for p in ctx.active_pods}
    failed_indexes = ctx.failed_indexes or set()
    result: dict[int, Obj] = {}
    for p in ctx.pods:
        if not _valid_unaccounted(job, p, set(), ctx.expected_rm_finalizers):
            continue
        if not is_pod_failed(p, job):
            continue
        ix = podutil.completion_index(p)
        if ix >= completions:
            continue
        if ix in ctx.succeeded_indexes or ix in failed_indexes or ix in active_indexes:
            continue
        last = result.get(ix)
        if last is None or (
            podutil.index_absolute_failure_count(last) <= podutil.index_absolute_failure_count(p)
            and not finished_time(p) < finished_time(last)
        ):
            result[ix] = p
    return result


def start_sync(
    job: Obj,
    pods: list[Obj],
    backoff: BackoffRecord,
    now: datetime,
    satisfied: bool = True,
    expected_rm_finalizers: set[str] | None = None,
) -> SyncContext:
    """§3.3 steps 3-7 on a private copy of the Job. ``pods`` are the Job's claimed pods."""
    expected_rm = expected_rm_finalizers or set()
    status = status_of(job)
    uncounted = status.get("uncountedTerminatedPods") or {}
    unc_succeeded = [str(u) for u in uncounted.get("succeeded") or []]
    unc_failed = [str(u) for u in uncounted.get("failed") or []]
    status["uncountedTerminatedPods"] = {"succeeded": list(unc_succeeded), "failed": list(unc_failed)}
    unc_s, unc_f = set(unc_succeeded), set(unc_failed)

    active_pods = [p for p in pods if podutil.is_active(p)]
    new_succeeded = [
        p for p in pods if _valid_unaccounted(job, p, unc_s, expected_rm) and podutil.phase(p) == "Succeeded"
    ]
    new_failed = [p for p in pods if _valid_unaccounted(job, p, unc_f, expected_rm) and is_pod_failed(p, job)]
    ctx = SyncContext(
        job=job,
        pods=pods,
        active_pods=active_pods,
        ready=sum(1 for p in active_pods if podutil.is_ready(p)),
        terminating=sum(1 for p in pods if podutil.is_terminating(p)),
        uncounted_succeeded=unc_s,
        uncounted_failed=unc_f,
        expected_rm_finalizers=expected_rm,
        new_succeeded=new_succeeded,
        new_failed=new_failed,
        succeeded=int(status.get("succeeded") or 0) + len(new_succeeded) + len(unc_s),
        failed=int(status.get("failed") or 0) + non_ignored_failed_count(job, new_failed) + len(unc_f),
        new_backoff=new_backoff_record(backoff, new_succeeded, new_failed),
        satisfied=satisfied,
        active=len(active_pods),
    )

    if not status.get("startTime") and not is_suspended(job):
        status["startTime"] = rfc3339(now)
        ctx.start_time_changed = True

    conditions: list[Obj] = status.setdefault("conditions", [])
    spec = spec_of(job)
    scm = find_condition(conditions, SUCCESS_CRITERIA_MET)
    finished: Obj | None = dict(scm) if scm is not None and scm.get("status") == "True" else None
    if finished is None:
        target = find_condition(conditions, FAILURE_TARGET)
        if target is not None and target.get("status") == "True":
            finished = new_condition(FAILED, "True", str(target.get("reason", "")), str(target.get("message", "")), now)
        else:
            message = fail_job_message(job, pods)
            if message is not None:
                finished = new_condition(FAILURE_TARGET, "True", REASON_POD_FAILURE_POLICY, message, now)
    if finished is None:
        if ctx.failed > backoff_limit_of(job) or past_backoff_limit_on_failure(job, pods):
            finished = new_condition(FAILURE_TARGET, "True", REASON_BACKOFF_LIMIT, MSG_BACKOFF_LIMIT, now)
        elif past_active_deadline(job, now):
            finished = new_condition(FAILURE_TARGET, "True", REASON_DEADLINE, MSG_DEADLINE, now)
        elif spec.get("activeDeadlineSeconds") is not None and not is_suspended(job):
            start = parse_time_or_none(status.get("startTime"))
            if start is not None:
                ctx.deadline_requeue_after = int(spec["activeDeadlineSeconds"]) - (now - start).total_seconds()

    if is_indexed(job):
        ctx.prev_succeeded_indexes, ctx.succeeded_indexes = calculate_succeeded_indexes(job, pods)
        ctx.succeeded = len(ctx.succeeded_indexes)
        if has_backoff_limit_per_index(job):
            ctx.failed_indexes = calculate_failed_indexes(job, pods)
            if finished is None:
                max_failed = spec.get("maxFailedIndexes")
                n_failed = len(ctx.failed_indexes)
                if max_failed is not None and n_failed > int(max_failed):
                    finished = new_condition(
                        FAILURE_TARGET, "True", REASON_MAX_FAILED_INDEXES, MSG_MAX_FAILED_INDEXES, now
                    )
                elif n_failed > 0 and n_failed + len(ctx.succeeded_indexes) >= (completions_of(job) or 0):
                    finished = new_condition(FAILURE_TARGET, "True", REASON_FAILED_INDEXES, MSG_FAILED_INDEXES, now)
            ctx.delayed_deletion = pods_with_delayed_deletion(ctx)
        if finished is None:
            message = match_success_policy(
                spec.get("successPolicy"), completions_of(job) or 0, ctx.succeeded_indexes
            )
            if message is not None:
                finished = new_condition(SUCCESS_CRITERIA_MET, "True", REASON_SUCCESS_POLICY, message, now)
    ctx.finished_condition = finished
    return ctx


def after_finish_deletes(ctx: SyncContext, deleted: int, deleted_ready: int) -> None:
    """§3.3 step 8 after the active pods were DELETEd (finalizers kept)."""
    if deleted != len(ctx.active_pods) or not ctx.satisfied:
        ctx.finished_condition = None
    ctx.active = len(ctx.active_pods) - deleted
    ctx.terminating += deleted
    ctx.ready -= deleted_ready


# -- manageJob ----------------------------------------------------------------------------


@dataclass
class ManagePlan:
    """What manageJob wants: delete (finalizer first), or create in slow-start batches."""

    delete: list[Obj] = field(default_factory=list)
    create: list[Obj] = field(default_factory=list)
    batches: list[int] = field(default_factory=list)
    requeue_after: float | None = None
    action: str = "tracking"


def want_active(job: Obj, active: int, succeeded: int) -> int:
    completions = completions_of(job)
    parallelism = parallelism_of(job)
    if completions is None:
        return active if succeeded > 0 else parallelism
    return max(0, min(completions - succeeded, parallelism))


def _duplicated_index_removal(pods: list[Obj], completions: int) -> tuple[list[Obj], list[Obj]]:
    """Pods without index, past completions, or duplicating an index (all but the best)."""
    rm: list[Obj] = []
    left: list[Obj] = []
    by_index = sorted(pods, key=podutil.completion_index)
    groups: dict[int, list[Obj]] = {}
    order: list[int] = []
    for p in by_index:
        ix = podutil.completion_index(p)
        if ix >= completions:
            rm.append(p)
            continue
        if ix not in groups:
            groups[ix] = []
            order.append(ix)
        groups[ix].append(p)
    head: list[Obj] = []
    for ix in order:
        group = groups[ix]
        if ix == podutil.UNKNOWN_INDEX:
            head.extend(group)
        elif len(group) == 1:
            left.append(group[0])
        else:
            ranked = podutil.sort_for_deletion(group)
            head.extend(ranked[:-1])
            left.append(ranked[-1])
    return head + rm, left


def pods_for_removal(job: Obj, active_pods: list[Obj], rm_at_least: int) -> list[Obj]:
    """activePodsForRemoval (§3.5)."""
    if is_indexed(job):
        rm, left = _duplicated_index_removal(active_pods, completions_of(job) or 0)
    else:
        rm, left = [], list(active_pods)
    if len(rm) < rm_at_least:
        rm.extend(podutil.sort_for_deletion(left)[: rm_at_least - len(rm)])
    return rm


def first_pending_indexes(ctx: SyncContext, count: int, completions: int) -> list[int]:
    """The lowest ``count`` indexes not succeeded, active, failed (or terminating under Failed)."""
    if count <= 0:
        return []
    busy = {podutil.completion_index(p) for p in ctx.active_pods}
    if only_replace_failed_pods(ctx.job):
        busy.update(podutil.completion_index(p) for p in ctx.pods if podutil.is_terminating(p))
    if ctx.failed_indexes:
        busy.update(ctx.failed_indexes)
    result: list[int] = []
    for candidate in ctx.succeeded_indexes.missing(completions):  # skips completed runs
        if candidate not in busy:
            result.append(candidate)
            if len(result) >= count:
                break
    return result


def slow_start_batches(total: int, initial: int = 1) -> list[int]:
    """Batch sizes 1, 2, 4, ... (each min(2*prev, remaining)) summing to ``total``."""
    batches: list[int] = []
    remaining = total
    size = min(total, initial)
    while remaining > 0:
        batches.append(size)
        remaining -= size
        size = min(2 * size, remaining)
    return batches


def pod_generate_name(job_name: str, index: int | None) -> str:
    if index is None:
        return f"{job_name}-"
    suffix = f"-{index}-"
    prefix = job_name + suffix
    if len(prefix) > MAX_GENERATED_NAME_PREFIX:
        prefix = prefix[: MAX_GENERATED_NAME_PREFIX - len(suffix)] + suffix
    return prefix


def _add_index_env(container: Obj) -> None:
    env: list[Obj] = container.setdefault("env", [])
    if any(e.get("name") == COMPLETION_INDEX_ENV for e in env):
        return
    env.append(
        {
            "name": COMPLETION_INDEX_ENV,
            "valueFrom": {
                "fieldRef": {
                    "apiVersion": "v1",
                    "fieldPath": f"metadata.labels['{podutil.COMPLETION_INDEX_KEY}']",
                }
            },
        }
    )


def new_index_failure_counts(job: Obj, replaced: Obj | None) -> tuple[int, int]:
    """(failure-count, ignored-failure-count) for the replacement of ``replaced``."""
    if replaced is None:
        return 0, 0
    failures = podutil.index_failure_count(replaced)
    ignored = podutil.index_ignored_failure_count(replaced)
    policy = spec_of(job).get("podFailurePolicy")
    if policy is not None and not match_pod_failure_policy(policy, replaced).count_failed:
        ignored += 1
    else:
        failures += 1
    return failures, ignored


def build_pod(job: Obj, index: int | None = None, replaced: Obj | None = None) -> Obj:
    """A new pod for the Job from its template (§3.6, §3.7)."""
    meta = job.get("metadata") or {}
    template = deep_copy(spec_of(job).get("template") or {})
    tmeta: Obj = template.get("metadata") or {}
    spec: Obj = template.get("spec") or {}
    labels = dict(tmeta.get("labels") or {})
    annotations = dict(tmeta.get("annotations") or {})
    finalizers = list(tmeta.get("finalizers") or [])
    if podutil.TRACKING_FINALIZER not in finalizers:
        finalizers.append(podutil.TRACKING_FINALIZER)
    if is_indexed(job):
        for key in ("initContainers", "containers"):
            for c in spec.get(key) or []:
                _add_index_env(c)
    if index is not None:
        annotations[podutil.COMPLETION_INDEX_KEY] = str(index)
        labels[podutil.COMPLETION_INDEX_KEY] = str(index)
        spec["hostname"] = f"{meta.get('name', '')}-{index}"
        if has_backoff_limit_per_index(job):
            failures, ignored = new_index_failure_counts(job, replaced)
            annotations[podutil.INDEX_FAILURE_COUNT_KEY] = str(failures)
            if ignored > 0:
                annotations[podutil.INDEX_IGNORED_FAILURE_COUNT_KEY] = str(ignored)
    pod_meta: Obj = {
        "generateName": pod_generate_name(str(meta.get("name", "")), index),
        "namespace": meta.get("namespace", ""),
    }
    if labels:
        pod_meta["labels"] = labels
    if annotations:
        pod_meta["annotations"] = annotations
    pod_meta["finalizers"] = finalizers
    pod_meta["ownerReferences"] = [owner_ref(job, "batch/v1", "Job")]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": spec}


def plan_manage(ctx: SyncContext, now: datetime, config: JobControllerConfig) -> ManagePlan:
    """manageJob (§3.4): deletions take precedence over creations in one pass."""
    job = ctx.job
    active = len(ctx.active_pods)
    if is_suspended(job):
        return ManagePlan(delete=pods_for_removal(job, ctx.active_pods, active), action="pods_deleted")
    want = want_active(job, active, ctx.succeeded)
    rm_at_least = max(active - want, 0)
    to_delete = pods_for_removal(job, ctx.active_pods, rm_at_least)[: config.max_pod_create_delete_per_sync]
    if to_delete:
        return ManagePlan(delete=to_delete, action="pods_deleted")
    terminating = ctx.terminating if only_replace_failed_pods(job) else 0
    diff = want - terminating - active
    if diff <= 0:
        return ManagePlan(action="tracking")
    base, cap = config.pod_failure_backoff, config.pod_failure_backoff_max
    if not has_backoff_limit_per_index(job):
        remaining = remaining_time(ctx.new_backoff, now, base, cap)
        if remaining > 0:
            return ManagePlan(requeue_after=remaining, action="pods_created")
    diff = min(diff, config.max_pod_create_delete_per_sync)
    if is_indexed(job):
        indexes = first_pending_indexes(ctx, diff, completions_of(job) or 0)
        if has_backoff_limit_per_index(job):
            ready_now: list[int] = []
            min_remaining: float | None = None
            for ix in indexes:
                rem = remaining_time_per_index(ctx.delayed_deletion.get(ix), now, base, cap)
                if rem == 0:
                    ready_now.append(ix)
                elif min_remaining is None or rem < min_remaining:
                    min_remaining = rem
            if not ready_now and min_remaining is not None:
                return ManagePlan(requeue_after=min_remaining, action="pods_created")
            indexes = ready_now
        pods = [build_pod(job, ix, ctx.delayed_deletion.get(ix)) for ix in indexes]
    else:
        pods = [build_pod(job) for _ in range(diff)]
    return ManagePlan(create=pods, batches=slow_start_batches(len(pods)), action="pods_created")


def decide_completion(ctx: SyncContext, manage_called: bool, now: datetime) -> bool:
    """§3.3 step 9 after manageJob. Returns whether the Suspended condition changed."""
    job = ctx.job
    completions = completions_of(job)
    if completions is None:
        complete = ctx.succeeded > 0 and ctx.active == 0
    else:
        complete = ctx.succeeded >= completions and ctx.active == 0
    if complete:
        ctx.finished_condition = new_condition(
            SUCCESS_CRITERIA_MET, "True", REASON_COMPLETIONS_REACHED, MSG_COMPLETIONS_REACHED, now
        )
        return False
    if not manage_called:
        return False
    conditions: list[Obj] = status_of(job).setdefault("conditions", [])
    if is_suspended(job):
        if ensure_condition(conditions, SUSPENDED, "True", "JobSuspended", "Job suspended", now):
            ctx.events.append(EventSpec("Normal", "Suspended", "Job suspended"))
            return True
        return False
    if ensure_condition(conditions, SUSPENDED, "False", "JobResumed", "Job resumed", now):
        ctx.events.append(EventSpec("Normal", "Resumed", "Job resumed"))
        status_of(job)["startTime"] = rfc3339(now)
        return True
    return False


def apply_active_counts(ctx: SyncContext, suspend_changed: bool) -> bool:
    """Write active/ready/terminating into status; True when that is a change to flush."""
    status = status_of(ctx.job)
    needs = (
        suspend_changed
        or ctx.start_time_changed
        or ctx.active != status.get("active", 0)
        or status.get("ready") != ctx.ready
        or status.get("terminating") != ctx.terminating
    )
    status["active"] = ctx.active
    status["ready"] = ctx.ready
    status["terminating"] = ctx.terminating
    return needs


# -- tracking with finalizers ----------------------------------------------------------------


@dataclass
class TrackingPlan:
    pods_to_remove_finalizer: list[Obj]
    uids_with_finalizer: set[str]
    needs_flush: bool
    reached_max_uncounted: bool
    policy_actions: dict[str, int] = field(default_factory=dict)


def can_remove_finalizer(ctx: SyncContext, pod: Obj, considered_failed: bool) -> bool:
    if podutil.deleting(ctx.job) or ctx.finished_condition is not None or podutil.phase(pod) == "Succeeded":
        return True
    if not considered_failed:
        return False
    if has_backoff_limit_per_index(ctx.job):
        ix = podutil.completion_index(pod)
        held = ctx.delayed_deletion.get(ix)
        if held is not None and podutil.uid(held) == podutil.uid(pod):
            return False
    return True


def count_removed_finalizers(status: Obj, uids_with_finalizer: set[str]) -> bool:
    """cleanUncountedPodsWithoutFinalizers: move UIDs whose finalizer is gone into counters."""
    uncounted: Obj = status.setdefault("uncountedTerminatedPods", {})
    updated = False
    for key in ("succeeded", "failed"):
        uids = list(uncounted.get(key) or [])
        keep = [u for u in uids if u in uids_with_finalizer]
        if len(keep) != len(uids):
            updated = True
            status[key] = int(status.get(key) or 0) + len(uids) - len(keep)
            uncounted[key] = keep
    return updated


def plan_tracking(ctx: SyncContext, needs_flush: bool, now: datetime, config: JobControllerConfig) -> TrackingPlan:
    """trackJobStatusAndRemoveFinalizers up to the first status write (§3.14 steps 1-4)."""
    job = ctx.job
    status = status_of(job)
    indexed = is_indexed(job)
    completions = completions_of(job)
    pods = sorted(ctx.pods, key=podutil.completion_index) if indexed else ctx.pods
    uids_with_finalizer = {
        podutil.uid(p)
        for p in pods
        if podutil.has_tracking_finalizer(p) and podutil.uid(p) not in ctx.expected_rm_finalizers
    }
    if count_removed_finalizers(status, uids_with_finalizer):
        needs_flush = True
    uncounted: Obj = status["uncountedTerminatedPods"]
    unc_succeeded: list[str] = uncounted.setdefault("succeeded", [])
    unc_failed: list[str] = uncounted.setdefault("failed", [])
    policy = spec_of(job).get("podFailurePolicy")
    finished = ctx.finished_condition
    failing = finished is not None and finished.get("type") != SUCCESS_CRITERIA_MET
    to_remove: list[Obj] = []
    new_indexes: list[int] = []
    actions: dict[str, int] = {}
    reached_max = False
    for pod in pods:
        uid = podutil.uid(pod)
        if not podutil.has_tracking_finalizer(pod) or uid in ctx.expected_rm_finalizers:
            continue
        considered_failed = is_pod_failed(pod, job)
        if not can_remove_finalizer(ctx, pod, considered_failed):
            continue
        to_remove.append(pod)
        if podutil.phase(pod) == "Succeeded" and uid not in ctx.uncounted_failed:
            if indexed:
                ix = podutil.completion_index(pod)
                if _valid_index(pod, completions) and ix not in ctx.prev_succeeded_indexes:
                    new_indexes.append(ix)
                    needs_flush = True
            elif uid not in ctx.uncounted_succeeded:
                unc_succeeded.append(uid)
                needs_flush = True
        elif (considered_failed or failing) and (
            uid not in ctx.uncounted_failed and (not indexed or _valid_index(pod, completions))
        ):
            if policy is not None:
                verdict = match_pod_failure_policy(policy, pod)
                if verdict.action is not None:
                    actions[verdict.action] = actions.get(verdict.action, 0) + 1
                if verdict.count_failed:
                    unc_failed.append(uid)
                    needs_flush = True
            else:
                unc_failed.append(uid)
                needs_flush = True
        if len(new_indexes) + len(unc_succeeded) + len(unc_failed) >= config.max_uncounted_pods:
            reached_max = True
            break
    if indexed:
        ctx.succeeded_indexes = ctx.succeeded_indexes.with_indexes(new_indexes)
        completed = ctx.succeeded_indexes.format()
        if completed != (status.get("completedIndexes") or ""):
            needs_flush = True
        status["succeeded"] = len(ctx.succeeded_indexes)
        status["completedIndexes"] = completed
        failed_str = format_intervals(ctx.failed_indexes) if ctx.failed_indexes is not None else None
        if failed_str != status.get("failedIndexes"):
            needs_flush = True
            if failed_str is None:
                status.pop("failedIndexes", None)
            else:
                status["failedIndexes"] = failed_str
    conditions: list[Obj] = status.setdefault("conditions", [])
    if finished is not None and finished.get("type") == FAILURE_TARGET:
        conditions.append(finished)
        needs_flush = True
        finished = new_condition(FAILED, "True", str(finished["reason"]), str(finished["message"]), now)
    if finished is not None and finished.get("type") == SUCCESS_CRITERIA_MET:
        existing = find_condition(conditions, SUCCESS_CRITERIA_MET)
        if existing is None or existing.get("status") != "True":
            conditions.append(finished)
            needs_flush = True
        finished = new_condition(COMPLETE, "True", str(finished.get("reason", "")), str(finished.get("message", "")), now)
    ctx.finished_condition = finished
    return TrackingPlan(to_remove, uids_with_finalizer, needs_flush, reached_max, actions)


def enact_finished(ctx: SyncContext, now: datetime) -> bool:
    """Add Complete/Failed once nothing is uncounted and nothing terminates (§3.14 step 5)."""
    finished = ctx.finished_condition
    if finished is None:
        return False
    status = status_of(ctx.job)
    uncounted = status.get("uncountedTerminatedPods") or {}
    if uncounted.get("succeeded") or uncounted.get("failed"):
        return False
    if ctx.terminating > 0:
        return False
    ensure_condition(
        status.setdefault("conditions", []),
        str(finished["type"]),
        str(finished["status"]),
        str(finished.get("reason", "")),
        str(finished.get("message", "")),
        now,
    )
    if finished["type"] == COMPLETE:
        status["completionTime"] = finished["lastTransitionTime"]
    return True


def finished_events(job: Obj, finished: Obj) -> list[EventSpec]:
    """Events after the finishing status write (recordJobFinished)."""
    if finished.get("type") == COMPLETE:
        events: list[EventSpec] = []
        completions = completions_of(job)
        if completions is not None and int(status_of(job).get("succeeded") or 0) > completions:
            events.append(
                EventSpec(
                    "Warning",
                    "TooManySucceededPods",
                    "Too many succeeded pods running after completion count reached",
                )
            )
        events.append(EventSpec("Normal", "Completed", "Job completed"))
        return events
    return [EventSpec("Warning", str(finished.get("reason", "")), str(finished.get("message", "")))]


def status_for_write(job: Obj) -> Obj:
    """The Job with its status normalised for the wire (empty uncounted lists omitted)."""
    status = status_of(job)
    uncounted = status.get("uncountedTerminatedPods") or {}
    status["uncountedTerminatedPods"] = {k: list(v) for k, v in uncounted.items() if v}
    return job
