"""The PostgreSQL store: several control-plane replicas, one truth (``--store postgresql://…``).

Why this shape: reads must stay in memory (a list of 10k pods never touches the database), so
each replica keeps the in-memory engine of :class:`joblet.store.memory.MemoryStore` as a cache
of the database, and the database decides every write.

Tables (created on first open, under an advisory lock so replicas starting together agree)::

    joblet_rv      (id = 1, v bigint)                  the global resourceVersion
    joblet_objects (resource, namespace, name, rv, data bytea)   the current objects
    joblet_events  (rv primary key, resource, namespace, name, type, data, writer)

**Write turns and rv order.** A write opens (or joins) this replica's *turn*: one transaction
that starts with ``SELECT v FROM joblet_rv FOR UPDATE``. The row lock serialises the writers of
every replica until commit, so the rvs a turn hands out (``v+1``, ``v+2``…) commit in rv order
and the rv sequence has no gaps — a bare ``nextval()`` would not do (transaction 5 may commit
after 6, and a follower at 6 would miss 5; a rolled-back turn rolls its counter back too). A
follower can therefore tell "nothing missed" by ``rv == applied + 1`` alone. Holding the lock,
the turn first applies any events of other replicas it has not seen (so the cache is exact),
then each write runs its statement with its precondition *in the database*
(``INSERT … ON CONFLICT DO NOTHING`` → AlreadyExists, ``UPDATE/DELETE … AND rv = expected`` →
Conflict, no row → NotFound) and is applied to the cache. :meth:`flush` — at the end of the
event-loop turn (as SQLite's group commit), or before the API server acknowledges a write
(``LocalClient.persist``), or at once with no loop running — inserts the turn's events, sets the
counter, ``pg_notify('joblet_events', rv)`` and commits; only then are the events published to
this replica's watchers. Nothing is acknowledged before its commit.

**Failures.** A statement or commit that fails rolls the turn back in the cache too (the undo
log restores every object the turn touched) and raises :class:`joblet.errors.InsufficientStorage`,
as SQLite does for a full disk. A connection lost *during COMMIT* leaves the outcome unknown:
the store reconnects and looks for the turn's last event, tagged with this replica's id and turn
number, so it answers success exactly when the turn committed. A connection found dead before a
turn wrote anything is replaced and the turn retried.

**Followers.** A thread per replica ``LISTEN``s on ``joblet_events`` (and a wake channel of its
own), reads ``joblet_events WHERE rv > cursor ORDER BY rv`` and hands the rows to the event loop
the store was last used from (or applies them itself when no loop uses the store); applying
skips rvs already applied and fills a gap from the database, so every replica delivers the same
ordered events, its own writes included, each once. After a reconnect (a PostgreSQL restart) the
follower resumes from the last applied rv. :meth:`sync` is a consistent-read barrier: it applies
everything committed so far before it returns.

**History.** On open a replica loads the objects and the retained events (at most
``history_events``) in one snapshot, so a watch can resume on any replica from any rv the
database still has; older is ``410 Gone``. Each flush that crosses a multiple of the compaction
step deletes events older than the bound (compaction). A follower that finds its next event
compacted away reloads the snapshot and closes its watches (their clients re-list).

Why one module of ~650 lines: the write turn, its failure handling (undo, lost COMMIT) and the
follower share one set of invariants — rv contiguity of the cache, the undo log, the store lock —
and each part changes the state the others rely on; split, each would reach into the others.

Secrets are encrypted at rest with ``StoreOptions.encryption`` exactly as in SQLite
(:mod:`joblet.store.atrest`), in objects and events alike; at open, rows in clear or under an
older key are rewritten with the current one (key rotation).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NoReturn

import orjson
import psycopg

from joblet.errors import ApiError, InsufficientStorage, already_exists, conflict, not_found
from joblet.security.encryption import ENCRYPTED_RESOURCES, AesGcmEncryption
from joblet.store.atrest import from_storage, to_storage
from joblet.store.interface import EventType, Key, Obj, WatchEvent
from joblet.store.memory import CONFLICT_MESSAGE, MemoryStore, Stored, _as_deleted, decoded, place_last
from joblet.store.watch import DEFAULT_HISTORY_BYTES, DEFAULT_HISTORY_EVENTS, CommittedEvent, StoreWatch

log = logging.getLogger(__name__)

CHANNEL = "joblet_events"
_SCHEMA_LOCK = 0x6A6F626C6574  # "joblet": the advisory lock replicas create the schema under
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS joblet_rv (id int PRIMARY KEY CHECK (id = 1), v bigint NOT NULL)",
    "INSERT INTO joblet_rv VALUES (1, 0) ON CONFLICT DO NOTHING",
    """CREATE TABLE IF NOT EXISTS joblet_objects (
        resource text NOT NULL, namespace text NOT NULL, name text NOT NULL,
        rv bigint NOT NULL, data bytea NOT NULL,
        PRIMARY KEY (resource, namespace, name))""",
    """CREATE TABLE IF NOT EXISTS joblet_events (
        rv bigint PRIMARY KEY, resource text NOT NULL, namespace text NOT NULL, name text NOT NULL,
        type text NOT NULL, data bytea NOT NULL, writer text NOT NULL)""",
)
_EVENT_COLUMNS = "rv, resource, namespace, name, type, data"
#: how often (in rvs) a flush compacts the events table
COMPACT_EVERY = 500
#: how long a lost COMMIT is given to find out whether it happened
OUTCOME_TIMEOUT = 10.0
#: the follower's safety poll when no notification comes (a notification can be lost on reconnect)
FOLLOW_POLL = 1.0

EventRow = tuple[int, str, str, str, str, bytes]


@dataclass
class _Turn:
    """The open write transaction of this replica: what it wrote, and how to undo it in the cache."""

    number: int
    base_rv: int
    undo: list[tuple[Key, Stored | None]] = field(default_factory=list)
    events: list[tuple[int, str, str, str, str, bytes]] = field(default_factory=list)


class StoreUnavailable(InsufficientStorage):
    """The database could not make a write durable (the same 507 SQLite answers for a full disk)."""


class PostgresStore(MemoryStore):
    """A :class:`joblet.store.interface.Store` shared by every replica on one PostgreSQL database."""

    def __init__(
        self,
        conninfo: str,
        *,
        history_events: int = DEFAULT_HISTORY_EVENTS,
        history_bytes: int = DEFAULT_HISTORY_BYTES,
        encryption: AesGcmEncryption | None = None,
    ) -> None:
        super().__init__(history_events=history_events, history_bytes=history_bytes)
        self._conninfo = conninfo
        self._where = describe(conninfo)
        self._encryption = encryption
        self._history_events = max(1, history_events)
        self.replica_id = uuid.uuid4().hex[:12]
        self._wake_channel = f"joblet_wake_{self.replica_id}"
        self._turn: _Turn | None = None
        self._turns = 0
        self._applied = 0  # the highest committed rv in the cache
        self._cursor = 0  # the highest rv the follower has read
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = threading.Event()
        self._db = self._connect()
        try:
            self._create_schema()
            self._reencrypt_stale_rows()
            self._load_snapshot()
        except BaseException:
            self._db.close()
            raise
        self._follower = threading.Thread(target=self._follow, name=f"pg-follower-{self.replica_id}", daemon=True)
        self._follower.start()

    # -- connections ------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(self._conninfo, connect_timeout=10)
        except psycopg.Error as err:
            raise StoreUnavailable(f"cannot connect to the PostgreSQL store: {err}".strip()) from err

    def _reconnect(self) -> None:
        try:
            self._db.close()
        except psycopg.Error:
            pass
        self._db = self._connect()

    def _create_schema(self) -> None:
        with self._db.transaction():
            self._db.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            for statement in _SCHEMA:
                self._db.execute(statement)
        self._db.commit()

    def _reencrypt_stale_rows(self) -> None:
        """Rewrite Secrets stored in clear or under an older key with the current key (objects and
        history), under the rv row lock so no replica writes meanwhile; rvs do not change."""
        enc = self._encryption
        if enc is None:
            return
        db = self._db
        resources = sorted(ENCRYPTED_RESOURCES)
        with db.transaction():
            db.execute("SELECT v FROM joblet_rv FOR UPDATE")
            for table, key in (("joblet_objects", "resource = %s AND namespace = %s AND name = %s AND rv = %s"),
                               ("joblet_events", "rv = %s")):
                rows = db.execute(f"SELECT resource, namespace, name, rv, data FROM {table} "
                                  "WHERE resource = ANY(%s)", (resources,)).fetchall()
                updates = [
                    (to_storage(enc, r, ns, n, self._from_storage(r, ns, n, bytes(d))),
                     *((r, ns, n, rv) if table == "joblet_objects" else (rv,)))
                    for r, ns, n, rv, d in rows if not enc.is_current(bytes(d))
                ]
                if updates:
                    with db.cursor() as cur:
                        cur.executemany(f"UPDATE {table} SET data = %s WHERE {key}", updates)
        db.commit()

    # -- opening: snapshot + retained history -------------------------------------------

    def _load_snapshot(self) -> None:
        db = self._db
        db.rollback()
        db.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ  # one snapshot for all three reads
        try:
            row = db.execute("SELECT v FROM joblet_rv").fetchone()
            rv = int(row[0]) if row else 0
            objects = [
                (r, ns, n, orjson.loads(self._from_storage(r, ns, n, bytes(d))))
                for r, ns, n, d in db.execute("SELECT resource, namespace, name, data FROM joblet_objects")
            ]
            history = db.execute(
                f"SELECT {_EVENT_COLUMNS} FROM joblet_events WHERE rv > %s ORDER BY rv",
                (rv - self._history_events,)).fetchall()
        finally:
            db.rollback()
            db.isolation_level = None
        self._index = {}
        self._load(objects, rv)
        self._applied = self._cursor = rv
        if history:
            self._hub.reset(history[0][0] - 1)
            self._hub.publish([self._committed(self._decode(row)) for row in history])

    def _decode(self, row: EventRow) -> tuple[int, str, str, str, str, Obj, bytes]:
        rv, resource, namespace, name, type_, data = row
        raw = self._from_storage(resource, namespace, name, bytes(data))
        return rv, resource, namespace, name, type_, orjson.loads(raw), raw

    @staticmethod
    def _committed(decoded: tuple[int, str, str, str, str, Obj, bytes]) -> CommittedEvent:
        rv, resource, namespace, _name, type_, obj, raw = decoded
        event_type: EventType = "ADDED" if type_ == "ADDED" else "DELETED" if type_ == "DELETED" else "MODIFIED"
        return CommittedEvent(resource, namespace, WatchEvent(event_type, obj, rv), raw)

    def _from_storage(self, resource: str, namespace: str, name: str, data: bytes) -> bytes:
        return from_storage(self._encryption, self._where, resource, namespace, name, data)

    # -- writes -----------------------------------------------------------------------

    def create(self, key: Key, obj: Obj) -> Obj:
        return self._put(key, obj, "ADDED", None)

    def update(self, key: Key, obj: Obj, expected_rv: int | None = None) -> Obj:
        return self._put(key, obj, "MODIFIED", expected_rv)

    def _put(self, key: Key, obj: Obj, type_: EventType, expected_rv: int | None) -> Obj:
        """Create (ADDED) or replace (MODIFIED) one object, its precondition checked in the database."""
        with self._lock:
            self._check_open()
            turn = self._begin()
            rv = self._rv + 1
            meta = obj.setdefault("metadata", {})
            previous = meta.get("resourceVersion")
            meta["resourceVersion"] = str(rv)
            data = orjson.dumps(obj)
            stored = self._to_storage(key, data)
            try:
                if type_ == "ADDED":
                    done = self._statement(
                        "INSERT INTO joblet_objects VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                        (key.resource, key.namespace, key.name, rv, stored))
                else:
                    done = self._statement(
                        "UPDATE joblet_objects SET rv = %s, data = %s WHERE resource = %s AND namespace = %s "
                        "AND name = %s AND (%s::bigint IS NULL OR rv = %s)",
                        (rv, stored, key.resource, key.namespace, key.name, expected_rv, expected_rv))
                if not done:
                    self._end_if_empty()
                    if type_ == "ADDED":
                        raise already_exists(key.resource, key.group, key.name)
                    self._missing_or_conflict(key)
            except BaseException:
                self._restore_rv(meta, previous)
                raise
            names = self._index.setdefault(key.resource, {}).setdefault(key.namespace, {})
            old = names.get(key.name)
            turn.undo.append((key, old))
            place_last(names, key.name, self._to_index(key.resource, obj, data, old))
            self._written(turn, type_, key, obj, rv, data, stored)
        self._after_write()
        return obj

    def delete(self, key: Key, expected_rv: int | None = None) -> Obj:
        with self._lock:
            self._check_open()
            turn = self._begin()
            rv = self._rv + 1
            row = self._query_one(
                "DELETE FROM joblet_objects WHERE resource = %s AND namespace = %s AND name = %s "
                "AND (%s::bigint IS NULL OR rv = %s) RETURNING data",
                (key.resource, key.namespace, key.name, expected_rv, expected_rv))
            if row is None:
                self._end_if_empty()
                self._missing_or_conflict(key)
            names = self._index.get(key.resource, {}).get(key.namespace, {})
            old = names.get(key.name)
            if old is None:  # the cache is exact under the turn's lock; this is a bug, not a race
                old = orjson.loads(self._from_storage(key.resource, key.namespace, key.name, bytes(row[0])))
            turn.undo.append((key, old))
            names.pop(key.name, None)
            if not names:
                self._index.get(key.resource, {}).pop(key.namespace, None)
            deleted = _as_deleted(decoded(old), rv)
            data = orjson.dumps(deleted)
            self._written(turn, "DELETED", key, deleted, rv, data, self._to_storage(key, data))
        self._after_write()
        return deleted

    @staticmethod
    def _restore_rv(meta: dict[str, Any], previous: object) -> None:
        if previous is None:
            meta.pop("resourceVersion", None)
        else:
            meta["resourceVersion"] = previous

    def _to_storage(self, key: Key, data: bytes) -> bytes:
        return to_storage(self._encryption, key.resource, key.namespace, key.name, data)

    def _written(self, turn: _Turn, type_: EventType, key: Key, obj: Obj, rv: int, data: bytes,
                 stored: bytes) -> None:
        self._rv = rv
        turn.events.append((rv, key.resource, key.namespace, key.name, type_, stored))
        self._pending.append(CommittedEvent(key.resource, key.namespace, WatchEvent(type_, obj, rv), data))

    def _end_if_empty(self) -> None:
        """A write that failed its precondition: a turn with nothing written ends now (its row
        lock must not wait for a flush that no successful write scheduled)."""
        turn = self._turn
        if turn is not None and not turn.events:
            self._turn = None
            self._safe_rollback()

    def _missing_or_conflict(self, key: Key) -> NoReturn:
        """Why a precondition failed, asked outside the turn (after :meth:`_end_if_empty`)."""
        exists = self._cache_or_db_has(key)
        if not exists:
            raise not_found(key.resource, key.group, key.name)
        raise conflict(key.resource, key.group, key.name, CONFLICT_MESSAGE)

    def _cache_or_db_has(self, key: Key) -> bool:
        if self._turn is None:
            try:
                row = self._db.execute(
                    "SELECT 1 FROM joblet_objects WHERE resource = %s AND namespace = %s AND name = %s",
                    (key.resource, key.namespace, key.name)).fetchone()
                self._db.rollback()
                return row is not None
            except psycopg.Error as err:
                self._safe_rollback()
                raise self._unavailable(err) from err
        row = self._query_one(
            "SELECT 1 FROM joblet_objects WHERE resource = %s AND namespace = %s AND name = %s",
            (key.resource, key.namespace, key.name))
        return row is not None

    def _after_write(self) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            self.flush()  # no loop: every write is its own turn

    # -- the turn: begin, statements, commit, abort -------------------------------------

    def _begin(self) -> _Turn:
        """The open turn, or a new one holding the rv row lock with the cache caught up."""
        if self._turn is not None:
            return self._turn
        reconnected = resynced = False
        while True:
            try:
                row = self._db.execute("SELECT v FROM joblet_rv FOR UPDATE").fetchone()
                base = int(row[0]) if row else 0
                rows: list[EventRow] = []
                if base > self._rv:
                    rows = self._db.execute(
                        f"SELECT {_EVENT_COLUMNS} FROM joblet_events WHERE rv > %s AND rv <= %s ORDER BY rv",
                        (self._rv, base)).fetchall()
            except psycopg.OperationalError as err:
                # Nothing written yet: a connection that died while idle (a PostgreSQL restart)
                # is replaced and the turn retried once.
                self._safe_rollback()
                if reconnected:
                    raise self._unavailable(err) from err
                reconnected = True
                self._reconnect()
                continue
            except psycopg.Error as err:
                self._safe_rollback()
                raise self._unavailable(err) from err
            if self._apply_rows(rows) and self._rv == base:
                break
            # Our next events were compacted away: reload the snapshot, then lock again.
            self._safe_rollback()
            if resynced:
                raise self._unavailable(RuntimeError(f"cannot catch up to rv {base}"))
            resynced = True
            self._resync(f"the events after rv {self._rv} were compacted away")
        self._turns += 1
        self._turn = _Turn(self._turns, self._rv)
        self._schedule_flush()
        return self._turn

    def _schedule_flush(self) -> None:
        """Once per loop turn, as MemoryStore's write grouping; with no loop the write flushes itself."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._loop = loop
        if self._flush_scheduled_on is not loop:
            self._flush_scheduled_on = loop
            loop.call_soon(self._scheduled_flush)

    def _statement(self, sql: str, params: tuple[Any, ...]) -> bool:
        """Run one write statement of the open turn; True if it changed a row."""
        try:
            return self._db.execute(sql, params).rowcount > 0
        except psycopg.Error as err:
            self._abort()
            raise self._unavailable(err) from err

    def _query_one(self, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        try:
            return self._db.execute(sql, params).fetchone()
        except psycopg.Error as err:
            self._abort()
            raise self._unavailable(err) from err

    def _unavailable(self, err: BaseException) -> StoreUnavailable:
        return StoreUnavailable(f"the write could not be persisted in the PostgreSQL store: {err}".strip())

    def _safe_rollback(self) -> None:
        try:
            self._db.rollback()
        except psycopg.Error:
            pass

    def _abort(self) -> None:
        """Roll the open turn back, in the database and in the cache."""
        turn, self._turn = self._turn, None
        self._safe_rollback()
        if turn is None:
            return
        for key, old in reversed(turn.undo):
            names = self._index.setdefault(key.resource, {}).setdefault(key.namespace, {})
            if old is None:
                names.pop(key.name, None)
                if not names:
                    del self._index[key.resource][key.namespace]
            else:  # last, though older than what follows it: a written_through list may stop before it
                place_last(names, key.name, old)
        self._rv = turn.base_rv
        self._pending = []

    def flush(self) -> None:
        with self._lock:
            self._flush_scheduled_on = None
            turn = self._turn
            if turn is None:
                return
            if not turn.events:  # a turn whose writes all failed their preconditions
                self._turn = None
                self._safe_rollback()
                return
            writer = f"{self.replica_id}:{turn.number}"
            last = turn.events[-1][0]
            try:
                with self._db.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO joblet_events VALUES (%s, %s, %s, %s, %s, %s, %s)",
                        [(*event, writer) for event in turn.events])
                    if last // COMPACT_EVERY != turn.base_rv // COMPACT_EVERY:
                        cur.execute("DELETE FROM joblet_events WHERE rv <= %s", (last - self._history_events,))
                    cur.execute("WITH u AS (UPDATE joblet_rv SET v = %s RETURNING v) "
                                "SELECT pg_notify(%s, v::text) FROM u", (last, CHANNEL))
            except psycopg.Error as err:
                self._abort()
                raise self._unavailable(err) from err
            try:
                self._db.commit()
            except psycopg.Error as err:
                if not self._committed_after_all(writer, last):
                    self._abort()
                    raise self._unavailable(err) from err
            self._turn = None
            self._applied = last
            batch, self._pending = self._pending, []
            self._hub.publish(batch)

    def _committed_after_all(self, writer: str, last: int) -> bool:
        """Whether a turn whose COMMIT lost its connection committed (its last event is there)."""
        waited = 0.0
        delay = 0.05
        while True:
            try:
                self._reconnect()
                row = self._db.execute("SELECT writer FROM joblet_events WHERE rv = %s", (last,)).fetchone()
                self._db.rollback()
                return row is not None and row[0] == writer
            except (psycopg.Error, ApiError) as err:
                if waited >= OUTCOME_TIMEOUT:
                    log.error("cannot tell whether the write turn up to rv %d committed: %s", last, err)
                    return False
                self._stopping.wait(delay)
                waited += delay
                delay = min(delay * 2, 1.0)

    # -- applying committed events (the follower and the turn's catch-up) ----------------

    def _apply_rows(self, rows: Iterable[EventRow]) -> bool:
        """Apply events in rv order to the cache and publish them, skipping what is applied.
        False when an event is missing before the next one (nothing after the gap is applied)."""
        batch: list[CommittedEvent] = []
        contiguous = True
        for row in rows:
            rv = row[0]
            if rv <= self._rv:
                continue
            if rv != self._rv + 1:
                contiguous = False
                break
            decoded = self._decode(row)
            _, resource, namespace, name, type_, obj, raw = decoded
            if type_ == "DELETED":
                by_ns = self._index.get(resource, {})
                names = by_ns.get(namespace, {})
                names.pop(name, None)
                if not names:
                    by_ns.pop(namespace, None)
            else:
                names = self._index.setdefault(resource, {}).setdefault(namespace, {})
                place_last(names, name, self._to_index(resource, obj, raw))  # the other writer's: fresh values
            self._rv = self._applied = rv
            batch.append(self._committed(decoded))
        if batch:
            self._hub.publish(batch)
        return contiguous

    def _catch_up(self, upto: int | None = None) -> None:
        """Outside a turn: apply every event in the database after the cache's rv (up to upto)."""
        try:
            rows: list[EventRow] = self._db.execute(
                f"SELECT {_EVENT_COLUMNS} FROM joblet_events WHERE rv > %s AND rv <= %s ORDER BY rv",
                (self._rv, upto if upto is not None else 2**62)).fetchall()
            self._db.rollback()
        except psycopg.Error as err:
            self._safe_rollback()
            log.warning("cannot read missed events from the PostgreSQL store: %s", err)
            return
        if not self._apply_rows(rows):
            self._resync(f"the events after rv {self._rv} were compacted away")

    def _resync(self, why: str) -> None:
        """Too far behind the history: reload the snapshot; watchers end and their clients re-list."""
        log.warning("PostgreSQL store replica %s reloads its cache: %s", self.replica_id, why)
        self._hub.close_all()
        self._load_snapshot()

    def _deliver(self, rows: list[EventRow]) -> None:
        """From the follower thread: apply on the loop that uses the store, else here."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._apply_locked, rows)
                return
            except RuntimeError:
                pass  # closed meanwhile
        self._apply_locked(rows)

    def _apply_locked(self, rows: list[EventRow]) -> None:
        with self._lock:
            if self._closed or self._turn is not None:
                # During a turn the cache is already at least as new as anything committed; a
                # gap, if any, is filled by the next apply.
                if self._turn is not None:
                    rows = [r for r in rows if r[0] <= self._turn.base_rv]
                if self._closed or not rows:
                    return
            if not self._apply_rows(rows):
                self._catch_up(rows[-1][0])

    def sync(self) -> int:
        """A consistent-read barrier: apply everything committed in the database; returns the rv."""
        with self._lock:
            self._check_open()
            if self._turn is not None:
                self.flush()
            row = None
            for attempt in (1, 2):
                try:
                    row = self._db.execute("SELECT v FROM joblet_rv").fetchone()
                    self._db.rollback()
                    break
                except psycopg.Error as err:
                    self._safe_rollback()
                    if attempt == 2 or not isinstance(err, psycopg.OperationalError):
                        raise StoreUnavailable(f"cannot read the PostgreSQL store: {err}".strip()) from err
                    self._reconnect()
            top = int(row[0]) if row else 0
            if top > self._rv:
                self._catch_up(top)
            return self._rv

    def watch(self, resource: str, namespace: str | None = None, since_rv: int | None = None) -> StoreWatch:
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            pass
        return super().watch(resource, namespace, since_rv)

    # -- the follower thread ------------------------------------------------------------

    def _follow(self) -> None:
        delay = 0.1
        while not self._stopping.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True, connect_timeout=10) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    conn.execute(f"LISTEN {self._wake_channel}")
                    self._cursor = max(self._cursor, self._applied)
                    delay = 0.1
                    while not self._stopping.is_set():
                        self._read_events(conn)
                        for _ in conn.notifies(timeout=FOLLOW_POLL, stop_after=1):
                            pass
            except psycopg.Error as err:
                if self._stopping.is_set():
                    return
                log.warning("PostgreSQL store follower lost its connection, reconnecting: %s", err)
                self._stopping.wait(delay)
                delay = min(delay * 2, 5.0)
            except Exception:  # never let the follower die silently
                log.exception("PostgreSQL store follower failed; restarting it")
                self._stopping.wait(delay)

    def _read_events(self, conn: psycopg.Connection[Any]) -> None:
        while not self._stopping.is_set():
            after = max(self._cursor, self._applied)
            rows: list[EventRow] = conn.execute(
                f"SELECT {_EVENT_COLUMNS} FROM joblet_events WHERE rv > %s ORDER BY rv LIMIT 2000",
                (after,)).fetchall()
            if not rows:
                return
            self._cursor = rows[-1][0]
            self._deliver(rows)
            if len(rows) < 2000:
                return

    # -- closing ------------------------------------------------------------------------

    def _close_backend(self) -> None:
        self._stopping.set()
        with self._lock:
            try:
                self._db.execute("SELECT pg_notify(%s, '')", (self._wake_channel,))
                self._db.commit()
            except psycopg.Error:
                pass
        self._follower.join(timeout=FOLLOW_POLL + 5)
        self._db.close()


def describe(conninfo: str) -> str:
    """The database a conninfo names, without its password (for messages and logs)."""
    try:
        params = psycopg.conninfo.conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError:
        return "the PostgreSQL store"
    params.pop("password", None)
    return f"PostgreSQL store {psycopg.conninfo.make_conninfo('', **params)!r}"
