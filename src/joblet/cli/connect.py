"""How a CLI command finds its API: a running server the way kubectl finds one
(``--kubeconfig``, ``KUBECONFIG``, else the default data dir's kubeconfig), or, when none
answers, the data dir opened in-process so history stays readable offline."""

from __future__ import annotations

import contextlib
import os
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from joblet.client.interface import Client
from joblet.config import ControlPlaneConfig
from joblet.datadir import is_in_use


@dataclass
class Target:
    """A reachable API server, as read from a kubeconfig."""

    url: str
    token: str | None
    #: the kubeconfig's CA (and client certificate), as an SSL context
    verify: bool | ssl.SSLContext


def find_server(kubeconfig: str | None, data_dir: Path) -> Target | None:
    """The server a kubeconfig names, if it answers /version within a moment."""
    from joblet.kubeconfig import load_access

    path: str | None = kubeconfig or os.environ.get("KUBECONFIG")
    if not path:
        candidate = data_dir / "kubeconfig"
        # The data dir's kubeconfig names the last server of this data dir; trust it only
        # while a process holds the data dir, or another joblet on that port could answer.
        if not candidate.exists() or not is_in_use(data_dir):
            return None
        path = str(candidate)
    try:
        access = load_access(path)
        url, token, verify = access.server, access.token, access.ssl_context()
    except (OSError, ValueError, KeyError, ssl.SSLError):
        return None
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        httpx.get(url.rstrip("/") + "/version", timeout=1.0, verify=verify, headers=headers).raise_for_status()
    except httpx.HTTPError:
        return None
    return Target(url, token, verify)


@contextlib.asynccontextmanager
async def connect(
    kubeconfig: str | None,
    config: ControlPlaneConfig,
    *,
    controllers: bool = False,
) -> AsyncIterator[Client]:
    """A client for a CLI command.

    With a server reachable: HTTP to it. Otherwise the data dir in this process: the whole
    control plane when ``controllers`` (``joblet run``), else just the API over the store
    (``get``, ``logs``, ``describe`` on a stopped joblet).
    """
    target = find_server(kubeconfig, config.data_dir)
    if target is not None:
        from joblet.client.http import HttpClient

        client = HttpClient(target.url, token=target.token, verify=target.verify)
        try:
            yield client
        finally:
            await client.close()
        return
    from joblet.controlplane import ControlPlane

    plane = ControlPlane(config, run_controllers=controllers, serve_http=controllers, http_optional=True)
    await plane.start()
    try:
        yield plane.client
    finally:
        await plane.stop()
