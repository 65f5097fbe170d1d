"""Ctrl-C and SIGTERM on ``joblet run`` as a user meets them (ux-audit B2, M6, m16): an
embedded run stops its pods before it exits 130/143, a second Ctrl-C kills at once, a run
attached to a server detaches and says how to follow the Job, an offline ``delete`` stops
the pods it deletes, and a start after a crash says which pods it found running."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from cli_support import (
    Terminal,
    cli_env,
    job_manifest,
    joblet,
    joblet_server,
    kill_marked,
    processes_with,
    server_http,
    wait_until_gone,
    wait_while_running,
)


def forever(tmp_path: Path, name: str = "forever", *, trap_term: bool = False, grace: int = 30) -> tuple[Path, str]:
    marker = f"mark-{uuid.uuid4().hex[:12]}"
    trap = "trap '' TERM; " if trap_term else ""
    script = f"{trap}i=0; while true; do echo tick $i {marker}; i=$((i+1)); sleep 0.2; done"
    path = tmp_path / f"{name}.yaml"
    path.write_text(job_manifest(name, script, completions=2, parallelism=2, grace=grace))
    return path, marker


def test_ctrl_c_on_an_embedded_run_stops_its_pods_and_exits_130(tmp_path: Path) -> None:
    manifest, marker = forever(tmp_path)
    env = cli_env(tmp_path)
    term = Terminal(["run", "-f", str(manifest), "--data-dir", str(tmp_path / "d")], env)
    try:
        term.expect(r"tick 2 ")
        assert len(processes_with(marker)) >= 2
        term.key(b"\x03")
        term.expect(r"interrupted: stopping job/forever \(2 pods, grace 30s; Ctrl-C again to kill\)")
        assert term.wait(60) == 130
        assert wait_until_gone(marker, 5) == [], "pods outlived the interrupted run"
    finally:
        term.close()
        kill_marked(marker)
    pods = joblet(env, "get", "pods", "--data-dir", str(tmp_path / "d"))
    assert "forever-" not in pods.stdout  # deleted with the Job (foreground cascade)


def test_sigterm_on_an_embedded_run_stops_its_pods_and_exits_143(tmp_path: Path) -> None:
    manifest, marker = forever(tmp_path)
    env = cli_env(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "joblet", "run", "-f", str(manifest), "--data-dir", str(tmp_path / "d")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        wait_while_running(proc, lambda: len(processes_with(marker)) >= 2, "the pods did not start")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 143, err
        assert "interrupted: stopping job/forever (2 pods" in err
        assert wait_until_gone(marker, 5) == []
    finally:
        if proc.poll() is None:
            proc.kill()
        kill_marked(marker)


def test_a_second_ctrl_c_kills_pods_that_ignore_sigterm_at_once(tmp_path: Path) -> None:
    manifest, marker = forever(tmp_path, trap_term=True, grace=120)
    env = cli_env(tmp_path)
    term = Terminal(["run", "-f", str(manifest), "--data-dir", str(tmp_path / "d")], env)
    try:
        term.expect(r"tick 2 ")
        term.key(b"\x03")
        term.expect(r"grace 120s; Ctrl-C again to kill")
        time.sleep(1.0)  # the pods ignore SIGTERM: they still run (a real second, not semantics)
        assert processes_with(marker), "the pods should survive SIGTERM (they trap it)"
        started = time.monotonic()
        term.key(b"\x03")
        term.expect(r"killing 2 pods of job/forever")
        assert term.wait(30) == 130
        assert time.monotonic() - started < 20  # not the 120 s grace period
        assert wait_until_gone(marker, 5) == []
    finally:
        term.close()
        kill_marked(marker)


def test_ctrl_c_on_a_run_attached_to_a_server_detaches_and_says_how_to_follow(tmp_path: Path) -> None:
    manifest, marker = forever(tmp_path)
    env = cli_env(tmp_path)
    data = tmp_path / "server"
    with joblet_server(data, env, tmp_path / "server.log") as url:
        term = Terminal(["run", "-f", str(manifest), "--data-dir", str(data)], env)
        try:
            term.expect(rf"using joblet server {url}")
            term.expect(r"tick 2 ")
            term.key(b"\x03")
            term.expect(rf"detached: job/forever keeps running on {url} "
                        r"\(joblet logs -f job/forever; joblet delete job forever\)")
            assert term.wait(30) == 130
            time.sleep(0.5)  # a detached run must not stop the pods: give a wrong stop time to show
            assert len(processes_with(marker)) >= 2
            with server_http(data) as http:
                job = http.get("/apis/batch/v1/namespaces/default/jobs/forever").json()
            assert job["status"].get("active") == 2
            deleted = joblet(env, "delete", "job", "forever", "--data-dir", str(data))
            assert deleted.returncode == 0, deleted.stderr
            assert wait_until_gone(marker, 40) == []
        finally:
            term.close()
            kill_marked(marker)
    log = (tmp_path / "server.log").read_text()
    assert f"dashboard: {url}/" in log and log.rstrip().endswith("stopped")  # the server's own lines (m15)


def test_offline_delete_stops_the_pods_a_crashed_run_left_behind(tmp_path: Path) -> None:
    manifest, marker = forever(tmp_path)
    env = cli_env(tmp_path)
    data = tmp_path / "d"
    proc = subprocess.Popen([sys.executable, "-m", "joblet", "run", "-f", str(manifest), "--data-dir", str(data)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        wait_while_running(proc, lambda: len(processes_with(marker)) >= 2, "the pods did not start")
        proc.kill()  # a crash: nothing stops the pods
        proc.wait(10)
        assert len(processes_with(marker)) >= 2
        # The next start on this data dir says what it found running.
        hello = tmp_path / "hello.yaml"
        hello.write_text(job_manifest("hello", "echo hi"))
        ran = joblet(env, "run", "-f", str(hello), "--data-dir", str(data))
        assert ran.returncode == 0, ran.stderr
        assert "note: job/forever from an earlier run is still running (2 pods)" in ran.stderr
        deleted = joblet(env, "delete", "job", "forever", "--data-dir", str(data))
        assert deleted.returncode == 0, deleted.stderr
        assert 'job.batch "forever" deleted' in deleted.stdout
        assert wait_until_gone(marker, 5) == [], "offline delete left the pods running"
        pods = joblet(env, "get", "pods", "--data-dir", str(data))
        assert "forever-" not in pods.stdout
    finally:
        if proc.poll() is None:
            proc.kill()
        kill_marked(marker)
