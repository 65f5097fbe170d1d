"""The one client interface every component uses to talk to the API.

Controllers, the node agent and the CLI import this, never the store or the HTTP server.
Two transports implement it: :mod:`joblet.client.local` calls the registry in-process
(objects are handed over, not re-serialised) and :mod:`joblet.client.http` speaks the
Kubernetes REST API. Objects are Kubernetes wire-format dicts; objects returned by the
local transport are shared with the store, so callers must treat them as read-only and
copy (``joblet.objects.deep_copy``) before changing them.

Errors are raised as :mod:`joblet.errors` classes on both transports.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from joblet.api.fieldvalidation import FieldValidation
from joblet.api.patch import PatchType

Obj = dict[str, Any]
__all__ = ["Client", "Event", "FieldValidation", "Obj", "ObjectList", "PatchType", "PropagationPolicy"]
PropagationPolicy = Literal["Orphan", "Background", "Foreground"]


@dataclass(frozen=True)
class ObjectList:
    """``continue_token``: the token of the next page of a chunked list ("" when this is the last);
    ``remaining``: how many objects follow, when the server knows (no selector)."""

    items: list[Obj]
    resource_version: str
    continue_token: str = ""
    remaining: int | None = None


@dataclass(frozen=True)
class Event:
    """A watch event. ``type`` is ADDED, MODIFIED, DELETED, BOOKMARK or ERROR."""

    type: str
    object: Obj


class Client(Protocol):
    async def get(self, resource: str, name: str, namespace: str = "") -> Obj: ...

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
        """``keep``: only the objects it is true of, tested as each is read (in process, before
        the next one is: a sweep of every Event holds only the ones it wants, not all of them
        decoded at once - the store keeps Events packed). ``written_through``: only the objects
        last written at or before that resourceVersion (in process, only those are read).
        ``limit``/``continue_token``: one page of a chunked list (``?limit=&continue=``), every
        page of one list from the same snapshot; not with ``written_through``."""

    async def create(
        self, resource: str, obj: Obj, namespace: str | None = None, dry_run: bool = False,
        field_validation: FieldValidation | None = None,
    ) -> Obj:
        """namespace defaults to obj.metadata.namespace, then "default" for namespaced kinds.

        ``field_validation`` (also on update and patch): what the server does with fields the
        schema does not know, as ``?fieldValidation=`` (None: the transport's default; pass
        one for a body a user wrote). Warnings go to :func:`joblet.api.warning.collect`."""

    async def update(
        self, resource: str, obj: Obj, subresource: str | None = None, dry_run: bool = False,
        field_validation: FieldValidation | None = None,
    ) -> Obj:
        """PUT; uses obj.metadata.resourceVersion as the precondition when set."""

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
    ) -> Obj: ...

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
        """Returns the object as it stands after the call (deleted, or marked for deletion)."""

    def watch(
        self,
        resource: str,
        namespace: str | None = None,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: float | None = None,
    ) -> AsyncIterator[builtins.list[Event]]:
        """Batches of events after resource_version (None: from now). Raises Gone when too old."""

    def read_log(
        self,
        namespace: str,
        pod: str,
        container: str | None = None,
        follow: bool = False,
        tail_lines: int | None = None,
        timestamps: bool = False,
        previous: bool = False,
    ) -> AsyncIterator[bytes]:
        """Chunks of a container's log; with follow, until the container ends."""

    async def create_token(self, name: str, token_request: Obj, namespace: str = "default") -> Obj:
        """POST ``serviceaccounts/NAME/token``: an authentication.k8s.io/v1 TokenRequest in, the same
        with ``status.token`` and ``status.expirationTimestamp`` out."""

    async def close(self) -> None: ...
