"""The default RBAC policy a fresh cluster starts with (upstream ``bootstrappolicy/policy.go``).

Why: with authorization on, a cluster without roles lets nobody in but ``system:masters``;
users expect the roles every cluster ships (``cluster-admin``, ``admin``, ``edit``, ``view``)
so that ``kubectl create rolebinding --clusterrole=view`` works as documented, and every
authenticated user may discover the API and ask ``kubectl auth can-i``/``whoami``.
Upstream builds ``admin``/``edit``/``view`` by aggregation; here their rules are flattened to
the resources joblet serves. The control plane creates each object that is missing at start-up
and adds to an existing one what a newer default gained, unless it is annotated
``rbac.authorization.kubernetes.io/autoupdate: "false"`` (as upstream reconciles them).
"""

from __future__ import annotations

import contextlib
from typing import Any

from joblet.api.registry import Registry
from joblet.auth import AUTHENTICATED, SYSTEM_MASTERS, UNAUTHENTICATED
from joblet.errors import AlreadyExists, Conflict, NotFound

Obj = dict[str, Any]

RBAC_V1 = "rbac.authorization.k8s.io/v1"
READ = ["get", "list", "watch"]
WRITE = ["create", "delete", "deletecollection", "patch", "update"]
READ_WRITE = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]
_LABELS = {"kubernetes.io/bootstrapping": "rbac-defaults"}
_ANNOTATIONS = {"rbac.authorization.kubernetes.io/autoupdate": "true"}


def rule(verbs: list[str], groups: list[str] | None = None, resources: list[str] | None = None,
         urls: list[str] | None = None) -> Obj:
    if urls is not None:
        return {"verbs": verbs, "nonResourceURLs": urls}
    return {"verbs": verbs, "apiGroups": groups or [""], "resources": resources or []}


def cluster_role(name: str, rules: list[Obj], aggregate_to: tuple[str, ...] = ()) -> Obj:
    labels = dict(_LABELS)
    for target in aggregate_to:
        labels[f"rbac.authorization.k8s.io/aggregate-to-{target}"] = "true"
    return {"apiVersion": RBAC_V1, "kind": "ClusterRole",
            "metadata": {"name": name, "labels": labels, "annotations": dict(_ANNOTATIONS)}, "rules": rules}


def cluster_role_binding(name: str, role: str, groups: tuple[str, ...], users: tuple[str, ...] = ()) -> Obj:
    return {"apiVersion": RBAC_V1, "kind": "ClusterRoleBinding",
            "metadata": {"name": name, "labels": dict(_LABELS), "annotations": dict(_ANNOTATIONS)},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [*({"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": g} for g in groups),
                         *({"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": u} for u in users)]}


def view_rules() -> list[Obj]:
    """aggregate-to-view, for the resources joblet serves (no secrets: reading them escalates)."""
    return [
        rule(READ, [""], ["configmaps", "pods", "pods/status", "serviceaccounts"]),
        rule(READ, [""], ["events", "namespaces/status", "pods/log", "pods/status"]),
        rule(READ, [""], ["namespaces"]),
        rule(READ, ["batch"], ["cronjobs", "cronjobs/status", "jobs", "jobs/status"]),
    ]


def edit_rules() -> list[Obj]:
    """aggregate-to-edit (plus view's rules)."""
    return [
        rule(READ, [""], ["secrets"]),
        rule(["impersonate"], [""], ["serviceaccounts"]),
        rule(WRITE, [""], ["pods"]),
        rule(["create"], [""], ["pods/eviction"]),
        rule(WRITE, [""], ["configmaps", "secrets", "serviceaccounts"]),
        rule(["create"], [""], ["serviceaccounts/token"]),
        rule(WRITE, ["batch"], ["cronjobs", "jobs"]),
        *view_rules(),
    ]


def admin_rules() -> list[Obj]:
    """aggregate-to-admin (plus edit's rules)."""
    return [
        rule(["create"], ["authorization.k8s.io"], ["localsubjectaccessreviews"]),
        rule(READ_WRITE, ["rbac.authorization.k8s.io"], ["rolebindings", "roles"]),
        *edit_rules(),
    ]


DISCOVERY_URLS = ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi", "/openapi/*",
                  "/readyz", "/version", "/version/"]
#: the Lease the controller-manager replicas elect their leader with (joblet.controllers.leaderelection)
CONTROLLER_MANAGER_LEASE = "joblet-controller-manager"
#: upstream's user of kube-controller-manager
CONTROLLER_MANAGER_USER = "system:kube-controller-manager"


def leader_election_rules(lease_name: str) -> list[Obj]:
    """Upstream's lease rules of ``system:kube-controller-manager``: create any Lease, and read
    and renew only its own."""
    return [
        rule(["create"], ["coordination.k8s.io"], ["leases"]),
        {**rule(["get", "update", "watch"], ["coordination.k8s.io"], ["leases"]), "resourceNames": [lease_name]},
    ]


PUBLIC_INFO_URLS = ["/healthz", "/livez", "/readyz", "/version", "/version/"]


def default_rbac_objects() -> list[tuple[str, Obj]]:
    """``(plural, object)`` for every default ClusterRole and ClusterRoleBinding, roles first."""
    roles = [
        cluster_role("cluster-admin", [rule(["*"], ["*"], ["*"]), rule(["*"], urls=["*"])]),
        cluster_role("admin", admin_rules()),
        cluster_role("edit", edit_rules(), aggregate_to=("admin",)),
        cluster_role("view", view_rules(), aggregate_to=("edit",)),
        cluster_role("system:discovery", [rule(["get"], urls=DISCOVERY_URLS)]),
        cluster_role("system:public-info-viewer", [rule(["get"], urls=PUBLIC_INFO_URLS)]),
        cluster_role("system:basic-user", [
            rule(["create"], ["authorization.k8s.io"], ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]),
            rule(["create"], ["authentication.k8s.io"], ["selfsubjectreviews"]),
        ]),
        cluster_role(CONTROLLER_MANAGER_USER, leader_election_rules(CONTROLLER_MANAGER_LEASE)),
    ]
    bindings = [
        cluster_role_binding("cluster-admin", "cluster-admin", (SYSTEM_MASTERS,)),
        cluster_role_binding("system:discovery", "system:discovery", (AUTHENTICATED,)),
        cluster_role_binding("system:basic-user", "system:basic-user", (AUTHENTICATED,)),
        cluster_role_binding("system:public-info-viewer", "system:public-info-viewer",
                             (AUTHENTICATED, UNAUTHENTICATED)),
        cluster_role_binding(CONTROLLER_MANAGER_USER, CONTROLLER_MANAGER_USER, (), (CONTROLLER_MANAGER_USER,)),
    ]
    return [*(("clusterroles", r) for r in roles), *(("clusterrolebindings", b) for b in bindings)]


def reconcile_default(current: Obj, default: Obj) -> Obj | None:
    """The stored default object with what this version's default adds (upstream's reconciliation:
    missing rules, subjects, labels and annotations are added, nothing is removed), or None when
    nothing is missing or the object says ``rbac.authorization.kubernetes.io/autoupdate: "false"``."""
    meta = current.get("metadata") or {}
    if (meta.get("annotations") or {}).get("rbac.authorization.kubernetes.io/autoupdate") == "false":
        return None
    wanted = {**current, "metadata": {**meta}}
    for key in ("labels", "annotations"):
        merged = {**(default["metadata"].get(key) or {}), **(meta.get(key) or {})}
        if merged != (meta.get(key) or {}):
            wanted["metadata"][key] = merged
    field = "rules" if default["kind"] == "ClusterRole" else "subjects"
    have = list(current.get(field) or [])
    missing = [x for x in default.get(field) or [] if x not in have]
    if missing:
        wanted[field] = have + missing
    return wanted if wanted != current else None


def ensure_default_policy(registry: Registry) -> None:
    """Create each default object that is missing and add to an existing one what it gained.
    Replicas on one store start together: an object another one wrote first is left to it."""
    for plural, obj in default_rbac_objects():
        with contextlib.suppress(AlreadyExists, Conflict):
            try:
                wanted = reconcile_default(registry.get(plural, "", obj["metadata"]["name"]), obj)
            except NotFound:
                registry.create(plural, obj)
                continue
            if wanted is not None:
                registry.update(plural, wanted)
