"""One real ``joblet server`` for the security regression tests: HTTPS on a free loopback
port, the admin token from ``JOBLET_TOKEN`` (never argv), client certificates verified by the
data dir's own CA, audit and access logs, and a 1 s request-head timeout."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from joblet.clock import RealClock
from joblet.security.pki import ensure_ca
from support.process import wait_until_serving

HEAD_TIMEOUT = 1.0


@dataclass
class SecServer:
    proc: subprocess.Popen[bytes]
    data_dir: Path
    port: int
    token: str
    audit_log: Path
    access_log: Path
    log: Path

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def kubeconfig(self) -> Path:
        return self.data_dir / "kubeconfig"

    @property
    def ca_file(self) -> Path:
        return self.data_dir / "pki" / "ca.crt"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def sec_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecServer]:
    tmp = tmp_path_factory.mktemp("security")
    data = tmp / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)  # as an older joblet left it: the server must make it private
    ensure_ca(data, RealClock().now())  # so --client-ca can name the data dir's own CA
    port = free_port()
    token = secrets.token_urlsafe(24)
    log = tmp / "server.log"
    audit, access = tmp / "logs" / "audit.log", tmp / "logs" / "access.log"
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "JOBLET_DATA_DIR")}
    env["JOBLET_TOKEN"] = token
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "joblet", "server", "--data-dir", str(data), "--port", str(port),
             "--client-ca", str(data / "pki" / "ca.crt"), "--audit-log", str(audit), "--access-log", str(access),
             "--head-timeout", str(HEAD_TIMEOUT)],
            stdout=out, stderr=subprocess.STDOUT, env=env)
    server = SecServer(proc, data, port, token, audit, access, log)
    try:
        wait_until_serving(proc, server.kubeconfig, log=log)
        yield server
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
