"""Fixtures every test directory may use (pytest finds them here without an import).

* ``pg_server`` / ``pg_url``: a real PostgreSQL for the session and a fresh database per test
  (tests/support/postgres.py).
* ``unmount_leftovers`` (autouse, per session): a server that a test stops with pods still
  running keeps their token tmpfs mounted, as a kubelet restart keeps a pod's volumes; at the
  end of the session they are unmounted, so pytest can remove its temporary directories later
  instead of warning "Device or resource busy".
"""

from collections.abc import Iterator

import pytest

from joblet.node.volumes import unmount_all
from support.postgres import pg_server, pg_url

__all__ = ["pg_server", "pg_url", "unmount_leftovers"]


@pytest.fixture(scope="session", autouse=True)
def unmount_leftovers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    yield
    unmount_all(tmp_path_factory.getbasetemp())
