"""Audit and access logs: who did what, as kube-apiserver's ``--audit-log-path`` records it.

Why: with authentication on, "who created this pod?" has an answer, and an operator needs it
written down. :class:`RequestLog` is ASGI middleware around the whole app that, once a
response is complete, writes

* to the audit log (``--audit-log FILE``) one JSON line per request: an ``audit.k8s.io/v1``
  ``Event`` at level ``Metadata``, stage ``ResponseComplete`` (auditID, requestURI, verb,
  user, sourceIPs, userAgent, objectRef, responseStatus.code, requestReceivedTimestamp,
  stageTimestamp), with the latency in the ``apiserver.latency.k8s.io/total`` annotation as
  upstream writes for slow requests;
* to the access log (``--access-log FILE`` or ``-`` for stdout) one plain line:
  ``TIME USER VERB PATH STATUS BYTES LATENCY``.

The user is the one the API handler authenticated (``scope["state"]["user"]``, i.e.
``request.state.user``), else ``system:anonymous``. Files are opened 0600, appended to.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO, Any

import orjson

from joblet.auth import ANONYMOUS, UserInfo
from joblet.auth.request import request_attributes
from joblet.clock import Clock, rfc3339_micro

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def open_log(target: str) -> IO[str]:
    """``-`` is stdout; anything else a file appended to, created 0600."""
    if target == "-":
        return sys.stdout
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    return os.fdopen(fd, "a", buffering=1)


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers") or []:
        if key == name:
            return bytes(value).decode("latin-1")
    return ""


def audit_event(scope: Scope, user: UserInfo, code: int, received: str, completed: str,
                latency: float, audit_id: str) -> dict[str, Any]:
    """One audit.k8s.io/v1 Event (level Metadata, stage ResponseComplete)."""
    path = str(scope.get("path", ""))
    query = bytes(scope.get("query_string") or b"").decode("latin-1")
    attrs = request_attributes(user, str(scope.get("method", "GET")), path, query)
    client = scope.get("client")
    event: dict[str, Any] = {
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": audit_id,
        "stage": "ResponseComplete", "requestURI": path + (f"?{query}" if query else ""), "verb": attrs.verb,
        "user": {"username": user.name, "groups": list(user.groups)},
        "sourceIPs": [str(client[0])] if client else [],
        "userAgent": _header(scope, b"user-agent"),
    }
    if attrs.resource_request:
        ref = {"resource": attrs.resource, "namespace": attrs.namespace, "name": attrs.name,
               "apiGroup": attrs.api_group, "apiVersion": attrs.api_version, "subresource": attrs.subresource}
        event["objectRef"] = {k: v for k, v in ref.items() if v}
    event["responseStatus"] = {"metadata": {}, "code": code}
    event["requestReceivedTimestamp"] = received
    event["stageTimestamp"] = completed
    event["annotations"] = {"apiserver.latency.k8s.io/total": f"{latency * 1000:.3f}ms"}
    return event


class RequestLog:
    """ASGI middleware writing the audit and/or access log line of every HTTP request."""

    def __init__(self, app: ASGIApp, clock: Clock, audit: IO[str] | None = None,
                 access: IO[str] | None = None) -> None:
        self.app = app
        self.clock = clock
        self.audit = audit
        self.access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http" or (self.audit is None and self.access is None):
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})  # shared with request.state, where the handler puts the user
        received = self.clock.now()
        start = self.clock.monotonic()
        code = 0
        size = 0

        async def send_wrapper(message: Message) -> None:
            nonlocal code, size
            if message.get("type") == "http.response.start":
                code = int(message.get("status", 0))
            elif message.get("type") == "http.response.body":
                size += len(message.get("body") or b"")
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except BaseException:
            code = code or 500
            raise
        finally:
            self.write(scope, code, size, received, self.clock.monotonic() - start)

    def write(self, scope: Scope, code: int, size: int, received: Any, latency: float) -> None:
        state = scope.get("state") or {}
        user = state.get("user") if isinstance(state.get("user"), UserInfo) else ANONYMOUS
        assert isinstance(user, UserInfo)
        completed = self.clock.now()
        if self.audit is not None:
            event = audit_event(scope, user, code, rfc3339_micro(received), rfc3339_micro(completed), latency,
                                str(uuid.uuid4()))
            self.audit.write(orjson.dumps(event).decode() + "\n")
            self.audit.flush()
        if self.access is not None:
            query = bytes(scope.get("query_string") or b"").decode("latin-1")
            path = str(scope.get("path", "")) + (f"?{query}" if query else "")
            attrs = request_attributes(user, str(scope.get("method", "GET")), str(scope.get("path", "")), query)
            self.access.write(f"{rfc3339_micro(completed)} {user.name} {attrs.verb} {path} {code} {size} "
                              f"{latency * 1000:.1f}ms\n")
            self.access.flush()
