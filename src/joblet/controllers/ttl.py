"""The TTL-after-finished controller: deletes finished Jobs ``ttlSecondsAfterFinished`` later.

Upstream (pkg/controller/ttlafterfinished): a Job with ``spec.ttlSecondsAfterFinished``
set, finished (Complete or Failed True) and not being deleted, expires at the
``lastTransitionTime`` of its finish condition plus the TTL. Until then its key is
requeued for the remaining time; once expired the Job is re-read *live* (the TTL may have
changed since the cache saw it) and deleted with ``propagationPolicy: Foreground`` and a
uid precondition, so its pods go first and a same-named successor is never hit. No events.

:func:`time_left` is the pure decision; :class:`TTLAfterFinishedController` the I/O.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from joblet.client.interface import Client
from joblet.clock import Clock, parse_time_or_none
from joblet.controllers.result import DONE, Result
from joblet.controllers.runtime import Controller, Informer, InformerFactory, QueueWorker, WorkQueue
from joblet.errors import Conflict, NotFound
from joblet.metrics import metrics_for
from joblet.objects import job_finished, key_of, split_key

Obj = dict[str, Any]
log = logging.getLogger(__name__)


def needs_cleanup(job: Obj) -> bool:
    """TTL set, finished, not already being deleted."""
    meta = job.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return False
    if (job.get("spec") or {}).get("ttlSecondsAfterFinished") is None:
        return False
    return job_finished(job) is not None


def finish_time(job: Obj, strict: bool = True) -> datetime | None:
    """``lastTransitionTime`` of the Complete/Failed True condition (ValueError if unset, when strict)."""
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
            when = parse_time_or_none(cond.get("lastTransitionTime"))
            if when is None and strict:
                raise ValueError(f"unable to find the time when the Job {key_of(job)} finished")
            return when
    return None


def time_left(job: Obj, now: datetime) -> float | None:
    """Seconds until ``job`` expires (<= 0: expired now), or None if TTL does not apply.

    A finish time in the future (clock skew) simply means waiting longer.
    """
    if not needs_cleanup(job):
        return None
    finished = finish_time(job)
    assert finished is not None
    ttl = int((job.get("spec") or {})["ttlSecondsAfterFinished"])
    return (finished.timestamp() + ttl) - now.timestamp()


class TTLAfterFinishedController(Controller):
    name = "ttl-after-finished-controller"

    def __init__(self, client: Client, clock: Clock, informers: InformerFactory) -> None:
        self.client = client
        self.clock = clock
        self.queue = WorkQueue(clock, "ttl-after-finished")
        self.jobs = informers.get("jobs")
        self.jobs.add_handler(self._job_seen, self._job_updated)

    def informers(self) -> list[Informer]:
        return [self.jobs]

    def queue_workers(self) -> list[QueueWorker]:
        return [QueueWorker(self.queue, self.sync)]

    def _job_seen(self, job: Obj) -> None:
        if needs_cleanup(job):
            self.queue.add(key_of(job))

    def _job_updated(self, _old: Obj, job: Obj) -> None:
        self._job_seen(job)

    async def sync(self, key: str) -> Result:
        job = self.jobs.get(key)
        if job is None:
            return DONE
        left = self._left(job)
        if left is None or left > 0:
            return Result(requeue_after=left)
        namespace, name = split_key(key)
        try:
            fresh = await self.client.get("jobs", name, namespace)
        except NotFound:
            return DONE
        left = self._left(fresh)
        if left is None or left > 0:
            return Result(requeue_after=left)  # the TTL or the finish time changed meanwhile
        uid = str((fresh.get("metadata") or {}).get("uid") or "")
        try:
            await self.client.delete("jobs", name, namespace, propagation_policy="Foreground",
                                     preconditions={"uid": uid} if uid else None)
        except (NotFound, Conflict):
            return DONE  # gone, or replaced by a new Job of the same name
        metrics_for(self.client).ttl_deletion_duration(-left)
        return DONE

    def _left(self, job: Obj) -> float | None:
        try:
            return time_left(job, self.clock.now())
        except ValueError:
            log.warning("job %s finished without a lastTransitionTime; not cleaning it up", key_of(job))
            return None
