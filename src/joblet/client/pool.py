"""A cheaper "is this idle connection still open?" for httpx's connection pool.

Why: httpcore's pool checks every idle keep-alive connection each time a request is queued
or finished (``has_expired`` → ``get_extra_info("is_readable")``). Its anyio stream answers
that by building the TLS and socket streams' whole attribute table (a dict of lambdas, and a
``getpeername`` system call) just to find the raw socket, then polls it. With a node agent's
16 pods in flight the pool holds ~20 idle connections, and that lookup was ~30 % of the
client's CPU per request in ``joblet node`` (``bench/throughput.py --split-node`` with
``JOBLET_BENCH_PYSPY``). The wrapper here remembers each connection's socket once and
answers ``is_readable`` with the same zero-timeout poll; everything else passes through.

:func:`install` puts the wrapper under an ``httpx.AsyncClient``'s own (non-proxy) transport;
when httpx's internals differ from what it expects it leaves the client as it is (slower,
never wrong).
"""

from __future__ import annotations

import select
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx


def socket_readable(sock: Any) -> bool:
    """True when a read would not block: data, or the peer closed (httpcore's own test)."""
    if sock is None:
        return False
    try:
        fd = sock.fileno()
    except OSError:
        return True
    if fd < 0:
        return True
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


class CachedSocketStream(httpcore.AsyncNetworkStream):
    """An httpcore stream whose ``is_readable`` polls a socket looked up once."""

    def __init__(self, inner: httpcore.AsyncNetworkStream, sock: Any = None) -> None:
        self._inner = inner
        self._sock = sock if sock is not None else inner.get_extra_info("socket")

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                        timeout: float | None = None) -> httpcore.AsyncNetworkStream:
        tls = await self._inner.start_tls(ssl_context, server_hostname, timeout)
        return CachedSocketStream(tls, self._sock)  # TLS runs over the same socket

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            return socket_readable(self._sock)
        if info == "socket":
            return self._sock
        return self._inner.get_extra_info(info)


class CachedSocketBackend(httpcore.AsyncNetworkBackend):
    """The network backend of a pool, its streams wrapped in :class:`CachedSocketStream`."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend) -> None:
        self.inner = inner

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        return CachedSocketStream(await self.inner.connect_tcp(host, port, timeout, local_address, socket_options))

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        return CachedSocketStream(await self.inner.connect_unix_socket(path, timeout, socket_options))

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def install(client: httpx.AsyncClient) -> bool:
    """Wrap the network backend of ``client``'s direct transport (proxied mounts are left
    alone). False when httpx's layout is not the expected one: the client then works unchanged."""
    pool = getattr(getattr(client, "_transport", None), "_pool", None)
    if type(pool) is not httpcore.AsyncConnectionPool:
        return False
    backend = getattr(pool, "_network_backend", None)
    if not isinstance(backend, httpcore.AsyncNetworkBackend):
        return False
    if not isinstance(backend, CachedSocketBackend):
        pool._network_backend = CachedSocketBackend(backend)
    return True
