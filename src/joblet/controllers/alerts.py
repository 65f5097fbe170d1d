"""The alert controller: a webhook POST when a Job fails (or succeeds, or a CronJob misses a run).

Why: Kubernetes leaves failure notification to external adapters (kubernetes#22207,
#40871; whole projects exist for it). joblet sends it itself: when a Job gets
``Failed=True`` (and, per the Job's ``joblet.dev/alert-on: failure|success|always``
annotation, ``Complete=True``), or a CronJob records a ``MissSchedule`` /
``TooManyMissedTimes`` event, every webhook from ``--alert-webhook`` and from the
``joblet.dev/alert-webhook`` annotation (comma-separated; on the Job, its CronJob, or the
CronJob for its events; used only when it matches a ``--alert-webhook-allow`` pattern, see
:func:`url_allowed`) receives one JSON document: what failed, the failed pods with exit
codes and the last 20 lines of their logs, a dashboard link, the time.

Guarantees:

* **Never blocks a controller.** A sync only claims the alert; deliveries are keys of their
  own work queue, each attempt bounded by a timeout, retries re-queued with exponential
  backoff (bounded attempts) instead of sleeping in a worker.
* **At most once per Job uid, across restarts.** Before delivering, the Job is annotated
  ``joblet.dev/alerted: <trigger>`` with a resourceVersion precondition (CronJob events:
  the Event is annotated). A claimed alert is never sent again, even if the process dies
  mid-delivery.
* **Not a request forgery tool.** Anyone who can create a Job can set the annotation, so
  annotation URLs are ignored unless the server allows them, and their Events never carry
  transport details (HTTP status, connection errors) that would turn alerts into a port
  scanner. Delivery ignores ``HTTP(S)_PROXY`` and never follows redirects.
* **Secrets redacted, best effort.** Log lines and messages containing the value of any
  Secret the pod references (env ``secretKeyRef``, ``envFrom``, secret volumes), or its
  base64 or hex encoding, are redacted. A program that transforms a value otherwise (splits,
  reverses, re-encodes it) defeats this; values under 4 characters are never redacted.
* **Every outcome is visible**: Event ``AlertSent`` (Normal) or ``AlertFailed`` (Warning)
  on the Job (or CronJob), with the webhook URL shortened to scheme and host.

Decisions are pure functions (:func:`job_trigger`, :func:`wants_alert`, :func:`webhooks_for`,
:func:`build_job_payload`, :func:`redact_lines`, ...); the controller does the I/O through the
:class:`Sender` protocol (:class:`HttpxSender` for real, any fake in tests).

One module (~650 lines): the alert controller, its pure decisions and its delivery queue are
one feature; the decisions are the first half, pure and table-tested.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import itertools
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

from joblet.client.events import ClientEventRecorder, EventRecorder
from joblet.client.interface import Client
from joblet.clock import Clock, parse_time_or_none, rfc3339
from joblet.controllers.result import DONE, Result
from joblet.controllers.runtime import Controller, Informer, InformerFactory, QueueWorker, WorkQueue
from joblet.errors import ApiError, Conflict, NotFound
from joblet.metrics import JobletMetrics, metrics_for
from joblet.objects import controller_ref, key_of, split_key

Obj = dict[str, Any]
log = logging.getLogger(__name__)

ALERT_ON = "joblet.dev/alert-on"
ALERT_WEBHOOK = "joblet.dev/alert-webhook"
ALERTED = "joblet.dev/alerted"
COMPONENT = "joblet-alerts"
CRONJOB_ALERT_REASONS = frozenset({"MissSchedule", "TooManyMissedTimes"})
LOG_TAIL_LINES = 20
MAX_FAILED_PODS = 10
MIN_SECRET_LENGTH = 4
REDACTED = "[redacted: line contains a secret value]"
#: Finishes older than this when first seen (e.g. history from before alerting was set up) are not alerted.
DEFAULT_MAX_AGE_SECONDS = 3600.0
COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"


# --------------------------------------------------------------------------- pure decisions

@dataclass(frozen=True)
class Trigger:
    """Why an alert is due: ``failure``, ``success`` or ``missed-schedule``."""

    kind: str
    reason: str
    message: str
    at: str = ""


def _true_condition(job: Obj, ctype: str) -> Obj | None:
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype and c.get("status") == "True":
            return dict(c)
    return None


def job_trigger(job: Obj) -> Trigger | None:
    """The finish of a Job as an alert trigger (Failed=True, else Complete=True), or None."""
    failed = _true_condition(job, "Failed")
    if failed is not None:
        return Trigger("failure", str(failed.get("reason") or ""), str(failed.get("message") or ""),
                       str(failed.get("lastTransitionTime") or ""))
    complete = _true_condition(job, "Complete")
    if complete is not None:
        return Trigger("success", str(complete.get("reason") or "Completed"), str(complete.get("message") or ""),
                       str(complete.get("lastTransitionTime") or ""))
    return None


def alert_on(obj: Obj | None) -> str:
    """The ``joblet.dev/alert-on`` policy: failure (default), success or always."""
    value = str(((obj or {}).get("metadata") or {}).get("annotations", {}).get(ALERT_ON) or "").strip().lower()
    return value if value in ("failure", "success", "always") else "failure"


def wants_alert(trigger_kind: str, policy: str) -> bool:
    if policy == "always":
        return True
    if trigger_kind == "missed-schedule":
        return policy != "success"
    return trigger_kind == policy


def annotation_webhooks(obj: Obj | None) -> list[str]:
    raw = str(((obj or {}).get("metadata") or {}).get("annotations", {}).get(ALERT_WEBHOOK) or "")
    return [u.strip() for u in raw.split(",") if u.strip()]


_DEFAULT_PORTS = {"http": 80, "https": 443}


def url_allowed(url: str, patterns: Iterable[str]) -> bool:
    """Whether an annotation webhook URL matches one of the ``--alert-webhook-allow`` patterns.

    A pattern is ``[SCHEME://]HOST[:PORT][/PATH-PREFIX]``: the host compares exactly
    (case-insensitive; ``*.example.com`` matches any subdomain), the port defaults to the
    scheme's (any of 80/443 without a scheme), and the URL's path must start with the prefix
    at a ``/`` boundary. URLs with credentials, a fragment or dot segments never match.
    """
    try:
        parts = urlsplit(url)
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return False
    host = (parts.hostname or "").lower()
    if parts.scheme not in _DEFAULT_PORTS or not host or parts.username is not None or parts.password is not None \
            or parts.fragment or any(seg in (".", "..") or "%2e" in seg.lower() for seg in parts.path.split("/")):
        return False
    for pattern in patterns:
        text = pattern.strip()
        if "://" not in text:
            text = f"{parts.scheme}://{text}"
        try:
            want = urlsplit(text)
            want_port = want.port or _DEFAULT_PORTS.get(want.scheme)
        except ValueError:
            continue
        want_host = (want.hostname or "").lower()
        if want.scheme != parts.scheme or not want_host or want_port != port:
            continue
        if want_host.startswith("*."):
            if not host.endswith(want_host[1:]):
                continue
        elif host != want_host:
            continue
        prefix = want.path.rstrip("/")
        if not prefix or parts.path == prefix or parts.path.startswith(prefix + "/"):
            return True
    return False


def webhooks_for(global_hooks: Iterable[str], *objs: Obj | None, allow: Iterable[str] = ()) -> list[str]:
    """``--alert-webhook`` URLs, then each object's annotation URLs that ``allow`` permits,
    without duplicates."""
    patterns = list(allow)
    seen: dict[str, None] = {url: None for url in global_hooks if url.startswith(("http://", "https://"))}
    for url in itertools.chain(*(annotation_webhooks(o) for o in objs)):
        if url_allowed(url, patterns):
            seen.setdefault(url, None)
    return list(seen)


def already_alerted(obj: Obj) -> bool:
    return bool(((obj.get("metadata") or {}).get("annotations") or {}).get(ALERTED))


def too_old(trigger: Trigger, now: datetime, max_age: float) -> bool:
    at = parse_time_or_none(trigger.at) if trigger.at else None
    return at is not None and (now - at).total_seconds() > max_age


def safe_url(url: str) -> str:
    """A webhook URL without credentials, path or query (those often carry tokens)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    suffix = "/…" if parts.path not in ("", "/") or parts.query else ""
    return f"{parts.scheme}://{host}{suffix}"


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Delay before retry number ``attempt`` (1-based): base·2^(attempt-1), capped."""
    return float(min(cap, base * (2 ** max(0, attempt - 1))))


def secret_refs(pod: Obj) -> set[str]:
    """Names of the Secrets a pod references (env, envFrom, volumes, projected volumes)."""
    spec = pod.get("spec") or {}
    names: set[str] = set()
    for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        for env in c.get("env") or []:
            ref = (env.get("valueFrom") or {}).get("secretKeyRef") or {}
            if ref.get("name"):
                names.add(str(ref["name"]))
        for src in c.get("envFrom") or []:
            ref = src.get("secretRef") or {}
            if ref.get("name"):
                names.add(str(ref["name"]))
    for vol in spec.get("volumes") or []:
        if (vol.get("secret") or {}).get("secretName"):
            names.add(str(vol["secret"]["secretName"]))
        for source in (vol.get("projected") or {}).get("sources") or []:
            if (source.get("secret") or {}).get("name"):
                names.add(str(source["secret"]["name"]))
    return names


def secret_values(secret: Obj) -> set[str]:
    """Every value (and every line of a multi-line value) of a Secret worth redacting, with
    the base64 (standard and URL-safe, padded or not) and hex spellings of each."""
    raws: list[bytes] = []
    for raw in (secret.get("data") or {}).values():
        try:
            raws.append(base64.b64decode(str(raw), validate=True))
        except (binascii.Error, ValueError):
            continue
    raws.extend(str(v).encode() for v in (secret.get("stringData") or {}).values())
    found: set[str] = set()
    for value in raws:
        text = value.decode("utf-8", errors="replace")
        for piece in [text, *text.splitlines()]:
            piece = piece.strip()
            if len(piece) < MIN_SECRET_LENGTH:
                continue
            found.add(piece)
            data = piece.encode()
            for encoded in (base64.b64encode(data), base64.urlsafe_b64encode(data)):
                found.add(encoded.decode())
                found.add(encoded.decode().rstrip("="))
            found.update((data.hex(), data.hex().upper()))
    return found


def redact_text(text: str, secrets: set[str]) -> str:
    """``text`` with each secret value replaced by ``[redacted]``."""
    for s in sorted(secrets, key=len, reverse=True):
        if s in text:
            text = text.replace(s, "[redacted]")
    return text


def redact_lines(lines: list[str], secrets: set[str]) -> list[str]:
    """Log lines, any line containing a secret value replaced whole."""
    if not secrets:
        return lines
    return [REDACTED if any(s in line for s in secrets) else line for line in lines]


def terminated_containers(pod: Obj) -> list[tuple[str, int, str]]:
    """``(container, exitCode, reason)`` of each container's latest termination."""
    out: list[tuple[str, int, str]] = []
    status = pod.get("status") or {}
    for cs in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]:
        term = (cs.get("state") or {}).get("terminated") or (cs.get("lastState") or {}).get("terminated")
        if term:
            out.append((str(cs.get("name") or ""), int(term.get("exitCode") or 0), str(term.get("reason") or "")))
    return out


def is_failed_pod(pod: Obj) -> bool:
    if (pod.get("status") or {}).get("phase") == "Failed":
        return True
    return any(code != 0 for _, code, _ in terminated_containers(pod))


def failed_pods(pods: list[Obj], limit: int = MAX_FAILED_PODS) -> list[Obj]:
    """The most recently created failed pods, newest first."""
    failed = [p for p in pods if is_failed_pod(p)]
    failed.sort(key=lambda p: str((p.get("metadata") or {}).get("creationTimestamp") or ""), reverse=True)
    return failed[:limit]


def dashboard_link(base: str, kind: str, namespace: str, name: str) -> str:
    if not base:
        return ""
    return f"{base.rstrip('/')}/ui/{kind}/{namespace}/{name}"


def pod_entry(pod: Obj, log_tails: dict[str, list[str]], secrets: set[str]) -> Obj:
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    index = (meta.get("annotations") or {}).get(COMPLETION_INDEX)
    containers = []
    for name, code, reason in terminated_containers(pod):
        containers.append({"name": name, "exitCode": code, "reason": reason,
                           "logTail": redact_lines(log_tails.get(name, []), secrets)})
    return {
        "name": meta.get("name", ""),
        "uid": meta.get("uid", ""),
        "index": int(index) if isinstance(index, str) and index.isdigit() else None,
        "phase": status.get("phase", ""),
        "reason": redact_text(str(status.get("reason") or ""), secrets),
        "message": redact_text(str(status.get("message") or ""), secrets),
        "exitCodes": {c["name"]: c["exitCode"] for c in containers},
        "containers": containers,
    }


def build_job_payload(job: Obj, trigger: Trigger, pods: list[Obj], log_tails: dict[str, dict[str, list[str]]],
                      secrets: set[str], dashboard_url: str, now: datetime) -> Obj:
    """The JSON document POSTed for a Job alert (pure)."""
    meta = job.get("metadata") or {}
    status = job.get("status") or {}
    ref = controller_ref(job)
    ns, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
    entries = [pod_entry(p, log_tails.get(str((p.get("metadata") or {}).get("name") or ""), {}), secrets)
               for p in pods]
    return {
        "kind": {"failure": "JobFailed", "success": "JobSucceeded"}.get(trigger.kind, "JobAlert"),
        "trigger": trigger.kind,
        "job": name,
        "namespace": ns,
        "uid": meta.get("uid", ""),
        "cronJob": ref.get("name") if ref and ref.get("kind") == "CronJob" else None,
        "reason": trigger.reason,
        "message": redact_text(trigger.message, secrets),
        "status": {k: status.get(k, 0) for k in ("active", "succeeded", "failed")},
        "failedIndexes": status.get("failedIndexes"),
        "failedPods": entries,
        "dashboardUrl": dashboard_link(dashboard_url, "jobs", ns, name),
        "finishedAt": trigger.at or None,
        "time": rfc3339(now),
    }


def build_cronjob_payload(cronjob: Obj | None, event: Obj, dashboard_url: str, now: datetime) -> Obj:
    involved = event.get("involvedObject") or {}
    ns, name = str(involved.get("namespace") or ""), str(involved.get("name") or "")
    return {
        "kind": "CronJobMissedSchedule",
        "trigger": "missed-schedule",
        "cronJob": name,
        "namespace": ns,
        "uid": involved.get("uid") or ((cronjob or {}).get("metadata") or {}).get("uid", ""),
        "reason": event.get("reason", ""),
        "message": event.get("message", ""),
        "count": event.get("count", 1),
        "dashboardUrl": dashboard_link(dashboard_url, "cronjobs", ns, name),
        "time": rfc3339(now),
    }


# --------------------------------------------------------------------------- delivery I/O

class Sender(Protocol):
    async def post(self, url: str, payload: Obj, timeout: float) -> int:
        """POST ``payload`` as JSON; the HTTP status, or raise on a transport error/timeout."""

    async def close(self) -> None: ...


class HttpxSender:
    def __init__(self) -> None:
        self._client: httpx.AsyncClient | None = None

    async def post(self, url: str, payload: Obj, timeout: float) -> int:
        if self._client is None:
            self._client = httpx.AsyncClient(follow_redirects=False, trust_env=False,
                                             headers={"User-Agent": "joblet-alerts"})
        response = await self._client.post(url, json=payload, timeout=httpx.Timeout(timeout))
        return response.status_code

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


@dataclass
class Delivery:
    """One alert to one webhook; its attempts are work-queue keys of their own."""

    url: str
    subject: Obj  # the Job or CronJob the Events go on
    trigger: str
    payload: Obj | None = None  # built lazily by the first attempt
    build: Any = None  # async () -> Obj
    attempts: int = 0
    errors: list[str] = field(default_factory=list)


def retryable(status: int) -> bool:
    return status == 429 or status >= 500


class AlertController(Controller):
    """Claims alerts on Job/CronJob transitions and delivers them from its own queue."""

    name = "alert-controller"

    def __init__(
        self,
        client: Client,
        clock: Clock,
        informers: InformerFactory,
        webhooks: list[str],
        dashboard_url: str,
        *,
        recorder: EventRecorder | None = None,
        log_store: Any = None,
        sender: Sender | None = None,
        metrics: JobletMetrics | None = None,
        timeout: float = 5.0,
        max_attempts: int = 4,
        backoff_base: float = 1.0,
        backoff_max: float = 30.0,
        delivery_workers: int = 4,
        max_age: float = DEFAULT_MAX_AGE_SECONDS,
        webhook_allow: Iterable[str] = (),
    ) -> None:
        self.client = client
        self.clock = clock
        self.webhooks = list(webhooks)
        self.webhook_allow = list(webhook_allow)
        self.dashboard_url = dashboard_url
        self.recorder: EventRecorder = recorder or ClientEventRecorder(client, clock, COMPONENT)
        self.log_store = log_store if log_store is not None else getattr(client, "log_store", None)
        self.sender: Sender = sender or HttpxSender()
        self.metrics = metrics or metrics_for(client)
        self.timeout = timeout
        self.max_attempts = max(1, max_attempts)
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.delivery_workers = delivery_workers
        self.max_age = max_age
        self.jobs: Informer = informers.get("jobs")
        self.cronjobs: Informer = informers.get("cronjobs")
        self.events: Informer = informers.get("events", field_selector="involvedObject.kind=CronJob")
        self.queue = WorkQueue(clock, "alert")
        self.event_queue = WorkQueue(clock, "alert-cronjob-event")
        self.delivery_queue = WorkQueue(clock, "alert-delivery")
        self.deliveries: dict[str, Delivery] = {}
        self._seq = itertools.count(1)
        self.jobs.add_handler(self._on_job, lambda _old, cur: self._on_job(cur))
        self.events.add_handler(self._on_event, lambda _old, cur: self._on_event(cur))

    # -- Controller protocol ------------------------------------------------------------------

    def informers(self) -> list[Informer]:
        return [self.jobs, self.cronjobs, self.events]

    def queue_workers(self) -> list[QueueWorker]:
        return [
            QueueWorker(self.queue, self.sync_job, 1),
            QueueWorker(self.event_queue, self.sync_event, 1),
            QueueWorker(self.delivery_queue, self.deliver, self.delivery_workers),
        ]

    # -- handlers (cheap, pure checks only) -------------------------------------------------------

    def _on_job(self, job: Obj) -> None:
        if job_trigger(job) is not None and not already_alerted(job):
            self.queue.add(key_of(job))

    def _on_event(self, event: Obj) -> None:
        if event.get("reason") in CRONJOB_ALERT_REASONS and not already_alerted(event):
            self.event_queue.add(key_of(event))

    def _owner_cronjob(self, job: Obj) -> Obj | None:
        ref = controller_ref(job)
        if not ref or ref.get("kind") != "CronJob":
            return None
        cj = self.cronjobs.get(f"{(job.get('metadata') or {}).get('namespace', '')}/{ref.get('name', '')}")
        if cj is None or (cj.get("metadata") or {}).get("uid") != ref.get("uid"):
            return None
        return cj

    # -- claiming -----------------------------------------------------------------------------------

    async def _claim(self, resource: str, obj: Obj, value: str) -> bool:
        """Annotate ``obj`` as alerted (resourceVersion precondition). False if someone else did."""
        meta = obj.get("metadata") or {}
        patch = {"metadata": {"annotations": {ALERTED: value}, "resourceVersion": meta.get("resourceVersion")}}
        try:
            await self.client.patch(resource, str(meta.get("name") or ""), patch, str(meta.get("namespace") or ""),
                                    patch_type="merge")
        except NotFound:
            return False
        except Conflict:
            fresh = await self.client.get(resource, str(meta.get("name") or ""), str(meta.get("namespace") or ""))
            if already_alerted(fresh):
                return False
            raise  # retried by the queue against the fresh object
        return True

    async def sync_job(self, key: str) -> Result:
        job = self.jobs.get(key)
        if job is None or already_alerted(job):
            return DONE
        trigger = job_trigger(job)
        if trigger is None:
            return DONE
        cronjob = self._owner_cronjob(job)
        policy = alert_on(job) if ALERT_ON in ((job.get("metadata") or {}).get("annotations") or {}) \
            else alert_on(cronjob)
        if not wants_alert(trigger.kind, policy):
            return DONE
        urls = webhooks_for(self.webhooks, job, cronjob, allow=self.webhook_allow)
        if not urls or too_old(trigger, self.clock.now(), self.max_age):
            return DONE
        if not await self._claim("jobs", job, trigger.kind):
            return DONE
        snapshot = job

        async def build() -> Obj:
            return await self.job_payload(snapshot, trigger)

        self._enqueue(urls, job, trigger.kind, build)
        return DONE

    async def sync_event(self, key: str) -> Result:
        event = self.events.get(key)
        if event is None or already_alerted(event) or event.get("reason") not in CRONJOB_ALERT_REASONS:
            return DONE
        involved = event.get("involvedObject") or {}
        cronjob = self.cronjobs.get(f"{involved.get('namespace', '')}/{involved.get('name', '')}")
        if not wants_alert("missed-schedule", alert_on(cronjob)):
            return DONE
        urls = webhooks_for(self.webhooks, cronjob, allow=self.webhook_allow)
        last = str(event.get("lastTimestamp") or event.get("eventTime") or "")
        if not urls or too_old(Trigger("missed-schedule", "", "", last), self.clock.now(), self.max_age):
            return DONE
        if not await self._claim("events", event, "missed-schedule"):
            return DONE
        subject = cronjob or {"apiVersion": "batch/v1", "kind": "CronJob",
                              "metadata": {"name": involved.get("name", ""), "namespace": involved.get("namespace", ""),
                                           "uid": involved.get("uid", "")}}
        payload = build_cronjob_payload(cronjob, event, self.dashboard_url, self.clock.now())

        async def build() -> Obj:
            return payload

        self._enqueue(urls, subject, "missed-schedule", build)
        return DONE

    def _enqueue(self, urls: list[str], subject: Obj, trigger: str, build: Any) -> None:
        shared: dict[str, Obj] = {}

        async def build_once() -> Obj:
            if "payload" not in shared:
                shared["payload"] = await build()
            return shared["payload"]

        uid = str((subject.get("metadata") or {}).get("uid") or "")
        for url in urls:
            dkey = f"{uid}#{next(self._seq)}"
            self.deliveries[dkey] = Delivery(url, subject, trigger, build=build_once)
            self.delivery_queue.add(dkey)

    # -- payload -------------------------------------------------------------------------------------

    async def job_payload(self, job: Obj, trigger: Trigger) -> Obj:
        meta = job.get("metadata") or {}
        ns, uid = str(meta.get("namespace") or ""), str(meta.get("uid") or "")
        try:
            pods = (await self.client.list("pods", ns, label_selector=f"batch.kubernetes.io/controller-uid={uid}")).items
        except ApiError:
            pods = []
        chosen = failed_pods(pods)
        secrets: set[str] = set()
        for name in sorted(set().union(*(secret_refs(p) for p in chosen)) if chosen else ()):
            with contextlib.suppress(ApiError):
                secrets |= secret_values(await self.client.get("secrets", name, ns))
        tails: dict[str, dict[str, list[str]]] = {}
        for pod in chosen:
            pmeta = pod.get("metadata") or {}
            pname = str(pmeta.get("name") or "")
            for cname, _, _ in terminated_containers(pod):
                tails.setdefault(pname, {})[cname] = await self.log_tail(ns, pname, cname, str(pmeta.get("uid") or ""))
        return build_job_payload(job, trigger, chosen, tails, secrets, self.dashboard_url, self.clock.now())

    async def log_tail(self, namespace: str, pod: str, container: str, uid: str) -> list[str]:
        chunks: list[bytes] = []
        try:
            if self.log_store is not None:
                async for chunk in self.log_store.read(namespace, pod, container=container,
                                                       tail_lines=LOG_TAIL_LINES, uid=uid or None):
                    chunks.append(chunk)
            else:
                async for chunk in self.client.read_log(namespace, pod, container, tail_lines=LOG_TAIL_LINES):
                    chunks.append(chunk)
        except (ApiError, OSError):
            return []
        text = b"".join(chunks).decode("utf-8", errors="replace")
        return text.splitlines()[-LOG_TAIL_LINES:]

    # -- delivery ----------------------------------------------------------------------------------------

    async def deliver(self, key: str) -> Result:
        d = self.deliveries.get(key)
        if d is None:
            return DONE
        if d.payload is None:
            d.payload = await d.build()
        d.attempts += 1
        try:
            status = await self.sender.post(d.url, d.payload, self.timeout)
            error = None if 200 <= status < 300 else f"HTTP {status}"
            retry = error is not None and retryable(status)
        except (httpx.HTTPError, OSError) as err:
            error, retry = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__, True
            status = 0
        # Server-configured webhooks belong to the operator: report what happened. Annotation
        # URLs belong to whoever created the Job: say only whether it worked.
        trusted = d.url in self.webhooks
        if error is None:
            self.deliveries.pop(key, None)
            self.metrics.alert(d.trigger, ok=True)
            detail = f" (HTTP {status})" if trusted else ""
            self.recorder.event(d.subject, "Normal", "AlertSent",
                                f"Alert ({d.trigger}) delivered to {safe_url(d.url)}{detail}",
                                component=COMPONENT)
            return DONE
        d.errors.append(error)
        if retry and d.attempts < self.max_attempts:
            self.delivery_queue.add_after(key, backoff_delay(d.attempts, self.backoff_base, self.backoff_max))
            return DONE
        self.deliveries.pop(key, None)
        self.metrics.alert(d.trigger, ok=False)
        message = (f"Alert ({d.trigger}) to {safe_url(d.url)} failed after {d.attempts} attempt(s): {error}"
                   if trusted else f"Alert ({d.trigger}) to {safe_url(d.url)}: delivery failed")
        self.recorder.event(d.subject, "Warning", "AlertFailed", message, component=COMPONENT)
        return DONE

    def pending(self) -> int:
        """Deliveries not finished yet (tests)."""
        return len(self.deliveries)


__all__ = ["AlertController", "HttpxSender", "Sender", "Trigger", "build_job_payload", "job_trigger", "split_key",
           "url_allowed", "webhooks_for"]
