"""Chunked LISTs (``limit`` and ``continue``): every page of one list comes from one snapshot.

Why: a full LIST of 100,000 pods held the event loop for over a second (and twice that as
kubectl's Table), so a ``kubectl get pods`` stopped every other request, watch and pod start of
the control plane meanwhile. kubectl, client-go's pager and the other clients already ask for
500 objects at a time and follow ``metadata.continue``; the API server returned everything.

As upstream (etcd serves every page at the first page's revision), the pages of one list are a
consistent snapshot: the first page takes the scope's namespaces, names and entries in key order
at the store's resourceVersion (references only: stored objects are never changed in place), as
three parallel lists, not a tuple per object (100,000 tuples cost the first page ~100 ms, most
of it the collector walking them); later pages slice it. Snapshots are kept for the most recent
lists only; a token whose snapshot is gone is answered 410 Expired, and that answer carries an
*inconsistent* token that continues after the same key from the current state (upstream's
answer to a compacted revision).
"""

from __future__ import annotations

import base64
import binascii
import bisect
import itertools
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from joblet.errors import BadRequest, Gone

#: How many lists may be paged through at once, and how many entries all their snapshots may
#: hold (~70 bytes each); past either, the least recently read is dropped and its next page is
#: answered 410. A list read to its end drops its snapshot at once.
MAX_SNAPSHOTS = 8
MAX_ENTRIES = 1_000_000

EXPIRED_MESSAGE = (
    "The provided continue parameter is too old to display a consistent list result. You can start a "
    "new list without the continue parameter, or use the continue token in this response to retrieve the "
    "remainder of the results. Continuing with the provided token results in an inconsistent list - objects "
    "that were created, modified, or deleted between the time the first chunk was returned and now may show "
    "up in the list.")


@dataclass
class Entries:
    """A scope's stored entries in key order, as parallel lists: ``namespaces[i]``/``names[i]`` is
    the key of ``values[i]`` (what the index holds)."""

    namespaces: list[str]
    names: list[str]
    values: list[Any]

    def __len__(self) -> int:
        return len(self.names)

    def add(self, namespace: str, entries: dict[str, Any]) -> None:
        """Append one namespace's ``entries`` (name → value), sorted by name; namespaces must be
        added in order."""
        ordered = sorted(entries)
        self.namespaces.extend(itertools.repeat(namespace, len(ordered)))
        self.names.extend(ordered)
        self.values.extend(map(entries.__getitem__, ordered))

    def after(self, key: tuple[str, str]) -> int:
        """The position of the first entry whose key sorts after ``key``."""
        lo = bisect.bisect_left(self.namespaces, key[0])
        hi = bisect.bisect_right(self.namespaces, key[0], lo)
        return bisect.bisect_right(self.names, key[1], lo, hi)

    def since(self, position: int) -> Entries:
        return Entries(self.namespaces[position:], self.names[position:], self.values[position:])


def no_entries() -> Entries:
    return Entries([], [], [])


class ContinueExpired(Gone):
    """410: the snapshot of a ``continue`` token is gone; ``token`` continues inconsistently."""

    def __init__(self, token: str) -> None:
        super().__init__(EXPIRED_MESSAGE)
        self.token = token

    def to_status(self) -> dict[str, Any]:
        status = super().to_status()
        status["metadata"] = {"continue": self.token}
        return status


@dataclass(frozen=True)
class Continue:
    """What a ``continue`` token says: the list's scope (its resource, namespace and the kept value
    its snapshot was narrowed to), its resourceVersion (-1: an inconsistent continuation from the
    current state), the last key returned and the snapshot to read on from."""

    resource: str
    namespace: str
    narrowed: str | None
    rv: int
    start: tuple[str, str]
    snapshot: int

    def encode(self) -> str:
        body = {"v": 1, "r": self.resource, "ns": self.namespace, "k": self.narrowed, "rv": self.rv,
                "start": list(self.start), "snap": self.snapshot}
        return base64.urlsafe_b64encode(orjson.dumps(body)).decode().rstrip("=")

    @staticmethod
    def decode(token: str) -> Continue:
        try:
            body = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            start, narrowed = body["start"], body.get("k")
            if (body.get("v") != 1 or not isinstance(start, list) or len(start) != 2
                    or not all(isinstance(s, str) for s in start) or not isinstance(narrowed, str | None)):
                raise ValueError("unknown version, start or kept value")
            return Continue(str(body["r"]), str(body["ns"]), narrowed, int(body["rv"]), (start[0], start[1]),
                            int(body["snap"]))
        except (ValueError, KeyError, TypeError, binascii.Error, orjson.JSONDecodeError):
            raise BadRequest("continue key is not valid: it is not a token this server gave out") from None


@dataclass
class Page:
    """One page of a list: its objects, the list's resourceVersion, the token of the next page
    ("" on the last one) and how many objects remain after it when that is known (no selector)."""

    items: list[Any]
    rv: int
    continue_token: str = ""
    remaining: int | None = None


@dataclass
class _Snapshot:
    scope: tuple[str, str, str | None]  # resource, namespace, narrowed
    rv: int
    entries: Entries


class Snapshots:
    """The snapshots of the lists being paged through, the least recently read dropped first."""

    def __init__(self, limit: int = MAX_SNAPSHOTS, max_entries: int = MAX_ENTRIES) -> None:
        self._limit = limit
        self._max_entries = max_entries
        self._by_id: OrderedDict[int, _Snapshot] = OrderedDict()
        self._ids = itertools.count(1)

    def page(self, resource: str, namespace: str, narrowed: str | None, entries: Callable[[], Entries],
             rv: int, decode: Callable[[Any], Any], predicate: Callable[[Any], bool] | None, limit: int,
             token: str | None) -> Page:
        """The next page: of a new snapshot (``entries()`` at ``rv``, in key order) without a token.
        ``narrowed``: the kept value ``entries()`` were narrowed to (part of the list's scope)."""
        if token:
            cont = Continue.decode(token)
            scope = (resource, namespace, narrowed)
            snap = self._by_id.get(cont.snapshot)
            # Tokens are not signed: a snapshot is read only for a request of its own scope, which
            # the request's authorization covered (a forged id must not reach another namespace's).
            if (cont.resource, cont.namespace, cont.narrowed) != scope or (snap is not None and snap.scope != scope):
                raise BadRequest("continue key is not valid: it was given out for another list")
            if snap is None or cont.rv < 0:
                if cont.rv >= 0:  # the snapshot is gone: say so, with a token that goes on anyway
                    raise ContinueExpired(Continue(resource, namespace, narrowed, -1, cont.start, 0).encode())
                now = entries()
                snap_id, snap = self._take((resource, namespace, narrowed), now.since(now.after(cont.start)), rv)
                start = 0
            else:
                self._by_id.move_to_end(cont.snapshot)
                snap_id, start = cont.snapshot, snap.entries.after(cont.start)
        else:
            snap_id, snap = self._take((resource, namespace, narrowed), entries(), rv)
            start = 0
        items: list[Any] = []
        values, total = snap.entries.values, len(snap.entries)
        position = start
        for position in range(start, total):
            obj = decode(values[position])
            if predicate is None or predicate(obj):
                items.append(obj)
                if len(items) == limit:
                    break
        else:
            position = total
        following = position + 1
        if following >= total:
            self._by_id.pop(snap_id, None)
            return Page(items, snap.rv)
        last = (snap.entries.namespaces[position], snap.entries.names[position])
        token_out = Continue(resource, namespace, narrowed, snap.rv, last, snap_id).encode()
        return Page(items, snap.rv, token_out, total - following if predicate is None else None)

    def _take(self, scope: tuple[str, str, str | None], entries: Entries, rv: int) -> tuple[int, _Snapshot]:
        snap_id = next(self._ids)
        snap = self._by_id[snap_id] = _Snapshot(scope, rv, entries)
        while len(self._by_id) > 1 and (len(self._by_id) > self._limit or sum(
                len(s.entries) for s in self._by_id.values()) > self._max_entries):
            self._by_id.popitem(last=False)
        return snap_id, snap

