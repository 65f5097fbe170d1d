"""Service-account tokens: signed, expiring, audience-bound JWTs, as the kube-apiserver issues.

Why: a pod's credential must prove which ServiceAccount (and which Pod) it belongs to without
the API server storing it, and must stop working when it expires or its pod is gone. Upstream
signs JWTs with the service-account key (RS256 for an RSA key, ES256 for an ECDSA P-256 one);
this module does the same with the data dir's ``D/pki/sa.key`` (ECDSA P-256, created on first
start, 0600 in a 0700 directory; an RSA key of an older data dir keeps working). ES256 because
every pod gets a token: an RSA-2048 signature costs ~1 ms of CPU, a P-256 one ~0.05 ms. Only signing and
verifying live here (the low layer every component may use); checking that the ServiceAccount
and the bound Pod still exist is :mod:`joblet.auth.serviceaccount`'s job, and the
``serviceaccounts/token`` subresource is the registry's.

Claims are upstream's: ``iss``, ``sub`` (``system:serviceaccount:NS:NAME``), ``aud`` (a list),
``exp``, ``iat``, ``nbf``, ``jti`` and ``kubernetes.io`` {namespace, serviceaccount{name,uid},
pod{name,uid}}. The header carries ``kid``, the unpadded base64url SHA-256 of the public key's
DER (SubjectPublicKeyInfo), as upstream's ``keyIDFromPublicKey``. Times come from the caller
(an injected clock); verification allows upstream's one minute of clock skew.
"""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

SA_KEY_FILE = "pki/sa.key"
#: the default issuer (and so the API's audience), as kubeadm and kind configure it
DEFAULT_ISSUER = "https://kubernetes.default.svc.cluster.local"
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
#: upstream's leeway for exp/nbf (go-jose DefaultLeeway)
LEEWAY = timedelta(minutes=1)
SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


def algorithm(key: SigningKey | PublicKey) -> str:
    """The JWS algorithm of a key, as upstream picks it: RS256 for RSA, ES256 for P-256."""
    return "RS256" if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey) else "ES256"


class InvalidToken(Exception):
    """The token is not a valid service-account token of this issuer (why, in the message)."""


def load_or_create_signing_key(data_dir: Path) -> SigningKey:
    """``D/pki/sa.key``: read it, or create it (ECDSA P-256, PEM PKCS#8, 0600) on first start."""
    path = Path(data_dir) / SA_KEY_FILE
    try:
        pem = path.read_bytes()
    except FileNotFoundError:
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(path.parent, 0o700)
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        try:
            os.link(tmp, path)  # never replace a key another process created meanwhile
        except FileExistsError:
            pem = path.read_bytes()
        finally:
            tmp.unlink()
    loaded = serialization.load_pem_private_key(pem, password=None)
    if isinstance(loaded, rsa.RSAPrivateKey) or (
            isinstance(loaded, ec.EllipticCurvePrivateKey) and isinstance(loaded.curve, ec.SECP256R1)):
        return loaded
    raise InvalidToken(f"{path} is neither an RSA nor an ECDSA P-256 private key")


def key_id(public_key: PublicKey) -> str:
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()


def subject(namespace: str, name: str) -> str:
    return f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}"


def split_subject(sub: str) -> tuple[str, str] | None:
    """``system:serviceaccount:NS:NAME`` → (NS, NAME); None for other subjects."""
    if not sub.startswith(SERVICE_ACCOUNT_PREFIX):
        return None
    namespace, sep, name = sub[len(SERVICE_ACCOUNT_PREFIX):].partition(":")
    if not sep or not namespace or not name or ":" in name:
        return None
    return namespace, name


@dataclass(frozen=True)
class BoundObject:
    """The object a token is bound to (a Pod): it dies with it."""

    kind: str
    name: str
    uid: str


@dataclass(frozen=True)
class ServiceAccountToken:
    """What a verified token says."""

    namespace: str
    name: str
    uid: str
    audiences: tuple[str, ...]
    issued_at: datetime
    expires: datetime
    token_id: str = ""
    pod: BoundObject | None = None

    @property
    def username(self) -> str:
        return subject(self.namespace, self.name)


def _epoch(when: datetime) -> int:
    return int(when.timestamp())


def _time(value: Any, claim: str) -> datetime:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise InvalidToken(f"token claim {claim!r} is missing or not a number")
    return datetime.fromtimestamp(value, UTC)


class TokenSigner:
    """Issues service-account tokens with one private key."""

    def __init__(self, key: SigningKey, issuer: str = DEFAULT_ISSUER) -> None:
        self.key = key
        self.issuer = issuer
        self.kid = key_id(key.public_key())
        self.algorithm = algorithm(key)

    def sign(self, namespace: str, name: str, uid: str, audiences: Sequence[str], now: datetime,
             expiration_seconds: int, pod: BoundObject | None = None) -> tuple[str, datetime]:
        """A token for ServiceAccount ``namespace/name`` and its expiry (second precision)."""
        issued = now.replace(microsecond=0)
        expires = issued + timedelta(seconds=expiration_seconds)
        private: dict[str, Any] = {"namespace": namespace, "serviceaccount": {"name": name, "uid": uid}}
        if pod is not None:
            private["pod"] = {"name": pod.name, "uid": pod.uid}
        claims = {
            "aud": list(audiences), "exp": _epoch(expires), "iat": _epoch(issued), "iss": self.issuer,
            "jti": str(uuid.uuid4()), "kubernetes.io": private, "nbf": _epoch(issued),
            "sub": subject(namespace, name),
        }
        return jwt.encode(claims, self.key, algorithm=self.algorithm, headers={"kid": self.kid}), expires


class TokenVerifier:
    """Checks signature, issuer, audience and validity window of service-account tokens."""

    def __init__(self, public_keys: Iterable[PublicKey], issuer: str = DEFAULT_ISSUER) -> None:
        self.keys = {key_id(k): k for k in public_keys}
        self.issuer = issuer

    def verify(self, token: str, audiences: Sequence[str], now: datetime) -> ServiceAccountToken:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as err:
            raise InvalidToken(f"not a JWT: {err}") from None
        alg = header.get("alg")
        kid = header.get("kid")
        keys = [self.keys[kid]] if isinstance(kid, str) and kid in self.keys else list(self.keys.values())
        keys = [k for k in keys if algorithm(k) == alg]  # an algorithm only with its own key type
        if not keys:
            raise InvalidToken(f"unexpected signing algorithm {alg!r}")
        claims: dict[str, Any] | None = None
        for key in keys:
            try:
                claims = jwt.decode(token, key, algorithms=[algorithm(key)], options={
                    "verify_exp": False, "verify_nbf": False, "verify_iat": False, "verify_aud": False,
                    "verify_iss": False})
                break
            except jwt.InvalidSignatureError:
                continue
            except jwt.PyJWTError as err:
                raise InvalidToken(f"invalid token: {err}") from None
        if claims is None:
            raise InvalidToken("invalid signature")
        return self._check(claims, audiences, now)

    def _check(self, claims: dict[str, Any], audiences: Sequence[str], now: datetime) -> ServiceAccountToken:
        if claims.get("iss") != self.issuer:
            raise InvalidToken(f"token issuer {claims.get('iss')!r} is not {self.issuer!r}")
        aud = claims.get("aud")
        token_audiences = (aud,) if isinstance(aud, str) else tuple(str(a) for a in aud or ())
        if not set(token_audiences) & set(audiences):
            raise InvalidToken("token audiences " + repr(list(token_audiences)) + " is invalid for the target audiences "
                               + repr(list(audiences)))
        expires = _time(claims.get("exp"), "exp")
        issued = _time(claims.get("iat"), "iat")
        not_before = _time(claims.get("nbf"), "nbf") if "nbf" in claims else issued
        if now > expires + LEEWAY:
            raise InvalidToken("service account token has expired")
        if now + LEEWAY < not_before:
            raise InvalidToken("service account token is not valid yet")
        names = split_subject(str(claims.get("sub") or ""))
        private = claims.get("kubernetes.io")
        if names is None or not isinstance(private, dict):
            raise InvalidToken("not a service account token")
        sa = private.get("serviceaccount") or {}
        if private.get("namespace") != names[0] or not isinstance(sa, dict) or sa.get("name") != names[1]:
            raise InvalidToken("service account token claims disagree with its subject")
        pod_claim = private.get("pod")
        pod = None
        if isinstance(pod_claim, dict):
            pod = BoundObject("Pod", str(pod_claim.get("name") or ""), str(pod_claim.get("uid") or ""))
        return ServiceAccountToken(names[0], names[1], str(sa.get("uid") or ""), token_audiences, issued, expires,
                                   str(claims.get("jti") or ""), pod)
