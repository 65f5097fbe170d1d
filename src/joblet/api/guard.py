"""Browser protections in front of the API and the dashboard (SEC-02).

Why: a web page can make a browser send requests to ``https://127.0.0.1:6443``: "simple"
cross-origin requests (``text/plain``, form posts, no content type) go out without a CORS
preflight, and a DNS-rebinding page can make the browser treat the API as its own origin.
kube-apiserver is safe because it takes no ambient credentials and refuses such bodies; joblet
does the same and also checks where a request comes from. :class:`BrowserGuard` answers, in
this order:

* ``421 Misdirected Request`` when ``Host`` is not one of the server's names with its port
  (a DNS-rebinding page sends its own name);
* ``403`` when ``Origin`` is present and not the server's own origin, or
  ``Sec-Fetch-Site`` is ``cross-site``/``same-site``;
* ``415`` for POST/PUT/PATCH (and DELETE with a body) whose ``Content-Type`` a browser sends
  without a preflight (``text/plain``, ``application/x-www-form-urlencoded``,
  ``multipart/form-data``), or that has none and no ``Authorization`` header. (kube-apiserver
  reads a missing content type as JSON and the official Python client relies on it; a page
  cannot add ``Authorization`` to a cross-origin request without a preflight, so such a
  request is not a browser's.) The dashboard's own ``/ui`` routes are exempt from this one
  (they post forms and carry their own CSRF protection) but not from the others.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from joblet.api.content import BODY_TYPES
from joblet.errors import ApiError, Forbidden, MisdirectedRequest, UnsupportedMediaType

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SIMPLE_CONTENT_TYPES = frozenset({"text/plain", "application/x-www-form-urlencoded", "multipart/form-data", "*/*"})
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
#: paths whose forms the dashboard protects itself (CSRF tokens)
DASHBOARD_PREFIX = "/ui"


def allowed_hosts(names: Iterable[str], port: int) -> frozenset[str]:
    """The ``Host`` header values a client dialling one of ``names`` on ``port`` sends."""
    hosts: set[str] = set()
    for raw in names:
        name = raw.strip().strip("[]").lower()
        if not name:
            continue
        shown = f"[{name}]" if ":" in name else name
        hosts.add(f"{shown}:{port}")
        if port == 443:
            hosts.add(shown)
    return frozenset(hosts)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or []:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def check_request(scope: Scope, hosts: frozenset[str] | None) -> ApiError | None:
    """What is wrong with this request from a browser-safety point of view, if anything."""
    host = (_header(scope, b"host") or "").strip().lower()
    if hosts is not None and host not in hosts:
        return MisdirectedRequest(f"the server does not serve the host {host!r}")
    path = str(scope.get("path", ""))
    dashboard = path == DASHBOARD_PREFIX or path.startswith(DASHBOARD_PREFIX + "/")
    origin = _header(scope, b"origin")
    # A browser's form post under ``Referrer-Policy: no-referrer`` says ``Origin: null``; the
    # dashboard then decides by Sec-Fetch-Site and its login/CSRF tokens.
    if origin is not None and not (dashboard and origin.strip() == "null"):
        own = f"{scope.get('scheme', 'http')}://{host}"
        if origin.strip().lower().rstrip("/") != own:
            return Forbidden(f"cross-origin requests are not allowed (origin {origin!r})")
    fetch_site = (_header(scope, b"sec-fetch-site") or "").strip().lower()
    if fetch_site in ("cross-site", "same-site"):
        return Forbidden(f"cross-site requests are not allowed (Sec-Fetch-Site: {fetch_site})")
    method = str(scope.get("method", "GET")).upper()
    if dashboard:
        return None
    has_body = method in BODY_METHODS or (method == "DELETE" and (
        (_header(scope, b"content-length") or "0").strip() not in ("", "0")
        or _header(scope, b"transfer-encoding") is not None))
    if has_body:
        media = (_header(scope, b"content-type") or "").split(";", 1)[0].strip().lower()
        if media in SIMPLE_CONTENT_TYPES or (not media and _header(scope, b"authorization") is None):
            return UnsupportedMediaType("the body of the request was in an unknown format - accepted media types "
                                        "include: " + ", ".join(BODY_TYPES))
    return None


class BrowserGuard:
    """ASGI middleware applying :func:`check_request`; ``hosts`` None skips the Host check
    (an app served on an ephemeral test port)."""

    def __init__(self, app: ASGIApp, hosts: frozenset[str] | None = None) -> None:
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") == "http":
            problem = check_request(scope, self.hosts)
            if problem is not None:
                await send_status(send, problem)
                return
        await self.app(scope, receive, send)


async def send_status(send: Send, error: ApiError) -> None:
    import orjson

    body = orjson.dumps(error.to_status())
    await send({"type": "http.response.start", "status": error.code,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
