"""Legacy (non-aggregated) discovery documents built from the resource table.

Why: every kubectl command starts with ``/api``, ``/apis`` and one ``APIResourceList`` per
group-version; kubectl falls back from aggregated discovery to these plain JSON documents, so
serving them from :data:`joblet.api.resources.SERVED` keeps discovery in step with what the
server actually routes.
"""

from __future__ import annotations

from typing import Any

from joblet.api.resources import SERVED, Resource

SUBRESOURCE_VERBS: dict[str, list[str]] = {
    "status": ["get", "patch", "update"],
    "finalize": ["update"],
    "log": ["get"],
    "eviction": ["create"],
    "token": ["create"],
}
SUBRESOURCE_KIND: dict[str, tuple[str, str, str]] = {
    # subresource -> (group, version, kind) of its body, when not the parent's kind
    "eviction": ("policy", "v1", "Eviction"),
    "token": ("authentication.k8s.io", "v1", "TokenRequest"),
}


def group_versions() -> dict[str, list[Resource]]:
    """``"v1"``/``"batch/v1"`` → the resources served in it, in table order."""
    out: dict[str, list[Resource]] = {}
    for r in SERVED:
        out.setdefault(r.api_version, []).append(r)
    return out


def version_info(minor: str) -> dict[str, Any]:
    """``/version``. The ``joblet`` key (ignored by kubectl) tells the joblet CLI that this is a
    joblet server and not a real cluster (joblet.cli.connect's target rule)."""
    from joblet import __version__

    return {
        "major": "1",
        "minor": minor,
        "gitVersion": f"v1.{minor}.0-joblet",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64",
        "joblet": __version__,
    }


def api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def api_group_list() -> dict[str, Any]:
    groups: dict[str, list[str]] = {}
    for gv in group_versions():
        if "/" in gv:
            group, version = gv.split("/", 1)
            groups.setdefault(group, []).append(version)
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [
            {
                "name": group,
                "versions": [{"groupVersion": f"{group}/{v}", "version": v} for v in versions],
                "preferredVersion": {"groupVersion": f"{group}/{versions[0]}", "version": versions[0]},
            }
            for group, versions in groups.items()
        ],
    }


def api_group(group: str) -> dict[str, Any] | None:
    for g in api_group_list()["groups"]:
        if g["name"] == group:
            return {"kind": "APIGroup", "apiVersion": "v1", **g}
    return None


def _resource_entry(r: Resource) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": r.plural,
        "singularName": r.singular or r.kind.lower(),
        "namespaced": r.namespaced,
        "kind": r.kind,
        "verbs": list(r.verbs),
    }
    if r.short_names:
        entry["shortNames"] = list(r.short_names)
    if r.categories:
        entry["categories"] = list(r.categories)
    return entry


def _subresource_entry(r: Resource, sub: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": f"{r.plural}/{sub}",
        "singularName": "",
        "namespaced": r.namespaced,
        "kind": r.kind,
        "verbs": SUBRESOURCE_VERBS.get(sub, ["get"]),
    }
    if sub in SUBRESOURCE_KIND:
        group, version, kind = SUBRESOURCE_KIND[sub]
        entry.update({"group": group, "version": version, "kind": kind})
    return entry


def api_resource_list(group_version: str) -> dict[str, Any] | None:
    resources = group_versions().get(group_version)
    if resources is None:
        return None
    entries: list[dict[str, Any]] = []
    for r in resources:
        entries.append(_resource_entry(r))
        entries.extend(_subresource_entry(r, sub) for sub in r.subresources)
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": entries}
