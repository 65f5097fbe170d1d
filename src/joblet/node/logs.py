"""The log store: container output that outlives its pod.

Why: Kubernetes loses a pod's logs with the pod; joblet keeps one file per container attempt
under ``<data_dir>/logs/<namespace>/<pod>/<pod-uid>/<container>/<attempt>.log`` until a
retention limit, so ``pods/log`` and ``joblet logs`` work after the pod (and its Job) are gone.
Files are in the CRI format the shim writes (``<RFC3339Nano> stdout|stderr F|P <text>``); this
module turns them back into what ``kubectl logs`` prints. An attempt is over once the runtime
wrote ``<attempt>.done`` beside its log, which is what ends ``follow``.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

from joblet.clock import Clock
from joblet.errors import BadRequest, not_found
from joblet.logformat import line_time, render

FOLLOW_POLL_SECONDS = 0.1


class LogStore:
    def __init__(self, data_dir: Path, clock: Clock, retention_days: float = 30.0,
                 max_total_bytes: int | None = None) -> None:
        self.root = data_dir / "logs"
        self.clock = clock
        self.retention_days = retention_days
        self.max_total_bytes = max_total_bytes

    # -- layout ----------------------------------------------------------------------------
    def path(self, namespace: str, pod: str, uid: str, container: str, attempt: int) -> Path:
        return self.root / namespace / pod / uid / container / f"{attempt}.log"

    def pods(self, namespace: str) -> list[str]:
        return _names(self.root / namespace)

    def _uid_dir(self, namespace: str, pod: str, uid: str | None) -> Path | None:
        base = self.root / namespace / pod
        if uid:
            return base / uid if (base / uid).is_dir() else None
        dirs = [d for d in _dirs(base)]
        return max(dirs, key=lambda d: d.stat().st_mtime_ns) if dirs else None

    def containers(self, namespace: str, pod: str, uid: str | None = None) -> list[str]:
        uid_dir = self._uid_dir(namespace, pod, uid)
        return _names(uid_dir) if uid_dir else []

    def attempts(self, namespace: str, pod: str, container: str, uid: str | None = None) -> list[int]:
        uid_dir = self._uid_dir(namespace, pod, uid)
        if uid_dir is None:
            return []
        return sorted(int(p.stem) for p in (uid_dir / container).glob("*.log") if p.stem.isdigit())

    def _resolve(self, namespace: str, pod: str, container: str | None, previous: bool,
                 uid: str | None) -> Path:
        uid_dir = self._uid_dir(namespace, pod, uid)
        if uid_dir is None:
            raise not_found("pods", "", pod)
        names = _names(uid_dir)
        if container is None:
            if len(names) != 1:
                raise BadRequest(
                    f"a container name must be specified for pod {pod}, choose one of: [{' '.join(names)}]")
            container = names[0]
        attempts = self.attempts(namespace, pod, container, uid_dir.name)
        if not attempts:
            raise BadRequest(f'container "{container}" in pod "{pod}" is waiting to start: ContainerCreating')
        if previous:
            if len(attempts) < 2:
                raise BadRequest(f'previous terminated container "{container}" in pod "{pod}" not found')
            return uid_dir / container / f"{attempts[-2]}.log"
        return uid_dir / container / f"{attempts[-1]}.log"

    # -- reading ---------------------------------------------------------------------------
    async def read(self, namespace: str, pod: str, container: str | None = None, follow: bool = False,
                   tail_lines: int | None = None, since_time: datetime | None = None,
                   timestamps: bool = False, previous: bool = False, limit_bytes: int | None = None,
                   uid: str | None = None) -> AsyncIterator[bytes]:
        path = self._resolve(namespace, pod, container, previous, uid)
        done_marker = path.with_suffix(".done")
        budget = limit_bytes if limit_bytes is not None else -1
        with open(path, "rb") as f:
            data = f.read()
            end = data.rfind(b"\n") + 1
            lines = data[:end].splitlines()
            pending = data[end:]
            if since_time is not None:
                lines = [ln for ln in lines if (t := line_time(ln)) is None or t >= since_time]
            if tail_lines is not None:
                lines = lines[-tail_lines:] if tail_lines > 0 else []
            chunk = b"".join(render(ln, timestamps) for ln in lines)
            chunk, budget = _cap(chunk, budget)
            if chunk:
                yield chunk
            if not follow or budget == 0:
                return
            while True:
                finished = done_marker.exists() or previous
                more = f.read()
                if more:
                    data = pending + more
                    end = data.rfind(b"\n") + 1
                    pending = data[end:]
                    chunk = b"".join(render(ln, timestamps) for ln in data[:end].splitlines())
                    chunk, budget = _cap(chunk, budget)
                    if chunk:
                        yield chunk
                    if budget == 0:
                        return
                    continue
                if finished:
                    return
                await asyncio.sleep(FOLLOW_POLL_SECONDS)

    # -- retention -------------------------------------------------------------------------
    def prune(self) -> int:
        """Delete attempts older than the retention period, then the oldest beyond the size cap."""
        now = self.clock.now().timestamp()
        files = sorted((p.stat().st_mtime, p.stat().st_size, p) for p in self.root.glob("*/*/*/*/*.log"))
        removed = 0
        total = sum(size for _, size, _ in files)
        for mtime, size, path in files:
            too_old = now - mtime > self.retention_days * 86400
            too_big = self.max_total_bytes is not None and total > self.max_total_bytes
            if not (too_old or too_big):
                continue
            path.unlink(missing_ok=True)
            path.with_suffix(".done").unlink(missing_ok=True)
            total -= size
            removed += 1
            _remove_empty_parents(path.parent, self.root)
        return removed

    def remove(self, namespace: str, pod: str) -> None:
        shutil.rmtree(self.root / namespace / pod, ignore_errors=True)


def _cap(chunk: bytes, budget: int) -> tuple[bytes, int]:
    if budget < 0:
        return chunk, budget
    chunk = chunk[:budget]
    return chunk, budget - len(chunk)


def _dirs(path: Path) -> list[Path]:
    try:
        return [p for p in path.iterdir() if p.is_dir()]
    except OSError:
        return []


def _names(path: Path) -> list[str]:
    return sorted(p.name for p in _dirs(path))


def _remove_empty_parents(path: Path, stop: Path) -> None:
    while path != stop and stop in path.parents:
        with contextlib.suppress(OSError):
            path.rmdir()
        if path.exists():
            return
        path = path.parent
