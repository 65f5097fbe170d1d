"""Browser sessions for the dashboard: login, session cookie, CSRF tokens, security headers.

Why its own module: the Kubernetes API never accepts cookies, and a browser must never hold
the bearer token where a script can read it (SEC-14: cookies are not port-scoped, so any
page on another ``127.0.0.1`` port could read a non-HttpOnly cookie). The user pastes the
token once into the login form; the server verifies it with the
:class:`joblet.auth.Authenticator` it was given and keeps a server-side session (random id,
user, CSRF token, expiry). Sessions live in memory only: a restarted server asks everyone
to log in again. The browser holds only the session id, in an HttpOnly SameSite=Strict
cookie (Secure over HTTPS); state changes also need the session's CSRF token in a custom
header, which a cross-origin page can neither read nor send without a CORS preflight.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from starlette.requests import Request
from starlette.responses import Response

from joblet.auth import SYSTEM_MASTERS, Credentials, UserInfo
from joblet.clock import Clock

SESSION_COOKIE = "joblet_session"
#: pre-session cookie of the login form (double-submit, bound to the server by an HMAC)
LOGIN_COOKIE = "joblet_login"
CSRF_HEADER = "x-csrf-token"
SESSION_TTL = timedelta(hours=12)
MAX_SESSIONS = 10_000

#: sent on every dashboard response (SEC-15)
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@dataclass(frozen=True)
class Session:
    id: str
    user: UserInfo
    csrf: str
    expires: datetime


class SessionStore:
    """Sessions by id, in memory; expired ones are dropped when met and on every login."""

    def __init__(self, clock: Clock, ttl: timedelta = SESSION_TTL, limit: int = MAX_SESSIONS) -> None:
        self.clock = clock
        self.ttl = ttl
        self.limit = limit
        self._sessions: dict[str, Session] = {}
        #: signs the login form's pre-session token, so a cookie set by another port is useless
        self._login_key = secrets.token_bytes(32)

    def create(self, user: UserInfo) -> Session:
        now = self.clock.now()
        for sid in [sid for sid, s in self._sessions.items() if s.expires <= now]:
            del self._sessions[sid]
        while len(self._sessions) >= self.limit:  # oldest first (dicts keep insertion order)
            del self._sessions[next(iter(self._sessions))]
        session = Session(secrets.token_urlsafe(32), user, secrets.token_urlsafe(32), now + self.ttl)
        self._sessions[session.id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        session = self._sessions.get(session_id)
        if session is None:
            return None
        if session.expires <= self.clock.now():
            del self._sessions[session_id]
            return None
        return session

    def delete(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)

    def __len__(self) -> int:
        return len(self._sessions)

    # -- the login form's CSRF token ----------------------------------------------------------

    def new_login_nonce(self) -> str:
        return secrets.token_urlsafe(24)

    def login_csrf(self, nonce: str) -> str:
        """The form field that must accompany the ``joblet_login`` cookie holding ``nonce``."""
        return hmac.new(self._login_key, nonce.encode(), hashlib.sha256).hexdigest()

    def login_csrf_ok(self, nonce: str | None, field: str | None) -> bool:
        if not nonce or not field:
            return False
        return hmac.compare_digest(self.login_csrf(nonce).encode(), field.encode())


def csrf_ok(session: Session, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(session.csrf.encode(), (presented or "").encode())


def own_origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.headers.get('host', '')}"


def same_origin(request: Request) -> bool:
    """False when the browser says the request comes from another origin (Origin or
    Sec-Fetch-Site). A page on another port of the same host is another origin. Under
    ``Referrer-Policy: no-referrer`` browsers send ``Origin: null`` on form posts; then
    Sec-Fetch-Site must vouch for the request."""
    origin = request.headers.get("origin")
    fetch_site = request.headers.get("sec-fetch-site")
    if origin == "null" and fetch_site is None:
        return False
    if origin is not None and origin != "null" and origin != own_origin(request):
        return False
    return fetch_site in (None, "same-origin", "none")


def set_session_cookie(response: Response, name: str, value: str, *, secure: bool, max_age: int | None) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", secure=secure, httponly=True, samesite="strict")


def clear_cookie(response: Response, name: str, *, secure: bool) -> None:
    response.delete_cookie(name, path="/", secure=secure, httponly=True, samesite="strict")


def add_security_headers(response: Response) -> Response:
    for key, value in SECURITY_HEADERS.items():
        response.headers[key] = value
    return response


class SharedTokenAuthenticator:
    """Interim adapter: the single ``--token`` of a server without real authentication.

    ``api.server.create_app`` uses it until the request pipeline passes its own
    authenticator; with no token configured every presented token is accepted (the API
    is open then too). The user is an administrator (``system:masters``).
    """

    def __init__(self, token: str | None) -> None:
        self.token = token

    async def authenticate(self, credentials: Credentials) -> UserInfo | None:
        given = credentials.token
        if given is None:
            return None
        if self.token is not None and not hmac.compare_digest(given.encode(), self.token.encode()):
            return None
        return UserInfo("admin", (SYSTEM_MASTERS, "system:authenticated"))
