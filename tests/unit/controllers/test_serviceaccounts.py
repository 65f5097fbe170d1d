"""The serviceaccounts controller and the root-CA publisher: pure decisions, then the real loop
over a registry (memory store) and the in-process client."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from joblet.api.registry import Registry
from joblet.client.local import LocalClient
from joblet.clock import FakeClock
from joblet.controllers.runtime import ControllerManager, InformerFactory
from joblet.controllers.serviceaccounts import (
    DESCRIPTION_ANNOTATION,
    ca_file_reader,
    missing_default,
    service_account_controllers,
    wanted_root_ca,
)
from joblet.errors import NotFound
from joblet.store.memory import MemoryStore

Obj = dict[str, Any]
NS = {"metadata": {"name": "team"}, "status": {"phase": "Active"}}
TERMINATING = {"metadata": {"name": "team", "deletionTimestamp": "2024-01-01T00:00:00Z"},
               "status": {"phase": "Terminating"}}


def test_missing_default() -> None:
    assert missing_default(NS, None)
    assert not missing_default(NS, {"metadata": {"name": "default"}})
    assert not missing_default(TERMINATING, None)
    assert not missing_default(None, None)


def test_wanted_root_ca() -> None:
    created = wanted_root_ca(NS, None, "PEM")
    assert created is not None
    assert created["metadata"]["name"] == "kube-root-ca.crt" and created["metadata"]["namespace"] == "team"
    assert created["data"] == {"ca.crt": "PEM"} and DESCRIPTION_ANNOTATION in created["metadata"]["annotations"]
    assert wanted_root_ca(NS, created, "PEM") is None
    fixed = wanted_root_ca(NS, {**created, "data": {"ca.crt": "forged", "extra": "x"}}, "PEM")
    assert fixed is not None and fixed["data"] == {"ca.crt": "PEM"}
    assert wanted_root_ca(NS, None, None) is None  # no CA (plain HTTP): nothing to publish
    assert wanted_root_ca(TERMINATING, None, "PEM") is None


def test_ca_file_reader(tmp_path: Path) -> None:
    read = ca_file_reader(tmp_path / "ca.crt")
    assert read() is None
    (tmp_path / "ca.crt").write_text("PEM")
    assert read() == "PEM"


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 10) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not await check():
        assert loop.time() < end, "condition never held"
        await asyncio.sleep(0.01)


def test_controllers_keep_default_sa_and_root_ca_in_every_namespace(tmp_path: Path) -> None:
    (tmp_path / "pki").mkdir()
    (tmp_path / "pki" / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\nA\n")

    async def go() -> None:
        client = LocalClient(Registry(MemoryStore(), FakeClock()))
        await client.create("namespaces", {"metadata": {"name": "default"}})
        manager = ControllerManager(service_account_controllers(client, FakeClock(), InformerFactory(client), tmp_path))
        await manager.start()
        try:
            async def present(resource: str, name: str, ns: str) -> bool:
                try:
                    await client.get(resource, name, ns)
                    return True
                except NotFound:
                    return False

            await until(lambda: present("serviceaccounts", "default", "default"))
            await until(lambda: present("configmaps", "kube-root-ca.crt", "default"))
            await client.create("namespaces", {"metadata": {"name": "team"}})
            await until(lambda: present("serviceaccounts", "default", "team"))
            await until(lambda: present("configmaps", "kube-root-ca.crt", "team"))
            cm = await client.get("configmaps", "kube-root-ca.crt", "team")
            assert cm["data"] == {"ca.crt": "-----BEGIN CERTIFICATE-----\nA\n"}

            # deleted → recreated (with a new uid); tampered → repaired
            old_uid = (await client.get("serviceaccounts", "default", "team"))["metadata"]["uid"]
            await client.delete("serviceaccounts", "default", "team")
            await until(lambda: present("serviceaccounts", "default", "team"))
            assert (await client.get("serviceaccounts", "default", "team"))["metadata"]["uid"] != old_uid
            await client.patch("configmaps", "kube-root-ca.crt", {"data": {"ca.crt": "evil"}}, "team")

            async def repaired() -> bool:
                return (await client.get("configmaps", "kube-root-ca.crt", "team"))["data"]["ca.crt"] != "evil"

            await until(repaired)
            await client.delete("configmaps", "kube-root-ca.crt", "team")
            await until(lambda: present("configmaps", "kube-root-ca.crt", "team"))
            # other ServiceAccounts are left alone
            await client.create("serviceaccounts", {"metadata": {"name": "robot"}}, "team")
            await client.delete("serviceaccounts", "robot", "team")
            await asyncio.sleep(0.1)
            assert not await present("serviceaccounts", "robot", "team")
        finally:
            await manager.stop()

    asyncio.run(asyncio.wait_for(go(), 30))
