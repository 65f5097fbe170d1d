"""Running a client compatibility scenario (tests/clients/) in its client's own pinned environment.

Why: each client is installed apart (``scripts/client-envs``) so that its dependencies never
bend another's; these helpers find or build that environment and run one scenario in it with
nothing but the kubeconfig ``joblet server`` wrote.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "tests" / "clients" / "scenarios"
CACHE = Path(os.environ.get("JOBLET_CLIENTS_CACHE", Path.home() / ".cache" / "joblet-clients"))
SCENARIO_TIMEOUT = 240


def client_env(name: str, version: str) -> Path:
    """The cached environment of one client, built on first use by ``scripts/client-envs``."""
    env_dir = CACHE / f"{name}-{version}"
    if not (env_dir / ".ready").exists():
        subprocess.run([str(ROOT / "scripts" / "client-envs"), name], check=False, timeout=900)
    if not (env_dir / ".ready").exists():
        log = env_dir / "install.log"
        tail = log.read_text()[-1500:] if log.exists() else "(no install log)"
        pytest.fail(f"{name} {version} could not be installed into {env_dir}: {tail}")
    return env_dir


def run_scenario(argv: list[str], kubeconfig: Path, home: Path, extra_env: dict[str, str] | None = None) -> Any:
    """Runs a scenario with only the kubeconfig the server wrote; returns its JSON line."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "KUBECONFIG": str(kubeconfig),
           "PYTHONPATH": str(SCENARIOS), **(extra_env or {})}
    home.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(argv, env=env, cwd=SCENARIOS, capture_output=True, text=True, timeout=SCENARIO_TIMEOUT)
    assert done.returncode == 0, f"{argv[1:]} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no result line:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return json.loads(lines[-1])
