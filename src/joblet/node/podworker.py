"""One pod's lifecycle on the node: the kubelet's pod worker.

Why apart: this is the pod state machine (init containers in order, then the regular
containers concurrently, restarts per restartPolicy with crash-loop backoff,
``activeDeadlineSeconds``, graceful deletion, eviction), and it should be readable and
testable without the node around it. A worker gets everything it uses in one explicit
:class:`WorkerDeps` (client, clock, runtime, recorder, logs, volumes, the node's settings and
three callbacks), never the agent itself. Every wait is on ``deps.clock``, so with a
:class:`~joblet.clock.FakeClock` a test moves a deadline or a backoff by ``clock.advance``.

All container state lives in the runtime's on-disk records, so a new worker for a pod that was
running under a previous agent resumes it exactly (adopting running containers, never
re-running a finished one).

Documented choices:
* a container with neither ``command`` nor ``args`` cannot run (joblet does not pull images,
  so there is no image entrypoint): it terminates with exit 128, reason ``StartError``;
* restart backoff follows the kubelet: the first restart is immediate, then base, 2*base, ...
  capped at the max (defaults 10 s and 300 s); the container waits in ``CrashLoopBackOff``;
* a config error (:class:`~joblet.node.containerenv.ConfigError`) keeps the container waiting
  with reason ``CreateContainerConfigError`` (and a Warning ``Failed`` event ``Error: ...``); a
  volume that cannot be set up keeps it in ``ContainerCreating`` with a ``FailedMount`` event.
  Both are rechecked with backoff (0.2 s doubling to 5 s), so the container starts soon after
  the object appears;
* the termination message: a per-attempt host file (0600, owned by the container's user)
  bound at ``terminationMessagePath`` (default ``/dev/termination-log``, in bwrap's private
  ``/dev``); ``FallbackToLogsOnError`` works everywhere (last 80 lines / 2048 bytes of the log);
* sidecars (init containers with ``restartPolicy: Always``) start in init order, let init
  progress once running, restart whenever they exit, get SIGTERM (reverse order) once every
  main container has finished, and never decide the phase;
* kubelet events through ``recorder`` (component ``kubelet``): ``Created``, ``Started``,
  ``Killing``, ``BackOff``, ``Failed``, ``FailedMount``, ``Evicted``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from joblet.client.events import EventRecorder
from joblet.client.interface import Client
from joblet.clock import Clock, parse_time_or_none
from joblet.errors import ApiError, Conflict, NotFound
from joblet.metrics import metrics_for
from joblet.node.containerenv import ConfigError, container_argv, container_limits, run_as
from joblet.node.logs import LogStore
from joblet.node.podstatus import ContainerRecord, next_phase, pod_status, terminated_state
from joblet.node.runtimes.base import ContainerExit, ContainerRef, ContainerSpec, RecoveredContainer, Runtime
from joblet.node.sandbox import effective_capabilities
from joblet.node.volumes import (
    Pin,
    SubPathError,
    VolumeError,
    VolumeManager,
    container_mounts,
    container_volume_mounts,
    pod_volumes,
    unmount_all,
)
from joblet.objects import deletion_timestamp, name_of, namespace_of, uid_of

log = logging.getLogger(__name__)

Obj = dict[str, Any]
DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"
DEFAULT_TERMINATION_MESSAGE_PATH = "/dev/termination-log"
#: how long a started container may run before its Running status is written, and a pod's
#: worker may run before its first status is (seconds)
RUNNING_REPORT_DELAY = 0.05
CONFIG_RETRY_FIRST, CONFIG_RETRY_MAX = 0.2, 5.0
#: a status write the API server could not take (unreachable, 5xx) is tried again after this
#: long, doubling up to the max, as the kubelet's status manager keeps syncing until it lands
STATUS_RETRY_FIRST, STATUS_RETRY_MAX = 0.2, 5.0


@dataclass(frozen=True)
class WorkerDeps:
    """Everything a pod worker uses, handed over explicitly by the node agent."""

    client: Client
    clock: Clock
    runtime: Runtime
    recorder: EventRecorder
    logs: LogStore
    volumes: VolumeManager
    node_name: str
    agent_uid: int  # the agent's uid: a container without runAsUser runs as this user
    sandbox: bool  # bubblewrap is available: containers are contained
    pod_pids_limit: int | None
    crash_loop_backoff: float
    crash_loop_backoff_max: float
    #: the container's environment (``joblet.node.containerenv.container_env`` bound to the node)
    container_env: Callable[[Obj, Obj], Awaitable[dict[str, str]]]
    #: where the pod with this uid has its volumes
    volume_root: Callable[[str], Path]
    #: forget a deleted pod: unmount its volumes, the runtime kills what runs and drops its state
    remove_pod: Callable[[str], Awaitable[None]]


# -- pure decisions ---------------------------------------------------------------------------

def is_sidecar(container: Obj) -> bool:
    """An init container with ``restartPolicy: Always`` (a native sidecar)."""
    return container.get("restartPolicy") == "Always"


def backoff_delay(restarts: int, base: float, cap: float) -> float:
    """Delay before restart number ``restarts + 1``: 0, base, 2·base, … ≤ cap (kubelet)."""
    if restarts <= 0:
        return 0.0
    return float(min(base * (2 ** (restarts - 1)), cap))


def should_restart(policy: str, exit_code: int) -> bool:
    return policy == "Always" or (policy == "OnFailure" and exit_code != 0)




class PodWorker:
    def __init__(self, deps: WorkerDeps, pod: Obj) -> None:
        self.deps = deps
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
        self._status_written = asyncio.Event()  # set by the first status write (see _first_status)
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
        deps = self.deps
        for rec in deps.runtime.recover(self.uid):
            self.recovered.setdefault(rec.ref.name, []).append(rec)
        if self.start_time is None:
            self.start_time = deps.clock.now()
        first_status = asyncio.ensure_future(self._first_status())
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
            first_status.cancel()
            deadline.cancel()
            deletion.cancel()
            evicted.cancel()
        if self.deleting.is_set():
            await self.finish_deletion()

    async def _first_status(self) -> None:
        """The pod's first status (startTime, containers waiting in ContainerCreating), written
        only if no other status write came within :data:`RUNNING_REPORT_DELAY`: a container
        that starts and ends that soon costs one status write in all, its terminated one (the
        kubelet's status manager likewise sends only the latest status it has). Real time, as
        :meth:`_wait_reporting_running`."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._status_written.wait(), RUNNING_REPORT_DELAY)
            return
        await self.write_status()

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
            await asyncio.Event().wait()  # no deadline: never fires
            return
        remaining = (self.start_time + timedelta(seconds=float(seconds)) - self.deps.clock.now()).total_seconds()
        await self.deps.clock.sleep_async(remaining)

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
            if is_sidecar(spec) and (rec.running or rec.starting):
                self.event("Normal", "Killing", f"Stopping container {rec.name}")
                await self.deps.runtime.kill(ContainerRef(self.uid, rec.name, rec.attempt), self.grace_seconds())
        await asyncio.gather(*self.sidecar_tasks, return_exceptions=True)

    def event(self, event_type: str, reason: str, message: str) -> None:
        self.deps.recorder.event(self.pod, event_type, reason, message)

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
                        137, "ContainerStatusUnknown", self.deps.clock.now(),
                        message="The container could not be located when the pod was terminated")
        await self.write_status()
        # as the kubelet tears down a terminated pod's volumes: its secret tmpfs goes now
        if pod_volumes(self.pod):
            await asyncio.to_thread(unmount_all, self.volume_root())
        metrics_for(self.deps.client).pod_finished(self.pod, self.deps.node_name)

    def _stopped(self, sidecar: bool) -> bool:
        return self.stopping or (sidecar and self.sidecar_stop.is_set())

    async def run_container(self, spec: Obj, rec: ContainerRecord, sidecar: bool = False) -> ContainerExit | None:
        """Run (and restart per policy) one container; its final exit, None if never started."""
        try:
            return await self._run_container(spec, rec, sidecar)
        finally:
            self.progress.set()

    async def _run_container(self, spec: Obj, rec: ContainerRecord, sidecar: bool) -> ContainerExit | None:
        deps = self.deps
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
            rec.result = await deps.runtime.wait(past[-1].ref)
            await self.write_status()
        config_retry = CONFIG_RETRY_FIRST
        reported: tuple[str, str] | None = None  # the config/mount error last told as an event
        while True:
            if rec.result is not None:
                if self._stopped(sidecar) or not should_restart(policy, rec.result.exit_code):
                    return rec.result
                delay = backoff_delay(rec.restart_count, deps.crash_loop_backoff, deps.crash_loop_backoff_max)
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
            rec.waiting_message = ""
            if container_spec.argv:
                # ContainerCreating until the runtime says the process exists (a Ray node may
                # queue it for its resources first); a stop meanwhile kills it (``starting``)
                rec.waiting_reason, rec.starting = "ContainerCreating", True
                try:
                    rec.started_at = await deps.runtime.start(container_spec)
                finally:
                    rec.starting = False
                rec.waiting_reason = ""
                if rec.attempt == 0 and not sidecar:
                    metrics_for(deps.client).pod_started(deps.node_name)
                self.event("Normal", "Created", f"Created container {rec.name}")
                self.event("Normal", "Started", f"Started container {rec.name}")
                self.progress.set()
                rec.result = await self._wait_reporting_running(container_spec.ref)
                if rec.result.reason == "StartError":  # exec failed: say so, as the kubelet does
                    self.event("Warning", "Failed", f"Error: failed to start container {rec.name!r}: "
                                                    f"{rec.result.message or 'exec failed'}")
            else:
                rec.waiting_reason = ""
                rec.started_at = deps.clock.now()
                rec.result = ContainerExit(128, "StartError", rec.started_at,
                                           message="no command specified: joblet does not pull images, "
                                                   "so the container needs command or args")
                self.event("Warning", "Failed", f"Error: {rec.result.message}")
            if self._ends_pod(rec, policy, sidecar):
                continue  # conclude() writes the final status at once: one write, not two
            await self.write_status()

    def _ends_pod(self, rec: ContainerRecord, policy: str, sidecar: bool) -> bool:
        """This exit ends the pod: a main container that will not restart, the last one running,
        and no sidecar to stop, so :meth:`conclude` writes the status next."""
        if sidecar or self.sidecar_tasks or self.main.get(rec.name) is not rec or rec.result is None:
            return False
        if not self._stopped(sidecar) and should_restart(policy, rec.result.exit_code):
            return False
        return all(r.result is not None for r in self.main.values())

    async def _wait_reporting_running(self, ref: ContainerRef) -> ContainerExit:
        """The container's exit; its Running status is written only if it is still running
        :data:`RUNNING_REPORT_DELAY` after the start, so a short container costs one status write,
        not two (the kubelet's 1 s PLEG relist misses most short containers' Running too)."""
        exited = asyncio.ensure_future(self.deps.runtime.wait(ref))
        try:
            # real time, as poll_pause: what is waited for is a process, not a decision
            await asyncio.wait({exited}, timeout=RUNNING_REPORT_DELAY)
            if not exited.done():
                await self.write_status()
            return await exited
        except BaseException:
            exited.cancel()
            raise

    @property
    def stopping(self) -> bool:
        return self.stop_event.is_set()

    async def _sleep_unless_stopping(self, delay: float, sidecar: bool = False) -> None:
        wakeup = (self.stop_event, self.sidecar_stop) if sidecar else (self.stop_event,)
        await self.deps.clock.sleep_async(delay, *wakeup)

    async def container_spec(self, spec: Obj, attempt: int) -> ContainerSpec:
        deps = self.deps
        pod = self.pod
        env = await deps.container_env(pod, spec)
        user = run_as(pod, spec, f"{name_of(pod)}_{namespace_of(pod)}({self.uid})", deps.agent_uid)
        ref = ContainerRef(self.uid, spec["name"], attempt)
        log_path = deps.logs.path(namespace_of(pod), name_of(pod), self.uid, spec["name"], attempt)
        limits = container_limits(spec)
        if deps.pod_pids_limit is not None:
            limits = dataclasses.replace(limits, pids=deps.pod_pids_limit)
        mounts = []
        volume_mounts = container_volume_mounts(pod, spec)
        if pod_volumes(pod):
            paths, read_only = await deps.volumes.prepare(pod, self.volume_root())
            try:
                mounts = container_mounts(volume_mounts, paths, read_only, env, self._pin(spec["name"]),
                                          spec["name"])
            except SubPathError as exc:
                raise ConfigError(str(exc)) from exc
        elif volume_mounts:
            raise VolumeError(f'unable to find volume "{volume_mounts[0].get("name")}"')
        term_path = str(spec.get("terminationMessagePath") or DEFAULT_TERMINATION_MESSAGE_PATH)
        sandbox = deps.sandbox
        uid = user.user if user.user is not None else deps.agent_uid
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
        return self.deps.volume_root(self.uid)

    async def kill_all(self, grace: float) -> None:
        recs = [r for r in [*self.init.values(), *self.main.values()]
                if r.attempt >= 0 and r.result is None and (not r.waiting_reason or r.starting)]
        for r in recs:
            self.event("Normal", "Killing", f"Stopping container {r.name}")
        await asyncio.gather(*(self.deps.runtime.kill(ContainerRef(self.uid, r.name, r.attempt), grace)
                               for r in recs))

    async def finish_deletion(self) -> None:
        deps = self.deps
        with contextlib.suppress(NotFound):
            await deps.client.delete("pods", name_of(self.pod), namespace_of(self.pod), grace_period_seconds=0)
        await deps.remove_pod(self.uid)

    # -- status ------------------------------------------------------------------------------
    async def write_status(self) -> None:
        self._status_written.set()
        client = self.deps.client
        pod = self.pod
        self.phase = next_phase(self.phase, self.main)
        conflicts, retry = 0, STATUS_RETRY_FIRST
        while conflicts < 10:
            try:
                status = pod_status(self, pod, self.deps.clock.now())
                if status == pod.get("status"):
                    return
                body = {**pod, "status": status}  # the registry copies what it keeps (metadata, status)
                try:
                    self.pod = await client.update("pods", body, subresource="status")
                    return
                except Conflict:
                    conflicts += 1
                    pod = await client.get("pods", name_of(pod), namespace_of(pod))
            except NotFound:
                return
            except ApiError as err:
                if err.code < 500:
                    raise
                # The server is down, frozen or full: the status is recomputed and written again
                # (a write that landed but whose answer was lost comes back as a Conflict), never
                # dropped: a worker that gave up here would leave its pod Pending for good.
                log.warning("status of pod %s not written (%s); trying again in %.1fs", self.uid, err, retry)
                await self.deps.clock.sleep_async(retry)
                retry = min(retry * 2, STATUS_RETRY_MAX)
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

