"""``joblet node --server URL``: a node agent alone, against a remote joblet server.

With ``--server URL1,URL2,...`` (replicas on one store) the agent's client fails over to the
next URL when one stops answering: requests are retried there, watches resume from the last
resourceVersion they saw, heartbeats go on (:class:`joblet.client.http.HttpClient`).

Why: one machine is not always enough. The agent is the same :class:`joblet.node.agent.NodeAgent`
the single-process server runs; only its client changes (HTTP instead of in-process). A node
process has no store, so it does not take the data dir's store lock (``DATA_DIR/lock``);
it takes ``DATA_DIR/node.lock`` instead, so two agents (a ``joblet node`` or a server running
the ``node`` component) never share one dir's runtime state. Container logs are written to
the node's own data dir (``DATA_DIR/logs``), as a kubelet keeps them on its machine.

The heartbeat interval follows the server's ``--node-heartbeat-timeout`` the way the
kubelet's 10 s relate to the node controller's 40 s grace (a quarter), see
:func:`heartbeat_interval`.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from joblet.datadir import DataDirBusy, DataDirLock, default_data_dir

log = logging.getLogger(__name__)

#: the kubelet's nodeStatusUpdateFrequency.
DEFAULT_HEARTBEAT_SECONDS = 10.0
NODE_LOCK_FILE = "node.lock"
#: seconds before an agent that ended (server unreachable) is started again.
RESTART_DELAY = 1.0


def heartbeat_interval(heartbeat_timeout: float) -> float:
    """How often an agent heartbeats so that a node controller with ``heartbeat_timeout``
    never misses it: every 10 s, or a quarter of the timeout when that is shorter."""
    return max(0.05, min(DEFAULT_HEARTBEAT_SECONDS, heartbeat_timeout / 4))


class NodeDirBusy(DataDirBusy):
    """Another node agent runs in this data dir (a DataDirBusy, so every CLI verb reports it)."""


class NodeDirLock(DataDirLock):
    """An exclusive ``flock`` on ``DATA_DIR/node.lock`` held while an agent runs there."""

    FILE = NODE_LOCK_FILE
    HOLDER = "another node agent"
    BUSY = NodeDirBusy


@dataclass
class NodeConfig:
    #: the API server's URL; replicas of one store comma-separated (failed over in that order)
    server: str
    data_dir: Path
    token: str | None = None
    #: a kubeconfig with the server's CA and this node's credentials (``--kubeconfig``);
    #: ``server``, when set, overrides its server URL.
    kubeconfig: str | None = None
    node_name: str = ""
    verify_tls: bool = True
    heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS
    crash_loop_backoff: float = 10.0
    crash_loop_backoff_max: float = 300.0
    log_retention_days: float = 7.0
    log_retention_bytes: int = 1 << 30
    container_log_max_bytes: int = 10 * 1024 * 1024
    container_log_max_files: int = 5
    #: the port of the node's log endpoint (joblet.node.logserver); 0: one the OS picks
    log_port: int = 10250
    #: the address the API server dials for logs (default: this machine's address toward the server)
    address: str = ""
    #: run the virtual node agents of this Ray cluster instead of a local agent (``--ray-address``).
    ray_address: str | None = None
    eviction_hard: str = "nodefs.available<5%"
    #: a row of joblet.node.runtimes.registry.RUNTIMES
    runtime: str = "process"

    @property
    def name(self) -> str:
        return self.node_name or socket.gethostname().lower() or "joblet-node"


def node_access(config: NodeConfig) -> Any:
    """The server and credentials of a node: its kubeconfig, else ``--server`` and the token."""
    import dataclasses

    from joblet.kubeconfig import Access, load_access

    first = config.server.split(",")[0].strip()
    if config.kubeconfig:
        access = load_access(config.kubeconfig)
        if first:
            access = dataclasses.replace(access, server=first)
        if config.token:
            access = dataclasses.replace(access, token=config.token)
        return access
    return Access(first, config.token, insecure=not config.verify_tls)


def fallback_servers(config: NodeConfig) -> list[str]:
    """The replicas after the first of ``--server URL1,URL2,...``."""
    return [u.strip() for u in config.server.split(",")[1:] if u.strip()]


async def run_node(config: NodeConfig, console: Console, stop: asyncio.Event | None = None) -> None:
    """Register the node with the server and run its pods until SIGINT/SIGTERM (or ``stop``).

    Containers keep running when the agent stops; the next agent in this dir adopts them."""
    from joblet.client.http import HttpClient
    from joblet.clock import RealClock
    from joblet.node.agent import NodeAgent
    from joblet.node.logs import LogStore
    from joblet.node.runtimes.process import hidden_dirs
    from joblet.node.runtimes.registry import RuntimeOptions, open_runtime

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    lock = NodeDirLock(config.data_dir)
    lock.acquire({"node": config.name, "server": config.server or str(config.kubeconfig)})
    clock = RealClock()
    access = node_access(config)
    client = HttpClient.from_access(access, fallbacks=fallback_servers(config))
    logs = LogStore(config.data_dir, clock, retention_days=config.log_retention_days,
                    max_total_bytes=config.log_retention_bytes)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    stopping = asyncio.ensure_future(stop.wait())
    announced = False
    log_server, log_endpoint = await start_log_server(config, access, logs, clock)
    try:
        if config.ray_address:
            await _run_ray_nodes(config, client, clock, logs, access.server, console, stopping)
            return
        while not stop.is_set():
            # One agent per attempt: when the server is unreachable (or a watch gives up) the
            # agent ends; a fresh one re-registers and adopts the running containers.
            # pods see neither this node's dir nor a server's default data dir on the same machine
            runtime = open_runtime(config.runtime, RuntimeOptions(
                config.data_dir, clock, log_max_bytes=config.container_log_max_bytes,
                log_max_files=config.container_log_max_files, hidden=hidden_dirs(config.data_dir, default_data_dir())))
            agent = NodeAgent(client, config.name, config.data_dir, clock, runtime,
                              crash_loop_backoff=config.crash_loop_backoff,
                              crash_loop_backoff_max=config.crash_loop_backoff_max, logs=logs,
                              heartbeat_seconds=config.heartbeat_seconds, api_url=access.server,
                              log_endpoint=log_endpoint, eviction_hard=config.eviction_hard)
            running = asyncio.ensure_future(agent.run())
            if not announced:
                console.print(f"joblet node {config.name}: serving pods for {access.server} "
                              f"(data dir {config.data_dir})")
                announced = True
            await asyncio.wait([running, stopping], return_when=asyncio.FIRST_COMPLETED)
            if not running.done():
                running.cancel()
                await asyncio.gather(running, return_exceptions=True)
                await agent.stop()
            runtime.close()  # give back idle cgroups
            if not running.done() or stop.is_set():
                break
            error = running.exception()
            log.warning("node agent ended (%s); restarting in %.0f s", error or "no error", RESTART_DELAY)
            await asyncio.wait([stopping], timeout=RESTART_DELAY)
    finally:
        stopping.cancel()
        if log_server is not None:
            await log_server.close()
        await client.close()
        lock.release()


def address_toward(server_url: str) -> str:
    """This machine's address on the route to the API server (a UDP connect sends nothing)."""
    from urllib.parse import urlsplit

    url = urlsplit(server_url)
    host = url.hostname or "127.0.0.1"
    try:
        infos = socket.getaddrinfo(host, url.port or 443, type=socket.SOCK_DGRAM)
        family, _, _, _, sockaddr = infos[0]
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.connect(sockaddr)
            return str(s.getsockname()[0])
    except OSError:
        return "127.0.0.1"


async def start_log_server(config: NodeConfig, access: Any, logs: Any,
                           clock: Any) -> tuple[Any, tuple[str, int, bytes] | None]:
    """The node's log endpoint (joblet.node.logserver), when the node has the cluster CA to
    verify the API server's client certificate with; else (None, None) and no remote logs."""
    from joblet.node.logserver import LogServer

    if not access.ca_data or access.insecure:
        log.warning("no cluster CA in the node's kubeconfig: pods/log of this node's pods is not served "
                    "to the API server (joblet logs on this machine still reads them)")
        return None, None
    address = config.address or address_toward(access.server)
    server = LogServer(logs, config.data_dir, access.ca_data, clock, address=address, host=address,
                       port=config.log_port)
    try:
        port = await server.start()
    except OSError as err:  # the port is published on the Node, so any free one serves as well
        log.warning("log endpoint port %d unavailable (%s); using a free port", config.log_port, err)
        server.port = 0
        port = await server.start()
    return server, (address, port, server.cert_pem)


async def _run_ray_nodes(config: NodeConfig, client: Any, clock: Any, logs: Any, server: str, console: Console,
                         stopping: asyncio.Future[Any]) -> None:
    """``joblet node --ray-address``: one Node per alive Ray node, until stopped."""
    from joblet.node.raynodes.nodes import RayNodes

    nodes = RayNodes(client, str(config.ray_address), config.data_dir, clock, logs, api_url=server,
                     heartbeat_seconds=config.heartbeat_seconds, crash_loop_backoff=config.crash_loop_backoff,
                     crash_loop_backoff_max=config.crash_loop_backoff_max)
    await nodes.start()
    console.print(f"joblet node: {len(nodes.agents)} Ray node(s) of {config.ray_address} serving pods for {server}")
    try:
        await stopping
    finally:
        await nodes.stop()
