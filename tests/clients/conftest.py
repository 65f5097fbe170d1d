"""The client compatibility suite's harness: one real ``joblet server`` for the suite, and each
client's pinned environment (built by ``scripts/client-envs`` into a cache dir, once).

Why: the issue's promise is that the clients people really use work unmodified against a
default ``joblet server``; the only honest check runs each one, from its own environment,
against the server's written kubeconfig.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from support import process
from support.clients import SCENARIOS


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).parent == SCENARIOS.parent:
            item.add_marker(pytest.mark.clients)


@pytest.fixture(scope="session")
def joblet_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A real ``joblet server`` (HTTPS, admin token in its kubeconfig); yields the kubeconfig."""
    data = tmp_path_factory.mktemp("clients-server")
    with process.joblet_server(data / "d", "--pod-failure-backoff", "0.2", log=data / "server.log") as server:
        yield server.kubeconfig
