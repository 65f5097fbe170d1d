"""Assembling joblet: store, registry, controllers, node agent and API server in one
event loop, over one data directory.

``joblet server`` runs everything until it is told to stop; ``joblet run`` without a
server runs the same control plane for the length of one Job; the offline CLI opens
only the store and registry to read history. This module is the only place that knows
how the parts fit; the parts only know the client interface.

One module, on purpose: it is the assembly of one process (store, registry, controllers,
agent, HTTP), read top to bottom; each part it wires lives in its own package.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from joblet.api.registry import Registry
from joblet.auth import Authenticator, Authorizer
from joblet.auth.serviceaccount import ServiceAccountAuthenticator
from joblet.client.interface import Client
from joblet.client.local import LocalClient
from joblet.clock import Clock, RealClock, poll_pause
from joblet.config import ControlPlaneConfig
from joblet.controllers.runtime import Controller, ControllerManager, InformerFactory
from joblet.datadir import DataDirLock
from joblet.errors import AlreadyExists, ApiError
from joblet.metrics import JobletMetrics, TimedStore
from joblet.metrics import bind as bind_metrics
from joblet.security.satokens import TokenSigner, TokenVerifier, load_or_create_signing_key
from joblet.store.interface import Store

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import BaseRoute

    from joblet.security.encryption import AesGcmEncryption

log = logging.getLogger(__name__)

BOOTSTRAP_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


class ControlPlane:
    def __init__(
        self,
        config: ControlPlaneConfig,
        *,
        run_controllers: bool = True,
        serve_http: bool = True,
        http_optional: bool = False,
        clock: Clock | None = None,
        store: Store | None = None,
    ) -> None:
        self.config = config
        self.clock: Clock = clock or RealClock()
        self.run_controllers = run_controllers
        self.serve_http = serve_http
        self.http_optional = http_optional
        self._store = store
        self._lock = DataDirLock(config.data_dir)
        self._manager: ControllerManager | None = None
        self._agent: Any = None
        self._ray: Any = None
        self._node_lock: Any = None
        self._recorder: Any = None
        self._http: Any = None
        self._authorizer: Authorizer | None = None
        self._http_task: asyncio.Task[None] | None = None
        self._audit: Any = None
        self._access: Any = None
        self._prune_task: asyncio.Task[None] | None = None
        self._tokens_task: asyncio.Task[None] | None = None
        self.tokens: Any = None
        self._event_ttl_task: asyncio.Task[None] | None = None
        #: the leader election of the controllers (joblet.controllers.leaderelection)
        self.elector: Any = None
        self._election_task: asyncio.Task[None] | None = None
        self.url: str | None = None
        #: the CA that signed the serving certificate (pods' ca.crt), when joblet issued it
        self.api_ca_file: Path | None = None
        self.client: LocalClient

    async def start(self) -> None:
        from joblet.node.logs import LogStore
        from joblet.store import default_store_url, open_store

        cfg = self.config
        self._lock.acquire({"state": "starting"})
        try:
            self.store: Store = self._store or open_store(cfg.store or default_store_url(cfg.data_dir),
                                                          encryption=self._encryption())
            self.metrics = JobletMetrics(self.clock)  # joblet.metrics: one registry per plane
            # One identity per store: the CA and SA key of the store (joblet.auth.identity) replace
            # this data dir's, or become the store's when it has none yet.
            self._share_identity()
            # Service-account tokens: signed with D/pki/sa.key (the store's, see above).
            self.service_account_key = load_or_create_signing_key(cfg.data_dir)
            self.registry = Registry(TimedStore(self.store, self.metrics), self.clock,
                                     token_signer=TokenSigner(self.service_account_key))
            self.log_store = LogStore(cfg.data_dir, self.clock, retention_days=cfg.log_retention_days,
                                      max_total_bytes=cfg.log_retention_bytes)
            self.client = LocalClient(self.registry, self.log_store)
            # Pods' tokens authenticate as their ServiceAccount: one more entry in the authenticator chain.
            self.service_account_authenticator = ServiceAccountAuthenticator(
                self.client, TokenVerifier([self.service_account_key.public_key()]), self.clock)
            bind_metrics(self.client, self.metrics)
            self._prune_task = asyncio.create_task(self._prune_logs(), name="log-retention")
            self._bootstrap()
            if self.serve_http and "api" in cfg.components:
                # Before the node agent: pods get the API's address (KUBERNETES_SERVICE_HOST/PORT).
                try:
                    await self._start_http()
                except PortInUse as err:
                    if not self.http_optional:
                        raise
                    # An embedded run whose port is taken serves on a free one: other CLI
                    # commands find it through the data dir's kubeconfig.
                    log.info("%s; serving this run on a free port", err)
                    try:
                        await self._start_http(port=0)
                    except PortInUse as again:
                        log.info("no API server for this run: %s", again)
            self.metrics.add_queue_source(
                lambda: [qw.queue for c in (self._manager.controllers if self._manager else []) for qw in c.queue_workers()])
            # Split mode (``--components``): controllers and node agent only when asked for.
            if self.run_controllers and "controllers" in cfg.components:
                await self._start_election()
            if self.run_controllers and "node" in cfg.components:
                if not (cfg.ray_address and cfg.ray_only):
                    await self._start_node_agent()
                if cfg.ray_address:
                    await self._start_ray_nodes()
            self._lock.update({"state": "running", "url": self.url})
        except BaseException:
            await self.stop()
            raise

    def _share_identity(self) -> None:
        from joblet.auth.identity import NAMESPACE, SharedTokenStore, share_identity
        from joblet.controllers.leaderelection import default_identity

        bare = Registry(self.store, self.clock)  # no token signer yet: the SA key may change here
        with contextlib.suppress(AlreadyExists):
            bare.create("namespaces", {"metadata": {"name": NAMESPACE}})
        origin = default_identity(self.config.data_dir)
        share_identity(bare, self.config.data_dir, origin, self.clock.now())
        self.store.flush()
        self.tokens = SharedTokenStore(self.config.data_dir, bare, self.clock, origin)

    async def _publish_tokens(self) -> None:
        """Put this data dir's token changes (``joblet token create/revoke``) into the store's
        table every few seconds, so every replica accepts them."""
        from joblet.auth.identity import TOKEN_CACHE_SECONDS

        while True:
            try:
                self.tokens.publish()
                self.store.flush()
            except ApiError as err:  # e.g. 507 while the disk is full: retried on the next round
                log.warning("publishing tokens to the store failed: %s", err)
            except Exception:
                log.exception("publishing tokens to the store failed")
            await self.clock.sleep_async(TOKEN_CACHE_SECONDS)

    def _encryption(self) -> AesGcmEncryption | None:
        """The Secret encryption provider of ``--encryption-key-file`` (None without it)."""
        if self.config.encryption_key_file is None:
            return None
        from joblet.security.encryption import load_key_file

        return load_key_file(self.config.encryption_key_file)

    def _bootstrap(self) -> None:
        from joblet.auth.bootstrap import ensure_default_policy

        for ns in BOOTSTRAP_NAMESPACES:
            with contextlib.suppress(AlreadyExists):
                self.registry.create("namespaces", {"metadata": {"name": ns}})
        ensure_default_policy(self.registry)
        self.store.flush()

    async def _start_election(self) -> None:
        """Run the controllers only while this replica leads (Lease kube-system/joblet-controller-manager).
        The first try is made here: a free lease (a single server, or the first replica) is
        taken at once and the controllers are running when start() returns, as without election."""
        from joblet.controllers.leaderelection import ElectionConfig, LeaderElector, default_identity

        cfg = self.config
        election = ElectionConfig(identity=default_identity(cfg.data_dir), lease_duration=cfg.leader_elect_lease_duration,
                                  renew_deadline=cfg.leader_elect_renew_deadline,
                                  retry_period=cfg.leader_elect_retry_period)
        self.elector = LeaderElector(self.client, self.clock, election, on_started=self._start_leading,
                                     on_stopped=self._stop_leading)
        leading = await self.elector.try_acquire_or_renew()
        if leading:
            await self._start_leading()
        else:
            log.info("lease %s/%s is held by another replica: controllers wait", self.elector.config.namespace,
                     self.elector.config.name)
        self._election_task = asyncio.create_task(self.elector.run(leading=leading), name="leader-election")

    async def _start_leading(self) -> None:
        """This replica became the leader: the controllers start, with fresh informers."""
        from joblet.controllers import eventttl

        cfg = self.config
        await self._start_controllers()
        self._event_ttl_task = asyncio.create_task(eventttl.run(
            self.client, self.clock, cfg.event_ttl, min(60.0, max(1.0, cfg.event_ttl / 10))), name="event-ttl")

    async def _stop_leading(self) -> None:
        """This replica stopped leading (lease lost, or shutting down): no controller writes any more."""
        if self._event_ttl_task is not None:
            self._event_ttl_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._event_ttl_task
            self._event_ttl_task = None
        if self._manager is not None:
            manager, self._manager = self._manager, None
            await manager.stop()
        if self._recorder is not None:
            recorder, self._recorder = self._recorder, None
            await recorder.close()

    async def _start_controllers(self) -> None:
        from joblet.client.events import ClientEventRecorder
        from joblet.controllers.alerts import AlertController
        from joblet.controllers.cronjob.controller import CronJobController
        from joblet.controllers.gc import GarbageCollector
        from joblet.controllers.job.config import JobControllerConfig
        from joblet.controllers.job.controller import JobController
        from joblet.controllers.namespace import NamespaceController
        from joblet.controllers.nodelifecycle import NodeLifecycleController
        from joblet.controllers.scheduler import Scheduler
        from joblet.controllers.serviceaccounts import service_account_controllers
        from joblet.controllers.ttl import TTLAfterFinishedController

        cfg = self.config
        informers = InformerFactory(self.client)
        recorder = ClientEventRecorder(self.client, self.clock, "job-controller")
        job_config = JobControllerConfig(
            pod_failure_backoff=cfg.pod_failure_backoff,
            pod_failure_backoff_max=cfg.pod_failure_backoff_max,
        )
        controllers: list[Controller] = [
            JobController(self.client, self.clock, job_config, informers=informers, recorder=recorder,
                          metrics=self.metrics),
            Scheduler(self.client, self.clock, informers, recorder),
            GarbageCollector(self.client, self.clock, informers),
            NamespaceController(self.client, self.clock, informers),
            CronJobController(self.client, self.clock, informers, recorder),
            TTLAfterFinishedController(self.client, self.clock, informers),
            AlertController(self.client, self.clock, informers, list(cfg.alert_webhooks), self.dashboard_url(),
                            recorder=recorder, log_store=self.log_store, metrics=self.metrics,
                            webhook_allow=cfg.alert_webhook_allow),
            NodeLifecycleController(self.client, self.clock, informers, cfg.node_heartbeat_timeout, recorder),
            *service_account_controllers(self.client, self.clock, informers, cfg.data_dir),
        ]
        self._recorder = recorder
        self._manager = ControllerManager(controllers)
        await self._manager.start()

    async def _start_node_agent(self) -> None:
        from joblet.node.agent import NodeAgent
        from joblet.node.runtimes.registry import RuntimeOptions, open_runtime
        from joblet.nodeprocess import NodeDirLock, heartbeat_interval

        cfg = self.config
        self._node_lock = NodeDirLock(cfg.data_dir)
        self._node_lock.acquire()  # no `joblet node` may share this dir's runtime state
        node_name = cfg.node_name or socket.gethostname().lower() or "joblet-node"
        runtime = open_runtime(cfg.runtime, RuntimeOptions(cfg.data_dir, self.clock,
                                                           log_max_bytes=cfg.container_log_max_bytes,
                                                           log_max_files=cfg.container_log_max_files))
        self._agent = NodeAgent(
            self.client, node_name, cfg.data_dir, self.clock, runtime,
            crash_loop_backoff=cfg.crash_loop_backoff, crash_loop_backoff_max=cfg.crash_loop_backoff_max,
            logs=self.log_store, api_url=self.url, api_ca_file=self.api_ca_file, heartbeat_seconds=heartbeat_interval(cfg.node_heartbeat_timeout),
            capacity_cpu=cfg.node_cpu, capacity_memory=cfg.node_memory, max_pods=cfg.max_pods,
            eviction_hard=cfg.eviction_hard,
        )
        await self._agent.start()

    async def _start_ray_nodes(self) -> None:
        from joblet.node.raynodes.nodes import RayNodes
        from joblet.nodeprocess import heartbeat_interval

        cfg = self.config
        assert cfg.ray_address
        self._ray = RayNodes(self.client, cfg.ray_address, cfg.data_dir, self.clock, self.log_store,
                             api_url=self.url, api_ca_file=self.api_ca_file,
                             heartbeat_seconds=heartbeat_interval(cfg.node_heartbeat_timeout),
                             crash_loop_backoff=cfg.crash_loop_backoff,
                             crash_loop_backoff_max=cfg.crash_loop_backoff_max, taint=not cfg.ray_only,
                             sandbox=cfg.ray_sandbox)
        await self._ray.start()

    def _dashboard_routes(self, fallback: Callable[[Request], Awaitable[Response]], authenticator: Authenticator,
                          authorizer: Authorizer) -> list[BaseRoute]:
        """The dashboard's routes for the API server (which may not import the dashboard): it signs
        users in with the API's authenticator and asks the API's authorizer."""
        from joblet.dashboard import dashboard_routes

        cfg = self.config
        return dashboard_routes(self.client, log_store=self.log_store, clock=self.clock, authenticator=authenticator,
                                authorizer=authorizer, fallback=fallback,
                                pod_failure_backoff=(cfg.pod_failure_backoff, cfg.pod_failure_backoff_max))

    async def _start_http(self, port: int | None = None) -> None:
        import ssl

        import uvicorn

        from joblet.api.guard import allowed_hosts
        from joblet.api.server import create_app
        from joblet.api.serving import (
            DEFAULT_MAX_HEADER_BYTES,
            listen_socket,
            protocol_factory,
            raise_fd_limit,
        )
        from joblet.auth.audit import open_log
        from joblet.kubeconfig import write_kubeconfig
        from joblet.security.pki import cert_sans, default_sans, ensure_serving_cert, node_log_client_cert

        cfg = self.config
        node_log_client: tuple[bytes, bytes] | None = None
        raise_fd_limit()
        sans = default_sans(cfg.host, cfg.tls_sans)
        ca_data: bytes | None = None
        cert_file, key_file = cfg.tls_cert, cfg.tls_key
        if not cfg.insecure_http:
            if cert_file and key_file:  # bring your own: serve the names it covers too
                from cryptography import x509

                dns, ips = cert_sans(x509.load_pem_x509_certificate(Path(cert_file).read_bytes()))
                sans = [*sans, *dns, *(str(ip) for ip in ips)]
                ca_data = Path(cert_file).read_bytes()
            else:
                paths = ensure_serving_cert(cfg.data_dir, sans, self.clock.now())
                cert_file, key_file = str(paths.cert), str(paths.key)
                ca_data = paths.ca.read_bytes()
                self.api_ca_file = paths.ca
                # signed by the CA the nodes' kubeconfigs carry: remote nodes' log endpoints accept it
                node_log_client = node_log_client_cert(cfg.data_dir, self.clock.now())
        else:
            log.warning("SERVING THE API OVER PLAIN HTTP (--insecure-http): tokens travel unencrypted; "
                        "use this for debugging on loopback only")
        try:
            # Bind here so a port in use is reported at once, not from inside uvicorn. Listen here
            # too: two planes can both bind a port (SO_REUSEADDR, neither listening yet); only the
            # first listen wins, and the other must see PortInUse, not a crash.
            sock = listen_socket(cfg.host, cfg.port if port is None else port)
        except OSError as err:
            raise PortInUse(f"cannot listen on {cfg.host}:{cfg.port}: {err.strerror}") from None
        bound = int(sock.getsockname()[1])
        token = self.admin_token()
        self.tokens.publish()  # the kubeconfig's token works against every replica at once
        self.store.flush()
        self._tokens_task = asyncio.create_task(self._publish_tokens(), name="publish-tokens")
        self._audit = open_log(cfg.audit_log) if cfg.audit_log else None
        self._access = open_log(cfg.access_log) if cfg.access_log else None
        self._authorizer = authorizer = build_authorizer(self.client)
        authenticator = build_authenticator(cfg, self.clock, [self.service_account_authenticator], tokens=self.tokens)
        app = create_app(self.client, authenticator=authenticator,
                         authorizer=self._authorizer, log_store=self.log_store, clock=self.clock,
                         metrics=self.metrics, allowed_hosts=allowed_hosts(sans, bound),
                         audit_log=self._audit, access_log=self._access,
                         ui=lambda fallback: self._dashboard_routes(fallback, authenticator, authorizer),
                         node_log_client=node_log_client)
        app.state.api_server.admission.update(build_admission(self._authorizer))
        uv_config = uvicorn.Config(
            app, host=cfg.host, port=cfg.port, log_level="warning", lifespan="off",
            ssl_certfile=None if cfg.insecure_http else cert_file,
            ssl_keyfile=None if cfg.insecure_http else key_file,
            ssl_ca_certs=cfg.client_ca, ssl_cert_reqs=ssl.CERT_OPTIONAL if cfg.client_ca else ssl.CERT_NONE,
            access_log=False, timeout_graceful_shutdown=1,
            http=protocol_factory(head_timeout=cfg.head_timeout, max_connections=cfg.max_connections),
            h11_max_incomplete_event_size=2 * DEFAULT_MAX_HEADER_BYTES,
        )
        server = uvicorn.Server(uv_config)
        self._http = server
        self._http_task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if self._http_task.done():
                self._http_task.result()
                raise PortInUse(f"API server on {cfg.host}:{cfg.port} did not start")
            await poll_pause(0.01)
        self.url = f"{'http' if cfg.insecure_http else 'https'}://{url_host(cfg.host)}:{bound}"
        write_kubeconfig(cfg.data_dir / "kubeconfig", self.url, token=token, ca_data=ca_data)

    def admin_token(self) -> str:
        """The admin token the kubeconfig carries: the user's (``--token-file``/``JOBLET_TOKEN``),
        else the one the kubeconfig already holds while it is still valid, else a new one."""
        from joblet.kubeconfig import load_access
        from joblet.security.tokens import ADMIN_GROUPS, ADMIN_NAME, TokenStore

        cfg = self.config
        store = TokenStore(cfg.data_dir)
        now = self.clock.now()

        def is_admin(token: str | None) -> bool:
            entry = store.lookup(token, now) if token else None
            return entry is not None and entry.name == ADMIN_NAME

        if cfg.token:
            if not is_admin(cfg.token):
                store.create(ADMIN_NAME, ADMIN_GROUPS, replace=True, token=cfg.token)
            return cfg.token
        previous: str | None = None
        with contextlib.suppress(OSError, ValueError, KeyError):
            previous = load_access(cfg.data_dir / "kubeconfig").token
        if previous and is_admin(previous):
            return previous
        return store.create(ADMIN_NAME, ADMIN_GROUPS, replace=True)

    def dashboard_url(self) -> str:
        """The dashboard's base URL for alert links (``--host``/``--port`` unless configured)."""
        cfg = self.config
        if cfg.dashboard_url:
            return cfg.dashboard_url
        return f"{'http' if cfg.insecure_http else 'https'}://{url_host(cfg.host)}:{cfg.port}" if self.serve_http else ""

    async def _prune_logs(self) -> None:
        """Apply the log retention limits now and every ``log_prune_interval`` seconds."""
        while True:
            try:
                self.metrics.logs_pruned(await asyncio.to_thread(self.log_store.prune))
            except Exception:
                log.exception("pruning logs failed")
            await self.clock.sleep_async(max(1.0, self.config.log_prune_interval))

    async def stop(self) -> None:
        if self._election_task is not None:  # its end stops the controllers (_stop_leading)
            self._election_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._election_task
            self._election_task = None
        await self._stop_leading()
        if self.elector is not None:  # hand the lease over at once (client-go's ReleaseOnCancel)
            await self.elector.release()
            self.elector = None
        if self._tokens_task is not None:
            self._tokens_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._tokens_task
            self._tokens_task = None
        if self._prune_task is not None:
            self._prune_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._prune_task
            self._prune_task = None
        if self._http is not None:
            self._http.should_exit = True
            if self._http_task is not None:
                with contextlib.suppress(Exception):
                    await self._http_task
            self._http = None
        for log_file in (self._audit, self._access):
            if log_file is not None and log_file is not sys.stdout:
                log_file.close()
        self._audit = self._access = None
        close_authorizer = getattr(self._authorizer, "close", None)
        if close_authorizer is not None:
            with contextlib.suppress(Exception):
                await close_authorizer()
            self._authorizer = None
        if self._ray is not None:
            with contextlib.suppress(Exception):
                await self._ray.stop()
            self._ray = None
        if self._agent is not None:
            with contextlib.suppress(Exception):
                await self._agent.stop()
            self._agent.runtime.close()
            self._agent = None
        if self._node_lock is not None:
            self._node_lock.release()
            self._node_lock = None
        store = getattr(self, "store", None)
        if store is not None and self._store is None:  # a store the caller passed in is the caller's
            store.close()
        self._lock.release()


def build_authorizer(client: Client) -> Authorizer:
    """The authorizer of the HTTP API: RBAC over the cluster's Roles and bindings, read through
    watch-fed informers (started on the first request)."""
    from joblet.auth.rbac import RBACAuthorizer
    from joblet.controllers.runtime import Informer

    return RBACAuthorizer(client, lambda c, plural: Informer(c, plural))


def build_admission(authorizer: Authorizer) -> dict[str, Any]:
    """Write admission by resource: RBAC's escalation check on Roles and bindings."""
    from joblet.auth.rbac import EscalationCheck, RBACAuthorizer

    if not isinstance(authorizer, RBACAuthorizer):
        return {}
    check = EscalationCheck(authorizer)
    return dict.fromkeys(EscalationCheck.RESOURCES, check)


class PortInUse(Exception):
    pass


def url_host(host: str) -> str:
    """``host`` as it appears in a URL (IPv6 in brackets)."""
    return f"[{host}]" if ":" in host else host


def build_authenticator(config: ControlPlaneConfig, clock: Clock,
                        extra: Sequence[Authenticator] = (), tokens: Any = None) -> Authenticator:
    """Who may call the API: tokens of ``D/tokens.json`` (the admin's and ``joblet token
    create``'s; ``tokens``: also the store's shared table), and client certificates when
    ``--client-ca`` is set. Another kind of
    credential is one more entry in the list."""
    from joblet.auth.authn import ClientCertAuthenticator, TokenFileAuthenticator, Union
    from joblet.security.tokens import TokenStore

    authenticators: list[Authenticator] = [TokenFileAuthenticator(tokens or TokenStore(config.data_dir), clock)]
    if config.client_ca:
        authenticators.append(ClientCertAuthenticator())
    return Union([*authenticators, *extra])


async def serve_forever(config: ControlPlaneConfig, console: Console) -> None:
    """``joblet server``: run until SIGINT/SIGTERM."""
    from joblet import gcpacing

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    plane = ControlPlane(config)
    try:
        await plane.start()
    except PortInUse as err:
        console.print(f"error: {err}")
        raise SystemExit(1) from None
    async with gcpacing.pacing(plane.clock):  # this process's heap
        await _serve_until_stopped(plane, config, console)


async def _serve_until_stopped(plane: ControlPlane, config: ControlPlaneConfig, console: Console) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if plane.url is not None:
        console.print(f"joblet server listening on {plane.url} (data dir {config.data_dir}; "
                      f"kubeconfig {config.data_dir / 'kubeconfig'})")
    else:  # split mode without the api component
        console.print(f"joblet server running {', '.join(config.components)} (data dir {config.data_dir})")
    if plane.url is not None and "api" in config.components:
        console.print(f"dashboard: {plane.url}/")
    try:
        await stop.wait()
    finally:
        running = await _running_pods(plane)
        await plane.stop()
        if running:
            console.print(f"stopped; {running} pod{'s' if running != 1 else ''} still running: the next "
                          f"joblet server on {config.data_dir} adopts them")
        else:
            console.print("stopped")


async def _running_pods(plane: ControlPlane) -> int:
    """Pods this process's node agent runs (they outlive a stopped server)."""
    if plane._agent is None:
        return 0
    try:
        listed = await plane.client.list("pods", None, field_selector=f"spec.nodeName={plane._agent.node_name}")
    except Exception:
        return 0
    return sum(1 for p in listed.items if (p.get("status") or {}).get("phase") in ("Running", "Pending"))
