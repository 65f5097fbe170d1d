"""Authenticating service-account tokens: who a pod's bearer token says it is, if still true.

Why: a signature alone would let a token outlive its ServiceAccount or its Pod. Upstream's
service-account authenticator therefore checks, after signature, issuer, audience and expiry
(:class:`joblet.security.satokens.TokenVerifier`), that the ServiceAccount still exists with
the uid in the token and, for a token bound to a Pod, that the Pod still exists with that uid
and was not deleted more than a minute ago. Objects are read through :mod:`joblet.client`.

The user is ``system:serviceaccount:NS:NAME`` (uid: the ServiceAccount's) in the groups
``system:serviceaccounts``, ``system:serviceaccounts:NS`` and ``system:authenticated``, with
upstream's ``extra`` (``authentication.kubernetes.io/pod-name``, ``pod-uid``, ``credential-id``).
A token that is not a JWT of this issuer yields None, so the next authenticator in a chain
may try it; a well-formed token of this issuer that fails a check also yields None (→ 401).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta

from joblet.auth import AUTHENTICATED, Credentials, UserInfo
from joblet.client.interface import Client
from joblet.clock import Clock, parse_time_or_none
from joblet.errors import NotFound
from joblet.security.satokens import InvalidToken, ServiceAccountToken, TokenVerifier

log = logging.getLogger(__name__)

SERVICE_ACCOUNTS_GROUP = "system:serviceaccounts"
POD_NAME_EXTRA = "authentication.kubernetes.io/pod-name"
POD_UID_EXTRA = "authentication.kubernetes.io/pod-uid"
CREDENTIAL_ID_EXTRA = "authentication.kubernetes.io/credential-id"
#: a bound token stays valid this long after its pod's deletion started (upstream)
DELETED_POD_GRACE = timedelta(seconds=60)


def user_for(token: ServiceAccountToken) -> UserInfo:
    extra: dict[str, tuple[str, ...]] = {}
    if token.pod is not None:
        extra[POD_NAME_EXTRA] = (token.pod.name,)
        extra[POD_UID_EXTRA] = (token.pod.uid,)
    if token.token_id:
        extra[CREDENTIAL_ID_EXTRA] = (f"JTI={token.token_id}",)
    return UserInfo(token.username,
                    (SERVICE_ACCOUNTS_GROUP, f"{SERVICE_ACCOUNTS_GROUP}:{token.namespace}", AUTHENTICATED),
                    token.uid, extra)


class ServiceAccountAuthenticator:
    """A :class:`joblet.auth.Authenticator` for bound service-account tokens.

    ``audiences`` are the API's audiences (default: the verifier's issuer, as upstream's
    ``--api-audiences`` defaults to ``--service-account-issuer``).
    """

    def __init__(self, client: Client, verifier: TokenVerifier, clock: Clock,
                 audiences: Sequence[str] | None = None) -> None:
        self.client = client
        self.verifier = verifier
        self.clock = clock
        self.audiences = tuple(audiences or (verifier.issuer,))

    async def authenticate(self, credentials: Credentials) -> UserInfo | None:
        if not credentials.token or credentials.token.count(".") != 2:
            return None
        now = self.clock.now()
        try:
            token = self.verifier.verify(credentials.token, self.audiences, now)
        except InvalidToken as err:
            log.debug("service account token rejected: %s", err)
            return None
        try:
            sa = await self.client.get("serviceaccounts", token.name, token.namespace)
        except NotFound:
            log.debug("service account token of %s: ServiceAccount gone", token.username)
            return None
        if token.uid and str(sa["metadata"].get("uid") or "") != token.uid:
            log.debug("service account token of %s: ServiceAccount recreated", token.username)
            return None
        if token.pod is not None:
            try:
                pod = await self.client.get("pods", token.pod.name, token.namespace)
            except NotFound:
                return None
            meta = pod.get("metadata") or {}
            if str(meta.get("uid") or "") != token.pod.uid:
                return None
            deleted = parse_time_or_none(meta.get("deletionTimestamp"))
            if deleted is not None and deleted + DELETED_POD_GRACE < now:
                return None
        return user_for(token)
