"""The self reviews (SelfSubjectAccessReview, SelfSubjectRulesReview, SelfSubjectReview) answered
for a user by the RBAC authorizer over a real registry, the 403 wording, and the HTTP route
(POST only, 201, never stored) through the ASGI app."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from joblet.api.registry import Registry
from joblet.api.server import create_app
from joblet.auth import AlwaysAllow, Attributes, Credentials, UserInfo
from joblet.auth.bootstrap import default_rbac_objects
from joblet.auth.rbac import RBACAuthorizer
from joblet.auth.request import forbidden as forbidden_error
from joblet.auth.reviews import review
from joblet.client.local import LocalClient
from joblet.clock import FakeClock
from joblet.errors import BadRequest, Invalid, MethodNotAllowed
from joblet.store.memory import MemoryStore

Obj = dict[str, Any]
ALICE = UserInfo("alice", ("devs", "system:authenticated"), uid="u-1", extra={"scopes": ("a", "b")})


def client_with_policy() -> LocalClient:
    reg = Registry(MemoryStore(), FakeClock())
    for ns in ("default", "dev"):
        reg.create("namespaces", {"metadata": {"name": ns}})
    for plural, obj in default_rbac_objects():
        reg.create(plural, obj)
    reg.create("rolebindings", {
        "metadata": {"name": "alice-view", "namespace": "dev"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "User", "name": "alice"}]})
    return LocalClient(reg)


def ask(kind: str, body: Obj, user: UserInfo = ALICE, api_version: str = "") -> Obj:
    authz = RBACAuthorizer(client_with_policy())
    default_version = {"SelfSubjectReview": "authentication.k8s.io/v1"}.get(kind, "authorization.k8s.io/v1")
    return asyncio.run(review(kind, api_version or default_version, body, user, authz))


def access(verb: str, resource: str, group: str = "", namespace: str = "dev", **extra: str) -> Obj:
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {"verb": verb, "resource": resource, "group": group,
                                            "namespace": namespace, **extra}}}


@pytest.mark.parametrize(("body", "allowed"), [
    (access("get", "jobs", "batch"), True),
    (access("create", "jobs", "batch"), False),
    (access("get", "jobs", "batch", namespace="default"), False),
    (access("get", "pods", subresource="log"), True),
    (access("get", "secrets"), False),
    ({"spec": {"nonResourceAttributes": {"verb": "get", "path": "/version"}}}, True),
    ({"spec": {"nonResourceAttributes": {"verb": "get", "path": "/metrics"}}}, False),
])
def test_access_review_answers_for_the_user(body: Obj, allowed: bool) -> None:
    out = ask("SelfSubjectAccessReview", body)
    assert out["apiVersion"] == "authorization.k8s.io/v1" and out["kind"] == "SelfSubjectAccessReview"
    assert out["spec"] == body["spec"]
    assert out["status"]["allowed"] is allowed
    assert ("reason" in out["status"]) is allowed  # RBAC explains an allow, a plain denial has no reason


@pytest.mark.parametrize(("spec", "field", "message"), [
    ({}, "spec.resourceAttributes",
     "Invalid value: null: exactly one of nonResourceAttributes or resourceAttributes must be specified"),
    ({"resourceAttributes": {"verb": "get"}, "nonResourceAttributes": {"verb": "get", "path": "/"}},
     "spec.nonResourceAttributes", "cannot be specified in combination with resourceAttributes"),
])
def test_access_review_validation(spec: Obj, field: str, message: str) -> None:
    with pytest.raises(Invalid) as err:
        ask("SelfSubjectAccessReview", {"spec": spec})
    cause = err.value.details["causes"][0]
    assert cause["field"] == field and message in cause["message"]
    assert err.value.details["kind"] == "SelfSubjectAccessReview"


def test_rules_review_lists_the_namespace_rules() -> None:
    out = ask("SelfSubjectRulesReview", {"spec": {"namespace": "dev"}})
    status = out["status"]
    assert status["incomplete"] is False and "evaluationError" not in status
    granted = {(r, v) for rule in status["resourceRules"] for r in rule["resources"] for v in rule["verbs"]}
    assert ("jobs", "list") in granted and ("selfsubjectaccessreviews", "create") in granted
    assert ("jobs", "create") not in granted
    assert {"verbs": ["get"], "nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"]} \
        in status["nonResourceRules"]
    elsewhere = ask("SelfSubjectRulesReview", {"spec": {"namespace": "default"}})["status"]
    assert all("jobs" not in rule["resources"] for rule in elsewhere["resourceRules"])
    with pytest.raises(BadRequest, match="no namespace on request"):
        ask("SelfSubjectRulesReview", {"spec": {}})


def test_rules_review_of_always_allow_grants_everything() -> None:
    out = asyncio.run(review("SelfSubjectRulesReview", "authorization.k8s.io/v1", {"spec": {"namespace": "x"}},
                             ALICE, AlwaysAllow()))
    assert out["status"]["resourceRules"] == [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]


@pytest.mark.parametrize("version", ["authentication.k8s.io/v1", "authentication.k8s.io/v1beta1"])
def test_self_subject_review_tells_who_i_am(version: str) -> None:
    out = ask("SelfSubjectReview", {"apiVersion": version, "kind": "SelfSubjectReview"}, api_version=version)
    assert out["apiVersion"] == version
    assert out["status"] == {"userInfo": {"username": "alice", "uid": "u-1",
                                          "groups": ["devs", "system:authenticated"],
                                          "extra": {"scopes": ["a", "b"]}}}


def test_review_refuses_another_kind_in_the_body() -> None:
    with pytest.raises(BadRequest, match="does not match"):
        ask("SelfSubjectReview", {"kind": "Pod"})


@pytest.mark.parametrize(("attrs", "reason", "message", "details"), [
    (Attributes(ALICE, "create", True, "dev", "batch", "v1", "jobs"), "",
     'jobs.batch is forbidden: User "alice" cannot create resource "jobs" in API group "batch" '
     'in the namespace "dev"', {"group": "batch", "kind": "jobs"}),
    (Attributes(ALICE, "get", True, "dev", "", "v1", "pods", "log", "web"), "",
     'pods "web" is forbidden: User "alice" cannot get resource "pods/log" in API group "" '
     'in the namespace "dev"', {"kind": "pods", "name": "web"}),
    (Attributes(ALICE, "list", True, "", "", "v1", "nodes"), "RBAC: clusterrole.rbac.authorization.k8s.io "
     '"x" not found', 'nodes is forbidden: User "alice" cannot list resource "nodes" in API group "" at the '
     'cluster scope: RBAC: clusterrole.rbac.authorization.k8s.io "x" not found', {"kind": "nodes"}),
    (Attributes(ALICE, "get", False, path="/metrics"), "",
     'forbidden: User "alice" cannot get path "/metrics"', {}),
])
# upstream StatusDetails.group is omitempty: a core resource carries no group
def test_forbidden_error_is_worded_as_upstream(attrs: Attributes, reason: str, message: str, details: Obj) -> None:
    err = forbidden_error(attrs, reason)
    assert err.code == 403 and err.reason == "Forbidden"
    assert err.message == message
    assert err.details == details


# ----------------------------------------------------------------------------------- HTTP route

ADMIN = UserInfo("admin", ("system:masters", "system:authenticated"))
BEARER = {"Authorization": "Bearer t0ken"}


class OneToken:
    """An authenticator knowing one token, the admin's."""

    async def authenticate(self, credentials: Credentials) -> UserInfo | None:
        return ADMIN if credentials.token == "t0ken" else None


def test_reviews_over_http_are_created_never_stored() -> None:
    client = client_with_policy()
    app = create_app(client, authenticator=OneToken(), authorizer=RBACAuthorizer(client))

    async def main() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t",
                                     headers=BEARER) as http:
            resp = await http.post("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                                   json=access("create", "jobs", "batch"))
            assert resp.status_code == 201
            # the token holder is the admin (system:masters)
            assert resp.json()["status"]["allowed"] is True
            assert "cluster-admin" in resp.json()["status"]["reason"]
            who = await http.post("/apis/authentication.k8s.io/v1beta1/selfsubjectreviews", json={})
            assert who.status_code == 201 and who.json()["apiVersion"] == "authentication.k8s.io/v1beta1"
            listed = await http.get("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews")
            assert listed.status_code == 405
            disc = (await http.get("/apis/authorization.k8s.io/v1")).json()
            assert {r["name"]: r["verbs"] for r in disc["resources"]} == {
                "selfsubjectaccessreviews": ["create"], "selfsubjectrulesreviews": ["create"]}
            groups = {g["name"]: [v["version"] for v in g["versions"]]
                      for g in (await http.get("/apis")).json()["groups"]}
            assert groups["authentication.k8s.io"] == ["v1", "v1beta1"]
            assert groups["rbac.authorization.k8s.io"] == ["v1"]

    asyncio.run(main())
    with pytest.raises(MethodNotAllowed):
        asyncio.run(client.create("selfsubjectaccessreviews", access("get", "pods")))


def test_write_admission_sees_the_would_be_object_and_can_refuse() -> None:
    from joblet.errors import Forbidden

    client = client_with_policy()
    app = create_app(client, authenticator=OneToken(), authorizer=RBACAuthorizer(client))
    seen: list[tuple[str, str, Obj]] = []

    async def admit(user: UserInfo, plural: str, obj: Obj) -> None:
        seen.append((user.name, plural, obj))
        if obj["roleRef"]["name"] == "cluster-admin":
            raise Forbidden("no")

    app.state.api_server.admission["rolebindings"] = admit

    async def main() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t",
                                     headers=BEARER) as http:
            base = "/apis/rbac.authorization.k8s.io/v1/namespaces/dev/rolebindings"
            ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"}
            body: Obj = {"metadata": {"name": "b"}, "subjects": [{"kind": "User", "name": "x"}], "roleRef": ref}
            assert (await http.post(base, json=body)).status_code == 201
            refused = await http.post(base, json={**body, "metadata": {"name": "c"},
                                                  "roleRef": {**ref, "name": "cluster-admin"}})
            assert refused.status_code == 403
            patched = await http.patch(f"{base}/b", json={"subjects": [{"kind": "User", "name": "y"}]},
                                       headers={"content-type": "application/merge-patch+json"})
            assert patched.status_code == 200
        assert [(u, p, o["metadata"]["name"]) for u, p, o in seen] == [
            ("admin", "rolebindings", "b"), ("admin", "rolebindings", "c"), ("admin", "rolebindings", "b")]
        assert seen[2][2]["subjects"] == [{"kind": "User", "name": "y", "apiGroup": "rbac.authorization.k8s.io"}]
        names = [o["metadata"]["name"] for o in (await client.list("rolebindings", "dev")).items]
        assert sorted(names) == ["alice-view", "b"]  # the refused one was never written

    asyncio.run(main())
