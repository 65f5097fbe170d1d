"""The in-process transport of the client: calls the registry directly.

In the default single-process joblet the controllers, the node agent and the HTTP server
all sit in one event loop with the registry; going through HTTP there would cost a JSON
round trip per call for nothing. Objects are handed over as they are stored (read-only
by convention), selectors are compiled once per call.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Callable
from typing import Any

from joblet.api import selectors
from joblet.api.registry import Registry
from joblet.client.interface import Event, FieldValidation, ObjectList, PatchType, PropagationPolicy
from joblet.errors import NotFound
from joblet.store.memory import ENCODED_RESOURCES

Obj = dict[str, Any]


def compile_predicate(
    resource: str, label_selector: str | None, field_selector: str | None,
    keep: Callable[[Obj], bool] | None = None,
) -> Callable[[Obj], bool] | None:
    """One predicate for a label and a field selector and ``keep`` (None when all are empty)."""
    tests: builtins.list[Callable[[Obj], bool]] = []
    if label_selector:
        ls = selectors.parse_label_selector(label_selector)
        tests.append(lambda o: ls.matches((o.get("metadata") or {}).get("labels") or {}))
    if field_selector:
        fs = selectors.parse_field_selector(field_selector, resource)
        tests.append(fs.matches)
    if keep is not None:
        tests.append(keep)
    if not tests:
        return None
    if len(tests) == 1:
        return tests[0]
    return lambda o: all(t(o) for t in tests)


class LocalClient:
    def __init__(self, registry: Registry, log_store: Any = None) -> None:
        self.registry = registry
        self.log_store = log_store

    def persist(self) -> None:
        """Make the writes made so far durable now: the API server calls it before it acknowledges
        a write, so a full disk is answered 507 (InsufficientStorage) instead of a 201."""
        self.registry.store.flush()

    async def get(self, resource: str, name: str, namespace: str = "") -> Obj:
        return self.registry.get(resource, namespace, name)

    async def list(
        self,
        resource: str,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        *,
        keep: Callable[[Obj], bool] | None = None,
        written_through: int | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
    ) -> ObjectList:
        predicate = compile_predicate(resource, label_selector, field_selector, keep)
        kept = ENCODED_RESOURCES.get(resource)
        kept_value = (selectors.parse_field_selector(field_selector, resource).value_for(kept)
                      if kept and field_selector else None)
        if limit or continue_token:  # kubectl describe's Event list comes with limit=500
            page = self.registry.list_page(resource, namespace, predicate, limit or 0, continue_token, kept_value)
            return ObjectList(page.items, str(page.rv), page.continue_token, page.remaining)
        items, rv = self.registry.list(resource, namespace, predicate, written_through, kept_value)
        return ObjectList(items, str(rv))

    async def create(
        self, resource: str, obj: Obj, namespace: str | None = None, dry_run: bool = False,
        field_validation: FieldValidation | None = None,
    ) -> Obj:
        return self.registry.create(resource, obj, namespace, dry_run=dry_run, field_validation=field_validation)

    async def update(
        self, resource: str, obj: Obj, subresource: str | None = None, dry_run: bool = False,
        field_validation: FieldValidation | None = None,
    ) -> Obj:
        return self.registry.update(resource, obj, subresource=subresource, dry_run=dry_run,
                                    field_validation=field_validation)

    async def patch(
        self,
        resource: str,
        name: str,
        patch: Any,
        namespace: str = "",
        patch_type: PatchType = "merge",
        subresource: str | None = None,
        field_manager: str | None = None,
        force: bool = False,
        dry_run: bool = False,
        field_validation: FieldValidation | None = None,
    ) -> Obj:
        return self.registry.patch(resource, namespace, name, patch, patch_type, subresource, field_manager,
                                   force=force, dry_run=dry_run, field_validation=field_validation)

    async def delete(
        self,
        resource: str,
        name: str,
        namespace: str = "",
        propagation_policy: PropagationPolicy | None = None,
        grace_period_seconds: int | None = None,
        preconditions: dict[str, str] | None = None,
        dry_run: bool = False,
    ) -> Obj:
        return self.registry.delete(resource, namespace, name, propagation_policy, grace_period_seconds, preconditions,
                                    dry_run=dry_run)

    async def watch(
        self,
        resource: str,
        namespace: str | None = None,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: float | None = None,
    ) -> AsyncIterator[builtins.list[Event]]:
        predicate = compile_predicate(resource, label_selector, field_selector)
        since = int(resource_version) if resource_version not in (None, "", "0") else None
        watch = self.registry.watch(resource, namespace, since)
        try:
            while True:
                try:
                    batch = await watch.next_batch(timeout_seconds)
                except StopAsyncIteration:
                    return
                if not batch:
                    if timeout_seconds is not None:
                        return
                    continue
                events: builtins.list[Event] = [Event(e.type, e.object) for e in batch if predicate is None or predicate(e.object)]
                if events:
                    yield events
        finally:
            watch.close()

    async def read_log(
        self,
        namespace: str,
        pod: str,
        container: str | None = None,
        follow: bool = False,
        tail_lines: int | None = None,
        timestamps: bool = False,
        previous: bool = False,
    ) -> AsyncIterator[bytes]:
        if self.log_store is None:
            raise NotFound(f'pods "{pod}" not found')
        async for chunk in self.log_store.read(
            namespace, pod, container=container, follow=follow, tail_lines=tail_lines,
            timestamps=timestamps, previous=previous,
        ):
            yield chunk

    async def create_token(self, name: str, token_request: Obj, namespace: str = "default") -> Obj:
        return self.registry.create_token(namespace, name, token_request)

    async def close(self) -> None:
        return None
