"""Ray's nodes as joblet Nodes: one virtual node agent per alive Ray node.

Why: the scheduler, the Job controller and kubectl already speak Nodes and pods; a Ray
cluster joins joblet by showing each Ray node as a Node (as virtual-kubelet does for other
engines) whose agent runs containers through :class:`joblet.node.raynodes.runtime.RayRuntime`.

Contract (DESIGN.md "Scale-out"): a Node named ``ray-<first 12 hex of the Ray node id>``,
labelled ``joblet.dev/engine: ray``, ``ray.io/node-id: <id>``, ``kubernetes.io/hostname:
<its hostname>``, capacity and allocatable from Ray's resources (``CPU`` → cpu, ``memory`` →
memory, ``GPU`` → ``nvidia.com/gpu``, custom resource R → ``ray.io/R``; pods: 8 per CPU, at
least 8, since each running pod holds one Ray worker process). Every Ray Node carries the
taint ``joblet.dev/engine=ray:NoSchedule``, so only pods that tolerate it (and usually select
``joblet.dev/engine: ray``) land there, never a local pod by accident; with ``--ray-only``
there is no local node and no taint.

Ray's node table is polled every ``poll_seconds``: a new alive node gets an agent, a node
that is dead or gone loses it; its pods that have not finished are failed with
``DisruptionTarget`` (reason ``DeletionByPodGC``, as PodGC does for a node that no longer
exists) and its Node is deleted. A task that fails because its node died is reported to
:meth:`RayNodes.container_lost`, which waits (up to ``lost_confirm_seconds``) for Ray to
declare the node dead and then fails the pod the same way *before* its container status is
written, so the Job controller never sees the failure without the condition.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
import socket
from pathlib import Path
from typing import Any

import joblet
import ray
from joblet.client.interface import Client
from joblet.clock import Clock
from joblet.errors import ApiError, Conflict, NotFound
from joblet.node.agent import NodeAgent
from joblet.node.logs import LogStore
from joblet.node.raynodes.runtime import RayRuntime
from joblet.node.runtimes.base import ContainerRef
from joblet.objects import failed_pod_status, name_of, namespace_of, uid_of

log = logging.getLogger(__name__)

Obj = dict[str, Any]
ENGINE_LABEL = "joblet.dev/engine"
NODE_ID_LABEL = "ray.io/node-id"
RAY_TAINT = {"key": ENGINE_LABEL, "value": "ray", "effect": "NoSchedule"}
LOST_REASON = "DeletionByPodGC"
PODS_PER_CPU = 8
_RESOURCE_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


def node_name(node_id: str) -> str:
    return f"ray-{node_id[:12]}"


def node_capacity(resources: dict[str, float]) -> dict[str, str]:
    """Node capacity from one Ray node's resources (pure)."""
    cpu = float(resources.get("CPU", 0))
    out = {"cpu": f"{int(cpu * 1000)}m" if cpu != int(cpu) else str(int(cpu)),
           "memory": str(int(resources.get("memory", 0))),
           "pods": str(max(PODS_PER_CPU, int(cpu * PODS_PER_CPU)))}
    if resources.get("GPU"):
        out["nvidia.com/gpu"] = str(int(resources["GPU"]))
    for name, amount in resources.items():
        if name in ("CPU", "GPU", "memory", "object_store_memory") or ":" in name or not _RESOURCE_NAME.match(name):
            continue
        out[f"ray.io/{name}"] = str(int(amount)) if amount == int(amount) else f"{int(amount * 1000)}m"
    return out


class RayNodeAgent(NodeAgent):
    """The node agent of one Ray node: its Node object says what Ray says about the node."""

    def __init__(self, *args: Any, ray_node: Obj, taint: bool = True, sandbox: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ray_node = ray_node
        self.taint = taint
        # the worker uses bubblewrap where the *Ray node* has it; --no-ray-sandbox: never. The pod
        # workers read it from worker_deps, which NodeAgent built from *this* machine's bwrap
        self.sandbox_available = sandbox
        self.worker_deps = dataclasses.replace(self.worker_deps, sandbox=sandbox)

    def node_object(self) -> Obj:
        node = super().node_object()
        ray_node = self.ray_node
        hostname = str(ray_node.get("NodeManagerHostname") or ray_node.get("NodeManagerAddress") or "")
        node["metadata"]["labels"].update({ENGINE_LABEL: "ray", NODE_ID_LABEL: str(ray_node["NodeID"]),
                                           "kubernetes.io/hostname": hostname})
        if self.taint:
            node["spec"]["taints"] = [dict(RAY_TAINT)]
        capacity = node_capacity(dict(ray_node.get("Resources") or {}))
        node["status"]["capacity"], node["status"]["allocatable"] = capacity, dict(capacity)
        node["status"]["addresses"] = [{"type": "InternalIP", "address": str(ray_node.get("NodeManagerAddress"))},
                                       {"type": "Hostname", "address": hostname}]
        node["status"]["nodeInfo"]["containerRuntimeVersion"] = f"ray://{ray.__version__}"
        return node


class RayUnreachable(ConnectionError):
    """``--ray-address`` names no reachable Ray cluster."""


def check_reachable(address: str, timeout: float = 10.0) -> None:
    """Fail fast and clearly for ``host:port`` nobody listens on (``ray.init`` would retry for
    minutes). ``auto`` and ``ray://`` addresses are left to Ray."""
    if address == "auto" or "://" in address:
        return
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise RayUnreachable(f"--ray-address {address!r}: expected HOST:PORT, ray://HOST:PORT or auto")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise RayUnreachable(f"no Ray cluster at {address}: {exc}") from None


def connect(address: str) -> None:
    """``ray.init`` as a driver of the cluster at ``address``; joblet's code travels with the tasks."""
    if ray.is_initialized():
        return
    check_reachable(address)
    ray.init(address=address, namespace="joblet", log_to_driver=False, logging_level=logging.WARNING,
             runtime_env={"py_modules": [joblet], "excludes": ["__pycache__", "*.pyc", "dashboard/static"]})


class RayNodes:
    def __init__(self, client: Client, address: str, data_dir: Path, clock: Clock, logs: LogStore, *,
                 api_url: str | None = None, api_ca_file: Path | None = None, poll_seconds: float = 2.0,
                 lost_confirm_seconds: float = 60.0, heartbeat_seconds: float = 10.0,
                 crash_loop_backoff: float = 10, crash_loop_backoff_max: float = 300, taint: bool = True,
                 sandbox: bool = True) -> None:
        """``taint``: put ``joblet.dev/engine=ray:NoSchedule`` on the Ray Nodes (off when Ray is
        the only place pods run, ``--ray-only``). ``sandbox``: run pods under bubblewrap where
        the Ray node has it (``--no-ray-sandbox``: plain processes)."""
        self.client = client
        self.taint = taint
        self.sandbox = sandbox
        self.address = address
        self.data_dir = data_dir / "ray"
        self.clock = clock
        self.logs = logs
        self.api_url = api_url
        self.api_ca_file = api_ca_file
        self.poll_seconds = poll_seconds
        self.lost_confirm_seconds = lost_confirm_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.crash_loop_backoff = crash_loop_backoff
        self.crash_loop_backoff_max = crash_loop_backoff_max
        self.agents: dict[str, RayNodeAgent] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await asyncio.to_thread(connect, self.address)
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        await self.sync()
        self._task = asyncio.get_running_loop().create_task(self._poll(), name="ray-nodes")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for agent in self.agents.values():
            await agent.stop()
            assert isinstance(agent.runtime, RayRuntime)
            agent.runtime.close()
        self.agents.clear()
        await asyncio.to_thread(ray.shutdown)

    async def _poll(self) -> None:
        while True:
            await self.clock.sleep_async(self.poll_seconds)
            try:
                await self.sync()
            except (ApiError, ray.exceptions.RayError, OSError) as exc:
                log.warning("syncing Ray nodes failed: %s", exc)

    async def alive_nodes(self) -> dict[str, Obj]:
        nodes = await asyncio.to_thread(ray.nodes)
        return {str(n["NodeID"]): n for n in nodes if n.get("Alive")}

    async def sync(self) -> None:
        alive = await self.alive_nodes()
        for node_id, ray_node in alive.items():
            if node_id not in self.agents:
                await self._add(node_id, ray_node)
        for node_id in [n for n in self.agents if n not in alive]:
            await self._remove(node_id)

    async def _add(self, node_id: str, ray_node: Obj) -> None:
        name = node_name(node_id)
        agent_dir = self.data_dir / name
        agent_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        runtime = RayRuntime(agent_dir, self.clock, node_id,
                             volume_root=lambda uid: agent_dir / "pods" / uid / "volumes",
                             on_lost=lambda ref, message: self.container_lost(node_id, ref, message))
        agent = RayNodeAgent(self.client, name, agent_dir, self.clock, runtime, logs=self.logs,
                             api_url=self.api_url, api_ca_file=self.api_ca_file, ray_node=ray_node, taint=self.taint,
                             sandbox=self.sandbox,
                             heartbeat_seconds=self.heartbeat_seconds, crash_loop_backoff=self.crash_loop_backoff,
                             crash_loop_backoff_max=self.crash_loop_backoff_max)
        self.agents[node_id] = agent
        await agent.start()
        log.info("Ray node %s joined as Node %s", node_id, name)

    async def _remove(self, node_id: str) -> None:
        agent = self.agents.pop(node_id)
        await agent.stop()
        name = node_name(node_id)
        log.warning("Ray node %s (Node %s) is gone: failing its pods", node_id, name)
        listed = await self.client.list("pods", field_selector=f"spec.nodeName={name}")
        for pod in listed.items:
            await self._fail(pod, node_id)
        assert isinstance(agent.runtime, RayRuntime)
        agent.runtime.close()
        with contextlib.suppress(NotFound):
            await self.client.delete("nodes", name)

    async def _fail(self, pod: Obj, node_id: str) -> None:
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return
        status = failed_pod_status(pod, self.clock.now(), LOST_REASON,
                                   f"PodGC: node no longer exists (Ray node {node_id} died)")
        with contextlib.suppress(NotFound, Conflict):
            await self.client.patch("pods", name_of(pod), {"status": status}, namespace_of(pod),
                                    subresource="status")

    async def container_lost(self, node_id: str, ref: ContainerRef, message: str) -> None:
        """A container's Ray task was lost: if its node is dying, fail the pod with DisruptionTarget."""
        deadline = self.clock.monotonic() + self.lost_confirm_seconds
        while self.clock.monotonic() < deadline:
            if node_id not in await self.alive_nodes():
                agent = self.agents.get(node_id)
                listed = await self.client.list("pods", field_selector=f"spec.nodeName={node_name(node_id)}")
                for pod in listed.items:
                    if uid_of(pod) == ref.pod_uid:
                        await self._fail(pod, node_id)
                if agent is not None:
                    log.info("%s: %s", ref.container_id, message)
                return
            await self.clock.sleep_async(1.0)
        log.warning("%s: %s, but Ray node %s is still alive", ref.container_id, message, node_id)
