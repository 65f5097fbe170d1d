"""The node agent's token decisions: when to refresh, what to request, who owns the file."""

from __future__ import annotations

from datetime import timedelta

from joblet.clock import FakeClock
from joblet.node.tokens import IssuedToken, requires_refresh, token_request
from joblet.node.volumes import fs_user, token_owner, token_volume_names


def test_refresh_at_80_percent_or_after_a_day() -> None:
    now = FakeClock().now()
    hour = IssuedToken("t", now, now + timedelta(seconds=3600))
    assert not requires_refresh(hour, now + timedelta(seconds=2879))
    assert requires_refresh(hour, now + timedelta(seconds=2880))
    year = IssuedToken("t", now, now + timedelta(days=365))
    assert not requires_refresh(year, now + timedelta(hours=23))
    assert requires_refresh(year, now + timedelta(hours=24))


def test_token_request_is_bound_to_the_pod() -> None:
    pod = {"metadata": {"name": "p", "namespace": "ns", "uid": "u1"}, "spec": {"serviceAccountName": "robot"}}
    assert token_request(pod, {"path": "token", "expirationSeconds": 3607}) == {
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {
            "audiences": [], "expirationSeconds": 3607,
            "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "u1"}}}
    assert token_request(pod, {"audience": "vault"})["spec"]["audiences"] == ["vault"]
    assert token_request(pod, {"audience": "vault"})["spec"]["expirationSeconds"] == 3600


def test_fs_user_is_the_one_effective_run_as_user() -> None:
    def pod(pod_user: int | None, *users: int | None) -> dict[str, object]:
        return {"spec": {"securityContext": {} if pod_user is None else {"runAsUser": pod_user},
                         "containers": [{"name": f"c{i}", "securityContext": {} if u is None else {"runAsUser": u}}
                                        for i, u in enumerate(users)]}}

    assert fs_user(pod(1000, None, None)) == 1000
    assert fs_user(pod(None, 1000, 1000)) == 1000
    assert fs_user(pod(1000, 2000)) == 2000
    assert fs_user(pod(None, 1000, None)) is None  # one container runs as the image's user
    assert fs_user(pod(None, 1000, 2000)) is None
    assert token_owner(pod(None, None)) is None
    assert token_owner(pod(1000, None)) == (1000, -1)
    with_group = pod(None, None)
    with_group["spec"]["securityContext"] = {"fsGroup": 3000}  # type: ignore[index]
    assert token_owner(with_group) == (-1, 3000)


def test_token_volume_names() -> None:
    pod = {"spec": {"volumes": [
        {"name": "kube-api-access-abcde", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}},
        {"name": "cfg", "projected": {"sources": [{"configMap": {"name": "x"}}]}},
        {"name": "tmp", "emptyDir": {}}]}}
    assert token_volume_names(pod) == {"kube-api-access-abcde"}
