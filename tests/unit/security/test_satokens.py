"""Service-account JWTs: signature, issuer, audience and expiry, with a fake clock."""

from __future__ import annotations

import base64
import json
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from joblet.clock import FakeClock
from joblet.security.satokens import (
    DEFAULT_ISSUER,
    BoundObject,
    InvalidToken,
    TokenSigner,
    TokenVerifier,
    load_or_create_signing_key,
    split_subject,
)

KEY = ec.generate_private_key(ec.SECP256R1())  # what a new data dir's sa.key is
AUD = [DEFAULT_ISSUER]


def claims_of(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def issue(clock: FakeClock, seconds: int = 3600, audiences: list[str] = AUD, pod: BoundObject | None = None) -> str:
    token, expires = TokenSigner(KEY).sign("team", "robot", "sa-uid", audiences, clock.now(), seconds, pod)
    assert expires == clock.now() + timedelta(seconds=seconds)
    return token


def test_claims_are_upstreams() -> None:
    clock = FakeClock()
    token = issue(clock, pod=BoundObject("Pod", "p1", "pod-uid"))
    c = claims_of(token)
    now = int(clock.now().timestamp())
    assert c["iss"] == DEFAULT_ISSUER and c["sub"] == "system:serviceaccount:team:robot"
    assert c["aud"] == AUD and c["iat"] == now and c["nbf"] == now and c["exp"] == now + 3600
    assert c["kubernetes.io"] == {"namespace": "team", "serviceaccount": {"name": "robot", "uid": "sa-uid"},
                                  "pod": {"name": "p1", "uid": "pod-uid"}}
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header["alg"] == "ES256" and header["kid"]


def test_verify_accepts_own_token_and_reports_pod() -> None:
    clock = FakeClock()
    got = TokenVerifier([KEY.public_key()]).verify(issue(clock, pod=BoundObject("Pod", "p1", "u1")), AUD, clock.now())
    assert (got.namespace, got.name, got.uid, got.username) == ("team", "robot", "sa-uid",
                                                                "system:serviceaccount:team:robot")
    assert got.pod == BoundObject("Pod", "p1", "u1") and got.token_id


def test_expiry_with_upstreams_minute_of_leeway() -> None:
    clock = FakeClock()
    token = issue(clock, seconds=600)
    verifier = TokenVerifier([KEY.public_key()])
    clock.advance(600 + 59)
    verifier.verify(token, AUD, clock.now())
    clock.advance(2)
    with pytest.raises(InvalidToken, match="expired"):
        verifier.verify(token, AUD, clock.now())


def test_not_valid_before_issue() -> None:
    clock = FakeClock()
    token = issue(clock)
    clock.advance(-120)
    with pytest.raises(InvalidToken, match="not valid yet"):
        TokenVerifier([KEY.public_key()]).verify(token, AUD, clock.now())


def test_audience_must_intersect() -> None:
    clock = FakeClock()
    token = issue(clock, audiences=["vault"])
    with pytest.raises(InvalidToken, match="audiences"):
        TokenVerifier([KEY.public_key()]).verify(token, AUD, clock.now())
    assert TokenVerifier([KEY.public_key()]).verify(token, ["other", "vault"], clock.now()).audiences == ("vault",)


def test_other_key_or_issuer_or_tampering_is_rejected() -> None:
    clock = FakeClock()
    token = issue(clock)
    other = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(InvalidToken, match="signature"):
        TokenVerifier([other.public_key()]).verify(token, AUD, clock.now())
    with pytest.raises(InvalidToken, match="issuer"):
        TokenVerifier([KEY.public_key()], issuer="https://elsewhere").verify(token, AUD, clock.now())
    head, payload, sig = token.split(".")
    forged = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged["sub"] = "system:serviceaccount:kube-system:admin"
    body = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
    with pytest.raises(InvalidToken):
        TokenVerifier([KEY.public_key()]).verify(f"{head}.{body}.{sig}", AUD, clock.now())
    with pytest.raises(InvalidToken):
        TokenVerifier([KEY.public_key()]).verify("not-a-jwt", AUD, clock.now())


def test_alg_none_is_rejected() -> None:
    clock = FakeClock()
    payload = claims_of(issue(clock))
    enc = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()  # noqa: E731
    with pytest.raises(InvalidToken, match="algorithm"):
        TokenVerifier([KEY.public_key()]).verify(f"{enc({'alg': 'none'})}.{enc(payload)}.", AUD, clock.now())


def test_split_subject() -> None:
    assert split_subject("system:serviceaccount:ns:name") == ("ns", "name")
    assert split_subject("system:serviceaccount:ns") is None
    assert split_subject("admin") is None


def test_signing_key_is_created_once_private(tmp_path: Path) -> None:
    key = load_or_create_signing_key(tmp_path)
    path = tmp_path / "pki" / "sa.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    again = load_or_create_signing_key(tmp_path)
    assert again.private_numbers() == key.private_numbers()


def test_an_older_data_dirs_rsa_key_still_signs_rs256(tmp_path: Path) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "pki").mkdir(mode=0o700)
    (tmp_path / "pki" / "sa.key").write_bytes(rsa_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    loaded = load_or_create_signing_key(tmp_path)
    assert isinstance(loaded, rsa.RSAPrivateKey)
    clock = FakeClock()
    token, _ = TokenSigner(loaded).sign("team", "robot", "sa-uid", AUD, clock.now(), 600)
    assert json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))["alg"] == "RS256"
    assert TokenVerifier([loaded.public_key(), KEY.public_key()]).verify(token, AUD, clock.now()).name == "robot"
    with pytest.raises(InvalidToken, match="algorithm"):  # an RS256 token is never checked against the EC key
        TokenVerifier([KEY.public_key()]).verify(token, AUD, clock.now())


def test_other_curves_are_refused(tmp_path: Path) -> None:
    (tmp_path / "pki").mkdir(mode=0o700)
    (tmp_path / "pki" / "sa.key").write_bytes(ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    with pytest.raises(InvalidToken, match="P-256"):
        load_or_create_signing_key(tmp_path)
