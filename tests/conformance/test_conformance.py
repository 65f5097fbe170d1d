"""One pytest test per scenario of the conformance catalog (tests/conformance/catalog/*.yaml).

Why: the issue "every Job field behaves as in Kubernetes" is proven by this catalog; each
scenario id is a test id so a failure names the upstream behaviour. Known deviations
(known_deviations.yaml) run as strict xfails; minute-granularity CronJob e2e runs are
``slow`` and need JOBLET_CONFORMANCE_SLOW=1.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness.catalog import Scenario, default_catalog_dir, load_catalog, load_deviations
from harness.checks import UnsupportedFormat
from harness.runner import Env, ScenarioFailed, run_scenario
from harness.tables import TableSkip, run_table

HERE = Path(__file__).resolve().parent
CATALOG_DIR = default_catalog_dir()
SLOW = os.environ.get("JOBLET_CONFORMANCE_SLOW") == "1"


def _params() -> Iterator[Any]:
    if not CATALOG_DIR.is_dir():
        yield pytest.param(None, id="catalog-missing")
        return
    deviations = load_deviations(HERE / "known_deviations.yaml")
    for scenario in load_catalog(CATALOG_DIR):
        marks: list[Any] = [pytest.mark.timeout(int(scenario.timeout_s * 1.5) + 60)]
        if scenario.needs_real_minutes:
            marks.append(pytest.mark.slow)
            if not SLOW:
                marks.append(pytest.mark.skip(
                    reason="CronJob e2e needs minutes of real time (minute-granularity schedule); "
                    "set JOBLET_CONFORMANCE_SLOW=1 to run it"))
        if scenario.id in deviations:
            marks.append(pytest.mark.xfail(strict=True, reason=deviations[scenario.id]))
        yield pytest.param(scenario, id=scenario.id, marks=marks)


@pytest.mark.parametrize("scenario", list(_params()))
def test_scenario(scenario: Scenario | None, request: pytest.FixtureRequest) -> None:
    if scenario is None:
        pytest.fail(f"conformance catalog not found at {CATALOG_DIR} (JOBLET_CONFORMANCE_DIR points elsewhere?)")
    if scenario.kind == "table":
        try:
            problems = run_table(scenario)
        except TableSkip as e:
            pytest.skip(str(e))
        assert not problems, "\n".join(problems)
        return
    fixture = "conformance_env_unscaled" if scenario.needs_unscaled_backoff else "conformance_env"
    env: Env = request.getfixturevalue(fixture)
    run_id = f"{env.run_prefix}{abs(hash(scenario.id)) % 10**6:06d}"
    started = time.monotonic()
    failure: str | None = None
    try:
        run_scenario(env, scenario, run_id)
    except UnsupportedFormat as e:
        failure = f"harness gap: {e}"
    except ScenarioFailed as e:
        failure = str(e)
    except BaseException as e:
        _report(scenario.id, f"error {type(e).__name__}: {e}", time.monotonic() - started)
        raise
    _report(scenario.id, f"fail {failure}" if failure else "pass", time.monotonic() - started)
    if failure:
        pytest.fail(failure, pytrace=False)


def _report(scenario_id: str, outcome: str, seconds: float) -> None:
    """One line per scenario to $JOBLET_CONFORMANCE_REPORT (progress of long runs)."""
    path = os.environ.get("JOBLET_CONFORMANCE_REPORT")
    if path:
        with open(path, "a") as f:
            f.write(f"{scenario_id}\t{seconds:.1f}s\t{outcome}\n")
