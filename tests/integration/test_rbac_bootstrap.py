"""The control plane's start-up policy on a real data dir: defaults created once, a restart
changes nothing, a pruned default regains what it lost, a pinned one is left alone."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from joblet.config import ControlPlaneConfig
from joblet.controlplane import ControlPlane

Obj = dict[str, Any]


def start_and(tmp_path: Path, body: Any) -> Any:
    async def main() -> Any:
        plane = ControlPlane(ControlPlaneConfig(data_dir=tmp_path / "data"), serve_http=False, run_controllers=False)
        await plane.start()
        try:
            return await body(plane.client)
        finally:
            await plane.stop()

    return asyncio.run(main())


def test_default_policy_is_created_once_and_reconciled(tmp_path: Path) -> None:
    async def snapshot(client: Any) -> dict[str, str]:
        out = {}
        for plural in ("clusterroles", "clusterrolebindings"):
            for o in (await client.list(plural)).items:
                out[f"{plural}/{o['metadata']['name']}"] = o["metadata"]["resourceVersion"]
        return out

    first = start_and(tmp_path, snapshot)
    assert {"clusterroles/cluster-admin", "clusterroles/admin", "clusterroles/edit", "clusterroles/view",
            "clusterroles/system:basic-user", "clusterroles/system:discovery",
            "clusterroles/system:public-info-viewer", "clusterrolebindings/cluster-admin"} <= set(first)
    assert start_and(tmp_path, snapshot) == first  # a restart writes nothing

    async def prune(client: Any) -> None:
        await client.patch("clusterroles", "view", {"rules": [{"verbs": ["get"], "apiGroups": [""],
                                                               "resources": ["pods"]}]})
        await client.patch("clusterroles", "edit", {
            "metadata": {"annotations": {"rbac.authorization.kubernetes.io/autoupdate": "false"}},
            "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]})
        await client.delete("clusterrolebindings", "system:basic-user")

    start_and(tmp_path, prune)

    async def read(client: Any) -> tuple[Obj, Obj, Obj]:
        return (await client.get("clusterroles", "view"), await client.get("clusterroles", "edit"),
                await client.get("clusterrolebindings", "system:basic-user"))

    view, edit, basic = start_and(tmp_path, read)
    assert any("jobs" in r.get("resources", []) for r in view["rules"])  # regained
    assert edit["rules"] == [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]  # pinned
    assert basic["subjects"][0]["name"] == "system:authenticated"  # recreated
