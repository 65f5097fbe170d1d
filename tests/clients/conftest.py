"""The client compatibility suite's harness: one real ``joblet server`` for the suite, and each
client's pinned environment (built by ``scripts/client-envs`` into a cache dir, once).

Why: the issue's promise is that the clients people really use work unmodified against a
default ``joblet server``; the only honest check runs each one, from its own environment,
against the server's written kubeconfig.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.clients import SCENARIOS
from support.process import wait_until_serving


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).parent == SCENARIOS.parent:
            item.add_marker(pytest.mark.clients)


@pytest.fixture(scope="session")
def joblet_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A real ``joblet server`` (HTTPS, admin token in its kubeconfig); yields the kubeconfig."""
    data = tmp_path_factory.mktemp("clients-server")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "JOBLET_DATA_DIR")}
    log = data / "server.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "joblet", "server", "--data-dir", str(data / "d"),
                                 "--port", str(port), "--pod-failure-backoff", "0.2"],
                                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    kubeconfig = data / "d" / "kubeconfig"
    try:
        wait_until_serving(proc, kubeconfig, log=log)
        yield kubeconfig
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
