"""The table of resources joblet serves: one row per resource, used by the store keys,
the registry, discovery and the clients. Adding a resource starts here."""

from __future__ import annotations

from dataclasses import dataclass

#: the verbs of a stored resource (discovery's ``verbs``)
CRUD_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class Resource:
    plural: str
    kind: str
    group: str = ""
    version: str = "v1"
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    singular: str = ""
    #: the verbs served; create-only resources (the reviews) are computed per request, never stored
    verbs: tuple[str, ...] = CRUD_VERBS

    @property
    def stored(self) -> bool:
        return "get" in self.verbs

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """``jobs.batch`` / ``pods`` as in Kubernetes' error messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    def base_path(self, namespace: str | None) -> str:
        prefix = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            return f"{prefix}/namespaces/{namespace}/{self.plural}"
        return f"{prefix}/{self.plural}"


_RBAC = "rbac.authorization.k8s.io"

_ALL = (
    Resource("namespaces", "Namespace", namespaced=False, short_names=("ns",), subresources=("status", "finalize")),
    Resource("nodes", "Node", namespaced=False, short_names=("no",), subresources=("status",)),
    Resource("pods", "Pod", short_names=("po",), categories=("all",),
             subresources=("status", "log", "eviction")),
    Resource("events", "Event", short_names=("ev",)),
    Resource("secrets", "Secret"),
    Resource("configmaps", "ConfigMap", short_names=("cm",)),
    Resource("serviceaccounts", "ServiceAccount", short_names=("sa",), subresources=("token",)),
    Resource("jobs", "Job", group="batch", categories=("all",), subresources=("status",)),
    Resource("cronjobs", "CronJob", group="batch", short_names=("cj",), categories=("all",),
             subresources=("status",)),
    Resource("leases", "Lease", group="coordination.k8s.io"),
    Resource("roles", "Role", group=_RBAC),
    Resource("rolebindings", "RoleBinding", group=_RBAC),
    Resource("clusterroles", "ClusterRole", group=_RBAC, namespaced=False),
    Resource("clusterrolebindings", "ClusterRoleBinding", group=_RBAC, namespaced=False),
    # Reviews: POST-only questions about the requesting user, answered by joblet.auth.reviews.
    Resource("selfsubjectaccessreviews", "SelfSubjectAccessReview", group="authorization.k8s.io",
             namespaced=False, verbs=("create",)),
    Resource("selfsubjectrulesreviews", "SelfSubjectRulesReview", group="authorization.k8s.io",
             namespaced=False, verbs=("create",)),
    Resource("selfsubjectreviews", "SelfSubjectReview", group="authentication.k8s.io",
             namespaced=False, verbs=("create",)),
    # kubectl 1.27 asks v1beta1 for `auth whoami` (1.28+ ask v1 first, then v1beta1).
    Resource("selfsubjectreviews", "SelfSubjectReview", group="authentication.k8s.io", version="v1beta1",
             namespaced=False, verbs=("create",)),
)

#: plural → its resource (the preferred, first listed, version of a plural served in several)
RESOURCES: dict[str, Resource] = {}
for _r in _ALL:
    RESOURCES.setdefault(_r.plural, _r)
#: every served (group-version, plural): what discovery and the routes use
SERVED: tuple[Resource, ...] = _ALL
BY_KIND: dict[tuple[str, str], Resource] = {(r.api_version, r.kind): r for r in _ALL}

PODS = RESOURCES["pods"]
JOBS = RESOURCES["jobs"]
CRONJOBS = RESOURCES["cronjobs"]
EVENTS = RESOURCES["events"]
NAMESPACES = RESOURCES["namespaces"]
NODES = RESOURCES["nodes"]


def lookup(name: str) -> Resource | None:
    """Find a resource by plural, singular, kind or short name (case-insensitive), as kubectl does."""
    key = name.lower()
    for r in _ALL:
        if key in (r.plural, r.kind.lower(), *r.short_names) or key == f"{r.plural}.{r.group}":
            return r
    return None


def for_kind(api_version: str, kind: str) -> Resource | None:
    return BY_KIND.get((api_version, kind))
