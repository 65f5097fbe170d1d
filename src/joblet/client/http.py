"""The HTTP transport of the client: the Kubernetes REST API spoken with httpx.

Why: when joblet's parts run apart (``joblet node --server URL``, the CLI against a running
server) they use the same :class:`joblet.client.interface.Client` as in-process, so this
module is the mirror image of :mod:`joblet.api.server`: each method is one request, each
``Status`` answer becomes the :mod:`joblet.errors` class it came from
(:func:`joblet.errors.from_status`), a watch is the newline-delimited event stream parsed
into batches (one batch per received chunk), and logs are the raw byte stream.

TLS: ``verify`` is an ``ssl.SSLContext`` carrying the kubeconfig's CA and client certificate
(:meth:`joblet.kubeconfig.Access.ssl_context`; :meth:`HttpClient.from_access` builds the
client from a kubeconfig's :class:`~joblet.kubeconfig.Access`).
"""

from __future__ import annotations

import logging
import math
import ssl
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import httpx
import orjson

from joblet.api.resources import RESOURCES, Resource
from joblet.api.warning import parse_warning_header, warn
from joblet.client.interface import Event, FieldValidation, Obj, ObjectList, PatchType, PropagationPolicy
from joblet.client.pool import install as install_cached_sockets
from joblet.clock import poll_pause
from joblet.errors import ApiError, InternalError, NotFound, ServiceUnavailable, from_status
from joblet.objects import rv_of

log = logging.getLogger(__name__)

EventBatch = list[Event]
PATCH_CONTENT_TYPES: dict[str, str] = {
    "strategic": "application/strategic-merge-patch+json",
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "apply": "application/apply-patch+yaml",
}
DEFAULT_FIELD_MANAGER = "joblet"
WATCH_RECONNECT_ATTEMPTS = 5
WATCH_RECONNECT_DELAY = 1.0


def resource_or_404(resource: str) -> Resource:
    r = RESOURCES.get(resource)
    if r is None:
        raise NotFound("the server could not find the requested resource", {"kind": resource})
    return r


def object_path(r: Resource, namespace: str, name: str, subresource: str | None = None) -> str:
    path = f"{r.base_path(namespace or None)}/{name}"
    return f"{path}/{subresource}" if subresource else path


def error_from_response(status_code: int, body: bytes) -> ApiError:
    """The ApiError a non-2xx answer stands for (a Status body, or just the code)."""
    try:
        status = orjson.loads(body)
    except orjson.JSONDecodeError:
        status = None
    if isinstance(status, dict) and status.get("kind") == "Status":
        status.setdefault("code", status_code)
        return from_status(status)
    text = body.decode("utf-8", "replace").strip() or f"HTTP {status_code}"
    return from_status({"code": status_code, "message": text})


def parse_event_lines(buffer: bytes) -> tuple[list[dict[str, Any]], bytes]:
    """Complete newline-delimited JSON events in ``buffer`` and the incomplete rest."""
    end = buffer.rfind(b"\n")
    if end < 0:
        return [], buffer
    events = [orjson.loads(line) for line in buffer[:end].split(b"\n") if line.strip()]
    return events, buffer[end + 1:]


def deleted_object(r: Resource, namespace: str, name: str, answer: Obj) -> Obj:
    """What delete returns when the server answered a ``Status`` instead of the object."""
    if answer.get("kind") != "Status":
        return answer
    details = answer.get("details") or {}
    meta: Obj = {"name": details.get("name") or name}
    if r.namespaced:
        meta["namespace"] = namespace
    if details.get("uid"):
        meta["uid"] = details["uid"]
    return {"apiVersion": r.api_version, "kind": r.kind, "metadata": meta}


class HttpClient:
    """A :class:`joblet.client.interface.Client` over a Kubernetes-compatible REST API."""

    def __init__(self, base_url: str, token: str | None = None, verify: bool | ssl.SSLContext = True,
                 timeout: float = 30.0, *, fallbacks: Sequence[str] = ()) -> None:
        """``fallbacks``: more replicas of the same API (one store, one identity); when the current
        server stops answering, requests and watches move to the next (see :meth:`_fail_over`)."""
        headers = {"Accept": "application/json", "User-Agent": "joblet-client"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.servers = [u.rstrip("/") for u in (base_url, *fallbacks)]
        self._clients = [httpx.AsyncClient(base_url=u, headers=headers, verify=verify, timeout=httpx.Timeout(timeout))
                         for u in self.servers]
        for http in self._clients:
            install_cached_sockets(http)  # joblet.client.pool: idle-connection checks without attribute tables
        self._current = 0

    @property
    def base_url(self) -> str:
        return self.servers[self._current]

    @property
    def _http(self) -> httpx.AsyncClient:
        return self._clients[self._current]

    def _fail_over(self, failed: httpx.AsyncClient) -> bool:
        """``failed`` did not answer: make the next server current (unless another request did
        already). False when there is no other server."""
        if len(self._clients) < 2:
            return False
        if self._clients[self._current] is failed:
            self._current = (self._current + 1) % len(self._clients)
            log.warning("API server %s does not answer; failing over to %s",
                        self.servers[self._current - 1], self.base_url)
        return True

    @classmethod
    def from_access(cls, access: Any, timeout: float = 30.0, fallbacks: Sequence[str] = ()) -> HttpClient:
        """A client for a :class:`joblet.kubeconfig.Access` (server, CA, token or client cert)."""
        return cls(access.server, token=access.token, verify=access.ssl_context(), timeout=timeout,
                   fallbacks=fallbacks)

    # ---- plumbing

    async def _request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                       body: Any = None, content_type: str = "application/json") -> Obj:
        kwargs: dict[str, Any] = {"params": {k: v for k, v in (params or {}).items() if v is not None}}
        if body is not None:
            kwargs["content"] = orjson.dumps(body)
            kwargs["headers"] = {"Content-Type": content_type}
        for attempt in range(len(self._clients)):
            http = self._http
            try:
                response = await http.request(method, path, **kwargs)
                break
            except httpx.TransportError as exc:
                # Another replica gets the request when it surely did not reach this one (no
                # connection) or repeating it is harmless (reads, preconditioned PUTs, deletes).
                again = isinstance(exc, httpx.ConnectError) or method in ("GET", "PUT", "DELETE")
                if self._fail_over(http) and again and attempt + 1 < len(self._clients):
                    continue
                raise ServiceUnavailable(f"cannot reach the API server at {http.base_url}: {exc}") from None
        for header in response.headers.get_list("warning"):
            for text in parse_warning_header(header):
                warn(text)
        if response.status_code >= 400:
            raise error_from_response(response.status_code, response.content)
        try:
            value = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise InternalError(f"the server answered {method} {path} with a body that is not JSON") from None
        if not isinstance(value, dict):
            raise InternalError(f"the server answered {method} {path} with a non-object")
        return value

    # ---- Client

    async def get(self, resource: str, name: str, namespace: str = "") -> Obj:
        r = resource_or_404(resource)
        return await self._request("GET", object_path(r, namespace, name))

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
        r = resource_or_404(resource)
        answer = await self._request("GET", r.base_path(namespace), params={
            "labelSelector": label_selector or None, "fieldSelector": field_selector or None,
            "limit": str(limit) if limit else None, "continue": continue_token or None})
        items = answer.get("items") or []
        if written_through is not None:
            items = [o for o in items if rv_of(o) <= written_through]
        if keep is not None:
            items = [o for o in items if keep(o)]
        meta = answer.get("metadata") or {}
        remaining = meta.get("remainingItemCount")
        return ObjectList(items, str(meta.get("resourceVersion") or ""), str(meta.get("continue") or ""),
                          remaining if isinstance(remaining, int) else None)

    async def create(self, resource: str, obj: Obj, namespace: str | None = None, dry_run: bool = False,
                     field_validation: FieldValidation | None = None) -> Obj:
        r = resource_or_404(resource)
        ns = None
        if r.namespaced:
            ns = namespace or str((obj.get("metadata") or {}).get("namespace") or "") or "default"
        return await self._request("POST", r.base_path(ns), body=obj,
                                   params={"dryRun": "All" if dry_run else None, "fieldValidation": field_validation})

    async def update(
        self, resource: str, obj: Obj, subresource: str | None = None, dry_run: bool = False,
        field_validation: FieldValidation | None = None,
    ) -> Obj:
        r = resource_or_404(resource)
        meta = obj.get("metadata") or {}
        ns = str(meta.get("namespace") or "") if r.namespaced else ""
        if r.namespaced and not ns:
            ns = "default"
        return await self._request("PUT", object_path(r, ns, str(meta.get("name") or ""), subresource), body=obj,
                                   params={"dryRun": "All" if dry_run else None, "fieldValidation": field_validation})

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
        r = resource_or_404(resource)
        manager = field_manager or (DEFAULT_FIELD_MANAGER if patch_type == "apply" else None)
        return await self._request("PATCH", object_path(r, namespace, name, subresource), body=patch,
                                   content_type=PATCH_CONTENT_TYPES[patch_type],
                                   params={"fieldManager": manager, "force": "true" if force else None,
                                           "dryRun": "All" if dry_run else None, "fieldValidation": field_validation})

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
        r = resource_or_404(resource)
        options: Obj = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if dry_run:
            options["dryRun"] = ["All"]
        if propagation_policy is not None:
            options["propagationPolicy"] = propagation_policy
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        if preconditions:
            options["preconditions"] = preconditions
        answer = await self._request("DELETE", object_path(r, namespace, name), body=options)
        return deleted_object(r, namespace, name, answer)

    async def watch(
        self,
        resource: str,
        namespace: str | None = None,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: float | None = None,
    ) -> AsyncIterator[EventBatch]:
        """Batches of events after ``resource_version`` (None: from now).

        Without a timeout the stream is resumed from the last seen resourceVersion whenever
        the server closes it (as client-go's reflector does); ERROR events raise.
        """
        r = resource_or_404(resource)
        rv = resource_version
        if rv in (None, ""):
            rv = (await self.list(resource, namespace, label_selector, field_selector)).resource_version
        failures = 0
        while True:
            params = {
                "watch": "true", "resourceVersion": rv, "allowWatchBookmarks": "true",
                "labelSelector": label_selector or None, "fieldSelector": field_selector or None,
                "timeoutSeconds": str(max(1, math.ceil(timeout_seconds))) if timeout_seconds else None,
            }
            http = self._http
            try:
                async with http.stream("GET", r.base_path(namespace),
                                             params={k: v for k, v in params.items() if v is not None},
                                             timeout=httpx.Timeout(30.0, read=None)) as response:
                    if response.status_code >= 400:
                        raise error_from_response(response.status_code, await response.aread())
                    failures = 0
                    buffer = b""
                    async for chunk in response.aiter_bytes():
                        raw_events, buffer = parse_event_lines(buffer + chunk)
                        batch: EventBatch = []
                        for raw in raw_events:
                            ev_type, obj = str(raw.get("type")), raw.get("object") or {}
                            if ev_type == "ERROR":
                                raise from_status(obj)
                            new_rv = (obj.get("metadata") or {}).get("resourceVersion")
                            if new_rv:
                                rv = str(new_rv)
                            if ev_type != "BOOKMARK":
                                batch.append(Event(ev_type, obj))
                        if batch:
                            yield batch
            except httpx.TransportError as exc:
                failures += 1
                if timeout_seconds is not None or failures >= WATCH_RECONNECT_ATTEMPTS * len(self._clients):
                    raise ServiceUnavailable(f"watch of {resource} interrupted: {exc}") from None
                if not (self._fail_over(http) and failures < len(self._clients)):
                    await poll_pause(WATCH_RECONNECT_DELAY)
                continue  # resumed from the last resourceVersion seen, on the next replica if any
            if timeout_seconds is not None:
                return

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
        path = object_path(RESOURCES["pods"], namespace, pod, "log")
        params = {
            "container": container, "follow": "true" if follow else None,
            "tailLines": str(tail_lines) if tail_lines is not None else None,
            "timestamps": "true" if timestamps else None, "previous": "true" if previous else None,
        }
        try:
            async with self._http.stream("GET", path, params={k: v for k, v in params.items() if v is not None},
                                         timeout=httpx.Timeout(30.0, read=None)) as response:
                if response.status_code >= 400:
                    raise error_from_response(response.status_code, await response.aread())
                async for chunk in response.aiter_bytes():
                    yield chunk
        except httpx.TransportError as exc:
            raise ServiceUnavailable(f"log stream of pod {pod} interrupted: {exc}") from None

    async def create_token(self, name: str, token_request: Obj, namespace: str = "default") -> Obj:
        path = object_path(RESOURCES["serviceaccounts"], namespace, name, "token")
        return await self._request("POST", path, body=token_request)

    async def close(self) -> None:
        for http in self._clients:
            await http.aclose()
