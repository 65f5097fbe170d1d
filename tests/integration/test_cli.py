"""The ``joblet`` command as a user runs it: real subprocesses, the repository's examples,
a fresh data dir per test, no server (``joblet run`` embeds the control plane)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


def joblet(data_dir: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env["JOBLET_DATA_DIR"] = str(data_dir)
    return subprocess.run([sys.executable, "-m", "joblet", *args, "--data-dir", str(data_dir)],
                          capture_output=True, text=True, timeout=timeout, env=env)


def test_indexed_example_completes_and_shows_each_index(tmp_path: Path) -> None:
    result = joblet(tmp_path, "run", "-f", str(EXAMPLES / "indexed.yaml"))
    assert result.returncode == 0, result.stderr
    for i in range(8):
        assert f"[{i}] index {i} of 8: square is {i * i}" in result.stdout
    assert "job/indexed Complete: 8 succeeded, 0 failed" in result.stdout


def test_failing_example_exits_1_after_backoff_limit_plus_one_pods(tmp_path: Path) -> None:
    result = joblet(tmp_path, "run", "-f", str(EXAMPLES / "failing.yaml"), "--pod-failure-backoff", "0.2")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "BackoffLimitExceeded" in result.stdout
    pods = joblet(tmp_path, "get", "pods", "-l", "batch.kubernetes.io/job-name=failing", "-o", "json")
    items = json.loads(pods.stdout)
    items = items.get("items", [items])
    assert len(items) == 3  # backoffLimit 2 -> 3 pods
    assert all(p["status"]["phase"] == "Failed" for p in items)


@pytest.mark.parametrize(("content", "message"), [
    pytest.param("kind: Job\n", "object is missing 'apiVersion'", id="missing-apiVersion"),
    pytest.param("apiVersion: batch/v1\nkind: Job\nmetadata: {name: x\n", "invalid YAML", id="bad-yaml"),
    pytest.param("apiVersion: v9\nkind: Gadget\nmetadata: {name: x}\n", 'no matches for kind "Gadget"', id="unknown-kind"),
    pytest.param("apiVersion: batch/v1\nkind: Job\nmetadata: {name: x}\nspec:\n  parallelism: -1\n"
                 "  template: {spec: {restartPolicy: Never, containers: [{name: a, image: b}]}}\n",
                 "spec.parallelism: Invalid value: -1: must be greater than or equal to 0", id="invalid-field"),
])
def test_bad_manifest_exits_2_with_one_readable_line(tmp_path: Path, content: str, message: str) -> None:
    manifest = tmp_path / "bad.yaml"
    manifest.write_text(content)
    result = joblet(tmp_path / "data", "run", "-f", str(manifest))
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_history_and_logs_are_readable_offline_after_the_run(tmp_path: Path) -> None:
    assert joblet(tmp_path, "run", "-f", str(EXAMPLES / "hello.yaml")).returncode == 0
    jobs = joblet(tmp_path, "get", "jobs")
    assert jobs.returncode == 0
    assert "hello" in jobs.stdout and "Complete" in jobs.stdout and "1/1" in jobs.stdout
    logs = joblet(tmp_path, "logs", "job/hello")
    assert "hello from hello-" in logs.stdout
    described = joblet(tmp_path, "describe", "job", "hello")
    assert "Pods Statuses:" in described.stdout and "1 Succeeded" in described.stdout
    assert "SuccessfulCreate" in described.stdout
    # Logs outlive the Job and its pods.
    assert joblet(tmp_path, "delete", "job", "hello").returncode == 0
    assert "hello from hello-" in joblet(tmp_path, "logs", "job/hello").stdout


def test_running_the_same_manifest_again_replaces_the_finished_job(tmp_path: Path) -> None:
    assert joblet(tmp_path, "run", "-f", str(EXAMPLES / "hello.yaml")).returncode == 0
    again = joblet(tmp_path, "run", "-f", str(EXAMPLES / "hello.yaml"))
    assert again.returncode == 0, again.stderr
    pods = json.loads(joblet(tmp_path, "get", "pods", "-o", "json").stdout)
    assert len(pods.get("items", [pods])) == 1


def test_flaky_example_succeeds_within_backoff_limit(tmp_path: Path) -> None:
    state = Path("/tmp/joblet-flaky")
    if state.exists():
        for f in state.iterdir():
            f.unlink()
    result = joblet(tmp_path, "run", "-f", str(EXAMPLES / "flaky.yaml"), "--pod-failure-backoff", "0.2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "attempt 3: success" in result.stdout
    assert "2 failed" in result.stdout


def test_unknown_resource_type_is_one_line(tmp_path: Path) -> None:
    result = joblet(tmp_path, "get", "gadgets")
    assert result.returncode == 2
    assert 'the server doesn\'t have a resource type "gadgets"' in result.stderr


def test_error_text_with_brackets_is_printed_verbatim(tmp_path: Path) -> None:
    """Messages are data, not rich markup: a regular expression's [...] must survive."""
    result = subprocess.run([sys.executable, "-m", "joblet", "server", "--node-cpu", "banana",
                             "--data-dir", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "[eEinumkKMGTP]" in result.stderr
