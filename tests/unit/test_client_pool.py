"""joblet.client.pool: the pool's "is this idle connection still open?" answered from a socket
remembered once — same answers as httpcore's, and a connection the server closed while idle
is still replaced, not reused."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import httpcore
import httpx

from joblet.client.http import HttpClient
from joblet.client.pool import CachedSocketBackend, CachedSocketStream, install, socket_readable


class FakeStream(httpcore.AsyncNetworkStream):
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.lookups = 0

    def get_extra_info(self, info: str) -> Any:
        self.lookups += 1
        return self.sock if info == "socket" else f"inner:{info}"


def test_readable_when_data_waits_or_the_peer_closed() -> None:
    a, b = socket.socketpair()
    try:
        stream = CachedSocketStream(FakeStream(a))
        assert stream.get_extra_info("is_readable") is False
        b.sendall(b"x")
        assert stream.get_extra_info("is_readable") is True
        a.recv(1)
        assert stream.get_extra_info("is_readable") is False
        b.close()
        assert stream.get_extra_info("is_readable") is True
    finally:
        a.close()
    assert socket_readable(None) is False


def test_socket_looked_up_once_other_attributes_pass_through() -> None:
    a, b = socket.socketpair()
    try:
        inner = FakeStream(a)
        stream = CachedSocketStream(inner)
        for _ in range(5):
            stream.get_extra_info("is_readable")
        assert inner.lookups == 1
        assert stream.get_extra_info("socket") is a
        assert stream.get_extra_info("ssl_object") == "inner:ssl_object"
    finally:
        a.close()
        b.close()


def test_install_wraps_the_direct_transport_once() -> None:
    async def body() -> None:
        client = httpx.AsyncClient()
        try:
            assert install(client) and install(client)
            backend = client._transport._pool._network_backend  # type: ignore[attr-defined]
            assert isinstance(backend, CachedSocketBackend)
            assert not isinstance(backend.inner, CachedSocketBackend)
        finally:
            await client.aclose()
        assert install(httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(200)))) is False

    asyncio.run(body())


def test_http_client_uses_it() -> None:
    async def body() -> None:
        client = HttpClient("http://127.0.0.1:1")
        try:
            assert isinstance(client._http._transport._pool._network_backend,  # type: ignore[attr-defined]
                              CachedSocketBackend)
        finally:
            await client.close()

    asyncio.run(body())


def test_connection_closed_by_the_server_while_idle_is_replaced() -> None:
    """Keep-alive: the server answers, then closes the idle connection; the next request must
    see it readable (EOF) and open a new one instead of failing on the dead one."""
    connections: list[int] = []
    closed = asyncio.Queue[None]()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok")
        await writer.drain()
        writer.close()  # keep-alive announced, then closed while the client holds it idle
        await writer.wait_closed()
        closed.put_nowait(None)

    async def body() -> None:
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}")
        assert install(client)
        try:
            for _ in range(3):
                response = await client.get("/")
                assert response.text == "ok"
                await closed.get()  # the FIN is on its way (loopback: already here)
        finally:
            await client.aclose()
            server.close()
            await server.wait_closed()
        assert len(connections) == 3

    asyncio.run(body())
