"""rbac.authorization.k8s.io/v1 through the registry: defaults, upstream's validation paths and
messages, roleRef immutability, and the tables ``kubectl get`` prints."""

from __future__ import annotations

from typing import Any

import pytest

from joblet.api import tables
from joblet.api.registry import Registry
from joblet.clock import FakeClock
from joblet.errors import Invalid
from joblet.store.memory import MemoryStore

Obj = dict[str, Any]
GROUP = "rbac.authorization.k8s.io"


@pytest.fixture
def reg() -> Registry:
    r = Registry(MemoryStore(), FakeClock())
    r.create("namespaces", {"metadata": {"name": "default"}})
    return r


def role(name: str = "r", *rules: Obj) -> Obj:
    return {"apiVersion": f"{GROUP}/v1", "kind": "Role", "metadata": {"name": name}, "rules": list(rules)}


def cluster_role(name: str = "cr", *rules: Obj, **extra: Any) -> Obj:
    return {"apiVersion": f"{GROUP}/v1", "kind": "ClusterRole", "metadata": {"name": name},
            "rules": list(rules), **extra}


def binding(kind: str = "RoleBinding", ref_kind: str = "ClusterRole", ref_name: str = "view",
            subjects: list[Obj] | None = None, ref_group: str | None = None) -> Obj:
    ref: Obj = {"kind": ref_kind, "name": ref_name}
    if ref_group is not None:
        ref["apiGroup"] = ref_group
    return {"apiVersion": f"{GROUP}/v1", "kind": kind, "metadata": {"name": "b"}, "roleRef": ref,
            "subjects": subjects if subjects is not None else [{"kind": "User", "name": "alice"}]}


def causes(err: pytest.ExceptionInfo[Invalid]) -> list[tuple[str, str]]:
    return [(c["field"], c["message"]) for c in err.value.details["causes"]]


def test_names_may_contain_colons_and_subjects_get_their_api_group(reg: Registry) -> None:
    reg.create("clusterroles", cluster_role("system:reader", {"verbs": ["get"], "apiGroups": [""],
                                                             "resources": ["pods"]}))
    created = reg.create("rolebindings", binding(subjects=[
        {"kind": "User", "name": "alice"}, {"kind": "Group", "name": "devs"},
        {"kind": "ServiceAccount", "name": "builder"}]))
    assert created["roleRef"]["apiGroup"] == GROUP
    assert [s.get("apiGroup") for s in created["subjects"]] == [GROUP, GROUP, None]
    assert created["metadata"]["namespace"] == "default"


@pytest.mark.parametrize(("plural", "obj", "expected"), [
    ("roles", role("r", {"apiGroups": [""], "resources": ["pods"]}),
     [("rules[0].verbs", "Required value: verbs must contain at least one value")]),
    ("roles", role("r", {"verbs": ["get"]}),
     [("rules[0].apiGroups", "Required value: resource rules must supply at least one api group"),
      ("rules[0].resources", "Required value: resource rules must supply at least one resource")]),
    ("roles", role("r", {"verbs": ["get"], "nonResourceURLs": ["/healthz"]}),
     [("rules[0].nonResourceURLs",
       'Invalid value: []string{"/healthz"}: namespaced rules cannot apply to non-resource URLs')]),
    ("clusterroles", cluster_role("cr", {"verbs": ["get"], "nonResourceURLs": ["/x"], "resources": ["pods"]}),
     [("rules[0].nonResourceURLs",
       'Invalid value: []string{"/x"}: rules cannot apply to both regular resources and non-resource URLs')]),
    ("clusterroles", cluster_role("a/b"), [("metadata.name", "Invalid value: \"a/b\": may not contain '/'")]),
    ("clusterroles", cluster_role("..", ), [("metadata.name", "Invalid value: \"..\": may not be '..'")]),
    ("clusterroles", cluster_role("agg", aggregationRule={}),
     [("aggregationRule.clusterRoleSelectors",
       "Required value: at least one clusterRoleSelector required if aggregationRule is non-nil")]),
    ("rolebindings", binding(ref_kind="Pod"),
     [("roleRef.kind", 'Unsupported value: "Pod": supported values: "Role", "ClusterRole"')]),
    ("rolebindings", binding(ref_group="apps"),
     [("roleRef.apiGroup", 'Unsupported value: "apps": supported values: "rbac.authorization.k8s.io"')]),
    ("rolebindings", binding(ref_name=""), [("roleRef.name", "Required value")]),
    ("rolebindings", binding(subjects=[{"kind": "Robot", "name": "r2"}]),
     [("subjects[0].kind", 'Unsupported value: "Robot": supported values: "ServiceAccount", "User", "Group"')]),
    ("rolebindings", binding(subjects=[{"kind": "User", "name": ""}]), [("subjects[0].name", "Required value")]),
    ("rolebindings", binding(subjects=[{"kind": "ServiceAccount", "name": "Bad_Name", "apiGroup": GROUP}]),
     [("subjects[0].name", 'Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain must consist of lower case '
                           "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric "
                           "character (e.g. 'example.com', regex used for validation is "
                           "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"),
      ("subjects[0].apiGroup", 'Unsupported value: "rbac.authorization.k8s.io": supported values: ""')]),
    ("clusterrolebindings", binding("ClusterRoleBinding", ref_kind="Role"),
     [("roleRef.kind", 'Unsupported value: "Role": supported values: "ClusterRole"')]),
    ("clusterrolebindings", binding("ClusterRoleBinding", subjects=[{"kind": "ServiceAccount", "name": "sa"}]),
     [("subjects[0].namespace", "Required value")]),
])
def test_validation_as_upstream(reg: Registry, plural: str, obj: Obj, expected: list[tuple[str, str]]) -> None:
    with pytest.raises(Invalid) as err:
        reg.create(plural, obj)
    assert causes(err) == expected


def test_role_ref_is_immutable_subjects_are_not(reg: Registry) -> None:
    reg.create("rolebindings", binding())
    updated = reg.patch("rolebindings", "default", "b", {"subjects": [{"kind": "Group", "name": "devs"}]}, "merge")
    assert updated["subjects"] == [{"kind": "Group", "name": "devs", "apiGroup": GROUP}]
    with pytest.raises(Invalid) as err:
        reg.patch("rolebindings", "default", "b", {"roleRef": {"name": "edit"}}, "merge")
    assert causes(err) == [("roleRef", 'Invalid value: rbac.RoleRef{APIGroup:"rbac.authorization.k8s.io", '
                                       'Kind:"ClusterRole", Name:"edit"}: cannot change roleRef')]
    assert err.value.details["kind"] == "RoleBinding" and err.value.details["group"] == GROUP


def test_tables_print_role_and_subjects(reg: Registry) -> None:
    created = reg.create("clusterrolebindings", binding("ClusterRoleBinding", subjects=[
        {"kind": "User", "name": "alice"}, {"kind": "User", "name": "bob"}, {"kind": "Group", "name": "devs"},
        {"kind": "ServiceAccount", "name": "sa", "namespace": "ci"}]))
    table = tables.to_table("clusterrolebindings", [created], FakeClock().now())
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Role", "Age", "Users", "Groups",
                                                              "ServiceAccounts"]
    assert table["rows"][0]["cells"] == ["b", "ClusterRole/view", "0s", "alice, bob", "devs", "ci/sa"]
    r = reg.create("clusterroles", cluster_role("cr"))
    table = tables.to_table("clusterroles", [r], FakeClock().now())
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Created At"]
    assert table["rows"][0]["cells"] == ["cr", r["metadata"]["creationTimestamp"]]
