"""The other verbs as a user types them (ux-audit M5, M9, m1, m2, m8, m9, m10, m11): kubectl-like
``describe`` for Pod, Job and CronJob, ``logs -f job/X`` merging live pods, comma lists and
``all`` in ``get``, ``--version``, hints for a Job name given to ``logs``, reads that never
create a data dir, and ``wait`` that returns at once on the other terminal state."""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from cli_support import cli_env, job_manifest, joblet, wait_while_running

NOBIN = """apiVersion: batch/v1
kind: Job
metadata: {name: nobin}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers: [{name: c, image: busybox, command: ["nonexistent-binary"]}]
"""

CRON = """apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly-report}
spec:
  schedule: "30 2 * * 1-5"
  timeZone: Europe/Berlin
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
          - name: c
            image: busybox
            command: ["sh", "-c", "echo one\\necho two\\n"]
"""


def test_describe_pod_job_and_cronjob_read_like_kubectl(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    data = str(tmp_path / "d")
    (tmp_path / "nobin.yaml").write_text(NOBIN)
    assert joblet(env, "run", "-f", str(tmp_path / "nobin.yaml"), "--data-dir", data).returncode == 1
    pod = joblet(env, "get", "pods", "-o", "name", "--data-dir", data).stdout.split()[0].split("/", 1)[1]
    described = joblet(env, "describe", "pod", pod, "--data-dir", data).stdout
    assert "spec:" not in described and "Kind: Pod" not in described  # not raw YAML
    assert "Controlled By:    Job/nobin" in described
    for line in ("State:              Terminated", "Reason:           StartError", "Exit Code:        128",
                 'Message:          exec: "nonexistent-binary": executable file not found in $PATH'):
        assert line in described, described
    assert "Warning  Failed" in described
    job = joblet(env, "describe", "job", "nobin", "--data-dir", data).stdout
    assert "Pod Template:\n  Labels:" in job and "      Command:\n        nonexistent-binary" in job
    assert "imagePullPolicy" not in job and "StartError (exit 128)" in job
    (tmp_path / "cron.yaml").write_text(CRON)
    assert joblet(env, "apply", "-f", str(tmp_path / "cron.yaml"), "--data-dir", data).returncode == 0
    cron = joblet(env, "describe", "cronjob", "nightly-report", "--data-dir", data).stdout
    assert "managedFields" not in cron and "Schedule:                      30 2 * * 1-5" in cron
    assert "Time Zone:                     Europe/Berlin" in cron
    assert "Next Schedule:" in cron and "(in " in cron
    assert "        echo one\n        echo two" in cron  # block script, one line per line


def test_get_takes_comma_lists_and_all(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    data = str(tmp_path / "d")
    (tmp_path / "hello.yaml").write_text(job_manifest("hello", "echo hi"))
    assert joblet(env, "run", "-f", str(tmp_path / "hello.yaml"), "--data-dir", data).returncode == 0
    both = joblet(env, "get", "jobs,pods", "--data-dir", data)
    assert both.returncode == 0, both.stderr
    assert "job.batch/hello" in both.stdout and "pod/hello-" in both.stdout
    assert "\n\nNAME" in both.stdout  # one table per kind
    every = joblet(env, "get", "all", "-o", "name", "--data-dir", data)
    assert every.returncode == 0 and "job.batch/hello" in every.stdout and "pod/hello-" in every.stdout


def test_version_flag_and_logs_hint_and_reads_without_side_effects(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    version = joblet(env, "--version")
    assert version.returncode == 0 and version.stdout.startswith("joblet ")
    typo = tmp_path / "typo"
    read = joblet(env, "get", "jobs", "--data-dir", str(typo))
    assert read.returncode == 1 and f"no joblet data in {typo}" in read.stderr
    assert not typo.exists()
    data = str(tmp_path / "d")
    (tmp_path / "hello.yaml").write_text(job_manifest("hello", "echo hi"))
    assert joblet(env, "run", "-f", str(tmp_path / "hello.yaml"), "--data-dir", data).returncode == 0
    logs = joblet(env, "logs", "hello", "--data-dir", data)
    assert logs.returncode == 1 and "hello is a Job: joblet logs job/hello" in logs.stderr


def test_wait_returns_at_once_when_the_job_failed(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    data = str(tmp_path / "d")
    (tmp_path / "nobin.yaml").write_text(NOBIN)
    assert joblet(env, "run", "-f", str(tmp_path / "nobin.yaml"), "--data-dir", data).returncode == 1
    started = time.monotonic()
    waited = joblet(env, "wait", "job/nobin", "--timeout", "30", "--data-dir", data)
    assert waited.returncode == 1
    assert "job/nobin is Failed (BackoffLimitExceeded); it will not become Complete" in waited.stderr
    assert time.monotonic() - started < 20


def test_logs_follow_merges_the_pods_of_a_job_live(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    data = tmp_path / "d"
    gate = tmp_path / "go"  # outside the data dir: visible in the pods' sandbox
    # Each pod prints a line, then blocks until the test opens the gate: a follower that read
    # the pods one after the other would never show the second pod's first line, however slow
    # the machine (no timing assumption).
    script = f"echo line 1; while [ ! -e {gate} ]; do sleep 0.1; done; for i in 2 3 4; do echo line $i; done"
    (tmp_path / "two.yaml").write_text(job_manifest("two", script, completions=2, parallelism=2))
    (tmp_path / "hold.yaml").write_text(job_manifest("hold", "sleep 60"))
    # A run keeps the control plane up; `logs -f` attaches to it through the data dir.
    holder = subprocess.Popen([sys.executable, "-m", "joblet", "run", "-f", str(tmp_path / "hold.yaml"),
                               "--data-dir", str(data), "--pod-failure-backoff", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        wait_while_running(holder, lambda: '"url"' in ((data / "lock").read_text() if (data / "lock").exists() else ""),
                           "the holder did not serve")
        applied = joblet(env, "apply", "-f", str(tmp_path / "two.yaml"), "--data-dir", str(data))
        assert applied.returncode == 0, applied.stderr
        wait_while_running(holder, lambda: "two-" in joblet(env, "get", "pods", "-o", "name", "--data-dir",
                                                                str(data)).stdout, "the Job controller made no pod")
        proc = subprocess.Popen([sys.executable, "-m", "joblet", "logs", "-f", "job/two", "--data-dir", str(data)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        lines: queue.Queue[str | None] = queue.Queue()

        def read() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.put(line.strip())
            lines.put(None)

        threading.Thread(target=read, daemon=True).start()
        seen: list[str] = []
        try:
            while len({line.split("]")[0] for line in seen if line.endswith("line 1")}) < 2:
                line = lines.get(timeout=60)  # both pods are running and blocked: their first lines come
                assert line is not None, f"logs -f ended early: {seen}"
                seen.append(line)
            assert not [line for line in seen if not line.endswith("line 1")], seen
            gate.touch()
            while (line := lines.get(timeout=60)) is not None:
                seen.append(line)
        except BaseException:
            proc.kill()  # a failed wait: do not leave the follower behind
            raise
        proc.wait(30)
        assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
        by_pod: dict[str, list[str]] = {}
        for line in seen:
            by_pod.setdefault(line.split("]")[0], []).append(line.split("] ", 1)[1])
        assert len(by_pod) == 2, seen
        assert all(got == ["line 1", "line 2", "line 3", "line 4"] for got in by_pod.values()), seen
        # A retry is a new pod: `logs -f job/X` follows it too, and ends when the Job does.
        retried = job_manifest("retried", "echo attempt on $HOSTNAME; sleep 1; exit 1",
                               extra_spec="  backoffLimit: 1\n")
        (tmp_path / "retried.yaml").write_text(retried)
        assert joblet(env, "apply", "-f", str(tmp_path / "retried.yaml"), "--data-dir", str(data)).returncode == 0
        wait_while_running(holder, lambda: "retried-" in joblet(env, "get", "pods", "-o", "name", "--data-dir",
                                                                    str(data)).stdout, "the Job controller made no pod")
        followed = joblet(env, "logs", "-f", "job/retried", "--data-dir", str(data), timeout=90)
        assert followed.returncode == 0, followed.stderr
        attempts = {line.split("]")[0] for line in followed.stdout.splitlines() if "attempt on" in line}
        assert len(attempts) == 2, followed.stdout
    finally:
        holder.send_signal(signal.SIGTERM)  # stops its Job and pods
        holder.wait(60)
