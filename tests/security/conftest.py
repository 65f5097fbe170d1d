"""One real ``joblet server`` for the security regression tests: HTTPS on a free loopback
port, the admin token from ``JOBLET_TOKEN`` (never argv), client certificates verified by the
data dir's own CA, audit and access logs, and a 1 s request-head timeout."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from joblet.clock import RealClock
from joblet.security.pki import ensure_ca
from support.process import ServerProcess, clean_env, joblet_server

HEAD_TIMEOUT = 1.0


@dataclass
class SecServer(ServerProcess):
    """The server process, its admin token and its audit and access logs."""

    token: str
    audit_log: Path
    access_log: Path

    @property
    def ca_file(self) -> Path:
        return self.data_dir / "pki" / "ca.crt"


@pytest.fixture(scope="session")
def sec_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecServer]:
    tmp = tmp_path_factory.mktemp("security")
    data = tmp / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)  # as an older joblet left it: the server must make it private
    ensure_ca(data, RealClock().now())  # so --client-ca can name the data dir's own CA
    token = secrets.token_urlsafe(24)
    audit, access = tmp / "logs" / "audit.log", tmp / "logs" / "access.log"
    with joblet_server(data, "--client-ca", str(data / "pki" / "ca.crt"), "--audit-log", str(audit),
                       "--access-log", str(access), "--head-timeout", str(HEAD_TIMEOUT),
                       env=clean_env(JOBLET_TOKEN=token), log=tmp / "server.log") as process:
        yield SecServer(process.proc, process.data_dir, process.port, process.log, token, audit, access)
