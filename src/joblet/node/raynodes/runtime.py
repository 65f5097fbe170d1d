"""The container runtime over Ray: each attempt runs on one Ray node, under that node's supervisor.

Why: the node agent keeps every pod decision (env, volumes, init order, restarts, deadlines,
deletion); only *where the process runs* changes. So this is a :class:`Runtime` like the
process runtime, bound to one Ray node:

* every Ray node has one supervisor, a detached actor (:class:`joblet.node.raynodes.worker.Supervisor`,
  namespace ``joblet``) that starts containers, keeps their logs until a driver took them,
  and their exits until a driver recorded them. Detached, it outlives joblet: a restarted
  joblet re-adopts the attempts that still run (``recover`` says ``running``, ``wait``
  re-attaches the log stream at the offset the log file had and takes the exit), and an
  attempt whose pod is gone is killed with the pod (the agent's orphan sweep calls
  ``remove_pod``). Nothing runs twice, nothing is counted twice. It runs at nice 0
  (``RAY_worker_niceness=0`` in its runtime_env, as Ray's own job supervisor actor): at the
  niceness Ray gives task workers (15) this daemon, and the containers it spawns, lost the CPU
  to every other process of a busy node; a kubelet's containers run at nice 0 too.
* ``start`` submits :func:`joblet.node.raynodes.worker.hold`, a Ray task pinned to the node
  (``NodeAffinitySchedulingStrategy(node_id, soft=False)``, ``max_retries=0``: the Job
  controller owns retries) with the container's requests as Ray resources (cpu →
  ``num_cpus``, memory → ``memory``, ``nvidia.com/gpu`` → ``num_gpus``, ``ray.io/R`` → custom
  resource R). It has the supervisor start the container and holds the resources until the
  process exits. A container that asks for no resources needs no hold: the driver asks the
  supervisor to start it directly (no Ray worker process to find or start for it). ``start``
  returns once the container's process exists (the supervisor's reply to a direct start, or
  ``started`` in the poll for a held one), not when the hold task is submitted: a pod queued in
  Ray for its resources stays ``ContainerCreating``, and the pod worker's "write Running only if
  it still runs after a short delay" counts from the real start. Volumes the
  agent materialised (configMap, secret, downwardAPI, projected, emptyDir) are shipped with it
  and written under a per-pod dir on the Ray node; hostPath is the Ray node's path.
* one poll loop per runtime (:meth:`Supervisor.poll`, a long poll) carries the logs and exits
  of all the node's attempts: log bytes are appended to each attempt's CRI log file (so
  ``kubectl logs -f`` follows it), the exit is recorded in
  ``<data_dir>/pods/<uid>/c.<name>.<attempt>.json`` and ``<attempt>.done`` ends follow. An
  attempt followed while a poll is outstanding is asked about from the next poll on; if it
  ended meanwhile, its exit woke the outstanding poll (which did not carry it) and the next
  returns it at once (the supervisor's :func:`~joblet.node.raynodes.worker.untaken`), instead
  of waiting for a later change as it did up to protocol 3.
* ``kill``: the supervisor SIGTERMs the container's process group and SIGKILLs it after the
  grace period; an attempt not started yet never starts.
* a supervisor lost with its node (or a hold task lost to the system) is handed to
  ``on_lost`` first, which fails the pod with ``DisruptionTarget`` when its Ray node is gone,
  then reported as exit 137.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

import ray
from joblet.clock import Clock
from joblet.node.quantity import parse_quantity
from joblet.node.raynodes import worker
from joblet.node.runtimes.base import ContainerExit, ContainerRef, ContainerSpec, RecoveredContainer
from joblet.node.runtimes.process import ProcessRuntime
from joblet.node.runtimes.records import (
    append_record,
    attempts,
    by_container,
    read_records,
    termination_message,
)
from joblet.node.volumes import unmount_all

log = logging.getLogger(__name__)

KILL_SLACK_SECONDS = 10.0
POLL_SECONDS = 5.0  # a long poll's longest wait (any change ends it at once)
SUPERVISOR_THREADS = 1000  # concurrent supervisor calls: polls and kills block a thread each
RECOVER_TIMEOUT = 30.0
FORGET_TIMEOUT = 10.0
LOST_MESSAGE = ("The supervisor of this container on its Ray node no longer knows it (the node or its supervisor "
                "restarted while joblet was down); its outcome is unknown")

OnLost = Callable[[ContainerRef, str], Awaitable[None]]

_Supervisor = ray.remote(worker.Supervisor)
_hold = ray.remote(worker.hold)


def ray_resources(requests: dict[str, str]) -> dict[str, Any]:
    """Ray task options for a container's requests (pure)."""
    out: dict[str, Any] = {"num_cpus": 0}
    custom: dict[str, float] = {}
    for name, value in requests.items():
        amount = parse_quantity(value)
        if name == "cpu":
            out["num_cpus"] = amount
        elif name == "memory":
            out["memory"] = int(amount)
        elif name == "nvidia.com/gpu":
            out["num_gpus"] = amount
        elif name.startswith("ray.io/"):
            custom[name[len("ray.io/"):]] = amount
    if custom:
        out["resources"] = custom
    return out


def ship_volume(key: str, base: Path) -> dict[str, Any]:
    """The files of one materialised volume, to be written on the Ray node."""
    files: list[tuple[str, int, bytes | None]] = []
    for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
        for d in dirnames:
            path = Path(dirpath) / d
            if not path.is_symlink():
                files.append((str(path.relative_to(base)), path.stat().st_mode & 0o7777, None))
        for f in filenames:
            path = Path(dirpath) / f
            if path.is_file():  # follows the atomic-writer symlinks (..data/key)
                files.append((str(path.relative_to(base)), path.stat().st_mode & 0o7777, path.read_bytes()))
    return {"key": key, "mode": base.stat().st_mode & 0o7777, "files": files}


class _Watch:
    """An attempt whose log and exit (and start, when a hold task starts it) the poll loop takes
    from the supervisor."""

    def __init__(self, fd: int, offset: int, loop: asyncio.AbstractEventLoop, polled_start: bool) -> None:
        self.fd = fd
        self.offset = offset  # bytes of the CRI log already in the file
        self.exit: asyncio.Future[dict[str, Any]] = loop.create_future()
        self.started: asyncio.Future[None] = loop.create_future()
        self.polled_start = polled_start  # the poll says when it started (a hold task started it)

    def mark_started(self) -> None:
        if not self.started.done():
            self.started.set_result(None)

    def on_start_reply(self, reply: asyncio.Future[Any]) -> None:
        """The supervisor's reply to a direct start: the pid, None if it did not start."""
        if not reply.cancelled() and reply.exception() is None and reply.result() is not None:
            self.mark_started()


async def _result(ref: Any) -> Any:
    return None if ref is None else await ref


def holds_nothing(options: dict[str, Any]) -> bool:
    """A container that asks Ray for no resources needs no hold task (pure)."""
    return not options.get("num_cpus") and len(options) == 1


class RayRuntime:
    def __init__(self, data_dir: Path, clock: Clock, node_id: str, volume_root: Callable[[str], Path],
                 on_lost: OnLost | None = None) -> None:
        """``volume_root(pod_uid)``: where the agent materialises the pod's volumes."""
        self.pods_dir = data_dir / "pods"
        self.pods_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.clock = clock
        self.node_id = node_id
        self.volume_root = volume_root
        self.on_lost = on_lost
        self._runs: dict[ContainerRef, asyncio.Task[ContainerExit]] = {}
        self._holds: dict[ContainerRef, Any] = {}
        self._watches: dict[str, _Watch] = {}
        self._done: list[str] = []  # attempts whose exit is recorded: the supervisor may forget them
        self._poller: asyncio.Task[None] | None = None
        self._supervisor: Any = None
        self._ready = False
        self._retired = False

    def pod_dir(self, pod_uid: str) -> Path:
        return self.pods_dir / pod_uid

    def _state_path(self, ref: ContainerRef) -> Path:
        return self.pod_dir(ref.pod_uid) / f"c.{ref.name}.{ref.attempt}.json"

    def _pinned(self) -> NodeAffinitySchedulingStrategy:
        return NodeAffinitySchedulingStrategy(self.node_id, soft=False)

    def supervisor(self) -> Any:
        """The node's supervisor actor (the first joblet that needs it creates it)."""
        if self._supervisor is None:
            self._supervisor = _Supervisor.options(
                name=worker.supervisor_name(self.node_id), namespace=worker.NAMESPACE, lifetime="detached",
                get_if_exists=True, num_cpus=0, max_concurrency=SUPERVISOR_THREADS,
                runtime_env={"env_vars": {"RAY_worker_niceness": "0"}},
                scheduling_strategy=self._pinned()).remote()
        return self._supervisor

    async def _ready_supervisor(self) -> Any:
        """The supervisor, once it answers (hold tasks look it up by name)."""
        if self._supervisor is None:
            await asyncio.to_thread(self.supervisor)
        if not self._ready:
            await self._supervisor.pods.remote()
            self._ready = True
            if not self._retired:
                self._retired = True
                await asyncio.to_thread(self._retire_older)
        return self._supervisor

    def _retire_older(self) -> None:
        """Kill the supervisors of older protocol versions on this node, with their containers.
        A new version is a new actor, so none is ever mis-read; but the attempts an older one
        runs are unknown to this one (a re-adopting joblet reports them
        ``ContainerStatusUnknown`` and the Job controller replaces them): left running they
        would run twice."""
        for version in range(1, worker.PROTOCOL):
            try:
                old = ray.get_actor(worker.supervisor_name(self.node_id, version), namespace=worker.NAMESPACE)
            except ValueError:  # none on this node
                continue
            log.warning("Ray node %s: retiring its supervisor of protocol %d and its containers",
                        self.node_id, version)
            with contextlib.suppress(ray.exceptions.RayError, AttributeError, TimeoutError):
                pods: list[str] = ray.get(old.pods.remote(), timeout=FORGET_TIMEOUT)
                for pod_uid in pods:
                    ray.get(old.forget_pod.remote(pod_uid), timeout=FORGET_TIMEOUT)
            with contextlib.suppress(ray.exceptions.RayError, ValueError):
                ray.kill(old, no_restart=True)

    def payload(self, spec: ContainerSpec) -> dict[str, Any]:
        ref = spec.ref
        root = self.volume_root(ref.pod_uid)
        volumes: dict[str, dict[str, Any]] = {}
        mounts: list[dict[str, Any]] = []
        for m in spec.mounts:
            source = Path(os.path.realpath(m.source))
            entry: dict[str, Any] = {"target": m.target, "read_only": m.read_only, "source": str(m.source)}
            with contextlib.suppress(ValueError):
                rel = source.relative_to(os.path.realpath(root))
                key = rel.parts[0]
                if key not in volumes:
                    volumes[key] = ship_volume(key, Path(os.path.realpath(root)) / key)
                entry.update(key=key, sub=str(Path(*rel.parts[1:])) if len(rel.parts) > 1 else "")
            mounts.append(entry)
        return {"cid": ref.container_id, "pod_uid": ref.pod_uid, "name": ref.name, "attempt": ref.attempt,
                "argv": spec.argv, "env": spec.env, "working_dir": spec.working_dir, "sandbox": spec.sandbox,
                "mounts": mounts, "volumes": list(volumes.values()),
                "termination_message_path": spec.termination_message_path,
                "memory_limit": spec.limits.memory_bytes,
                "capabilities": ProcessRuntime._capabilities(spec),  # one definition of the capability set
                "run_as_user": spec.run_as_user, "run_as_group": spec.run_as_group}

    # -- Runtime -------------------------------------------------------------------------
    async def start(self, spec: ContainerSpec) -> datetime:
        """Once the container's process exists on the Ray node (or the attempt ended without
        one: start error, killed while queued, lost): a hold task may wait in Ray for its
        resources first."""
        ref = spec.ref
        self.pod_dir(ref.pod_uid).mkdir(parents=True, exist_ok=True, mode=0o700)
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        spec.log_path.touch()
        started = self.clock.now()
        options = ray_resources(spec.requests)
        append_record(self._state_path(ref), {"startedAt": started.timestamp(), "log": str(spec.log_path),
                                              "rayNode": self.node_id, "resources": options,
                                              "fallbackToLogs": spec.fallback_to_logs})
        # inline, not in a thread: a few small files (the pod's volumes), and a thread hop costs
        # more than reading them on a busy machine (it was 5 ms a pod, 15 ms at p90)
        payload = self.payload(spec)
        supervisor = await self._ready_supervisor()
        direct = holds_nothing(options)
        watch = self._watch(ref, spec.log_path, polled_start=not direct)
        if direct:  # no Ray task to hold nothing: the supervisor starts it at once, its reply says so
            held = asyncio.ensure_future(_result(supervisor.start.remote(payload)))
            held.add_done_callback(watch.on_start_reply)
        else:  # the hold task starts it once Ray gave it the resources: the poll says when
            held = asyncio.ensure_future(_result(self._hold(ref, {**payload, "notify": True}, options)))
        task = self._runs[ref] = asyncio.get_running_loop().create_task(self._follow(ref, watch, held))
        waits: set[asyncio.Future[Any]] = {watch.started, task}
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        if watch.started.done():
            started = self.clock.now()
            append_record(self._state_path(ref), {"startedAt": started.timestamp()})
        return started

    def _hold(self, ref: ContainerRef, payload: dict[str, Any] | None, options: dict[str, Any]) -> Any:
        hold = _hold.options(scheduling_strategy=self._pinned(), max_retries=0, name=f"joblet:{ref.container_id}",
                             **options).remote(worker.supervisor_name(self.node_id), payload, ref.container_id)
        self._holds[ref] = hold
        return hold

    def _watch(self, ref: ContainerRef, log_path: Path, polled_start: bool) -> _Watch:
        """Have the poll loop follow the attempt's log and exit (and its start: ``polled_start``)."""
        fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        watch = _Watch(fd, os.fstat(fd).st_size, asyncio.get_running_loop(), polled_start)
        self._watches[ref.container_id] = watch
        self._ensure_poller()
        return watch

    async def _follow(self, ref: ContainerRef, watch: _Watch, held: asyncio.Future[Any]) -> ContainerExit:
        """Until the attempt's exit; ``held``: the hold task or the supervisor's start call (a
        future of None: neither, a re-adopted attempt without resources), whose failure means it
        never started."""
        cid = ref.container_id
        fd = watch.fd
        result: ContainerExit | None = None
        try:
            await asyncio.wait({watch.exit, held}, return_when=asyncio.FIRST_COMPLETED)
            if not watch.exit.done():
                failure = held.exception()
                if failure is not None and not isinstance(failure, ray.exceptions.TaskCancelledError) \
                        and not await self._known(cid):
                    result = await self._failed(ref, failure)
            if result is None:
                item = await watch.exit
                result = ContainerExit(int(item["exit"]), str(item["reason"]), self.clock.now(),
                                       signal=item.get("signal"), message=str(item.get("message") or ""))
        except ray.exceptions.RayError as exc:  # the supervisor is gone (its node died)
            result = await self._failed(ref, exc)
        finally:
            os.close(fd)
            self._watches.pop(cid, None)
            self._holds.pop(ref, None)
            if not held.done():
                held.cancel()
        state = read_records(self._state_path(ref))
        if result.exit_code != 0 and not result.message and result.reason != "StartError":
            message = termination_message(None, state.get("log"), bool(state.get("fallbackToLogs")),
                                          result.exit_code)
            if message:
                result = ContainerExit(result.exit_code, result.reason, result.finished_at, result.signal, message)
        self._record_exit(ref, result)
        self._done.append(cid)
        return result

    async def _failed(self, ref: ContainerRef, exc: BaseException) -> ContainerExit:
        if isinstance(exc, ray.exceptions.RayTaskError):  # our worker code raised: report, do not hide
            return ContainerExit(128, "StartError", self.clock.now(), message=str(exc.cause or exc)[:1024])
        message = f"the Ray task was lost: {type(exc).__name__}"
        if self.on_lost is not None:
            await self.on_lost(ref, message)
        return ContainerExit(137, "Error", self.clock.now(), signal=9, message=message)

    async def _known(self, cid: str) -> bool:
        try:
            return bool(await (await self._ready_supervisor()).known.remote([cid]))
        except ray.exceptions.RayError:
            return False

    def _ensure_poller(self) -> None:
        if self._poller is None or self._poller.done():
            self._poller = asyncio.get_running_loop().create_task(self._poll(), name=f"ray-poll-{self.node_id[:12]}")

    async def _poll(self) -> None:
        """One long poll at a time carries the logs and exits of every attempt this runtime follows."""
        supervisor = await self._ready_supervisor()
        generation = -1
        while self._watches:
            offsets = {cid: w.offset for cid, w in self._watches.items()}
            starting = [cid for cid, w in self._watches.items() if w.polled_start and not w.started.done()]
            done, self._done = self._done, []
            try:
                reply = await supervisor.poll.remote(offsets, generation, POLL_SECONDS, done, starting)
            except ray.exceptions.ActorUnavailableError:  # transient: the same actor comes back
                self._done[:0] = done
                await self.clock.sleep_async(1.0)
                continue
            except ray.exceptions.RayError as exc:
                for lost in list(self._watches.values()):
                    if not lost.exit.done():
                        lost.exit.set_exception(exc)
                self._watches.clear()
                return
            generation = int(reply["generation"])
            for cid, entry in reply["changes"].items():
                w = self._watches.get(cid)
                if w is None:
                    continue
                if "started" in entry:
                    w.mark_started()
                data = entry.get("log")
                if data:
                    os.write(w.fd, data)
                    w.offset = int(entry["end"])
                if "exit" in entry:
                    del self._watches[cid]
                    w.exit.set_result(entry["exit"])
        self._forget_done()

    def _forget_done(self) -> None:
        if self._done and self._supervisor is not None:
            done, self._done = self._done, []
            with contextlib.suppress(ray.exceptions.RayError):
                self._supervisor.poll.remote({}, -1, 0, done, [])

    def _record_exit(self, ref: ContainerRef, result: ContainerExit) -> None:
        append_record(self._state_path(ref), {"exitCode": result.exit_code, "reason": result.reason,
                                              "signal": result.signal, "message": result.message,
                                              "finishedAt": result.finished_at.timestamp()})
        log_path = read_records(self._state_path(ref)).get("log")
        if isinstance(log_path, str):
            with contextlib.suppress(OSError):
                Path(log_path).with_suffix(".done").touch()

    async def wait(self, ref: ContainerRef) -> ContainerExit:
        task = self._runs.get(ref)
        if task is None or task.cancelled():  # started by an earlier runtime: re-attach
            state = read_records(self._state_path(ref))
            if "exitCode" in state or not isinstance(state.get("log"), str) \
                    or not await self._known(ref.container_id):
                return self._recorded_exit(ref)
            options = dict(state.get("resources") or {"num_cpus": 0})
            hold = None if holds_nothing(options) else self._hold(ref, None, options)
            watch = self._watch(ref, Path(state["log"]), polled_start=False)
            watch.mark_started()  # the supervisor knows it: it runs, or ran
            task = self._runs[ref] = asyncio.get_running_loop().create_task(
                self._follow(ref, watch, asyncio.ensure_future(_result(hold))))
        return await asyncio.shield(task)

    def _recorded_exit(self, ref: ContainerRef) -> ContainerExit:
        state = read_records(self._state_path(ref))
        if "exitCode" in state:
            return ContainerExit(int(state["exitCode"]), str(state["reason"]),
                                 datetime.fromtimestamp(float(state["finishedAt"]), tz=UTC),
                                 signal=state.get("signal"), message=str(state.get("message") or ""))
        result = ContainerExit(137, "ContainerStatusUnknown", self.clock.now(), message=LOST_MESSAGE)
        self._record_exit(ref, result)  # decided once: a later recovery reports the same
        return result

    async def kill(self, ref: ContainerRef, grace_seconds: float) -> None:
        if "exitCode" in read_records(self._state_path(ref)):
            return
        with contextlib.suppress(ray.exceptions.RayError):
            supervisor = await self._ready_supervisor()
            if await supervisor.kill.remote(ref.container_id, ref.pod_uid, grace_seconds):
                hold = self._holds.get(ref)
                if hold is not None:
                    ray.cancel(hold)  # still queued for its resources: it never starts
        task = self._runs.get(ref)
        if task is not None and not task.done():
            await asyncio.wait({task}, timeout=KILL_SLACK_SECONDS)

    def recover(self, pod_uid: str) -> list[RecoveredContainer]:
        found = list(attempts(self.pod_dir(pod_uid), pod_uid))
        unsettled = [a.ref.container_id for a in found if "exitCode" not in a.state
                     and (a.ref not in self._runs or self._runs[a.ref].cancelled())]
        known: set[str] = set()
        if unsettled:
            try:  # once per pod, when its worker starts: a short blocking call is fine
                known = set(ray.get(self.supervisor().known.remote(unsettled), timeout=RECOVER_TIMEOUT))
            except ray.exceptions.RayError as exc:
                log.warning("Ray node %s: cannot ask its supervisor about pod %s: %s", self.node_id, pod_uid, exc)
        out: list[RecoveredContainer] = []
        for attempt in found:
            ref, started = attempt.ref, attempt.started
            task = self._runs.get(ref)
            if (task is not None and not task.done()) or ref.container_id in known:
                out.append(RecoveredContainer(ref, started, "running"))
            else:
                out.append(RecoveredContainer(ref, started, "exited", self._recorded_exit(ref)))
        return by_container(out)

    def pods(self) -> list[str]:
        return sorted(p.name for p in self.pods_dir.iterdir() if p.is_dir())

    async def remove_pod(self, pod_uid: str) -> None:
        for ref in [r for r in self._runs if r.pod_uid == pod_uid]:
            await self.kill(ref, 0)
            self._runs.pop(ref, None)
        try:  # kills what is left (an orphan of a deleted pod too), removes its dir on the Ray node
            supervisor = await asyncio.wait_for(self._ready_supervisor(), FORGET_TIMEOUT)
            await asyncio.wait_for(_result(supervisor.forget_pod.remote(pod_uid)), FORGET_TIMEOUT)
        except (ray.exceptions.RayError, TimeoutError) as exc:  # the node may be gone, its /tmp with it
            log.info("Ray node %s: forgetting pod %s there: %s", self.node_id, pod_uid, exc)
        unmount_all(self.pod_dir(pod_uid))  # secret/projected tmpfs the agent mounted for the volumes
        shutil.rmtree(self.pod_dir(pod_uid), ignore_errors=True)

    def close(self) -> None:
        """Stop following (the containers keep running under the supervisor, for the next joblet)."""
        for task in [*self._runs.values(), *([self._poller] if self._poller is not None else [])]:
            with contextlib.suppress(RuntimeError):  # a task of an event loop that is closed
                task.cancel()
        self._forget_done()
