"""Paths a pod spec or a log request names never leave their place (SEC-04, SEC-05, SEC-13).

Real API validation, a real node agent and real pods; each test fails on the code before the
fix (item paths were joined under the volume as root, log reads followed `..` and symlinks,
subPath followed a symlink planted by an init container).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from pods_plane import Plane, needs_bwrap, pod, run

from joblet.errors import BadRequest, Invalid, NotFound
from joblet.node.volumes import TokenContext, VolumeError, VolumeManager

pytestmark = [needs_bwrap]


def test_traversal_item_paths_and_modes_are_rejected_with_422(tmp_path: Path) -> None:
    """SEC-04 (A4): the API rejects what upstream rejects."""
    async def body(p: Plane) -> None:
        spec = pod("trav", "true")
        spec["spec"]["volumes"] = [
            {"name": "cm", "configMap": {"name": "trav", "items": [
                {"key": "k", "path": "../../../../tmp/sec-trav-relative"},
                {"key": "k", "path": "/tmp/sec-trav-absolute", "mode": 2541}]}},
            {"name": "d", "downwardAPI": {"defaultMode": 4096, "items": [
                {"path": "sub/../../x", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
            {"name": "pr", "projected": {"sources": [{"serviceAccountToken": {"path": "..token"}}]}},
        ]
        with pytest.raises(Invalid) as err:
            await p.client.create("pods", spec)
        got = {(c.field, c.message) for c in err.value.causes}
        assert {
            ("spec.volumes[0].configMap.items[0].path",
             'Invalid value: "../../../../tmp/sec-trav-relative": must not contain \'..\''),
            ("spec.volumes[0].configMap.items[1].path", 'Invalid value: "/tmp/sec-trav-absolute": must be a relative path'),
            ("spec.volumes[0].configMap.items[1].mode",
             "Invalid value: 2541: must be a number between 0 and 0777 (octal), both inclusive"),
            ("spec.volumes[1].downwardAPI.defaultMode",
             "Invalid value: 4096: must be a number between 0 and 0777 (octal), both inclusive"),
            ("spec.volumes[1].downwardAPI.items[0].path", 'Invalid value: "sub/../../x": must not contain \'..\''),
            ("spec.volumes[2].projected.sources[0].serviceAccountToken.path",
             'Invalid value: "..token": must not start with \'..\''),
        } <= got
        assert not Path("/tmp/sec-trav-absolute").exists()

    run(tmp_path, body)


async def _fetch(kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    return {"data": {"k": "written-by-item-path\n"}}


@pytest.mark.parametrize("path", ["../../../../escaped", "/tmp/joblet-sec04-absolute", "a/../../escaped", "..data"])
def test_node_rechecks_item_paths_and_never_writes_outside(tmp_path: Path, path: str) -> None:
    """SEC-04 at the node: a path that got past the API (an old object) is a FailedMount, not a write."""
    import asyncio

    manager = VolumeManager(_fetch, "n1", "127.0.0.1", TokenContext("t"), lambda pod, c, ref: "")
    spec = {"metadata": {"name": "x", "namespace": "default"}, "spec": {"volumes": [
        {"name": "cm", "configMap": {"name": "trav", "items": [{"key": "k", "path": path}]}}]}}
    root = tmp_path / "pods" / "u" / "volumes"
    with pytest.raises(VolumeError):
        asyncio.run(manager.prepare(spec, root))
    written = [f for f in tmp_path.rglob("*") if f.is_file()] + list(Path("/tmp").glob("joblet-sec04-*"))
    assert written == []


def test_log_reads_never_leave_the_log_store(tmp_path: Path) -> None:
    """SEC-05 (A5): `container=../..` and symlinks planted in logs/ are refused for deleted pods."""
    outside = tmp_path / "victim" / "d"
    outside.mkdir(parents=True)
    (outside / "1.log").write_text("2024-01-01T00:00:00Z stdout F secret-outside\n")

    async def body(p: Plane) -> None:
        created = await p.client.create("pods", pod("gone", "echo hello"))
        await p.finished("gone")
        await p.client.delete("pods", "gone", "default", grace_period_seconds=0)
        uid_dir = p.data / "logs" / "default" / "gone" / created["metadata"]["uid"]
        assert await p.output("gone") == "hello\n"  # kept after deletion
        depth = "../" * len(uid_dir.parts)
        for container in (f"{depth}{outside.relative_to('/')}", "../..", "..", "c/../c"):
            with pytest.raises((BadRequest, NotFound)):
                [c async for c in p.client.read_log("default", "gone", container=container)]
        (uid_dir / "evil").symlink_to(outside)  # a symlinked container dir
        with pytest.raises((BadRequest, NotFound)):
            [c async for c in p.client.read_log("default", "gone", container="evil")]
        log = uid_dir / "c" / "0.log"
        log.unlink()
        log.symlink_to(outside / "1.log")  # a symlinked log file
        with pytest.raises((BadRequest, NotFound)):
            [c async for c in p.client.read_log("default", "gone", container="c")]
        for namespace, name in (("..", "gone"), ("default", "../default/gone"), ("default", "..")):
            with pytest.raises((BadRequest, NotFound)):
                [c async for c in p.client.read_log(namespace, name)]

    run(tmp_path, body)


def test_sub_path_symlink_planted_by_init_container_is_not_followed(tmp_path: Path) -> None:
    """SEC-13 (A13, CVE-2017-1002101)."""
    async def body(p: Plane) -> None:
        spec = pod("a13", "ls /mnt/x; cat /mnt/ok/f")
        spec["spec"]["volumes"] = [{"name": "e", "emptyDir": {}}]
        spec["spec"]["initContainers"] = [{"name": "plant", "image": "busybox", "command": [
            "sh", "-c", "ln -s /etc /e/link; mkdir /e/ok; echo inside > /e/ok/f; ln -s ok /e/ok-link"],
            "volumeMounts": [{"name": "e", "mountPath": "/e"}]}]
        spec["spec"]["containers"][0]["volumeMounts"] = [{"name": "e", "mountPath": "/mnt/x", "subPath": "link"},
                                                         {"name": "e", "mountPath": "/mnt/ok", "subPath": "ok-link"}]
        await p.client.create("pods", spec)
        waiting = await p.waiting("a13", "CreateContainerConfigError")
        message = waiting["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
        assert message.startswith('failed to prepare subPath for volumeMount "e" of container "c"')
        assert p.plane.log_store.attempts("default", "a13", "c") == []  # never ran, never listed /etc

        ok = pod("inside", "cat /mnt/ok/f")
        ok["spec"]["volumes"] = spec["spec"]["volumes"]
        ok["spec"]["initContainers"] = spec["spec"]["initContainers"]
        ok["spec"]["containers"][0]["volumeMounts"] = [{"name": "e", "mountPath": "/mnt/ok", "subPath": "ok-link"}]
        await p.client.create("pods", ok)
        done = await p.finished("inside")
        assert done["status"]["phase"] == "Succeeded" and await p.output("inside", container="c") == "inside\n"

    run(tmp_path, body)
    assert os.path.isdir("/etc")
