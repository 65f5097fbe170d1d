"""Prometheus metrics of one control plane: upstream's Job/CronJob/TTL series plus joblet's own.

Why: "nobody misses a failed Job" starts with numbers a scraper can alert on. The Job
controller series keep kube-controller-manager's names, types, labels and buckets
(job-semantics.md §3.17), so dashboards and alert rules written for Kubernetes work
unchanged; joblet adds pods started/finished by reason, work-queue depth, store write
latency and API request latency.

Every series lives in a :class:`JobletMetrics` with its own ``CollectorRegistry`` (one per
:class:`~joblet.controlplane.ControlPlane`, never the process-global default), so tests that
start several planes never clash. Components that are not handed the object find their
plane's metrics with :func:`metrics_for` (keyed by the API client they already hold); an
unbound client gets a private, unserved instance, so calls are always safe.

Call sites stay one-liners: the Job controller opens :meth:`JobletMetrics.job_sync` around a
sync and marks mode/action through the context-local :func:`job_sync_mode` /
:func:`job_sync_action`; everything else is a plain method call. The API middleware
(:class:`ApiMetricsMiddleware`) and the request classifier (:func:`classify_request`) live
here too; the classifier is pure.

One module (~520 lines): every series of one control plane in one registry, so a reader sees
all names and labels together.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from joblet.clock import Clock, RealClock

Obj = dict[str, Any]

#: job_controller_job_sync_duration_seconds: ExponentialBuckets(0.004, 2, 15).
SYNC_BUCKETS = tuple(0.004 * 2**k for k in range(15))
#: cronjob_controller_job_creation_skew_duration_seconds: ExponentialBuckets(1, 2, 10).
SKEW_BUCKETS = tuple(float(2**k) for k in range(10))
#: ttl_after_finished_controller_job_deletion_duration_seconds: ExponentialBuckets(0.1, 2, 14).
TTL_BUCKETS = tuple(0.1 * 2**k for k in range(14))
#: API and store latencies: 0.5 ms .. ~16 s.
LATENCY_BUCKETS = tuple(0.0005 * 2**k for k in range(16))

SYNC_ACTIONS = ("reconciling", "tracking", "pods_created", "pods_deleted")
FAILURE_POLICY_ACTIONS = ("FailJob", "FailIndex", "Ignore", "Count")
SUCCESS_TYPES = ("Complete", "SuccessCriteriaMet")


# --------------------------------------------------------------------------- pure helpers

def completion_mode(job: Obj) -> str:
    """``Indexed`` or ``NonIndexed`` (the metric label values)."""
    mode = (job.get("spec") or {}).get("completionMode") or "NonIndexed"
    return "Indexed" if mode == "Indexed" else "NonIndexed"


def finished_result(condition: Obj) -> str:
    """``succeeded`` for a Complete/SuccessCriteriaMet condition, else ``failed``."""
    return "succeeded" if condition.get("type") in SUCCESS_TYPES else "failed"


def counters_of(job: Obj | None) -> tuple[int, int]:
    status = (job or {}).get("status") or {}
    return int(status.get("succeeded") or 0), int(status.get("failed") or 0)


def pods_finished_delta(before: Obj | None, after: Obj) -> tuple[int, int]:
    """New succeeded and failed pods counted by a status write (never negative)."""
    s0, f0 = counters_of(before)
    s1, f1 = counters_of(after)
    if before is not None and ((before.get("metadata") or {}).get("uid") != (after.get("metadata") or {}).get("uid")):
        s0 = f0 = 0
    return max(0, s1 - s0), max(0, f1 - f0)


def creation_reason(job: Obj, terminating: int = 0) -> str:
    """job_pods_creation_total ``reason``: a first pod, or a replacement under podReplacementPolicy."""
    status = job.get("status") or {}
    if int(status.get("failed") or 0) == 0 and terminating == 0 and not status.get("failedIndexes"):
        return "new"
    policy = (job.get("spec") or {}).get("podReplacementPolicy") or "TerminatingOrFailed"
    return "recreate_failed" if policy == "Failed" else "recreate_terminating_or_failed"


def pod_finished_with_finalizer(pod: Obj | None) -> bool:
    if pod is None:
        return False
    phase = (pod.get("status") or {}).get("phase")
    finalizers = (pod.get("metadata") or {}).get("finalizers") or []
    return phase in ("Succeeded", "Failed") and "batch.kubernetes.io/job-tracking" in finalizers


def tracking_finalizer_events(old: Obj | None, new: Obj | None) -> list[str]:
    """``add``/``delete`` events of job_controller_terminated_pods_tracking_finalizer_total.

    ``add``: a pod became terminated while holding the tracking finalizer; ``delete``: a
    terminated pod that held it lost it (or is gone).
    """
    was, now = pod_finished_with_finalizer(old), pod_finished_with_finalizer(new)
    if now and not was:
        return ["add"]
    if was and not now:
        return ["delete"]
    return []


def pod_outcome(pod: Obj) -> tuple[str, str]:
    """``(phase, reason)`` of a finished pod: the pod's reason, else its first terminated
    container's (Completed, Error, OOMKilled, DeadlineExceeded, ...)."""
    status = pod.get("status") or {}
    phase = str(status.get("phase") or "Unknown")
    if status.get("reason"):
        return phase, str(status["reason"])
    for cs in status.get("containerStatuses") or []:
        term = (cs.get("state") or {}).get("terminated") or {}
        if term.get("reason"):
            return phase, str(term["reason"])
    return phase, "Completed" if phase == "Succeeded" else "Unknown"


VERBS = frozenset({"GET", "LIST", "WATCH", "CREATE", "POST", "PUT", "PATCH", "DELETE", "DELETECOLLECTION",
                   "HEAD", "OPTIONS"})
NON_RESOURCE = frozenset({"version", "healthz", "readyz", "livez", "openapi", "metrics", "ui", "api", "apis"})


@dataclass(frozen=True)
class RequestClass:
    verb: str
    resource: str
    subresource: str


#: resource plural → its subresources: the labels a request may get (the served resource table,
#: handed in by the API server; this module sits below the API layer)
ServedResources = Mapping[str, tuple[str, ...]]


def classify_request(method: str, path: str, query: str, served: ServedResources) -> RequestClass:
    """Kubernetes-style ``verb`` (LIST, WATCH, GET, POST, ...) and ``resource`` of a request.

    Every label comes from a bounded set, so junk paths cannot grow the series (SEC-12):
    non-resource paths are labelled by their first segment from a fixed set, resources and
    subresources only when joblet serves them, verbs from :data:`VERBS`; anything else is ``other``.
    """
    segs = [s for s in path.split("/") if s]
    rest: list[str] | None = None
    if len(segs) >= 3 and segs[0] == "api":
        rest = segs[2:]
    elif len(segs) >= 4 and segs[0] == "apis":
        rest = segs[3:]
    if rest is None:
        first = segs[0] if segs else ""
        name = first if first in NON_RESOURCE else ("ui" if not segs else "other")
        verb = method.upper()
        return RequestClass(verb if verb in VERBS else "other", name, "")
    if len(rest) >= 3 and rest[0] == "namespaces":
        rest = rest[2:]
    resource = rest[0] if rest else ""
    has_name = len(rest) >= 2
    sub = rest[2] if len(rest) >= 3 else ""
    watch = any(p in ("watch=1", "watch=true", "watch=True") for p in query.split("&"))
    verb = method.upper()
    if verb == "GET" and not has_name:
        verb = "WATCH" if watch else "LIST"
    elif verb == "DELETE" and not has_name:
        verb = "DELETECOLLECTION"
    elif verb == "POST" and not has_name:
        verb = "CREATE"
    subresources = served.get(resource)
    if subresources is None:
        resource, sub = "other", ""
    elif sub and sub not in subresources:
        sub = "other"
    return RequestClass(verb if verb in VERBS else "other", resource, sub)


# --------------------------------------------------------------------------- the metrics

_current_sync: contextvars.ContextVar[_SyncRecord | None] = contextvars.ContextVar("joblet_job_sync", default=None)


@dataclass
class _SyncRecord:
    mode: str | None = None
    action: str = "reconciling"


def job_sync_mode(job: Obj) -> None:
    """Inside :meth:`JobletMetrics.job_sync`: this sync is of an unfinished Job of this mode
    (only such syncs are observed, as upstream)."""
    rec = _current_sync.get()
    if rec is not None:
        rec.mode = completion_mode(job)


def job_sync_action(action: str) -> None:
    """Inside :meth:`JobletMetrics.job_sync`: what the sync did (pods_created, pods_deleted, tracking)."""
    rec = _current_sync.get()
    if rec is not None:
        rec.action = action


class WorkQueueCollector(Collector):
    """``workqueue_depth`` and ``joblet_workqueue_delayed`` per queue, read at scrape time."""

    def __init__(self, queues: Callable[[], Iterable[Any]]) -> None:
        self.queues = queues

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily("workqueue_depth", "Current depth of a work queue (ready keys).", labels=["name"])
        delayed = GaugeMetricFamily("joblet_workqueue_delayed", "Keys waiting for a delayed add, per work queue.",
                                    labels=["name"])
        totals: dict[str, tuple[int, int]] = {}
        try:
            queues = list(self.queues())
        except Exception:
            queues = []
        for q in queues:
            name = str(getattr(q, "name", "") or "unnamed")
            ready = len(q)
            waiting = len(q.waiting()) if hasattr(q, "waiting") else 0
            r0, w0 = totals.get(name, (0, 0))
            totals[name] = (r0 + ready, w0 + waiting)
        for name, (ready, waiting) in sorted(totals.items()):
            depth.add_metric([name], ready)
            delayed.add_metric([name], waiting)
        yield depth
        yield delayed


class JobletMetrics:
    """All series of one control plane, in its own registry."""

    def __init__(self, clock: Clock | None = None, registry: CollectorRegistry | None = None) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]  # upstream has no *_created series
        self.clock: Clock = clock or RealClock()
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        sync_labels = ["completion_mode", "result", "action"]
        # -- job controller (upstream names) --
        self.job_sync_duration_seconds = Histogram(
            "job_controller_job_sync_duration_seconds", "The time it took to sync a job",
            sync_labels, buckets=SYNC_BUCKETS, registry=r)
        self.job_syncs_total = Counter(
            "job_controller_job_syncs", "The number of job syncs", sync_labels, registry=r)
        self.jobs_finished_total = Counter(
            "job_controller_jobs_finished", "The number of finished jobs",
            ["completion_mode", "result", "reason"], registry=r)
        self.job_pods_finished_total = Counter(
            "job_controller_job_pods_finished", "The number of finished Pods that are fully tracked",
            ["completion_mode", "result"], registry=r)
        self.pod_failures_handled_by_failure_policy_total = Counter(
            "job_controller_pod_failures_handled_by_failure_policy",
            "The number of failed Pods handled by failure policy with respect to the failure policy action "
            "applied based on the matched rule", ["action"], registry=r)
        self.terminated_pods_tracking_finalizer_total = Counter(
            "job_controller_terminated_pods_tracking_finalizer",
            "The number of terminated pods (phase=Failed|Succeeded) that have the finalizer "
            "batch.kubernetes.io/job-tracking", ["event"], registry=r)
        self.job_finished_indexes_total = Counter(
            "job_controller_job_finished_indexes", "The number of finished indexes",
            ["status", "backoffLimit"], registry=r)
        self.job_pods_creation_total = Counter(
            "job_controller_job_pods_creation", "The number of Pods created by the Job controller",
            ["reason", "status"], registry=r)
        # -- cronjob and ttl controllers (upstream names) --
        self.cronjob_job_creation_skew_seconds = Histogram(
            "cronjob_controller_job_creation_skew_duration_seconds",
            "Time between when a cronjob is scheduled to be run, and when the corresponding job is created",
            buckets=SKEW_BUCKETS, registry=r)
        self.ttl_job_deletion_duration_seconds = Histogram(
            "ttl_after_finished_controller_job_deletion_duration_seconds",
            "The time it took to delete the job since it became eligible for deletion",
            buckets=TTL_BUCKETS, registry=r)
        # -- joblet's own --
        self.pods_started_total = Counter(
            "joblet_pods_started", "Pods whose first container the node agent started", ["node"], registry=r)
        self.pods_finished_total = Counter(
            "joblet_pods_finished", "Pods that reached a terminal phase on a node, by phase and reason",
            ["node", "phase", "reason"], registry=r)
        self.store_write_duration_seconds = Histogram(
            "joblet_store_write_duration_seconds", "Latency of store writes (commit: one batched transaction)",
            ["operation"], buckets=LATENCY_BUCKETS, registry=r)
        self.api_request_duration_seconds = Histogram(
            "apiserver_request_duration_seconds",
            "API request latency until the response starts, by verb, resource, subresource and code",
            ["verb", "resource", "subresource", "code"], buckets=LATENCY_BUCKETS, registry=r)
        self.api_requests_total = Counter(
            "apiserver_request", "API requests by verb, resource, subresource and code",
            ["verb", "resource", "subresource", "code"], registry=r)
        self.alerts_total = Counter(
            "joblet_alerts", "Alert deliveries by trigger and result (sent/failed)", ["trigger", "result"], registry=r)
        self.log_files_pruned_total = Counter(
            "joblet_log_files_pruned", "Container log files removed by retention", registry=r)
        self._queue_sources: list[Callable[[], Iterable[Any]]] = []
        r.register(WorkQueueCollector(self._queues))
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}

    def _child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, looked up once: every label here takes a few values only,
        and prometheus_client's lookup (checks, a lock) cost ~1% of a pod's CPU at five per pod."""
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    # -- exposition -------------------------------------------------------------------------

    def exposition(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)

    # -- job controller ---------------------------------------------------------------------

    @contextlib.contextmanager
    def job_sync(self) -> Iterator[None]:
        """Around one Job sync: observes duration and count once :func:`job_sync_mode` marked it."""
        rec = _SyncRecord()
        token = _current_sync.set(rec)
        start = self.clock.monotonic()
        result = "error"
        try:
            yield
            result = "success"
        finally:
            _current_sync.reset(token)
            if rec.mode is not None:
                labels = (rec.mode, result, rec.action)
                self._child(self.job_sync_duration_seconds, *labels).observe(max(0.0, self.clock.monotonic() - start))
                self._child(self.job_syncs_total, *labels).inc()

    def job_finished(self, job: Obj, condition: Obj) -> None:
        self._child(self.jobs_finished_total, completion_mode(job), finished_result(condition),
                    str(condition.get("reason") or "")).inc()

    def job_pods_finished(self, before: Obj | None, after: Obj) -> None:
        succeeded, failed = pods_finished_delta(before, after)
        mode = completion_mode(after)
        if succeeded:
            self._child(self.job_pods_finished_total, mode, "succeeded").inc(succeeded)
        if failed:
            self._child(self.job_pods_finished_total, mode, "failed").inc(failed)

    def failure_policy_actions(self, actions: dict[str, int]) -> None:
        for action, n in actions.items():
            if n:
                self._child(self.pod_failures_handled_by_failure_policy_total, action).inc(n)

    def tracking_finalizer(self, old: Obj | None, new: Obj | None) -> None:
        for event in tracking_finalizer_events(old, new):
            self._child(self.terminated_pods_tracking_finalizer_total, event).inc()

    def finished_indexes(self, job: Obj, succeeded: int, failed: int) -> None:
        """job_finished_indexes_total: indexes a status write finished (see
        joblet.controllers.job.decisions.finished_indexes_delta)."""
        limit = "perIndex" if (job.get("spec") or {}).get("backoffLimitPerIndex") is not None else "global"
        if succeeded:
            self._child(self.job_finished_indexes_total, "succeeded", limit).inc(succeeded)
        if failed:
            self._child(self.job_finished_indexes_total, "failed", limit).inc(failed)

    def pod_created(self, job: Obj, ok: bool, terminating: int = 0) -> None:
        self._child(self.job_pods_creation_total, creation_reason(job, terminating), "succeeded" if ok else "failed").inc()

    # -- cronjob / ttl controllers ------------------------------------------------------------

    def cronjob_creation_skew(self, seconds: float) -> None:
        """CronJob controller: seconds between a Job's scheduled time and its creation."""
        self.cronjob_job_creation_skew_seconds.observe(max(0.0, seconds))

    def ttl_deletion_duration(self, seconds: float) -> None:
        """TTL controller: seconds between a Job's expiry (finish + TTL) and its deletion."""
        self.ttl_job_deletion_duration_seconds.observe(max(0.0, seconds))

    # -- node agent ---------------------------------------------------------------------------

    def pod_started(self, node: str = "") -> None:
        self._child(self.pods_started_total, node).inc()

    def pod_finished(self, pod: Obj, node: str = "") -> None:
        phase, reason = pod_outcome(pod)
        self._child(self.pods_finished_total, node, phase, reason).inc()

    # -- store, queues, alerts, logs -----------------------------------------------------------

    def store_write(self, operation: str, seconds: float) -> None:
        self._child(self.store_write_duration_seconds, operation).observe(max(0.0, seconds))

    def add_queue_source(self, source: Callable[[], Iterable[Any]]) -> None:
        """Register a callable returning WorkQueue objects to report at scrape time."""
        self._queue_sources.append(source)

    def _queues(self) -> Iterator[Any]:
        for source in self._queue_sources:
            yield from source()

    def alert(self, trigger: str, ok: bool) -> None:
        self._child(self.alerts_total, trigger, "sent" if ok else "failed").inc()

    def logs_pruned(self, n: int) -> None:
        if n:
            self.log_files_pruned_total.inc(n)


# --------------------------------------------------------------------------- lookup by client

_bound: weakref.WeakKeyDictionary[Any, JobletMetrics] = weakref.WeakKeyDictionary()
_unbound: JobletMetrics | None = None


def bind(client: Any, metrics: JobletMetrics) -> None:
    """Make ``metrics_for(client)`` return ``metrics`` (the control plane does this once)."""
    _bound[client] = metrics


def metrics_for(client: Any) -> JobletMetrics:
    """The metrics of the plane that owns ``client``; an unserved private instance otherwise."""
    global _unbound
    with contextlib.suppress(TypeError):
        found = _bound.get(client)
        if found is not None:
            return found
    if _unbound is None:
        _unbound = JobletMetrics()
    return _unbound


# --------------------------------------------------------------------------- store timing

class TimedStore:
    """A Store proxy that times create/update/delete (and the backend's batched commit)."""

    def __init__(self, store: Any, metrics: JobletMetrics) -> None:
        self._store = store
        self._metrics = metrics
        persist = getattr(store, "_persist", None)
        if callable(persist):
            def timed_persist(*args: Any, **kwargs: Any) -> Any:
                start = time.perf_counter()
                try:
                    return persist(*args, **kwargs)
                finally:
                    metrics.store_write("commit", time.perf_counter() - start)
            store._persist = timed_persist

    def _timed(self, op: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            self._metrics.store_write(op, time.perf_counter() - start)

    def create(self, key: Any, obj: Obj) -> Obj:
        result: Obj = self._timed("create", self._store.create, key, obj)
        return result

    def update(self, key: Any, obj: Obj, expected_rv: int | None = None) -> Obj:
        result: Obj = self._timed("update", self._store.update, key, obj, expected_rv)
        return result

    def delete(self, key: Any, expected_rv: int | None = None) -> Obj:
        result: Obj = self._timed("delete", self._store.delete, key, expected_rv)
        return result

    def flush(self) -> None:
        self._timed("flush", self._store.flush)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


# --------------------------------------------------------------------------- ASGI middleware

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[Message], Any]
ASGIApp = Callable[[Scope, Receive, Send], Any]


class ApiMetricsMiddleware:
    """Observes every HTTP request's latency (to the start of the response) and status code."""

    def __init__(self, app: ASGIApp, metrics: JobletMetrics, served: ServedResources) -> None:
        self.app = app
        self.metrics = metrics
        self.served = served

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"")
        cls = classify_request(str(scope.get("method", "GET")), str(scope.get("path", "")),
                               query.decode("latin-1") if isinstance(query, bytes) else str(query), self.served)
        start = time.perf_counter()
        observed = False

        def observe(code: int) -> None:
            nonlocal observed
            if observed:
                return
            observed = True
            # An unauthenticated caller learns nothing and adds no series: no resource on a 401.
            labels = (cls.verb, "", "", str(code)) if code == 401 else (cls.verb, cls.resource, cls.subresource,
                                                                        str(code))
            self.metrics.api_request_duration_seconds.labels(*labels).observe(time.perf_counter() - start)
            self.metrics.api_requests_total.labels(*labels).inc()

        async def send_wrapper(message: Message) -> None:
            if message.get("type") == "http.response.start":
                observe(int(message.get("status", 0)))
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except BaseException:
            observe(500)
            raise
