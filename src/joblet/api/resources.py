"""The table of resources joblet serves: one row per resource, used by the store keys,
the registry, discovery and the clients. Adding a resource starts here."""

from __future__ import annotations

from dataclasses import dataclass


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


_ALL = (
    Resource("namespaces", "Namespace", namespaced=False, short_names=("ns",), subresources=("status",)),
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
)

RESOURCES: dict[str, Resource] = {r.plural: r for r in _ALL}
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
