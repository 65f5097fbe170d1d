"""Attempt records on disk, shared by every runtime that keeps its state in files.

Why: the process and podman runtimes both remember each container attempt as JSON-lines
records (intent before start, pid + starttime after, the exit status at the end), adopt a
live supervisor by pid + ``/proc/<pid>/stat`` starttime, wait on it with a pidfd, and build
``state.terminated.message`` the same way. One copy of that code lives here, so a runtime
never imports another runtime's helpers.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from joblet.logformat import render
from joblet.node.runtimes.base import ContainerExit, ContainerRef, RecoveredContainer

MAX_TERMINATION_MESSAGE_BYTES = 4096
FALLBACK_LOG_LINES = 80
FALLBACK_LOG_BYTES = 2048


def log_tail(data: bytes, max_lines: int = FALLBACK_LOG_LINES, max_bytes: int = FALLBACK_LOG_BYTES) -> str:
    """The last lines of a CRI log as the container wrote them (FallbackToLogsOnError)."""
    lines = data.splitlines()[-max_lines:]
    text = b"".join(render(line, timestamps=False) for line in lines)
    return text[-max_bytes:].decode(errors="replace")


def termination_message(termlog: object, log_path: object, fallback_to_logs: bool, exit_code: int) -> str:
    """``state.terminated.message``: the termination file, else (policy permitting) the log tail."""
    message = ""
    if isinstance(termlog, str):
        with contextlib.suppress(OSError), open(termlog, "rb") as f:
            message = f.read(MAX_TERMINATION_MESSAGE_BYTES).decode(errors="replace")
    if not message and fallback_to_logs and exit_code != 0 and isinstance(log_path, str):
        with contextlib.suppress(OSError), open(log_path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(f.tell() - 64 * 1024, 0))
            message = log_tail(f.read())
    return message


def lost_exit(now: datetime) -> ContainerExit:
    return ContainerExit(
        137, "ContainerStatusUnknown", now,
        message="The container could not be located when the pod was terminated",
    )


def proc_stat_fields(pid: int) -> list[bytes] | None:
    """The fields of /proc/<pid>/stat after the command name (``[0]`` is field 3, the state;
    the name may hold spaces and parentheses), None when no such process is there."""
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        data = os.read(fd, 4096)
    except OSError:
        return None
    finally:
        os.close(fd)
    end = data.rfind(b")")
    return data[end + 2:].split() if end >= 0 else None


def proc_starttime(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat (start time in clock ticks): pid + this is a unique identity."""
    fields = proc_stat_fields(pid)
    return int(fields[19]) if fields is not None else None


async def wait_pid(pid: int) -> None:
    """Until the process exits (child or not), via a pidfd on the event loop."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def ready() -> None:
        if not done.done():
            done.set_result(None)

    loop.add_reader(fd, ready)
    try:
        await done
    finally:
        loop.remove_reader(fd)
        os.close(fd)


def append_record(path: Path, value: dict[str, Any]) -> None:
    """Append one record to an attempt's state file (JSON lines, later lines win on read).

    An append is one write on an open file, where a temp file and rename cost a journaled
    directory update: at 1,000 pods/s that difference is most of a millisecond per pod. A
    crash mid-append leaves a torn last line, which the reader skips."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, orjson.dumps(value) + b"\n")
    finally:
        os.close(fd)


def read_records(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return {}
    merged: dict[str, Any] = {}
    for line in data.splitlines():
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue  # a torn append
        if isinstance(record, dict):
            merged.update(record)
    return merged


@dataclass(frozen=True)
class Attempt:
    """One container attempt a pod directory remembers (its ``c.NAME.ATTEMPT.json`` records)."""

    ref: ContainerRef
    started: datetime
    state: dict[str, Any]


def attempts(pod_dir: Path, pod_uid: str) -> Iterator[Attempt]:
    """The attempts recorded under ``pod_dir``, for a runtime's ``recover()``."""
    for path in pod_dir.glob("c.*.json"):
        _, name, attempt_text = path.name[: -len(".json")].split(".", 2)
        if not attempt_text.isdigit():
            continue
        state = read_records(path)
        started = datetime.fromtimestamp(float(state.get("startedAt", 0)), tz=UTC)
        yield Attempt(ContainerRef(pod_uid, name, int(attempt_text)), started, state)


def by_container(found: list[RecoveredContainer]) -> list[RecoveredContainer]:
    """``recover()``'s answer order: by container name, then attempt."""
    return sorted(found, key=lambda r: (r.ref.name, r.ref.attempt))


class SharedWaits:
    """One wait per container attempt, shared by every caller of ``Runtime.wait`` (a caller
    cancelled mid-wait does not cancel it for the others).

    A wait that returned is kept as its :class:`ContainerExit` only, not as its task: the agent
    keeps a finished pod's attempts until the pod is deleted, and a Job's finished pods stay for
    its whole life (a done task, its entry in asyncio's task set and its result held ~0.9 KB per
    pod, tracemalloc). A wait that failed stays a task, so later callers see the same error."""

    def __init__(self) -> None:
        self._tasks: dict[ContainerRef, asyncio.Task[ContainerExit]] = {}
        self._exits: dict[ContainerRef, ContainerExit] = {}

    async def wait(self, ref: ContainerRef, waiter: Callable[[], Coroutine[Any, Any, ContainerExit]]) -> ContainerExit:
        exited = self._exits.get(ref)
        if exited is not None:
            return exited
        task = self._tasks.get(ref)
        if task is None:
            task = asyncio.get_running_loop().create_task(waiter())
            self._tasks[ref] = task
            task.add_done_callback(functools.partial(self._settled, ref))
        return await asyncio.shield(task)

    def _settled(self, ref: ContainerRef, task: asyncio.Task[ContainerExit]) -> None:
        if self._tasks.get(ref) is task and not task.cancelled() and task.exception() is None:
            del self._tasks[ref]
            self._exits[ref] = task.result()

    def forget_pod(self, pod_uid: str) -> list[ContainerRef]:
        """Drop the pod's waits (its directory is gone); the attempts they were for."""
        refs = [r for r in (*self._tasks, *self._exits) if r.pod_uid == pod_uid]
        for ref in refs:
            self._tasks.pop(ref, None)
            self._exits.pop(ref, None)
        return refs
