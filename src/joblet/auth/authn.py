"""Authenticators: who a request's credentials prove, as kube-apiserver's authenticator chain.

Why: the API server asks one :class:`joblet.auth.Authenticator`; this module provides the
token-file one (``D/tokens.json``, see :mod:`joblet.security.tokens`), the client-certificate
one (CN = user, O = groups, verified by the TLS layer against ``--client-ca``) and
:class:`Union`, which asks each in turn as upstream's ``union`` authenticator does. Every
authenticated user also gets the group ``system:authenticated``.

Adding an authenticator (e.g. service-account tokens) is one more entry in the list the
control plane passes to :class:`Union`.
"""

from __future__ import annotations

from collections.abc import Sequence

from joblet.auth import AUTHENTICATED, Authenticator, Credentials, UserInfo
from joblet.clock import Clock
from joblet.security.tokens import TokenStore


def with_authenticated(user: UserInfo) -> UserInfo:
    if AUTHENTICATED in user.groups:
        return user
    return UserInfo(user.name, (*user.groups, AUTHENTICATED), user.uid, user.extra)


class TokenFileAuthenticator:
    """Bearer tokens of ``joblet token create`` and the admin token (hashed in ``D/tokens.json``)."""

    def __init__(self, store: TokenStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    async def authenticate(self, credentials: Credentials) -> UserInfo | None:
        if not credentials.token:
            return None
        entry = self.store.lookup(credentials.token, self.clock.now())
        if entry is None:
            return None
        return UserInfo(entry.name, entry.groups)


class ClientCertAuthenticator:
    """A client certificate the TLS handshake verified: CN is the user, each O a group."""

    async def authenticate(self, credentials: Credentials) -> UserInfo | None:
        if credentials.client_cert is None:
            return None
        cn, orgs = credentials.client_cert
        if not cn:
            return None
        return UserInfo(cn, tuple(orgs))


class Union:
    """The first authenticator that recognises the credentials wins (upstream ``union.New``)."""

    def __init__(self, authenticators: Sequence[Authenticator]) -> None:
        self.authenticators = list(authenticators)

    async def authenticate(self, credentials: Credentials) -> UserInfo | None:
        for authenticator in self.authenticators:
            user = await authenticator.authenticate(credentials)
            if user is not None:
                return with_authenticated(user)
        return None
