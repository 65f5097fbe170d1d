"""A remote node's log endpoint: ``pods/log`` for the pods that ran on this machine, for the API server only.

Why: in split mode (``joblet node --server URL``) a pod's log files stay in the node's data dir,
as they stay on a kubelet's machine; the API server answers ``pods/log`` for such a pod by
proxying to the node, as kube-apiserver proxies to the kubelet's ``/containerLogs``. Pull,
not push: ``follow``, ``tailLines`` and ``previous`` need the files, and pushing every line
to the server would write every log twice.

Security, mutual TLS:

* the node serves a self-signed certificate it generates at each start (key 0600 in its data
  dir) and publishes the certificate on its Node object (annotation :data:`joblet.client.nodelogs.CERT_ANNOTATION`,
  written with the node's own credentials); the API server pins exactly that certificate;
* the API server presents a client certificate signed by the cluster CA (the CA in the node's
  kubeconfig) with CN :data:`joblet.security.pki.NODE_LOG_CLIENT_CN`; the TLS handshake refuses
  any peer without a CA-signed certificate and the handler any other CN, before reading a
  byte of HTTP. A node without the cluster CA (``--insecure-skip-tls-verify``) serves no logs.

It is a small HTTP/1.1 server on asyncio streams rather than an ASGI app because the peer
certificate must be checked and the ASGI servers do not hand it to the app. It serves one
route, ``GET /containerLogs/NAMESPACE/POD/CONTAINER`` with the ``pods/log`` query parameters
the API server already validated, read through the :class:`~joblet.node.logs.LogStore` (which
never leaves ``logs/``); errors are ``Status`` objects with their code.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from joblet.client.nodelogs import READ_TIMEOUT
from joblet.clock import Clock, parse_time
from joblet.errors import ApiError, BadRequest, Forbidden, NotFound
from joblet.node.logs import LogStore
from joblet.security.pki import NODE_LOG_CLIENT_CN, self_signed_serving_cert, write_private

log = logging.getLogger(__name__)

#: the kubelet's port, the default of ``joblet node --log-port``.
DEFAULT_PORT = 10250
MAX_REQUEST_HEAD = 16 * 1024


class LogServer:
    """Serves ``/containerLogs`` over mutual TLS until :meth:`close`."""

    def __init__(self, logs: LogStore, data_dir: Path, cluster_ca: bytes, clock: Clock, *,
                 address: str = "127.0.0.1", host: str = "0.0.0.0", port: int = DEFAULT_PORT) -> None:
        self.logs, self.clock = logs, clock
        self.address, self.host, self.port = address, host, port
        self.cert_pem, key_pem = self_signed_serving_cert(f"joblet-node-logs@{address}",
                                                          sorted({address, "127.0.0.1", "localhost"}), clock.now())
        pki = data_dir / "pki"
        write_private(pki / "log-endpoint.crt", self.cert_pem)
        write_private(pki / "log-endpoint.key", key_pem)
        self.ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cadata=cluster_ca.decode())
        self.ssl.verify_mode = ssl.CERT_REQUIRED
        self.ssl.load_cert_chain(pki / "log-endpoint.crt", pki / "log-endpoint.key")
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        """Listens; returns the port (the one the OS chose for ``port=0``)."""
        self._server = await asyncio.start_server(self._handle, self.host, self.port, ssl=self.ssl)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if peer_cn(writer.get_extra_info("peercert")) != NODE_LOG_CLIENT_CN:
                await respond_error(writer, Forbidden("only the API server reads a node's logs"))
                return
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT)
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
                return
            if len(head) > MAX_REQUEST_HEAD:
                return
            request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
            try:
                method, target, _ = request_line.split(" ", 2)
                if method != "GET":
                    raise BadRequest(f"{method} is not served")
                chunks = self.read(target)
                first = await anext(chunks, b"")
            except ApiError as err:
                await respond_error(writer, err)
                return
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n"
                         b"Connection: close\r\n\r\n")
            if first:
                writer.write(b"%x\r\n%s\r\n" % (len(first), first))
            async for chunk in chunks:
                if chunk:
                    writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    await writer.drain()
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        except Exception:  # a broken request never takes the node down
            log.exception("log endpoint request failed")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def read(self, target: str) -> AsyncIterator[bytes]:
        url = urlsplit(target)
        parts = [unquote(p) for p in url.path.split("/")]
        if len(parts) != 5 or parts[:2] != ["", "containerLogs"]:
            raise NotFound("the server could not find the requested resource")
        namespace, pod, container = parts[2:]
        q = {k: v[-1] for k, v in parse_qs(url.query).items()}

        def integer(name: str) -> int | None:
            try:
                return int(q[name]) if name in q else None
            except ValueError:
                raise BadRequest(f"{name} must be an integer") from None

        since_time = None
        if q.get("sinceTime"):
            try:
                since_time = parse_time(q["sinceTime"])
            except (ValueError, OverflowError):
                raise BadRequest("sinceTime must be an RFC 3339 time") from None
        return self.logs.read(namespace, pod, container=container or None, follow=q.get("follow") == "true",
                              tail_lines=integer("tailLines"), since_time=since_time,
                              timestamps=q.get("timestamps") == "true", previous=q.get("previous") == "true",
                              limit_bytes=integer("limitBytes"), uid=q.get("uid") or None)


def peer_cn(peercert: Any) -> str | None:
    """The CN of a verified peer certificate (``ssl.SSLSocket.getpeercert()`` form)."""
    for rdn in (peercert or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


async def respond_error(writer: asyncio.StreamWriter, err: ApiError) -> None:
    body = json.dumps(err.to_status()).encode()
    writer.write(b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                 b"Connection: close\r\n\r\n%s" % (err.code, err.reason.encode(), len(body), body))
    with contextlib.suppress(ConnectionError):
        await writer.drain()
