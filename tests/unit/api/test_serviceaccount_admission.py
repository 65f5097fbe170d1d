"""ServiceAccount admission on pod create and the serviceaccounts/token subresource (registry)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from joblet.api.registry import Registry
from joblet.clock import FakeClock, parse_time
from joblet.errors import BadRequest, Conflict, Forbidden, Invalid, NotFound
from joblet.security.satokens import DEFAULT_ISSUER, BoundObject, TokenSigner, TokenVerifier
from joblet.store.memory import MemoryStore
from support import builders

Obj = dict[str, Any]
MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def reg(clock: FakeClock) -> Registry:
    r = Registry(MemoryStore(), clock, token_signer=TokenSigner(KEY))
    r.create("namespaces", {"metadata": {"name": "default"}})
    r.create("serviceaccounts", {"metadata": {"name": "default", "namespace": "default"}})
    return r


def pod(name: str = "p", **spec: Any) -> Obj:
    return builders.pod(name, initContainers=[builders.container("true", name="init")], **spec)


def test_pod_gets_default_service_account_and_projected_token_volume(reg: Registry) -> None:
    created = reg.create("pods", pod())
    spec = created["spec"]
    assert spec["serviceAccountName"] == "default" and spec["serviceAccount"] == "default"
    [volume] = spec["volumes"]
    assert volume["name"].startswith("kube-api-access-") and len(volume["name"]) == len("kube-api-access-") + 5
    assert volume["projected"] == {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace",
                                    "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
    ]}
    for ctr in (*spec["initContainers"], *spec["containers"]):
        assert ctr["volumeMounts"] == [{"name": volume["name"], "readOnly": True, "mountPath": MOUNT}]


def test_pods_of_one_controller_share_the_token_volume_name_others_get_random_ones(reg: Registry) -> None:
    def volume_name(name: str, owner_uid: str | None) -> str:
        obj = pod(name)
        if owner_uid is not None:
            obj["metadata"]["ownerReferences"] = [{"apiVersion": "batch/v1", "kind": "Job", "name": "j",
                                                   "uid": owner_uid, "controller": True}]
        return str(reg.create("pods", obj)["spec"]["volumes"][0]["name"])

    first, second, other = volume_name("a", "uid-1"), volume_name("b", "uid-1"), volume_name("c", "uid-2")
    assert first == second != other
    assert len({volume_name(f"free-{i}", None) for i in range(4)}) > 1  # no controller: random, as upstream
    assert all(n.startswith("kube-api-access-") and len(n) == len("kube-api-access-") + 5 for n in (first, other))


def test_opt_out_by_pod_or_service_account(reg: Registry) -> None:
    assert "volumes" not in reg.create("pods", pod("off", automountServiceAccountToken=False))["spec"]
    reg.create("serviceaccounts", {"metadata": {"name": "quiet"}, "automountServiceAccountToken": False})
    quiet = reg.create("pods", pod("quiet", serviceAccountName="quiet"))
    assert "volumes" not in quiet["spec"] and quiet["spec"]["serviceAccountName"] == "quiet"
    # the pod's own setting wins over its ServiceAccount's
    loud = reg.create("pods", pod("loud", serviceAccountName="quiet", automountServiceAccountToken=True))
    assert loud["spec"]["volumes"][0]["name"].startswith("kube-api-access-")


def test_existing_mount_at_the_path_is_kept(reg: Registry) -> None:
    p = pod("own", volumes=[{"name": "mine", "emptyDir": {}}])
    p["spec"]["containers"][0]["volumeMounts"] = [{"name": "mine", "mountPath": MOUNT}]
    created = reg.create("pods", p)
    assert created["spec"]["containers"][0]["volumeMounts"] == [{"name": "mine", "mountPath": MOUNT}]
    # the init container still needs the token: one kube-api-access volume is added for it
    names = [v["name"] for v in created["spec"]["volumes"]]
    assert names[0] == "mine" and names[1].startswith("kube-api-access-")


def test_unknown_service_account_is_forbidden(reg: Registry) -> None:
    with pytest.raises(Forbidden, match='error looking up service account default/ghost: serviceaccount "ghost" not found'):
        reg.create("pods", pod(serviceAccountName="ghost"))


def test_missing_default_service_account_does_not_block_pods(clock: FakeClock) -> None:
    r = Registry(MemoryStore(), clock)
    r.create("namespaces", {"metadata": {"name": "default"}})
    assert r.create("pods", pod())["spec"]["volumes"][0]["name"].startswith("kube-api-access-")


# ---------------------------------------------------------------- TokenRequest


def verify(token: str, clock: FakeClock, audiences: list[str] | None = None) -> Any:
    return TokenVerifier([KEY.public_key()]).verify(token, audiences or [DEFAULT_ISSUER], clock.now())


def test_token_request_defaults_and_claims(reg: Registry, clock: FakeClock) -> None:
    answer = reg.create_token("default", "default", {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest"})
    assert answer["kind"] == "TokenRequest" and answer["apiVersion"] == "authentication.k8s.io/v1"
    assert answer["spec"] == {"audiences": [DEFAULT_ISSUER], "expirationSeconds": 3600}
    assert parse_time(answer["status"]["expirationTimestamp"]) == clock.now() + timedelta(seconds=3600)
    got = verify(answer["status"]["token"], clock)
    sa = reg.get("serviceaccounts", "default", "default")
    assert (got.namespace, got.name, got.uid, got.pod) == ("default", "default", sa["metadata"]["uid"], None)


def test_token_request_bound_to_pod_and_audience(reg: Registry, clock: FakeClock) -> None:
    p = reg.create("pods", pod("worker"))
    answer = reg.create_token("default", "default", {"spec": {
        "audiences": ["vault"], "expirationSeconds": 600,
        "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "worker", "uid": p["metadata"]["uid"]}}})
    got = verify(answer["status"]["token"], clock, ["vault"])
    assert got.pod == BoundObject("Pod", "worker", p["metadata"]["uid"])
    assert got.expires == clock.now() + timedelta(seconds=600)


@pytest.mark.parametrize(("seconds", "message"), [
    (599, "spec.expirationSeconds: Invalid value: 599: may not specify a duration less than 10 minutes"),
    ((1 << 32) + 1, "may not specify a duration larger than 2^32 seconds"),
    ("1h", "spec.expirationSeconds: Invalid value: '1h': must be an integer"),
])
def test_token_request_expiration_is_validated(reg: Registry, seconds: Any, message: str) -> None:
    with pytest.raises(Invalid, match=message.replace("^", r"\^")) as err:
        reg.create_token("default", "default", {"spec": {"expirationSeconds": seconds}})
    assert err.value.message.startswith('TokenRequest.authentication.k8s.io "default" is invalid: ')
    assert err.value.details["causes"][0]["field"] == "spec.expirationSeconds"


def test_token_request_errors_as_upstream(reg: Registry) -> None:
    with pytest.raises(NotFound, match='serviceaccounts "ghost" not found'):
        reg.create_token("default", "ghost", {})
    with pytest.raises(NotFound, match='pods "nope" not found'):
        reg.create_token("default", "default", {"spec": {"boundObjectRef": {"kind": "Pod", "apiVersion": "v1",
                                                                            "name": "nope"}}})
    with pytest.raises(BadRequest, match="cannot bind token to object of type apps/v1, Kind=Deployment"):
        reg.create_token("default", "default", {"spec": {"boundObjectRef": {
            "kind": "Deployment", "apiVersion": "apps/v1", "name": "d"}}})
    reg.create("pods", pod("p1"))
    with pytest.raises(Conflict, match=r"the UID in the bound object reference \(stale\) does not match"):
        reg.create_token("default", "default", {"spec": {"boundObjectRef": {
            "kind": "Pod", "apiVersion": "v1", "name": "p1", "uid": "stale"}}})
    reg.create("serviceaccounts", {"metadata": {"name": "other"}})
    with pytest.raises(BadRequest, match='cannot bind token for serviceaccount "other" to pod running with '
                                         'serviceaccount "default"'):
        reg.create_token("default", "other", {"spec": {"boundObjectRef": {"kind": "Pod", "apiVersion": "v1",
                                                                          "name": "p1"}}})
    with pytest.raises(BadRequest):
        reg.create_token("default", "default", {"kind": "Pod"})
    with pytest.raises(BadRequest):
        reg.create_token("default", "default", [1, 2])


def test_registry_without_signer_makes_a_throwaway_key(clock: FakeClock) -> None:
    r = Registry(MemoryStore(), clock)
    r.create("namespaces", {"metadata": {"name": "default"}})
    r.create("serviceaccounts", {"metadata": {"name": "default", "namespace": "default"}})
    token = r.create_token("default", "default", {})["status"]["token"]
    TokenVerifier([r.token_signer.key.public_key()]).verify(token, [DEFAULT_ISSUER], clock.now())
