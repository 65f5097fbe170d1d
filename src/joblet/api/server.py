"""The Kubernetes-compatible HTTP API: a thin translation of REST requests onto the Client.

Why: kubectl and the official ``kubernetes`` Python client speak Kubernetes REST; joblet's
components speak the async :class:`joblet.client.interface.Client`. This module maps one onto
the other and owns nothing else: the registry does defaulting, validation, patching and
deletion semantics; :mod:`joblet.api.content` decodes bodies; :mod:`joblet.api.discovery` and
:mod:`joblet.api.openapi` serve the static documents. Path parsing and query-option parsing
are pure functions (:func:`parse_path`, :func:`delete_options`) beside the request handlers.

Every request is authenticated (:class:`joblet.auth.Authenticator`; no credentials at all is
``system:anonymous``, which only reaches :data:`PUBLIC_PATHS`, else 401) and then authorized
(:class:`joblet.auth.Authorizer` on the request's :class:`joblet.auth.Attributes`; denied → the
403 upstream answers). The user is left on ``request.state.user`` for handlers and the audit log.
Browser checks (Host, Origin, content type) run before, in :mod:`joblet.api.guard`.

Errors: every :class:`joblet.errors.ApiError` becomes its ``Status`` JSON; anything else is
logged and answered with a 500 ``Status`` that carries no traceback.

One module, on purpose (~950 lines): it is the single place that maps REST onto the Client,
and every handler shares the request plumbing (authn/authz, content negotiation, warnings,
errors); the pure parts are already apart (content, discovery, openapi, guard, tables).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import IO, Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from joblet.api import content, discovery, fieldvalidation, openapi, selectors, tables, warning
from joblet.api.resources import Resource
from joblet.api.strategy import strategy_for
from joblet.api.warning import warning_header
from joblet.auth import ANONYMOUS, Attributes, Authenticator, Authorizer, Credentials, UserInfo, reviews
from joblet.auth.request import forbidden, request_attributes
from joblet.client.interface import Client, Event, PropagationPolicy
from joblet.clock import Clock, RealClock, parse_time, rfc3339
from joblet.errors import (
    ApiError,
    BadRequest,
    Cause,
    InternalError,
    MethodNotAllowed,
    NotAcceptable,
    NotFound,
    Unauthorized,
    invalid,
)
from joblet.security.pki import subject_user

log = logging.getLogger(__name__)

Obj = dict[str, Any]
#: a write admission: (user, resource plural, the object as it would be stored) → raises to refuse
Admission = Callable[[UserInfo, str, Obj], Awaitable[None]]
#: what anonymous users may read (upstream's system:public-info-viewer)
PUBLIC_PATHS = frozenset({"/version", "/healthz", "/livez", "/readyz"})
#: Builds routes served before the API (the dashboard), given the API's request handler.
UiRoutes = Callable[[Callable[[Request], Awaitable[Response]]], Sequence[BaseRoute]]
NOT_FOUND_MESSAGE = "the server could not find the requested resource"
DEFAULT_BOOKMARK_INTERVAL = 30.0
INT64_MAX = 2**63 - 1
UINT64_MAX = 2**64 - 1
_INTEGER = re.compile(r"[+-]?[0-9]{1,30}")
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
    for what, segment in (("namespace", namespace), ("name", name)):
        if segment is not None:
            check_path_segment(what, segment)
    if resource.namespaced and namespace is None and name is not None:
        raise not_found_path()
    if sub is not None and sub not in resource.subresources:
        raise not_found_path()
    return Target(resource, namespace, name, sub)


def check_path_segment(what: str, value: str) -> None:
    """``path.IsValidPathSegmentName`` plus control characters: such a name can name nothing,
    and must never reach a file path (a NUL makes every ``open`` raise)."""
    if value in (".", ".."):
        raise BadRequest(f"{what} may not be {value!r}")
    if any(ord(ch) < 0x20 or ch == "\x7f" for ch in value) or "/" in value or "%" in value:
        raise BadRequest(f"invalid {what} {value!a}: may not contain '/', '%' or control characters")


def truthy(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes")


def int_param(value: str | None, name: str, minimum: int | None = None) -> int | None:
    """An int64 query parameter as Go's ``strconv.ParseInt`` reads it; anything else is a 400."""
    if value in (None, ""):
        return None
    text = str(value)
    if not _INTEGER.fullmatch(text) or not -INT64_MAX - 1 <= int(text) <= INT64_MAX:
        raise BadRequest(f'invalid value for {name}: "{ascii(text)[1:-1]}": must be a 64-bit integer')
    number = int(text)
    if minimum is not None and number < minimum:
        raise BadRequest(f"invalid value for {name}: {number}: must be greater than or equal to {minimum}")
    return number


def page_params(limit: str | None, token: str | None, resource_version: str | None) -> tuple[int | None, str | None]:
    """``limit`` and ``continue`` of a LIST, as upstream reads them: a limit of 0 or less means all;
    with ``resourceVersion`` set (``0``: "any", served whole from upstream's watch cache) and no
    ``continue``, the limit is ignored, so an informer's first list is one page as upstream's."""
    number = int_param(limit, "limit")
    if token:
        return (number if number and number > 0 else None), token
    if resource_version or not number or number <= 0:
        return None, None
    return number, None


def dry_run_param(values: Any) -> bool:
    """``dryRun``: absent, or exactly ``All`` (a list in DeleteOptions, repeated in a query)."""
    if values in (None, ""):
        return False
    items = values if isinstance(values, list) else [values]
    for item in items:
        if item != "All":
            shown = item if isinstance(item, str) else orjson.dumps(item).decode()
            raise BadRequest(f'dryRun: Unsupported value: {shown!a}: supported values: "All"')
    return bool(items)


def resource_version_param(value: str | None) -> str | None:
    """A watch ``resourceVersion``: empty, or the decimal uint64 the store hands out."""
    if value in (None, ""):
        return None
    text = str(value)
    if not text.isascii() or not text.isdigit() or len(text) > 30 or int(text) > UINT64_MAX:
        raise BadRequest(f'resourceVersion: Invalid value: "{ascii(text)[1:-1]}": invalid resource version')
    return text


def delete_options(body: Obj | None, query: dict[str, str]) -> tuple[PropagationPolicy | None, int | None,
                                                                      dict[str, str] | None, bool]:
    """propagationPolicy, gracePeriodSeconds, preconditions and dryRun from a DELETE body and/or query.

    The body is typed as upstream's ``DeleteOptions`` (a string grace period or a numeric
    dryRun is a 400, never an exception)."""
    body = body or {}
    openapi.check_schema_types(openapi.DELETE_OPTIONS_SCHEMA, "DeleteOptions", body)
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
    dry_run = dry_run_param(body.get("dryRun")) or dry_run_param(query.get("dryRun"))
    chosen: PropagationPolicy | None = policy  # validated by the registry
    return chosen, grace, preconditions, dry_run


def log_options(q: dict[str, str], now: Any) -> tuple[int | None, int | None, Any]:
    """tailLines, limitBytes and the since-time of a ``pods/log`` request (``ValidatePodLogOptions``)."""
    tail_lines = int_param(q.get("tailLines"), "tailLines")
    limit_bytes = int_param(q.get("limitBytes"), "limitBytes")
    since_seconds = int_param(q.get("sinceSeconds"), "sinceSeconds")
    causes: list[Cause] = []
    if tail_lines is not None and tail_lines < 0:
        causes.append(Cause("tailLines", f"Invalid value: {tail_lines}: must be greater than or equal to 0"))
    if limit_bytes is not None and limit_bytes < 1:
        causes.append(Cause("limitBytes", f"Invalid value: {limit_bytes}: must be greater than 0"))
    if since_seconds is not None and since_seconds < 1:
        causes.append(Cause("sinceSeconds", f"Invalid value: {since_seconds}: must be greater than 0"))
    if since_seconds is not None and q.get("sinceTime"):
        causes.append(Cause("", "at most one of `sinceTime` or `sinceSeconds` may be specified",
                            "FieldValueForbidden"))
    if causes:
        raise invalid("PodLogOptions", "", "", causes)
    since_time = None
    if q.get("sinceTime"):
        try:
            since_time = parse_time(q["sinceTime"])
        except (ValueError, OverflowError):
            raise BadRequest(f'invalid value for sinceTime: "{ascii(q["sinceTime"])[1:-1]}": '
                             "must be an RFC 3339 time") from None
    if since_seconds is not None:
        try:
            since_time = now - timedelta(seconds=since_seconds)
        except OverflowError:
            since_time = None  # further back than any log
    return tail_lines, limit_bytes, since_time


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


def delete_answer(r: Resource, obj: Obj) -> Obj:
    """What a DELETE answers: the object while it is only marked (finalizers) or when its
    strategy says so (a pod, also during its grace period), else a success ``Status``."""
    if strategy_for(r.plural).return_deleted_object or (obj.get("metadata") or {}).get("finalizers"):
        return obj
    return status_success(r, obj)


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

def request_credentials(request: Request) -> Credentials:
    """The bearer token and the verified client certificate's subject of a request."""
    token: str | None = None
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        token = value.strip()
    client_cert: tuple[str, tuple[str, ...]] | None = None
    tls = (request.scope.get("extensions") or {}).get("tls") or {}
    chain = tls.get("client_cert_chain") or []
    if chain:
        client_cert = subject_user(str(chain[0]).encode())
    return Credentials(token, client_cert)


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

    def __init__(self, client: Client, log_store: Any, version_minor: str, authenticator: Authenticator,
                 authorizer: Authorizer, metrics: Any, clock: Clock, bookmark_interval: float) -> None:
        self.client = client
        self.log_store = log_store
        self.version_minor = version_minor
        self.authenticator = authenticator
        self.authorizer = authorizer
        self.metrics = metrics
        self.clock = clock
        self.bookmark_interval = bookmark_interval
        #: write admission by resource (RBAC's escalation check): sees the user and the object as it
        #: would be stored (a dry run of the write) before the write
        self.admission: dict[str, Admission] = {}
        #: (cert PEM, key PEM) with which ``pods/log`` is proxied to a remote node's log endpoint
        #: (joblet.node.logserver); None: logs come from this process's log store only
        self.node_log_client: tuple[bytes, bytes] | None = None

    # ---- entry point

    async def handle(self, request: Request) -> Response:
        try:
            user = await self.authenticate(request)
            request.state.user = user
            await self.authorize(request, user)
            response = await self.dispatch(request)
            if request.method in ("POST", "PUT", "PATCH", "DELETE") and response.status_code < 400:
                persist = getattr(self.client, "persist", None)
                if persist is not None:
                    persist()  # durable before acknowledged (InsufficientStorage when the disk is full)
            return response
        except ApiError as err:
            return error_response(err)
        except Exception:
            log.exception("unhandled error serving %s %s", request.method, request.url.path)
            return error_response(InternalError("an error on the server prevented the request from succeeding"))

    async def authenticate(self, request: Request) -> UserInfo:
        """The requesting user; no credentials at all is anonymous, wrong ones are a 401."""
        credentials = request_credentials(request)
        if credentials.token is None and credentials.client_cert is None:
            if request.url.path in PUBLIC_PATHS:
                return ANONYMOUS
            raise Unauthorized("Unauthorized")
        user = await self.authenticator.authenticate(credentials)
        if user is None:
            raise Unauthorized("Unauthorized")
        return user

    async def authorize(self, request: Request, user: UserInfo) -> Attributes:
        attributes = request_attributes(user, request.method, request.url.path, request.url.query)
        if request.url.path in PUBLIC_PATHS:
            return attributes
        decision = await self.authorizer.authorize(attributes)
        if not decision.allowed:
            raise forbidden(attributes, decision.reason)
        return attributes

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
        if not t.resource.stored:  # create-only and computed: the self reviews
            if method == "POST" and t.name is None:
                return await self.review(request, t)
            raise MethodNotAllowed("the server does not allow this method on the requested resource")
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
        elif t.subresource == "finalize" and method == "PUT":
            return await self.update(request, t)
        elif t.subresource == "log" and method == "GET":
            return await self.pod_log(request, t)
        elif t.subresource == "eviction" and method == "POST":
            return await self.evict(request, t)
        elif t.subresource == "token" and method == "POST":
            return await self.create_token(request, t)
        raise MethodNotAllowed("the server does not allow this method on the requested resource")

    async def review(self, request: Request, t: Target) -> Response:
        body = content.decode_optional_object(await read_body(request), request.headers.get("content-type")) or {}
        user: UserInfo = getattr(request.state, "user", None) or ANONYMOUS
        answer = await reviews.review(t.resource.kind, t.resource.api_version, body, user, self.authorizer)
        return json_response(answer, 201)

    def ns(self, t: Target) -> str:
        return t.namespace or "" if t.resource.namespaced else ""

    async def list_objects(self, request: Request, t: Target) -> Response:
        q = request.query_params
        limit, token = page_params(q.get("limit"), q.get("continue"), q.get("resourceVersion"))
        result = await self.client.list(t.resource.plural, t.namespace if t.resource.namespaced else None,
                                        q.get("labelSelector") or None, q.get("fieldSelector") or None,
                                        limit=limit, continue_token=token)
        items = [with_type_meta(o, t.resource) for o in result.items]
        meta: Obj = {"resourceVersion": result.resource_version}
        if result.continue_token:
            meta["continue"] = result.continue_token
            if result.remaining is not None:
                meta["remainingItemCount"] = result.remaining
        accept = content.parse_accept(request.headers.get("accept"))
        if accept.table:
            table = self.table(t.resource, items, result.resource_version, q.get("includeObject") or "Metadata",
                               accept=accept)
            table["metadata"] = meta
            return json_response(table)
        if accept.metadata:
            if accept.as_kind != "PartialObjectMetadataList":
                raise NotAcceptable(f"you requested {accept.as_kind}, but the requested object is a list")
            return json_response({
                "kind": "PartialObjectMetadataList", "apiVersion": accept.api_version, "metadata": meta,
                "items": [tables.partial_object_metadata(o, accept.api_version, managed_fields=True) for o in items],
            })
        return json_response({
            "kind": t.resource.list_kind, "apiVersion": t.resource.api_version, "metadata": meta, "items": items,
        })

    async def get(self, request: Request, t: Target) -> Response:
        assert t.name is not None
        obj = with_type_meta(await self.client.get(t.resource.plural, t.name, self.ns(t)), t.resource)
        accept = content.parse_accept(request.headers.get("accept"))
        if accept.table:
            rv = str((obj.get("metadata") or {}).get("resourceVersion") or "")
            return json_response(self.table(t.resource, [obj], rv, request.query_params.get("includeObject")
                                            or "Metadata", accept=accept))
        if accept.metadata:
            if accept.as_kind != "PartialObjectMetadata":
                raise NotAcceptable(f"you requested {accept.as_kind}, but the requested object is not a list")
            return json_response(tables.partial_object_metadata(obj, accept.api_version, managed_fields=True))
        return json_response(obj)

    async def admitted(self, request: Request, t: Target, write: Callable[[bool], Awaitable[Obj]],
                       dry_run: bool) -> Obj:
        """``write(dry_run)``, after the resource's admission (if any) accepted its dry-run result."""
        admit = self.admission.get(t.resource.plural)
        if admit is not None and t.subresource is None:
            await admit(getattr(request.state, "user", None) or ANONYMOUS, t.resource.plural, await write(True))
        return await write(dry_run)

    async def create(self, request: Request, t: Target) -> Response:
        body = await content.decode_object_async(await read_body(request), request.headers.get("content-type"))
        body.setdefault("apiVersion", t.resource.api_version)
        body.setdefault("kind", t.resource.kind)
        mode = fieldvalidation.parse_mode(request.query_params.get("fieldValidation"))
        dry_run = dry_run_param(request.query_params.getlist("dryRun"))
        namespace = t.namespace if t.resource.namespaced else None
        with warning.collect() as warnings:
            created = await self.admitted(request, t, lambda dry: self.client.create(
                t.resource.plural, body, namespace, dry_run=dry, field_validation=mode), dry_run)
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
        body = await content.decode_object_async(await read_body(request), request.headers.get("content-type"))
        body.setdefault("apiVersion", t.resource.api_version)
        body.setdefault("kind", t.resource.kind)
        obj = self.check_identity(t, body)
        mode = fieldvalidation.parse_mode(request.query_params.get("fieldValidation"))
        with warning.collect() as warnings:
            updated = await self.admitted(request, t, lambda dry: self.client.update(
                t.resource.plural, obj, t.subresource, field_validation=mode,
                **supported_kwargs(self.client.update, {"dry_run": dry})),
                dry_run_param(request.query_params.getlist("dryRun")))
        return json_response(with_type_meta(updated, t.resource), 200, warnings)

    async def patch(self, request: Request, t: Target) -> Response:
        assert t.name is not None
        q = request.query_params
        patch, patch_type = await content.decode_patch_async(await read_body(request), request.headers.get("content-type"))
        mode = fieldvalidation.parse_mode(q.get("fieldValidation"))
        created = False
        if patch_type == "apply":
            try:
                await self.client.get(t.resource.plural, t.name, self.ns(t))
            except NotFound:
                created = True
        name = t.name
        with warning.collect() as warnings:
            result = await self.admitted(request, t, lambda dry: self.client.patch(
                t.resource.plural, name, patch, self.ns(t), patch_type, t.subresource, q.get("fieldManager"),
                field_validation=mode,
                **supported_kwargs(self.client.patch, {"dry_run": dry, "force": truthy(q.get("force"))})),
                dry_run_param(q.getlist("dryRun")))
        return json_response(with_type_meta(result, t.resource), 201 if created else 200, warnings)

    async def delete(self, request: Request, t: Target) -> Response:
        assert t.name is not None
        body = await content.decode_optional_object_async(await read_body(request), request.headers.get("content-type"))
        policy, grace, preconditions, dry_run = delete_options(body, dict(request.query_params))
        extra = supported_kwargs(self.client.delete, {"dry_run": dry_run})
        with warning.collect() as warnings:
            result = await self.client.delete(t.resource.plural, t.name, self.ns(t), policy, grace, preconditions,
                                              **extra)
        return json_response(delete_answer(t.resource, with_type_meta(result, t.resource)), warnings=warnings)

    async def delete_collection(self, request: Request, t: Target) -> Response:
        q = request.query_params
        body = await content.decode_optional_object_async(await read_body(request), request.headers.get("content-type"))
        policy, grace, _, dry_run = delete_options(body, dict(q))
        extra = supported_kwargs(self.client.delete, {"dry_run": dry_run})
        found = await self.client.list(t.resource.plural, t.namespace if t.resource.namespaced else None,
                                       q.get("labelSelector") or None, q.get("fieldSelector") or None)
        deleted: list[Obj] = []
        with warning.collect() as warnings:
            notice = strategy_for(t.resource.plural).default_propagation_warning
            if policy is None and notice:
                warning.warn(notice)  # also when nothing matched, as upstream
            for item in found.items:
                meta = item.get("metadata") or {}
                try:
                    deleted.append(with_type_meta(await self.client.delete(
                        t.resource.plural, meta.get("name", ""), meta.get("namespace", ""), policy, grace, None,
                        **extra), t.resource))
                except NotFound:
                    continue
        return json_response({"kind": t.resource.list_kind, "apiVersion": t.resource.api_version,
                              "metadata": {"resourceVersion": found.resource_version}, "items": deleted},
                             warnings=warnings)

    # ---- tables

    def table(self, r: Resource, objects: list[Obj], list_rv: str | None, include: str,
              column_definitions: bool = True, accept: content.Accept = content.Accept("Table")) -> Obj:
        return tables.to_table(r.plural, objects, self.clock.now(), True, list_rv=list_rv or "",
                               include_object=include, include_column_definitions=column_definitions,
                               api_version=accept.api_version)

    # ---- watch

    def watch(self, request: Request, t: Target) -> Response:
        q = request.query_params
        accept = content.parse_accept(request.headers.get("accept"))
        timeout = int_param(q.get("timeoutSeconds"), "timeoutSeconds", minimum=0)
        resource_version = resource_version_param(q.get("resourceVersion"))
        # Bad selectors are a 400 now, not an ERROR event inside a 200 stream.
        selectors.parse_label_selector(q.get("labelSelector") or "")
        selectors.parse_field_selector(q.get("fieldSelector") or None, t.resource.plural)
        stream = self.watch_stream(
            t, resource_version, q.get("labelSelector") or None, q.get("fieldSelector") or None,
            timeout, truthy(q.get("allowWatchBookmarks")), accept, q.get("includeObject") or "Metadata")
        return StreamingResponse(stream, media_type="application/json")

    async def watch_stream(self, t: Target, resource_version: str | None, label_selector: str | None,
                           field_selector: str | None, timeout: int | None, bookmarks: bool,
                           accept: content.Accept, include: str) -> AsyncIterator[bytes]:
        r = t.resource
        namespace = t.namespace if r.namespaced else None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout if timeout else None
        headers_sent = False

        def encode(ev_type: str, obj: Obj) -> bytes:
            nonlocal headers_sent
            if accept.table and ev_type in ("ADDED", "MODIFIED", "DELETED"):
                rv = str((obj.get("metadata") or {}).get("resourceVersion") or "")
                table = self.table(r, [with_type_meta(obj, r)], rv, include, column_definitions=not headers_sent,
                                   accept=accept)
                headers_sent = True
                return event_line(ev_type, table)
            if accept.metadata and ev_type in ("ADDED", "MODIFIED", "DELETED"):
                return event_line(ev_type, tables.partial_object_metadata(obj, accept.api_version,
                                                                          managed_fields=True))
            return event_line(ev_type, with_type_meta(obj, r) if ev_type != "ERROR" else obj)

        def bookmark(rv: str) -> bytes:
            kind, api_version = (("PartialObjectMetadata", accept.api_version) if accept.metadata
                                 else (r.kind, r.api_version))
            return event_line("BOOKMARK", {"kind": kind, "apiVersion": api_version,
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
        if container is not None:
            check_path_segment("container", container)
        follow = truthy(q.get("follow"))
        tail_lines, limit_bytes, since_time = log_options(dict(q), self.clock.now())
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
        remote = await self.remote_pod_log(pod, container, uid or "", follow, tail_lines, limit_bytes, since_time,
                                           timestamps, previous)

        def source() -> AsyncIterator[bytes]:
            if remote is not None:
                return remote
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

    async def remote_pod_log(self, pod: Obj | None, container: str | None, uid: str, follow: bool,
                             tail_lines: int | None, limit_bytes: int | None, since_time: Any, timestamps: bool,
                             previous: bool) -> AsyncIterator[bytes] | None:
        """The log of a pod bound to a remote node, proxied to that node's log endpoint as
        kube-apiserver proxies to the kubelet; None when the pod's node publishes none."""
        node_name = ((pod or {}).get("spec") or {}).get("nodeName")
        if self.node_log_client is None or pod is None or not node_name or not container:
            return None
        from joblet.client.nodelogs import open_remote_log

        try:
            node = await self.client.get("nodes", str(node_name))
        except NotFound:
            return None
        params = {k: v for k, v in {
            "follow": "true" if follow else "", "timestamps": "true" if timestamps else "",
            "previous": "true" if previous else "", "uid": uid,
            "tailLines": "" if tail_lines is None else str(tail_lines),
            "limitBytes": "" if limit_bytes is None else str(limit_bytes),
            "sinceTime": rfc3339(since_time) if since_time is not None else "",
        }.items() if v}
        meta = pod.get("metadata") or {}
        return await open_remote_log(node, self.node_log_client, str(meta.get("namespace") or ""),
                                     str(meta.get("name") or ""), container, params)

    # ---- pods/eviction

    async def evict(self, request: Request, t: Target) -> Response:
        assert t.name is not None and t.namespace is not None
        body = await content.decode_optional_object_async(await read_body(request), request.headers.get("content-type")) or {}
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


    # ---- serviceaccounts/token

    async def create_token(self, request: Request, t: Target) -> Response:
        assert t.name is not None and t.namespace is not None
        body = content.decode_optional_object(await read_body(request), request.headers.get("content-type"))
        answer = await self.client.create_token(t.name, body or {}, t.namespace)
        return json_response(answer, 201)


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
    authenticator: Authenticator,
    authorizer: Authorizer,
    log_store: Any = None,
    version_minor: str = "33",
    metrics: Any = None,
    clock: Clock | None = None,
    bookmark_interval: float = DEFAULT_BOOKMARK_INTERVAL,
    allowed_hosts: frozenset[str] | None = None,
    audit_log: IO[str] | None = None,
    access_log: IO[str] | None = None,
    ui: UiRoutes | None = None,
    node_log_client: tuple[bytes, bytes] | None = None,
) -> Starlette:
    """The ASGI app serving the Kubernetes API over ``client``.

    ``node_log_client`` (a client certificate and key, see joblet.node.logserver) lets
    ``pods/log`` of a pod on a remote node (``joblet node``) be proxied to that node.

    ``authenticator`` and ``authorizer`` guard every request (see the module docstring).
    ``log_store`` (a :class:`joblet.node.logs.LogStore`) serves ``pods/log`` even for deleted
    pods; without it logs come from ``client.read_log``. ``metrics`` is a :class:`joblet.metrics.JobletMetrics`
    (its registry is served at ``/metrics`` and every request is timed), a prometheus
    ``CollectorRegistry`` or a callable returning the exposition bytes. ``allowed_hosts``: the
    ``Host`` values served (:func:`joblet.api.guard.allowed_hosts`; None: any). ``audit_log`` /
    ``access_log``: open files for :class:`joblet.auth.audit.RequestLog`. ``ui`` builds routes
    mounted before the API (the dashboard's ``/`` for HTML requests and ``/ui``), given the API
    handler as their fallback; the caller passes it because the API server sits below the
    dashboard in the layers and may not import it.
    """
    # Metrics: a JobletMetrics brings its registry and the request-latency middleware.
    from starlette.middleware import Middleware

    from joblet.api.guard import BrowserGuard
    from joblet.auth.audit import RequestLog
    from joblet.metrics import ApiMetricsMiddleware, JobletMetrics

    clock = clock or RealClock()
    middleware = [Middleware(RequestLog, clock=clock, audit=audit_log, access=access_log)]
    if isinstance(metrics, JobletMetrics):
        middleware.append(Middleware(ApiMetricsMiddleware, metrics=metrics,
                                     served={r.plural: r.subresources for rs in discovery.group_versions().values() for r in rs}))
    middleware.append(Middleware(BrowserGuard, hosts=allowed_hosts))
    registry = metrics.registry if isinstance(metrics, JobletMetrics) else metrics
    server = ApiServer(client, log_store, version_minor, authenticator, authorizer, registry, clock,
                       bookmark_interval)
    server.node_log_client = node_log_client
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    extra = list(ui(server.handle)) if ui is not None else []
    app = Starlette(routes=[*extra, Route("/{path:path}", server.handle, methods=methods)], middleware=middleware)
    app.state.api_server = server
    return app
