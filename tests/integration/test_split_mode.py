"""Split mode, as a user runs it on several machines: ``joblet server --components
api,controllers`` in one process, ``joblet node --server URL`` in another with its own data
dir. A Job runs to completion on the remote node; killing the node process fails its
running pod with ``DisruptionTarget`` after the (shortened) heartbeat timeout, and the Job
replaces it once a new node process starts."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from joblet.client.http import HttpClient
from joblet.client.interface import Client
from joblet.kubeconfig import load_access
from support import waiting
from support.process import wait_until_serving

#: this file's components take a while on a busy machine
eventually = functools.partial(waiting.eventually, timeout=30.0, interval=0.1)

Obj = dict[str, Any]
HEARTBEAT_TIMEOUT = "3"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def joblet(*args: str, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "JOBLET_DATA_DIR")}
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "joblet", *args], stdout=out, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Path]:
    """The server's kubeconfig (its URL, CA and admin token)."""
    port = free_port()
    proc = joblet("server", "--data-dir", str(tmp_path / "server"), "--port", str(port),
                  "--components", "api,controllers", "--node-heartbeat-timeout", HEARTBEAT_TIMEOUT,
                  "--pod-failure-backoff", "0.1", log=tmp_path / "server.log")
    kubeconfig = tmp_path / "server" / "kubeconfig"
    try:
        wait_until_serving(proc, kubeconfig, log=tmp_path / "server.log")
        yield kubeconfig
    finally:
        stop(proc)


def job(name: str, command: str, **spec: Any) -> Obj:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "spec": {
        "template": {"spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                              "containers": [{"name": "c", "image": "busybox", "command": ["sh", "-c", command]}]}},
        **spec}}


async def condition(client: Client, name: str, ctype: str) -> bool:
    obj = await client.get("jobs", name, "default")
    return any(c["type"] == ctype and c["status"] == "True" for c in obj["status"].get("conditions") or [])


async def job_pods(client: Client, name: str) -> list[Obj]:
    return (await client.list("pods", "default", label_selector=f"batch.kubernetes.io/job-name={name}")).items


def test_remote_node_runs_jobs_and_its_loss_is_survived(tmp_path: Path, server: Path) -> None:
    node_dir = tmp_path / "node"
    marker = tmp_path / "first-attempt-ran"
    node_args = ("node", "--kubeconfig", str(server), "--node-name", "worker-1", "--data-dir", str(node_dir),
                 "--heartbeat-seconds", "0.5")
    node = joblet(*node_args, log=tmp_path / "node.log")
    second: subprocess.Popen[bytes] | None = None

    async def body() -> None:
        nonlocal node, second
        client = HttpClient.from_access(load_access(server))
        seen: list[Obj] = []

        async def record() -> None:
            async for batch in client.watch("pods", "default"):
                seen.extend(e.object for e in batch)

        recorder = asyncio.create_task(record())
        try:
            # 1. A Job runs to completion on the remote node; its logs stay on the node.
            await client.create("jobs", job("hello", "echo hello from the node"), "default")
            await eventually(lambda: condition(client, "hello", "Complete"), what="job hello to complete")
            assert {p["spec"]["nodeName"] for p in await job_pods(client, "hello")} == {"worker-1"}
            logs = [f for f in (node_dir / "logs").rglob("*") if f.is_file()]
            assert any(b"hello from the node" in f.read_bytes() for f in logs)

            # 2. The node dies while a pod runs: the pod fails with DisruptionTarget ...
            await client.create("jobs", job(
                "survivor", f"if [ -e {marker} ]; then echo second attempt; exit 0; fi; touch {marker}; sleep 60",
                backoffLimit=0,
                podFailurePolicy={"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]},
            ), "default")

            async def running() -> bool:
                return marker.exists() and any(p["status"].get("phase") == "Running"
                                               for p in await job_pods(client, "survivor"))

            await eventually(running, what="the survivor pod to run")
            node.kill()  # no goodbye: the heartbeats just stop
            node.wait(5)

            def disrupted() -> list[Obj]:
                return [p for p in seen if p["metadata"].get("labels", {}).get("batch.kubernetes.io/job-name")
                        == "survivor" and p["status"].get("phase") == "Failed"
                        and any(c["type"] == "DisruptionTarget" for c in p["status"].get("conditions") or [])]

            async def failed_with_disruption() -> bool:
                return bool(disrupted())

            await eventually(failed_with_disruption, what="the pod on the dead node to fail")
            cond = next(c for c in disrupted()[-1]["status"]["conditions"] if c["type"] == "DisruptionTarget")
            assert cond["reason"] == "DeletionByTaintManager"
            lost = await client.get("nodes", "worker-1")
            assert next(c for c in lost["status"]["conditions"] if c["type"] == "Ready")["status"] == "Unknown"

            # 3. ... and the Job replaces it, not counting a failure, once a node is back.
            second = joblet(*node_args, log=tmp_path / "node2.log")
            await eventually(lambda: condition(client, "survivor", "Complete"), what="job survivor to complete")
            survivor = await client.get("jobs", "survivor", "default")
            assert survivor["status"].get("succeeded") == 1
            assert not survivor["status"].get("failed")
            back = await client.get("nodes", "worker-1")
            assert next(c for c in back["status"]["conditions"] if c["type"] == "Ready")["status"] == "True"
        finally:
            recorder.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await recorder
            await client.close()

    try:
        asyncio.run(body())
    finally:
        stop(node)
        if second is not None:
            stop(second)


def test_pod_logs_of_a_remote_node_are_proxied_by_the_server(tmp_path: Path, server: Path) -> None:
    """``pods/log`` of a pod that ran on a ``joblet node`` elsewhere: the API server proxies to
    the node's log endpoint (mutual TLS), as kube-apiserver to the kubelet; real kubectl reads it.
    The endpoint refuses a peer without the API server's client certificate."""
    import shutil
    import ssl

    import httpx

    from joblet.clock import RealClock
    from joblet.security.pki import issue_client_cert

    node_dir = tmp_path / "node"
    node = joblet("node", "--kubeconfig", str(server), "--node-name", "worker-logs", "--data-dir", str(node_dir),
                  "--heartbeat-seconds", "0.5", "--log-port", "0", log=tmp_path / "node.log")

    async def body() -> tuple[str, Obj]:
        client = HttpClient.from_access(load_access(server))
        try:
            await client.create("jobs", job("remote-logs", "echo line one; echo line two"), "default")
            await eventually(lambda: condition(client, "remote-logs", "Complete"), what="job remote-logs to complete")
            [pod] = await job_pods(client, "remote-logs")
            assert pod["spec"]["nodeName"] == "worker-logs"
            return pod["metadata"]["name"], await client.get("nodes", "worker-logs")
        finally:
            await client.close()

    try:
        pod, node_obj = asyncio.run(body())
        access = load_access(server)
        with httpx.Client(base_url=access.server, verify=access.ssl_context(),
                          headers={"Authorization": f"Bearer {access.token}"}) as http:
            base = f"/api/v1/namespaces/default/pods/{pod}/log"
            assert http.get(base).text == "line one\nline two\n"
            assert http.get(base, params={"tailLines": "1"}).text == "line two\n"
            assert http.get(base, params={"follow": "true"}).text == "line one\nline two\n"
            assert http.get(base, params={"timestamps": "true"}).text.split(" ", 1)[1].startswith("line one")
            assert http.get(base, params={"container": "nope"}).status_code == 400
        kubectl = shutil.which("kubectl")
        if kubectl is not None:
            home = tmp_path / "home"
            home.mkdir()
            out = subprocess.run([kubectl, "--kubeconfig", str(server), "logs", pod], capture_output=True,
                                 text=True, timeout=60, env={"HOME": str(home), "PATH": "/usr/bin:/bin"})
            assert out.returncode == 0 and out.stdout == "line one\nline two\n", out.stderr

        # the node's endpoint itself: only the API server's certificate gets in
        address = next(a["address"] for a in node_obj["status"]["addresses"] if a["type"] == "InternalIP")
        port = node_obj["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
        pem = node_obj["metadata"]["annotations"]["joblet.dev/log-endpoint-certificate"]
        url = f"https://{address}:{port}/containerLogs/default/{pod}/c"
        with pytest.raises(httpx.HTTPError):  # no client certificate: the handshake fails
            httpx.get(url, verify=ssl.create_default_context(cadata=pem), timeout=5)
        other_cert, other_key = issue_client_cert(tmp_path / "server", "alice", ("system:masters",), RealClock().now())
        (tmp_path / "alice.crt").write_bytes(other_cert)
        (tmp_path / "alice.key").write_bytes(other_key)
        ctx = ssl.create_default_context(cadata=pem)
        ctx.load_cert_chain(tmp_path / "alice.crt", tmp_path / "alice.key")
        refused = httpx.get(url, verify=ctx, timeout=5)
        assert refused.status_code == 403 and "line one" not in refused.text
    finally:
        stop(node)
