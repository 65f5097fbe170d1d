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


def test_job_basic_and_job_indexed_pass_with_pods_on_ray(ray_setup: RaySetup, tmp_path: Path) -> None:
    source = Path(os.environ.get("JOBLET_CONFORMANCE_DIR") or CATALOG)
    missing = [f for f in FILES if not (source / f).exists()]
    assert not missing, f"{missing} not in the conformance catalog at {source}"
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    for name in FILES:
        shutil.copy(source / name, catalog / name)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(TESTS / "conformance" / "test_conformance.py"),
         "--ray-address", ray_setup.cluster.address],
        env={**os.environ, "JOBLET_CONFORMANCE_DIR": str(catalog)}, cwd=TESTS.parent, capture_output=True, text=True,
        timeout=840)
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " passed" in summary and "failed" not in summary and "skipped" not in summary, summary
