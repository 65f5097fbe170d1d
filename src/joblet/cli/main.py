"""The ``joblet`` command: kubectl-shaped verbs over the joblet API.

Every command resolves its API once (a running server, else the data dir in-process),
runs one coroutine, and turns the error tree into one readable line and an exit code:
0 success, 1 a failed Job or an API error, 2 bad input.

One module, on purpose (~1,050 lines): the typer app and its options are one table a reader
scans for a verb; the heavy verbs already live beside it (follow, describe, cron, tokens,
connect, manifests). Not split now: several branches add options here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
import yaml

from joblet import __version__
from joblet.api import warning
from joblet.api.fieldvalidation import FieldValidation
from joblet.api.resources import lookup
from joblet.cli.connect import connect
from joblet.cli.console import bad_input, err, out
from joblet.cli.manifests import ManifestError, load_manifests
from joblet.clock import RealClock, poll_pause
from joblet.config import ControlPlaneConfig
from joblet.datadir import DataDirBusy, default_data_dir, private_umask
from joblet.errors import ApiError, BadRequest, Invalid, NotFound, ServiceUnavailable
from joblet.node.runtimes.registry import RUNTIMES, UnknownRuntime, runtime_kind, runtimes_help
from joblet.security.encryption import EncryptionError
from joblet.store import UnknownStore, store_opener, url_password

T = TypeVar("T")
Obj = dict[str, Any]

app = typer.Typer(
    name="joblet",
    help="The Kubernetes Job system, without the cluster: run batch/v1 Jobs and CronJobs locally.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", help="State directory (default: $JOBLET_DATA_DIR or ~/.local/share/joblet).")]
KubeconfigOpt = Annotated[str | None, typer.Option("--kubeconfig", help="Kubeconfig naming the server to use, whatever it is (default: the data dir's joblet; $KUBECONFIG only if it names a joblet server).")]
NamespaceOpt = Annotated[str, typer.Option("--namespace", "-n", help="Namespace.")]
ValidateOpt = Annotated[str, typer.Option("--validate", help="strict (default): reject fields the schema does not know, as kubectl; warn: drop them with a warning; false: drop them.")]


class Rejected(Exception):
    """The API refused a manifest's object as bad input: kubectl's line, exit status 2."""

    def __init__(self, error: ApiError, verb: str, file: str) -> None:
        super().__init__(f'Error from server ({error.reason}): error when {verb} "{file}": {error.message}')


class Fail(Exception):
    """A CLI failure: message and exit code."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def run_async(coro: Awaitable[T]) -> T:
    """Run a command's coroutine; every error becomes one line on stderr and an exit code
    (1 API error, 2 bad input, 3 environment: data dir locked, server unreachable)."""
    from joblet.cli.connect import NoData, Unreachable

    try:
        return asyncio.run(coro)  # type: ignore[arg-type]
    except ManifestError as e:
        err.print(f"error: {e}")
        raise typer.Exit(2) from None
    except Rejected as e:
        err.print(str(e), highlight=False)
        raise typer.Exit(2) from None
    except ServiceUnavailable as e:
        err.print(f"error: {e.message}")
        raise typer.Exit(3) from None
    except ApiError as e:
        err.print(f"Error from server ({e.reason}): {e.message}")
        raise typer.Exit(1) from None
    except (DataDirBusy, Unreachable, EncryptionError) as e:
        err.print(f"error: {e}")
        raise typer.Exit(3) from None
    except ConnectionError as e:  # e.g. --ray-address names no Ray cluster: the environment
        err.print(f"error: {e}")
        raise typer.Exit(3) from None
    except (Fail, NoData) as e:
        err.print(f"error: {e}")
        raise typer.Exit(e.code if isinstance(e, Fail) else 1) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except (typer.Exit, SystemExit):
        raise
    except Exception as e:  # no traceback for users; JOBLET_DEBUG=1 shows it
        if os.environ.get("JOBLET_DEBUG"):
            raise
        err.print(f"error: unexpected {type(e).__name__}: {e} (JOBLET_DEBUG=1 shows the traceback)")
        raise typer.Exit(1) from None


def _config(data_dir: Path | None, **knobs: Any) -> ControlPlaneConfig:
    cfg = ControlPlaneConfig(data_dir=(data_dir or default_data_dir()).expanduser())
    for k, v in knobs.items():
        if v is not None:
            setattr(cfg, k, v)
    return cfg


# ------------------------------------------------------------------ knobs shared by server and run

PodFailureBackoff = Annotated[float, typer.Option("--pod-failure-backoff", help="Job pod-failure backoff base, seconds.")]
PodFailureBackoffMax = Annotated[float, typer.Option("--pod-failure-backoff-max", help="Job pod-failure backoff cap, seconds.")]
CrashLoopBackoff = Annotated[float, typer.Option("--crash-loop-backoff", help="Container restart backoff base, seconds.")]
CrashLoopBackoffMax = Annotated[float, typer.Option("--crash-loop-backoff-max", help="Container restart backoff cap, seconds.")]
HeartbeatTimeout = Annotated[float, typer.Option("--node-heartbeat-timeout", help="Seconds without a node heartbeat before its pods fail.")]
TokenFileOpt = Annotated[str | None, typer.Option("--token-file", help="File holding the admin bearer token (default: $JOBLET_TOKEN, else a generated one in DATA_DIR/kubeconfig).")]
TokenArgvOpt = Annotated[str | None, typer.Option("--token", hidden=True, help="Refused: a token on the command line is visible to every local user.")]
LogMaxSize = Annotated[str, typer.Option("--container-log-max-size", help="Rotate each container's log at this size (a quantity, e.g. 10Mi), as the kubelet's containerLogMaxSize.")]
LogMaxFiles = Annotated[int, typer.Option("--container-log-max-files", help="Log files kept per container, the live one included (at least 2).")]
AlertWebhookAllow = Annotated[list[str] | None, typer.Option("--alert-webhook-allow", metavar="PATTERN", help="Use joblet.dev/alert-webhook annotation URLs matching PATTERN: HOST, optionally with SCHEME://, :PORT and /PATH (repeatable; *.domain allowed). None by default: annotation URLs are ignored.")]
EncryptionKeyFile = Annotated[Path | None, typer.Option("--encryption-key-file", help="Encrypt Secrets in the store with these AES-GCM keys (one base64 key a line, optionally NAME:KEY; the first encrypts). Generate one with `joblet encryption-key generate`.")]
EvictionHardOpt = Annotated[str, typer.Option("--eviction-hard", help="Disk pressure below this free space of the data dir's filesystem: nodefs.available<5% (default) or nodefs.available<500Mi. The node then schedules nothing new and evicts the pod using the most disk.")]
StoreOpt = Annotated[str | None, typer.Option("--store", metavar="URL", envvar="JOBLET_STORE", help="Where objects live: sqlite:///PATH (default: sqlite:///DATA_DIR/joblet.db), memory:// (nothing survives the process) or postgresql://USER@HOST/DB (several replicas on one database; the password from PGPASSFILE/~/.pgpass, or the whole URL in JOBLET_STORE, never on the command line).")]
RuntimeOpt = Annotated[str, typer.Option("--runtime", help=f"Container runtime (default process). {runtimes_help()}.")]


@app.command()
def server(
    data_dir: DataDirOpt = None,
    host: Annotated[str, typer.Option(help="Address to listen on (HTTPS; add the names clients dial with --tls-san).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 6443,
    tls_cert: Annotated[str | None, typer.Option("--tls-cert", help="Serving certificate (PEM; default: one issued by DATA_DIR/pki/ca.crt).")] = None,
    tls_key: Annotated[str | None, typer.Option("--tls-key", help="Serving certificate's private key (PEM).")] = None,
    tls_san: Annotated[list[str] | None, typer.Option("--tls-san", help="Extra name or IP of the generated serving certificate, also accepted as Host (repeatable).")] = None,
    token_file: TokenFileOpt = None,
    token: TokenArgvOpt = None,
    client_ca: Annotated[str | None, typer.Option("--client-ca", help="CA bundle (PEM) verifying client certificates: CN is the user, O the groups.")] = None,
    insecure_http: Annotated[bool, typer.Option("--insecure-http", help="Serve plain HTTP (loopback only; for debugging).")] = False,
    audit_log: Annotated[str | None, typer.Option("--audit-log", help="Write one audit.k8s.io/v1 Event (JSON line) per request to FILE.")] = None,
    access_log: Annotated[str | None, typer.Option("--access-log", help="Write one line per request (time user verb path status bytes latency) to FILE, or - for stdout.")] = None,
    head_timeout: Annotated[float, typer.Option("--head-timeout", help="Seconds a connection may take to send a complete request head before it is closed.")] = 10.0,
    max_connections: Annotated[int, typer.Option("--max-connections", help="Open connections accepted at once; more are closed.")] = 2048,
    pod_failure_backoff: PodFailureBackoff = 10.0,
    pod_failure_backoff_max: PodFailureBackoffMax = 600.0,
    crash_loop_backoff: CrashLoopBackoff = 10.0,
    crash_loop_backoff_max: CrashLoopBackoffMax = 300.0,
    node_heartbeat_timeout: HeartbeatTimeout = 40.0,
    alert_webhook: Annotated[list[str] | None, typer.Option("--alert-webhook", help="POST a JSON alert here when a Job fails (repeatable).")] = None,
    alert_webhook_allow: AlertWebhookAllow = None,
    log_retention_days: Annotated[float, typer.Option("--log-retention-days", help="Keep container logs this many days.")] = 7.0,
    log_retention_mb: Annotated[float, typer.Option("--log-retention-mb", help="Keep at most this many MiB of container logs.")] = 1024.0,
    components: Annotated[str, typer.Option("--components", help="Comma-separated parts to run: api, controllers, node (run nodes elsewhere with `joblet node --server URL`).")] = "api,controllers,node",
    node_name: Annotated[str | None, typer.Option("--node-name", help="Name of this process's node (default: the host name).")] = None,
    runtime: RuntimeOpt = "process",
    node_cpu: Annotated[str | None, typer.Option("--node-cpu", help="CPU the local node offers to pods, e.g. 2 or 1500m (default: the machine's).")] = None,
    node_memory: Annotated[str | None, typer.Option("--node-memory", help="Memory the local node offers to pods, e.g. 8Gi (default: the machine's).")] = None,
    max_pods: Annotated[int, typer.Option("--max-pods", help="Pods the local node runs at once.")] = 1000,
    container_log_max_size: LogMaxSize = "10Mi",
    container_log_max_files: LogMaxFiles = 5,
    encryption_key_file: EncryptionKeyFile = None,
    ray_address: Annotated[str | None, typer.Option("--ray-address", help="Also run pods on this Ray cluster (host:6379 or ray://host:10001): each alive Ray node becomes a Node ray-<id>, tainted joblet.dev/engine=ray:NoSchedule. Needs `pip install joblet[ray]`.")] = None,
    ray_only: Annotated[bool, typer.Option("--ray-only", help="With --ray-address: no local node; every pod runs on Ray, whose Nodes are then not tainted.")] = False,
    ray_sandbox: Annotated[bool, typer.Option("--ray-sandbox/--no-ray-sandbox", help="With --ray-address: run Ray pods under bubblewrap where the Ray node has it. --no-ray-sandbox: plain processes that see the Ray node's filesystem, volumes not at their mountPath (trusted workloads; faster to start).")] = True,
    eviction_hard: EvictionHardOpt = "nodefs.available<5%",
    event_ttl: Annotated[float, typer.Option("--event-ttl", help="Seconds an Event is kept after it was last recorded (upstream: 1h).")] = 3600.0,
    store: StoreOpt = None,
    leader_elect_lease_duration: Annotated[float, typer.Option("--leader-elect-lease-duration", help="Seconds a replica waits, after it last saw the controllers' Lease change, before it takes the lead over (replicas on one store).")] = 15.0,
    leader_elect_renew_deadline: Annotated[float, typer.Option("--leader-elect-renew-deadline", help="Seconds the leader keeps trying to renew its Lease before it stops its controllers (less than the lease duration).")] = 10.0,
    leader_elect_retry_period: Annotated[float, typer.Option("--leader-elect-retry-period", help="Seconds between tries to acquire or renew the Lease.")] = 2.0,
) -> None:
    """Run the control plane (API server, controllers, node agent) and write DATA_DIR/kubeconfig."""
    from joblet.controlplane import serve_forever

    wanted = parse_components(components)
    private_umask()
    admin_token = _token_from_file_or_env(token, token_file)

    cfg = _config(data_dir, host=host, port=port, tls_cert=tls_cert, tls_key=tls_key, token=admin_token,
                  tls_sans=tuple(tls_san or ()), client_ca=client_ca, insecure_http=insecure_http,
                  audit_log=audit_log, access_log=access_log, head_timeout=head_timeout,
                  max_connections=max_connections,
                  pod_failure_backoff=pod_failure_backoff, pod_failure_backoff_max=pod_failure_backoff_max,
                  crash_loop_backoff=crash_loop_backoff, crash_loop_backoff_max=crash_loop_backoff_max,
                  node_heartbeat_timeout=node_heartbeat_timeout,
                  # alerts and log retention (joblet.controllers.alerts, joblet.node.logs)
                  alert_webhooks=tuple(alert_webhook or ()), alert_webhook_allow=tuple(alert_webhook_allow or ()),
                  log_retention_days=log_retention_days,
                  log_retention_bytes=int(log_retention_mb * 1024 * 1024), components=wanted, node_name=node_name,
                  node_cpu=node_cpu, node_memory=node_memory, max_pods=max_pods,
                  encryption_key_file=encryption_key_file)
    cfg.container_log_max_bytes, cfg.container_log_max_files = _log_cap(container_log_max_size,
                                                                        container_log_max_files)
    cfg.runtime = runtime
    cfg.ray_address, cfg.ray_only, cfg.ray_sandbox = ray_address, ray_only, ray_sandbox
    cfg.eviction_hard = _eviction_hard(eviction_hard)
    cfg.event_ttl = max(1.0, event_ttl)
    cfg.store = store
    cfg.leader_elect_lease_duration = leader_elect_lease_duration
    cfg.leader_elect_renew_deadline = leader_elect_renew_deadline
    cfg.leader_elect_retry_period = leader_elect_retry_period
    _check_or_exit(cfg)
    run_async(serve_forever(cfg, err))


# ------------------------------------------------------------------ split mode: joblet node

COMPONENTS = ("api", "controllers", "node")


def parse_components(text: str) -> tuple[str, ...]:
    """``--components api,controllers``: the named parts, in canonical order; unknown names exit 2."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in COMPONENTS]
    if unknown or not names:
        err.print(f"error: --components takes a comma-separated subset of {', '.join(COMPONENTS)}, "
                  f"got {text!r}")
        raise typer.Exit(2)
    return tuple(c for c in COMPONENTS if c in names)


def _token_from_file_or_env(argv_token: str | None, token_file: str | None) -> str | None:
    """The token of ``--token-file`` or ``JOBLET_TOKEN``; ``--token`` on argv exits 2."""
    if argv_token is not None:
        err.print("error: --token is not accepted (every local user can read a process's arguments): "
                  "put the token in a file and pass --token-file FILE, or set JOBLET_TOKEN")
        raise typer.Exit(2)
    if token_file:
        try:
            value = Path(token_file).expanduser().read_text().strip()
        except OSError as e:
            err.print(f"error: --token-file {token_file}: {e.strerror}")
            raise typer.Exit(2) from None
        if not value:
            err.print(f"error: --token-file {token_file} is empty")
            raise typer.Exit(2)
        return value
    return os.environ.get("JOBLET_TOKEN", "").strip() or None


@app.command()
def node(
    server_url: Annotated[str | None, typer.Option("--server", help="The joblet API server, e.g. https://10.0.0.1:6443 (default: the --kubeconfig's); several replicas of one store comma-separated: the agent fails over to the next when one stops answering.")] = None,
    kubeconfig: Annotated[str | None, typer.Option("--kubeconfig", help="Kubeconfig with the server's CA and this node's credentials.")] = None,
    token_file: Annotated[str | None, typer.Option("--token-file", help="File holding the bearer token (default: $JOBLET_TOKEN, else the kubeconfig's).")] = None,
    token: TokenArgvOpt = None,
    node_name: Annotated[str | None, typer.Option("--node-name", help="Node name (default: the host name).")] = None,
    data_dir: DataDirOpt = None,
    insecure_skip_tls_verify: Annotated[bool, typer.Option("--insecure-skip-tls-verify", help="Do not verify the server's TLS certificate.", metavar="")] = False,
    heartbeat_seconds: Annotated[float, typer.Option("--heartbeat-seconds", help="Seconds between node heartbeats (keep well under the server's --node-heartbeat-timeout).")] = 10.0,
    crash_loop_backoff: CrashLoopBackoff = 10.0,
    crash_loop_backoff_max: CrashLoopBackoffMax = 300.0,
    log_retention_days: Annotated[float, typer.Option("--log-retention-days", help="Keep container logs this many days.")] = 7.0,
    log_retention_mb: Annotated[float, typer.Option("--log-retention-mb", help="Keep at most this many MiB of container logs.")] = 1024.0,
    container_log_max_size: LogMaxSize = "10Mi",
    container_log_max_files: LogMaxFiles = 5,
    log_port: Annotated[int, typer.Option("--log-port", help="Port of this node's log endpoint, which the API server proxies pods/log to (mutual TLS; 0: any free port).")] = 10250,
    address: Annotated[str | None, typer.Option("--address", help="Address the API server dials for this node's logs (default: this machine's address toward the server).")] = None,
    ray_address: Annotated[str | None, typer.Option("--ray-address", help="Instead of running pods here, run them on this Ray cluster: one Node ray-<id> per alive Ray node (tainted joblet.dev/engine=ray:NoSchedule).")] = None,
    eviction_hard: EvictionHardOpt = "nodefs.available<5%",
    runtime: RuntimeOpt = "process",
) -> None:
    """Run a node agent for a remote `joblet server --components api,controllers`: pods bound to
    this node run here, their logs stay in DATA_DIR/logs (served to the API server for `kubectl logs`)."""
    from joblet.nodeprocess import NodeConfig, run_node

    private_umask()
    node_token = _token_from_file_or_env(token, token_file)
    if not server_url and not kubeconfig:
        err.print("error: joblet node needs --kubeconfig FILE (or --server URL)")
        raise typer.Exit(2)
    servers = [u.strip() for u in (server_url or "").split(",") if u.strip()]
    if server_url and (not servers or not all(u.startswith(("https://", "http://")) for u in servers)):
        err.print(f"error: --server takes URLs (https://HOST:PORT), comma-separated, got {server_url!r}")
        raise typer.Exit(2)
    cfg = NodeConfig(server=",".join(servers), data_dir=(data_dir or default_data_dir()).expanduser(),
                     token=node_token, kubeconfig=kubeconfig,
                     node_name=node_name or "", verify_tls=not insecure_skip_tls_verify,
                     heartbeat_seconds=heartbeat_seconds, crash_loop_backoff=crash_loop_backoff,
                     crash_loop_backoff_max=crash_loop_backoff_max, log_retention_days=log_retention_days,
                     log_retention_bytes=int(log_retention_mb * 1024 * 1024), log_port=log_port,
                     address=address or "", ray_address=ray_address, runtime=runtime)
    _check_runtime(runtime)
    cfg.container_log_max_bytes, cfg.container_log_max_files = _log_cap(container_log_max_size,
                                                                        container_log_max_files)
    cfg.eviction_hard = _eviction_hard(eviction_hard)
    run_async(run_node(cfg, err))  # NodeDirBusy is a DataDirBusy: one line, exit 1


# ------------------------------------------------------------------ end split mode


def is_loopback(host: str) -> bool:
    """Whether every address ``host`` resolves to is a loopback address (``127.example.com`` is
    not loopback because of its name)."""
    import ipaddress
    import socket

    try:
        infos = socket.getaddrinfo(host.strip("[]"), None)
    except (socket.gaierror, UnicodeError):
        return False
    addresses = {info[4][0] for info in infos}
    return bool(addresses) and all(ipaddress.ip_address(str(a).split("%", 1)[0]).is_loopback for a in addresses)
def _eviction_hard(text: str) -> str:
    """``--eviction-hard``, checked (exit 2 if bad)."""
    from joblet.node.diskpressure import parse_threshold

    with bad_input(ValueError, "--eviction-hard: "):
        parse_threshold(text)
    return text


def _log_cap(size: str, files: int) -> tuple[int, int]:
    """``--container-log-max-size``/``--container-log-max-files`` as bytes and a count (exit 2 if bad)."""
    from joblet.api.validation import QuantityError, parse_quantity

    with bad_input(QuantityError, f"--container-log-max-size {size!r}: "):
        value = int(parse_quantity(size))
        if value < 1024:
            raise QuantityError("must be at least 1Ki")
    if files < 2:
        err.print("error: --container-log-max-files must be at least 2")
        raise typer.Exit(2)
    return value, files


def cfg_check(cfg: ControlPlaneConfig) -> None:
    if cfg.insecure_http and not is_loopback(cfg.host):
        raise Fail(f"refusing to serve plain HTTP on {cfg.host}: --insecure-http is for loopback addresses only", 2)
    if cfg.insecure_http and (cfg.tls_cert or cfg.client_ca):
        raise Fail("--insecure-http does not go with --tls-cert or --client-ca", 2)
    if cfg.head_timeout <= 0 or cfg.max_connections < 1:
        raise Fail("--head-timeout must be positive and --max-connections at least 1", 2)
    if bool(cfg.tls_cert) != bool(cfg.tls_key):
        raise Fail("--tls-cert and --tls-key go together", 2)
    from joblet.api.validation import QuantityError, parse_quantity

    for flag, value in (("--node-cpu", cfg.node_cpu), ("--node-memory", cfg.node_memory)):
        try:
            if value is not None and parse_quantity(value) <= 0:
                raise QuantityError("must be positive")
        except QuantityError as e:
            raise Fail(f"{flag} {value!r} is not a positive quantity: {e}", 2) from None
    if cfg.max_pods < 1:
        raise Fail("--max-pods must be at least 1", 2)
    if not cfg.leader_elect_lease_duration > cfg.leader_elect_renew_deadline > cfg.leader_elect_retry_period > 0:
        raise Fail("leader election needs --leader-elect-lease-duration > --leader-elect-renew-deadline > "
                   "--leader-elect-retry-period > 0", 2)
    if cfg.ray_only and not cfg.ray_address:
        raise Fail("--ray-only needs --ray-address", 2)
    _check_runtime(cfg.runtime)
    if cfg.store is not None:
        if "://" not in cfg.store:
            raise Fail(f"--store must be a URL (sqlite:///PATH, memory:// or postgresql://…), not {cfg.store!r}", 2)
        if url_password(cfg.store) and cfg.store != os.environ.get("JOBLET_STORE"):
            raise Fail("--store: a password on the command line is visible to every user of this machine; "
                       "put it in PGPASSFILE or ~/.pgpass, or give the whole URL in the JOBLET_STORE environment "
                       "variable", 2)
        try:
            store_opener(cfg.store)
        except UnknownStore as e:
            raise Fail(f"--store: {e}", 2) from None


def _check_runtime(name: str) -> None:
    """A row of the runtime table that can run here, else exit 2 with why."""
    try:
        kind = runtime_kind(name)
    except UnknownRuntime:
        raise Fail(f"--runtime must be one of {', '.join(RUNTIMES)}, not {name!r}", 2) from None
    if not kind.local:
        raise Fail(f"--runtime {name}: {kind.help}", 2)
    ok, why = kind.usable()
    if not ok:
        raise Fail(f"--runtime {name}: {why}", 2)


RUN_EPILOG = (
    "Exit status: 0 the Job completed; 1 the Job failed (with --exit-code=pod: the failed pod's exit "
    "code, as docker run); 2 the manifest cannot be submitted (any reason: YAML, validation, missing "
    "namespace, a running Job of that name, a Job the controller cannot process); 3 environment (data "
    "dir locked, server unreachable); 130/143 interrupted by SIGINT/SIGTERM (embedded: the Job is "
    "stopped first, Ctrl-C again kills; attached to a server: it keeps running).\n\n"
    "Target: --kubeconfig names a server (any server); else the joblet of --data-dir (or "
    "$JOBLET_DATA_DIR); else $KUBECONFIG, only if it names a joblet server; else the default data dir. "
    "The first line of output says which."
)


@app.command(epilog=RUN_EPILOG)
def run(
    file: Annotated[str, typer.Option("--filename", "-f", help="Job manifest (YAML or JSON; - for stdin).")],
    namespace: Annotated[str | None, typer.Option("--namespace", "-n", help="Namespace (default: the manifest's, else default).")] = None,
    data_dir: DataDirOpt = None,
    kubeconfig: KubeconfigOpt = None,
    pod_failure_backoff: PodFailureBackoff = 10.0,
    pod_failure_backoff_max: PodFailureBackoffMax = 600.0,
    crash_loop_backoff: CrashLoopBackoff = 10.0,
    crash_loop_backoff_max: CrashLoopBackoffMax = 300.0,
    node_heartbeat_timeout: HeartbeatTimeout = 40.0,
    runtime: RuntimeOpt = "process",
    alert_webhook_allow: AlertWebhookAllow = None,
    exit_code: Annotated[str, typer.Option("--exit-code", help="job: 0 Complete, 1 Failed; pod: the failed pod's exit code.")] = "job",
    validate: ValidateOpt = "strict",
    encryption_key_file: EncryptionKeyFile = None,
    store: StoreOpt = None,
) -> None:
    """Submit a Job and follow it: live status, pod logs, failures, and an exit status.

    With no joblet server in use, runs an embedded control plane in the data dir for the
    duration of the run (Ctrl-C stops the Job). A finished Job of the same name is replaced.
    """
    from joblet.cli.connect import Unreachable, choose, data_dir_explicit
    from joblet.cli.follow import Interrupts, InvalidJob, RunContext, follow_interruptible, submit

    if exit_code not in ("job", "pod"):
        err.print(f"error: --exit-code must be job or pod, not {exit_code!r}")
        raise typer.Exit(2)
    manifests, mode = _load_or_exit(file, validate)
    private_umask()
    cfg = _config(data_dir, pod_failure_backoff=pod_failure_backoff, pod_failure_backoff_max=pod_failure_backoff_max,
                  crash_loop_backoff=crash_loop_backoff, crash_loop_backoff_max=crash_loop_backoff_max,
                  node_heartbeat_timeout=node_heartbeat_timeout, encryption_key_file=encryption_key_file,
                  alert_webhook_allow=tuple(alert_webhook_allow or ()))
    cfg.runtime = runtime
    cfg.store = store
    _check_or_exit(cfg)
    try:
        choice = choose(kubeconfig, cfg.data_dir if data_dir_explicit(cfg.data_dir) else None, cfg.data_dir)
    except Unreachable as e:
        err.print(f"error: {e}")
        raise typer.Exit(3) from None
    if choice.note:
        err.print(f"note: {choice.note}")

    async def go() -> int:
        interrupts = Interrupts()
        try:
            async with connect(kubeconfig, cfg, controllers=True, choice=choice) as client:
                # After the embedded API server started: uvicorn installs its own handlers.
                interrupts.install()
                out.print(choice.describe())
                embedded = choice.target is None
                context = RunContext(embedded=embedded, url=choice.target.url if choice.target else None,
                                     backoff_base=pod_failure_backoff if embedded else None,
                                     backoff_max=pod_failure_backoff_max, exit_code=exit_code,
                                     cli_args=f" --data-dir {cfg.data_dir}" if data_dir is not None else "")
                if embedded:
                    await _note_leftovers(client, context.cli_args)
                try:
                    with warning.collect() as warnings:
                        job = await submit(client, manifests, namespace, out, field_validation=mode)
                except ValueError as e:
                    raise ManifestError(f"{file}: {e}") from None
                except (Invalid, BadRequest) as e:
                    # The manifest itself is wrong: same exit status as unparseable input.
                    raise Rejected(e, "creating", file) from None
                except ApiError as e:
                    if isinstance(e, ServiceUnavailable):
                        raise
                    raise Fail(f"cannot submit {file}: Error from server ({e.reason}): {e.message}", 2) from None
                finally:
                    _print_warnings(warnings)
                out.print(f"job.batch/{job['metadata']['name']} created", highlight=False)
                if embedded:
                    _note_images(manifests, runtime)
                try:
                    return await follow_interruptible(client, job, out, err, context, interrupts)
                except InvalidJob as e:
                    raise Fail(f"job/{job['metadata']['name']} cannot be run: {e}", 2) from None
        except asyncio.CancelledError:
            if not interrupts.signals:
                raise
            err.print("interrupted before the Job was submitted")
            return interrupts.exit_code
        finally:
            interrupts.uninstall()

    raise typer.Exit(run_async(go()))


async def _note_leftovers(client: Any, cli_args: str) -> None:
    """An embedded run adopts pods an earlier interrupted or crashed joblet left running; say so."""
    from joblet.objects import job_finished

    with contextlib.suppress(ApiError):
        jobs = (await client.list("jobs", None)).items
        for j in jobs:
            active = int((j.get("status") or {}).get("active") or 0) if isinstance((j.get("status") or {}).get("active"), int) else 0
            if active and not job_finished(j) and not (j["metadata"].get("deletionTimestamp")):
                ns = j["metadata"].get("namespace", "default")
                flag = f" -n {ns}" if ns != "default" else ""
                err.print(f"note: job/{j['metadata']['name']}{flag} from an earlier run is still running ({active} pods); "
                          f"it runs while this run lasts: `joblet delete job {j['metadata']['name']}{flag}{cli_args}` stops it")


def _note_images(manifests: list[Any], runtime: str) -> None:
    """The process runtime does not pull images: say so once per image it does not honour."""
    if runtime != "process":
        return
    from joblet.node.images import busybox_applets, image_name

    seen: set[str] = set()
    for m in manifests:
        if m.resource.plural != "jobs":
            continue
        pod_spec = (((m.obj.get("spec") or {}).get("template") or {}).get("spec") or {})
        for c in [*(pod_spec.get("initContainers") or []), *(pod_spec.get("containers") or [])]:
            image = c.get("image") if isinstance(c, dict) else None
            if not isinstance(image, str) or not image or image in seen:
                continue
            seen.add(image)
            if image_name(image) == "busybox" and busybox_applets() is not None:
                continue  # busybox manifests get the host's busybox applets
            err.print(f"note: image {image} is not pulled: commands run on the host "
                      f"(use --runtime podman for real images)")


def _check_or_exit(cfg: ControlPlaneConfig) -> None:
    """Options that cannot work together (or name nothing): one line, exit status 2."""
    with bad_input(Fail):
        cfg_check(cfg)


def _load_or_exit(file: str, validate: str = "strict") -> tuple[Any, FieldValidation]:
    """The manifests of ``file`` and the ``fieldValidation`` ``--validate`` asks for."""
    from joblet.cli.manifests import field_validation

    with bad_input(ManifestError):
        return load_manifests(file), field_validation(validate)


def _print_warnings(warnings: list[str]) -> None:
    for text in warnings:
        err.print(f"Warning: {text}", highlight=False, markup=False)


@app.command()
def apply(
    file: Annotated[str, typer.Option("--filename", "-f", help="Manifest (YAML or JSON; - for stdin).")],
    namespace: Annotated[str | None, typer.Option("--namespace", "-n", help="Namespace (default: the manifest's, else default).")] = None,
    data_dir: DataDirOpt = None,
    kubeconfig: KubeconfigOpt = None,
    validate: ValidateOpt = "strict",
) -> None:
    """Create or update the objects in a manifest (server-side apply)."""
    manifests, mode = _load_or_exit(file, validate)

    async def go() -> None:
        async with connect(kubeconfig, _config(data_dir)) as client:
            for m in manifests:
                ns = namespace or (m.obj.get("metadata") or {}).get("namespace") or "default"
                name = (m.obj.get("metadata") or {}).get("name")
                if not name:
                    with warning.collect() as warnings:
                        try:
                            obj = await client.create(m.resource.plural, m.obj, namespace, field_validation=mode)
                        except (Invalid, BadRequest) as e:
                            raise Rejected(e, "creating", file) from None
                        finally:
                            _print_warnings(warnings)
                    out.print(f"{_kind_ref(m.resource.plural)}/{obj['metadata']['name']} created")
                    continue
                where = ns if m.resource.namespaced else ""
                try:
                    before: str | None = (await client.get(m.resource.plural, name, where))["metadata"].get("resourceVersion")
                except NotFound:
                    before = None
                with warning.collect() as warnings:
                    try:
                        after = await client.patch(m.resource.plural, name, m.obj, where, patch_type="apply",
                                                   field_manager="joblet", field_validation=mode)
                    except (Invalid, BadRequest) as e:
                        raise Rejected(e, "creating" if before is None else "patching", file) from None
                    finally:
                        _print_warnings(warnings)
                verb = ("created" if before is None else
                        "unchanged" if after["metadata"].get("resourceVersion") == before else "configured")
                out.print(f"{_kind_ref(m.resource.plural)}/{name} {verb}")

    run_async(go())


def _kind_ref(plural: str) -> str:
    r = lookup(plural)
    assert r is not None
    return f"{r.kind.lower()}.{r.group}" if r.group else r.kind.lower()


def _resource_or_fail(kind: str) -> str:
    r = lookup(kind)
    if r is None:
        raise Fail(f'the server doesn\'t have a resource type "{kind}"', 2)
    return r.plural


@app.command()
def get(
    kind: Annotated[str, typer.Argument(help="Resource type(s): jobs, pods, cronjobs, events, nodes, ...; comma-separated, or all.")],
    name: Annotated[str | None, typer.Argument(help="One object's name.")] = None,
    namespace: NamespaceOpt = "default",
    all_namespaces: Annotated[bool, typer.Option("--all-namespaces", "-A", help="List across all namespaces.", metavar="")] = False,
    selector: Annotated[str | None, typer.Option("--selector", "-l", help="Label selector.")] = None,
    output: Annotated[str | None, typer.Option("--output", "-o", help="wide, yaml, json or name.")] = None,
    data_dir: DataDirOpt = None,
    kubeconfig: KubeconfigOpt = None,
) -> None:
    """List objects as a table (the columns kubectl prints), or print them as YAML/JSON."""

    kinds = [k.strip() for k in kind.split(",") if k.strip()]
    if "all" in kinds:  # kubectl's "all", for what joblet runs
        at = kinds.index("all")
        kinds[at:at + 1] = ["cronjobs", "jobs", "pods"]

    async def go() -> None:
        plurals = list(dict.fromkeys(_resource_or_fail(k) for k in kinds))
        if not plurals:
            raise Fail("you must specify the type of resource to get", 2)
        if name and len(plurals) > 1:
            raise Fail("there is no need to specify a resource type as a separate argument when passing "
                       "arguments in resource/name form", 2)
        from joblet.cli.connect import choose, data_dir_explicit

        cfg = _config(data_dir)
        choice = choose(kubeconfig, cfg.data_dir if data_dir_explicit(cfg.data_dir) else None, cfg.data_dir)
        async with connect(kubeconfig, cfg, read_only=True, choice=choice) as client:
            if choice.target is None and "cronjobs" in plurals:
                err.print("(no server running: showing stored state; CronJobs are not being scheduled)")
            ns: str | None = None if all_namespaces else namespace
            if len(plurals) == 1:
                plural = plurals[0]
                if name:
                    items = [await client.get(plural, name, ns or "")]
                else:
                    items = (await client.list(plural, ns, label_selector=selector)).items
                print_objects(plural, items, output, show_namespace=all_namespaces)
                return
            listed = [(p, (await client.list(p, ns, label_selector=selector)).items) for p in plurals]
            if output in ("yaml", "json"):
                print_objects(plurals[0], [i for _, items in listed for i in items], output)
                return
            printed = 0
            for plural, items in listed:
                if not items:
                    continue
                if printed and output != "name":
                    out.print("")
                print_objects(plural, items, output, show_namespace=all_namespaces, kind_prefix=True)
                printed += 1
            if not printed:
                err.print("No resources found.")

    run_async(go())


def print_objects(plural: str, items: list[Obj], output: str | None, show_namespace: bool = False,
                  kind_prefix: bool = False) -> None:
    """One kind's objects as a table (``kind_prefix``: names as ``job.batch/x``, as kubectl
    prints several kinds), YAML, JSON or names."""
    if output in ("yaml", "json"):
        doc: Any = items[0] if len(items) == 1 else {"apiVersion": "v1", "kind": "List", "items": items,
                                                     "metadata": {"resourceVersion": ""}}
        text = json.dumps(doc, indent=2) if output == "json" else yaml.safe_dump(doc, sort_keys=False)
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return
    if output == "name":
        for item in items:
            out.print(f"{_kind_ref(plural)}/{item['metadata']['name']}")
        return
    if output not in (None, "wide"):
        raise Fail(f"unable to match a printer suitable for the output format {output!r}, allowed formats are: json,name,wide,yaml", 2)
    if not items:
        err.print("No resources found.")
        return
    from joblet.api.tables import to_table
    from joblet.clock import RealClock

    table = to_table(plural, items, RealClock().now(), wide=output == "wide", list_rv="")
    columns = [c for c in table["columnDefinitions"] if output == "wide" or c.get("priority", 0) == 0]
    keep = [i for i, c in enumerate(table["columnDefinitions"]) if c in columns]
    headers = [c["name"].upper() for c in columns]
    rows = [[str(row["cells"][i]) for i in keep] for row in table["rows"]]
    if kind_prefix:
        for row in rows:
            row[0] = f"{_kind_ref(plural)}/{row[0]}"
    if show_namespace:
        headers.insert(0, "NAMESPACE")
        for row, item in zip(rows, items, strict=True):
            row.insert(0, str(item["metadata"].get("namespace", "")))
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    out.print("   ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for r in rows:
        out.print("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


@app.command()
def describe(
    kind: Annotated[str, typer.Argument(help="Resource type (job, pod, cronjob).")],
    name: Annotated[str, typer.Argument(help="Name.")],
    namespace: NamespaceOpt = "default",
    data_dir: DataDirOpt = None,
    kubeconfig: KubeconfigOpt = None,
) -> None:
    """Show an object in detail, with its pods and events."""
    from joblet.cli.describe import describe_object

    async def go() -> None:
        plural = _resource_or_fail(kind)
        async with connect(kubeconfig, _config(data_dir), read_only=True) as client:
            out.print(await describe_object(client, plural, name, namespace), highlight=False)

    run_async(go())


@app.command()
def logs(
    target: Annotated[str, typer.Argument(help="POD or job/NAME.")],
    container: Annotated[str | None, typer.Option("--container", "-c", help="Container (default: the pod's first).")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Stream until the container ends.", metavar="")] = False,
    previous: Annotated[bool, typer.Option("--previous", "-p", help="The previous attempt of a restarted container.", metavar="")] = False,
    all_attempts: Annotated[bool, typer.Option("--all-attempts", help="Every attempt of every pod of a Job, labelled [index/pod attempt N] (also after the Job was deleted).", metavar="")] = False,
    tail: Annotated[int | None, typer.Option("--tail", help="Only the last N lines.")] = None,
    timestamps: Annotated[bool, typer.Option("--timestamps", help="Prefix each line with its time.", metavar="")] = False,
    namespace: NamespaceOpt = "default",
    data_dir: DataDirOpt = None,
    kubeconfig: KubeconfigOpt = None,
) -> None:
    """Print a pod's logs, or all pods' logs of a Job (also after they were deleted)."""

    if all_attempts:  # joblet.dashboard.history: straight from the log store in the data dir
        run_async(_all_attempts(target, namespace, timestamps, data_dir, kubeconfig))
        return

    async def go() -> None:
        async with connect(kubeconfig, _config(data_dir), read_only=True) as client:
            pods: list[str]
            job_name: str | None = None
            if target.startswith(("job/", "jobs/", "job.batch/")):
                job_name = target.split("/", 1)[1]
                pods = await _job_pod_names(client, namespace, job_name)
                if not pods:
                    raise Fail(f"no pods found for job/{job_name}")
            else:
                pods = [target.split("/", 1)[1] if target.startswith(("pod/", "pods/")) else target]

            async def stream(pod: str) -> None:
                prefix = f"[{pod}] " if len(pods) > 1 or job_name else ""
                pending = b""
                async for chunk in client.read_log(namespace, pod, container, follow=follow, tail_lines=tail,
                                                   timestamps=timestamps, previous=previous):
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    for line in lines:
                        sys.stdout.write(prefix + line.decode(errors="replace") + "\n")
                    sys.stdout.flush()
                if pending:
                    sys.stdout.write(prefix + pending.decode(errors="replace") + "\n")

            try:
                if follow and job_name:  # live: every pod at once, retries too, until the Job ends
                    await _follow_job_pods(client, namespace, job_name, pods, stream)
                elif follow:
                    await asyncio.gather(*(stream(pod) for pod in pods))
                else:
                    for pod in pods:
                        await stream(pod)
            except NotFound:
                if len(pods) == 1:
                    await _suggest_for_missing_pod(client, namespace, pods[0])
                raise

    run_async(go())


async def _follow_job_pods(client: Any, namespace: str, job_name: str, pods: list[str],
                           stream: Any) -> None:
    """``logs -f job/X``: stream every pod of the Job at once, and pods it creates later
    (retries), until the Job has finished and every stream has ended."""
    from joblet.objects import job_finished

    tasks: dict[str, asyncio.Future[None]] = {p: asyncio.ensure_future(stream(p)) for p in pods}
    selector = f"batch.kubernetes.io/job-name={job_name}"
    while True:
        try:
            job: Obj | None = await client.get("jobs", job_name, namespace)
        except NotFound:
            job = None
        for p in (await client.list("pods", namespace, label_selector=selector)).items:
            name = p["metadata"]["name"]
            started = any("running" in (cs.get("state") or {}) or "terminated" in (cs.get("state") or {})
                          for cs in (p.get("status") or {}).get("containerStatuses") or [])
            if name not in tasks and started:
                pods.append(name)
                tasks[name] = asyncio.ensure_future(stream(name))
        if (job is None or job_finished(job)) and all(t.done() for t in tasks.values()):
            break
        await poll_pause(0.5)
    for t in tasks.values():
        with contextlib.suppress(NotFound):  # a pod deleted meanwhile (its Job replaced it)
            t.result()


async def _suggest_for_missing_pod(client: Any, namespace: str, name: str) -> None:
    """``joblet logs hello`` where hello is a Job: say what to type instead."""
    try:
        await client.get("jobs", name, namespace)
    except ApiError:
        pods = (await client.list("pods", namespace)).items
        close = sorted(p["metadata"]["name"] for p in pods if p["metadata"]["name"].startswith(name.rsplit("-", 1)[0]))
        if close:
            raise Fail(f'pod "{name}" not found; pods like it: {", ".join(close[:5])}') from None
        return
    raise Fail(f'pod "{name}" not found; {name} is a Job: joblet logs job/{name}') from None


async def _all_attempts(target: str, namespace: str, timestamps: bool, data_dir: Path | None,
                        kubeconfig: str | None) -> None:
    """``joblet logs job/X --all-attempts``: every container attempt of every pod, oldest first."""
    from joblet.dashboard import history

    if not target.startswith(("job/", "jobs/", "job.batch/")):
        raise Fail("--all-attempts needs job/NAME", 2)
    job_name = target.split("/", 1)[1]
    cfg = _config(data_dir)
    live: list[str] = []
    indexes: dict[str, int] = {}
    try:
        async with connect(kubeconfig, cfg) as client:
            listed = await client.list("pods", namespace, label_selector=f"batch.kubernetes.io/job-name={job_name}")
            for p in listed.items:
                live.append(p["metadata"]["name"])
                ix = (p["metadata"].get("annotations") or {}).get("batch.kubernetes.io/job-completion-index")
                if isinstance(ix, str) and ix.isdigit():
                    indexes[p["metadata"]["name"]] = int(ix)
    except (ApiError, DataDirBusy):
        pass  # the log store alone still knows every attempt
    attempts = history.job_attempts(cfg.data_dir / "logs", namespace, job_name, live)
    if not attempts:
        raise Fail(f"no logs found for job/{job_name}")
    containers: dict[str, set[str]] = {}
    for a in attempts:
        containers.setdefault(a.pod, set()).add(a.container)

    def index_of(a: Any) -> int | None:
        ix = indexes.get(a.pod)
        return ix if ix is not None else history.index_from_name(job_name, a.pod)

    def start_of(a: Any) -> str:
        return a.start.isoformat() if a.start is not None else ""

    # Attempts numbered per completion index across its pods (a retry is a new pod), sorted by index.
    ordered = sorted(attempts, key=lambda a: (index_of(a) is None, index_of(a) or 0, start_of(a), a.pod, a.number))
    seen: dict[tuple[Any, str], int] = {}
    for a in ordered:
        ix = index_of(a)
        group = (ix if ix is not None else a.pod, a.container)
        seen[group] = seen.get(group, 0) + 1
        who = f"{a.pod}/{a.container}" if len(containers[a.pod]) > 1 else a.pod
        label = f"[{'-' if ix is None else ix}/{who} attempt {seen[group]}]"
        for line in history.read_attempt(a.path, timestamps):
            sys.stdout.write(f"{label} {line}\n")
    sys.stdout.flush()


async def _job_pod_names(client: Any, namespace: str, job_name: str) -> list[str]:
    """Pods of a Job: live ones by label; once they are deleted, the ones the Job's own
    ``SuccessfulCreate`` events name (the same through HTTP to a running server and offline),
    else the log store's record of deleted ones (offline, the events gone)."""
    listed = await client.list("pods", namespace, label_selector=f"batch.kubernetes.io/job-name={job_name}")
    names = [p["metadata"]["name"] for p in listed.items]
    if names:
        return sorted(names)
    created = await _created_pod_names(client, namespace, job_name)
    if created:
        return created
    store = getattr(client, "log_store", None)
    if store is not None and hasattr(store, "pods"):
        prefix = job_name + "-"
        return sorted(p for p in store.pods(namespace) if p.startswith(prefix))
    return []


CREATED_POD = "Created pod: "


async def _created_pod_names(client: Any, namespace: str, job_name: str) -> list[str]:
    """The pods the newest Job named ``job_name`` created, from its ``SuccessfulCreate`` events."""
    events = (await client.list("events", namespace,
                                field_selector=f"involvedObject.kind=Job,involvedObject.name={job_name}")).items
    created = [e for e in events if e.get("reason") == "SuccessfulCreate"
               and str(e.get("message") or "").startswith(CREATED_POD)]
    if not created:
        return []

    def when(event: dict[str, Any]) -> str:
        return str(event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp") or "")

    newest_uid = (max(created, key=when).get("involvedObject") or {}).get("uid")
    return sorted({str(e["message"])[len(CREATED_POD):].strip() for e in created
                   if (e.get("involvedObject") or {}).get("uid") == newest_uid})


@app.command()
def delete(
    kind: Annotated[str, typer.Argument(help="Resource type.")],
    name: Annotated[str, typer.Argument(help="Name.")],
    namespace: NamespaceOpt = "default",
    cascade: Annotated[str, typer.Option(help="background, foreground or orphan.")] = "background",
    data_dir: DataDirOpt = None,
    kubeconfig: KubeconfigOpt = None,
) -> None:
    """Delete an object (a Job's pods go with it unless --cascade=orphan)."""
    policies = {"background": "Background", "foreground": "Foreground", "orphan": "Orphan"}
    if cascade not in policies:
        err.print(f'error: invalid --cascade value "{cascade}": use background, foreground or orphan')
        raise typer.Exit(2)

    async def go() -> None:
        from joblet.cli.connect import choose, data_dir_explicit

        plural = _resource_or_fail(kind)
        cfg = _config(data_dir)
        choice = choose(kubeconfig, cfg.data_dir if data_dir_explicit(cfg.data_dir) else None, cfg.data_dir)
        # No server: nothing else would stop the pods, so run the control plane for the
        # cascade (its node agent adopts the pods, the garbage collector deletes them).
        cascading = choice.target is None and cascade != "orphan" and plural == "jobs"
        async with connect(kubeconfig, cfg, controllers=cascading, choice=choice) as client:
            deleted = await client.delete(plural, name, namespace, propagation_policy=policies[cascade])  # type: ignore[arg-type]
            if cascading:
                await _wait_for_pods_gone(client, namespace, deleted)
            out.print(f'{_kind_ref(plural)} "{name}" deleted')

    run_async(go())


async def _wait_for_pods_gone(client: Any, namespace: str, job: Obj, timeout: float = 120.0) -> None:
    """An offline ``delete job``: wait until the Job's pods were stopped and removed."""
    from joblet.clock import RealClock

    selector = f"batch.kubernetes.io/controller-uid={job['metadata'].get('uid', '')}"
    clock = RealClock()
    deadline = clock.monotonic() + timeout
    told = False
    while True:
        left = (await client.list("pods", namespace, label_selector=selector)).items
        if not left:
            return
        running = [p for p in left if (p.get("status") or {}).get("phase") in ("Running", "Pending")]
        if running and not told:
            err.print(f"stopping {len(running)} pod{'s' if len(running) != 1 else ''} of job/{job['metadata']['name']}")
            told = True
        if clock.monotonic() > deadline:
            raise Fail(f"{len(left)} pods of job/{job['metadata']['name']} are still terminating", 1)
        await clock.sleep_async(0.1)


@app.command()
def wait(
    target: Annotated[str, typer.Argument(help="job/NAME")],
    condition: Annotated[str, typer.Option("--for", help="condition=complete or condition=failed")] = "condition=complete",
    timeout: Annotated[float, typer.Option(help="Seconds to wait.")] = 30.0,
    namespace: NamespaceOpt = "default",
    data_dir: DataDirOpt = None,
    kubeconfig: KubeconfigOpt = None,
) -> None:
    """Wait until a Job has a condition (kubectl wait --for=condition=complete)."""
    if not condition.startswith("condition="):
        err.print("error: --for must be condition=NAME")
        raise typer.Exit(2)
    wanted = condition.split("=", 1)[1].lower()
    kind, _, name = target.partition("/")

    async def go() -> None:
        plural = _resource_or_fail(kind)
        from joblet.objects import condition_true

        async with connect(kubeconfig, _config(data_dir), read_only=True) as client:
            clock = RealClock()
            deadline = clock.monotonic() + timeout
            while True:
                obj = await client.get(plural, name, namespace)
                types = [c["type"] for c in (obj.get("status") or {}).get("conditions") or []]
                match = next((t for t in types if t.lower() == wanted), None)
                if match and condition_true(obj, match):
                    out.print(f"{_kind_ref(plural)}/{name} condition met")
                    return
                other = {"complete": "Failed", "failed": "Complete"}.get(wanted)
                if plural == "jobs" and other and condition_true(obj, other):
                    reason = next((c.get("reason") for c in (obj.get("status") or {}).get("conditions") or []
                                   if c.get("type") == other), None)
                    why = f" ({reason})" if reason else ""
                    raise Fail(f"job/{name} is {other}{why}; it will not become {wanted.capitalize()}")
                if clock.monotonic() > deadline:
                    raise Fail(f"timed out waiting for the condition on {plural}/{name}")
                await clock.sleep_async(0.2)

    run_async(go())


def _set_suspend(name: str, namespace: str, suspend: bool, data_dir: Path | None, kubeconfig: str | None) -> None:
    async def go() -> None:
        async with connect(kubeconfig, _config(data_dir)) as client:
            await client.patch("jobs", name, {"spec": {"suspend": suspend}}, namespace, patch_type="merge")
            out.print(f"job.batch/{name} {'suspended' if suspend else 'resumed'}")

    run_async(go())


def _suspend_command(suspend: bool, doc: str) -> Callable[..., None]:
    """``joblet suspend`` and ``joblet resume``: one command body, two values of spec.suspend."""

    def command(
        name: Annotated[str, typer.Argument(help="Job name (or job/NAME).")],
        namespace: NamespaceOpt = "default",
        data_dir: DataDirOpt = None,
        kubeconfig: KubeconfigOpt = None,
    ) -> None:
        _set_suspend(name.split("/", 1)[-1], namespace, suspend, data_dir, kubeconfig)

    command.__doc__ = doc
    return command


app.command("suspend")(_suspend_command(
    True, "Suspend a Job: its running pods are stopped (not counted as failures) until resumed."))
app.command("resume")(_suspend_command(False, "Resume a suspended Job (its activeDeadlineSeconds timer starts over)."))


@app.command()
def kubeconfig(data_dir: DataDirOpt = None) -> None:
    """Print the kubeconfig that points kubectl at this data dir's server."""
    path = _config(data_dir).data_dir / "kubeconfig"
    if not path.exists():
        err.print(f"error: no kubeconfig at {path}: start the server with `joblet server` first")
        raise typer.Exit(1)
    sys.stdout.write(path.read_text())


def _print_version(value: bool) -> None:
    if value:
        out.print(f"joblet {__version__}")
        raise typer.Exit()


@app.callback()
def _global_options(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="Print joblet's version and exit.", metavar="")] = False,
) -> None:
    """The Kubernetes Job system, without the cluster: run batch/v1 Jobs and CronJobs locally."""


@app.command()
def version() -> None:
    """Print joblet's version."""
    out.print(f"joblet {__version__}")


def _register_subcommands() -> None:
    from joblet.cli.cron import create_app, cron_app, cronjob_app
    from joblet.cli.encryption import encryption_key_app
    from joblet.cli.tokens import token_app

    app.add_typer(cron_app, name="cron")  # joblet cron next "SCHEDULE" [--time-zone TZ] [--from T] [--count N]
    app.add_typer(cronjob_app, name="cronjob")  # joblet cronjob next NAME [--count N]
    app.add_typer(create_app, name="create")  # joblet create job NAME --from=cronjob/X
    app.add_typer(token_app, name="token")  # joblet token create NAME [--group G]... [--expires 24h] | revoke | list
    app.add_typer(encryption_key_app, name="encryption-key")  # joblet encryption-key generate


_register_subcommands()


def main(argv: list[str] | None = None) -> None:
    app(args=argv, prog_name="joblet")


if __name__ == "__main__":
    main()
