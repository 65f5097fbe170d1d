"""SEC-11 (slow request heads), SEC-22 (oversized heads → 431) and SEC-12 (junk paths do not
grow /metrics), against a real ``joblet server`` over TLS."""

from __future__ import annotations

import socket
import ssl
import time

import httpx

from conftest import HEAD_TIMEOUT, SecServer
from joblet.api.serving import DEFAULT_MAX_HEADER_BYTES
from support.tls import kubeconfig_http


def tls_socket(server: SecServer) -> ssl.SSLSocket:
    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=15)
    return ctx.wrap_socket(raw, server_hostname="127.0.0.1")


def read_all(sock: ssl.SSLSocket) -> bytes:
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, ssl.SSLError):
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def test_sec11_an_incomplete_request_head_is_closed_after_the_timeout(sec_server: SecServer) -> None:
    with tls_socket(sec_server) as sock:
        sock.sendall(b"GET /version HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        start = time.monotonic()
        sock.settimeout(HEAD_TIMEOUT + 10)
        assert read_all(sock) == b""  # closed, without an answer
        elapsed = time.monotonic() - start
    assert HEAD_TIMEOUT * 0.5 <= elapsed < HEAD_TIMEOUT + 5, elapsed
    # a slow but complete request is still served, and so is the next one on the connection
    with tls_socket(sec_server) as sock:
        host = f"127.0.0.1:{sec_server.port}".encode()
        sock.sendall(b"GET /version HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")


def test_sec22_oversized_request_head_gets_431(sec_server: SecServer) -> None:
    host = f"127.0.0.1:{sec_server.port}".encode()
    head = b"GET /api/v1/pods HTTP/1.1\r\nHost: " + host + b"\r\nX-Big: "
    with tls_socket(sec_server) as sock:
        sock.sendall(head + b"a" * (DEFAULT_MAX_HEADER_BYTES + 100 - len(head)))
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
    assert b'"reason":"RequestHeaderFieldsTooLarge"' in answer
    # a large but allowed head (over h11's 16 KiB default, which reset the connection) is answered
    selector = ",".join(f"k{i}=v" for i in range(5_000))
    with kubeconfig_http(sec_server.kubeconfig) as http:
        answer2 = http.get("/api/v1/namespaces/default/pods", params={"labelSelector": selector})
        assert answer2.status_code < 500


def series(text: str) -> int:
    return sum(1 for line in text.splitlines() if line.startswith("apiserver_request_total{"))


def test_sec12_junk_paths_do_not_grow_metrics(sec_server: SecServer) -> None:
    with kubeconfig_http(sec_server.kubeconfig) as admin, httpx.Client(
            base_url=sec_server.url, verify=ssl.create_default_context(cafile=str(sec_server.ca_file)), timeout=10) as anonymous:
        def junk(i: int) -> None:
            anonymous.get(f"/api/v1/u{i}x{i * 7919}")
            admin.get(f"/api/v1/u{i}y{i * 7919}")
            admin.get(f"/apis/batch/v1/namespaces/default/z{i}")
            admin.request("FOO" if i % 2 else "GET", f"/p{i}")

        for i in range(2):  # the few bounded series ("other", 401 without resource) exist from here on
            junk(i)
        admin.get("/metrics")
        before = series(admin.get("/metrics").text)
        for i in range(2, 302):
            junk(i)
        after = admin.get("/metrics").text
    assert series(after) == before, after
    assert "u1x" not in after and 'resource="z' not in after
