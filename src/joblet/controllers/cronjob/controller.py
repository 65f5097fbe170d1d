"""The CronJob reconciler: gathers inputs, applies :func:`decisions.sync_decision`.

Level-triggered like upstream's ControllerV2: a CronJob key is synced when the CronJob
or one of its Jobs changes, and requeued for its next activation (+100 ms) on the work
queue's clock. Everything it decides is in ``decisions.py``; this module only does I/O:
a live re-read of the CronJob before calling a Job unexpected, a live GET before calling
an active Job missing, the deletes and the create, and the status write.

The status this controller wrote last is remembered per CronJob and preferred over an
older informer copy, so a sync right after our own write never re-creates a Job for a
slot it just handled.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from joblet.client.events import EventRecorder
from joblet.client.interface import Client
from joblet.clock import Clock, parse_time_or_none
from joblet.controllers.cronjob import decisions as d
from joblet.controllers.cronjob import schedule as cron
from joblet.controllers.events import sync_decoding
from joblet.controllers.result import DONE, Result, Terminal, TerminalError
from joblet.controllers.runtime import Controller, Informer, InformerFactory, QueueWorker, WorkQueue
from joblet.errors import AlreadyExists, ApiError, Conflict, NotFound
from joblet.metrics import metrics_for
from joblet.objects import deep_copy, key_of, rv_of, split_key

Obj = dict[str, Any]
log = logging.getLogger(__name__)

COMPONENT = "cronjob-controller"
BY_CRONJOB = "cronjob-owner"


def owning_cronjob_key(job: Obj) -> list[str]:
    """Index: ``namespace/cronjob`` of a Job's CronJob controllerRef."""
    meta = job.get("metadata") or {}
    for ref in meta.get("ownerReferences") or []:
        if ref.get("controller") and ref.get("kind") == "CronJob":
            return [f"{meta.get('namespace', '')}/{ref.get('name', '')}"]
    return []


class CronJobController(Controller):
    name = "cronjob-controller"

    def __init__(self, client: Client, clock: Clock, informers: InformerFactory, recorder: EventRecorder) -> None:
        self.client = client
        self.clock = clock
        self.recorder = recorder
        self.queue = WorkQueue(clock, "cronjobs")
        self.cronjobs = informers.get("cronjobs")
        self.jobs = informers.get("jobs")
        self._written: dict[str, Obj] = {}
        self.jobs.add_index(BY_CRONJOB, owning_cronjob_key)
        self.cronjobs.add_handler(self._cronjob_added, self._cronjob_updated, self._cronjob_deleted)
        self.jobs.add_handler(self._job_changed, self._job_updated, self._job_changed)

    def informers(self) -> list[Informer]:
        return [self.cronjobs, self.jobs]

    def queue_workers(self) -> list[QueueWorker]:
        return [QueueWorker(self.queue, self.sync, recorder=self.recorder, component=COMPONENT)]

    # -- event handlers ----------------------------------------------------------------

    def _cronjob_added(self, cj: Obj) -> None:
        self.queue.add(key_of(cj))

    def _cronjob_updated(self, old: Obj, new: Obj) -> None:
        old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
        key = key_of(new)
        if (old_spec.get("schedule"), old_spec.get("timeZone")) != (new_spec.get("schedule"), new_spec.get("timeZone")):
            # Upstream: a new schedule takes effect at its next activation, not at once.
            try:
                delay = cron.next_schedule_time_duration(new, self.clock.now())
            except (cron.ScheduleError, cron.UnknownTimeZoneError):
                delay = None
            if delay is not None:
                self.queue.add_after(key, delay.total_seconds())
                return
        self.queue.add(key)

    def _cronjob_deleted(self, cj: Obj) -> None:
        self._written.pop(key_of(cj), None)

    def _job_changed(self, job: Obj) -> None:
        for key in owning_cronjob_key(job):
            self.queue.add(key)

    def _job_updated(self, old: Obj, new: Obj) -> None:
        for key in {*owning_cronjob_key(old), *owning_cronjob_key(new)}:
            self.queue.add(key)

    # -- sync ------------------------------------------------------------------------------

    def _event(self, cj: Obj, etype: str, reason: str, message: str) -> None:
        self.recorder.event(cj, etype, reason, message, component=COMPONENT)

    async def sync(self, key: str) -> Result:
        return await sync_decoding(key, self._sync, self.cronjobs.get)

    async def _sync(self, key: str) -> Result:
        cached = self.cronjobs.get(key)
        if cached is None:
            self._written.pop(key, None)
            return DONE
        written = self._written.get(key)
        cj = written if written is not None and rv_of(written) > rv_of(cached) else cached
        namespace, name = split_key(key)
        children = self.jobs.by_index(BY_CRONJOB, key)

        if d.unexpected_children(cj, children):
            try:
                cj = await self.client.get("cronjobs", name, namespace)
            except NotFound:
                return DONE
        missing: set[str] = set()
        for ref in d.unseen_active_refs(cj, children):
            try:
                await self.client.get("jobs", str(ref.get("name")), str(ref.get("namespace") or namespace))
            except NotFound:
                missing.add(str(ref.get("name")))

        now = self.clock.now()
        plan = d.sync_decision(cj, children, now, missing)
        for ev in plan.events:
            self._event(cj, ev.type, ev.reason, ev.message)
        status = plan.status
        changed = plan.status_changed
        terminal: Terminal | None = None
        try:
            try:
                for ref in plan.replace_deletes:
                    await self._replace(cj, ref, namespace)
            except TerminalError as err:
                # The schedule goes on: the next activation is still requeued below.
                terminal, plan = err.terminal, replace(plan, create=None)
            if plan.create is not None and plan.scheduled_time is not None:
                created = await self._create(cj, plan.create, namespace)
                if created is not None:
                    status = d.status_after_create(status, created, plan.scheduled_time)
                    changed = True
        finally:
            for job in plan.history_deletes:
                await self._delete(cj, job)
            if changed:
                await self._write_status(key, cj, status)
        return Result(requeue_after=plan.requeue_after, terminal=terminal)

    async def _replace(self, cj: Obj, ref: Obj, namespace: str) -> None:
        name = str(ref.get("name"))
        ns = str(ref.get("namespace") or namespace)
        try:
            job = await self.client.get("jobs", name, ns)
        except NotFound:
            return  # already gone: nothing to replace
        except ApiError as err:
            self._event(cj, d.WARNING, "FailedGet", f"Get job: {err}")
            raise
        if not await self._delete(cj, job):
            # _delete recorded why (FailedDelete); retrying every second would not help.
            raise TerminalError("FailedReplace", f"could not replace job {ns}/{name}", cj)

    async def _delete(self, cj: Obj, job: Obj) -> bool:
        meta = job.get("metadata") or {}
        try:
            await self.client.delete("jobs", meta["name"], meta.get("namespace", ""), propagation_policy="Background")
        except NotFound:
            pass
        except ApiError as err:
            self._event(cj, d.WARNING, "FailedDelete", f"Deleted job: {err}")
            return False
        self._event(cj, d.NORMAL, "SuccessfulDelete", f"Deleted job {meta['name']}")
        return True

    async def _create(self, cj: Obj, job: Obj, namespace: str) -> Obj | None:
        """Create the Job; the Job to record in ``active``, or None to record nothing."""
        try:
            created = await self.client.create("jobs", job, namespace)
        except AlreadyExists:
            existing = await self.client.get("jobs", job["metadata"]["name"], namespace)
            if not d.is_controlled_by(existing, cj):
                return None  # someone else's Job of the same name
            uid = (existing.get("metadata") or {}).get("uid")
            if any(r.get("uid") == uid for r in (cj.get("status") or {}).get("active") or []):
                return None
            return existing
        except ApiError as err:
            if "terminat" in str(err).lower() and "namespace" in str(err).lower():
                return None
            self._event(cj, d.WARNING, "FailedCreate", f"Error creating job: {err}")
            raise
        self._event(cj, d.NORMAL, "SuccessfulCreate", f"Created job {created['metadata']['name']}")
        scheduled = parse_time_or_none(
            (created["metadata"].get("annotations") or {}).get("batch.kubernetes.io/cronjob-scheduled-timestamp"))
        if scheduled is not None:
            metrics_for(self.client).cronjob_creation_skew((self.clock.now() - scheduled).total_seconds())
        return created

    async def _write_status(self, key: str, cj: Obj, status: Obj) -> None:
        obj = deep_copy(cj)
        obj["status"] = status
        try:
            self._written[key] = await self.client.update("cronjobs", obj, subresource="status")
        except NotFound:
            self._written.pop(key, None)
        except Conflict:
            self._written.pop(key, None)
            raise
