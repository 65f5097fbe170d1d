"""The public conformance scenarios of job-basic.yaml and job-indexed.yaml with every pod on
Ray: the conformance runner's ``--ray-address`` option starts its server with ``--ray-only``
against this session's Ray cluster. Runs the runner as a child pytest (its own session
fixtures) over a catalog dir holding just those two files (about 3 minutes)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support.raycluster import RaySetup

pytestmark = [pytest.mark.ray, pytest.mark.timeout(900)]
TESTS = Path(__file__).resolve().parent.parent
CATALOG = TESTS / "conformance" / "catalog"  # vendored (scripts/refresh-conformance-catalog)
FILES = ("job-basic.yaml", "job-indexed.yaml")
#: Scenarios left out on Ray, each with its reason; none now. unit-wq-complete-despite-one-failure
#: was, while its 'during' check (active 1, ready 1, failed 1 while the pod-failure backoff
#: defers the replacement) was missed in about 1 of 5 to 1 of 40 runs: the lock loser exited
#: while the driver's outstanding poll did not ask about it yet, and the next poll waited for
#: the next change (the winner's exit 3 s later) to report it. Fixed in the supervisor's poll
#: (protocol 4, tests/integration/test_ray_supervisor.py); 0 failures in 55 runs alone since.
FLAKY_ON_RAY: tuple[str, ...] = ()


def test_job_basic_and_job_indexed_pass_with_pods_on_ray(ray_setup: RaySetup, tmp_path: Path) -> None:
    source = Path(os.environ.get("JOBLET_CONFORMANCE_DIR") or CATALOG)
    missing = [f for f in FILES if not (source / f).exists()]
    assert not missing, f"{missing} not in the conformance catalog at {source}"
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    for name in FILES:
        shutil.copy(source / name, catalog / name)
    left_out = ["-k", " and ".join(f"not {sid}" for sid in FLAKY_ON_RAY)] if FLAKY_ON_RAY else []
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(TESTS / "conformance" / "test_conformance.py"),
         "--ray-address", ray_setup.cluster.address, *left_out],
        env={**os.environ, "JOBLET_CONFORMANCE_DIR": str(catalog)}, cwd=TESTS.parent, capture_output=True, text=True,
        timeout=840)
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " passed" in summary and "failed" not in summary and "skipped" not in summary, summary
