"""The Job controller's reconciler: informers in, API writes out, decisions elsewhere.

Mirrors upstream ``job_controller.go``: a job queue keyed ``namespace/name`` fed by Job and
Pod events, an orphan-pod queue that strips the tracking finalizer from pods no live Job
accounts for, expectations so a pass never creates pods the informer has not seen yet, and
the finalizer + ``uncountedTerminatedPods`` protocol so a crash at any point neither loses
nor double-counts a finished pod. Every decision is a call into
:mod:`joblet.controllers.job.decisions`; this module only moves data and does the I/O.

One joblet addition: the status this controller wrote last is remembered per Job, and a
pass uses it when the informer has not caught up yet (higher resourceVersion wins), so a
sync right after our own write never reasons from a stale status.

One module (~710 lines): upstream's job_controller.go, the I/O half of the Job controller; the
decisions are in decisions.py.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from joblet.api.selectors import label_selector_matches
from joblet.client.events import EventRecorder, FakeRecorder
from joblet.client.interface import Client
from joblet.clock import Clock, parse_time_or_none
from joblet.controllers.events import sync_decoding
from joblet.controllers.job import decisions as d
from joblet.controllers.job import pods as podutil
from joblet.controllers.job.backoff import BackoffStore
from joblet.controllers.job.config import JobControllerConfig
from joblet.controllers.result import DONE, Result
from joblet.controllers.runtime import Controller, Informer, InformerFactory, QueueWorker, WorkQueue
from joblet.errors import ApiError, BadRequest, Conflict, Invalid, NotFound, UnsupportedMediaType
from joblet.metrics import JobletMetrics, job_sync_action, job_sync_mode, metrics_for
from joblet.objects import (
    controller_ref,
    deep_copy,
    job_finished,
    key_of,
    labels_of,
    owner_ref,
    rv_of,
    split_key,
)

Obj = dict[str, Any]
T = TypeVar("T")
log = logging.getLogger(__name__)

BY_CONTROLLER_UID = "job-controller/by-controller-uid"
ORPHANS_BY_NAMESPACE = "job-controller/orphans-by-namespace"
BY_NAMESPACE = "job-controller/by-namespace"

REMOVE_FINALIZER_PATCH: Obj = {"metadata": {"$deleteFromPrimitiveList/finalizers": [podutil.TRACKING_FINALIZER]}}


# -- expectations ----------------------------------------------------------------------------


@dataclass
class _Expectation:
    add: int
    delete: int
    stamp: float


class Expectations:
    """Pod creates/deletes issued but not yet seen by the informer (ControllerExpectations)."""

    def __init__(self, clock: Clock, timeout: float = 300.0) -> None:
        self.clock = clock
        self.timeout = timeout
        self._records: dict[str, _Expectation] = {}

    def expect_creations(self, key: str, n: int) -> None:
        self._records[key] = _Expectation(n, 0, self.clock.monotonic())

    def expect_deletions(self, key: str, n: int) -> None:
        self._records[key] = _Expectation(0, n, self.clock.monotonic())

    def creation_observed(self, key: str, n: int = 1) -> None:
        rec = self._records.get(key)
        if rec is not None:
            rec.add -= n

    def deletion_observed(self, key: str, n: int = 1) -> None:
        rec = self._records.get(key)
        if rec is not None:
            rec.delete -= n

    def satisfied(self, key: str) -> bool:
        rec = self._records.get(key)
        if rec is None:
            return True
        if rec.add <= 0 and rec.delete <= 0:
            return True
        return self.clock.monotonic() - rec.stamp > self.timeout

    def delete(self, key: str) -> None:
        self._records.pop(key, None)


class FinalizerExpectations:
    """UIDs whose tracking-finalizer removal was issued but not yet observed."""

    def __init__(self) -> None:
        self._uids: dict[str, set[str]] = {}

    def expect_removed(self, key: str, uids: list[str]) -> None:
        self._uids.setdefault(key, set()).update(uids)

    def observed(self, key: str, uid: str) -> None:
        s = self._uids.get(key)
        if s is not None:
            s.discard(uid)
            if not s:
                del self._uids[key]

    def expected(self, key: str) -> set[str]:
        return set(self._uids.get(key) or ())

    def delete(self, key: str) -> None:
        self._uids.pop(key, None)


# -- pod writes ----------------------------------------------------------------------------------


class PodControl:
    """Pod writes with the Job's events. Finalizer removal uses the strategic-merge
    ``$deleteFromPrimitiveList`` directive (no conflicts with kubelet status writes); if the
    API does not honour it, falls back to a merge patch of the remaining list with a
    resourceVersion precondition, re-reading on conflict."""

    def __init__(self, client: Client, recorder: EventRecorder) -> None:
        self.client = client
        self.recorder = recorder
        self.strategic_ok = True

    async def create(self, job: Obj, pod: Obj) -> Obj:
        ns = str((job.get("metadata") or {}).get("namespace") or "")
        try:
            created = await self.client.create("pods", pod, ns)
        except ApiError as err:
            self.recorder.event(job, "Warning", "FailedCreate", f"Error creating: {err}")
            raise
        self.recorder.event(job, "Normal", "SuccessfulCreate", f"Created pod: {created['metadata']['name']}")
        return created

    async def delete(self, job: Obj, pod: Obj) -> None:
        meta = pod["metadata"]
        try:
            await self.client.delete("pods", meta["name"], meta.get("namespace", ""))
        except NotFound:
            raise
        except ApiError as err:
            self.recorder.event(job, "Warning", "FailedDelete", f"Error deleting: {err}")
            raise
        self.recorder.event(job, "Normal", "SuccessfulDelete", f"Deleted pod: {meta['name']}")

    async def remove_tracking_finalizer(self, pod: Obj) -> None:
        """NotFound propagates (callers treat it as success)."""
        if not podutil.has_tracking_finalizer(pod):
            return
        meta = pod["metadata"]
        name, ns = meta["name"], meta.get("namespace", "")
        if self.strategic_ok:
            try:
                result = await self.client.patch("pods", name, REMOVE_FINALIZER_PATCH, ns, patch_type="strategic")
            except (BadRequest, Invalid, UnsupportedMediaType) as err:
                log.info("strategic finalizer patch refused (%s); using merge patches", err)
                self.strategic_ok = False
            else:
                if not podutil.has_tracking_finalizer(result):
                    return
                log.info("strategic $deleteFromPrimitiveList not honoured; using merge patches")
                self.strategic_ok = False
                pod = result
        current = pod
        for _ in range(10):
            finalizers = list(current["metadata"].get("finalizers") or [])
            if podutil.TRACKING_FINALIZER not in finalizers:
                return
            remaining = [f for f in finalizers if f != podutil.TRACKING_FINALIZER]
            patch = {"metadata": {"finalizers": remaining or None, "resourceVersion": current["metadata"]["resourceVersion"]}}
            try:
                await self.client.patch("pods", name, patch, ns, patch_type="merge")
                return
            except Conflict:
                current = await self.client.get("pods", name, ns)
        raise Conflict(f"could not remove finalizer from pod {ns}/{name}: too many conflicts")

    async def adopt(self, job: Obj, pod: Obj) -> Obj:
        jmeta = job["metadata"]
        meta = pod["metadata"]
        refs = [r for r in meta.get("ownerReferences") or [] if r.get("uid") != jmeta["uid"]]
        refs.append(owner_ref(job, "batch/v1", "Job"))
        finalizers = list(meta.get("finalizers") or [])
        if podutil.TRACKING_FINALIZER not in finalizers:
            finalizers.append(podutil.TRACKING_FINALIZER)
        patch = {"metadata": {"ownerReferences": refs, "finalizers": finalizers, "resourceVersion": meta["resourceVersion"]}}
        return await self.client.patch("pods", meta["name"], patch, meta.get("namespace", ""), patch_type="merge")

    async def release(self, job: Obj, pod: Obj) -> None:
        meta = pod["metadata"]
        refs = [r for r in meta.get("ownerReferences") or [] if r.get("uid") != job["metadata"]["uid"]]
        patch = {"metadata": {"ownerReferences": refs or None, "resourceVersion": meta["resourceVersion"]}}
        await self.client.patch("pods", meta["name"], patch, meta.get("namespace", ""), patch_type="merge")


# -- the controller -------------------------------------------------------------------------------


def paced_delay(now: float, last_end: float, last_duration: float, factor: float) -> float:
    """How long a pod-triggered sync of a Job waits: until ``factor`` times its last sync's duration
    has passed since that sync ended (0 when it has). A sync walks every pod of the Job, so
    without pacing a Job of N short pods costs O(N²); paced, the controller spends at most
    1/(1+factor) of the time on one Job and each sync takes in every pod finished meanwhile."""
    return max(0.0, last_end + factor * last_duration - now)


def _outcomes(items: list[T], results: list[Any]) -> tuple[list[T], Exception | None]:
    """The items whose call (``asyncio.gather(..., return_exceptions=True)``) went through, and
    the first error; a cancellation is re-raised."""
    ok: list[T] = []
    first: Exception | None = None
    for item, res in zip(items, results, strict=True):
        if isinstance(res, BaseException):
            if not isinstance(res, Exception):
                raise res
            first = first or res
        else:
            ok.append(item)
    return ok, first


def _tally(pods: list[Obj], results: list[Any]) -> tuple[int, int, Exception | None]:
    """Deletions that went through, how many of the pods were ready, and the first error."""
    done, first = _outcomes(pods, results)
    return len(done), sum(1 for pod in pods if podutil.is_ready(pod)), first


def _controller_uid_index(pod: Obj) -> list[str]:
    """Pods a Job sync must look at, by the Job's uid.

    A finished pod whose tracking finalizer is gone is already in the Job's counters (and
    its index in completedIndexes/failedIndexes); upstream's sync ignores such pods too.
    Leaving them out keeps a sync proportional to the live pods, not to every pod the Job
    ever ran: a 100,000-completion Job stays as cheap to sync as a small one.
    """
    ref = controller_ref(pod)
    if not ref or not ref.get("uid"):
        return []
    if podutil.is_terminal(pod) and not podutil.has_tracking_finalizer(pod):
        return []
    return [str(ref.get("uid"))]


def _orphans_index(pod: Obj) -> list[str]:
    return [] if controller_ref(pod) else [str((pod.get("metadata") or {}).get("namespace") or "")]


def _namespace_index(obj: Obj) -> list[str]:
    return [str((obj.get("metadata") or {}).get("namespace") or "")]


class JobController(Controller):
    name = "job-controller"

    def __init__(
        self,
        client: Client,
        clock: Clock,
        config: JobControllerConfig | None = None,
        recorder: EventRecorder | None = None,
        informers: InformerFactory | None = None,
        metrics: JobletMetrics | None = None,
    ) -> None:
        self.client = client
        self.clock = clock
        self.config = config or JobControllerConfig()
        self.metrics = metrics or metrics_for(client)  # joblet.metrics (§3.17 series)
        self.recorder: EventRecorder = recorder if recorder is not None else FakeRecorder()
        factory = informers or InformerFactory(client)
        self.jobs: Informer = factory.get("jobs")
        self.pods: Informer = factory.get("pods")
        self.jobs.add_index(BY_NAMESPACE, _namespace_index)
        self.pods.add_index(BY_CONTROLLER_UID, _controller_uid_index)
        self.pods.add_index(ORPHANS_BY_NAMESPACE, _orphans_index)
        self.queue = WorkQueue(clock, "job", self.config.retry_base_delay, self.config.retry_max_delay)
        self.orphan_queue = WorkQueue(clock, "job-orphan-pod", self.config.retry_base_delay, self.config.retry_max_delay)
        self.expectations = Expectations(clock, self.config.expectations_timeout)
        self.finalizer_expectations = FinalizerExpectations()
        self.backoff = BackoffStore()
        self.pod_control = PodControl(client, self.recorder)
        self._written: dict[str, Obj] = {}
        self._last_sync: dict[str, tuple[float, float]] = {}  # key -> (end, duration) of its last sync
        self.jobs.add_handler(self._on_job_add, self._on_job_update, self._on_job_delete)
        self.pods.add_handler(self._on_pod_add, self._on_pod_update, self._on_pod_delete)

    # -- Controller protocol --------------------------------------------------------------

    def informers(self) -> list[Informer]:
        return [self.jobs, self.pods]

    def queue_workers(self) -> list[QueueWorker]:
        return [
            QueueWorker(self.queue, self.sync, self.config.workers, self.recorder, "job-controller"),
            QueueWorker(self.orphan_queue, self.sync_orphan_pod, 1),
        ]

    # -- enqueueing ---------------------------------------------------------------------------

    def enqueue_immediately(self, key: str) -> None:
        self.queue.add(key)

    def enqueue_batched(self, key: str) -> None:
        last = self._last_sync.get(key)
        paced = 0.0 if last is None else paced_delay(self.clock.monotonic(), *last, self.config.sync_pacing)
        self.queue.add_after(key, max(self.config.sync_batch_delay, paced))

    def enqueue_with_delay(self, key: str, delay: float) -> None:
        self.queue.add_after(key, max(delay, self.config.sync_batch_delay))

    def _resolve(self, namespace: str, ref: Obj) -> Obj | None:
        if ref.get("kind") != "Job":
            return None
        job = self.jobs.get(f"{namespace}/{ref.get('name', '')}")
        if job is None or (job.get("metadata") or {}).get("uid") != ref.get("uid"):
            return None
        return job

    def _pod_jobs(self, pod: Obj) -> list[Obj]:
        ns = str((pod.get("metadata") or {}).get("namespace") or "")
        labels = labels_of(pod)
        if not labels:
            return []
        return [j for j in self.jobs.by_index(BY_NAMESPACE, ns) if label_selector_matches(d.spec_of(j).get("selector"), labels)]

    # -- pod events (addPod / updatePod / deletePod) ------------------------------------------

    def _on_pod_add(self, pod: Obj) -> None:
        self.metrics.tracking_finalizer(None, pod)
        if podutil.deleting(pod):
            self._on_pod_delete(pod, final=False)
            return
        ns = str(pod["metadata"].get("namespace") or "")
        ref = controller_ref(pod)
        if ref is not None:
            job = self._resolve(ns, ref)
            if job is None:
                return
            key = key_of(job)
            self.expectations.creation_observed(key)
            self.enqueue_batched(key)
            return
        if podutil.has_tracking_finalizer(pod):
            self.orphan_queue.add(key_of(pod))
        for job in self._pod_jobs(pod):
            self.enqueue_batched(key_of(job))

    def _on_pod_update(self, old: Obj, cur: Obj) -> None:
        if rv_of(old) == rv_of(cur) and rv_of(cur) != 0:
            return
        self.metrics.tracking_finalizer(old, cur)
        if podutil.deleting(cur):
            self._on_pod_delete(cur, final=False)
            return
        ns = str(cur["metadata"].get("namespace") or "")
        uid = podutil.uid(cur)
        finalizer_removed = not podutil.has_tracking_finalizer(cur)
        cur_ref, old_ref = controller_ref(cur), controller_ref(old)
        ref_changed = cur_ref != old_ref
        if ref_changed and old_ref is not None:
            job = self._resolve(ns, old_ref)
            if job is not None:
                if finalizer_removed:
                    self.finalizer_expectations.observed(key_of(job), uid)
                self.enqueue_batched(key_of(job))
        if cur_ref is not None:
            job = self._resolve(ns, cur_ref)
            if job is None:
                return
            if finalizer_removed:
                self.finalizer_expectations.observed(key_of(job), uid)
            self.enqueue_batched(key_of(job))
            return
        if podutil.has_tracking_finalizer(cur):
            self.orphan_queue.add(key_of(cur))
        if ref_changed or labels_of(cur) != labels_of(old):
            for job in self._pod_jobs(cur):
                self.enqueue_batched(key_of(job))

    def _on_pod_delete(self, pod: Obj, final: bool = True) -> None:
        if final:
            self.metrics.tracking_finalizer(pod, None)
        ns = str(pod["metadata"].get("namespace") or "")
        ref = controller_ref(pod)
        has_finalizer = podutil.has_tracking_finalizer(pod)
        if ref is None:
            if has_finalizer:
                self.orphan_queue.add(key_of(pod))
            return
        job = self._resolve(ns, ref)
        if job is None or job_finished(job):
            if has_finalizer:
                self.orphan_queue.add(key_of(pod))
            return
        key = key_of(job)
        self.expectations.deletion_observed(key)
        if final or not has_finalizer:
            self.finalizer_expectations.observed(key, podutil.uid(pod))
        self.enqueue_batched(key)

    # -- job events ----------------------------------------------------------------------------

    def _on_job_add(self, job: Obj) -> None:
        self.enqueue_immediately(key_of(job))

    def _on_job_update(self, old: Obj, cur: Obj) -> None:
        key = key_of(cur)
        if (old.get("metadata") or {}).get("generation") == (cur.get("metadata") or {}).get("generation"):
            self.enqueue_batched(key)
        else:
            self.enqueue_immediately(key)
        if job_finished(cur):
            self._cleanup_pod_finalizers(cur)
        start = (cur.get("status") or {}).get("startTime")
        cur_ads = d.spec_of(cur).get("activeDeadlineSeconds")
        if start and cur_ads is not None:
            old_ads = d.spec_of(old).get("activeDeadlineSeconds")
            if old_ads is None or old_ads != cur_ads:
                started = parse_time_or_none(start)
                if started is not None:
                    passed = (self.clock.now() - started).total_seconds()
                    self.queue.add_after(key, int(cur_ads) - passed)

    def _on_job_delete(self, job: Obj) -> None:
        self.enqueue_immediately(key_of(job))
        self._cleanup_pod_finalizers(job)

    def _cleanup_pod_finalizers(self, job: Obj) -> None:
        uid = str((job.get("metadata") or {}).get("uid") or "")
        for pod in self.pods.by_index(BY_CONTROLLER_UID, uid):
            if podutil.has_tracking_finalizer(pod):
                self.orphan_queue.add(key_of(pod))

    # -- orphan pods -------------------------------------------------------------------------------

    async def sync_orphan_pod(self, key: str) -> Result:
        pod = self.pods.get(key)
        if pod is None:
            return DONE
        ref = controller_ref(pod)
        if ref is not None:
            if ref.get("kind") != "Job" or ref.get("apiVersion") != "batch/v1":
                return DONE
            job = self._resolve(str(pod["metadata"].get("namespace") or ""), ref)
            if job is not None:
                if d.managed_by_external(job) is not None:
                    return DONE
                if not job_finished(job):
                    return DONE
        try:
            await self.pod_control.remove_tracking_finalizer(pod)
        except NotFound:
            return DONE
        return DONE

    # -- syncJob -------------------------------------------------------------------------------------

    def _freshest(self, key: str, cached: Obj) -> Obj:
        written = self._written.get(key)
        if written is None:
            return cached
        same = (written.get("metadata") or {}).get("uid") == (cached.get("metadata") or {}).get("uid")
        if same and rv_of(written) > rv_of(cached):
            return written
        del self._written[key]
        return cached

    async def sync(self, key: str) -> Result:
        began = self.clock.monotonic()
        with self.metrics.job_sync():  # job_sync_duration_seconds / job_syncs_total
            try:
                return await sync_decoding(key, self._sync, self.jobs.get)
            finally:
                ended = self.clock.monotonic()
                if self.jobs.get(key) is not None:
                    self._last_sync[key] = (ended, ended - began)
                else:
                    self._last_sync.pop(key, None)

    async def _sync(self, key: str) -> Result:
        """syncJob. ``now`` is read once: every decision of one sync sees the same instant."""
        shared = self.jobs.get(key)
        if shared is None:
            self.expectations.delete(key)
            self.finalizer_expectations.delete(key)
            self.backoff.remove(key)
            self._written.pop(key, None)
            return DONE
        shared = self._freshest(key, shared)
        if d.managed_by_external(shared) is not None:
            return DONE
        if job_finished(shared):
            self.backoff.remove(key)
            return DONE
        job = deep_copy(shared)
        if not d.completion_mode_known(job):
            self.recorder.event(job, "Warning", "UnknownCompletionMode", "Skipped Job sync because completion mode is unknown")
            return DONE
        job_sync_mode(job)
        satisfied = self.expectations.satisfied(key)
        pods = await self._claim_pods(job)
        now = self.clock.now()
        ctx = d.start_sync(job, pods, self.backoff.get(key), now, satisfied, self.finalizer_expectations.expected(key))

        manage_err: Exception | None = None
        suspend_changed = False
        if ctx.finished_condition is not None:
            deleted, deleted_ready, manage_err = await self._delete_active_pods(job, ctx.active_pods)
            d.after_finish_deletes(ctx, deleted, deleted_ready)
        else:
            manage_called = False
            if satisfied and not podutil.deleting(job):
                manage_err = await self._manage(key, ctx, now)
                manage_called = True
            suspend_changed = d.decide_completion(ctx, manage_called, now)
        self._emit(ctx)
        needs_update = d.apply_active_counts(ctx, suspend_changed)
        await self._track(key, ctx, needs_update, now)
        if manage_err is not None:
            raise manage_err
        return Result(requeue_after=ctx.deadline_requeue_after)

    def _emit(self, ctx: d.SyncContext) -> None:
        for ev in ctx.events:
            self.recorder.event(ctx.job, ev.type, ev.reason, ev.message)
        ctx.events.clear()

    async def _claim_pods(self, job: Obj) -> list[Obj]:
        """getPodsForJob: owned pods whose labels match; adopt matching orphans, release others."""
        meta = job["metadata"]
        uid, ns = str(meta.get("uid") or ""), str(meta.get("namespace") or "")
        selector = d.spec_of(job).get("selector")
        job_deleting = podutil.deleting(job)
        claimed: list[Obj] = []
        errors: list[Exception] = []
        for pod in self.pods.by_index(BY_CONTROLLER_UID, uid):
            if label_selector_matches(selector, labels_of(pod)):
                claimed.append(pod)
                continue
            if job_deleting:
                continue
            try:
                await self.pod_control.release(job, pod)
            except NotFound:
                pass
            except ApiError as err:
                errors.append(err)
        if not job_deleting:
            candidates = [
                p
                for p in self.pods.by_index(ORPHANS_BY_NAMESPACE, ns)
                if not podutil.deleting(p) and label_selector_matches(selector, labels_of(p))
            ]
            if candidates:
                can_adopt = True
                try:
                    fresh = await self.client.get("jobs", meta["name"], ns)
                    if (fresh.get("metadata") or {}).get("uid") != uid or podutil.deleting(fresh):
                        can_adopt = False
                except NotFound:
                    can_adopt = False
                if can_adopt:
                    for pod in candidates:
                        try:
                            claimed.append(await self.pod_control.adopt(job, pod))
                        except NotFound:
                            pass
                        except ApiError as err:
                            errors.append(err)
        if errors:
            raise errors[0]
        return claimed

    async def _delete_active_pods(self, job: Obj, pods: list[Obj]) -> tuple[int, int, Exception | None]:
        """Plain DELETEs (finalizers kept) when the Job is finishing."""

        async def one(pod: Obj) -> None:
            try:
                await self.pod_control.delete(job, pod)
            except NotFound:
                pass

        return _tally(pods, await asyncio.gather(*(one(p) for p in pods), return_exceptions=True))

    async def _manage(self, key: str, ctx: d.SyncContext, now: datetime) -> Exception | None:
        job = ctx.job
        plan = d.plan_manage(ctx, now, self.config)
        job_sync_action(plan.action)
        if plan.delete:
            self.expectations.expect_deletions(key, len(plan.delete))
            removed, removed_ready, err = await self._delete_job_pods(key, job, plan.delete)
            ctx.active -= removed
            ctx.terminating += removed
            ctx.ready -= removed_ready
            return err
        if plan.requeue_after is not None:
            self.enqueue_with_delay(key, plan.requeue_after)
            return None
        if not plan.create:
            return None
        self.expectations.expect_creations(key, len(plan.create))
        ctx.active += len(plan.create)
        first_err: Exception | None = None
        pos = 0
        for size in plan.batches:
            batch = plan.create[pos : pos + size]
            pos += size
            results = await asyncio.gather(*(self._create_pod(job, p) for p in batch), return_exceptions=True)
            batch_failed = False
            for res in results:
                if isinstance(res, BaseException):
                    if not isinstance(res, Exception):
                        raise res
                    self.expectations.creation_observed(key)
                    ctx.active -= 1
                    first_err = first_err or res
                    batch_failed = True
            skipped = len(plan.create) - pos
            if batch_failed and skipped > 0:
                ctx.active -= skipped
                self.expectations.creation_observed(key, skipped)
                break
        return first_err

    async def _create_pod(self, job: Obj, pod: Obj) -> None:
        try:
            await self.pod_control.create(job, pod)
            self.metrics.pod_created(job, ok=True)
        except ApiError as err:
            self.metrics.pod_created(job, ok=False)
            if _namespace_terminating(err):
                return
            raise

    async def _delete_job_pods(self, key: str, job: Obj, pods: list[Obj]) -> tuple[int, int, Exception | None]:
        """manageJob deletions: finalizer first, so the pods are never counted as failed."""

        async def one(pod: Obj) -> bool:
            try:
                await self.pod_control.remove_tracking_finalizer(pod)
                await self.pod_control.delete(job, pod)
            except NotFound:
                self.expectations.deletion_observed(key)
                return True
            except Exception:
                self.expectations.deletion_observed(key)
                raise
            return True

        return _tally(pods, await asyncio.gather(*(one(p) for p in pods), return_exceptions=True))

    # -- tracking ------------------------------------------------------------------------------------

    async def _write_status(self, key: str, ctx: d.SyncContext) -> None:
        job = d.status_for_write(ctx.job)
        result = await self.client.update("jobs", job, subresource="status")
        before = self._written.get(key) or self.jobs.get(key)
        self.metrics.job_pods_finished(before, result)
        self.metrics.finished_indexes(result, *d.finished_indexes_delta(before, result))
        ctx.job["metadata"]["resourceVersion"] = (result.get("metadata") or {}).get("resourceVersion")
        self._written[key] = result

    async def _remove_finalizers(self, key: str, pods: list[Obj]) -> tuple[set[str], Exception | None]:
        uids = [podutil.uid(p) for p in pods]
        self.finalizer_expectations.expect_removed(key, uids)

        async def one(pod: Obj) -> None:
            try:
                await self.pod_control.remove_tracking_finalizer(pod)
            except NotFound:
                self.finalizer_expectations.observed(key, podutil.uid(pod))
            except Exception:
                self.finalizer_expectations.observed(key, podutil.uid(pod))
                raise

        removed, first = _outcomes(uids, await asyncio.gather(*(one(p) for p in pods), return_exceptions=True))
        return set(removed), first

    async def _track(self, key: str, ctx: d.SyncContext, needs_update: bool, now: datetime) -> None:
        """trackJobStatusAndRemoveFinalizers: status with uncounted UIDs first, then finalizers,
        then counters, then (when everything is accounted for) the terminal condition."""
        plan = d.plan_tracking(ctx, needs_update, now, self.config)
        needs_flush = plan.needs_flush
        if needs_flush:
            await self._write_status(key, ctx)
            self.backoff.put(key, ctx.new_backoff)
            self.metrics.failure_policy_actions(plan.policy_actions)
            needs_flush = False
        rm_err: Exception | None = None
        uids_with_finalizer = set(plan.uids_with_finalizer)
        if plan.pods_to_remove_finalizer:
            removed, rm_err = await self._remove_finalizers(key, plan.pods_to_remove_finalizer)
            uids_with_finalizer -= removed
        if d.count_removed_finalizers(d.status_of(ctx.job), uids_with_finalizer):
            needs_flush = True
        if rm_err is not None:
            if needs_flush:
                await self._write_status(key, ctx)
            raise rm_err
        finished = not plan.reached_max_uncounted and d.enact_finished(ctx, now)
        if finished:
            needs_flush = True
        if needs_flush:
            await self._write_status(key, ctx)
            if finished and ctx.finished_condition is not None:
                self.metrics.job_finished(ctx.job, ctx.finished_condition)
                for ev in d.finished_events(ctx.job, ctx.finished_condition):
                    self.recorder.event(ctx.job, ev.type, ev.reason, ev.message)


def _namespace_terminating(err: ApiError) -> bool:
    causes = (err.details or {}).get("causes") or []
    return any(c.get("reason") == "NamespaceTerminating" for c in causes if isinstance(c, dict))


__all__ = ["Expectations", "FinalizerExpectations", "JobController", "PodControl", "split_key"]
