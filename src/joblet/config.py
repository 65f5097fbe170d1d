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
    tls_cert: str | None = None
    tls_key: str | None = None
    token: str | None = None
    #: how long logs of finished containers are kept.
    log_retention_days: float = 7.0
    log_retention_bytes: int = 1 << 30
    #: how often the log store is pruned to the retention limits (seconds).
    log_prune_interval: float = 3600.0
    #: webhooks every alert goes to (``--alert-webhook``, repeatable); see joblet.controllers.alerts.
    alert_webhooks: tuple[str, ...] = ()
    #: the dashboard's base URL in alert payloads (default: the server's own URL).
    dashboard_url: str | None = None
    #: the node agent's container runtime: "process" (default) or "podman" (OCI containers from local images).
    runtime: str = "process"
    #: AES-GCM keys encrypting Secrets in the store (``--encryption-key-file``; format in
    #: joblet.security.encryption). None: Secrets are stored unencrypted.
    encryption_key_file: Path | None = None
