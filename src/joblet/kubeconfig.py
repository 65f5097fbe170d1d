"""Write and read kubeconfig files, the way kubectl finds its server.

Why: ``joblet server`` writes a kubeconfig so that kubectl, the official Python client and
joblet's own CLI reach it with no flags; the CLI then resolves the server exactly as kubectl
does (``--kubeconfig``, else ``KUBECONFIG`` — a ``:``-separated list whose first file naming
a value wins — else ``~/.kube/config``; current-context → context → cluster and user).
Parsing is pure (:func:`access_from_config`) beside the thin file I/O: the server, its CA
(``certificate-authority``/``-data``), and the user's token (``token``/``tokenFile``) or client
certificate (``client-certificate``/``client-key`` and their ``-data`` forms), which
:meth:`Access.ssl_context` turns into the ``ssl.SSLContext`` every joblet client uses.
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

DEFAULT_NAME = "joblet"


def default_kubeconfig_path() -> Path:
    """Where kubectl looks when neither ``--kubeconfig`` nor ``KUBECONFIG`` is given."""
    return Path.home() / ".kube" / "config"


def build_kubeconfig(
    server_url: str,
    token: str | None = None,
    *,
    ca_data: bytes | None = None,
    insecure: bool = False,
    name: str = DEFAULT_NAME,
    namespace: str | None = None,
) -> dict[str, Any]:
    cluster: dict[str, Any] = {"server": server_url}
    if ca_data is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca_data).decode()
    elif insecure and server_url.startswith("https://"):
        cluster["insecure-skip-tls-verify"] = True
    user: dict[str, Any] = {"token": token} if token else {}
    context: dict[str, Any] = {"cluster": name, "user": name}
    if namespace:
        context["namespace"] = namespace
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": name, "user": user}],
        "contexts": [{"name": name, "context": context}],
        "current-context": name,
    }


def write_kubeconfig(
    path: str | Path,
    server_url: str,
    token: str | None = None,
    *,
    ca_data: bytes | None = None,
    insecure: bool = False,
    name: str = DEFAULT_NAME,
) -> Path:
    """Write a kubeconfig for one server (mode 0600: it may hold a token)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(build_kubeconfig(server_url, token, ca_data=ca_data, insecure=insecure, name=name),
                          sort_keys=False)
    tmp = target.with_name(target.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, target)
    return target


def _named(entries: Any, name: str, field: str) -> dict[str, Any]:
    for entry in entries or []:
        if isinstance(entry, dict) and entry.get("name") == name:
            value = entry.get(field)
            return value if isinstance(value, dict) else {}
    raise KeyError(f"{field} {name!r} not found in kubeconfig")


def merge_configs(configs: list[dict[str, Any]]) -> dict[str, Any]:
    """KUBECONFIG list semantics: the first file to set a value (or a named entry) wins."""
    merged: dict[str, Any] = {"clusters": [], "users": [], "contexts": []}
    for config in configs:
        if "current-context" not in merged and config.get("current-context"):
            merged["current-context"] = config["current-context"]
        for section in ("clusters", "users", "contexts"):
            known = {e.get("name") for e in merged[section]}
            merged[section].extend(e for e in config.get(section) or [] if isinstance(e, dict)
                                   and e.get("name") not in known)
    return merged


@dataclass(frozen=True)
class Access:
    """How to reach and authenticate to one server, as a kubeconfig context describes it."""

    server: str
    token: str | None = None
    ca_data: bytes | None = None
    client_cert_data: bytes | None = None
    client_key_data: bytes | None = None
    insecure: bool = False

    @property
    def verify(self) -> bool:
        return not self.insecure

    def ssl_context(self) -> ssl.SSLContext:
        """Verifies the server with the kubeconfig's CA (else the system's), presents the
        client certificate if there is one."""
        ctx = ssl.create_default_context(cadata=self.ca_data.decode() if self.ca_data else None)
        if self.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if self.client_cert_data and self.client_key_data:
            # ssl loads a certificate chain only from files: a private temp dir, removed at once.
            with tempfile.TemporaryDirectory(prefix="joblet-cert-") as tmp:
                cert, key = Path(tmp) / "tls.crt", Path(tmp) / "tls.key"
                for path, data in ((cert, self.client_cert_data), (key, self.client_key_data)):
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                    with os.fdopen(fd, "wb") as f:
                        f.write(data)
                ctx.load_cert_chain(str(cert), str(key))
        return ctx


def _data(entry: dict[str, Any], key: str, base: Path | None) -> bytes | None:
    """``KEY-data`` (base64) or the file ``KEY`` names (relative to the kubeconfig's dir)."""
    raw = entry.get(f"{key}-data")
    if raw:
        return base64.b64decode(str(raw))
    name = entry.get(key)
    if name:
        path = Path(str(name)).expanduser()
        if not path.is_absolute() and base is not None:
            path = base / path
        return path.read_bytes()
    return None


def access_from_config(config: dict[str, Any], context: str | None = None, base: Path | None = None) -> Access:
    """The :class:`Access` of the current (or given) context; ``base``: the dir relative paths are in."""
    ctx_name = context or config.get("current-context")
    if not ctx_name:
        raise ValueError("kubeconfig has no current-context")
    ctx = _named(config.get("contexts"), str(ctx_name), "context")
    cluster = _named(config.get("clusters"), str(ctx.get("cluster", "")), "cluster")
    server = cluster.get("server")
    if not server:
        raise ValueError(f"cluster {ctx.get('cluster')!r} has no server")
    token: str | None = None
    user: dict[str, Any] = {}
    if ctx.get("user"):
        try:
            user = _named(config.get("users"), str(ctx["user"]), "user")
        except KeyError:
            user = {}
        token = user.get("token") or None
        if token is None and user.get("tokenFile"):
            token = Path(str(user["tokenFile"])).expanduser().read_text().strip() or None
    return Access(str(server), token, _data(cluster, "certificate-authority", base),
                  _data(user, "client-certificate", base), _data(user, "client-key", base),
                  bool(cluster.get("insecure-skip-tls-verify")))


def server_from_config(config: dict[str, Any], context: str | None = None) -> tuple[str, str | None, bool]:
    """(server URL, bearer token or None, verify TLS) of the current (or given) context."""
    access = access_from_config(config, context)
    return access.server, access.token, access.verify


def kubeconfig_paths(path: str | Path | None = None) -> list[Path]:
    """The files kubectl would read: ``--kubeconfig``, else ``KUBECONFIG``'s list, else the default."""
    if path:
        return [Path(path)]
    env = os.environ.get("KUBECONFIG")
    if env:
        return [Path(p) for p in env.split(os.pathsep) if p]
    return [default_kubeconfig_path()]


def load_server_from_kubeconfig(path: str | Path | None = None,
                                context: str | None = None) -> tuple[str, str | None, bool]:
    """(url, token, verify) as kubectl would resolve them. Raises OSError/ValueError/KeyError."""
    access = load_access(path, context)
    return access.server, access.token, access.verify


def load_access(path: str | Path | None = None, context: str | None = None) -> Access:
    """The server and credentials kubectl would use. Raises OSError/ValueError/KeyError."""
    configs = []
    base: Path | None = None
    for p in kubeconfig_paths(path):
        if path is None and not p.exists():
            continue  # kubectl skips missing files in a KUBECONFIG list
        loaded = yaml.safe_load(p.read_text()) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{p}: not a kubeconfig")
        configs.append(loaded)
        base = base or p.parent
    if not configs:
        raise FileNotFoundError("no kubeconfig found")
    return access_from_config(merge_configs(configs), context, base)
