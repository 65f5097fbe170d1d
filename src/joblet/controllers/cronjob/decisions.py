"""Pure decisions of one CronJob sync: (cronjob, its Jobs, now) -> a plan.

The CronJob controller (upstream ``syncCronJob`` + ``cleanupFinishedJobs``) is a sequence
of decisions interleaved with a few API calls. The decisions live here, without I/O, so
every branch is a table test with a fake ``now``; ``controller.py`` only gathers inputs
(informer caches, a couple of live reads) and applies the :class:`SyncPlan`.

Differences from upstream, on purpose:

* more than 100 missed start times emit ``TooManyMissedTimes`` but the most recent missed
  time still runs (a CronJob never stops for good after a long outage or suspension);
* a Job started by hand (annotation ``cronjob.kubernetes.io/instantiate: manual``) is not
  reported as ``UnexpectedJob``;
* ``lastSuccessfulTime`` is taken from every succeeded child in the same sync, also the
  one just removed from ``active`` (upstream needs one more sync for that).
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from joblet.clock import parse_time_or_none, rfc3339
from joblet.controllers.cronjob import schedule as cron
from joblet.objects import job_finished

Obj = dict[str, Any]

NORMAL = "Normal"
WARNING = "Warning"
DEFAULT_SUCCESSFUL_HISTORY = 3
DEFAULT_FAILED_HISTORY = 1
#: Jobs started by hand (``create job --from=cronjob/X``) are children but not "unexpected".
MANUAL_ANNOTATION = cron.MANUAL_ANNOTATION


@dataclass(frozen=True)
class PlannedEvent:
    type: str
    reason: str
    message: str


@dataclass
class SyncPlan:
    """What one sync should do, in order: events, Replace deletes, create, history deletes,
    then write ``status`` if ``status_changed``, then requeue after ``requeue_after`` s."""

    status: Obj
    status_changed: bool = False
    events: list[PlannedEvent] = field(default_factory=list)
    replace_deletes: list[Obj] = field(default_factory=list)   # ObjectReferences from status.active
    create: Obj | None = None
    scheduled_time: datetime | None = None
    history_deletes: list[Obj] = field(default_factory=list)   # finished child Jobs
    requeue_after: float | None = None

    def warnings(self) -> list[PlannedEvent]:
        return [e for e in self.events if e.type == WARNING]


# -- small predicates ----------------------------------------------------------------------


def is_child_of(job: Obj, cj: Obj) -> bool:
    """Upstream matches children by their controllerRef's name (kind CronJob)."""
    for ref in (job.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller") and ref.get("kind") == "CronJob":
            return bool(ref.get("name") == (cj.get("metadata") or {}).get("name"))
    return False


def is_controlled_by(job: Obj, cj: Obj) -> bool:
    uid = (cj.get("metadata") or {}).get("uid")
    return any(ref.get("controller") and ref.get("uid") == uid
               for ref in (job.get("metadata") or {}).get("ownerReferences") or [])


def job_ref(job: Obj) -> Obj:
    """The ObjectReference stored in ``status.active``."""
    meta = job.get("metadata") or {}
    ref: Obj = {"apiVersion": "batch/v1", "kind": "Job", "name": meta.get("name", ""),
                "namespace": meta.get("namespace", ""), "uid": meta.get("uid", "")}
    if meta.get("resourceVersion"):
        ref["resourceVersion"] = str(meta["resourceVersion"])
    return ref


def status_after_create(status: Obj, job: Obj, scheduled_time: datetime) -> Obj:
    """The status once ``job`` exists for ``scheduled_time`` (appended to active)."""
    new = copy.deepcopy(status)
    uid = (job.get("metadata") or {}).get("uid")
    active = [r for r in new.get("active") or [] if r.get("uid") != uid]
    new["active"] = [*active, job_ref(job)]
    new["lastScheduleTime"] = rfc3339(scheduled_time)
    return new


def unexpected_children(cj: Obj, jobs: Iterable[Obj]) -> list[Obj]:
    """Unfinished children not in ``status.active`` (the reconciler re-reads the CronJob first)."""
    active = {r.get("uid") for r in (cj.get("status") or {}).get("active") or []}
    return [j for j in jobs if is_child_of(j, cj) and job_finished(j) is None
            and (j.get("metadata") or {}).get("uid") not in active]


def unseen_active_refs(cj: Obj, jobs: Iterable[Obj]) -> list[Obj]:
    """``status.active`` entries with no child Job in the cache (to check against the API)."""
    uids = {(j.get("metadata") or {}).get("uid") for j in jobs if is_child_of(j, cj)}
    return [r for r in (cj.get("status") or {}).get("active") or [] if r.get("uid") not in uids]


def _start_key(job: Obj) -> tuple[int, datetime, str]:
    start = parse_time_or_none((job.get("status") or {}).get("startTime"))
    name = str((job.get("metadata") or {}).get("name", ""))
    if start is None:
        return (1, datetime.min.replace(tzinfo=UTC), name)
    return (0, start, name)


def oldest_over_limit(jobs: list[Obj], limit: int) -> list[Obj]:
    """The Jobs to delete to keep ``limit``: oldest startTime first, no startTime last, ties by name."""
    if len(jobs) <= limit:
        return []
    return sorted(jobs, key=_start_key)[: len(jobs) - limit]


def history_to_delete(cj: Obj, children: list[Obj]) -> list[Obj]:
    """``cleanupFinishedJobs``: finished Jobs beyond successful/failed history limits."""
    if (cj.get("metadata") or {}).get("deletionTimestamp"):
        return []
    spec = cj.get("spec") or {}
    ok_limit = spec.get("successfulJobsHistoryLimit")
    failed_limit = spec.get("failedJobsHistoryLimit")
    succeeded = [j for j in children if job_finished(j) == "Complete"]
    failed = [j for j in children if job_finished(j) == "Failed"]
    out: list[Obj] = []
    out += oldest_over_limit(succeeded, DEFAULT_SUCCESSFUL_HISTORY if ok_limit is None else int(ok_limit))
    out += oldest_over_limit(failed, DEFAULT_FAILED_HISTORY if failed_limit is None else int(failed_limit))
    return out


def _seconds(d: timedelta | None) -> float | None:
    return None if d is None else d.total_seconds()


# -- the sync ------------------------------------------------------------------------------


def sync_decision(cj: Obj, jobs: Iterable[Obj], now: datetime,
                  missing: Collection[str] | None = None) -> SyncPlan:
    """Decide one sync of ``cj`` at ``now``.

    ``jobs``: Jobs of the namespace (non-children are ignored). ``missing``: names of
    ``status.active`` Jobs confirmed absent in the API; None means every active Job not
    among ``jobs`` is missing.
    """
    children = [j for j in jobs if is_child_of(j, cj)]
    meta = cj.get("metadata") or {}
    spec = cj.get("spec") or {}
    status = copy.deepcopy(cj.get("status") or {})
    plan = SyncPlan(status=status)

    def event(etype: str, reason: str, message: str) -> None:
        plan.events.append(PlannedEvent(etype, reason, message))

    def drop_active(uid: str) -> None:
        status["active"] = [r for r in status.get("active") or [] if r.get("uid") != uid]
        plan.status_changed = True

    # 3. reconcile status.active and lastSuccessfulTime with the children.
    active_uids = {r.get("uid") for r in status.get("active") or []}
    for job in children:
        jmeta = job.get("metadata") or {}
        name, uid = jmeta.get("name", ""), jmeta.get("uid", "")
        finished = job_finished(job)
        manual = (jmeta.get("annotations") or {}).get(MANUAL_ANNOTATION) == "manual"
        if uid not in active_uids and finished is None and not manual:
            event(WARNING, "UnexpectedJob", f"Saw a job that the controller did not create or forgot: {name}")
        elif uid in active_uids and finished is not None:
            drop_active(uid)
            event(NORMAL, "SawCompletedJob", f"Saw completed job: {name}, status: {finished}")
        if finished == "Complete":
            done = parse_time_or_none((job.get("status") or {}).get("completionTime"))
            last = parse_time_or_none(status.get("lastSuccessfulTime"))
            if done is not None and (last is None or done > last):
                status["lastSuccessfulTime"] = rfc3339(done)
                plan.status_changed = True
    child_uids = {(j.get("metadata") or {}).get("uid") for j in children}
    for ref in list(status.get("active") or []):
        if ref.get("uid") in child_uids:
            continue
        if missing is None or ref.get("name") in missing:
            drop_active(str(ref.get("uid")))
            event(NORMAL, "MissingJob", f"Active job went missing: {ref.get('name')}")

    # 2. history cleanup (upstream runs it after the sync; the order does not matter here).
    plan.history_deletes = history_to_delete(cj, children)
    deleted = {(j.get("metadata") or {}).get("uid") for j in plan.history_deletes}
    if any(r.get("uid") in deleted for r in status.get("active") or []):
        status["active"] = [r for r in status.get("active") or [] if r.get("uid") not in deleted]
        plan.status_changed = True

    # 4-6. deletion, time zone, suspend, schedule.
    if meta.get("deletionTimestamp"):
        return plan
    tz_name = spec.get("timeZone")
    if tz_name is not None:
        try:
            cron.load_zone(str(tz_name))
        except cron.UnknownTimeZoneError as exc:
            event(WARNING, "UnknownTimeZone", f'invalid timeZone: "{tz_name}": {exc}')
            return plan
    if spec.get("suspend"):
        return plan
    schedule_text = str(spec.get("schedule") or "")
    if "TZ" in schedule_text:
        event(WARNING, "UnsupportedSchedule", "CRON_TZ or TZ used in schedule \"" + schedule_text
              + "\" is not officially supported, see https://kubernetes.io/docs/concepts/workloads/"
              "controllers/cron-jobs/ for more details")
    try:
        sched = cron.cronjob_schedule(cj)
    except cron.ScheduleError as exc:
        event(WARNING, "UnparseableSchedule", f'unparseable schedule: "{schedule_text}" : {exc}')
        return plan
    cj_now = {**cj, "status": status}

    # 7. the most recent unmet time (deadline applied).
    try:
        recent = cron.most_recent_schedule_time(cj_now, now, True, sched)
    except cron.InvalidScheduleError as exc:
        event(WARNING, "InvalidSchedule", f"invalid schedule: {schedule_text} : {exc}")
        return plan
    if recent.missed is cron.MissedSchedules.MANY:
        event(WARNING, "TooManyMissedTimes", "too many missed start times. Set or decrease "
              ".spec.startingDeadlineSeconds or check clock skew")
    scheduled = recent.most_recent
    plan.requeue_after = _seconds(cron.next_schedule_time_duration(cj_now, now, sched))
    if scheduled is None:
        return plan

    # 8. too late for the starting deadline.
    sds = spec.get("startingDeadlineSeconds")
    if sds is not None and scheduled + timedelta(seconds=int(sds)) < now:
        event(WARNING, "MissSchedule", "Missed scheduled time to start a job: "
              + scheduled.astimezone(UTC).strftime("%a, %d %b %Y %H:%M:%S +0000"))
        return plan

    # 9. already handled.
    name = cron.job_name(str(meta.get("name", "")), scheduled)
    last = parse_time_or_none(status.get("lastScheduleTime"))
    if any(r.get("name") == name for r in status.get("active") or []) or last == scheduled:
        return plan

    # 10-11. concurrency policy.
    policy = spec.get("concurrencyPolicy") or "Allow"
    if policy == "Forbid" and status.get("active"):
        event(NORMAL, "JobAlreadyActive",
              "Not starting job because prior execution is running and concurrency policy is Forbid")
        return plan
    if policy == "Replace" and status.get("active"):
        plan.replace_deletes = list(status["active"])
        status["active"] = []
        plan.status_changed = True

    # 12-13. create, and requeue for the slot after this one.
    plan.create = cron.job_from_template(cj, scheduled)
    plan.scheduled_time = scheduled
    after = {**cj, "status": {**status, "lastScheduleTime": rfc3339(scheduled)}}
    plan.requeue_after = _seconds(cron.next_schedule_time_duration(after, now, sched))
    return plan
