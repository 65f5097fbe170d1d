"""Exponential backoff before the Job controller replaces failed pods (upstream backoff_utils.go).

One record per Job, in memory only (a restarted controller starts from zero, as upstream):
failures since the last success and the finish time of the latest of them. The delay is
``base * 2^(failures-1)`` capped at ``cap`` (defaults 10 s and 600 s, the
``--pod-failure-backoff`` / ``--pod-failure-backoff-max`` flags). Per-index backoff derives
the same delay from the failure-count annotations of an index's last failed pod.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from joblet.clock import parse_time_or_none
from joblet.controllers.job import pods as podutil

Obj = dict[str, Any]


@dataclass(frozen=True)
class BackoffRecord:
    failures_after_last_success: int = 0
    last_failure_time: datetime | None = None


EMPTY_RECORD = BackoffRecord()


def _latest_container_finish(statuses: list[Obj]) -> datetime | None:
    latest: datetime | None = None
    for cs in statuses:
        terminated = (cs.get("state") or {}).get("terminated")
        if not terminated:
            return None
        finished = parse_time_or_none(terminated.get("finishedAt"))
        if finished is None:
            return None
        if latest is None or finished > latest:
            latest = finished
    return latest


def finished_time(pod: Obj) -> datetime:
    """When a pod finished: containers' finishedAt, else Ready=False transition, else
    deletionTimestamp - grace, else creationTimestamp (getFinishedTime)."""
    status = pod.get("status") or {}
    meta = pod.get("metadata") or {}
    t = _latest_container_finish(status.get("containerStatuses") or [])
    if t is not None:
        return t
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Ready" and cond.get("status") == "False":
            ready_false = parse_time_or_none(cond.get("lastTransitionTime"))
            if ready_false is not None:
                return ready_false
    deletion = parse_time_or_none(meta.get("deletionTimestamp"))
    if deletion is not None:
        return deletion - timedelta(seconds=int(meta.get("deletionGracePeriodSeconds") or 0))
    created = parse_time_or_none(meta.get("creationTimestamp"))
    if created is not None:
        return created
    return datetime.min.replace(tzinfo=UTC)


def new_backoff_record(record: BackoffRecord, new_succeeded: list[Obj], new_failed: list[Obj]) -> BackoffRecord:
    """Fold a sync's newly finished pods into the record (newBackoffRecord)."""
    succeeded = sorted(new_succeeded, key=finished_time)
    failed = sorted(new_failed, key=finished_time)
    if not succeeded:
        if not failed:
            return record
        return BackoffRecord(record.failures_after_last_success + len(failed), finished_time(failed[-1]))
    if not failed:
        return BackoffRecord(0, None)
    last_success = finished_time(succeeded[-1])
    count = 0
    last_failure: datetime | None = None
    for pod in reversed(failed):
        t = finished_time(pod)
        if not t > last_success:
            break
        if last_failure is None:
            last_failure = t
        count += 1
    return BackoffRecord(count, last_failure)


def backoff_delay(failures: int, base: float, cap: float) -> float:
    """base * 2^(failures-1), capped; 0 for no failures."""
    if failures <= 0:
        return 0.0
    delay = base
    for _ in range(1, failures):
        delay *= 2
        if delay >= cap:
            return cap
    return min(delay, cap)


def remaining_for_failures(
    failures: int, last_failure_time: datetime | None, now: datetime, base: float, cap: float
) -> float:
    """Seconds left before a pod may be created again (getRemainingTimeForFailuresCount)."""
    if failures <= 0 or last_failure_time is None:
        return 0.0
    delay = backoff_delay(failures, base, cap)
    elapsed = (now - last_failure_time).total_seconds()
    if delay < elapsed:
        return 0.0
    return delay - elapsed


def remaining_time(record: BackoffRecord, now: datetime, base: float, cap: float) -> float:
    return remaining_for_failures(record.failures_after_last_success, record.last_failure_time, now, base, cap)


def remaining_time_per_index(last_failed_pod: Obj | None, now: datetime, base: float, cap: float) -> float:
    """Per-index backoff from the index's last failed pod (getRemainingTimePerIndex)."""
    if last_failed_pod is None:
        return 0.0
    failures = podutil.index_absolute_failure_count(last_failed_pod) + 1
    return remaining_for_failures(failures, finished_time(last_failed_pod), now, base, cap)


class BackoffStore:
    """The in-memory per-Job records, keyed ``namespace/name``."""

    def __init__(self) -> None:
        self._records: dict[str, BackoffRecord] = {}

    def get(self, key: str) -> BackoffRecord:
        return self._records.get(key, EMPTY_RECORD)

    def put(self, key: str, record: BackoffRecord) -> None:
        if record == EMPTY_RECORD:
            self._records.pop(key, None)
        else:
            self._records[key] = record

    def remove(self, key: str) -> None:
        self._records.pop(key, None)

    def __contains__(self, key: str) -> bool:
        return key in self._records


def retry_at(job: Obj, pods: list[Obj], now: datetime, base: float, cap: float) -> datetime | None:
    """When a Job waiting out its pod-failure backoff creates its next pod, or None when it is
    not waiting (finished, suspended, has active pods, or its backoff is over). The record
    is rebuilt from the Job's pods, so readers outside the controller (dashboard, CLI) can
    tell "Backoff" from "Pending"."""
    status = job.get("status") or {}
    if (job.get("spec") or {}).get("suspend") or any(
            c.get("type") in ("Complete", "Failed", "FailureTarget", "SuccessCriteriaMet") and c.get("status") == "True"
            for c in status.get("conditions") or []):
        return None
    if any(podutil.is_active(p) for p in pods):
        return None
    succeeded = [p for p in pods if podutil.phase(p) == "Succeeded"]
    failed = [p for p in pods if podutil.phase(p) == "Failed"]
    record = new_backoff_record(EMPTY_RECORD, succeeded, failed)
    left = remaining_time(record, now, base, cap)
    return now + timedelta(seconds=left) if left > 0 else None
