"""A bounded part of the conformance catalog (``job-basic``) on a PostgreSQL store, in CI.

Why: the whole catalog on PostgreSQL is a manual run (``JOBLET_CONFORMANCE_STORE=postgresql``,
see README "Contributing"); CI keeps the assembly honest with the basic Job scenarios against a
``joblet server --store postgresql://…`` backed by a real PostgreSQL (tests/support/postgres.py).
About 1 minute.
"""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness.catalog import (
    DEFAULT_BACKOFF_BASE,
    Scenario,
    Timing,
    default_catalog_dir,
    load_catalog,
    load_deviations,
)
from harness.kube import Kube, ServerProcess
from harness.runner import Env, ScenarioFailed, run_scenario

from support.postgres import PostgresServer

pytestmark = pytest.mark.postgres

HERE = Path(__file__).resolve().parent
GROUP_FILE = "job-basic.yaml"
#: the pod-failure backoff base of the catalog's scaled server (conftest.SHORT_BACKOFF_BASE; not
#: imported: several test dirs have a conftest module on sys.path)
SHORT_BACKOFF_BASE = 1.0


def _params() -> Iterator[Any]:
    catalog = default_catalog_dir()
    deviations = load_deviations(HERE / "known_deviations.yaml")
    for scenario in load_catalog(catalog) if catalog.is_dir() else []:
        if (scenario.file == GROUP_FILE and scenario.kind == "workload" and scenario.id not in deviations
                and not scenario.needs_unscaled_backoff):
            yield pytest.param(scenario, id=scenario.id,
                               marks=[pytest.mark.timeout(int(scenario.timeout_s * 1.5) + 60)])


@pytest.fixture(scope="module")
def pg_env(pg_server: PostgresServer) -> Iterator[Env]:
    with tempfile.TemporaryDirectory(prefix="joblet-conformance-pg-") as tmp:
        server = ServerProcess(Path(tmp) / "data", backoff_base=SHORT_BACKOFF_BASE,
                               backoff_max=600.0 * SHORT_BACKOFF_BASE / DEFAULT_BACKOFF_BASE,
                               crash_loop_backoff=SHORT_BACKOFF_BASE,
                               extra_args=["--store", pg_server.create_database()])
        server.start()
        try:
            yield Env(kube=Kube(str(server.kubeconfig)), timing=Timing(SHORT_BACKOFF_BASE, 1.0),
                      run_prefix=secrets.token_hex(3), server_log_tail=server.log_tail)
        finally:
            server.stop()


PARAMS = list(_params())


def test_the_postgres_subset_is_not_empty() -> None:
    assert len(PARAMS) >= 3, f"no {GROUP_FILE} workload scenarios found under {default_catalog_dir()}"


@pytest.mark.parametrize("scenario", PARAMS)
def test_scenario_on_postgres(scenario: Scenario, pg_env: Env) -> None:
    try:
        run_scenario(pg_env, scenario, f"{pg_env.run_prefix}{abs(hash(scenario.id)) % 10**6:06d}")
    except ScenarioFailed as e:
        pytest.fail(str(e), pytrace=False)
