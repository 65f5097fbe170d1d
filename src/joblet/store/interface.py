"""The store contract: what every backend (memory, SQLite, later PostgreSQL) promises.

Objects are Kubernetes wire-format dicts. A key is ``(resource plural, namespace, name)``
with namespace ``""`` for cluster-scoped resources. One global, monotonically increasing
resourceVersion orders every write; updates and deletes may carry an expected
resourceVersion (optimistic concurrency). Watches replay history from a resourceVersion
and raise :class:`joblet.errors.Gone` once the history no longer reaches back that far.

Objects handed out by a store are shared, never copied: callers must not mutate them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from joblet.store.paging import Page

Obj = dict[str, Any]
EventType = Literal["ADDED", "MODIFIED", "DELETED"]


@dataclass(frozen=True)
class Key:
    resource: str
    namespace: str
    name: str
    #: The resource's API group, only for error messages (``jobs.batch "x" not found``); the
    #: store knows no resource table (that is the API layer's), so the caller says it. Not part
    #: of the key's identity.
    group: str = field(default="", compare=False, hash=False)

    def __str__(self) -> str:
        return f"{self.resource}/{self.namespace}/{self.name}" if self.namespace else f"{self.resource}/{self.name}"


@dataclass(frozen=True)
class WatchEvent:
    type: EventType
    object: Obj
    resource_version: int


class Watch(Protocol):
    """A stream of events for one resource (optionally one namespace)."""

    def poll(self) -> list[WatchEvent]:
        """Events delivered so far and not yet taken (never blocks)."""

    async def next_batch(self, timeout: float | None = None) -> list[WatchEvent]:
        """Wait for at least one event (or timeout: empty list; or closed: raises StopAsyncIteration)."""

    def close(self) -> None: ...


class Store(Protocol):
    def create(self, key: Key, obj: Obj) -> Obj:
        """Store a new object; sets metadata.resourceVersion. AlreadyExists if present."""

    def get(self, key: Key) -> Obj:
        """NotFound if absent."""

    def list(
        self,
        resource: str,
        namespace: str | None = None,
        predicate: Callable[[Obj], bool] | None = None,
        written_through: int | None = None,
        kept_value: str | None = None,
    ) -> tuple[list[Obj], int]:
        """Objects of one resource (all namespaces when namespace is None) and the store's rv.
        ``written_through``: only the objects last written at or before that resourceVersion,
        namespace by namespace in the order they were written, at the cost of those alone (the
        Event expiry's question). ``kept_value``: a value the resource's kept field (see
        ``memory.ENCODED_RESOURCES``) must have, tested before an object is decoded; a
        hint, ignored for other resources: ``predicate`` still decides."""

    def list_page(self, resource: str, namespace: str | None, predicate: Callable[[Obj], bool] | None,
                  limit: int, continue_token: str | None = None, kept_value: str | None = None) -> Page:
        """At most ``limit`` objects (0: all) of a list in key order (namespace, name), and the
        token of the rest: every page of one list is read from the snapshot its first page took.
        BadRequest for a token not given out for this list; ContinueExpired (410, carrying a token
        that continues from the current state) when its snapshot is gone. ``kept_value`` as for
        :meth:`list`, and part of the list's scope."""

    def update(self, key: Key, obj: Obj, expected_rv: int | None = None) -> Obj:
        """Replace; Conflict if expected_rv is given and differs; NotFound if absent."""

    def delete(self, key: Key, expected_rv: int | None = None) -> Obj:
        """Remove; returns the object as deleted (with a new resourceVersion)."""

    def watch(self, resource: str, namespace: str | None = None, since_rv: int | None = None) -> Watch:
        """Events after since_rv (None: from now). Gone if since_rv is older than the history."""

    @property
    def current_rv(self) -> int: ...

    def flush(self) -> None:
        """Make every write so far durable and deliver its watch events."""

    def close(self) -> None: ...
