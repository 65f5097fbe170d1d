"""The API's listening socket: every accepted connection has Nagle off.

Why: with a listener of protocol 0 asyncio left Nagle on, and each response written in two
pieces (uvicorn's head, then body; every watch event) waited for the client's delayed ACK."""

from __future__ import annotations

import asyncio
import socket

import pytest

from joblet.api.serving import listen_socket


def test_accepted_connections_have_nagle_off() -> None:
    async def main() -> int:
        sock = listen_socket("127.0.0.1", 0)
        seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            conn = writer.get_extra_info("socket")
            seen.set_result(conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(handle, sock=sock)
        try:
            _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
            value = await asyncio.wait_for(seen, 10)
            writer.close()
            return value
        finally:
            server.close()
            await server.wait_closed()

    assert asyncio.run(main()) != 0


def test_a_port_in_use_is_an_oserror() -> None:
    first = listen_socket("127.0.0.1", 0)
    try:
        with pytest.raises(OSError):
            listen_socket("127.0.0.1", first.getsockname()[1])
    finally:
        first.close()
