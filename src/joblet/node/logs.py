"""The log store: container output that outlives its pod.

Why: Kubernetes loses a pod's logs with the pod; joblet keeps one file per container attempt
under ``<data_dir>/logs/<namespace>/<pod>/<pod-uid>/<container>/<attempt>.log`` until a
retention limit, so ``pods/log`` and ``joblet logs`` work after the pod (and its Job) are gone.
Files are in the CRI format the shim writes (``<RFC3339Nano> stdout|stderr F|P <text>``); this
module turns them back into what ``kubectl logs`` prints. An attempt is over once the runtime
wrote ``<attempt>.done`` beside its log, which is what ends ``follow``.

The shim caps each attempt like the kubelet (``--container-log-max-size`` and
``--container-log-max-files``): ``<attempt>.log`` is the live file, ``<attempt>.log.<seq>``
the rotated ones, read oldest first. Reads never load a file whole: ``tailLines`` scans
backwards from the end, ``limitBytes`` stops early, and all file I/O (and rendering) runs in
worker threads so that a big log never stalls the event loop.
Reads never leave ``logs/`` (SEC-05): namespace and pod must be a DNS label/subdomain, the
container one of the real (non-symlink) directories of the pod, and the log a regular file.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import stat
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from joblet.api.validation.meta import is_dns1123_label, is_dns1123_subdomain
from joblet.clock import Clock, poll_pause
from joblet.errors import BadRequest, not_found
from joblet.logformat import line_time, log_files, render

FOLLOW_POLL_SECONDS = 0.1
READ_BLOCK = 64 * 1024
DEFAULT_MAX_SIZE = 10 * 1024 * 1024  # the kubelet's containerLogMaxSize
DEFAULT_MAX_FILES = 5  # the kubelet's containerLogMaxFiles


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
        return _names(self.root / namespace) if not is_dns1123_label(namespace) else []

    def _uid_dir(self, namespace: str, pod: str, uid: str | None) -> Path | None:
        if not _valid_names(namespace, pod) or (uid and not _UID.match(uid)):
            return None  # no pod has such a name: nothing under logs/ can match (SEC-05)
        base = self.root / namespace / pod
        if not _real_dirs_below(self.root, base):
            return None
        if uid:
            return base / uid if _real_dirs_below(self.root, base / uid) else None
        dirs = [d for d in _dirs(base)]
        return max(dirs, key=lambda d: d.stat().st_mtime_ns) if dirs else None

    def containers(self, namespace: str, pod: str, uid: str | None = None) -> list[str]:
        uid_dir = self._uid_dir(namespace, pod, uid)
        return _names(uid_dir) if uid_dir else []

    def attempts(self, namespace: str, pod: str, container: str, uid: str | None = None) -> list[int]:
        uid_dir = self._uid_dir(namespace, pod, uid)
        if uid_dir is None or container not in _names(uid_dir):
            return []
        return _attempts_in(uid_dir / container)

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
        if container not in names:  # a DNS label that exists as a real directory: no "..", no symlink
            raise BadRequest(f"container {container} is not valid for pod {pod}")
        attempts = _attempts_in(uid_dir / container)  # the dirs were checked just above
        if not attempts:
            raise BadRequest(f'container "{container}" in pod "{pod}" is waiting to start: ContainerCreating')
        if previous:
            if len(attempts) < 2:
                raise BadRequest(f'previous terminated container "{container}" in pod "{pod}" not found')
            return _regular(uid_dir / container / f"{attempts[-2]}.log", pod)
        return _regular(uid_dir / container / f"{attempts[-1]}.log", pod)

    def _resolve_files(self, namespace: str, pod: str, container: str | None, previous: bool,
                       uid: str | None) -> tuple[Path, list[Path]]:
        path = self._resolve(namespace, pod, container, previous, uid)
        return path, log_files(path)

    # -- reading ---------------------------------------------------------------------------
    async def read(self, namespace: str, pod: str, container: str | None = None, follow: bool = False,
                   tail_lines: int | None = None, since_time: datetime | None = None,
                   timestamps: bool = False, previous: bool = False, limit_bytes: int | None = None,
                   uid: str | None = None) -> AsyncIterator[bytes]:
        start = await asyncio.to_thread(self._begin, namespace, pod, container, previous, uid, tail_lines,
                                        since_time, timestamps)
        path, files, index, current, block, finished = start
        done_marker = path.with_suffix(".done")
        budget = limit_bytes if limit_bytes is not None else -1
        pending = b""
        live = None
        try:
            for i in range(index, len(files)):
                if current is None:
                    current, block = await asyncio.to_thread(
                        _open_and_read, files[i], 0, pending, since_time, timestamps)
                    if current is None:
                        continue  # rotated away meanwhile
                while True:
                    if block is not None:
                        (chunk, pending, eof), block = block, None
                    else:
                        chunk, pending, eof = await asyncio.to_thread(
                            _read_rendered, current, pending, since_time, timestamps)
                    chunk, budget = _cap(chunk, budget)
                    if chunk:
                        yield chunk
                    if budget == 0:
                        return
                    if eof:
                        break
                if i == len(files) - 1:
                    live, current = current, None
                else:
                    current.close()
                    current = None
            if not follow or live is None or finished:
                return  # a finished attempt (done before the first read) was read to its end
            while True:
                chunk, pending, eof, finished, replaced = await asyncio.to_thread(
                    _follow_step, live, pending, since_time, timestamps, path, done_marker, previous)
                chunk, budget = _cap(chunk, budget)
                if chunk:
                    yield chunk
                if budget == 0:
                    return
                if not eof:
                    continue
                if replaced:
                    # Rotated: the old file is final once renamed; read what is left, then go on.
                    while not eof:
                        chunk, pending, eof = await asyncio.to_thread(
                            _read_rendered, live, pending, since_time, timestamps)
                        chunk, budget = _cap(chunk, budget)
                        if chunk:
                            yield chunk
                    replacement = await asyncio.to_thread(_open_log, path, 0)
                    if replacement is not None:
                        live.close()
                        live = replacement
                        continue
                if finished:
                    return
                await poll_pause(FOLLOW_POLL_SECONDS)
        finally:
            for f in (live, current):
                if f is not None:
                    f.close()

    def _begin(self, namespace: str, pod: str, container: str | None, previous: bool, uid: str | None,
               tail_lines: int | None, since_time: datetime | None, timestamps: bool,
               ) -> tuple[Path, list[Path], int, BinaryIO | None, tuple[bytes, bytes, bool] | None, bool]:
        """A read's first thread hop: resolve the files, find where to start, open the first one
        still there and read its first block. Also whether the attempt had finished before that
        read (its ``.done`` was there): then a read to the end of the last file is the whole log.
        A short container's log is then read in one hop, not five (each hop costs more CPU than
        the reads)."""
        path, files = self._resolve_files(namespace, pod, container, previous, uid)
        finished = previous or path.with_suffix(".done").exists()
        first, offset = tail_start(files, tail_lines) if tail_lines is not None else (0, 0)
        for i in range(first, len(files)):
            f, block = _open_and_read(files[i], offset if i == first else 0, b"", since_time, timestamps)
            if f is not None:
                return path, files, i, f, block, finished
        return path, files, len(files), None, None, finished

    # -- retention -------------------------------------------------------------------------
    def prune(self) -> int:
        """Delete attempts older than the retention period, then the oldest beyond the size cap."""
        now = self.clock.now().timestamp()
        files = []
        for p in [*self.root.glob("*/*/*/*/*.log"), *self.root.glob("*/*/*/*/*.log.*")]:
            with contextlib.suppress(OSError):
                st = p.stat()
                files.append((st.st_mtime, st.st_size, p))
        files.sort()
        removed = 0
        total = sum(size for _, size, _ in files)
        for mtime, size, path in files:
            too_old = now - mtime > self.retention_days * 86400
            too_big = self.max_total_bytes is not None and total > self.max_total_bytes
            if not (too_old or too_big):
                continue
            path.unlink(missing_ok=True)
            if path.suffix == ".log":
                path.with_suffix(".done").unlink(missing_ok=True)
            total -= size
            removed += 1
            _remove_empty_parents(path.parent, self.root)
        return removed

    def remove(self, namespace: str, pod: str) -> None:
        shutil.rmtree(self.root / namespace / pod, ignore_errors=True)


def tail_start(files: list[Path], lines: int) -> tuple[int, int]:
    """Where the last ``lines`` complete lines of ``files`` begin: (file index, byte offset).

    Scans backwards block by block; a trailing unterminated line is not counted (it is
    pending output). Before the first file when there are fewer lines."""
    if lines <= 0:
        last = len(files) - 1
        with contextlib.suppress(OSError):
            size = files[last].stat().st_size
            with open(files[last], "rb") as f:  # start after the last newline
                f.seek(max(0, size - READ_BLOCK))
                block = f.read()
                return last, size - len(block) + block.rfind(b"\n") + 1 if b"\n" in block else size
        return last, 0
    wanted = lines + 1  # the newline before the first wanted line
    seen = 0
    for index in range(len(files) - 1, -1, -1):
        try:
            f = open(files[index], "rb")  # noqa: SIM115 - closed below
        except OSError:
            continue
        with f:
            pos = f.seek(0, os.SEEK_END)
            while pos > 0:
                start = max(0, pos - READ_BLOCK)
                f.seek(start)
                block = f.read(pos - start)
                end = len(block)
                while True:
                    nl = block.rfind(b"\n", 0, end)
                    if nl < 0:
                        break
                    seen += 1
                    if seen == wanted:
                        return index, start + nl + 1
                    end = nl
                pos = start
    return 0, 0


def _open_log(path: Path, offset: int) -> BinaryIO | None:
    """A log file opened for reading at ``offset`` (never through a symlink); None if gone."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    f = os.fdopen(fd, "rb")
    if offset:
        f.seek(offset)
    return f


def _open_and_read(path: Path, offset: int, pending: bytes, since_time: datetime | None, timestamps: bool,
                   ) -> tuple[BinaryIO | None, tuple[bytes, bytes, bool] | None]:
    """:func:`_open_log` and the file's first block (:func:`_read_rendered`), in one thread hop."""
    f = _open_log(path, offset)
    return (f, _read_rendered(f, pending, since_time, timestamps)) if f is not None else (None, None)


def _read_rendered(f: BinaryIO, pending: bytes, since_time: datetime | None,
                   timestamps: bool) -> tuple[bytes, bytes, bool]:
    """One block of ``f`` as ``kubectl logs`` prints it: (output, unterminated rest, at EOF)."""
    block = f.read(READ_BLOCK)
    if not block:
        return b"", pending, True
    data = pending + block
    end = data.rfind(b"\n") + 1
    lines = data[:end].split(b"\n")[:-1]  # not splitlines(): a CR inside a line is text
    if since_time is not None:
        lines = [ln for ln in lines if (t := line_time(ln)) is None or t >= since_time]
    # a short read of a regular file is its end (for now): no second read to learn it
    return b"".join(render(ln, timestamps) for ln in lines), data[end:], len(block) < READ_BLOCK


def _follow_step(live: BinaryIO, pending: bytes, since_time: datetime | None, timestamps: bool, path: Path,
                 done_marker: Path, previous: bool) -> tuple[bytes, bytes, bool, bool, bool]:
    """One poll of a followed log in one thread hop: (output, rest, at EOF, attempt finished before
    the read, file rotated away). A thread hop costs more CPU than the reads themselves."""
    finished = previous or done_marker.exists()
    chunk, pending, eof = _read_rendered(live, pending, since_time, timestamps)
    return chunk, pending, eof, finished, eof and _replaced(path, live)


def _attempts_in(container_dir: Path) -> list[int]:
    return sorted(int(p.stem) for p in container_dir.glob("*.log") if p.stem.isdigit())


def _replaced(path: Path, f: BinaryIO) -> bool:
    """Whether ``path`` now names another file than the open ``f`` (the shim rotated it)."""
    try:
        return os.stat(path).st_ino != os.fstat(f.fileno()).st_ino
    except OSError:
        return False


def _cap(chunk: bytes, budget: int) -> tuple[bytes, int]:
    if budget < 0:
        return chunk, budget
    chunk = chunk[:budget]
    return chunk, budget - len(chunk)


_UID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,127}$")


def _valid_names(namespace: str, pod: str) -> bool:
    return not is_dns1123_label(namespace) and not is_dns1123_subdomain(pod)


def _real_dirs_below(root: Path, path: Path) -> bool:
    """Every component of ``path`` below ``root`` is a directory, none a symlink."""
    current = root
    for part in path.relative_to(root).parts:
        current = current / part
        try:
            if not stat.S_ISDIR(os.lstat(current).st_mode):
                return False
        except OSError:
            return False
    return True


def _regular(path: Path, pod: str) -> Path:
    """A log file that is a regular file, not a symlink planted in the log store."""
    try:
        if stat.S_ISREG(os.lstat(path).st_mode):
            return path
    except OSError:
        pass
    raise not_found("pods", "", pod)


def _dirs(path: Path) -> list[Path]:
    """Real subdirectories (a symlink to a directory is not followed)."""
    try:
        with os.scandir(path) as entries:
            return [Path(e.path) for e in entries if e.is_dir(follow_symlinks=False)]
    except (OSError, ValueError):
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
