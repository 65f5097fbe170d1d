"""Two control-plane replicas on one store, in one process: one identity, one leader, failover.

Why: the replicas' contract does not need PostgreSQL to be checked — two ControlPlanes on one
in-memory store object serve the same API over real HTTPS. The first leads the controllers and
holds Lease kube-system/joblet-controller-manager (kubectl shows it); a kubeconfig written by
one works against the other (one CA, one token table); a failover client's watch opened on the
leader resumes on the other replica when the leader stops, and the other takes the lease.
(The multi-process, kill -9, PostgreSQL version is tests/integration/test_ha_postgres.py.)
"""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
from pathlib import Path
from typing import Any

from joblet.client.http import HttpClient
from joblet.config import ControlPlaneConfig
from joblet.controlplane import ControlPlane
from joblet.kubeconfig import load_access
from joblet.store.memory import MemoryStore

KUBECTL = "/usr/bin/kubectl"


def plane(data_dir: Path, store: MemoryStore) -> ControlPlane:
    cfg = ControlPlaneConfig(data_dir=data_dir, port=0, components=("api", "controllers"),
                             leader_elect_lease_duration=3.0, leader_elect_renew_deadline=2.0,
                             leader_elect_retry_period=0.5)
    return ControlPlane(cfg, store=store)


def kubectl(kubeconfig: Path, server: str, *args: str) -> str:
    out = subprocess.run([KUBECTL, "--kubeconfig", str(kubeconfig), "--server", server, *args],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_two_replicas_share_identity_elect_one_leader_and_fail_over(tmp_path: Path) -> None:
    async def main() -> None:
        store = MemoryStore()
        a, b = plane(tmp_path / "a", store), plane(tmp_path / "b", store)
        await a.start()
        await b.start()
        try:
            assert a.elector.leading and a._manager is not None
            assert not b.elector.leading and b._manager is None  # controllers wait on the follower
            assert a.url and b.url
            # one identity: the CA data and admin token of each replica's kubeconfig work on the other
            assert (tmp_path / "a/pki/ca.crt").read_bytes() == (tmp_path / "b/pki/ca.crt").read_bytes()
            for own, other in (("a", b.url), ("b", a.url)):
                out = await asyncio.to_thread(kubectl, tmp_path / own / "kubeconfig", other,
                                              "get", "lease", "-n", "kube-system")
                lines = out.splitlines()
                assert lines[0].split() == ["NAME", "HOLDER", "AGE"]
                assert lines[1].split()[:2] == ["joblet-controller-manager", a.elector.config.identity]

            access = dataclasses.replace(load_access(tmp_path / "b" / "kubeconfig"), server=a.url)  # a first
            client = HttpClient.from_access(access, fallbacks=[b.url])
            created = await client.create("configmaps", {"metadata": {"name": "before"}, "data": {"k": "v"}})
            seen: list[tuple[str, str]] = []
            stream = client.watch("configmaps", "default", created["metadata"]["resourceVersion"])

            async def collect() -> None:
                async for batch in stream:
                    seen.extend((ev.type, ev.object["metadata"]["name"]) for ev in batch)

            watching = asyncio.ensure_future(collect())
            await client.create("configmaps", {"metadata": {"name": "on-a"}})
            await wait_for(lambda: ("ADDED", "on-a") in seen)
            lease_before = await client.get("leases", "joblet-controller-manager", "kube-system")
            await a.stop()  # a goes away (and releases the lease, as client-go's ReleaseOnCancel)
            # b takes the lease and starts the controllers within a few retry periods
            await wait_for(lambda: b.elector.leading and b._manager is not None, timeout=10)
            # the same client, its watch now on b: writes through b reach it, nothing lost or repeated
            made = await client.create("configmaps", {"metadata": {"name": "on-b"}})
            assert client.base_url == b.url
            await wait_for(lambda: ("ADDED", "on-b") in seen)
            assert seen == [("ADDED", "on-a"), ("ADDED", "on-b")]
            lease = await client.get("leases", "joblet-controller-manager", "kube-system")
            assert lease["spec"]["holderIdentity"] == b.elector.config.identity
            assert lease["spec"]["leaseTransitions"] == lease_before["spec"]["leaseTransitions"] + 1
            assert int(made["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
            watching.cancel()
            await asyncio.gather(watching, return_exceptions=True)
            await client.close()
        finally:
            await b.stop()
            await a.stop()
            store.close()

    asyncio.run(main())


async def wait_for(check: Any, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)
