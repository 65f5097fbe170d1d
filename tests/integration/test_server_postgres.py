"""``joblet server --store postgresql://…`` end to end: the real server process on a real
PostgreSQL, driven by the real kubectl.

Why: the store contract suite checks the backend alone; this checks the assembly — the data dir
keeps the replica's own files (pki, tokens, kubeconfig, logs) while every object lives in the
database (no ``joblet.db``), a Job runs to Complete, survives a kill -9 of the server, and the
store URL's credentials never travel on argv.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_crash_recovery import Server, complete, poll

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

JOBS = "/apis/batch/v1/namespaces/default/jobs"


def job(name: str, script: str = "echo hi", completions: int = 3) -> dict[str, object]:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"completions": completions, "parallelism": 3, "backoffLimit": 0,
                     "template": {"spec": {"restartPolicy": "Never", "containers": [
                         {"name": "main", "image": "busybox", "command": ["sh", "-c", script]}]}}}}


def kubectl(kubeconfig: Path, *args: str) -> str:
    out = subprocess.run(["/usr/bin/kubectl", "--kubeconfig", str(kubeconfig), *args],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_server_on_postgres_runs_a_job_and_keeps_it_across_kill9(
        pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The URL (with a password: trust auth ignores it) comes from JOBLET_STORE, never argv.
    monkeypatch.setenv("JOBLET_STORE", pg_url.replace("postgres@", "postgres:not-on-argv@"))
    data = tmp_path / "data"
    data.mkdir()
    server = Server(data, tmp_path / "shim-cache")
    server.start()
    try:
        assert server.proc is not None
        argv = Path(f"/proc/{server.proc.pid}/cmdline").read_bytes()
        assert b"not-on-argv" not in argv and b"postgresql" not in argv
        manifest = tmp_path / "job.json"
        manifest.write_text(json.dumps(job("pg")))
        kubectl(data / "kubeconfig", "apply", "-f", str(manifest))
        poll(lambda: complete(server.job("pg")), 120, "the Job did not complete on the PostgreSQL store")
        assert not (data / "joblet.db").exists()  # objects live in PostgreSQL only
        server.kill9()
        server.start()
        listed = kubectl(data / "kubeconfig", "get", "jobs", "-o", "json")
        jobs = json.loads(listed)["items"]
        assert [j["metadata"]["name"] for j in jobs] == ["pg"]
        assert jobs[0]["status"]["succeeded"] == 3
        server.post(JOBS, job("after-restart", completions=2))
        poll(lambda: complete(server.job("after-restart")), 120, "no Job completes after the restart")
    finally:
        server.stop()


def test_a_password_in_store_on_the_command_line_is_refused(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "JOBLET_STORE"}
    out = subprocess.run(
        [sys.executable, "-m", "joblet.cli.main", "server", "--data-dir", str(tmp_path / "d"),
         "--store", "postgresql://joblet:hunter2@127.0.0.1:1/joblet"],
        capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 2
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "PGPASSFILE" in lines[0] and "JOBLET_STORE" in lines[0], out.stderr
    assert "hunter2" not in out.stderr
    assert not (tmp_path / "d").exists()
