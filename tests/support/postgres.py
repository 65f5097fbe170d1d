"""A real PostgreSQL server for the tests, started from Debian's binaries.

Why: the PostgreSQL store backend (``postgresql://``) is tested against the real server, never a
mock. One server per test session (``initdb`` in a temp dir, run as the ``postgres`` user because
PostgreSQL refuses to run as root, trust auth on a free loopback port); each test gets a fresh
database.

How to use it::

    # pg_server / pg_url are registered in tests/conftest.py: just name them
    def test_something(pg_url: str) -> None:        # a fresh database, as a store URL
        store = open_store(pg_url)

    def test_restart(pg_server: PostgresServer, pg_url: str) -> None:
        pg_server.restart()                          # or .kill() then .start()

Outside pytest: ``with postgres_server() as server: url = server.create_database("x")``.

With no PostgreSQL binaries the fixtures fail with a clear message when ``CI`` is set
(``scripts/test`` installs Debian's ``postgresql``), and skip with the reason otherwise.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_ROOT = Path("/usr/lib/postgresql")


def pg_bin_dir() -> Path | None:
    """The newest Debian PostgreSQL ``bin`` directory, or None when none is installed."""
    versions = sorted((p for p in PG_ROOT.glob("*/bin") if (p / "initdb").exists()),
                      key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    return versions[-1] if versions else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class PostgresServer:
    """One PostgreSQL cluster in a temp dir, listening on 127.0.0.1:port (trust auth)."""

    def __init__(self, bin_dir: Path, *, durable: bool = False) -> None:
        self.bin_dir = bin_dir
        self.durable = durable
        # the pid in the name tells whose server a leftover dir is (several test runs share /tmp)
        self.root = Path(tempfile.mkdtemp(prefix=f"joblet-pg-{os.getpid()}-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.port = free_port()
        self._as_postgres = os.geteuid() == 0
        self._dbs = itertools.count(1)
        if self._as_postgres:
            pw = pwd.getpwnam("postgres")
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        os.chmod(self.root, 0o700)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--no-sync", "--locale=C")

    def _argv(self, tool: str, *args: str) -> list[str]:
        argv = [str(self.bin_dir / tool), *args]
        return ["runuser", "-u", "postgres", "--", *argv] if self._as_postgres else argv

    def _run(self, tool: str, *args: str) -> None:
        proc = subprocess.run(self._argv(tool, *args), capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            tail = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{tool} {' '.join(args)} failed ({proc.returncode}): {proc.stderr}{tail}")

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        # fsync off unless durable: a killed server still finds every commit in the OS page cache
        # (only a power loss would lose them), and CREATE DATABASE per test stays fast. Benchmarks
        # ask for durable=True (PostgreSQL's defaults).
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c max_connections=200"
        if not self.durable:
            options += " -c fsync=off -c full_page_writes=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def restart(self) -> None:
        """``pg_ctl restart -m fast``: every connection is cut, committed data stays."""
        self.stop()
        self.start()

    def kill(self) -> None:
        """SIGKILL the postmaster and its backends (a crash: recovery from the WAL at the next start)."""
        pid_file = self.data / "postmaster.pid"
        pid = int(pid_file.read_text().split()[0])
        children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
        for p in [pid, *map(int, children)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        with contextlib.suppress(FileNotFoundError):
            pid_file.unlink()  # a stale pid file would make the next start wait for nothing

    def close(self) -> None:
        with contextlib.suppress(RuntimeError):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    # -- databases --------------------------------------------------------------------

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str | None = None) -> str:
        """A new empty database; returns its URL."""
        name = name or f"t{os.getpid()}_{next(self._dbs)}"
        self._run("psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", "postgres",
                  "-v", "ON_ERROR_STOP=1", "-qc", f'CREATE DATABASE "{name}"')
        return self.url(name)


def missing_postgres_message() -> str:
    return (f"no PostgreSQL server binaries under {PG_ROOT}/*/bin: install Debian's `postgresql` "
            "package (scripts/test does)")


@contextlib.contextmanager
def postgres_server(*, durable: bool = False) -> Iterator[PostgresServer]:
    """A started server, stopped and removed on exit. RuntimeError when no binaries exist.
    ``durable``: PostgreSQL's default fsync settings (for benchmarks); tests run without fsync."""
    bin_dir = pg_bin_dir()
    if bin_dir is None:
        raise RuntimeError(missing_postgres_message())
    server = PostgresServer(bin_dir, durable=durable)
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """The session's PostgreSQL server (fails in CI, skips elsewhere, when none is installed)."""
    if pg_bin_dir() is None:
        if os.environ.get("CI"):
            pytest.fail(missing_postgres_message())
        pytest.skip(missing_postgres_message())
    with postgres_server() as server:
        yield server


@pytest.fixture
def pg_url(pg_server: PostgresServer) -> str:
    """A fresh database on the session's server, as a ``postgresql://`` store URL."""
    if not (pg_server.data / "postmaster.pid").exists():
        pg_server.start()  # a test that killed it and failed before starting it again
    return pg_server.create_database()
