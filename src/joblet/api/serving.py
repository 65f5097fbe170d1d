"""The HTTP connection layer under the API: limits uvicorn lacks, and the client certificate.

Why: Go's ``http.Server`` (which kube-apiserver runs on) has ``ReadHeaderTimeout`` and
``MaxHeaderBytes``; uvicorn has neither for an incomplete request head, so a slow client can
hold a socket forever (SEC-11) and a 17 KiB head is answered with a connection reset
(SEC-22). :class:`GuardedH11Protocol` is uvicorn's h11 protocol plus:

* a head-read timeout: a connection that has not sent a complete request head within
  ``head_timeout`` seconds of connecting (or of its previous response) is closed;
* ``431 Request Header Fields Too Large`` (a ``Status``) for heads over ``max_header_bytes``;
* a cap on open connections: connections beyond ``max_connections`` are closed at once;
* the verified TLS client certificate in the ASGI scope, as the ASGI TLS extension
  (``scope["extensions"]["tls"]["client_cert_chain"]``, PEM), which uvicorn does not provide.

:func:`protocol_factory` binds the limits; :func:`raise_fd_limit` lifts ``RLIMIT_NOFILE``;
:func:`listen_socket` opens the listening socket so that every connection has Nagle off.
"""

from __future__ import annotations

import asyncio
import resource
import socket
import ssl
from typing import Any

import h11
import orjson
from uvicorn.protocols.http.h11_impl import H11Protocol

from joblet.errors import RequestHeaderFieldsTooLarge

DEFAULT_HEAD_TIMEOUT = 10.0
#: Go's http.DefaultMaxHeaderBytes, which kube-apiserver keeps
DEFAULT_MAX_HEADER_BYTES = 1 << 20
DEFAULT_MAX_CONNECTIONS = 2048


def raise_fd_limit() -> int:
    """Raise the soft ``RLIMIT_NOFILE`` to the hard limit; returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        return hard
    return soft


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a head timeout, a head size limit, a connection cap and
    the client certificate in the scope (see the module docstring)."""

    head_timeout: float = DEFAULT_HEAD_TIMEOUT
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
    max_connections: int = DEFAULT_MAX_CONNECTIONS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # h11's own limit is set above ours (see protocol_factory) so ours answers first.
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0
        self._tls: dict[str, Any] | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            self.logger.warning("closing a connection: %d open connections", len(self.connections))
            transport.close()
            return
        ssl_object = transport.get_extra_info("ssl_object")
        if isinstance(ssl_object, ssl.SSLObject):
            der = ssl_object.getpeercert(binary_form=True)
            if der:  # only present when verified against --client-ca
                self._tls = {"client_cert_chain": [ssl.DER_cert_to_PEM_cert(der)],
                             "tls_version": None, "cipher_suite": None, "client_cert_error": None}
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        waiting = self.conn.their_state is h11.IDLE
        super().data_received(data)
        if self.conn.their_state is h11.IDLE and waiting:
            self._head_bytes += len(data)
            if self._head_bytes > self.max_header_bytes and not self.transport.is_closing():
                self._reject_head()
        else:
            self._head_bytes = 0
            self._cancel_head_timer()

    def handle_events(self) -> None:
        super().handle_events()
        # The cycle's task has been created but has not run yet: add the TLS extension now.
        if self._tls is not None and self.cycle is not None:
            scope: dict[str, Any] = self.cycle.scope  # type: ignore[assignment]
            scope.setdefault("extensions", {}).setdefault("tls", self._tls)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._head_bytes = 0
            self._arm_head_timer()

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        # Only while waiting for a request head: a request being served is not cut short.
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()

    def _reject_head(self) -> None:
        error = RequestHeaderFieldsTooLarge(f"request headers exceed the limit of {self.max_header_bytes} bytes")
        body = orjson.dumps(error.to_status())
        head = (b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
                b"connection: close\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n")
        self.transport.write(head + body)
        self.transport.close()


def listen_socket(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """A TCP socket bound to ``host:port`` and listening (``OSError`` when it cannot).

    Its protocol is ``IPPROTO_TCP``, not 0: asyncio sets ``TCP_NODELAY`` only on accepted
    sockets whose ``proto`` says TCP, and an accepted socket inherits the listener's. With Nagle
    on, a response written in two pieces (uvicorn sends the head, then the body; a watch sends
    each event) waited for the client's delayed ACK: about 40 ms per request, most of a
    one-pod Job's latency. Listening here, not in uvicorn, also lets two planes binding the
    same port (``SO_REUSEADDR``) tell at once which one lost."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


def protocol_factory(*, head_timeout: float = DEFAULT_HEAD_TIMEOUT,
                     max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
                     max_connections: int = DEFAULT_MAX_CONNECTIONS) -> type[GuardedH11Protocol]:
    """A :class:`GuardedH11Protocol` subclass with these limits, for ``uvicorn.Config(http=...)``
    (pair it with ``h11_max_incomplete_event_size=2 * max_header_bytes``)."""
    return type("JobletH11Protocol", (GuardedH11Protocol,), {
        "head_timeout": head_timeout, "max_header_bytes": max_header_bytes, "max_connections": max_connections})
