"""An in-process control plane with a real node agent, for the pod-containment regression tests.

Why: the SEC-xx pod findings are about what a real pod (shim + bubblewrap + real processes)
can see and do, so these tests run real pods through the registry, scheduler and node agent.
The in-process client is used so the tests do not depend on the HTTP/auth layer.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from joblet.client.local import LocalClient
from joblet.config import ControlPlaneConfig
from joblet.controlplane import ControlPlane
from joblet.errors import ApiError, NotFound
from joblet.node.volumes import unmount_all

Obj = dict[str, Any]

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap (bwrap) is not installed")
needs_root = pytest.mark.skipif(os.getuid() != 0, reason="needs root (uids, tmpfs mounts)")


def pod(name: str, script: str, **spec: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "c", "image": "busybox", "command": ["sh", "-c", script]}], **spec}}


class Plane:
    def __init__(self, plane: ControlPlane) -> None:
        self.plane = plane
        self.client: LocalClient = plane.client
        self.data: Path = plane.config.data_dir

    async def until(self, name: str, check: Callable[[Obj], bool], timeout: float = 30,
                    namespace: str = "default") -> Obj:
        end = time.monotonic() + timeout
        while True:
            with contextlib.suppress(NotFound):
                obj: Obj = await self.client.get("pods", name, namespace)
                if check(obj):
                    return obj
            assert time.monotonic() < end, f"pod {name} never satisfied the check: {obj.get('status')}"
            await asyncio.sleep(0.05)

    async def finished(self, name: str, namespace: str = "default") -> Obj:
        return await self.until(name, lambda p: (p.get("status") or {}).get("phase") in ("Succeeded", "Failed"),
                                namespace=namespace)

    async def waiting(self, name: str, reason: str) -> Obj:
        def check(p: Obj) -> bool:
            states = [cs.get("state") or {} for cs in (p.get("status") or {}).get("containerStatuses") or []]
            return any((s.get("waiting") or {}).get("reason") == reason for s in states)
        return await self.until(name, check)

    async def output(self, name: str, namespace: str = "default", container: str | None = None) -> str:
        return b"".join([c async for c in self.plane.log_store.read(namespace, name, container)]).decode()

    async def until_output(self, name: str, text: str, timeout: float = 30) -> str:
        end = time.monotonic() + timeout
        while True:
            with contextlib.suppress(ApiError):
                out = await self.output(name)
                if text in out:
                    return out
            assert time.monotonic() < end, f"pod {name} never printed {text!r}"
            await asyncio.sleep(0.05)

    async def events(self, name: str) -> list[tuple[str, str, str]]:
        items = (await self.client.list("events", "default")).items
        return [(e["type"], e["reason"], e["message"]) for e in items if e["involvedObject"]["name"] == name]

    @staticmethod
    async def eventually(check: Callable[[], bool], what: str, timeout: float = 15) -> None:
        end = time.monotonic() + timeout
        while not check():
            assert time.monotonic() < end, what
            await asyncio.sleep(0.05)

    def pod_dir(self, uid: str) -> Path:
        return self.data / "pods" / uid


def run(tmp_path: Path, body: Callable[[Plane], Awaitable[None]]) -> None:
    async def main() -> None:
        cfg = ControlPlaneConfig(data_dir=tmp_path / "data", pod_failure_backoff=0.5)
        plane = ControlPlane(cfg, serve_http=False)
        await plane.start()
        try:
            await body(Plane(plane))
        finally:
            await plane.stop()
            unmount_all(tmp_path)  # a failed test must not leave a pod's tmpfs mounted

    asyncio.run(main())
