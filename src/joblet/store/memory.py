"""The in-memory store, and the engine every persistent backend builds on.

Why: reads must be served from memory (list of 10k pods must not touch disk) and writes must
cost a few microseconds, so the whole store logic — the per-resource index, the global
resourceVersion, preconditions, write grouping and watch delivery — lives here once.
A persistent backend (see :mod:`joblet.store.sqlite`) is this store plus a persistence hook
(:meth:`MemoryStore._persist`) that receives the coalesced rows of one flush and must make
them durable before the flush delivers their watch events.

Write grouping: the first write after a flush schedules :meth:`MemoryStore.flush` with
``loop.call_soon`` when an asyncio loop runs in this thread (one transaction per loop turn);
with no loop running, every write flushes before it returns, so plain synchronous use is
immediately durable and visible to watchers.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator

import orjson

from joblet.errors import ApiError, already_exists, conflict, not_found
from joblet.objects import field_text, rv_of
from joblet.store.interface import EventType, Key, Obj, WatchEvent
from joblet.store.paging import Entries, Page, Snapshots, no_entries
from joblet.store.sharing import SharedValues
from joblet.store.watch import (
    DEFAULT_HISTORY_BYTES,
    DEFAULT_HISTORY_EVENTS,
    CommittedEvent,
    StoreWatch,
    WatchHub,
)

CONFLICT_MESSAGE = "the object has been modified; please apply your changes to the latest version and try again"

# A row of one flush: the object's rv and its JSON, or None when the object was deleted.
Row = tuple[int, bytes | None]

#: Resources whose objects the index keeps packed (:func:`packed`), decoded on each read, and
#: the field each keeps in clear beside the pack. Events are written once (a repeat patches its
#: count), read rarely (``kubectl get events``, ``describe``, the hourly expiry) and a Job's pods
#: leave three each: decoded, one takes ~1.35 KB of dicts and strings, as JSON ~0.65 KB, packed
#: ~0.16 KB. Every read gets a fresh object (never shared with another reader). The kept field
#: is what ``kubectl describe`` selects on (``involvedObject.name=...``): a list for it tests
#: that field in clear and unpacks only the matches, where unpacking every Event of the namespace
#: to test it took over a second at 300,000 Events, with the event loop stopped meanwhile.
ENCODED_RESOURCES: dict[str, str] = {"events": "involvedObject.name"}

# What the index holds for one object: the object, or its packed JSON for an ENCODED_RESOURCES one.
Stored = Obj | bytes

# Raw deflate with a 2 KiB window: a small state to set up per object (a 32 KiB window made
# compressing a 0.65 KB Event cost more than encoding it) and room for the preset dictionary.
_PACK_WBITS = -11
#: The preset dictionary: what most Events repeat (field names, the kinds, reasons and sources
#: the controllers and the node agent write), so an Event packs to the few bytes it has of its own.
_PACK_DICT = (
    b'"reason":"Created","reportingComponent":"kubelet","source":{"component":"kubelet","host":""},'
    b'"message":"Created container ","reason":"Started","message":"Started container ",'
    b'"reportingComponent":"job-controller","SuccessfulCreate","Created pod: "'
    b'{"apiVersion":"v1","count":1,"firstTimestamp":"2026-01-01T00:00:00Z","involvedObject":{"apiVersion":"v1",'
    b'"kind":"Pod","name":"","namespace":"default","resourceVersion":"","uid":""},"kind":"Event",'
    b'"lastTimestamp":"2026-01-01T00:00:00Z","message":"Successfully assigned default/ to ","metadata":'
    b'{"creationTimestamp":"2026-01-01T00:00:00Z","name":"","namespace":"default","resourceVersion":"","uid":""},'
    b'"reason":"Scheduled","reportingComponent":"default-scheduler","reportingInstance":"",'
    b'"source":{"component":"default-scheduler"},"type":"Normal"}'
)


# A packed entry starts with its kept value (the field's text as a field selector compares it):
# two bytes of length, then its UTF-8. A value longer than _MAX_KEPT bytes is not kept: the header
# says _UNKEPT instead, and a list selecting on the field unpacks that entry to test it.
_MAX_KEPT = 1024
_UNKEPT = b"\xff\xff"


def kept_header(value: object) -> bytes:
    """How an entry whose kept field has ``value`` starts."""
    raw = value.encode() if isinstance(value, str) else b""
    if not isinstance(value, str) or len(raw) > _MAX_KEPT:
        return _UNKEPT
    return len(raw).to_bytes(2, "big") + raw


def packed(data: bytes, kept: object = "") -> bytes:
    """An object's JSON as the index keeps it: its kept field's value (:func:`kept_header`), then the
    JSON deflated against :data:`_PACK_DICT` (an Event 0.65 KB → ~0.16 KB; ~7 µs to pack, ~4 µs
    to unpack and decode)."""
    packer = zlib.compressobj(6, zlib.DEFLATED, _PACK_WBITS, 1, zdict=_PACK_DICT)
    return kept_header(kept) + packer.compress(data) + packer.flush()


def decoded(stored: Stored) -> Obj:
    """The object an index entry holds."""
    if isinstance(stored, bytes):
        size = int.from_bytes(stored[:2], "big")
        body = memoryview(stored)[2 if stored[:2] == _UNKEPT else 2 + size:]
        obj: Obj = orjson.loads(zlib.decompressobj(_PACK_WBITS, zdict=_PACK_DICT).decompress(body))
        return obj
    return stored


def _keeping(names: dict[str, Stored], value: str) -> dict[str, Stored]:
    """The entries of ``names`` whose kept field may equal ``value`` (in their order): those that
    keep exactly that value, and those that keep none (the caller's predicate tests them)."""
    starts = (kept_header(value), _UNKEPT)
    return {n: e for n, e in names.items() if isinstance(e, bytes) and e.startswith(starts)}


def _spaces(by_ns: dict[str, dict[str, Stored]], namespace: str | None) -> list[str]:
    """The namespaces a list reads, in order: all of them for None or "" (as in Kubernetes)."""
    if not namespace:
        return sorted(by_ns)
    return [namespace] if namespace in by_ns else []


def place_last(names: dict[str, Stored], name: str, stored: Stored) -> None:
    """Index ``stored`` under ``name`` as the namespace's latest write: each namespace's dict
    keeps its objects in the order they were last written (their resourceVersions rising), so
    ``list(written_through=rv)`` reads only the objects written up to ``rv``, not all of them."""
    names.pop(name, None)
    names[name] = stored


def _written_through(stored: Iterable[Stored], rv: int) -> Iterator[Obj]:
    """The objects of ``stored`` (one namespace, in write order) up to the first one written after ``rv``."""
    for entry in stored:
        obj = decoded(entry)
        if rv_of(obj) > rv:
            return
        yield obj


def _as_deleted(obj: Obj, rv: int) -> Obj:
    """A copy of obj carrying the delete's rv; the stored object stays untouched (it is shared)."""
    deleted = dict(obj)
    deleted["metadata"] = {**obj.get("metadata", {}), "resourceVersion": str(rv)}
    return deleted


log = logging.getLogger(__name__)


class StoreClosed(ApiError):
    code = 503
    reason = "ServiceUnavailable"


class MemoryStore:
    """A :class:`joblet.store.interface.Store` kept entirely in memory."""

    def __init__(
        self,
        *,
        history_events: int = DEFAULT_HISTORY_EVENTS,
        history_bytes: int = DEFAULT_HISTORY_BYTES,
    ) -> None:
        # resource -> namespace -> name -> object
        self._index: dict[str, dict[str, dict[str, Stored]]] = {}
        self._rv = 0
        self._hub = WatchHub(0, history_events, history_bytes)
        self._pending: list[CommittedEvent] = []
        # Rows to persist at the next flush, coalesced by key; None for a backend without a disk.
        self._rows: dict[Key, Row] | None = None
        self._flush_scheduled_on: asyncio.AbstractEventLoop | None = None
        #: why the last flush failed ("" when it succeeded): the store cannot persist right now
        self.storage_error = ""
        self._lock = threading.RLock()
        self._closed = False
        #: equal values shared between the stored objects (see :mod:`joblet.store.sharing`)
        self._shared = SharedValues()
        #: the lists being read page by page (see :mod:`joblet.store.paging`)
        self._snapshots = Snapshots()

    # -- reads ------------------------------------------------------------------------

    @property
    def current_rv(self) -> int:
        return self._rv

    def get(self, key: Key) -> Obj:
        stored = self._index.get(key.resource, {}).get(key.namespace, {}).get(key.name)
        if stored is None:
            raise not_found(key.resource, key.group, key.name)
        return decoded(stored)

    def list(
        self,
        resource: str,
        namespace: str | None = None,
        predicate: Callable[[Obj], bool] | None = None,
        written_through: int | None = None,
        kept_value: str | None = None,
    ) -> tuple[list[Obj], int]:
        with self._lock:
            by_ns = self._index.get(resource) or {}
            rv = self._rv
            out: list[Obj] = []
            encoded = resource in ENCODED_RESOURCES
            for ns in _spaces(by_ns, namespace):
                names = by_ns[ns]
                if encoded and kept_value is not None:
                    names = _keeping(names, kept_value)
                if written_through is not None:
                    objs: Iterable[Obj] = _written_through(names.values(), written_through)
                else:
                    stored = (names[n] for n in sorted(names))
                    objs = map(decoded, stored) if encoded else stored  # type: ignore[assignment]
                if predicate is None:
                    out.extend(objs)
                else:
                    out.extend(o for o in objs if predicate(o))
            return out, rv

    def list_page(self, resource: str, namespace: str | None, predicate: Callable[[Obj], bool] | None,
                  limit: int, continue_token: str | None = None, kept_value: str | None = None) -> Page:
        """At most ``limit`` objects of a list, and the token of the rest (:mod:`joblet.store.paging`):
        every page of one list is read from the snapshot its first page took. ``kept_value`` as for
        :meth:`list`: the snapshot holds only the entries that may have it."""
        with self._lock:
            narrowed = kept_value if resource in ENCODED_RESOURCES else None

            def entries() -> Entries:
                by_ns = self._index.get(resource) or {}
                out = no_entries()
                for ns in _spaces(by_ns, namespace):
                    out.add(ns, by_ns[ns] if narrowed is None else _keeping(by_ns[ns], narrowed))
                return out

            return self._snapshots.page(resource, namespace or "", narrowed, entries, self._rv, decoded, predicate,
                                        limit, continue_token)

    def count(self, resource: str, namespace: str | None = None) -> int:
        """How many objects of a resource are stored (cheap; for metrics and quotas)."""
        by_ns = self._index.get(resource)
        if not by_ns:
            return 0
        if namespace:
            return len(by_ns.get(namespace, ()))
        return sum(len(names) for names in by_ns.values())

    # -- writes -----------------------------------------------------------------------

    def create(self, key: Key, obj: Obj) -> Obj:
        with self._lock:
            self._check_open()
            by_ns = self._index.get(key.resource)
            if by_ns is None:
                by_ns = self._index[key.resource] = {}
            names = by_ns.get(key.namespace)
            if names is None:
                names = by_ns[key.namespace] = {}
            elif key.name in names:
                raise already_exists(key.resource, key.group, key.name)
            self._place("ADDED", key, names, obj)
        self._after_write()
        return obj

    def update(self, key: Key, obj: Obj, expected_rv: int | None = None) -> Obj:
        with self._lock:
            self._check_open()
            names = self._index.get(key.resource, {}).get(key.namespace)
            stored = names.get(key.name) if names is not None else None
            if names is None or stored is None:
                raise not_found(key.resource, key.group, key.name)
            if expected_rv is not None and rv_of(decoded(stored)) != expected_rv:
                raise conflict(key.resource, key.group, key.name, CONFLICT_MESSAGE)
            self._place("MODIFIED", key, names, obj, stored)
        self._after_write()
        return obj

    def delete(self, key: Key, expected_rv: int | None = None) -> Obj:
        with self._lock:
            self._check_open()
            by_ns = self._index.get(key.resource)
            names = by_ns.get(key.namespace) if by_ns is not None else None
            stored = names.get(key.name) if names is not None else None
            if by_ns is None or names is None or stored is None:
                raise not_found(key.resource, key.group, key.name)
            old = decoded(stored)
            if expected_rv is not None and rv_of(old) != expected_rv:
                raise conflict(key.resource, key.group, key.name, CONFLICT_MESSAGE)
            rv = self._rv = self._rv + 1
            del names[key.name]
            if not names:
                del by_ns[key.namespace]
            deleted = _as_deleted(old, rv)
            self._record("DELETED", key, deleted, rv)
        self._after_write()
        return deleted

    def _place(
        self, type_: EventType, key: Key, names: dict[str, Stored], obj: Obj, old: Stored | None = None
    ) -> None:
        """Index ``obj`` under the next resourceVersion and record its event (lock held)."""
        rv = self._rv = self._rv + 1
        meta = obj.get("metadata")
        if meta is None:
            meta = obj["metadata"] = {}
        meta["resourceVersion"] = str(rv)
        data = self._record(type_, key, obj, rv)
        place_last(names, key.name, self._to_index(key.resource, obj, data, old))

    def _to_index(self, resource: str, obj: Obj, data: bytes | None, old: Stored | None = None) -> Stored:
        """What the index keeps of ``obj`` (whose JSON is ``data``): the JSON of an object of
        :data:`ENCODED_RESOURCES`, packed (the object itself, handed back and to watchers, is not kept),
        else ``obj`` with its values shared (``old``: the version it replaces)."""
        kept = ENCODED_RESOURCES.get(resource)
        if kept is not None:
            return packed(data if data is not None else orjson.dumps(obj), field_text(obj, *kept.split(".")))
        self._shared.share(obj, old if isinstance(old, dict) else None)
        return obj

    def _record(self, type_: EventType, key: Key, obj: Obj, rv: int) -> bytes:
        """Queue the event of a write (and its row); the object's JSON."""
        data = orjson.dumps(obj)
        self._pending.append(CommittedEvent(key.resource, key.namespace, WatchEvent(type_, obj, rv), data))
        if self._rows is not None:
            self._rows[key] = (rv, None if type_ == "DELETED" else data)
        return data

    def _after_write(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        if self._flush_scheduled_on is not loop:
            self._flush_scheduled_on = loop
            loop.call_soon(self._scheduled_flush)

    def _scheduled_flush(self) -> None:
        """The once-per-loop-turn flush. A full disk is not a crash: the rows stay pending (their
        watch events unpublished) and the next write's flush retries them; it is logged once per
        episode, not once per turn (requests that wrote are answered 507 by the API server)."""
        try:
            self.flush()
        except ApiError as err:
            if not self.storage_error:
                log.warning("store flush failed, will retry on the next write: %s", err)
            self.storage_error = str(err)
            return
        if self.storage_error:
            log.warning("store flush succeeded again after: %s", self.storage_error)
            self.storage_error = ""

    # -- watch, flush, close ----------------------------------------------------------

    def watch(self, resource: str, namespace: str | None = None, since_rv: int | None = None) -> StoreWatch:
        with self._lock:
            self._check_open()
            return self._hub.subscribe(resource, namespace or None, since_rv, self._rv)

    def flush(self) -> None:
        with self._lock:
            self._flush_scheduled_on = None
            if not self._pending:
                return
            if self._rows is not None:
                rows, self._rows = self._rows, {}
                try:
                    self._persist(rows, self._rv)
                except BaseException:
                    # Keep the rows (newer writes win) so the next flush retries them.
                    rows.update(self._rows)
                    self._rows = rows
                    raise
            batch, self._pending = self._pending, []
            self._hub.publish(batch)

    def _persist(self, rows: dict[Key, Row], rv: int) -> None:
        """Make rows (and the store's rv) durable; the memory store has nothing to do."""

    def close(self) -> None:
        failed: BaseException | None = None
        with self._lock:
            if self._closed:
                return
            try:
                self.flush()
            except BaseException as err:  # closed all the same; raised below
                failed = err
            self._closed = True
            self._hub.close_all()
        # Outside the lock: a backend's helper thread may need it to finish (PostgreSQL's follower).
        self._close_backend()
        if failed is not None:
            raise failed

    def _close_backend(self) -> None:
        """Release what the backend holds (nothing in memory)."""

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosed("the store is closed")

    # -- for persistent backends ------------------------------------------------------

    def _load(self, rows: Iterable[tuple[str, str, str, Obj]], rv: int) -> None:
        """Fill the index from ``(resource, namespace, name, object)`` rows; history starts at rv."""
        index = self._index
        top = 0
        for resource, namespace, name, obj in sorted(rows, key=lambda row: rv_of(row[3])):  # in write order
            index.setdefault(resource, {}).setdefault(namespace, {})[name] = self._to_index(resource, obj, None)
            top = max(top, rv_of(obj))
        self._rv = max(rv, top)
        self._hub.reset(self._rv)
