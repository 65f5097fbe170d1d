"""The Kubernetes-compatible HTTP API: a thin translation of REST requests onto the Client.

Why: kubectl and the official ``kubernetes`` Python client speak Kubernetes REST; joblet's
components speak the async :class:`joblet.client.interface.Client`. This module maps one onto
the other and owns nothing else: the registry does defaulting, validation, patching and
deletion semantics; :mod:`joblet.api.content` decodes bodies; :mod:`joblet.api.discovery` and
:mod:`joblet.api.openapi` serve the static documents. Path parsing and query-option parsing
are pure functions (:func:`parse_path`, :func:`delete_options`) beside the request handlers.

Errors: every :class:`joblet.errors.ApiError` becomes its ``Status`` JSON; anything else is
logged and answered with a 500 ``Status`` that carries no traceback.
"""

from __future__ import annotations

import asyncio
import hmac
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from joblet.api import content, discovery, openapi, tables
from joblet.api.resources import Resource
from joblet.client.interface import Client, Event, PropagationPolicy
from joblet.clock import Clock, RealClock, parse_time, rfc3339
from joblet.errors import (
    ApiError,
    BadRequest,
    InternalError,
    MethodNotAllowed,
    NotFound,
    Unauthorized,
)

log = logging.getLogger(__name__)

Obj = dict[str, Any]
#: Builds routes served before the API (the dashboard), given the API's request handler.
UiRoutes = Callable[[Callable[[Request], Awaitable[Response]]], Sequence[BaseRoute]]
PUBLIC_PATHS = frozenset({"/version", "/healthz"})
NOT_FOUND_MESSAGE = "the server could not find the requested resource"
DEFAULT_BOOKMARK_INTERVAL = 30.0
LOG_SETTLE_SECONDS = 0.3


# --------------------------------------------------------------------------- pure helpers

@dataclass(frozen=True)
class Target:
    """What a resource URL addresses."""

    resource: Resource
    namespace: str | None  # None: all namespaces (or a cluster-scoped resource)
    name: str | None = None
    subresource: str | None = None


def not_found_path() -> NotFound:
    return NotFound(NOT_FOUND_MESSAGE, {})


def parse_path(path: str) -> tuple[str, list[str]] | None:
    """``/apis/batch/v1/namespaces/d/jobs`` → ``("batch/v1", ["namespaces","d","jobs"])``."""
    segs = [s for s in path.split("/") if s]
    if len(segs) >= 2 and segs[0] == "api":
        return segs[1], segs[2:]
    if len(segs) >= 3 and segs[0] == "apis":
        return f"{segs[1]}/{segs[2]}", segs[3:]
    return None


def resolve_target(group_version: str, rest: list[str]) -> Target:
    """The resource, namespace, name and subresource of the part of a path after the group-version."""
    served = {r.plural: r for r in discovery.group_versions().get(group_version, [])}
    if not served or not rest:
        raise not_found_path()
    namespace: str | None = None
    if (len(rest) >= 3 and rest[0] == "namespaces" and rest[2] in served and served[rest[2]].namespaced):
        namespace, rest = rest[1], rest[2:]
    resource = served.get(rest[0])
    if resource is None or len(rest) > 3:
        raise not_found_path()
    name = rest[1] if len(rest) >= 2 else None
    sub = rest[2] if len(rest) == 3 else None
    if resource.namespaced and namespace is None and name is not None:
        raise not_found_path()
    if sub is not None and sub not in resource.subresources:
        raise not_found_path()
    return Target(resource, namespace, name, sub)


def truthy(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes")


def int_param(value: str | None, name: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(str(value))
    except ValueError:
        raise BadRequest(f'invalid value for {name}: "{value}"') from None


def delete_options(body: Obj | None, query: dict[str, str]) -> tuple[PropagationPolicy | None, int | None,
                                                                      dict[str, str] | None, bool]:
    """propagationPolicy, gracePeriodSeconds, preconditions and dryRun from a DELETE body and/or query."""
    body = body or {}
    policy: Any = body.get("propagationPolicy") or query.get("propagationPolicy")
    orphan = body.get("orphanDependents")
    if orphan is None and "orphanDependents" in query:
        orphan = truthy(query["orphanDependents"])
    if policy is None and orphan is not None:
        policy = "Orphan" if orphan else "Background"
    grace = body.get("gracePeriodSeconds")
    if grace is None:
        grace = int_param(query.get("gracePeriodSeconds"), "gracePeriodSeconds")
    preconditions = body.get("preconditions") or None
    dry_run = "All" in (body.get("dryRun") or []) or query.get("dryRun") == "All"
    chosen: PropagationPolicy | None = policy  # validated by the registry
    return chosen, (int(grace) if grace is not None else None), preconditions, dry_run


def with_type_meta(obj: Obj, r: Resource) -> Obj:
    if obj.get("kind") and obj.get("apiVersion"):
        return obj
    return {"apiVersion": r.api_version, "kind": r.kind, **obj}


def status_success(r: Resource, obj: Obj, code: int = 200) -> Obj:
    meta = obj.get("metadata") or {}
    return {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
        "details": {"name": meta.get("name", ""), "group": r.group, "kind": r.plural, "uid": meta.get("uid", "")},
    }


def still_present(r: Resource, obj: Obj) -> bool:
    """Whether an object returned by delete was only marked (finalizers, pod grace)."""
    meta = obj.get("metadata") or {}
    if meta.get("finalizers"):
        return True
    return r.plural == "pods" and int(meta.get("deletionGracePeriodSeconds") or 0) > 0


def warning_header(warnings: list[str]) -> str:
    return ", ".join('299 - "' + w.replace("\\", "\\\\").replace('"', '\\"') + '"' for w in warnings)


def supported_kwargs(fn: Any, wanted: dict[str, Any]) -> dict[str, Any]:
    """The optional keyword arguments (dry_run, force) that a transport method accepts.

    Options that are requested but not supported fail loudly instead of being ignored.
    """
    wanted = {k: v for k, v in wanted.items() if v}
    if not wanted:
        return {}
    params = inspect.signature(fn).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return wanted
    missing = [k for k in wanted if k not in params]
    if missing:
        raise BadRequest(f"this server does not support {', '.join(missing)} for this request")
    return wanted


# --------------------------------------------------------------------------- responses

def json_response(value: Any, status_code: int = 200, warnings: list[str] | None = None) -> Response:
    headers = {"Warning": warning_header(warnings)} if warnings else None
    return Response(orjson.dumps(value), status_code=status_code, media_type="application/json", headers=headers)


def error_response(err: ApiError) -> Response:
    return json_response(err.to_status(), err.code)


def event_line(ev_type: str, obj: Obj) -> bytes:
    return orjson.dumps({"type": ev_type, "object": obj}) + b"\n"


# --------------------------------------------------------------------------- the app

class ApiServer:
    """Request handlers; one instance per app, holding the client and options."""

    def __init__(self, client: Client, log_store: Any, version_minor: str, token: str | None, metrics: Any,
                 clock: Clock, bookmark_interval: float) -> None:
        self.client = client
        self.log_store = log_store
        self.version_minor = version_minor
        self.token = token
        self.metrics = metrics
        self.clock = clock
        self.bookmark_interval = bookmark_interval

    # ---- entry point

    async def handle(self, request: Request) -> Response:
        try:
            self.authorize(request)
            return await self.dispatch(request)
        except ApiError as err:
            return error_response(err)
        except Exception:
            log.exception("unhandled error serving %s %s", request.method, request.url.path)
            return error_response(InternalError("an error on the server prevented the request from succeeding"))

    def authorize(self, request: Request) -> None:
        if self.token is None or request.url.path in PUBLIC_PATHS:
            return
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), self.token.encode()):
            raise Unauthorized("Unauthorized")

    async def dispatch(self, request: Request) -> Response:
        path = request.url.path.rstrip("/") or "/"
        method = request.method
        static = self.static_document(path, request) if method == "GET" else None
        if static is not None:
            return static
        parsed = parse_path(path)
        if parsed is None:
            raise not_found_path()
        group_version, rest = parsed
        if not rest:
            doc = discovery.api_resource_list(group_version) if method == "GET" else None
            if doc is None:
                raise not_found_path()
            return json_response(doc)
        target = resolve_target(group_version, rest)
        return await self.resource_request(request, target)

    def static_document(self, path: str, request: Request) -> Response | None:
        if path == "/version":
            return json_response(discovery.version_info(self.version_minor))
        if path in ("/healthz", "/readyz", "/livez"):
            return Response(b"ok", media_type="text/plain")
        if path == "/api":
            host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
            return json_response(discovery.api_versions(host))
        if path == "/apis":
            return json_response(discovery.api_group_list())
        if path == "/openapi/v2":
            return Response(openapi.openapi_v2(), media_type="application/octet-stream")
        if path == "/openapi/v3":
            return Response(openapi.openapi_v3_index_bytes(), media_type="application/json")
        if path.startswith("/openapi/v3/"):
            doc_path = path[len("/openapi/v3/"):]
            gv = doc_path[len("api/"):] if doc_path.startswith("api/") else doc_path[len("apis/"):]
            if gv not in discovery.group_versions():
                raise not_found_path()
            return Response(openapi.openapi_v3_document_bytes(gv), media_type="application/json")
        if path == "/metrics" and self.metrics is not None:
            return self.metrics_response()
        segs = path.strip("/").split("/")
        if len(segs) == 2 and segs[0] == "apis":
            group = discovery.api_group(segs[1])
            if group is None:
                raise not_found_path()
            return json_response(group)
        return None

    def metrics_response(self) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        if callable(self.metrics) and not hasattr(self.metrics, "collect"):
            body = self.metrics()
            return Response(body if isinstance(body, bytes) else str(body).encode(), media_type=CONTENT_TYPE_LATEST)
        return Response(generate_latest(self.metrics), media_type=CONTENT_TYPE_LATEST)

    # ---- resources

    async def resource_request(self, request: Request, t: Target) -> Response:
        method = request.method
        if t.name is None:
            if method == "GET":
                if truthy(request.query_params.get("watch")):
                    return self.watch(request, t)
                return await self.list_objects(request, t)
            if method == "POST":
                if t.resource.namespaced and t.namespace is None:
                    raise MethodNotAllowed("the server does not allow this method on the requested resource")
                return await self.create(request, t)
            if method == "DELETE":
                return await self.delete_collection(request, t)
        elif t.subresource in (None, "status"):
            if method == "GET":
                return await self.get(request, t)
            if method == "PUT":
                return await self.update(request, t)
            if method == "PATCH":
                return await self.patch(request, t)
            if method == "DELETE" and t.subresource is None:
                return await self.delete(request, t)
        elif t.subresource == "log" and method == "GET":
            return await self.pod_log(request, t)
        elif t.subresource == "eviction" and method == "POST":
            return await self.evict(request, t)
        raise MethodNotAllowed("the server does not allow this method on the requested resource")

    def ns(self, t: Target) -> str:
        return t.namespace or "" if t.resource.namespaced else ""

    async def list_objects(self, request: Request, t: Target) -> Response:
        q = request.query_params
        result = await self.client.list(t.resource.plural, t.namespace if t.resource.namespaced else None,
                                        q.get("labelSelector") or None, q.get("fieldSelector") or None)
        items = [with_type_meta(o, t.resource) for o in result.items]
        if content.parse_accept(request.headers.get("accept")).table:
            return json_response(self.table(t.resource, items, result.resource_version,
                                            q.get("includeObject") or "Metadata"))
        return json_response({
            "kind": t.resource.list_kind, "apiVersion": t.resource.api_version,
            "metadata": {"resourceVersion": result.resource_version}, "items": items,
        })

    async def get(self, request: Request, t: Target) -> Response:
        assert t.name is not None
        obj = with_type_meta(await self.client.get(t.resource.plural, t.name, self.ns(t)), t.resource)
        if content.parse_accept(request.headers.get("accept")).table:
            rv = str((obj.get("metadata") or {}).get("resourceVersion") or "")
            return json_response(self.table(t.resource, [obj], rv, request.query_params.get("includeObject")
                                            or "Metadata"))
        return json_response(obj)

    def field_validation(self, request: Request, r: Resource, obj: Obj) -> tuple[Obj, list[str]]:
        """Unknown fields dropped; Strict → 400, Warn (default) → warnings, Ignore → silent."""
        mode = request.query_params.get("fieldValidation") or "Warn"
        if mode not in ("Ignore", "Warn", "Strict"):
            raise BadRequest(f"fieldValidation parameter unsupported: {mode}")
        pruned, unknown = openapi.prune_unknown_fields(r.api_version, r.kind, obj)
        if not unknown:
            return obj, []
        rendered = [f'unknown field "{p}"' for p in unknown]
        if mode == "Strict":
            raise BadRequest(f'{r.kind} in version "{r.version}" cannot be handled as a {r.kind}: '
                             f"strict decoding error: {', '.join(rendered)}")
        return pruned, rendered if mode == "Warn" else []

    async def create(self, request: Request, t: Target) -> Response:
        body = content.decode_object(await read_body(request), request.headers.get("content-type"))
        body.setdefault("apiVersion", t.resource.api_version)
        body.setdefault("kind", t.resource.kind)
        obj, warnings = self.field_validation(request, t.resource, body)
        dry_run = "All" in request.query_params.getlist("dryRun")
        created = await self.client.create(t.resource.plural, obj, t.namespace if t.resource.namespaced else None,
                                           dry_run=dry_run)
        return json_response(with_type_meta(created, t.resource), 201, warnings)

    def check_identity(self, t: Target, obj: Obj) -> Obj:
        meta = obj.get("metadata")
        if not isinstance(meta, dict):
            meta = {}
            obj["metadata"] = meta
        if meta.get("name") and meta["name"] != t.name:
            raise BadRequest(f"the name of the object ({meta['name']}) does not match the name on the URL ({t.name})")
        meta["name"] = t.name
        if t.resource.namespaced:
            if meta.get("namespace") and meta["namespace"] != t.namespace:
                raise BadRequest("the namespace of the provided object does not match the namespace sent on the request")
            meta["namespace"] = t.namespace
        return obj

    async def update(self, request: Request, t: Target) -> Response:
        body = content.decode_object(await read_body(request), request.headers.get("content-type"))
        body.setdefault("apiVersion", t.resource.api_version)
        body.setdefault("kind", t.resource.kind)
        obj, warnings = self.field_validation(request, t.resource, self.check_identity(t, body))
        extra = supported_kwargs(self.client.update,
                                 {"dry_run": "All" in request.query_params.getlist("dryRun")})
        updated = await self.client.update(t.resource.plural, obj, t.subresource, **extra)
        return json_response(with_type_meta(updated, t.resource), 200, warnings)

    async def patch(self, request: Request, t: Target) -> Response:
        assert t.name is not None
        q = request.query_params
        patch, patch_type = content.decode_patch(await read_body(request), request.headers.get("content-type"))
        warnings: list[str] = []
        if patch_type != "json":
            patch, warnings = self.field_validation(request, t.resource, patch)
        created = False
        if patch_type == "apply":
            try:
                await self.client.get(t.resource.plural, t.name, self.ns(t))
            except NotFound:
                created = True
        extra = supported_kwargs(self.client.patch, {"dry_run": "All" in q.getlist("dryRun"),
                                                     "force": truthy(q.get("force"))})
        result = await self.client.patch(t.resource.plural, t.name, patch, self.ns(t), patch_type,
                                         t.subresource, q.get("fieldManager"), **extra)
        return json_response(with_type_meta(result, t.resource), 201 if created else 200, warnings)

    async def delete(self, request: Request, t: Target) -> Response:
        assert t.name is not None
        body = content.decode_optional_object(await read_body(request), request.headers.get("content-type"))
        policy, grace, preconditions, dry_run = delete_options(body, dict(request.query_params))
        extra = supported_kwargs(self.client.delete, {"dry_run": dry_run})
        result = await self.client.delete(t.resource.plural, t.name, self.ns(t), policy, grace, preconditions,
                                          **extra)
        result = with_type_meta(result, t.resource)
        if t.resource.plural == "pods" or still_present(t.resource, result):
            return json_response(result)
        return json_response(status_success(t.resource, result))

    async def delete_collection(self, request: Request, t: Target) -> Response:
        q = request.query_params
        body = content.decode_optional_object(await read_body(request), request.headers.get("content-type"))
        policy, grace, _, dry_run = delete_options(body, dict(q))
        extra = supported_kwargs(self.client.delete, {"dry_run": dry_run})
        found = await self.client.list(t.resource.plural, t.namespace if t.resource.namespaced else None,
                                       q.get("labelSelector") or None, q.get("fieldSelector") or None)
        deleted: list[Obj] = []
        for item in found.items:
            meta = item.get("metadata") or {}
            try:
                deleted.append(with_type_meta(await self.client.delete(
                    t.resource.plural, meta.get("name", ""), meta.get("namespace", ""), policy, grace, None,
                    **extra), t.resource))
            except NotFound:
                continue
        return json_response({"kind": t.resource.list_kind, "apiVersion": t.resource.api_version,
                              "metadata": {"resourceVersion": found.resource_version}, "items": deleted})

    # ---- tables

    def table(self, r: Resource, objects: list[Obj], list_rv: str | None, include: str,
              column_definitions: bool = True) -> Obj:
        return tables.to_table(r.plural, objects, self.clock.now(), True, list_rv=list_rv or "",
                               include_object=include, include_column_definitions=column_definitions)

    # ---- watch

    def watch(self, request: Request, t: Target) -> Response:
        q = request.query_params
        as_table = content.parse_accept(request.headers.get("accept")).table
        timeout = int_param(q.get("timeoutSeconds"), "timeoutSeconds")
        stream = self.watch_stream(
            t, q.get("resourceVersion") or None, q.get("labelSelector") or None, q.get("fieldSelector") or None,
            timeout, truthy(q.get("allowWatchBookmarks")), as_table, q.get("includeObject") or "Metadata")
        return StreamingResponse(stream, media_type="application/json")

    async def watch_stream(self, t: Target, resource_version: str | None, label_selector: str | None,
                           field_selector: str | None, timeout: int | None, bookmarks: bool, as_table: bool,
                           include: str) -> AsyncIterator[bytes]:
        r = t.resource
        namespace = t.namespace if r.namespaced else None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout if timeout else None
        headers_sent = False

        def encode(ev_type: str, obj: Obj) -> bytes:
            nonlocal headers_sent
            if as_table and ev_type in ("ADDED", "MODIFIED", "DELETED"):
                rv = str((obj.get("metadata") or {}).get("resourceVersion") or "")
                table = self.table(r, [with_type_meta(obj, r)], rv, include, column_definitions=not headers_sent)
                headers_sent = True
                return event_line(ev_type, table)
            return event_line(ev_type, with_type_meta(obj, r) if ev_type != "ERROR" else obj)

        def bookmark(rv: str) -> bytes:
            return event_line("BOOKMARK", {"kind": r.kind, "apiVersion": r.api_version,
                                           "metadata": {"resourceVersion": rv}})

        last_rv = resource_version or "0"
        try:
            if resource_version in (None, "0"):
                listed = await self.client.list(r.plural, namespace, label_selector, field_selector)
                last_rv = listed.resource_version
                if listed.items:
                    yield b"".join(encode("ADDED", o) for o in listed.items)
            queue: asyncio.Queue[list[Event] | ApiError | None] = asyncio.Queue()
            pump = asyncio.create_task(self._pump(queue, r.plural, namespace, last_rv, label_selector,
                                                  field_selector))
        except ApiError as err:
            yield encode("ERROR", err.to_status())
            return
        try:
            if bookmarks:
                yield bookmark(last_rv)
            next_bookmark = loop.time() + self.bookmark_interval
            while True:
                now = loop.time()
                waits = [next_bookmark - now] if bookmarks else []
                if deadline is not None:
                    waits.append(deadline - now)
                wait = max(0.0, min(waits)) if waits else None
                try:
                    item = await asyncio.wait_for(queue.get(), wait)
                except TimeoutError:
                    if deadline is not None and loop.time() >= deadline:
                        return
                    yield bookmark(last_rv)
                    next_bookmark = loop.time() + self.bookmark_interval
                    continue
                if item is None:
                    return
                if isinstance(item, ApiError):
                    yield encode("ERROR", item.to_status())
                    return
                for ev in item:
                    rv = (ev.object.get("metadata") or {}).get("resourceVersion")
                    if rv:
                        last_rv = str(rv)
                yield b"".join(encode(ev.type, ev.object) for ev in item)
        finally:
            pump.cancel()

    async def _pump(self, queue: asyncio.Queue[list[Event] | ApiError | None], plural: str, namespace: str | None,
                    rv: str, label_selector: str | None, field_selector: str | None) -> None:
        try:
            async for batch in self.client.watch(plural, namespace, rv, label_selector, field_selector):
                await queue.put(batch)
            await queue.put(None)
        except ApiError as err:
            await queue.put(err)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("watch of %s failed", plural)
            await queue.put(InternalError("an error on the server prevented the watch from continuing"))

    # ---- pods/log

    async def pod_log(self, request: Request, t: Target) -> Response:
        assert t.name is not None and t.namespace is not None
        q = request.query_params
        container = q.get("container") or None
        follow = truthy(q.get("follow"))
        tail_lines = int_param(q.get("tailLines"), "tailLines")
        limit_bytes = int_param(q.get("limitBytes"), "limitBytes")
        since_seconds = int_param(q.get("sinceSeconds"), "sinceSeconds")
        since_time = parse_time(q["sinceTime"]) if q.get("sinceTime") else None
        if since_seconds is not None:
            since_time = self.clock.now() - timedelta(seconds=since_seconds)
        timestamps, previous = truthy(q.get("timestamps")), truthy(q.get("previous"))
        pod: Obj | None
        try:
            pod = await self.client.get("pods", t.name, t.namespace)
        except NotFound:
            if self.log_store is None:
                raise
            pod = None
        if pod is not None:
            container = choose_container(pod, container)

        uid = str((pod.get("metadata") or {}).get("uid") or "") if pod is not None else None

        def source() -> AsyncIterator[bytes]:
            if self.log_store is not None:
                it: AsyncIterator[bytes] = self.log_store.read(
                    t.namespace, t.name, container=container, follow=follow, tail_lines=tail_lines,
                    since_time=since_time, timestamps=timestamps, previous=previous, limit_bytes=limit_bytes,
                    **supported_kwargs(self.log_store.read, {"uid": uid}))
                return it
            return limited(self.client.read_log(t.namespace or "", t.name or "", container, follow, tail_lines,
                                                timestamps, previous), limit_bytes)

        if not follow:
            chunks = [chunk async for chunk in source()]
            return Response(b"".join(chunks), media_type="text/plain")
        return StreamingResponse(await start_stream(source(), LOG_SETTLE_SECONDS), media_type="text/plain")

    # ---- pods/eviction

    async def evict(self, request: Request, t: Target) -> Response:
        assert t.name is not None and t.namespace is not None
        body = content.decode_optional_object(await read_body(request), request.headers.get("content-type")) or {}
        options = body.get("deleteOptions") or {}
        pod = await self.client.get("pods", t.name, t.namespace)
        phase = (pod.get("status") or {}).get("phase")
        if phase not in ("Succeeded", "Failed") and not (pod.get("metadata") or {}).get("deletionTimestamp"):
            condition = {"type": "DisruptionTarget", "status": "True", "lastTransitionTime": rfc3339(self.clock.now()),
                         "reason": "EvictionByEvictionAPI", "message": "Eviction API: evicting"}
            await self.client.patch("pods", t.name, {"status": {"conditions": [condition]}}, t.namespace,
                                    "strategic", "status")
        policy, grace, preconditions, _ = delete_options(options, {})
        await self.client.delete("pods", t.name, t.namespace, policy, grace, preconditions)
        return json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                              "code": 201}, 201)


def choose_container(pod: Obj, container: str | None) -> str | None:
    """The container a log request means (upstream's rules and messages)."""
    spec = pod.get("spec") or {}
    names = [c.get("name") for c in spec.get("containers") or []]
    init_names = [c.get("name") for c in spec.get("initContainers") or []]
    pod_name = (pod.get("metadata") or {}).get("name", "")
    if container is not None:
        if container not in names and container not in init_names:
            raise BadRequest(f"container {container} is not valid for pod {pod_name}")
        return container
    default = ((pod.get("metadata") or {}).get("annotations") or {}).get("kubectl.kubernetes.io/default-container")
    if default in names:
        return str(default)
    if len(names) == 1:
        return str(names[0])
    if not names:
        return None
    raise BadRequest(f"a container name must be specified for pod {pod_name}, choose one of: "
                     f"[{' '.join(str(n) for n in names)}]")


_NOTHING = object()


async def start_stream(source: AsyncIterator[bytes], settle: float) -> AsyncIterator[bytes]:
    """Start a byte stream, raising its error if it fails within ``settle`` seconds.

    A follow stream may produce nothing for a long time, so the response cannot wait for a
    first chunk; but an immediate failure (no such pod or container) deserves a real Status.
    """
    queue: asyncio.Queue[Any] = asyncio.Queue()

    async def pump() -> None:
        try:
            async for chunk in source:
                await queue.put(chunk)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await queue.put(exc)
        else:
            await queue.put(None)

    task = asyncio.create_task(pump())
    try:
        first: Any = await asyncio.wait_for(queue.get(), settle)
    except TimeoutError:
        first = _NOTHING
    if isinstance(first, Exception):
        task.cancel()
        raise first

    async def rest() -> AsyncIterator[bytes]:
        try:
            item = first
            while True:
                if item is None:
                    return
                if isinstance(item, ApiError):
                    yield f"error: {item.message}\n".encode()
                    return
                if isinstance(item, Exception):
                    log.error("log stream failed: %r", item)
                    return
                if item is not _NOTHING:
                    yield item
                item = await queue.get()
        finally:
            task.cancel()

    return rest()


async def limited(chunks: AsyncIterator[bytes], limit: int | None) -> AsyncIterator[bytes]:
    """At most ``limit`` bytes of a stream (limitBytes)."""
    if limit is None:
        async for chunk in chunks:
            yield chunk
        return
    left = limit
    async for chunk in chunks:
        if left <= 0:
            break
        piece = chunk[:left]
        left -= len(piece)
        yield piece


async def read_body(request: Request) -> bytes:
    """The request body, refusing more than 3 MiB without reading it all."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit():
        content.check_size(int(declared))
    parts: list[bytes] = []
    size = 0
    async for part in request.stream():
        size += len(part)
        content.check_size(size)
        parts.append(part)
    return b"".join(parts)


def create_app(
    client: Client,
    *,
    log_store: Any = None,
    version_minor: str = "33",
    token: str | None = None,
    metrics: Any = None,
    clock: Clock | None = None,
    bookmark_interval: float = DEFAULT_BOOKMARK_INTERVAL,
    ui: UiRoutes | None = None,
) -> Starlette:
    """The ASGI app serving the Kubernetes API over ``client``.

    ``log_store`` (a :class:`joblet.node.logs.LogStore`) serves ``pods/log`` even for deleted
    pods; without it logs come from ``client.read_log``. ``token`` requires a bearer token on
    every path but ``/version`` and ``/healthz``. ``metrics`` is a :class:`joblet.metrics.JobletMetrics`
    (its registry is served at ``/metrics`` and every request is timed), a prometheus
    ``CollectorRegistry`` or a callable returning the exposition bytes. ``ui`` builds routes
    mounted before the API (the dashboard's ``/`` for HTML requests and ``/ui``), given the API
    handler as their fallback; the caller passes it because the API server sits below the
    dashboard in the layers and may not import it.
    """
    # Metrics: a JobletMetrics brings its registry and the request-latency middleware.
    from starlette.middleware import Middleware

    from joblet.metrics import ApiMetricsMiddleware, JobletMetrics

    middleware = [Middleware(ApiMetricsMiddleware, metrics=metrics)] if isinstance(metrics, JobletMetrics) else []
    registry = metrics.registry if isinstance(metrics, JobletMetrics) else metrics
    server = ApiServer(client, log_store, version_minor, token, registry, clock or RealClock(), bookmark_interval)
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    extra = list(ui(server.handle)) if ui is not None else []
    app = Starlette(routes=[*extra, Route("/{path:path}", server.handle, methods=methods)], middleware=middleware)
    app.state.api_server = server
    return app

