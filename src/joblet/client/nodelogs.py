"""The API server's side of a remote node's log endpoint (:mod:`joblet.node.logserver`).

Why here: the API server proxies ``pods/log`` of a pod on a remote node to that node, as
kube-apiserver proxies to the kubelet; it may use the client layer but not the node, so the
proxying client and the Node annotation both sides agree on live in the client layer.
"""

from __future__ import annotations

import json
import ssl
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from joblet.security.pki import write_private

#: the Node annotation holding the PEM of the node's log endpoint certificate.
CERT_ANNOTATION = "joblet.dev/log-endpoint-certificate"
#: seconds to connect and to read a request head, on both sides
READ_TIMEOUT = 10.0


def client_ssl_context(node_cert_pem: str, client_cert: bytes, client_key: bytes) -> ssl.SSLContext:
    """The API server's side: trust exactly the node's published certificate, present its client one."""
    ctx = ssl.create_default_context(cadata=node_cert_pem)
    with tempfile.TemporaryDirectory(prefix="joblet-cert-") as tmp:
        cert, key = Path(tmp) / "tls.crt", Path(tmp) / "tls.key"
        write_private(cert, client_cert)
        write_private(key, client_key)
        ctx.load_cert_chain(cert, key)
    return ctx


def node_endpoint(node: dict[str, Any]) -> tuple[str, int, str] | None:
    """(address, port, certificate PEM) of a Node's published log endpoint, if it has one."""
    status = node.get("status") or {}
    pem = ((node.get("metadata") or {}).get("annotations") or {}).get(CERT_ANNOTATION)
    port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
    address = next((a.get("address") for a in status.get("addresses") or []
                    if a.get("type") == "InternalIP" and a.get("address")), None)
    if not pem or not isinstance(port, int) or not address:
        return None
    return str(address), port, str(pem)


async def open_remote_log(node: dict[str, Any], client_cert: tuple[bytes, bytes], namespace: str, pod: str,
                          container: str, params: dict[str, str]) -> AsyncIterator[bytes] | None:
    """The API server's proxy to a node's log endpoint: the log's chunks, or None when the
    node publishes no endpoint (it runs in this process, or without the cluster CA).

    Errors the node answers come back as the same ApiError; an unreachable node is a 503."""
    import httpx

    from joblet.errors import ServiceUnavailable, from_status

    endpoint = node_endpoint(node)
    if endpoint is None:
        return None
    address, port, pem = endpoint
    host = f"[{address}]" if ":" in address else address
    http = httpx.AsyncClient(verify=client_ssl_context(pem, *client_cert),
                             timeout=httpx.Timeout(READ_TIMEOUT, read=None))
    url = httpx.URL(f"https://{host}:{port}/containerLogs/{namespace}/{pod}/{container}", params=params)
    try:
        response = await http.send(http.build_request("GET", url), stream=True)
    except httpx.HTTPError as err:
        await http.aclose()
        name = (node.get("metadata") or {}).get("name", "")
        raise ServiceUnavailable(f"the log endpoint of node {name} is unreachable: {err}") from None
    if response.status_code != 200:
        body = await response.aread()
        await response.aclose()
        await http.aclose()
        try:
            status = json.loads(body)
        except ValueError:
            status = {"code": 503, "message": body.decode(errors="replace")[:200]}
        raise from_status(status if isinstance(status, dict) else {"code": 503})

    async def chunks() -> AsyncIterator[bytes]:
        try:
            async for chunk in response.aiter_raw():
                yield chunk
        finally:
            await response.aclose()
            await http.aclose()

    return chunks()
