"""Fixtures every test directory may use (pytest finds them here without an import).

* ``pg_server`` / ``pg_url``: a real PostgreSQL for the session and a fresh database per test
  (tests/support/postgres.py).
"""

from support.postgres import pg_server, pg_url

__all__ = ["pg_server", "pg_url"]
