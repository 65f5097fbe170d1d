"""A pod's tmpfs volumes (secret/projected: every pod's ``kube-api-access-*``) leave the host
mount table when the pod is done, also when the agent stops right after, and a restarted agent
unmounts what a previous one left for ended or vanished pods; a running pod's stay (crash safety).

Why: leaked mounts made pytest fail to remove its temp dirs (EBUSY) after a full suite run.
Real control plane, real node agent, real pods and real tmpfs mounts (needs root).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from joblet.client.local import LocalClient
from joblet.config import ControlPlaneConfig
from joblet.controlplane import ControlPlane
from joblet.node.volumes import mounts_under, unmount_all

pytestmark = pytest.mark.skipif(os.getuid() != 0, reason="needs root (tmpfs mounts)")


def pod(name: str, script: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"restartPolicy": "Never",
                     "containers": [{"name": "c", "image": "busybox", "command": ["sh", "-c", script]}]}}


async def phase(client: LocalClient, name: str, want: str) -> None:
    for _ in range(600):
        got = await client.get("pods", name, "default")
        if (got.get("status") or {}).get("phase") == want:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"pod {name} never reached {want}")


def plane_for(data: Path) -> ControlPlane:
    return ControlPlane(ControlPlaneConfig(data_dir=data), serve_http=False)


async def until(check: Callable[[], bool], what: str) -> None:
    for _ in range(600):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(what)


def leave_mounted(path: Path) -> None:
    """What an agent stopped (or killed) before its pod's unmount leaves: a tmpfs at ``path``."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(path)], check=True)


def test_done_pods_leave_no_mounts_across_agent_stop_and_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"

    async def main() -> None:
        plane = plane_for(data)
        await plane.start()
        try:
            client = plane.client
            running = await client.create("pods", pod("runs", "sleep 30"))
            quick = await client.create("pods", pod("quick", "true"))
            await phase(client, "runs", "Running")
            run_vols = data / "pods" / running["metadata"]["uid"] / "volumes"
            quick_vols = data / "pods" / quick["metadata"]["uid"] / "volumes"
            assert mounts_under(run_vols), "the projected token volume is a tmpfs"
            await phase(client, "quick", "Succeeded")
            await until(lambda: not mounts_under(quick_vols), "a terminal pod's tmpfs stayed mounted")
            # a worker cancelled while concluding (plane stopped right after the status write)
            leave_mounted(quick_vols / "kube-api-access-late")
        finally:
            await plane.stop()
        assert mounts_under(quick_vols) == [], "stop() left a finished pod's tmpfs mounted"
        assert mounts_under(run_vols), "a running pod's mounts must survive the agent (a new one adopts it)"

        leave_mounted(quick_vols / "kube-api-access-crash")  # an agent killed before unmounting
        ghost = data / "pods" / "0ghost-uid" / "volumes" / "kube-api-access-x"  # a pod deleted meanwhile
        leave_mounted(ghost)
        plane = plane_for(data)
        await plane.start()
        try:
            await until(lambda: not mounts_under(quick_vols) and not mounts_under(ghost.parent),
                        "a restarted agent left an ended or vanished pod's tmpfs mounted")
            assert mounts_under(run_vols), "the adopted running pod keeps its mounts"
            await plane.client.delete("pods", "runs", "default", grace_period_seconds=0)
            await until(lambda: not mounts_under(data / "pods"), "a deleted pod's tmpfs stayed mounted")
        finally:
            await plane.stop()

    try:
        asyncio.run(main())
    finally:
        unmount_all(tmp_path)  # a failed assertion must not leave mounts for pytest's cleanup
