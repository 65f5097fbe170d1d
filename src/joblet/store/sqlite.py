"""The embedded default store: the memory store written through to SQLite.

Why this shape: reads must never wait for disk and a write must cost microseconds, so the
in-memory engine (:class:`joblet.store.memory.MemoryStore`) serves everything and SQLite is
only the durable copy. Each flush (one per event-loop turn) writes the coalesced rows of that
turn with one ``executemany`` inside one transaction and commits before any watcher sees the
events. WAL with ``synchronous=NORMAL`` makes a commit survive a crash of the process (not
necessarily a power loss). On open every row is loaded into memory; the watch history starts
empty at the stored resourceVersion, so older resumes get ``410 Gone``.

With an ``encryption`` provider (:mod:`joblet.security.encryption`, ``--encryption-key-file``)
Secret rows are encrypted on persist and decrypted on load; rows written without it (or with an
older key) are rewritten with the current key when the store opens, with ``secure_delete`` so the
old cleartext pages are zeroed, and the WAL is truncated afterwards.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import orjson

from joblet.errors import InsufficientStorage
from joblet.security.encryption import ENCRYPTED_RESOURCES, AesGcmEncryption, storage_context
from joblet.store.atrest import from_storage, to_storage
from joblet.store.interface import Key, Obj
from joblet.store.memory import MemoryStore, Row
from joblet.store.watch import DEFAULT_HISTORY_BYTES, DEFAULT_HISTORY_EVENTS

DB_FILE_NAME = "joblet.db"
SCHEMA_VERSION = 1

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS objects (
        resource TEXT NOT NULL,
        namespace TEXT NOT NULL,
        name TEXT NOT NULL,
        rv INTEGER NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (resource, namespace, name)
    )""",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
)


class SqliteStore(MemoryStore):
    """A :class:`joblet.store.interface.Store` persisted in one SQLite file."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        history_events: int = DEFAULT_HISTORY_EVENTS,
        history_bytes: int = DEFAULT_HISTORY_BYTES,
        encryption: AesGcmEncryption | None = None,
    ) -> None:
        super().__init__(history_events=history_events, history_bytes=history_bytes)
        self.path = Path(path)
        self._encryption = encryption
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit mode: transactions are opened and committed explicitly in _persist.
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            if encryption is not None:
                # Overwritten and deleted rows are zeroed, so no cleartext Secret lingers in free pages.
                self._db.execute("PRAGMA secure_delete=ON")
            for statement in _SCHEMA:
                self._db.execute(statement)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            row = self._db.execute("SELECT value FROM meta WHERE key = 'rv'").fetchone()
            self._load(self._rows_on_disk(), int(row[0]) if row else 0)
            self._reencrypt_stale_rows()
        except BaseException:
            self._db.close()
            raise
        self._rows = {}

    def _rows_on_disk(self) -> Iterator[tuple[str, str, str, Obj]]:
        for resource, namespace, name, data in self._db.execute(
            "SELECT resource, namespace, name, data FROM objects"
        ):
            yield resource, namespace, name, orjson.loads(self._from_storage(resource, namespace, name, data))

    def _from_storage(self, resource: str, namespace: str, name: str, data: bytes) -> bytes:
        return from_storage(self._encryption, self.path, resource, namespace, name, data)

    def _to_storage(self, key: Key, data: bytes) -> bytes:
        return to_storage(self._encryption, key.resource, key.namespace, key.name, data)

    def _reencrypt_stale_rows(self) -> None:
        """Rewrite Secret rows stored in clear or under an older key with the current key."""
        enc = self._encryption
        if enc is None:
            return
        marks = ",".join("?" * len(ENCRYPTED_RESOURCES))
        stale = [
            (resource, namespace, name, rv, data)
            for resource, namespace, name, rv, data in self._db.execute(
                f"SELECT resource, namespace, name, rv, data FROM objects WHERE resource IN ({marks})",
                tuple(ENCRYPTED_RESOURCES))
            if not enc.is_current(data)
        ]
        if not stale:
            return
        rows = [
            (r, ns, n, rv, enc.encrypt(self._from_storage(r, ns, n, data), storage_context(r, ns, n)))
            for r, ns, n, rv, data in stale
        ]
        self._db.execute("BEGIN")
        try:
            self._db.executemany("INSERT OR REPLACE INTO objects VALUES (?, ?, ?, ?, ?)", rows)
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        # The replaced pages' cleartext is zeroed in the database; the WAL still holds the old
        # frames until a checkpoint, so write them back and truncate it now.
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def _persist(self, rows: dict[Key, Row], rv: int) -> None:
        upserts = [(k.resource, k.namespace, k.name, r, self._to_storage(k, d))
                   for k, (r, d) in rows.items() if d is not None]
        deletes = [(k.resource, k.namespace, k.name) for k, (_, d) in rows.items() if d is None]
        db = self._db
        db.execute("BEGIN")
        try:
            if upserts:
                db.executemany("INSERT OR REPLACE INTO objects VALUES (?, ?, ?, ?, ?)", upserts)
            if deletes:
                db.executemany("DELETE FROM objects WHERE resource = ? AND namespace = ? AND name = ?", deletes)
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('rv', ?)", (rv,))
            db.execute("COMMIT")
        except BaseException as err:
            if db.in_transaction:
                try:
                    db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass  # the rollback of a failed commit; the original error says why
            if is_disk_full(err):
                raise InsufficientStorage(
                    f"the write could not be persisted: {err} (it is kept in memory and retried, and may "
                    "appear once the data dir's filesystem has room again)") from err
            raise

    def _close_backend(self) -> None:
        self._db.close()


def is_disk_full(err: BaseException) -> bool:
    """SQLite's and the OS's ways of saying the filesystem has no room left."""
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return isinstance(err, sqlite3.Error) and any(
        text in str(err) for text in ("database or disk is full", "disk I/O error"))
