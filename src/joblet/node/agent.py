"""The node agent: joblet's kubelet.

Why: pods are API objects; something has to turn a pod bound to this node into processes
and report back what happened, with the kubelet's exact status vocabulary, because the Job
controller (and every Kubernetes user) reads it. The agent registers a ``Node``, heartbeats
it, watches pods with ``spec.nodeName=<node>`` (list, then watch from the list's
resourceVersion, relist on 410 Gone) and runs one asyncio task per pod ("pod worker"): init
containers in order, then the regular containers concurrently, restarts per restartPolicy
with crash-loop backoff, ``activeDeadlineSeconds``, graceful deletion. All container state
lives in the runtime's on-disk records, so a restarted agent resumes each pod exactly
(adopting running containers, never re-running a finished one).

Decisions are pure functions at the top (env, argv, limits, QoS, phase, conditions, container
status); the worker and the agent do the I/O.

Documented choices:
* a container with neither ``command`` nor ``args`` cannot run (joblet does not pull images,
  so there is no image entrypoint): it terminates with exit 128, reason ``StartError``;
* restart backoff follows the kubelet: the first restart is immediate, then base, 2*base, ...
  capped at the max (defaults 10 s and 300 s); the container waits in ``CrashLoopBackOff``;
* a missing secret/configMap (or key) referenced by env keeps the container waiting with reason
  ``CreateContainerConfigError`` (message as the kubelet's, e.g. ``secret "x" not found``, and a
  Warning ``Failed`` event ``Error: ...``); a volume that cannot be set up keeps it in
  ``ContainerCreating`` with a ``FailedMount`` event. Both are rechecked with backoff
  (0.2 s doubling to 5 s), so the container starts soon after the object appears;
* every container is contained by bubblewrap (:mod:`joblet.node.sandbox`: own PID, IPC and
  mount namespaces, private ``/dev``, data dir hidden, capabilities as a container runtime
  gives them); volumes (:mod:`joblet.node.volumes`) are bound at their ``mountPath``. Without
  ``bwrap`` pods run uncontained (a loud warning at start-up);
* the termination message: a per-attempt host file (0600, owned by the container's user)
  bound at ``terminationMessagePath`` (default ``/dev/termination-log``, in bwrap's private ``/dev``);
  ``FallbackToLogsOnError`` works everywhere (last 80 lines / 2048 bytes of the log);
* the service-account token volume (``kube-api-access-*`` at
  ``/var/run/secrets/kubernetes.io/serviceaccount``: ``token``, ``ca.crt``, ``namespace``) is
  added by the API's ServiceAccount admission, as upstream; the agent materialises its
  ``serviceAccountToken`` by a TokenRequest bound to the pod (:mod:`joblet.node.tokens`) and
  rewrites it once 80% of its lifetime has passed (checked every ``token_resync_seconds``
  against the injected clock, :meth:`NodeAgent.refresh_tokens`). ``KUBERNETES_SERVICE_HOST``/
  ``PORT`` are set in every pod when the agent knows ``api_url``, so the kubernetes client's
  ``load_incluster_config()`` works unmodified against the HTTPS API (``ca.crt`` is the
  ``kube-root-ca.crt`` ConfigMap, else ``api_ca_file``);
* ``runAsUser``/``runAsGroup`` (pod or container securityContext) are applied by the shim
  (setgroups, setgid, setuid) right before exec; ``runAsNonRoot`` without ``runAsUser`` while
  the agent runs as root is ``container has runAsNonRoot and image will run as root``;
* sidecars (init containers with ``restartPolicy: Always``) start in init order, let init
  progress once running, restart whenever they exit, get SIGTERM (reverse order) once every
  main container has finished, and never decide the phase;
* kubelet events through ``recorder`` (component ``kubelet``): ``Created``, ``Started``,
  ``Killing``, ``BackOff``, ``Failed``, ``FailedMount``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import logging
import os
import socket
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from joblet.api.defaults import qos_class
from joblet.client.events import ClientEventRecorder, EventRecorder
from joblet.client.interface import Client
from joblet.clock import Clock, parse_time_or_none, rfc3339
from joblet.errors import AlreadyExists, ApiError, Conflict, Gone, NotFound
from joblet.metrics import metrics_for
from joblet.node import diskpressure
from joblet.node.cgroups import Limits
from joblet.node.images import path_for_image
from joblet.node.logs import LogStore
from joblet.node.quantity import parse_quantity
from joblet.node.runtimes.base import ContainerExit, ContainerRef, ContainerSpec, RecoveredContainer, Runtime
from joblet.node.sandbox import bwrap_path, effective_capabilities
from joblet.node.tokens import TokenManager
from joblet.node.volumes import (
    PLACEHOLDER_CA,
    Pin,
    SubPathError,
    TokenContext,
    VolumeError,
    VolumeManager,
    container_mounts,
    container_volume_mounts,
    downward_field,
    pod_volumes,
    token_volume_names,
    unmount_all,
)
from joblet.objects import deep_copy, deletion_timestamp, name_of, namespace_of, uid_of

log = logging.getLogger(__name__)

Obj = dict[str, Any]
POD_IP = "127.0.0.1"
DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"
HEARTBEAT_SECONDS = 10.0
#: how often running pods' token volumes are checked for rotation (the kubelet's pod sync period)
TOKEN_RESYNC_SECONDS = 60.0
DEFAULT_TERMINATION_MESSAGE_PATH = "/dev/termination-log"
CONFIG_RETRY_FIRST, CONFIG_RETRY_MAX = 0.2, 5.0
__all__ = ["NodeAgent", "parse_quantity"]

# -- pure decisions ---------------------------------------------------------------------------

def container_limits(container: Obj) -> Limits:
    limits = (container.get("resources") or {}).get("limits") or {}
    memory = int(parse_quantity(limits["memory"])) if "memory" in limits else None
    cpu = int(parse_quantity(limits["cpu"]) * 1000) if "cpu" in limits else None
    return Limits(memory_bytes=memory, cpu_millis=cpu)


def field_ref(pod: Obj, path: str, node_name: str) -> str:
    """``env[].valueFrom.fieldRef``: metadata name/namespace/uid/labels['k']/annotations['k'],
    spec.nodeName, spec.serviceAccountName, status.podIP(s)/hostIP(s)."""
    return downward_field(pod, path, node_name, POD_IP)


def resource_field(container: Obj, ref: Obj, node_cpu: float, node_memory: float) -> str:
    """``resourceFieldRef``: limits/requests of the container in units of ``divisor`` (rounded up);
    an unset limit reports the node's allocatable, an unset request 0 (cpu requests: the limit)."""
    resource = str(ref.get("resource") or "")
    kind, _, what = resource.partition(".")
    res = container.get("resources") or {}
    values = res.get(kind) or {}
    if what in values:
        amount = parse_quantity(values[what])
    elif kind == "requests" and what in (res.get("limits") or {}):
        amount = parse_quantity(res["limits"][what])
    elif kind == "limits":
        amount = node_cpu if what == "cpu" else node_memory
    else:
        amount = 0.0
    divisor = parse_quantity(ref.get("divisor") or "1") or 1.0
    return str(max(int(-(-(amount / divisor) // 1)), 1 if amount > 0 else 0))


def service_env(api_url: str | None) -> dict[str, str]:
    """The ``KUBERNETES_SERVICE_*`` variables every pod gets, pointing at the joblet API."""
    if not api_url:
        return {}
    from urllib.parse import urlsplit

    parts = urlsplit(api_url)
    host = parts.hostname or "127.0.0.1"
    port = str(parts.port or (443 if parts.scheme == "https" else 80))
    return {"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port,
            "KUBERNETES_SERVICE_PORT_HTTPS": port, "KUBERNETES_PORT": f"tcp://{host}:{port}",
            f"KUBERNETES_PORT_{port}_TCP": f"tcp://{host}:{port}", f"KUBERNETES_PORT_{port}_TCP_PROTO": "tcp",
            f"KUBERNETES_PORT_{port}_TCP_ADDR": host, f"KUBERNETES_PORT_{port}_TCP_PORT": port}


def is_sidecar(container: Obj) -> bool:
    """An init container with ``restartPolicy: Always`` (a native sidecar)."""
    return container.get("restartPolicy") == "Always"


@dataclass(frozen=True)
class RunAs:
    user: int | None
    group: int | None


def run_as(pod: Obj, container: Obj, pod_ref: str, agent_uid: int) -> RunAs:
    """Effective runAsUser/runAsGroup; the kubelet's runAsNonRoot checks (raise ConfigError)."""
    psc = (pod.get("spec") or {}).get("securityContext") or {}
    csc = container.get("securityContext") or {}

    def pick(key: str) -> Any:
        return csc[key] if csc.get(key) is not None else psc.get(key)

    user, group, non_root = pick("runAsUser"), pick("runAsGroup"), pick("runAsNonRoot")
    where = f'(pod: "{pod_ref}", container: {container.get("name")})'
    if non_root:
        if user is None and agent_uid == 0:
            raise ConfigError(f"container has runAsNonRoot and image will run as root {where}")
        if user == 0:
            raise ConfigError(f"container's runAsUser breaks non-root policy {where}")
    return RunAs(None if user is None else int(user), None if group is None else int(group))


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion: defined names are replaced, ``$$`` escapes a ``$``."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text.startswith("$$", i):
            out.append("$")
            i += 2
        elif text.startswith("$(", i) and (end := text.find(")", i + 2)) != -1:
            name = text[i + 2:end]
            out.append(env[name] if name in env else text[i:end + 1])
            i = end + 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def container_argv(container: Obj, env: dict[str, str]) -> list[str]:
    command = [expand(str(a), env) for a in container.get("command") or []]
    args = [expand(str(a), env) for a in container.get("args") or []]
    return command + args


def backoff_delay(restarts: int, base: float, cap: float) -> float:
    """Delay before restart number ``restarts + 1``: 0, base, 2·base, … ≤ cap (kubelet)."""
    if restarts <= 0:
        return 0.0
    return float(min(base * (2 ** (restarts - 1)), cap))


def should_restart(policy: str, exit_code: int) -> bool:
    return policy == "Always" or (policy == "OnFailure" and exit_code != 0)


def set_condition(conditions: list[Obj], ctype: str, status: str, now: str,
                  reason: str | None = None, message: str | None = None) -> None:
    """Upsert a pod condition; lastTransitionTime moves only when the status changes."""
    for cond in conditions:
        if cond.get("type") == ctype:
            if cond.get("status") != status:
                cond["lastTransitionTime"] = now
            cond["status"] = status
            for key, value in (("reason", reason), ("message", message)):
                if value:
                    cond[key] = value
                else:
                    cond.pop(key, None)
            return
    cond = {"type": ctype, "status": status, "lastProbeTime": None, "lastTransitionTime": now}
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    conditions.append(cond)


def terminated_state(ref: ContainerRef, started: datetime | None, result: ContainerExit) -> Obj:
    term: Obj = {
        "exitCode": result.exit_code,
        "reason": result.reason,
        "startedAt": rfc3339(started) if started else None,
        "finishedAt": rfc3339(result.finished_at),
        "containerID": ref.container_id,
    }
    if result.signal:
        term["signal"] = result.signal
    if result.message:
        term["message"] = result.message
    return {"terminated": term}


# -- per-container record -----------------------------------------------------------------------


@dataclass
class ContainerRecord:
    name: str
    image: str
    attempt: int = -1  # -1: never started
    restart_count: int = 0
    started_at: datetime | None = None
    result: ContainerExit | None = None
    waiting_reason: str = "PodInitializing"
    waiting_message: str = ""
    last_state: Obj = field(default_factory=dict)

    @property
    def running(self) -> bool:
        return self.attempt >= 0 and self.result is None and not self.waiting_reason

    def status(self, pod_uid: str) -> Obj:
        ref = ContainerRef(pod_uid, self.name, max(self.attempt, 0))
        state: Obj
        if self.waiting_reason:
            state = {"waiting": {"reason": self.waiting_reason}}
            if self.waiting_message:
                state["waiting"]["message"] = self.waiting_message
        elif self.result is not None:
            state = terminated_state(ref, self.started_at, self.result)
        else:
            state = {"running": {"startedAt": rfc3339(self.started_at) if self.started_at else None}}
        out: Obj = {
            "name": self.name, "image": self.image, "imageID": "", "ready": self.running,
            "started": self.running, "restartCount": self.restart_count, "state": state,
            "lastState": self.last_state,
        }
        if self.attempt >= 0:
            out["containerID"] = ref.container_id
        return out


# -- the pod worker ---------------------------------------------------------------------------------


class PodWorker:
    def __init__(self, agent: NodeAgent, pod: Obj) -> None:
        self.agent = agent
        self.pod = pod
        self.uid = uid_of(pod)
        spec = pod["spec"]
        self.policy = str(spec.get("restartPolicy") or "Always")
        self.init_specs: list[Obj] = list(spec.get("initContainers") or [])
        self.specs: list[Obj] = list(spec.get("containers") or [])
        self.init = {c["name"]: ContainerRecord(c["name"], str(c.get("image", ""))) for c in self.init_specs}
        self.main = {c["name"]: ContainerRecord(c["name"], str(c.get("image", ""))) for c in self.specs}
        self.initialized = not self.init_specs
        self.phase = "Pending"
        self.reason: str | None = None
        self.message: str | None = None
        self.stop_event = asyncio.Event()  # set: no more starts or restarts
        self.sidecar_stop = asyncio.Event()  # set: the main containers are done, sidecars stop
        self.sidecar_tasks: list[asyncio.Future[ContainerExit | None]] = []
        self.progress = asyncio.Event()  # a container started or ended
        self.deleting = asyncio.Event()
        self.evicted = asyncio.Event()  # set by the node's disk-pressure eviction (self.message says why)
        self.recovered: dict[str, list[RecoveredContainer]] = {}
        self.task: asyncio.Task[None] | None = None
        self.pinned: dict[str, list[int]] = {}  # container → open subPath fds (see _pin)
        self._hurry: asyncio.Future[None] | None = None
        self.forced = False  # deleted from the API while running: kill without grace
        self.concluded = False  # terminal: its volumes go and are never prepared again
        self.start_time: datetime | None = parse_time_or_none((pod.get("status") or {}).get("startTime"))

    # -- entry -------------------------------------------------------------------------------
    def on_update(self, pod: Obj) -> None:
        before = self.grace_seconds() if self.deleting.is_set() else None
        self.pod = pod
        if deletion_timestamp(pod) and not self.deleting.is_set():
            self.deleting.set()
        else:
            self._hurry_if_shortened(before)

    def on_force_deleted(self) -> None:
        """The pod left the API while running (a delete with grace 0): nothing waits any more."""
        before = self.grace_seconds() if self.deleting.is_set() else None
        self.forced = True
        self.deleting.set()
        self._hurry_if_shortened(before)

    def _hurry_if_shortened(self, before: float | None) -> None:
        if before is not None and self.stopping and self.grace_seconds() < before:
            # A second delete shortened the grace period (Ctrl-C twice on `joblet run`,
            # `--grace-period=0`): kill again with the shorter one, as the kubelet does.
            self._hurry = asyncio.ensure_future(self.kill_all(self.grace_seconds()))

    async def run(self) -> None:
        try:
            await self._run()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("pod worker %s/%s failed", namespace_of(self.pod), name_of(self.pod))
        finally:
            for name in list(self.pinned):
                self._unpin(name)

    def _unpin(self, container: str) -> None:
        for fd in self.pinned.pop(container, []):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _pin(self, container: str) -> Pin:
        """Keep each checked subPath open while its container runs; bwrap binds ``/proc/<pid>/fd/N``
        (the object that was checked, whatever the path names meanwhile)."""
        self._unpin(container)  # the previous attempt's binds are long done
        fds = self.pinned.setdefault(container, [])

        def pin(fd: int) -> Path:
            fds.append(fd)
            return Path(f"/proc/{os.getpid()}/fd/{fd}")
        return pin

    async def _run(self) -> None:
        agent = self.agent
        for rec in agent.runtime.recover(self.uid):
            self.recovered.setdefault(rec.ref.name, []).append(rec)
        if self.start_time is None:
            self.start_time = agent.clock.now()
        await self.write_status()
        lifecycle = asyncio.ensure_future(self.lifecycle())
        deadline = asyncio.ensure_future(self.deadline_timer())
        deletion = asyncio.ensure_future(self.deleting.wait())
        evicted = asyncio.ensure_future(self.evicted.wait())
        try:
            await asyncio.wait({lifecycle, deletion, deadline, evicted}, return_when=asyncio.FIRST_COMPLETED)
            if not lifecycle.done():
                # deletion, deadline or eviction: stop everything, then let the lifecycle record the exits
                self.stop_event.set()
                if evicted.done() and not deletion.done():
                    self.reason, self.phase = "Evicted", "Failed"  # self.message: set by evict()
                elif deadline.done() and not deletion.done():
                    self.reason, self.message = "DeadlineExceeded", DEADLINE_MESSAGE
                    self.phase = "Failed"
                await self.kill_all(0 if evicted.done() else self.grace_seconds())
                await lifecycle
        finally:
            deadline.cancel()
            deletion.cancel()
            evicted.cancel()
        if self.deleting.is_set():
            await self.finish_deletion()

    def evict(self, message: str) -> None:
        """Hard eviction (no grace), as the kubelet's eviction manager does under disk pressure."""
        if self.evicted.is_set() or self.phase in ("Succeeded", "Failed"):
            return
        self.message = message
        self.event("Warning", "Evicted", message)
        self.evicted.set()

    def grace_seconds(self) -> float:
        if self.forced:
            return 0.0
        md = self.pod.get("metadata") or {}
        if self.deleting.is_set() and md.get("deletionGracePeriodSeconds") is not None:
            return float(md["deletionGracePeriodSeconds"])
        value = self.pod["spec"].get("terminationGracePeriodSeconds")
        return float(30 if value is None else value)

    async def deadline_timer(self) -> None:
        seconds = self.pod["spec"].get("activeDeadlineSeconds")
        if seconds is None or self.start_time is None:
            await asyncio.Event().wait()
            return
        remaining = (self.start_time + timedelta(seconds=float(seconds)) - self.agent.clock.now()).total_seconds()
        await asyncio.sleep(max(remaining, 0))

    async def lifecycle(self) -> None:
        for spec in self.init_specs:
            rec = self.init[spec["name"]]
            if is_sidecar(spec):
                task = asyncio.ensure_future(self.run_container(spec, rec, sidecar=True))
                self.sidecar_tasks.append(task)
                await self._until_started(rec, task)
                if self.stopping:
                    break
                continue
            result = await self.run_container(spec, rec)
            if result is None or result.exit_code != 0:
                self.stop_event.set()
                for main in self.main.values():
                    main.waiting_reason = "PodInitializing"
                await self.stop_sidecars()
                await self.conclude()
                return
        if not self.stopping:
            self.initialized = True
        for rec in self.main.values():
            if rec.attempt < 0 and not self.stopping:
                rec.waiting_reason = "ContainerCreating"
        await asyncio.gather(*(self.run_container(spec, self.main[spec["name"]]) for spec in self.specs))
        await self.stop_sidecars()
        await self.conclude()

    async def _until_started(self, rec: ContainerRecord, task: asyncio.Future[ContainerExit | None]) -> None:
        """A sidecar lets init progress once its first attempt runs (or it ended, or the pod stops)."""
        while not (rec.running or rec.result is not None or task.done() or self.stopping):
            self.progress.clear()
            await self.progress.wait()

    async def stop_sidecars(self) -> None:
        """All main containers are done: SIGTERM the sidecars (in reverse order) and wait for them."""
        if not self.sidecar_tasks:
            return
        self.sidecar_stop.set()
        for spec in reversed(self.init_specs):
            rec = self.init[spec["name"]]
            if is_sidecar(spec) and rec.running:
                self.event("Normal", "Killing", f"Stopping container {rec.name}")
                await self.agent.runtime.kill(ContainerRef(self.uid, rec.name, rec.attempt), self.grace_seconds())
        await asyncio.gather(*self.sidecar_tasks, return_exceptions=True)

    def event(self, event_type: str, reason: str, message: str) -> None:
        self.agent.recorder.event(self.pod, event_type, reason, message)

    async def conclude(self) -> None:
        self.concluded = True
        if self.phase != "Failed" or self.reason is None:
            results = [r.result for r in self.main.values()]
            init_failed = any(r.result is not None and r.result.exit_code != 0
                              for s, r in zip(self.init_specs, self.init.values(), strict=True) if not is_sidecar(s))
            if init_failed or any(r is None or r.exit_code != 0 for r in results):
                self.phase = "Failed"
            else:
                self.phase = "Succeeded"
        for recs in (self.init, self.main):
            for rec in recs.values():
                never_ran = rec.result is None and rec.attempt < 0 and rec.waiting_reason
                if never_ran and self.stopping and (self.deleting.is_set() or self.reason):
                    rec.waiting_reason = ""
                    rec.result = ContainerExit(
                        137, "ContainerStatusUnknown", self.agent.clock.now(),
                        message="The container could not be located when the pod was terminated")
        await self.write_status()
        # as the kubelet tears down a terminated pod's volumes: its secret tmpfs goes now
        if pod_volumes(self.pod):
            await asyncio.to_thread(unmount_all, self.volume_root())
        metrics_for(self.agent.client).pod_finished(self.pod, self.agent.node_name)

    def _stopped(self, sidecar: bool) -> bool:
        return self.stopping or (sidecar and self.sidecar_stop.is_set())

    async def run_container(self, spec: Obj, rec: ContainerRecord, sidecar: bool = False) -> ContainerExit | None:
        """Run (and restart per policy) one container; its final exit, None if never started."""
        try:
            return await self._run_container(spec, rec, sidecar)
        finally:
            self.progress.set()

    async def _run_container(self, spec: Obj, rec: ContainerRecord, sidecar: bool) -> ContainerExit | None:
        agent = self.agent
        policy = "Always" if sidecar else self.policy
        past = self.recovered.get(rec.name, [])
        for old in past:
            rec.attempt = old.ref.attempt
            rec.started_at = old.started_at
            if old is not past[-1] and old.exit is not None:
                rec.last_state = terminated_state(old.ref, old.started_at, old.exit)
        rec.restart_count = max(len(past) - 1, 0)
        if past and past[-1].state == "exited" and past[-1].exit is not None:
            rec.result = past[-1].exit
            rec.waiting_reason = ""
        elif past:  # adopt a running attempt
            rec.waiting_reason = ""
            self.progress.set()
            await self.write_status()
            rec.result = await agent.runtime.wait(past[-1].ref)
            await self.write_status()
        config_retry = CONFIG_RETRY_FIRST
        reported: tuple[str, str] | None = None  # the config/mount error last told as an event
        while True:
            if rec.result is not None:
                if self._stopped(sidecar) or not should_restart(policy, rec.result.exit_code):
                    return rec.result
                delay = backoff_delay(rec.restart_count, agent.crash_loop_backoff, agent.crash_loop_backoff_max)
                rec.last_state = terminated_state(ContainerRef(self.uid, rec.name, rec.attempt), rec.started_at,
                                                  rec.result)
                if delay > 0:
                    rec.result = None
                    rec.waiting_reason = "CrashLoopBackOff"
                    rec.waiting_message = (f"back-off {_duration(delay)} restarting failed container={rec.name} "
                                           f"pod={name_of(self.pod)}_{namespace_of(self.pod)}({self.uid})")
                    self.event("Warning", "BackOff", f"Back-off restarting failed container {rec.name} in pod "
                                                     f"{name_of(self.pod)}_{namespace_of(self.pod)}({self.uid})")
                    await self.write_status()
                    await self._sleep_unless_stopping(delay, sidecar)
                    if self._stopped(sidecar):
                        rec.result = ContainerExit(**_last_exit(rec.last_state))
                        rec.waiting_reason = rec.waiting_message = ""
                        return rec.result
                rec.result = None
                rec.restart_count += 1
            if self._stopped(sidecar):
                return None
            try:
                container_spec = await self.container_spec(spec, rec.attempt + 1)
            except (ConfigError, VolumeError) as exc:
                config = isinstance(exc, ConfigError)
                reason = "CreateContainerConfigError" if config else "ContainerCreating"
                message = str(exc) if config else f'MountVolume.SetUp failed: {exc}'
                if reported != (reason, message):
                    reported = (reason, message)
                    if config:
                        self.event("Warning", "Failed", f"Error: {exc}")
                    else:
                        self.event("Warning", "FailedMount", message)
                rec.waiting_reason, rec.waiting_message = reason, (message if config else "")
                await self.write_status()
                await self._sleep_unless_stopping(config_retry, sidecar)
                config_retry = min(config_retry * 2, CONFIG_RETRY_MAX)
                continue
            config_retry = CONFIG_RETRY_FIRST
            reported = None
            rec.attempt += 1
            rec.waiting_reason = rec.waiting_message = ""
            if container_spec.argv:
                rec.started_at = await agent.runtime.start(container_spec)
                if rec.attempt == 0 and not sidecar:
                    metrics_for(agent.client).pod_started(agent.node_name)
                self.event("Normal", "Created", f"Created container {rec.name}")
                self.event("Normal", "Started", f"Started container {rec.name}")
                self.progress.set()
                await self.write_status()
                rec.result = await agent.runtime.wait(container_spec.ref)
                if rec.result.reason == "StartError":  # exec failed: say so, as the kubelet does
                    self.event("Warning", "Failed", f"Error: failed to start container {rec.name!r}: "
                                                    f"{rec.result.message or 'exec failed'}")
            else:
                rec.started_at = agent.clock.now()
                rec.result = ContainerExit(128, "StartError", rec.started_at,
                                           message="no command specified: joblet does not pull images, "
                                                   "so the container needs command or args")
                self.event("Warning", "Failed", f"Error: {rec.result.message}")
            await self.write_status()

    @property
    def stopping(self) -> bool:
        return self.stop_event.is_set()

    async def _sleep_unless_stopping(self, delay: float, sidecar: bool = False) -> None:
        waits = [asyncio.ensure_future(self.stop_event.wait())]
        if sidecar:
            waits.append(asyncio.ensure_future(self.sidecar_stop.wait()))
        try:
            await asyncio.wait(waits, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    async def container_spec(self, spec: Obj, attempt: int) -> ContainerSpec:
        agent = self.agent
        pod = self.pod
        env = await agent.container_env(pod, spec)
        user = run_as(pod, spec, f"{name_of(pod)}_{namespace_of(pod)}({self.uid})", agent.agent_uid)
        ref = ContainerRef(self.uid, spec["name"], attempt)
        log_path = agent.logs.path(namespace_of(pod), name_of(pod), self.uid, spec["name"], attempt)
        limits = container_limits(spec)
        if agent.pod_pids_limit is not None:
            limits = dataclasses.replace(limits, pids=agent.pod_pids_limit)
        mounts = []
        volume_mounts = container_volume_mounts(pod, spec)
        if pod_volumes(pod):
            paths, read_only = await agent.volumes.prepare(pod, self.volume_root())
            try:
                mounts = container_mounts(volume_mounts, paths, read_only, env, self._pin(spec["name"]),
                                          spec["name"])
            except SubPathError as exc:
                raise ConfigError(str(exc)) from exc
        elif volume_mounts:
            raise VolumeError(f'unable to find volume "{volume_mounts[0].get("name")}"')
        term_path = str(spec.get("terminationMessagePath") or DEFAULT_TERMINATION_MESSAGE_PATH)
        sandbox = agent.sandbox_available
        uid = user.user if user.user is not None else agent.agent_uid
        return ContainerSpec(ref, container_argv(spec, env), env, log_path,
                             working_dir=spec.get("workingDir") or None, limits=limits,
                             sandbox=sandbox, mounts=mounts,
                             run_as_user=user.user, run_as_group=user.group,
                             capabilities=effective_capabilities(spec.get("securityContext"), uid),
                             termination_message_path=term_path if sandbox else None,
                             fallback_to_logs=spec.get("terminationMessagePolicy") == "FallbackToLogsOnError",
                             image=str(spec.get("image") or ""),
                             requests={str(k): str(v) for k, v in
                                       ((spec.get("resources") or {}).get("requests") or {}).items()})

    def volume_root(self) -> Path:
        return self.agent.pod_volume_root(self.uid)

    async def kill_all(self, grace: float) -> None:
        recs = [r for r in [*self.init.values(), *self.main.values()]
                if r.attempt >= 0 and r.result is None and not r.waiting_reason]
        for r in recs:
            self.event("Normal", "Killing", f"Stopping container {r.name}")
        await asyncio.gather(*(self.agent.runtime.kill(ContainerRef(self.uid, r.name, r.attempt), grace)
                               for r in recs))

    async def finish_deletion(self) -> None:
        agent = self.agent
        with contextlib.suppress(NotFound):
            await agent.client.delete("pods", name_of(self.pod), namespace_of(self.pod), grace_period_seconds=0)
        await agent.remove_pod(self.uid)

    # -- status ------------------------------------------------------------------------------
    def build_status(self, current: Obj) -> Obj:
        now = rfc3339(self.agent.clock.now())
        status = deep_copy(current.get("status") or {})
        conditions: list[Obj] = status.setdefault("conditions", [])
        terminal = self.phase in ("Succeeded", "Failed")
        running = self.initialized and bool(self.main) and all(r.running for r in self.main.values())
        if not terminal and any(r.attempt >= 0 for r in self.main.values()):
            self.phase = "Running"
        set_condition(conditions, "PodScheduled", "True", now)
        set_condition(conditions, "PodReadyToStartContainers", "False" if terminal else "True", now)
        if self.initialized:
            set_condition(conditions, "Initialized", "True", now)
        else:
            pending = [n for n, r in self.init.items() if r.result is None or r.result.exit_code != 0]
            set_condition(conditions, "Initialized", "False", now, "ContainersNotInitialized",
                          f"containers with incomplete status: [{' '.join(pending)}]")
        if running and not terminal:
            set_condition(conditions, "ContainersReady", "True", now)
            set_condition(conditions, "Ready", "True", now)
        else:
            reason = "PodCompleted" if terminal else "ContainersNotReady"
            unready = [n for n, r in self.main.items() if not r.running]
            message = None if terminal else f"containers with unready status: [{' '.join(unready)}]"
            set_condition(conditions, "ContainersReady", "False", now, reason, message)
            set_condition(conditions, "Ready", "False", now, reason, message)
        if self.reason == "Evicted":
            set_condition(conditions, "DisruptionTarget", "True", now, "TerminationByKubelet", self.message)
        order = {"PodReadyToStartContainers": 0, "Initialized": 1, "Ready": 2, "ContainersReady": 3,
                 "PodScheduled": 4}
        conditions.sort(key=lambda c: order.get(str(c.get("type")), 5))
        status.update(
            phase=self.phase, hostIP=POD_IP, hostIPs=[{"ip": POD_IP}], podIP=POD_IP, podIPs=[{"ip": POD_IP}],
            startTime=rfc3339(self.start_time) if self.start_time else now, qosClass=qos_class(self.pod),
            containerStatuses=[self.main[c["name"]].status(self.uid) for c in self.specs],
        )
        if self.init_specs:
            status["initContainerStatuses"] = [self.init[c["name"]].status(self.uid) for c in self.init_specs]
        if self.reason:
            status["reason"], status["message"] = self.reason, self.message
        return status

    async def write_status(self) -> None:
        client = self.agent.client
        pod = self.pod
        for _ in range(10):
            status = self.build_status(pod)
            if status == pod.get("status"):
                return
            body = deep_copy(pod)
            body["status"] = status
            try:
                self.pod = await client.update("pods", body, subresource="status")
                return
            except Conflict:
                pod = await client.get("pods", name_of(pod), namespace_of(pod))
            except NotFound:
                return
        log.warning("gave up writing status of pod %s", self.uid)


def _last_exit(last_state: Obj) -> dict[str, Any]:
    term = last_state.get("terminated") or {}
    finished = parse_time_or_none(term.get("finishedAt"))
    assert finished is not None
    return {"exit_code": int(term.get("exitCode", 0)), "reason": str(term.get("reason", "Error")),
            "finished_at": finished, "signal": term.get("signal"), "message": str(term.get("message", ""))}


def _duration(seconds: float) -> str:
    """Go's time.Duration format for whole durations (``10s``, ``2m40s``, ``5m0s``)."""
    total = int(seconds)
    if seconds != total:
        return f"{seconds:g}s"
    minutes, secs = divmod(total, 60)
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


class ConfigError(Exception):
    """A referenced secret/configMap (key) is missing: the container cannot be created yet."""


# -- the agent --------------------------------------------------------------------------------------


def memory_capacity() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1])}Ki"
    except OSError:
        pass
    return "0"


class NodeAgent:
    def __init__(self, client: Client, node_name: str, data_dir: Path, clock: Clock, runtime: Runtime,
                 crash_loop_backoff: float = 10, crash_loop_backoff_max: float = 300,
                 logs: LogStore | None = None, heartbeat_seconds: float = HEARTBEAT_SECONDS, *,
                 api_url: str | None = None, api_ca_file: Path | None = None,
                 recorder: EventRecorder | None = None, capacity_cpu: str | None = None,
                 capacity_memory: str | None = None, max_pods: int = 1000,
                 pod_pids_limit: int | None = None, token_resync_seconds: float = TOKEN_RESYNC_SECONDS,
                 log_endpoint: tuple[str, int, bytes] | None = None,
                 eviction_hard: str = diskpressure.DEFAULT_EVICTION_HARD) -> None:
        """``log_endpoint``: (address, port, certificate PEM) of this node's log endpoint
        (joblet.node.logserver), published on the Node for the API server to proxy ``pods/log``.
        ``api_url``: the API server as pods reach it (``KUBERNETES_SERVICE_HOST``/``PORT`` and
        the service-account volume); ``api_ca_file``: its CA (``ca.crt``) when it serves TLS.
        ``capacity_*``/``max_pods``: the Node's capacity (default: this machine's cores and memory).
        ``pod_pids_limit``: ``pids.max`` of every container (the kubelet's podPidsLimit).
        ``token_resync_seconds``: how often token volumes are checked for rotation."""
        self.client = client
        self.node_name = node_name
        self.data_dir = data_dir
        self.clock = clock
        self.runtime = runtime
        self.crash_loop_backoff = crash_loop_backoff
        self.crash_loop_backoff_max = crash_loop_backoff_max
        self.logs = logs or LogStore(data_dir, clock)
        self.heartbeat_seconds = heartbeat_seconds
        self.workers: dict[str, PodWorker] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._finished_uids: set[str] = set()
        self.api_url = api_url
        self.service_env = service_env(api_url)
        self.recorder: EventRecorder = recorder or ClientEventRecorder(client, clock, "kubelet")
        self.capacity = {"cpu": capacity_cpu or str(os.cpu_count() or 1),
                         "memory": capacity_memory or memory_capacity(), "pods": str(max_pods)}
        self.cpu_capacity = parse_quantity(self.capacity["cpu"])
        self.memory_capacity = parse_quantity(self.capacity["memory"])
        self.pod_pids_limit = pod_pids_limit
        self.log_endpoint = log_endpoint
        self.eviction_hard = diskpressure.parse_threshold(eviction_hard)
        self.disk: diskpressure.DiskState | None = None
        ca = api_ca_file.read_bytes() if api_ca_file is not None else PLACEHOLDER_CA
        self.tokens = TokenManager(client, clock)
        self.token_resync_seconds = token_resync_seconds
        self.volumes = VolumeManager(self.fetch, node_name, POD_IP, TokenContext(self.tokens.get, ca),
                                     self.volume_resource)
        self.agent_uid = os.getuid()
        self.sandbox_available = bwrap_path() is not None
        if not self.sandbox_available:
            log.warning("bubblewrap (bwrap) not found: pods are NOT contained (they see the data dir and every "
                        "process) and volumes are not mounted at their mountPath; install bubblewrap")

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        await self.register()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._informer()), loop.create_task(self._heartbeat()),
                       loop.create_task(self._token_refresher()), loop.create_task(self._disk_monitor())]

    async def stop(self) -> None:
        """Stop watching and supervising. Containers keep running; a new agent adopts them.

        The volumes of pods that are done are unmounted here: a worker cancelled while it
        concluded (e.g. awaiting its final status write) never reached its own unmount, and no
        later agent would know to do it. A pod force-deleted from the API whose worker was still
        killing it is removed now (its processes would otherwise outlive a plane that stops for
        good). A running pod's processes and mounts stay for the next agent."""
        finished = set(self._finished_uids)  # before the cancelled workers add themselves
        workers = list(self.workers.values())
        tasks = self._tasks + [w.task for w in workers if w.task]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        done = finished | {w.uid for w in workers if w.concluded}
        gone = {w.uid for w in workers if w.forced}  # left the API: no later agent would adopt them
        self._tasks = []
        self.workers.clear()
        for uid in sorted(done - gone):
            await asyncio.to_thread(unmount_all, self.pod_volume_root(uid))
        for uid in sorted(gone):
            await self.remove_pod(uid)  # kills what still runs at once, unmounts, drops its state
        with contextlib.suppress(ApiError, OSError):  # deleted before our watch told us: same
            await self._forget_unknown((await self.client.list(
                "pods", field_selector=f"spec.nodeName={self.node_name}")).items, unmount_ended=False)

    def pod_volume_root(self, uid: str) -> Path:
        return self.data_dir / "pods" / uid / "volumes"

    async def remove_pod(self, uid: str) -> None:
        """Forget a deleted pod: the agent unmounts the volumes it mounted (whatever the runtime
        does with its own state), then the runtime kills what still runs and drops its state."""
        await asyncio.to_thread(unmount_all, self.pod_volume_root(uid))
        await self.runtime.remove_pod(uid)

    async def run(self) -> None:
        await self.start()
        try:
            await asyncio.gather(*self._tasks)
        finally:
            await self.stop()

    # -- node ----------------------------------------------------------------------------------
    def node_object(self) -> Obj:
        now = rfc3339(self.clock.now())
        resources = dict(self.capacity)
        obj: Obj = {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": self.node_name, "labels": {
                "kubernetes.io/hostname": self.node_name, "kubernetes.io/os": "linux",
                "kubernetes.io/arch": os.uname().machine.replace("x86_64", "amd64").replace("aarch64", "arm64"),
            }},
            "spec": {},
            "status": {
                "capacity": resources, "allocatable": dict(resources),
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                "message": "joblet node agent is posting ready status",
                                "lastHeartbeatTime": now, "lastTransitionTime": now}],
                "addresses": [{"type": "InternalIP", "address": POD_IP},
                              {"type": "Hostname", "address": socket.gethostname()}],
                "nodeInfo": {"operatingSystem": "linux", "architecture": os.uname().machine,
                             "kernelVersion": os.uname().release, "kubeletVersion": "v1.30.0-joblet",
                             "containerRuntimeVersion": "joblet://process", "osImage": "", "machineID": "",
                             "systemUUID": "", "bootID": "", "kubeProxyVersion": ""},
            },
        }
        if self.log_endpoint is not None:
            from joblet.client.nodelogs import CERT_ANNOTATION

            address, port, cert = self.log_endpoint
            obj["metadata"]["annotations"] = {CERT_ANNOTATION: cert.decode()}
            obj["status"]["addresses"][0]["address"] = address
            obj["status"]["daemonEndpoints"] = {"kubeletEndpoint": {"Port": port}}
        return obj

    async def register(self) -> None:
        wanted = self.node_object()
        try:
            node = await self.client.create("nodes", wanted)
        except AlreadyExists:
            node = await self.client.get("nodes", self.node_name)
            body = deep_copy(node)
            body["metadata"].setdefault("labels", {}).update(wanted["metadata"]["labels"])
            body["metadata"].setdefault("annotations", {}).update(wanted["metadata"].get("annotations") or {})
            node = await self.client.update("nodes", body)
        await self._write_node_status(node, wanted["status"])

    async def _write_node_status(self, node: Obj, status: Obj) -> None:
        for _ in range(5):
            body = deep_copy(node)
            body["status"] = status
            try:
                await self.client.update("nodes", body, subresource="status")
                return
            except Conflict:
                node = await self.client.get("nodes", self.node_name)

    async def heartbeat(self) -> None:
        try:
            node = await self.client.get("nodes", self.node_name)
        except NotFound:
            await self.register()
            return
        status = deep_copy(node.get("status") or {})
        now = rfc3339(self.clock.now())
        conditions = status.setdefault("conditions", [])
        ready = next((c for c in conditions if c.get("type") == "Ready"), None)
        if ready is None:
            ready = {"type": "Ready", "lastTransitionTime": now}
            conditions.append(ready)
        if ready.get("status") != "True":
            ready["lastTransitionTime"] = now
        ready.update(status="True", reason="KubeletReady", lastHeartbeatTime=now,
                     message="joblet node agent is posting ready status")
        self._set_disk_condition(conditions, now)
        await self._write_node_status(node, status)

    def _set_disk_condition(self, conditions: list[Obj], now: str) -> None:
        if self.disk is None:
            return
        old = next((c for c in conditions if c.get("type") == "DiskPressure"), None)
        new = diskpressure.condition(self.disk, now, old)
        if old is None:
            conditions.append(new)
        else:
            old.clear()
            old.update(new)

    async def _disk_monitor(self) -> None:
        """Every few seconds: DiskPressure on the Node when it changes, and one eviction under it."""
        while True:
            try:
                state = await asyncio.to_thread(diskpressure.disk_state, self.data_dir, self.eviction_hard)
                was = self.disk.pressure if self.disk is not None else None
                self.disk = state
                if state.pressure != was:
                    if state.pressure or was:
                        log.warning("disk pressure %s: %d of %d bytes available (threshold %s)",
                                    "begins" if state.pressure else "is over", state.available, state.total,
                                    self.eviction_hard.text)
                    await self.heartbeat()
                if state.pressure:
                    await self._evict_one(state)
            except (ApiError, OSError) as exc:
                log.warning("disk pressure check failed: %s", exc)
            await asyncio.sleep(diskpressure.CHECK_SECONDS)

    async def _evict_one(self, state: diskpressure.DiskState) -> None:
        """Evict the running pod using the most disk (its logs and volumes), unless one is going."""
        running = [w for w in self.workers.values() if w.phase not in ("Succeeded", "Failed")]
        if not running or any(w.evicted.is_set() for w in running):
            return

        def usage(w: PodWorker) -> int:
            logs = self.logs.root / namespace_of(w.pod) / name_of(w.pod) / w.uid
            return diskpressure.usage_bytes(logs, w.volume_root())
        sizes = await asyncio.to_thread(lambda: [(usage(w), w) for w in running])
        used, worker = max(sizes, key=lambda item: item[0])
        worker.evict(diskpressure.EVICTED_MESSAGE.format(
            threshold=self.eviction_hard.text.split("<")[-1], available=f"{state.available // 1024}Ki")
            + f"Pod {name_of(worker.pod)} was using {used // 1024}Ki of local storage.")

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            try:
                await self.heartbeat()
            except ApiError as exc:
                log.warning("node heartbeat failed: %s", exc)

    # -- service-account tokens ----------------------------------------------------------------
    async def _token_refresher(self) -> None:
        while True:
            await asyncio.sleep(self.token_resync_seconds)
            try:
                await self.refresh_tokens()
            except Exception:
                log.exception("refreshing service account tokens failed")

    async def refresh_tokens(self) -> int:
        """Rewrite the token volumes of running pods whose token is due (80% of its lifetime on
        the clock); returns how many pods got a new token. A failure keeps the old token (still
        valid) and is retried at the next sync."""
        refreshed = 0
        for worker in list(self.workers.values()):
            names = token_volume_names(worker.pod)
            if not names or not self.tokens.due(worker.uid) or not worker.volume_root().is_dir():
                continue
            if worker.concluded:
                continue
            try:
                await self.volumes.prepare(worker.pod, worker.volume_root(), only=names)
                refreshed += 1
                if worker.concluded:  # it ended while the token was written: do not leave it mounted
                    await asyncio.to_thread(unmount_all, worker.volume_root())
            except VolumeError as err:
                log.warning("refreshing the token of pod %s/%s failed: %s", namespace_of(worker.pod),
                            name_of(worker.pod), err)
        return refreshed

    # -- pods ----------------------------------------------------------------------------------
    async def _informer(self) -> None:
        selector = f"spec.nodeName={self.node_name}"
        first = True
        while True:
            try:
                # Inside the try: over HTTP a list can fail too (server restarting); relist then.
                listed = await self.client.list("pods", field_selector=selector)
                for pod in listed.items:
                    self.on_pod(pod)
                if first:
                    first = False
                    await self._forget_unknown(listed.items)
                async for batch in self.client.watch("pods", resource_version=listed.resource_version,
                                                     field_selector=selector):
                    for event in batch:
                        if event.type in ("ADDED", "MODIFIED"):
                            self.on_pod(event.object)
                        elif event.type == "DELETED":
                            await self.on_pod_deleted(event.object)
            except Gone:
                continue
            except ApiError as exc:
                log.warning("pod watch failed: %s; relisting", exc)
                await asyncio.sleep(1)

    async def _forget_unknown(self, pods: list[Obj], unmount_ended: bool = True) -> None:
        """Runtime state of pods that vanished while the agent was down: kill and forget. Pods
        that ended meanwhile get no worker: their volumes are unmounted here (as the kubelet's
        orphaned-pod cleanup), a previous agent may have stopped before doing it."""
        known = {uid_of(p) for p in pods}
        ended = {uid_of(p) for p in pods if (p.get("status") or {}).get("phase") in ("Succeeded", "Failed")}
        for uid in self.runtime.pods():
            if uid not in known:
                await self.remove_pod(uid)
            elif unmount_ended and uid in ended and uid not in self.workers:
                await asyncio.to_thread(unmount_all, self.pod_volume_root(uid))

    def on_pod(self, pod: Obj) -> None:
        uid = uid_of(pod)
        worker = self.workers.get(uid)
        if worker is not None:
            worker.on_update(pod)
            return
        phase = (pod.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed") or uid in self._finished_uids:
            if deletion_timestamp(pod):
                asyncio.get_running_loop().create_task(self._delete_finished(pod))
            return
        worker = PodWorker(self, pod)
        worker.on_update(pod)
        self.workers[uid] = worker
        worker.task = asyncio.get_running_loop().create_task(self._run_worker(worker))

    async def _run_worker(self, worker: PodWorker) -> None:
        try:
            await worker.run()
        finally:
            if self.workers.get(worker.uid) is worker:
                del self.workers[worker.uid]
                self._finished_uids.add(worker.uid)
            self.tokens.forget(worker.uid)

    async def _delete_finished(self, pod: Obj) -> None:
        # Kill first: a pod failed from outside (node lifecycle: stale heartbeat) may still run,
        # and once it leaves the API nothing (an offline `delete` exiting) waits for the kill.
        await self.remove_pod(uid_of(pod))
        with contextlib.suppress(NotFound):
            await self.client.delete("pods", name_of(pod), namespace_of(pod), grace_period_seconds=0)

    async def on_pod_deleted(self, pod: Obj) -> None:
        uid = uid_of(pod)
        worker = self.workers.get(uid)
        if worker is not None:
            worker.on_force_deleted()
            return
        self._finished_uids.discard(uid)
        await self.remove_pod(uid)

    # -- env -----------------------------------------------------------------------------------
    async def container_env(self, pod: Obj, container: Obj) -> dict[str, str]:
        spec = pod["spec"]
        env: dict[str, str] = {"PATH": path_for_image(container.get("image")),
                               "HOSTNAME": str(spec.get("hostname") or name_of(pod)),
                               **self.service_env}
        ns = namespace_of(pod)
        for source in container.get("envFrom") or []:
            prefix = str(source.get("prefix") or "")
            for kind, ref_key in (("configmaps", "configMapRef"), ("secrets", "secretRef")):
                ref = source.get(ref_key)
                if ref:
                    data = await self._data(kind, ns, str(ref.get("name")), bool(ref.get("optional")))
                    env.update({prefix + k: v for k, v in data.items()})
        for var in container.get("env") or []:
            name = str(var["name"])
            if "valueFrom" not in var:
                env[name] = expand(str(var.get("value") or ""), env)
                continue
            source = var["valueFrom"]
            if "fieldRef" in source:
                env[name] = field_ref(pod, str(source["fieldRef"].get("fieldPath")), self.node_name)
            elif "resourceFieldRef" in source:
                ref = source["resourceFieldRef"]
                target = container
                if ref.get("containerName"):
                    target = self._named_container(pod, str(ref["containerName"])) or container
                env[name] = resource_field(target, ref, self.cpu_capacity, self.memory_capacity)
            else:
                for kind, ref_key in (("configmaps", "configMapKeyRef"), ("secrets", "secretKeyRef")):
                    ref = source.get(ref_key)
                    if not ref:
                        continue
                    optional = bool(ref.get("optional"))
                    data = await self._data(kind, ns, str(ref.get("name")), optional)
                    key = str(ref.get("key"))
                    if key in data:
                        env[name] = data[key]
                    elif not optional:
                        kind_name = "ConfigMap" if kind == "configmaps" else "Secret"
                        raise ConfigError(f"couldn't find key {key} in {kind_name} {ns}/{ref.get('name')}")
        return env

    @staticmethod
    def _named_container(pod: Obj, name: str) -> Obj | None:
        spec = pod.get("spec") or {}
        for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
            if c.get("name") == name:
                return dict(c)
        return None

    def volume_resource(self, pod: Obj, container_name: str, ref: Obj) -> str:
        container = self._named_container(pod, container_name) or {}
        return resource_field(container, ref, self.cpu_capacity, self.memory_capacity)

    async def fetch(self, kind: str, namespace: str, name: str) -> Obj | None:
        try:
            return await self.client.get(kind, name, namespace)
        except NotFound:
            return None

    async def _data(self, kind: str, namespace: str, name: str, optional: bool) -> dict[str, str]:
        try:
            obj = await self.client.get(kind, name, namespace)
        except NotFound:
            if optional:
                return {}
            raise ConfigError(f'{kind[:-1]} "{name}" not found') from None
        if kind == "secrets":
            data = {k: base64.b64decode(v).decode(errors="replace") for k, v in (obj.get("data") or {}).items()}
            data.update(obj.get("stringData") or {})
            return data
        return {str(k): str(v) for k, v in (obj.get("data") or {}).items()}
