"""Store backends behind one contract (:mod:`joblet.store.interface`), picked by a URL.

Why: the server, the embedded ``joblet run`` and the tests choose a backend with one string
(``memory``, ``sqlite:///path/joblet.db`` or a data dir), so no caller imports a backend.
"""

from __future__ import annotations

import os
from pathlib import Path

from joblet.security.encryption import AesGcmEncryption
from joblet.store.interface import Key, Obj, Store, Watch, WatchEvent
from joblet.store.memory import MemoryStore
from joblet.store.sqlite import DB_FILE_NAME, SqliteStore
from joblet.store.watch import DEFAULT_HISTORY_BYTES, DEFAULT_HISTORY_EVENTS, StoreWatch, WatchHub

__all__ = [
    "DB_FILE_NAME",
    "Key",
    "MemoryStore",
    "Obj",
    "SqliteStore",
    "Store",
    "StoreWatch",
    "Watch",
    "WatchEvent",
    "WatchHub",
    "open_store",
]


def open_store(
    url_or_path: str | os.PathLike[str],
    *,
    history_events: int = DEFAULT_HISTORY_EVENTS,
    history_bytes: int = DEFAULT_HISTORY_BYTES,
    encryption: AesGcmEncryption | None = None,
) -> MemoryStore:
    """Open a store.

    * ``memory`` / ``memory://`` / ``:memory:`` — the in-memory store;
    * ``sqlite:///abs/path/file.db`` or ``sqlite://relative.db`` — SQLite at that file;
    * a path ending in ``.db``/``.sqlite``/``.sqlite3`` — SQLite at that file;
    * any other path — a data dir: SQLite at ``<dir>/joblet.db``.

    ``history_events`` / ``history_bytes`` bound the watch history; ``encryption`` encrypts
    Secrets in SQLite (:mod:`joblet.security.encryption`).
    """
    text = os.fspath(url_or_path)
    if text in ("memory", "memory://", ":memory:"):
        return MemoryStore(history_events=history_events, history_bytes=history_bytes)
    if text.startswith("sqlite://"):
        path = Path(text[len("sqlite://"):])
    else:
        path = Path(text).expanduser()
        if path.suffix not in (".db", ".sqlite", ".sqlite3"):
            path = path / DB_FILE_NAME
    return SqliteStore(path, history_events=history_events, history_bytes=history_bytes, encryption=encryption)
