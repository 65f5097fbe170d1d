"""Fixtures every test directory may use (pytest finds them here without an import).

* ``pg_server`` / ``pg_url``: a real PostgreSQL for the session and a fresh database per test
  (tests/support/postgres.py).
* ``unmount_leftovers`` (autouse, per session): a server that a test stops with pods still
  running keeps their token tmpfs mounted, as a kubelet restart keeps a pod's volumes; at the
  end of the session they are unmounted, so pytest can remove its temporary directories later
  instead of warning "Device or resource busy".
* ``keep_umask`` (autouse, per test): a CLI command invoked in process (``CliRunner``) sets
  the process's umask to 077 as ``joblet server``/``run``/``node`` do; it is put back after the
  test, so a later test's temporary directories stay searchable by a container's other user
  (a podman test run after such a test failed with "not found in $PATH").
"""

import os
from collections.abc import Iterator

import pytest

from joblet.node.volumes import unmount_all
from support.postgres import pg_server, pg_url

__all__ = ["keep_umask", "pg_server", "pg_url", "unmount_leftovers"]


@pytest.fixture(autouse=True)
def keep_umask() -> Iterator[None]:
    before = os.umask(0o022)
    os.umask(before)
    yield
    os.umask(before)


@pytest.fixture(scope="session", autouse=True)
def unmount_leftovers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    yield
    unmount_all(tmp_path_factory.getbasetemp())
