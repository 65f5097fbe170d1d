"""A pod's projected service-account token, end to end in one process: the registry admits
the pod with a kube-api-access volume, the node agent (real processes, bubblewrap) asks for a
bound token, the pod (non-root) reads it, the ServiceAccountAuthenticator accepts it as the
pod's ServiceAccount, and the agent rotates it at 80% of its lifetime on a fake clock. Also the
TokenRequest subresource over real HTTP (HttpClient and kubectl)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import stat
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa

from joblet.api.registry import Registry
from joblet.api.server import create_app
from joblet.auth import Credentials
from joblet.auth.serviceaccount import ServiceAccountAuthenticator
from joblet.client.local import LocalClient
from joblet.clock import FakeClock
from joblet.node.agent import NodeAgent
from joblet.node.logs import LogStore
from joblet.node.podworker import CONFIG_RETRY_MAX
from joblet.node.runtimes.process import ProcessRuntime
from joblet.node.sandbox import bwrap_path
from joblet.security.satokens import DEFAULT_ISSUER, TokenSigner, TokenVerifier
from joblet.store.memory import MemoryStore
from support.tls import ServerCredentials, api_client, make_credentials, write_test_kubeconfig

Obj = dict[str, Any]
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
needs_bwrap = pytest.mark.skipif(bwrap_path() is None or os.getuid() != 0,
                                 reason="needs bubblewrap and root (mount namespaces, runAsUser)")


class Stack:
    def __init__(self, tmp_path: Path) -> None:
        self.clock = FakeClock()
        self.registry = Registry(MemoryStore(), self.clock, token_signer=TokenSigner(KEY))
        self.logs = LogStore(tmp_path, self.clock)
        self.client = LocalClient(self.registry, self.logs)
        runtime = ProcessRuntime(tmp_path, self.clock, cache_dir=tmp_path.parent / "shim-cache")
        self.agent = NodeAgent(self.client, "n1", tmp_path, self.clock, runtime, logs=self.logs,
                               token_resync_seconds=3600)
        self.authn = ServiceAccountAuthenticator(self.client, TokenVerifier([KEY.public_key()]), self.clock)
        self.registry.create("namespaces", {"metadata": {"name": "default"}})
        self.registry.create("serviceaccounts", {"metadata": {"name": "default", "namespace": "default"}})

    async def until(self, check: Callable[[], Awaitable[bool]], timeout: float = 20) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while not await check():
            assert loop.time() < end, "condition never held"
            await asyncio.sleep(0.05)

    async def log(self, name: str) -> bytes:
        with contextlib.suppress(Exception):
            return b"".join([c async for c in self.logs.read("default", name)])
        return b""


def run(tmp_path: Path, body: Callable[[Stack], Awaitable[None]]) -> None:
    async def main() -> None:
        stack = Stack(tmp_path)
        await stack.agent.start()
        try:
            await body(stack)
        finally:
            await stack.agent.stop()
            for uid in stack.agent.runtime.pods():
                await stack.agent.runtime.remove_pod(uid)

    asyncio.run(asyncio.wait_for(main(), 60))


@needs_bwrap
def test_projected_token_authenticates_as_the_pods_service_account_and_rotates(tmp_path: Path) -> None:
    async def body(s: Stack) -> None:
        s.registry.create("serviceaccounts", {"metadata": {"name": "robot", "namespace": "default"}})
        script = (f"cat {MOUNT}/token; echo; cat {MOUNT}/namespace; echo; id -u; "
                  f"test -s {MOUNT}/ca.crt && echo ca-ok; touch {MOUNT}/x 2>/dev/null || echo read-only; "
                  "while :; do sleep 0.1; done")
        pod = s.registry.create("pods", {"metadata": {"name": "worker"}, "spec": {
            "nodeName": "n1", "restartPolicy": "Never", "serviceAccountName": "robot",
            "terminationGracePeriodSeconds": 1, "securityContext": {"runAsUser": 1000, "runAsGroup": 1000},
            "containers": [{"name": "c", "image": "busybox", "command": ["sh", "-c", script]}]}})
        volume = pod["spec"]["volumes"][0]["name"]
        assert volume.startswith("kube-api-access-")

        async def printed() -> bool:
            return b"read-only" in await s.log("worker")

        await s.until(printed)
        printed_lines = (await s.log("worker")).decode().split("\n")
        token, namespace, uid, ca, read_only = printed_lines[:5]
        assert (namespace, uid, ca, read_only) == ("default", "1000", "ca-ok", "read-only")

        user = await s.authn.authenticate(Credentials(token=token))
        assert user is not None and user.name == "system:serviceaccount:default:robot"
        assert user.extra["authentication.kubernetes.io/pod-uid"] == (pod["metadata"]["uid"],)

        host_file = tmp_path / "pods" / pod["metadata"]["uid"] / "volumes" / volume / "token"
        st = host_file.stat()
        assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (1000, 0o600)  # the pod's user, nobody else
        assert host_file.read_text() == token

        # Not due yet: nothing is rewritten.
        s.clock.advance(0.79 * 3607)
        assert await s.agent.refresh_tokens() == 0
        # 80% of the lifetime: a new token, bound to the same pod, written for the same user.
        s.clock.advance(0.02 * 3607)
        assert await s.agent.refresh_tokens() == 1
        rotated = host_file.read_text()
        assert rotated != token and host_file.stat().st_uid == 1000
        assert (await s.authn.authenticate(Credentials(token=rotated))) == user
        # The old token dies at its expiry (+ upstream's minute of leeway); the new one lives on.
        s.clock.advance(0.2 * 3607 + 61)
        assert await s.authn.authenticate(Credentials(token=token)) is None
        assert await s.authn.authenticate(Credentials(token=rotated)) is not None
        # Deleting the pod revokes its token.
        await s.client.delete("pods", "worker", "default", grace_period_seconds=0)
        assert await s.authn.authenticate(Credentials(token=rotated)) is None

    run(tmp_path, body)


def test_pod_waits_for_its_service_account(tmp_path: Path) -> None:
    """Until the default ServiceAccount exists the token cannot be issued: the container waits
    in ContainerCreating with a FailedMount event, then starts."""
    async def body(s: Stack) -> None:
        s.registry.create("namespaces", {"metadata": {"name": "fresh"}})
        s.registry.create("pods", {"metadata": {"name": "early", "namespace": "fresh"}, "spec": {
            "nodeName": "n1", "restartPolicy": "Never",
            "containers": [{"name": "c", "image": "busybox", "command": ["true"]}]}})

        async def waiting() -> bool:
            status = (await s.client.get("pods", "early", "fresh")).get("status") or {}
            states = [c["state"] for c in status.get("containerStatuses") or []]
            return any((st.get("waiting") or {}).get("reason") == "ContainerCreating" for st in states)

        await s.until(waiting)

        async def failed_mount() -> bool:
            events = (await s.client.list("events", "fresh")).items
            return any(e["reason"] == "FailedMount" and 'serviceaccounts "default" not found' in e["message"]
                       for e in events)

        await s.until(failed_mount)
        s.registry.create("serviceaccounts", {"metadata": {"name": "default", "namespace": "fresh"}})

        async def succeeded() -> bool:
            s.clock.advance(CONFIG_RETRY_MAX)  # the worker retries the mount after a backoff on the (fake) clock
            return ((await s.client.get("pods", "early", "fresh")).get("status") or {}).get("phase") == "Succeeded"

        await s.until(succeeded)

    run(tmp_path, body)


@contextlib.asynccontextmanager
async def serving(client: LocalClient, clock: FakeClock, creds: ServerCredentials) -> AsyncIterator[str]:
    """The API over real HTTPS with the control plane's authenticator (admin token) and RBAC."""
    from joblet.auth.bootstrap import ensure_default_policy
    from joblet.config import ControlPlaneConfig
    from joblet.controlplane import build_authenticator, build_authorizer

    ensure_default_policy(client.registry)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    url = f"https://127.0.0.1:{sock.getsockname()[1]}"
    data_dir = Path(creds.ca_file).parent.parent
    app = create_app(client, clock=clock, authenticator=build_authenticator(ControlPlaneConfig(data_dir=data_dir), clock),
                     authorizer=build_authorizer(client))
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False,
                                           timeout_graceful_shutdown=1, ssl_certfile=creds.cert_file,
                                           ssl_keyfile=creds.key_file))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield url
    finally:
        server.should_exit = True
        await task
        sock.close()


def test_token_request_over_http(tmp_path: Path) -> None:
    async def main() -> None:
        clock = FakeClock()
        registry = Registry(MemoryStore(), clock, token_signer=TokenSigner(KEY))
        registry.create("namespaces", {"metadata": {"name": "default"}})
        registry.create("serviceaccounts", {"metadata": {"name": "robot", "namespace": "default"}})
        creds = make_credentials(tmp_path / "pki-home")
        async with serving(LocalClient(registry), clock, creds) as url:
            http = api_client(url, creds)
            try:
                answer = await http.create_token("robot", {"spec": {"audiences": ["vault"], "expirationSeconds": 900}})
                got = TokenVerifier([KEY.public_key()]).verify(answer["status"]["token"], ["vault"], clock.now())
                assert got.name == "robot" and answer["spec"]["expirationSeconds"] == 900
                with pytest.raises(Exception, match="may not specify a duration less than 10 minutes") as err:
                    await http.create_token("robot", {"spec": {"expirationSeconds": 60}})
                assert getattr(err.value, "code", None) == 422
                kubectl = shutil.which("kubectl")
                if kubectl:
                    out = await asyncio.to_thread(
                        subprocess.run, [kubectl, "create", "token", "robot", "--duration", "20m"],
                        capture_output=True, text=True, timeout=60,
                        env={**os.environ, "KUBECONFIG": str(write_test_kubeconfig(tmp_path / "kc", url, creds))})
                    assert out.returncode == 0, out.stderr
                    got = TokenVerifier([KEY.public_key()]).verify(out.stdout.strip(), [DEFAULT_ISSUER], clock.now())
                    assert (got.expires - got.issued_at).total_seconds() == 1200
            finally:
                await http.close()

    asyncio.run(asyncio.wait_for(main(), 90))


def test_control_plane_signs_with_the_data_dirs_key_and_authenticates_its_tokens(tmp_path: Path) -> None:
    from joblet.config import ControlPlaneConfig
    from joblet.controlplane import ControlPlane
    from joblet.errors import NotFound

    data = tmp_path / "data"

    async def main() -> str:
        plane = ControlPlane(ControlPlaneConfig(data_dir=data), serve_http=False)
        await plane.start()
        try:
            loop = asyncio.get_running_loop()
            end = loop.time() + 20
            for ns in ("default", "kube-system"):
                while True:
                    try:
                        await plane.client.get("serviceaccounts", "default", ns)
                        break
                    except NotFound:
                        assert loop.time() < end, f"no default ServiceAccount in {ns}"
                        await asyncio.sleep(0.05)
            token = str((await plane.client.create_token("default", {}))["status"]["token"])
            user = await plane.service_account_authenticator.authenticate(Credentials(token=token))
            assert user is not None and user.name == "system:serviceaccount:default:default"
            return token
        finally:
            await plane.stop()

    token = asyncio.run(asyncio.wait_for(main(), 60))
    key = data / "pki" / "sa.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and stat.S_IMODE(key.parent.stat().st_mode) == 0o700

    async def restarted() -> None:  # the same key after a restart: earlier tokens stay valid
        plane = ControlPlane(ControlPlaneConfig(data_dir=data), serve_http=False)
        await plane.start()
        try:
            assert await plane.service_account_authenticator.authenticate(Credentials(token=token)) is not None
        finally:
            await plane.stop()

    asyncio.run(asyncio.wait_for(restarted(), 60))
