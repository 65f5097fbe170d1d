"""The node agent's service-account token manager, as the kubelet's ``token.Manager``.

Why: a pod's projected ``serviceAccountToken`` is a real, expiring credential, bound to the
pod. The agent asks the API for it (TokenRequest through :mod:`joblet.client`), caches it per
pod, and hands out a fresh one once 80% of its lifetime has passed (or it is older than a
day), so a long-running pod always finds a valid token in its volume. Decisions read time only
from the injected clock (:func:`requires_refresh` is pure); the agent re-writes token volumes
whose token was refreshed (:meth:`joblet.node.agent.NodeAgent.refresh_tokens`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from joblet.client.interface import Client
from joblet.clock import Clock, parse_time
from joblet.errors import ApiError
from joblet.objects import name_of, namespace_of, uid_of

Obj = dict[str, Any]
#: refresh once this share of the lifetime has passed (kubelet: 20% before expiry)
REFRESH_AT = 0.8
#: and at the latest after this long (kubelet's maxTTL)
MAX_TTL = timedelta(hours=24)
DEFAULT_EXPIRATION_SECONDS = 3600


class TokenError(Exception):
    """The API refused (or could not be asked for) a token: the volume cannot be set up yet."""


@dataclass(frozen=True)
class IssuedToken:
    token: str
    issued_at: datetime
    expires: datetime


def requires_refresh(issued: IssuedToken, now: datetime) -> bool:
    lifetime = issued.expires - issued.issued_at
    return now >= issued.issued_at + lifetime * REFRESH_AT or now >= issued.issued_at + MAX_TTL


def token_request(pod: Obj, source: Obj) -> Obj:
    """The TokenRequest the kubelet sends for one ``serviceAccountToken`` projection."""
    audience = str(source.get("audience") or "")
    return {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {
        "audiences": [audience] if audience else [],
        "expirationSeconds": int(source.get("expirationSeconds") or DEFAULT_EXPIRATION_SECONDS),
        "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": name_of(pod), "uid": uid_of(pod)},
    }}


class TokenManager:
    def __init__(self, client: Client, clock: Clock) -> None:
        self.client = client
        self.clock = clock
        self._cache: dict[tuple[str, str, str, str, int], IssuedToken] = {}

    @staticmethod
    def _key(pod: Obj, source: Obj) -> tuple[str, str, str, str, int]:
        sa = str((pod.get("spec") or {}).get("serviceAccountName") or "default")
        return (uid_of(pod), namespace_of(pod), sa, str(source.get("audience") or ""),
                int(source.get("expirationSeconds") or DEFAULT_EXPIRATION_SECONDS))

    async def get(self, pod: Obj, source: Obj) -> str:
        """The pod's token for this projection: cached, or freshly requested when due."""
        key = self._key(pod, source)
        now = self.clock.now()
        cached = self._cache.get(key)
        if cached is not None and not requires_refresh(cached, now):
            return cached.token
        try:
            answer = await self.client.create_token(key[2], token_request(pod, source), key[1])
            status, spec = answer.get("status") or {}, answer.get("spec") or {}
            expires = parse_time(str(status["expirationTimestamp"]))
            seconds = int(spec.get("expirationSeconds") or key[4])
            issued = IssuedToken(str(status["token"]), expires - timedelta(seconds=seconds), expires)
        except ApiError as err:
            if cached is not None and now < cached.expires:
                return cached.token  # keep the still-valid token; the next sync tries again
            raise TokenError(f"failed to fetch token: {err}") from None
        except (KeyError, ValueError, TypeError) as err:
            raise TokenError(f"failed to fetch token: malformed TokenRequest answer ({err!r})") from None
        self._cache[key] = issued
        return issued.token

    def due(self, pod_uid: str) -> bool:
        """Whether some cached token of this pod needs refreshing now."""
        now = self.clock.now()
        return any(k[0] == pod_uid and requires_refresh(t, now) for k, t in self._cache.items())

    def forget(self, pod_uid: str) -> None:
        for key in [k for k in self._cache if k[0] == pod_uid]:
            del self._cache[key]
