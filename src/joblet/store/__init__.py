"""Store backends behind one contract (:mod:`joblet.store.interface`), picked by a URL.

Why: the server, the embedded ``joblet run`` and the tests choose a backend with one string
(``memory``, ``sqlite:///path/joblet.db`` or a data dir), so no caller imports a backend.
"""

from __future__ import annotations

import os
from pathlib import Path

from joblet.store.interface import Key, Obj, Store, Watch, WatchEvent
from joblet.store.memory import MemoryStore
from joblet.store.sqlite import DB_FILE_NAME, SqliteStore
from joblet.store.watch import StoreWatch, WatchHub

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


def open_store(url_or_path: str | os.PathLike[str], **options: int) -> MemoryStore:
    """Open a store.

    * ``memory`` / ``memory://`` / ``:memory:`` — the in-memory store;
    * ``sqlite:///abs/path/file.db`` or ``sqlite://relative.db`` — SQLite at that file;
    * a path ending in ``.db``/``.sqlite``/``.sqlite3`` — SQLite at that file;
    * any other path — a data dir: SQLite at ``<dir>/joblet.db``.

    ``options`` are ``history_events`` / ``history_bytes`` (watch history bounds).
    """
    text = os.fspath(url_or_path)
    if text in ("memory", "memory://", ":memory:"):
        return MemoryStore(**options)
    if text.startswith("sqlite://"):
        return SqliteStore(text[len("sqlite://"):], **options)
    path = Path(text).expanduser()
    if path.suffix in (".db", ".sqlite", ".sqlite3"):
        return SqliteStore(path, **options)
    return SqliteStore.in_data_dir(path, **options)
