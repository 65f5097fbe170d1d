"""RBAC decisions, table-driven: rule matching, subjects, bindings and upstream's reasons; then
the authorizer over a real registry through the in-process client (informer caches included)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from joblet.api.registry import Registry
from joblet.auth import Attributes, UserInfo
from joblet.auth.bootstrap import default_rbac_objects
from joblet.auth.rbac import RBACAuthorizer, Snapshot, applies_to, authorize, rule_allows, rules_for
from joblet.client.local import LocalClient
from joblet.clock import FakeClock
from joblet.controllers.runtime import Informer
from joblet.store.memory import MemoryStore

Obj = dict[str, Any]
ALICE = UserInfo("alice", ("devs", "system:authenticated"))


def res(verb: str, resource: str, group: str = "", namespace: str = "default", sub: str = "",
        name: str = "", user: UserInfo = ALICE) -> Attributes:
    return Attributes(user, verb, True, namespace, group, "v1", resource, sub, name)


def url(verb: str, path: str, user: UserInfo = ALICE) -> Attributes:
    return Attributes(user, verb, False, path=path)


def rule(verbs: list[str], groups: list[str] | None = None, resources: list[str] | None = None,
         names: list[str] | None = None, urls: list[str] | None = None) -> Obj:
    out: Obj = {"verbs": verbs}
    if groups is not None:
        out["apiGroups"] = groups
    if resources is not None:
        out["resources"] = resources
    if names is not None:
        out["resourceNames"] = names
    if urls is not None:
        out["nonResourceURLs"] = urls
    return out


@pytest.mark.parametrize(("attrs", "r", "allowed"), [
    # verbs
    (res("get", "pods"), rule(["get"], [""], ["pods"]), True),
    (res("list", "pods"), rule(["get"], [""], ["pods"]), False),
    (res("delete", "pods"), rule(["*"], [""], ["pods"]), True),
    # api groups
    (res("get", "jobs", "batch"), rule(["get"], [""], ["jobs"]), False),
    (res("get", "jobs", "batch"), rule(["get"], ["batch"], ["jobs"]), True),
    (res("get", "jobs", "batch"), rule(["get"], ["*"], ["jobs"]), True),
    (res("get", "jobs", "batch"), rule(["get"], None, ["jobs"]), False),
    # resources and subresources
    (res("get", "pods"), rule(["get"], [""], ["*"]), True),
    (res("get", "pods", sub="log"), rule(["get"], [""], ["pods"]), False),
    (res("get", "pods", sub="log"), rule(["get"], [""], ["pods/log"]), True),
    (res("get", "pods", sub="log"), rule(["get"], [""], ["*/log"]), True),
    (res("get", "pods", sub="status"), rule(["get"], [""], ["*/log"]), False),
    (res("get", "pods"), rule(["get"], [""], ["*/log"]), False),
    (res("get", "pods", sub="log"), rule(["get"], [""], ["*"]), True),
    (res("get", "jobs", "batch", sub="status"), rule(["get"], ["batch"], ["*/status"]), True),
    # resource names: a named rule never matches a request without a name (list, create)
    (res("get", "pods", name="a"), rule(["get"], [""], ["pods"], ["a", "b"]), True),
    (res("get", "pods", name="c"), rule(["get"], [""], ["pods"], ["a", "b"]), False),
    (res("list", "pods"), rule(["list"], [""], ["pods"], ["a"]), False),
    (res("get", "pods", name="c"), rule(["get"], [""], ["pods"], []), True),
    # a resource rule never matches a path, a URL rule never a resource
    (url("get", "/healthz"), rule(["get"], [""], ["*"]), False),
    (res("get", "pods"), rule(["get"], urls=["*"]), False),
    # non-resource URLs: exact, "*" and a trailing-* prefix
    (url("get", "/healthz"), rule(["get"], urls=["/healthz"]), True),
    (url("get", "/healthz/etcd"), rule(["get"], urls=["/healthz"]), False),
    (url("get", "/healthz/etcd"), rule(["get"], urls=["/healthz/*"]), True),
    (url("get", "/healthzz"), rule(["get"], urls=["/healthz*"]), True),
    (url("get", "/version"), rule(["get"], urls=["*"]), True),
    (url("post", "/version"), rule(["get"], urls=["*"]), False),
    (url("get", "/apis"), rule(["get"], urls=["/apis/*"]), False),
])
def test_rule_allows(attrs: Attributes, r: Obj, allowed: bool) -> None:
    assert rule_allows(attrs, r) is allowed


KCM = UserInfo("system:kube-controller-manager", ("system:authenticated",))
SA = UserInfo("system:serviceaccount:team:builder", ("system:serviceaccounts", "system:serviceaccounts:team"))


@pytest.mark.parametrize(("user", "subject", "namespace", "applies"), [
    (ALICE, {"kind": "User", "name": "alice"}, "", True),
    (ALICE, {"kind": "User", "name": "bob"}, "", False),
    (ALICE, {"kind": "Group", "name": "devs"}, "", True),
    (ALICE, {"kind": "Group", "name": "alice"}, "", False),
    (ALICE, {"kind": "Group", "name": "system:authenticated"}, "", True),
    (SA, {"kind": "ServiceAccount", "name": "builder", "namespace": "team"}, "", True),
    (SA, {"kind": "ServiceAccount", "name": "builder"}, "team", True),  # the binding's namespace
    (SA, {"kind": "ServiceAccount", "name": "builder"}, "", False),  # cluster binding: namespace required
    (SA, {"kind": "ServiceAccount", "name": "builder", "namespace": "other"}, "team", False),
    (SA, {"kind": "User", "name": "system:serviceaccount:team:builder"}, "", True),
    (ALICE, {"kind": "Robot", "name": "alice"}, "", False),
])
def test_applies_to(user: UserInfo, subject: Obj, namespace: str, applies: bool) -> None:
    assert applies_to(user, subject, namespace) is applies


def meta(name: str, namespace: str = "") -> Obj:
    return {"name": name, "namespace": namespace} if namespace else {"name": name}


def binding(name: str, role_kind: str, role: str, subjects: list[Obj], namespace: str = "") -> Obj:
    return {"metadata": meta(name, namespace), "roleRef": {"apiGroup": "rbac.authorization.k8s.io",
                                                           "kind": role_kind, "name": role},
            "subjects": subjects}


def policy(*extra_bindings: Obj, roles: tuple[Obj, ...] = ()) -> Snapshot:
    defaults = default_rbac_objects()
    cluster_roles = [o for p, o in defaults if p == "clusterroles"]
    cluster_bindings = [o for p, o in defaults if p == "clusterrolebindings"]
    cluster_bindings += [b for b in extra_bindings if not b["metadata"].get("namespace")]
    bindings = [b for b in extra_bindings if b["metadata"].get("namespace")]
    return Snapshot(list(roles), cluster_roles, bindings, cluster_bindings)


USER = {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "alice"}
VIEW_IN_DEV = binding("alice-view", "ClusterRole", "view", [USER], "dev")
EDIT_IN_DEV = binding("alice-edit", "ClusterRole", "edit", [USER], "dev")
VIEW_EVERYWHERE = binding("alice-view", "ClusterRole", "view", [USER])
POD_READER = {"metadata": meta("pod-reader", "dev"), "rules": [rule(["get"], [""], ["pods"], ["web"])]}
READER_IN_DEV = binding("read-web", "Role", "pod-reader", [USER], "dev")


@pytest.mark.parametrize(("state", "attrs", "allowed", "reason"), [
    # nothing bound: only the defaults for system:authenticated
    (policy(), res("get", "jobs", "batch"), False, ""),
    (policy(), res("create", "selfsubjectaccessreviews", "authorization.k8s.io", namespace=""), True,
     'RBAC: allowed by ClusterRoleBinding "system:basic-user" of ClusterRole "system:basic-user" to Group '
     '"system:authenticated"'),
    (policy(), url("get", "/apis/batch/v1"), True,
     'RBAC: allowed by ClusterRoleBinding "system:discovery" of ClusterRole "system:discovery" to Group '
     '"system:authenticated"'),
    (policy(), url("get", "/metrics"), False, ""),
    # system:masters gets everything through cluster-admin
    (policy(), res("delete", "nodes", namespace="", user=UserInfo("root", ("system:masters",))), True,
     'RBAC: allowed by ClusterRoleBinding "cluster-admin" of ClusterRole "cluster-admin" to Group "system:masters"'),
    # the controller-manager user may create Leases and renew only its own (upstream's lease rules)
    (policy(), res("update", "leases", "coordination.k8s.io", "kube-system", name="joblet-controller-manager",
                   user=KCM), True,
     'RBAC: allowed by ClusterRoleBinding "system:kube-controller-manager" of ClusterRole '
     '"system:kube-controller-manager" to User "system:kube-controller-manager"'),
    (policy(), res("update", "leases", "coordination.k8s.io", "kube-system", name="other", user=KCM), False, ""),
    (policy(), res("get", "leases", "coordination.k8s.io", "kube-system", name="joblet-controller-manager"),
     False, ""),
    # a RoleBinding to a ClusterRole grants only in its namespace
    (policy(VIEW_IN_DEV), res("get", "jobs", "batch", "dev"), True,
     'RBAC: allowed by RoleBinding "alice-view/dev" of ClusterRole "view" to User "alice"'),
    (policy(VIEW_IN_DEV), res("get", "jobs", "batch", "prod"), False, ""),
    (policy(VIEW_IN_DEV), res("list", "jobs", "batch", ""), False, ""),  # all namespaces: cluster scope
    (policy(VIEW_IN_DEV), res("create", "jobs", "batch", "dev"), False, ""),
    (policy(VIEW_IN_DEV), res("get", "secrets", namespace="dev"), False, ""),
    (policy(VIEW_IN_DEV), res("get", "pods", namespace="dev", sub="log"), True,
     'RBAC: allowed by RoleBinding "alice-view/dev" of ClusterRole "view" to User "alice"'),
    (policy(EDIT_IN_DEV), res("create", "jobs", "batch", "dev"), True,
     'RBAC: allowed by RoleBinding "alice-edit/dev" of ClusterRole "edit" to User "alice"'),
    (policy(EDIT_IN_DEV), res("create", "rolebindings", "rbac.authorization.k8s.io", "dev"), False, ""),
    (policy(EDIT_IN_DEV), res("create", "jobs", "batch", "prod"), False, ""),
    # a ClusterRoleBinding grants everywhere, cluster-scoped reads included
    (policy(VIEW_EVERYWHERE), res("list", "jobs", "batch", ""), True,
     'RBAC: allowed by ClusterRoleBinding "alice-view" of ClusterRole "view" to User "alice"'),
    (policy(VIEW_EVERYWHERE), res("get", "namespaces", namespace="", name="dev"), True,
     'RBAC: allowed by ClusterRoleBinding "alice-view" of ClusterRole "view" to User "alice"'),
    # RoleBinding → Role with resourceNames
    (policy(READER_IN_DEV, roles=(POD_READER,)), res("get", "pods", namespace="dev", name="web"), True,
     'RBAC: allowed by RoleBinding "read-web/dev" of Role "pod-reader" to User "alice"'),
    (policy(READER_IN_DEV, roles=(POD_READER,)), res("get", "pods", namespace="dev", name="db"), False, ""),
    # an unresolvable roleRef is the reason of a denial, as upstream
    (policy(READER_IN_DEV), res("get", "pods", namespace="dev", name="web"), False,
     'RBAC: role.rbac.authorization.k8s.io "pod-reader" not found'),
    (policy(READER_IN_DEV, binding("gone", "ClusterRole", "gone", [USER], "dev")),
     res("get", "pods", namespace="dev", name="web"), False,
     'RBAC: [role.rbac.authorization.k8s.io "pod-reader" not found, '
     'clusterrole.rbac.authorization.k8s.io "gone" not found]'),
    # a ServiceAccount subject without namespace means the binding's namespace
    (policy(binding("sa", "ClusterRole", "view", [{"kind": "ServiceAccount", "name": "builder"}], "team")),
     res("get", "jobs", "batch", "team", user=SA), True,
     'RBAC: allowed by RoleBinding "sa/team" of ClusterRole "view" to ServiceAccount "builder/team"'),
])
def test_authorize(state: Snapshot, attrs: Attributes, allowed: bool, reason: str) -> None:
    assert authorize(state, attrs) == (allowed, reason)


def test_rules_for_lists_cluster_then_namespace_rules() -> None:
    rules, errors = rules_for(policy(VIEW_IN_DEV), ALICE, "dev")
    assert errors == []
    resources = {r for rule in rules for r in rule.get("resources") or ()}
    assert {"selfsubjectaccessreviews", "jobs", "pods/log"} <= resources
    assert "secrets" not in resources
    other, _ = rules_for(policy(VIEW_IN_DEV), ALICE, "prod")
    assert not {r for rule in other for r in rule.get("resources") or ()} & {"jobs"}


def test_edit_and_admin_include_view() -> None:
    roles = {o["metadata"]["name"]: o for p, o in default_rbac_objects() if p == "clusterroles"}
    for wider, narrower in (("edit", "view"), ("admin", "edit")):
        for r in roles[narrower]["rules"]:
            assert r in roles[wider]["rules"]


# ----------------------------------------------------------------- the authorizer over the client


def setup_client() -> LocalClient:
    reg = Registry(MemoryStore(), FakeClock())
    for ns in ("default", "dev", "prod"):
        reg.create("namespaces", {"metadata": {"name": ns}})
    for plural, obj in default_rbac_objects():
        reg.create(plural, obj)
    return LocalClient(reg)


def rolebinding(name: str, role: str, user: str, namespace: str) -> Obj:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": name, "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"kind": "User", "name": user}]}


@pytest.mark.parametrize("cached", [False, True])
def test_authorizer_sees_a_binding_created_a_moment_ago_and_forgets_a_deleted_one(cached: bool) -> None:
    async def main() -> None:
        client = setup_client()
        authz = RBACAuthorizer(client, (lambda c, plural: Informer(c, plural)) if cached else None)
        try:
            create = res("create", "jobs", "batch", "dev")
            assert not (await authz.authorize(create)).allowed
            if cached:  # the first request started the informers; let them list
                for _ in range(50):
                    if authz._cached_state() is not None:
                        break
                    await asyncio.sleep(0)
                state = authz._cached_state()
                assert state is not None and len(list(state.cluster_role_bindings())) == len(
                    [p for p, _ in default_rbac_objects() if p == "clusterrolebindings"])
            await client.create("rolebindings", rolebinding("alice-edit", "edit", "alice", "dev"))
            if cached:
                state = authz._cached_state()
                assert state is not None and list(state.role_bindings("dev")) == []  # the cache lags ...
            # no yield to the event loop in between: a cache could not have seen the watch event
            decision = await authz.authorize(create)
            assert decision == (True, 'RBAC: allowed by RoleBinding "alice-edit/dev" of ClusterRole "edit" '
                                      'to User "alice"')
            assert not (await authz.authorize(res("create", "jobs", "batch", "prod"))).allowed
            await client.delete("rolebindings", "alice-edit", "dev")
            for _ in range(20):  # the watch event reaches the cache within a few loop turns
                if not (await authz.authorize(create)).allowed:
                    break
                await asyncio.sleep(0)
            assert not (await authz.authorize(create)).allowed
            rules, errors = await authz.rules_for(ALICE, "dev")
            assert errors == [] and all("jobs" not in (r.get("resources") or ()) for r in rules)
        finally:
            await authz.close()

    asyncio.run(main())


# ---------------------------------------------------------------------- escalation prevention


@pytest.mark.parametrize(("owner", "sub", "covers"), [
    (rule(["*"], ["*"], ["*"]), rule(["get"], ["batch"], ["jobs"]), True),
    (rule(["get", "list"], ["batch"], ["jobs"]), rule(["get"], ["batch"], ["jobs"]), True),
    (rule(["get"], ["batch"], ["jobs"]), rule(["list"], ["batch"], ["jobs"]), False),
    (rule(["get"], [""], ["pods"]), rule(["get"], ["batch"], ["pods"]), False),
    (rule(["get"], [""], ["*/log"]), rule(["get"], [""], ["pods/log"]), True),
    (rule(["get"], [""], ["pods"]), rule(["get"], [""], ["pods/log"]), False),
    (rule(["get"], [""], ["pods"], ["a"]), rule(["get"], [""], ["pods"]), False),  # named cannot cover all
    (rule(["get"], [""], ["pods"]), rule(["get"], [""], ["pods"], ["a"]), True),
    (rule(["get"], [""], ["pods"], ["a", "b"]), rule(["get"], [""], ["pods"], ["a"]), True),
    (rule(["get"], urls=["/logs/*"]), rule(["get"], urls=["/logs/app"]), True),
    (rule(["get"], urls=["/logs"]), rule(["get"], urls=["/logs/app"]), False),
])
def test_rule_covers(owner: Obj, sub: Obj, covers: bool) -> None:
    from joblet.auth.rbac import breakdown_rule, rule_covers

    assert all(rule_covers(owner, atom) for atom in breakdown_rule(sub)) is covers


def test_escalation_message_is_compact_as_upstream() -> None:
    from joblet.auth.rbac import escalation_message, uncovered

    missing = uncovered([rule(["get"], ["batch"], ["jobs"])],
                        [rule(["get", "create", "delete"], ["batch"], ["jobs", "cronjobs"]),
                         rule(["get"], urls=["/metrics"])])
    assert escalation_message(ALICE, missing, []) == (
        'user "alice" (groups=["devs" "system:authenticated"]) is attempting to grant RBAC permissions not '
        "currently held:\n"
        '{APIGroups:["batch"], Resources:["cronjobs"], Verbs:["get" "create" "delete"]}\n'
        '{APIGroups:["batch"], Resources:["jobs"], Verbs:["create" "delete"]}\n'
        '{NonResourceURLs:["/metrics"], Verbs:["get"]}')


def test_escalation_check_on_roles_and_bindings() -> None:
    from joblet.auth.rbac import EscalationCheck
    from joblet.errors import Forbidden

    async def main() -> None:
        client = setup_client()
        await client.create("rolebindings", rolebinding("alice-admin", "admin", "alice", "dev"))
        check = EscalationCheck(RBACAuthorizer(client))
        # admin in dev: may bind edit/view there and write roles within her rights ...
        await check(ALICE, "rolebindings", rolebinding("bob-edit", "edit", "bob", "dev"))
        await check(ALICE, "roles", {"metadata": {"name": "r", "namespace": "dev"},
                                     "rules": [rule(["get", "create"], ["batch"], ["jobs"])]})
        # ... but not bind cluster-admin, nor write a role granting more, nor act in another namespace
        with pytest.raises(Forbidden) as err:
            await check(ALICE, "rolebindings", rolebinding("me-root", "cluster-admin", "alice", "dev"))
        assert err.value.message.startswith(
            'rolebindings.rbac.authorization.k8s.io "me-root" is forbidden: user "alice" (groups=["devs" '
            '"system:authenticated"]) is attempting to grant RBAC permissions not currently held:\n'
            '{APIGroups:["*"], Resources:["*"], Verbs:["*"]}')
        assert err.value.details == {"name": "me-root", "group": "rbac.authorization.k8s.io",
                                     "kind": "rolebindings"}
        with pytest.raises(Forbidden, match=r'Resources:\["pods/status"\], Verbs:\["update"\]'):
            await check(ALICE, "roles", {"metadata": {"name": "r", "namespace": "dev"},
                                         "rules": [rule(["update"], [""], ["pods/status"])]})
        with pytest.raises(Forbidden):
            await check(ALICE, "rolebindings", rolebinding("bob-edit", "edit", "bob", "prod"))
        with pytest.raises(Forbidden, match=r'clusterrole\.rbac\.authorization\.k8s\.io "nope" not found'):
            await check(ALICE, "rolebindings", rolebinding("x", "nope", "bob", "dev"))
        # the "bind" verb on a role allows binding it without holding it; system:masters may do anything
        await client.create("clusterroles", {"metadata": {"name": "binder"}, "rules": [
            rule(["bind"], ["rbac.authorization.k8s.io"], ["clusterroles"], ["cluster-admin"])]})
        await client.create("rolebindings", rolebinding("alice-binder", "binder", "alice", "dev"))
        await check(ALICE, "rolebindings", rolebinding("me-root", "cluster-admin", "alice", "dev"))
        await check(UserInfo("root", ("system:masters",)), "clusterrolebindings",
                    {"metadata": {"name": "x"}, "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"}})

    asyncio.run(main())


def test_defaults_are_reconciled_additively_unless_autoupdate_is_false() -> None:
    from joblet.auth.bootstrap import reconcile_default

    view = next(o for p, o in default_rbac_objects() if o["metadata"]["name"] == "view")
    assert reconcile_default(view, view) is None
    old = {**view, "rules": [*view["rules"][:1], rule(["get"], ["example.com"], ["widgets"])],
           "metadata": {"name": "view", "labels": {"mine": "1"}}}
    new = reconcile_default(old, view)
    assert new is not None
    assert new["rules"][:2] == old["rules"] and all(r in new["rules"] for r in view["rules"])
    assert new["metadata"]["labels"] == {**view["metadata"]["labels"], "mine": "1"}
    pinned = {**old, "metadata": {"name": "view", "annotations": {
        "rbac.authorization.kubernetes.io/autoupdate": "false"}}}
    assert reconcile_default(pinned, view) is None
    binding_ = next(o for p, o in default_rbac_objects() if p == "clusterrolebindings"
                    and o["metadata"]["name"] == "system:public-info-viewer")
    trimmed = {**binding_, "subjects": binding_["subjects"][:1]}
    again = reconcile_default(trimmed, binding_)
    assert again is not None and again["subjects"] == binding_["subjects"]
