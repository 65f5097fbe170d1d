"""Store backends behind one contract (:mod:`joblet.store.interface`), picked by a URL.

Why: the server, the embedded ``joblet run`` and the tests choose a backend with one string
(``memory://``, ``sqlite:///path/joblet.db`` or a data dir), so no caller imports a backend;
the backends are one table keyed by URL scheme (:data:`BACKENDS`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from joblet.security.encryption import AesGcmEncryption
from joblet.store.interface import Key, Obj, Store, Watch, WatchEvent
from joblet.store.memory import MemoryStore
from joblet.store.sqlite import DB_FILE_NAME, SqliteStore
from joblet.store.watch import DEFAULT_HISTORY_BYTES, DEFAULT_HISTORY_EVENTS, StoreWatch, WatchHub

__all__ = [
    "BACKENDS",
    "DB_FILE_NAME",
    "Key",
    "MemoryStore",
    "Obj",
    "SqliteStore",
    "Store",
    "StoreOptions",
    "StoreWatch",
    "UnknownStore",
    "Watch",
    "WatchEvent",
    "WatchHub",
    "default_store_url",
    "open_store",
    "store_opener",
    "url_password",
]


@dataclass(frozen=True)
class StoreOptions:
    """What any backend may need besides its URL."""

    history_events: int = DEFAULT_HISTORY_EVENTS
    history_bytes: int = DEFAULT_HISTORY_BYTES
    #: encrypts Secrets at rest (:mod:`joblet.security.encryption`); a backend with nothing at
    #: rest (memory) has nothing to encrypt
    encryption: AesGcmEncryption | None = None


class UnknownStore(ValueError):
    """A store URL no backend in :data:`BACKENDS` takes."""


Opener = Callable[[StoreOptions], MemoryStore]


def _memory(rest: str) -> Opener:
    if rest:
        raise UnknownStore(f"memory:// takes no path, not {rest!r}")
    return lambda o: MemoryStore(history_events=o.history_events, history_bytes=o.history_bytes)


def _sqlite(rest: str) -> Opener:
    if not rest:
        raise UnknownStore("sqlite:// needs a file: sqlite:///abs/path/joblet.db")
    path = Path(rest).expanduser()
    return lambda o: SqliteStore(path, history_events=o.history_events, history_bytes=o.history_bytes,
                                 encryption=o.encryption)


def _postgresql(rest: str) -> Opener:
    url = f"postgresql://{rest}"
    try:
        import psycopg
    except ImportError:
        raise UnknownStore("postgresql:// needs psycopg 3: pip install 'joblet[postgresql]'") from None
    try:
        psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError as err:
        raise UnknownStore(f"not a PostgreSQL URL: {err}") from None

    def open_postgres(o: StoreOptions) -> MemoryStore:
        from joblet.store.postgres import PostgresStore

        return PostgresStore(url, history_events=o.history_events, history_bytes=o.history_bytes,
                             encryption=o.encryption)

    return open_postgres


def url_password(url: str) -> str | None:
    """The password a store URL carries (``user:PASSWORD@`` or ``?password=``), if any: a URL given
    on the command line must not carry one (argv is readable by every user of the machine)."""
    parts = urlsplit(url)
    if parts.password:
        return parts.password
    for name, value in parse_qsl(parts.query):
        if name == "password" and value:
            return value
    return None


#: URL scheme → backend: given the rest of the URL after ``scheme://``, it checks it (raising
#: UnknownStore) and returns how to open the store. One row per backend (docs/architecture.md
#: "Add a store backend").
BACKENDS: dict[str, Callable[[str], Opener]] = {
    "memory": _memory,
    "sqlite": _sqlite,
    "postgresql": _postgresql,
}


def store_opener(url_or_path: str | os.PathLike[str]) -> Opener:
    """How to open the store a URL names, checked without opening it (see :func:`open_store`)."""
    text = os.fspath(url_or_path)
    if text in ("memory", ":memory:"):
        return _memory("")
    scheme, sep, rest = text.partition("://")
    if sep:
        backend = BACKENDS.get(scheme)
        if backend is None:
            raise UnknownStore(f"unknown store {text!r}: the scheme must be one of {', '.join(BACKENDS)}")
        return backend(rest)
    path = Path(text).expanduser()
    if path.suffix not in (".db", ".sqlite", ".sqlite3"):
        path = path / DB_FILE_NAME
    return _sqlite(str(path))


def default_store_url(data_dir: str | os.PathLike[str]) -> str:
    """The store of a joblet data dir: ``sqlite:///<data_dir>/joblet.db``."""
    return f"sqlite://{Path(data_dir).expanduser().absolute() / DB_FILE_NAME}"


def open_store(
    url_or_path: str | os.PathLike[str],
    *,
    history_events: int = DEFAULT_HISTORY_EVENTS,
    history_bytes: int = DEFAULT_HISTORY_BYTES,
    encryption: AesGcmEncryption | None = None,
) -> MemoryStore:
    """Open the store a URL names, through :data:`BACKENDS`.

    * ``SCHEME://REST`` — the backend of that scheme: ``memory://``, ``sqlite:///abs/file.db``
      (``sqlite://relative.db`` is relative to the working dir); an unknown scheme is
      :class:`UnknownStore`;
    * ``memory`` / ``:memory:`` — the in-memory store;
    * a path ending in ``.db``/``.sqlite``/``.sqlite3`` — SQLite at that file;
    * any other path — a data dir: SQLite at ``<dir>/joblet.db``.

    ``history_events`` / ``history_bytes`` bound the watch history; ``encryption`` encrypts
    Secrets at rest.
    """
    return store_opener(url_or_path)(StoreOptions(history_events, history_bytes, encryption))
