"""Credentials for tests that serve the API themselves: a data dir's CA and serving
certificate, an admin token, and clients (httpx, HttpClient, kubeconfig) that trust the CA and
send the token — the same files ``joblet server`` writes, so tests talk HTTPS + token as
every real client does.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import httpx

from joblet.client.http import HttpClient
from joblet.clock import RealClock
from joblet.kubeconfig import Access, load_access, write_kubeconfig
from joblet.security.pki import default_sans, ensure_serving_cert
from joblet.security.tokens import ADMIN_GROUPS, ADMIN_NAME, TokenStore


@dataclass(frozen=True)
class ServerCredentials:
    """What a test server serves with and what its clients present."""

    cert_file: str
    key_file: str
    ca_file: str
    ca_data: bytes
    token: str

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cadata=self.ca_data.decode())


def make_credentials(data_dir: Path) -> ServerCredentials:
    """PKI and an admin token in ``data_dir``, as the control plane creates them."""
    data_dir.mkdir(parents=True, exist_ok=True)
    paths = ensure_serving_cert(data_dir, default_sans("127.0.0.1"), RealClock().now())
    token = TokenStore(data_dir).create(ADMIN_NAME, ADMIN_GROUPS, replace=True)
    return ServerCredentials(str(paths.cert), str(paths.key), str(paths.ca), paths.ca.read_bytes(), token)


def http_client(url: str, creds: ServerCredentials, *, timeout: float = 10.0, token: bool = True) -> httpx.Client:
    headers = {"Authorization": f"Bearer {creds.token}"} if token else {}
    return httpx.Client(base_url=url, verify=creds.ssl_context(), headers=headers, timeout=timeout)


def async_http_client(url: str, creds: ServerCredentials, *, timeout: float = 10.0) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=url, verify=creds.ssl_context(),
                             headers={"Authorization": f"Bearer {creds.token}"}, timeout=timeout)


def api_client(url: str, creds: ServerCredentials) -> HttpClient:
    return HttpClient(url, token=creds.token, verify=creds.ssl_context())


def write_test_kubeconfig(path: Path, url: str, creds: ServerCredentials) -> Path:
    return write_kubeconfig(path, url, token=creds.token, ca_data=creds.ca_data)


def kubeconfig_access(kubeconfig: Path) -> Access:
    """The server, CA and token a (``joblet server``-written) kubeconfig holds."""
    return load_access(kubeconfig)


def kubeconfig_http(kubeconfig: Path, *, timeout: float = 10.0) -> httpx.Client:
    """An httpx client with the kubeconfig's server, CA and token."""
    access = load_access(kubeconfig)
    headers = {"Authorization": f"Bearer {access.token}"} if access.token else {}
    return httpx.Client(base_url=access.server, verify=access.ssl_context(), headers=headers, timeout=timeout)


def kubeconfig_async_http(kubeconfig: Path, *, timeout: float = 10.0) -> httpx.AsyncClient:
    access = load_access(kubeconfig)
    headers = {"Authorization": f"Bearer {access.token}"} if access.token else {}
    return httpx.AsyncClient(base_url=access.server, verify=access.ssl_context(), headers=headers, timeout=timeout)
