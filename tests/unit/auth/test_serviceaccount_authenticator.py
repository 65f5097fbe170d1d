"""ServiceAccountAuthenticator over a real registry (memory store), LocalClient and a fake clock."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from joblet.api.registry import Registry
from joblet.auth import Credentials, UserInfo
from joblet.auth.serviceaccount import ServiceAccountAuthenticator
from joblet.client.local import LocalClient
from joblet.clock import FakeClock
from joblet.security.satokens import TokenSigner, TokenVerifier
from joblet.store.memory import MemoryStore

Obj = dict[str, Any]
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


class Env:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.registry = Registry(MemoryStore(), self.clock, token_signer=TokenSigner(KEY))
        self.client = LocalClient(self.registry)
        self.authn = ServiceAccountAuthenticator(self.client, TokenVerifier([KEY.public_key()]), self.clock)
        self.registry.create("namespaces", {"metadata": {"name": "team"}})
        self.registry.create("serviceaccounts", {"metadata": {"name": "robot", "namespace": "team"}})

    def token(self, spec: Obj | None = None, sa: str = "robot") -> str:
        return str(self.registry.create_token("team", sa, {"spec": spec or {}})["status"]["token"])

    def who(self, token: str) -> UserInfo | None:
        return asyncio.run(self.authn.authenticate(Credentials(token=token)))





@pytest.fixture
def env() -> Env:
    return Env()


def test_token_authenticates_as_its_service_account(env: Env) -> None:
    user = env.who(env.token())
    sa = env.registry.get("serviceaccounts", "team", "robot")
    assert user is not None
    assert user.name == "system:serviceaccount:team:robot" and user.uid == sa["metadata"]["uid"]
    assert user.groups == ("system:serviceaccounts", "system:serviceaccounts:team", "system:authenticated")
    assert user.extra["authentication.kubernetes.io/credential-id"][0].startswith("JTI=")


def test_expired_token_is_rejected(env: Env) -> None:
    token = env.token({"expirationSeconds": 600})
    env.clock.advance(600 + 61)
    assert env.who(token) is None


def test_foreign_audience_is_rejected(env: Env) -> None:
    assert env.who(env.token({"audiences": ["vault"]})) is None
    vault = ServiceAccountAuthenticator(env.client, TokenVerifier([KEY.public_key()]), env.clock, ["vault"])
    assert asyncio.run(vault.authenticate(Credentials(token=env.token({"audiences": ["vault"]})))) is not None


def test_deleted_or_recreated_service_account_invalidates(env: Env) -> None:
    token = env.token()
    env.registry.delete("serviceaccounts", "team", "robot")
    assert env.who(token) is None
    env.registry.create("serviceaccounts", {"metadata": {"name": "robot", "namespace": "team"}})
    assert env.who(token) is None  # same name, new uid


def test_bound_pod_must_still_exist(env: Env) -> None:
    env.registry.create("pods", {"metadata": {"name": "p", "namespace": "team"},
                                 "spec": {"serviceAccountName": "robot", "nodeName": "n1",
                                          "containers": [{"name": "c", "image": "busybox"}]}})
    token = env.token({"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "p"}})
    user = env.who(token)
    assert user is not None and user.extra["authentication.kubernetes.io/pod-name"] == ("p",)
    # deletion with a grace period: still valid during it and for a minute after
    env.registry.delete("pods", "team", "p", grace_period_seconds=30)
    assert env.who(token) is not None
    env.clock.advance(30 + 61)
    assert env.who(token) is None
    env.registry.delete("pods", "team", "p", grace_period_seconds=0)
    assert env.who(token) is None


def test_other_tokens_are_not_ours(env: Env) -> None:
    assert env.who("") is None
    assert env.who("plain-bearer-token") is None
    assert asyncio.run(env.authn.authenticate(Credentials())) is None
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    foreign = TokenSigner(other).sign("team", "robot", "", ["https://kubernetes.default.svc.cluster.local"],
                                      env.clock.now(), 3600)[0]
    assert env.who(foreign) is None
