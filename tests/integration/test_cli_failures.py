"""Failures explain themselves in ``joblet run`` (ux-audit M2, M3, M4, M7, B1, m4): one line
per failed attempt with reason, exit code and message; a ``Warning Failed`` event when exec
fails; a summary naming failed indexes with exit codes and last log line plus where to look
next; ``--exit-code=pod``; a pinned status line on a terminal and plain lines otherwise; logs
before the summary; a Job that cannot be processed ends the run with exit 2."""

from __future__ import annotations

import itertools
import json
import re
import time
from pathlib import Path

from cli_support import EXAMPLES, Terminal, cli_env, job_manifest, joblet, joblet_server

NOBIN = """apiVersion: batch/v1
kind: Job
metadata: {name: nobin}
spec:
  backoffLimit: 1
  template:
    spec:
      restartPolicy: Never
      containers: [{name: c, image: busybox, command: ["nonexistent-binary"]}]
"""

SHARDS = """apiVersion: batch/v1
kind: Job
metadata: {name: shards}
spec:
  completions: 6
  parallelism: 3
  completionMode: Indexed
  backoffLimitPerIndex: 1
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: c
        image: busybox
        command: ["sh", "-c", "if [ $JOB_COMPLETION_INDEX = 4 ]; then echo shard 4: corrupt input; exit 3; fi; echo shard $JOB_COMPLETION_INDEX ok"]
"""


def test_exec_failure_prints_a_line_per_attempt_and_records_a_warning_event(tmp_path: Path) -> None:
    manifest = tmp_path / "nobin.yaml"
    manifest.write_text(NOBIN)
    env = cli_env(tmp_path)
    data = str(tmp_path / "d")
    result = joblet(env, "run", "-f", str(manifest), "--data-dir", data, "--pod-failure-backoff", "0.2")
    assert result.returncode == 1, result.stdout + result.stderr
    lines = [line for line in result.stdout.splitlines()
             if 'StartError (exit 128): exec: "nonexistent-binary": executable file not found in $PATH' in line]
    assert len(lines) == 2, result.stdout  # backoffLimit 1: two attempts
    assert lines[0].startswith("[nobin-") and "retry in" in lines[0]
    assert "last failure: nobin-" in result.stdout
    assert f"next: joblet logs job/nobin --all-attempts --data-dir {data}" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    events = joblet(env, "get", "events", "-o", "json", "--data-dir", data)
    items = json.loads(events.stdout)["items"]
    failed = [e for e in items if e["reason"] == "Failed" and e["type"] == "Warning"]
    assert failed and "executable file not found" in failed[0]["message"]


def test_indexed_failure_summary_names_the_index_exit_code_and_last_line(tmp_path: Path) -> None:
    manifest = tmp_path / "shards.yaml"
    manifest.write_text(SHARDS)
    env = cli_env(tmp_path)
    data = str(tmp_path / "d")
    result = joblet(env, "run", "-f", str(manifest), "--data-dir", data, "--pod-failure-backoff", "0.2")
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert "failed indexes: 4 (exit 3: 'shard 4: corrupt input')" in out
    assert "[4#2] shards-4-" in out  # the retry is tagged
    summary_at = out.index("job/shards Failed")
    for i in (0, 1, 2, 3, 5):
        assert f"shard {i} ok" in out[:summary_at]  # logs before the summary
    # docker-run style: the failed pod's own exit code
    again = joblet(env, "run", "-f", str(manifest), "--data-dir", data, "--pod-failure-backoff", "0.2",
                   "--exit-code", "pod")
    assert again.returncode == 3, again.stdout + again.stderr


def test_logs_come_before_the_summary_and_no_progress_count_goes_backwards(tmp_path: Path) -> None:
    result = joblet(cli_env(tmp_path), "run", "-f", str(EXAMPLES / "indexed.yaml"), "--data-dir", str(tmp_path / "d"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    summary = next(i for i, line in enumerate(lines) if line.startswith("job/indexed Complete"))
    assert all(not line.startswith("[") for line in lines[summary:]), lines[summary:]
    assert not any("8/8 succeeded" in line for line in lines[:summary])  # the summary says it, after the logs
    progress = [line for line in lines if line.startswith("job/indexed: ")]
    done = [int(line.split(": ")[1].split("/")[0]) for line in progress]
    assert done == sorted(done)
    assert progress and all(a != b for a, b in itertools.pairwise(progress))  # a line per change only


def test_a_terminal_gets_a_pinned_status_line_and_a_pipe_does_not(tmp_path: Path) -> None:
    manifest = tmp_path / "three.yaml"
    manifest.write_text(job_manifest("three", "echo start $HOSTNAME; sleep 1; echo end", completions=3, parallelism=3))
    env = cli_env(tmp_path)
    term = Terminal(["run", "-f", str(manifest), "--data-dir", str(tmp_path / "d")], env)
    try:
        assert term.wait(60) == 0
    finally:
        term.close()
    raw = term.text
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", raw)
    assert "job/three ▕" in text and "running" in text  # the footer: bar and counts
    assert "\x1b[2K" in raw  # redrawn in place, not scrolled
    assert "job/three: " not in text  # no scrolling progress lines on a terminal
    assert "job/three Complete: 3 succeeded, 0 failed" in text
    piped = joblet(env, "run", "-f", str(manifest), "--data-dir", str(tmp_path / "d"))
    assert piped.returncode == 0
    assert "▕" not in piped.stdout and "\x1b[" not in piped.stdout
    assert "job/three: " in piped.stdout


def test_a_job_the_controller_cannot_process_ends_the_run_with_exit_2(tmp_path: Path) -> None:
    manifest = tmp_path / "wrongtype.yaml"
    manifest.write_text(job_manifest("wrongtype", "true").replace("completions: 1", 'completions: "three"'))
    env = cli_env(tmp_path)
    data = str(tmp_path / "d")
    started = time.monotonic()
    result = joblet(env, "run", "-f", str(manifest), "--data-dir", data, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert time.monotonic() - started < 30
    assert "Traceback" not in result.stdout + result.stderr
    # Whether the API refused it or the controller could not process it, listing still works.
    jobs = joblet(env, "get", "jobs", "--data-dir", data)
    assert jobs.returncode == 0, jobs.stderr
    assert "Traceback" not in jobs.stderr


def test_image_not_pulled_is_said_once_per_image(tmp_path: Path) -> None:
    manifest = tmp_path / "py.yaml"
    manifest.write_text(job_manifest("py", "echo hi").replace("image: busybox", "image: python:3.12-slim"))
    result = joblet(cli_env(tmp_path), "run", "-f", str(manifest), "--data-dir", str(tmp_path / "d"))
    assert result.returncode == 0, result.stderr
    note = "note: image python:3.12-slim is not pulled: commands run on the host (use --runtime podman for real images)"
    assert result.stderr.count(note) == 1


TYPO_REFUSED = ('Error from server (BadRequest): error when creating "{file}": Job in version "v1" cannot be '
                'handled as a Job: strict decoding error: unknown field "spec.backofLimit"')


def test_a_mistyped_field_is_refused_before_anything_runs(tmp_path: Path) -> None:
    manifest = tmp_path / "typo.yaml"
    manifest.write_text(job_manifest("typo", "true", extra_spec="  backofLimit: 1\n"))
    env = cli_env(tmp_path)
    result = joblet(env, "run", "-f", str(manifest), "--data-dir", str(tmp_path / "d"))
    assert result.returncode == 2, result.stdout + result.stderr
    assert TYPO_REFUSED.format(file=manifest) in " ".join(result.stderr.split())
    dropped = joblet(env, "run", "-f", str(manifest), "--data-dir", str(tmp_path / "d"), "--validate", "false")
    assert dropped.returncode == 0, dropped.stdout + dropped.stderr
    stored = joblet(env, "get", "job", "typo", "-o", "json", "--data-dir", str(tmp_path / "d"))
    assert "backofLimit" not in stored.stdout


def test_a_mistyped_field_is_refused_alike_through_a_server(tmp_path: Path) -> None:
    """The same refusal and exit status when the CLI talks HTTPS to a running server (the
    registry applies ``fieldValidation`` on both transports), for run and apply; warn drops
    the field and says so."""
    manifest = tmp_path / "typo.yaml"
    manifest.write_text(job_manifest("typo", "true", extra_spec="  backofLimit: 1\n"))
    env = cli_env(tmp_path)
    data = tmp_path / "srv"
    with joblet_server(data, env, tmp_path / "server.log"):
        target = ("--kubeconfig", str(data / "kubeconfig"))
        for verb in ("run", "apply"):
            result = joblet(env, verb, "-f", str(manifest), *target)
            assert result.returncode == 2, (verb, result.stdout + result.stderr)
            assert TYPO_REFUSED.format(file=manifest) in " ".join(result.stderr.split()), verb
        warned = joblet(env, "apply", "-f", str(manifest), "--validate", "warn", *target)
        assert warned.returncode == 0, warned.stderr
        assert 'Warning: unknown field "spec.backofLimit"' in warned.stderr
        stored = joblet(env, "get", "job", "typo", "-o", "json", *target)
        assert "backofLimit" not in stored.stdout and json.loads(stored.stdout)["spec"]["backoffLimit"] == 6
