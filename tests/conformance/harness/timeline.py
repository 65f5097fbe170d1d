"""What the harness observed during one scenario: a timeline fed by watch events.

Why: triggers and expectations ("pods ever created", "never Failed", "observed in this
order", "at some moment active 1 and failed 1") are questions about history, not about one
GET. The runner feeds watch events (Pods, Jobs, CronJobs of the scenario namespace) into a
``Timeline``; every check is a pure function of it, so the checks are unit-tested by feeding
hand-made events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .matching import conditions_of

Obj = dict[str, Any]

INDEX_KEY = "batch.kubernetes.io/job-completion-index"
TERMINAL_PHASES = ("Succeeded", "Failed")


def pod_index(pod: Obj) -> int | None:
    meta = pod.get("metadata") or {}
    raw = (meta.get("annotations") or {}).get(INDEX_KEY)
    if raw is None:
        raw = (meta.get("labels") or {}).get(INDEX_KEY)
    try:
        return int(raw) if raw is not None else None
    except (TypeError, ValueError):
        return None


def pod_phase(pod: Obj) -> str:
    return str((pod.get("status") or {}).get("phase") or "Pending")


def is_terminating(obj: Obj) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def is_active_pod(pod: Obj) -> bool:
    """Counted as active upstream: not terminal and not being deleted."""
    return pod_phase(pod) not in TERMINAL_PHASES and not is_terminating(pod)


def restart_count(pod: Obj) -> int:
    status = pod.get("status") or {}
    return sum(int(cs.get("restartCount") or 0) for cs in status.get("containerStatuses") or [])


def job_finished(job: Obj) -> bool:
    return any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True" for c in conditions_of(job))


@dataclass
class ObjectRecord:
    """One object (by uid) over its life: every version seen and when."""

    uid: str
    name: str
    added_t: float
    versions: list[tuple[float, Obj]] = field(default_factory=list)
    deleted_t: float | None = None

    @property
    def last(self) -> Obj:
        return self.versions[-1][1]


@dataclass
class Moment:
    """The namespace as seen right after one event."""

    t: float
    job: Obj | None
    pods: dict[str, Obj]
    jobs: dict[str, Obj]
    cronjob: Obj | None


@dataclass
class Timeline:
    job_name: str | None = None
    cronjob_name: str | None = None
    ignored_pods: set[str] = field(default_factory=set)  # pre_create names
    precreated: dict[str, ObjectRecord] = field(default_factory=dict)  # pre_create pods by name (never counted)
    current_precreated: dict[str, Obj] = field(default_factory=dict)
    watch_log: list[tuple[float, str, str, Obj]] = field(default_factory=list)  # (t, kind, type, object)
    pods: dict[str, ObjectRecord] = field(default_factory=dict)
    jobs: dict[str, ObjectRecord] = field(default_factory=dict)
    cronjobs: dict[str, ObjectRecord] = field(default_factory=dict)
    moments: list[Moment] = field(default_factory=list)
    current_pods: dict[str, Obj] = field(default_factory=dict)
    current_jobs: dict[str, Obj] = field(default_factory=dict)
    current_cronjobs: dict[str, Obj] = field(default_factory=dict)
    job_versions: list[tuple[float, Obj]] = field(default_factory=list)
    harness_deleted_pods: set[str] = field(default_factory=set)
    evicted_pods: set[str] = field(default_factory=set)
    selected_pod: str | None = None  # uid of the pod the latest select picked
    selected_since: float | None = None  # when the latest action on it happened
    job_deleted_t: float | None = None

    # ------------------------------------------------------------ feeding

    def apply(self, kind: str, event_type: str, obj: Obj, t: float) -> None:
        meta = obj.get("metadata") or {}
        uid = str(meta.get("uid") or meta.get("name"))
        name = str(meta.get("name"))
        self.watch_log.append((t, kind, event_type, obj))
        if kind == "Pod":
            if name in self.ignored_pods:
                self._apply_precreated(name, uid, event_type, obj, t)
                return
            records, current = self.pods, self.current_pods
        elif kind == "Job":
            records, current = self.jobs, self.current_jobs
        elif kind == "CronJob":
            records, current = self.cronjobs, self.current_cronjobs
        else:
            return
        rec = records.get(uid)
        if rec is None:
            rec = ObjectRecord(uid=uid, name=name, added_t=t)
            records[uid] = rec
        rec.versions.append((t, obj))
        if event_type == "DELETED":
            rec.deleted_t = t
            current.pop(uid, None)
        else:
            current[uid] = obj
        if kind == "Job" and name == self.job_name:
            if event_type == "DELETED":
                self.job_deleted_t = t
            else:
                self.job_versions.append((t, obj))
        self.moments.append(
            Moment(t=t, job=self.job, pods=dict(self.current_pods), jobs=dict(self.current_jobs), cronjob=self.cronjob)
        )

    def _apply_precreated(self, name: str, uid: str, event_type: str, obj: Obj, t: float) -> None:
        rec = self.precreated.get(name)
        if rec is None or rec.uid != uid:
            rec = self.precreated[name] = ObjectRecord(uid=uid, name=name, added_t=t)
        rec.versions.append((t, obj))
        if event_type == "DELETED":
            rec.deleted_t = t
            self.current_precreated.pop(name, None)
        else:
            self.current_precreated[name] = obj

    # ------------------------------------------------------------ views

    @property
    def job(self) -> Obj | None:
        return next((j for j in self.current_jobs.values() if (j.get("metadata") or {}).get("name") == self.job_name), None)

    @property
    def job_record(self) -> ObjectRecord | None:
        recs = [r for r in self.jobs.values() if r.name == self.job_name]
        return recs[-1] if recs else None

    @property
    def cronjob(self) -> Obj | None:
        return next(
            (c for c in self.current_cronjobs.values() if (c.get("metadata") or {}).get("name") == self.cronjob_name),
            None,
        )

    @property
    def now_moment(self) -> Moment:
        if self.moments:
            return self.moments[-1]
        return Moment(t=0.0, job=None, pods={}, jobs={}, cronjob=None)

    def pods_ever(self, until: float | None = None) -> list[ObjectRecord]:
        recs = sorted(self.pods.values(), key=lambda r: r.added_t)
        return [r for r in recs if until is None or r.added_t <= until]

    def pod_record(self, uid: str | None) -> ObjectRecord | None:
        return self.pods.get(uid) if uid else None

    def last_version_at(self, rec: ObjectRecord, t: float) -> Obj | None:
        last: Obj | None = None
        for vt, obj in rec.versions:
            if vt > t:
                break
            last = obj
        return last
