"""The control plane's settings: every knob a user or a test may turn, with the
defaults Kubernetes uses. Set from ``joblet server`` / ``joblet run`` flags, never by
editing code."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from joblet.datadir import default_data_dir


@dataclass
class ControlPlaneConfig:
    data_dir: Path = field(default_factory=default_data_dir)
    host: str = "127.0.0.1"
    port: int = 6443
    #: Job pod-failure backoff base and cap (upstream DefaultJobPodFailureBackOff / Max).
    pod_failure_backoff: float = 10.0
    pod_failure_backoff_max: float = 600.0
    #: kubelet crash-loop restart backoff base and cap.
    crash_loop_backoff: float = 10.0
    crash_loop_backoff_max: float = 300.0
    #: a node that has not heartbeated for this long is declared lost.
    node_heartbeat_timeout: float = 40.0
    #: which components this process runs (``joblet server --components``).
    components: tuple[str, ...] = ("api", "controllers", "node")
    node_name: str = ""
    #: what the local node offers pods (None: the machine's cpu count and memory).
    node_cpu: str | None = None
    node_memory: str | None = None
    max_pods: int = 1000
    #: bring-your-own serving certificate; without them one is issued from the data dir's CA.
    tls_cert: str | None = None
    tls_key: str | None = None
    #: extra subjectAltNames (names or IPs) of the generated serving certificate (``--tls-san``).
    tls_sans: tuple[str, ...] = ()
    #: the admin token, when the user fixes it (``--token-file``/``JOBLET_TOKEN``; never argv).
    token: str | None = None
    #: CA bundle that verifies client certificates (CN = user, O = groups); None: no client certs.
    client_ca: str | None = None
    #: plain HTTP (loopback only, for debugging).
    insecure_http: bool = False
    #: audit log (audit.k8s.io/v1 Events, JSON lines) and access log (``-``: stdout) files.
    audit_log: str | None = None
    access_log: str | None = None
    #: seconds a connection may take to send a complete request head.
    head_timeout: float = 10.0
    #: open connections accepted at once.
    max_connections: int = 2048
    #: how long logs of finished containers are kept.
    log_retention_days: float = 7.0
    log_retention_bytes: int = 1 << 30
    #: each container attempt's log is rotated at this size, keeping this many files
    #: (``--container-log-max-size``/``--container-log-max-files``, the kubelet's defaults).
    container_log_max_bytes: int = 10 * 1024 * 1024
    container_log_max_files: int = 5
    #: the node's hard eviction threshold (``--eviction-hard``, joblet.node.diskpressure)
    eviction_hard: str = "nodefs.available<5%"
    #: how often the log store is pruned to the retention limits (seconds).
    log_prune_interval: float = 3600.0
    #: Events are deleted this many seconds after they were last recorded (``--event-ttl``, upstream 1h)
    event_ttl: float = 3600.0
    #: webhooks every alert goes to (``--alert-webhook``, repeatable); see joblet.controllers.alerts.
    alert_webhooks: tuple[str, ...] = ()
    #: patterns annotation webhooks must match to be used (``--alert-webhook-allow``; none by default).
    alert_webhook_allow: tuple[str, ...] = ()
    #: the dashboard's base URL in alert payloads (default: the server's own URL).
    dashboard_url: str | None = None
    #: the node agent's container runtime: a row of joblet.node.runtimes.registry.RUNTIMES.
    runtime: str = "process"
    #: the store's URL (``--store``; a scheme of joblet.store.BACKENDS). None: sqlite:///DATA_DIR/joblet.db
    store: str | None = None
    #: AES-GCM keys encrypting Secrets in the store (``--encryption-key-file``; format in
    #: joblet.security.encryption). None: Secrets are stored unencrypted.
    encryption_key_file: Path | None = None
    #: a Ray cluster whose nodes become Nodes (``--ray-address``; see joblet.node.raynodes).
    ray_address: str | None = None
    #: with ray_address: no local node agent, every pod runs on Ray (``--ray-only``; Ray Nodes untainted).
    ray_only: bool = False
    #: leader election of the controllers among replicas on one store (joblet.controllers.leaderelection;
    #: kube-controller-manager's --leader-elect-lease-duration / -renew-deadline / -retry-period)
    leader_elect_lease_duration: float = 15.0
    leader_elect_renew_deadline: float = 10.0
    leader_elect_retry_period: float = 2.0
    #: with ray_address: Ray pods under bubblewrap where the Ray node has it (``--no-ray-sandbox``: never).
    ray_sandbox: bool = True
