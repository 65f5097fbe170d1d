"""CronJob schedule math: pure functions of (cronjob, now), mirroring upstream's utils.go.

Kubernetes' CronJob controller decides everything from a handful of helpers in
``pkg/controller/cronjob/utils.go``; the conformance tables (cron-schedule-math.yaml) are
written against them. This module is those helpers in Python, with the same names in
snake_case and the same arguments, so the tables run against them directly:

* :func:`most_recent_schedule_time` - ``mostRecentScheduleTime(cj, now, schedule, includeSDS)``
* :func:`next_schedule_time` - ``nextScheduleTime(cj, now, schedule)`` (the time to run now)
* :func:`next_schedule_time_duration` - ``nextScheduleTimeDuration(cj, now, schedule)``
* :func:`job_from_template` - ``getJobFromTemplate2(cj, scheduledTime)``
* :func:`next_after` - robfig's ``Schedule.Next(t)``, iterated with croniter

Where robfig/cron and croniter differ, robfig wins (that is what Kubernetes runs):
``@every`` is a fixed interval from ``t`` truncated to the second; a wall-clock time that
does not exist because of a DST spring-forward is skipped (croniter would run it at the
shifted time); a time repeated by a DST fall-back runs twice, as in robfig; a schedule
that never fires (``59 23 31 2 *``) yields ``None`` (robfig's zero time). A CronJob
without ``timeZone`` is evaluated in UTC (upstream: the controller manager's zone, UTC
in practice).
"""

from __future__ import annotations

import copy
import enum
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from croniter.croniter import CroniterError

from joblet.api.validation.cron import CronSchedule, ScheduleError, parse_standard
from joblet.clock import parse_time_or_none
from joblet.objects import owner_ref

Obj = dict[str, Any]

#: Added to every requeue so the sync lands just after the scheduled second (NTP skew).
NEXT_SCHEDULE_DELTA = timedelta(milliseconds=100)
#: More missed start times than this emit TooManyMissedTimes (joblet still runs the latest).
MANY_MISSED_THRESHOLD = 100
SCHEDULED_TIMESTAMP_ANNOTATION = "batch.kubernetes.io/cronjob-scheduled-timestamp"


class MissedSchedules(enum.Enum):
    NONE = "none"
    FEW = "few"
    MANY = "many"


class InvalidScheduleError(ValueError):
    """The schedule fires at most once (or never): upstream's InvalidSchedule."""


class UnknownTimeZoneError(ValueError):
    """``spec.timeZone`` does not load from tzdata."""


class MostRecent(NamedTuple):
    earliest: datetime
    most_recent: datetime | None
    missed: MissedSchedules
    missed_count: int


# -- schedule and zone of a CronJob -------------------------------------------------------


def load_zone(name: str) -> tzinfo:
    """A tzdata zone; ``UnknownTimeZoneError`` with Go's message otherwise."""
    if not name or name.lower() == "local":
        raise UnknownTimeZoneError(f"unknown time zone {name}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise UnknownTimeZoneError(f"unknown time zone {name}") from exc


def cronjob_zone(cj: Obj, schedule: CronSchedule | None = None) -> tzinfo:
    """The zone the schedule is evaluated in: ``spec.timeZone``, a ``TZ=`` prefix, else UTC."""
    tz_name = (cj.get("spec") or {}).get("timeZone")
    if tz_name is not None:
        return load_zone(str(tz_name))
    if schedule is not None and schedule.location:
        return load_zone(schedule.location)
    return UTC


def cronjob_schedule(cj: Obj) -> CronSchedule:
    """Parse ``spec.schedule`` (raises :class:`ScheduleError`)."""
    return parse_standard(str((cj.get("spec") or {}).get("schedule") or ""))


# -- Next --------------------------------------------------------------------------------


@lru_cache(maxsize=512)
def _hours_minutes(expression: str) -> tuple[frozenset[int] | None, frozenset[int] | None]:
    expanded, _ = croniter.expand(expression)

    def values(field: list[Any]) -> frozenset[int] | None:
        return None if field == ["*"] else frozenset(int(v) for v in field)

    return values(expanded[1]), values(expanded[0])


def _wall_clock_matches(schedule: CronSchedule, local: datetime) -> bool:
    hours, minutes = _hours_minutes(schedule.expression)
    return (hours is None or local.hour in hours) and (minutes is None or local.minute in minutes)


def next_after(schedule: CronSchedule, t: datetime, zone: tzinfo = UTC) -> datetime | None:
    """The first activation strictly after ``t`` (robfig ``Next``), in UTC; None if never."""
    t = t.astimezone(UTC)
    if schedule.every_seconds is not None:
        return t.replace(microsecond=0) + timedelta(seconds=schedule.every_seconds)
    start = t.astimezone(zone)
    for _ in range(64):  # each loop skips one DST-shifted candidate at most
        try:
            candidate: datetime = croniter(schedule.expression, start).get_next(datetime)
        except (CroniterError, OverflowError):
            return None
        local = candidate.astimezone(zone)
        if candidate.astimezone(UTC) > t and _wall_clock_matches(schedule, local):
            return candidate.astimezone(UTC)
        start = local if candidate.astimezone(UTC) > t else start + timedelta(minutes=1)
    return None


def next_times(schedule: CronSchedule, after: datetime, count: int, zone: tzinfo = UTC) -> list[datetime]:
    """The next ``count`` activations after ``after`` (fewer if the schedule runs out)."""
    out: list[datetime] = []
    t: datetime | None = after
    while len(out) < count and t is not None:
        t = next_after(schedule, t, zone)
        if t is not None:
            out.append(t)
    return out


# -- upstream utils.go -------------------------------------------------------------------


def _schedule_and_zone(cj: Obj, schedule: CronSchedule | None) -> tuple[CronSchedule, tzinfo]:
    schedule = schedule if schedule is not None else cronjob_schedule(cj)
    return schedule, cronjob_zone(cj, schedule)


def most_recent_schedule_time(
    cj: Obj,
    now: datetime,
    include_starting_deadline_seconds: bool = True,
    schedule: CronSchedule | None = None,
) -> MostRecent:
    """``mostRecentScheduleTime``: (earliest, most recent unmet time or None, missed class, count).

    Raises :class:`InvalidScheduleError` when two consecutive activations are less than a
    second apart (or the schedule never fires), :class:`ScheduleError` /
    :class:`UnknownTimeZoneError` for a bad schedule or zone.
    """
    schedule, zone = _schedule_and_zone(cj, schedule)
    meta = cj.get("metadata") or {}
    spec = cj.get("spec") or {}
    status = cj.get("status") or {}
    earliest = parse_time_or_none(status.get("lastScheduleTime")) or parse_time_or_none(
        meta.get("creationTimestamp")) or now
    sds = spec.get("startingDeadlineSeconds")
    if include_starting_deadline_seconds and sds is not None:
        deadline = now - timedelta(seconds=int(sds))
        earliest = max(earliest, deadline)

    t1 = next_after(schedule, earliest, zone)
    t2 = next_after(schedule, t1, zone) if t1 is not None else None
    if t1 is not None and now < t1:
        return MostRecent(earliest, None, MissedSchedules.NONE, 0)
    if t2 is not None and now < t2:
        return MostRecent(earliest, t1, MissedSchedules.NONE, 1)
    if t1 is None or t2 is None or round((t2 - t1).total_seconds()) < 1:
        raise InvalidScheduleError("time difference between two schedules is less than 1 second")

    # Upstream's estimate: how many t2-t1 gaps fit between t1 and now, then walk forward
    # from one gap before the estimated last one (exact for regular schedules and @every).
    between = round((t2 - t1).total_seconds())
    elapsed = int((now - t1).total_seconds())
    missed_count = elapsed // between + 1
    potential_earliest = t1 + timedelta(seconds=(missed_count - 2) * between)
    most_recent: datetime | None = None
    t = next_after(schedule, potential_earliest, zone)
    while t is not None and t <= now:
        most_recent = t
        t = next_after(schedule, t, zone)

    missed = MissedSchedules.NONE
    if missed_count > MANY_MISSED_THRESHOLD:
        missed = MissedSchedules.MANY
    elif missed_count > 1:
        missed = MissedSchedules.FEW
    return MostRecent(earliest, most_recent, missed, missed_count)


def next_schedule_time(cj: Obj, now: datetime, schedule: CronSchedule | None = None) -> datetime | None:
    """``nextScheduleTime``: the unmet time to start a Job for now (deadline applied), or None."""
    return most_recent_schedule_time(cj, now, True, schedule).most_recent


def next_schedule_time_duration(
    cj: Obj, now: datetime, schedule: CronSchedule | None = None
) -> timedelta | None:
    """``nextScheduleTimeDuration``: how long until the next activation after the last
    handled one, plus 100 ms; never negative. None if the schedule never fires again."""
    schedule, zone = _schedule_and_zone(cj, schedule)
    base: datetime
    try:
        earliest, recent, missed, _ = most_recent_schedule_time(cj, now, False, schedule)
    except InvalidScheduleError:
        base = now
    else:
        if recent is not None:
            base = recent
        elif missed is MissedSchedules.NONE:
            base = earliest
        else:
            base = now
    nxt = next_after(schedule, base, zone)
    if nxt is None:
        return None
    return max(nxt + NEXT_SCHEDULE_DELTA - now, timedelta(0))


# -- Jobs made from a CronJob -----------------------------------------------------------


def job_name(cronjob_name: str, scheduled_time: datetime) -> str:
    """``<cronjob>-<minutes since the epoch>``: deterministic per slot, so never created twice."""
    return f"{cronjob_name}-{int(scheduled_time.timestamp()) // 60}"


def format_rfc3339_in(t: datetime, zone: tzinfo) -> str:
    """Go's ``t.In(zone).Format(time.RFC3339)``: ``Z`` for a zero offset, else ``+hh:mm``."""
    local = t.astimezone(zone)
    offset = local.utcoffset() or timedelta(0)
    if offset == timedelta(0):
        return local.strftime("%Y-%m-%dT%H:%M:%SZ")
    return local.isoformat(timespec="seconds")


def cronjob_owner_ref(cj: Obj) -> Obj:
    return owner_ref(cj, "batch/v1", "CronJob")


def job_from_template(cj: Obj, scheduled_time: datetime) -> Obj:
    """``getJobFromTemplate2``: the Job a CronJob starts for ``scheduled_time``."""
    spec = cj.get("spec") or {}
    template = spec.get("jobTemplate") or {}
    template_meta = template.get("metadata") or {}
    tz_name = spec.get("timeZone")
    zone = load_zone(str(tz_name)) if tz_name else UTC
    annotations = dict(template_meta.get("annotations") or {})
    annotations[SCHEDULED_TIMESTAMP_ANNOTATION] = format_rfc3339_in(scheduled_time, zone)
    meta = cj.get("metadata") or {}
    job_meta: Obj = {
        "name": job_name(str(meta.get("name", "")), scheduled_time),
        "namespace": meta.get("namespace", ""),
        "annotations": annotations,
        "ownerReferences": [cronjob_owner_ref(cj)],
    }
    labels = dict(template_meta.get("labels") or {})
    if labels:
        job_meta["labels"] = labels
    if not job_meta["namespace"]:
        del job_meta["namespace"]
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": job_meta,
            "spec": copy.deepcopy(template.get("spec") or {})}


#: Jobs started by hand (``kubectl create job --from=cronjob/X``, the dashboard's Run now)
MANUAL_ANNOTATION = "cronjob.kubernetes.io/instantiate"


def manual_job(cj: Obj, job_name: str) -> Obj:
    """The Job ``kubectl create job NAME --from=cronjob/X`` makes: the jobTemplate, its labels
    and annotations plus ``cronjob.kubernetes.io/instantiate: manual``, owned by the CronJob."""
    spec = cj.get("spec") or {}
    template = spec.get("jobTemplate") or {}
    template_meta = template.get("metadata") or {}
    meta = cj.get("metadata") or {}
    annotations = {MANUAL_ANNOTATION: "manual", **(template_meta.get("annotations") or {})}
    job_meta: Obj = {
        "name": job_name,
        "namespace": meta.get("namespace", "default"),
        "annotations": annotations,
        "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": meta.get("name", ""),
                             "uid": meta.get("uid", ""), "controller": True}],
    }
    if template_meta.get("labels"):
        job_meta["labels"] = dict(template_meta["labels"])
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": job_meta,
            "spec": copy.deepcopy(template.get("spec") or {})}


__all__ = [
    "MANUAL_ANNOTATION", "MANY_MISSED_THRESHOLD", "NEXT_SCHEDULE_DELTA", "SCHEDULED_TIMESTAMP_ANNOTATION", "InvalidScheduleError",
    "MissedSchedules", "MostRecent", "ScheduleError", "UnknownTimeZoneError", "cronjob_schedule", "cronjob_zone",
    "format_rfc3339_in", "job_from_template", "job_name", "load_zone", "manual_job", "most_recent_schedule_time", "next_after",
    "next_schedule_time", "next_schedule_time_duration", "next_times",
]
