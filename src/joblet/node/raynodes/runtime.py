"""The container runtime over Ray: each attempt is a Ray task pinned to one Ray node.

Why: the node agent keeps every pod decision (env, volumes, init order, restarts, deadlines,
deletion); only *where the process runs* changes. So this is a :class:`Runtime` like the
process runtime, bound to one Ray node:

* ``start`` submits :func:`joblet.node.raynodes.worker.run_container` as a streaming generator
  task with ``NodeAffinitySchedulingStrategy(node_id, soft=False)``, ``max_retries=0`` (the Job
  controller owns retries) and the container's requests as Ray resources (cpu → ``num_cpus``,
  memory → ``memory``, ``nvidia.com/gpu`` → ``num_gpus``, ``ray.io/R`` → custom resource R).
  Volumes the agent materialised (configMap, secret, downwardAPI, projected, emptyDir) are
  shipped with the task and written under a per-pod dir on the Ray node; hostPath is the Ray
  node's path.
* one asyncio task per attempt consumes the generator: log batches are appended to the
  attempt's CRI log file in the log store (so ``kubectl logs -f`` follows it), the exit is
  recorded in ``<data_dir>/pods/<uid>/c.<name>.<attempt>.json`` and ``<attempt>.done`` ends follow.
* ``kill``: a second task on the same node SIGTERMs the container's process group and SIGKILLs
  it after the grace period; a task that never started is cancelled; as a last resort
  ``ray.cancel(force=True)`` kills the Ray worker (and, with it, its children).
* a task lost to the system (node died, worker crashed) is handed to ``on_lost`` first, which
  fails the pod with ``DisruptionTarget`` when its Ray node is gone, then reported as exit 137.
* Ray tasks end with their driver, so after a joblet restart an attempt without a recorded exit
  is reported ``ContainerStatusUnknown`` (exit 137) with a message saying so: never run twice,
  never counted twice.
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
LOST_MESSAGE = ("The Ray task of this container ended with joblet's previous run (Ray tasks do not outlive "
                "their driver); its outcome is unknown")

OnLost = Callable[[ContainerRef, str], Awaitable[None]]

_run = ray.remote(worker.run_container)
_kill = ray.remote(worker.kill_tree)
_forget = ray.remote(worker.forget_pod)


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
        self._gens: dict[ContainerRef, Any] = {}
        self._pids: dict[ContainerRef, int] = {}

    def pod_dir(self, pod_uid: str) -> Path:
        return self.pods_dir / pod_uid

    def _state_path(self, ref: ContainerRef) -> Path:
        return self.pod_dir(ref.pod_uid) / f"c.{ref.name}.{ref.attempt}.json"

    def _pinned(self) -> NodeAffinitySchedulingStrategy:
        return NodeAffinitySchedulingStrategy(self.node_id, soft=False)

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
        return {"pod_uid": ref.pod_uid, "name": ref.name, "attempt": ref.attempt, "argv": spec.argv,
                "env": spec.env, "working_dir": spec.working_dir, "sandbox": spec.sandbox,
                "mounts": mounts, "volumes": list(volumes.values()),
                "termination_message_path": spec.termination_message_path,
                "capabilities": ProcessRuntime._capabilities(spec),  # one definition of the capability set
                "run_as_user": spec.run_as_user, "run_as_group": spec.run_as_group}

    # -- Runtime -------------------------------------------------------------------------
    async def start(self, spec: ContainerSpec) -> datetime:
        ref = spec.ref
        self.pod_dir(ref.pod_uid).mkdir(parents=True, exist_ok=True, mode=0o700)
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        spec.log_path.touch()
        started = self.clock.now()
        append_record(self._state_path(ref), {"startedAt": started.timestamp(), "log": str(spec.log_path),
                                              "rayNode": self.node_id,
                                              "fallbackToLogs": spec.fallback_to_logs})
        payload = await asyncio.to_thread(self.payload, spec)
        options = ray_resources(spec.requests)
        gen = _run.options(scheduling_strategy=self._pinned(), max_retries=0, num_returns="streaming",
                           name=f"joblet:{ref.container_id}", **options).remote(payload)
        self._gens[ref] = gen
        self._runs[ref] = asyncio.get_running_loop().create_task(self._consume(spec, gen))
        return started

    async def _consume(self, spec: ContainerSpec, gen: Any) -> ContainerExit:
        ref = spec.ref
        result: ContainerExit | None = None
        fd = os.open(spec.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        try:
            async for item_ref in gen:
                item = await item_ref
                if "log" in item:
                    os.write(fd, item["log"])
                elif "pid" in item:
                    self._pids[ref] = int(item["pid"])
                    append_record(self._state_path(ref), {"pid": int(item["pid"])})
                elif "exit" in item:
                    result = ContainerExit(int(item["exit"]), str(item["reason"]), self.clock.now(),
                                           signal=item.get("signal"), message=str(item.get("message") or ""))
        except ray.exceptions.TaskCancelledError:
            result = ContainerExit(137, "Error", self.clock.now(), signal=9)
        except ray.exceptions.RayTaskError as exc:  # our worker code raised: report, do not hide
            result = ContainerExit(128, "StartError", self.clock.now(), message=str(exc.cause or exc)[:1024])
        except ray.exceptions.RayError as exc:  # node died, worker crashed, object lost
            message = f"the Ray task was lost: {type(exc).__name__}"
            if self.on_lost is not None:
                await self.on_lost(ref, message)
            result = ContainerExit(137, "Error", self.clock.now(), signal=9, message=message)
        finally:
            os.close(fd)
            self._gens.pop(ref, None)
            self._pids.pop(ref, None)
        if result is None:
            result = ContainerExit(137, "ContainerStatusUnknown", self.clock.now(),
                                   message="the Ray task ended without an exit status")
        state = read_records(self._state_path(ref))
        if result.exit_code != 0 and not result.message and result.reason != "StartError":
            message = termination_message(None, state.get("log"), bool(state.get("fallbackToLogs")),
                                          result.exit_code)
            if message:
                result = ContainerExit(result.exit_code, result.reason, result.finished_at, result.signal, message)
        self._record_exit(ref, result)
        return result

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
        if task is not None:
            return await asyncio.shield(task)
        return self._recorded_exit(ref)

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
        task = self._runs.get(ref)
        if task is None or task.done():
            return
        pid = self._pids.get(ref)
        gen = self._gens.get(ref)
        if pid is None:
            if gen is not None:
                ray.cancel(gen)
        else:
            with contextlib.suppress(ray.exceptions.RayError):
                await _kill.options(scheduling_strategy=self._pinned(), num_cpus=0,
                                    max_retries=0).remote(pid, grace_seconds)
        done, _ = await asyncio.wait({task}, timeout=KILL_SLACK_SECONDS)
        if not done and gen is not None:
            ray.cancel(gen, force=True)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(task)

    def recover(self, pod_uid: str) -> list[RecoveredContainer]:
        found: list[RecoveredContainer] = []
        for attempt in attempts(self.pod_dir(pod_uid), pod_uid):
            ref, started = attempt.ref, attempt.started
            task = self._runs.get(ref)
            if task is not None and not task.done():
                found.append(RecoveredContainer(ref, started, "running"))
            else:
                found.append(RecoveredContainer(ref, started, "exited", self._recorded_exit(ref)))
        return by_container(found)

    def pods(self) -> list[str]:
        return sorted(p.name for p in self.pods_dir.iterdir() if p.is_dir())

    async def remove_pod(self, pod_uid: str) -> None:
        for ref in [r for r in self._runs if r.pod_uid == pod_uid]:
            await self.kill(ref, 0)
            self._runs.pop(ref, None)
        unmount_all(self.pod_dir(pod_uid))  # secret/projected tmpfs the agent mounted for the volumes
        shutil.rmtree(self.pod_dir(pod_uid), ignore_errors=True)
        with contextlib.suppress(Exception):  # the node may be gone; its /tmp with it
            _forget.options(scheduling_strategy=self._pinned(), num_cpus=0, max_retries=0).remote(pod_uid)

    async def close(self) -> None:
        """Stop consuming (the driver is going away; Ray ends the tasks with it)."""
        for task in self._runs.values():
            task.cancel()
        await asyncio.gather(*self._runs.values(), return_exceptions=True)
