"""Session setup for the conformance suite: one real joblet server (or --kubeconfig).

Why: every scenario is a black-box run against a real control plane, talked to only through
the official ``kubernetes`` client. Starting the server once per session (with the Job
pod-failure backoff shortened to 1 s, the catalog's allowed scaling) keeps the suite fast;
``--kubeconfig`` points it at an existing server/cluster instead, unscaled.
``JOBLET_CONFORMANCE_STORE=postgresql`` runs the server on a PostgreSQL store (a real server
started for the session, tests/support/postgres.py; a ``postgresql://`` URL uses that database).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness.catalog import DEFAULT_BACKOFF_BASE, Timing
from harness.kube import Kube, ServerProcess
from harness.runner import Env

SHORT_BACKOFF_BASE = 1.0


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--kubeconfig",
        action="store",
        default=None,
        help="conformance: run against the server/cluster of this kubeconfig instead of starting a joblet server "
        "(timings are not scaled). Env JOBLET_CONFORMANCE_KUBECONFIG works too.",
    )
    parser.addoption(
        "--ray-address",
        action="store",
        default=None,
        help="conformance: start the joblet server with --ray-address ADDR --ray-only, so every pod runs on the Ray "
        "cluster at ADDR. Env JOBLET_CONFORMANCE_RAY_ADDRESS works too.",
    )


def _ray_args(config: pytest.Config) -> list[str]:
    try:
        value = config.getoption("--ray-address")
    except ValueError:
        value = None
    address = value or os.environ.get("JOBLET_CONFORMANCE_RAY_ADDRESS")
    return ["--ray-address", address, "--ray-only"] if address else []


def store_args(server: contextlib.ExitStack) -> list[str]:
    """``--store URL`` for the conformance server from JOBLET_CONFORMANCE_STORE (none: its SQLite)."""
    value = os.environ.get("JOBLET_CONFORMANCE_STORE") or ""
    if not value:
        return []
    if value.startswith("postgresql://"):
        return ["--store", value]
    if value != "postgresql":
        raise pytest.UsageError(f"JOBLET_CONFORMANCE_STORE must be postgresql or a postgresql:// URL, not {value!r}")
    from support.postgres import postgres_server

    return ["--store", server.enter_context(postgres_server()).create_database()]


def _kubeconfig_option(config: pytest.Config) -> str | None:
    try:
        value = config.getoption("--kubeconfig")
    except ValueError:
        value = None
    return value or os.environ.get("JOBLET_CONFORMANCE_KUBECONFIG") or None


def _timeout_scale() -> float:
    return float(os.environ.get("JOBLET_CONFORMANCE_TIMEOUT_SCALE") or 1.0)


@pytest.fixture(scope="session")
def conformance_env(request: pytest.FixtureRequest) -> Iterator[Env]:
    """The server every scenario uses: pod-failure backoff base shortened to 1 s."""
    yield from _env(request, SHORT_BACKOFF_BASE)


@pytest.fixture(scope="session")
def conformance_env_unscaled(request: pytest.FixtureRequest) -> Iterator[Env]:
    """A second server with the real 10 s backoff base, started only if a scenario needs it
    (``Scenario.needs_unscaled_backoff``); with --kubeconfig it is the same cluster."""
    yield from _env(request, DEFAULT_BACKOFF_BASE)


def _env(request: pytest.FixtureRequest, base: float) -> Iterator[Env]:
    run_prefix = secrets.token_hex(3)
    kubeconfig = _kubeconfig_option(request.config)
    if kubeconfig:
        env = Env(kube=Kube(kubeconfig), timing=Timing(DEFAULT_BACKOFF_BASE, _timeout_scale()), run_prefix=run_prefix)
        yield env
        return
    with tempfile.TemporaryDirectory(prefix="joblet-conformance-") as tmp, contextlib.ExitStack() as stack:
        server = ServerProcess(
            Path(tmp) / "data",
            backoff_base=base,
            backoff_max=600.0 * base / DEFAULT_BACKOFF_BASE,
            crash_loop_backoff=SHORT_BACKOFF_BASE,
            extra_args=_ray_args(request.config) + store_args(stack),
        )
        server.start()
        try:
            env = Env(kube=Kube(str(server.kubeconfig)), timing=Timing(base, _timeout_scale()), run_prefix=run_prefix,
                      server_log_tail=server.log_tail)
            env.server = server  # type: ignore[attr-defined]
            yield env
        finally:
            server.stop()
            keep = os.environ.get("JOBLET_CONFORMANCE_KEEP_LOG")
            if keep:
                Path(f"{keep}.base{base:g}").write_text(server.log_tail(10_000_000))
