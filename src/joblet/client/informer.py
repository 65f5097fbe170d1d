"""Informers: a watch-fed cache of one resource, shared by the controllers and the node agent.

Why here (the client layer): client-go keeps informers in ``tools/cache`` beside the clients,
because every component that reacts to API objects needs one - the controllers (through
:mod:`joblet.controllers.runtime`) and the node agent (its pods) alike. An :class:`Informer`
lists, then watches from the list's resourceVersion, relists on 410 Gone at once and after
any other failure once ``relist_backoff`` seconds have passed on its clock.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from joblet.client.interface import Client
from joblet.clock import Clock, RealClock
from joblet.errors import ApiError, Gone
from joblet.objects import key_of, rv_of

Obj = dict[str, Any]
log = logging.getLogger(__name__)

AddHandler = Callable[[Obj], None]
UpdateHandler = Callable[[Obj, Obj], None]
DeleteHandler = Callable[[Obj], None]
IndexFunc = Callable[[Obj], Iterable[str]]


@dataclass
class _Handlers:
    on_add: AddHandler | None = None
    on_update: UpdateHandler | None = None
    on_delete: DeleteHandler | None = None


class Informer:
    """List + watch of one resource into a cache keyed ``namespace/name``.

    Handlers run synchronously on the event loop for each change; they should only enqueue.
    Objects in the cache are shared (never mutate them).
    """

    def __init__(
        self,
        client: Client,
        resource: str,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        relist_backoff: float = 1.0,
        clock: Clock | None = None,
    ) -> None:
        self.client = client
        self.clock: Clock = clock or RealClock()
        self.resource = resource
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.relist_backoff = relist_backoff
        self.cache: dict[str, Obj] = {}
        self.synced = asyncio.Event()
        self.resource_version = ""
        self._handlers: list[_Handlers] = []
        self._indexers: dict[str, IndexFunc] = {}
        self._indexes: dict[str, dict[str, set[str]]] = {}
        # index name -> key -> the object's values in it: the value itself when it is the only
        # one (most are: a pod's controller uid, node, owner), so a retained pod costs no tuple
        self._index_values: dict[str, dict[str, str | tuple[str, ...]]] = {}
        self._task: asyncio.Task[None] | None = None

    # -- configuration ------------------------------------------------------------------

    def add_handler(
        self,
        on_add: AddHandler | None = None,
        on_update: UpdateHandler | None = None,
        on_delete: DeleteHandler | None = None,
    ) -> None:
        """Register callbacks. Objects already cached are replayed to on_add."""
        handlers = _Handlers(on_add, on_update, on_delete)
        self._handlers.append(handlers)
        if on_add is not None:
            for obj in builtins.list(self.cache.values()):
                on_add(obj)

    def add_index(self, name: str, func: IndexFunc) -> None:
        self._indexers[name] = func
        self._indexes[name] = {}
        self._index_values[name] = {}
        for key, obj in self.cache.items():
            self._index_add(name, key, obj)

    # -- reads ----------------------------------------------------------------------------

    def get(self, key: str) -> Obj | None:
        return self.cache.get(key)

    def list(self) -> builtins.list[Obj]:
        return builtins.list(self.cache.values())

    def by_index(self, name: str, value: str) -> builtins.list[Obj]:
        keys = self._indexes[name].get(value)
        if not keys:
            return []
        return [self.cache[k] for k in keys if k in self.cache]

    def index_keys(self, name: str, value: str) -> set[str]:
        return set(self._indexes[name].get(value) or ())

    # -- cache maintenance (also used directly by tests) -----------------------------------

    def apply(self, event_type: str, obj: Obj) -> None:
        """Apply one watch event to the cache and run the handlers."""
        # Interned: the cache and each index keep the key of every object for as long as it
        # exists (a Job's finished pods), and a fresh string per event would leave one copy in
        # each index and each informer; an interned one dies with its last reference.
        key = sys.intern(key_of(obj))
        if event_type == "DELETED":
            old = self.cache.pop(key, None)
            self._reindex(key, None)
            for h in self._handlers:
                if h.on_delete is not None:
                    h.on_delete(obj if obj.get("metadata") else (old or obj))
            return
        old = self.cache.get(key)
        self.cache[key] = obj
        self._reindex(key, obj)
        if old is None:
            for h in self._handlers:
                if h.on_add is not None:
                    h.on_add(obj)
        else:
            for h in self._handlers:
                if h.on_update is not None:
                    h.on_update(old, obj)

    def replace(self, items: builtins.list[Obj], resource_version: str) -> None:
        """Replace the cache with a fresh list, emitting the differences as events."""
        fresh = {key_of(o): o for o in items}
        for key in [k for k in self.cache if k not in fresh]:
            self.apply("DELETED", self.cache[key])
        for key, obj in fresh.items():
            old = self.cache.get(key)
            if old is not None and rv_of(old) == rv_of(obj) and rv_of(obj) != 0:
                continue
            self.apply("MODIFIED" if old is not None else "ADDED", obj)
        self.resource_version = resource_version

    def _reindex(self, key: str, obj: Obj | None) -> None:
        for name in self._indexers:
            old_values = self._index_values[name].pop(key, ())
            if isinstance(old_values, str):
                old_values = (old_values,)
            index = self._indexes[name]
            for v in old_values:
                bucket = index.get(v)
                if bucket is not None:
                    bucket.discard(key)
                    if not bucket:
                        del index[v]
            if obj is not None:
                self._index_add(name, key, obj)

    def _index_add(self, name: str, key: str, obj: Obj) -> None:
        values = tuple(self._indexers[name](obj))
        if not values:
            return
        self._index_values[name][key] = values[0] if len(values) == 1 else values
        index = self._indexes[name]
        for v in values:
            index.setdefault(v, set()).add(key)

    # -- running ----------------------------------------------------------------------------

    async def list_once(self) -> None:
        result = await self.client.list(
            self.resource, self.namespace, label_selector=self.label_selector, field_selector=self.field_selector
        )
        self.replace(result.items, result.resource_version)
        self.synced.set()

    async def run(self) -> None:
        """List, then watch from the list's resourceVersion; relist on Gone. Runs until cancelled."""
        while True:
            try:
                await self.list_once()
                await self._watch()
            except asyncio.CancelledError:
                raise
            except Gone:
                log.debug("informer %s: watch expired, relisting", self.resource)
                continue
            except ApiError as exc:  # e.g. the server restarting under an HTTP client
                log.warning("informer %s: %s; relisting", self.resource, exc)
            except Exception:
                log.exception("informer %s failed; relisting", self.resource)
            await self.clock.sleep_async(self.relist_backoff)

    async def _watch(self) -> None:
        while True:
            stream = self.client.watch(
                self.resource,
                self.namespace,
                resource_version=self.resource_version or None,
                label_selector=self.label_selector,
                field_selector=self.field_selector,
            )
            async for batch in stream:
                for event in batch:
                    if event.type == "ERROR":
                        raise Gone("watch error event")
                    rv = str((event.object.get("metadata") or {}).get("resourceVersion") or "")
                    if event.type != "BOOKMARK":
                        self.apply(event.type, event.object)
                    if rv:
                        self.resource_version = rv
            # The server ended the watch (timeout): resume from the last resourceVersion.

    def start(self) -> asyncio.Task[None]:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run(), name=f"informer-{self.resource}")
        return self._task

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None


class InformerFactory:
    """Shares one informer per (resource, namespace, selectors) between controllers."""

    def __init__(self, client: Client, clock: Clock | None = None) -> None:
        self.client = client
        self.clock = clock
        self._informers: dict[tuple[str, str | None, str | None, str | None], Informer] = {}

    def get(
        self,
        resource: str,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> Informer:
        key = (resource, namespace, label_selector, field_selector)
        informer = self._informers.get(key)
        if informer is None:
            informer = Informer(self.client, resource, namespace, label_selector, field_selector,
                                clock=self.clock)
            self._informers[key] = informer
        return informer

    def all(self) -> builtins.list[Informer]:
        return builtins.list(self._informers.values())
