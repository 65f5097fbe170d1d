"""Where joblet keeps its state, and the lock that lets one process own it.

The SQLite store serves reads from memory, so two processes must never write one data
directory at once: the owner holds an exclusive ``flock`` on ``DATA_DIR/lock`` and
writes its pid and API address there for others to find.

The data dir holds Secrets, logs and credentials, so it is private to its owner: processes
that write it (server, run, node) call :func:`private_umask` first (files 0600, dirs 0700) and
:func:`make_private` makes the dir itself 0700, also one an older joblet left at 0755.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import IO, Any


def default_data_dir() -> Path:
    env = os.environ.get("JOBLET_DATA_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "joblet"


def private_umask() -> None:
    """Everything this process creates from now on is private to its user (umask 077)."""
    os.umask(0o077)


def make_private(data_dir: Path) -> None:
    """Create ``data_dir`` as 0700, or take group/other access away from an existing one."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if data_dir.stat().st_mode & 0o077:
        data_dir.chmod(0o700)


class DataDirBusy(Exception):
    """Another joblet process owns the data directory."""


def is_in_use(data_dir: Path) -> bool:
    """Whether some process holds the data dir now (a server or an embedded run)."""
    try:
        f = open(data_dir / "lock")  # noqa: SIM115 - closed below
    except OSError:
        return False
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        f.close()
    return False


class DataDirLock:
    """An exclusive ``flock`` on ``DATA_DIR/lock`` held while a joblet process uses the data
    dir; its content says who holds it. Subclasses lock another file for another role."""

    FILE = "lock"
    HOLDER = "another joblet process"
    BUSY: type[DataDirBusy] = DataDirBusy

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._file: IO[str] | None = None

    def acquire(self, info: dict[str, Any] | None = None) -> None:
        make_private(self.data_dir)
        f = open(self.data_dir / self.FILE, "a+")  # noqa: SIM115 - held for the process lifetime
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            owner = f.read().strip()
            f.close()
            raise self.BUSY(f"data dir {self.data_dir} is in use by {self.HOLDER} ({owner or 'unknown'})") from None
        self._file = f
        self.update(info or {})

    def update(self, info: dict[str, Any]) -> None:
        if self._file is None:
            return
        self._file.seek(0)
        self._file.truncate()
        self._file.write(json.dumps({"pid": os.getpid(), **info}))
        self._file.flush()

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None
