"""Who is asking, and may they: the authentication and authorization contracts.

Why: Kubernetes puts authentication → authorization → admission in front of every request.
The HTTP server (:mod:`joblet.api.server`) and the dashboard call the Protocols below; the
implementations (token and client-certificate authenticators, service-account tokens, RBAC)
live in this package and read API objects only through :mod:`joblet.client`. Cryptography
that lower layers need too (certificates, token signing, token hashing) lives in
:mod:`joblet.security`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

#: upstream's well-known users and groups
SYSTEM_MASTERS = "system:masters"
AUTHENTICATED = "system:authenticated"
UNAUTHENTICATED = "system:unauthenticated"
ANONYMOUS_USER = "system:anonymous"


@dataclass(frozen=True)
class UserInfo:
    """An authenticated (or anonymous) user, as upstream's ``user.Info``."""

    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: dict[str, tuple[str, ...]] = field(default_factory=dict, hash=False, compare=False)


ANONYMOUS = UserInfo(ANONYMOUS_USER, (UNAUTHENTICATED,))


@dataclass(frozen=True)
class Credentials:
    """What a request presented: a bearer token and/or a verified client certificate subject."""

    token: str | None = None
    #: (common name, organizations) of a client certificate the TLS layer verified against --client-ca
    client_cert: tuple[str, tuple[str, ...]] | None = None


@dataclass(frozen=True)
class Attributes:
    """One request as the authorizer sees it (upstream ``authorizer.Attributes``).

    ``verb`` is the Kubernetes verb (get, list, watch, create, update, patch, delete,
    deletecollection) for resource requests, the lower-case HTTP method otherwise.
    """

    user: UserInfo
    verb: str
    resource_request: bool
    namespace: str = ""
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    path: str = ""


class Decision(NamedTuple):
    allowed: bool
    reason: str = ""


class Authenticator(Protocol):
    async def authenticate(self, credentials: Credentials) -> UserInfo | None:
        """The user these credentials prove, or None when they prove nobody (→ 401)."""


class Authorizer(Protocol):
    async def authorize(self, attributes: Attributes) -> Decision: ...


class AlwaysAllow:
    """The authorizer of in-process callers and of tests that are not about authorization."""

    async def authorize(self, attributes: Attributes) -> Decision:
        return Decision(True, "")
