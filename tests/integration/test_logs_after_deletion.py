"""Logs outlive their pods and their Job, with the server running exactly as with it stopped:
``joblet logs job/X`` by the Job's name and ``pods/log`` by a deleted pod's name, after
``kubectl delete job X --cascade=foreground|background|orphan`` (orphaned pods deleted too).

A real ``joblet server`` subprocess, real kubectl, the real ``joblet`` CLI; then the server
is stopped and the same commands read the data dir offline.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from support.process import wait_until_serving

KUBECTL = shutil.which("kubectl")
CASCADES = ("foreground", "background", "orphan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "JOBLET_DATA_DIR")}


def joblet(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "joblet", *args, "--data-dir", str(data)],
                          capture_output=True, text=True, timeout=120, env=clean_env())


def kubectl(kubeconfig: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert KUBECTL is not None
    return subprocess.run([KUBECTL, "--kubeconfig", str(kubeconfig), *args], capture_output=True, text=True,
                          timeout=120, env={"HOME": str(home), "PATH": "/usr/bin:/bin"})


def manifest(name: str) -> str:
    return json.dumps({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "spec": {
        "completions": 2, "parallelism": 2, "completionMode": "Indexed", "template": {"spec": {
            "restartPolicy": "Never", "terminationGracePeriodSeconds": 1, "containers": [
                {"name": "main", "image": "busybox", "command": ["sh", "-c", f"echo {name} index $JOB_COMPLETION_INDEX"]}]}}}})


@pytest.mark.slow
@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed (scripts/test installs it)")
def test_logs_of_deleted_jobs_and_pods_online_and_offline(tmp_path: Path) -> None:
    data, home = tmp_path / "data", tmp_path / "home"
    home.mkdir()
    log = tmp_path / "server.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "joblet", "server", "--data-dir", str(data),
                                 "--port", str(free_port())], stdout=out, stderr=subprocess.STDOUT,
                                env=clean_env(), start_new_session=True)
    kubeconfig = data / "kubeconfig"
    pods: dict[str, list[str]] = {}
    try:
        wait_until_serving(proc, kubeconfig, log=log)
        for cascade in CASCADES:
            name = f"gone-{cascade}"
            (tmp_path / f"{name}.json").write_text(manifest(name))
            assert kubectl(kubeconfig, home, "create", "-f", str(tmp_path / f"{name}.json")).returncode == 0
        for cascade in CASCADES:
            name = f"gone-{cascade}"
            waited = kubectl(kubeconfig, home, "wait", "--for=condition=complete", f"job/{name}", "--timeout=60s")
            assert waited.returncode == 0, waited.stderr
            listed = kubectl(kubeconfig, home, "get", "pods", "-l", f"batch.kubernetes.io/job-name={name}",
                             "-o", "jsonpath={.items[*].metadata.name}")
            pods[name] = sorted(listed.stdout.split())
            assert len(pods[name]) == 2
            deleted = kubectl(kubeconfig, home, "delete", "job", name, f"--cascade={cascade}", "--wait=true")
            assert deleted.returncode == 0, deleted.stderr
            if cascade == "orphan":
                assert kubectl(kubeconfig, home, "delete", "pods", "-l", f"batch.kubernetes.io/job-name={name}",
                               "--wait=true").returncode == 0
            gone = kubectl(kubeconfig, home, "get", "pods", "-l", f"batch.kubernetes.io/job-name={name}", "-o", "name")
            assert gone.stdout.strip() == "", f"{cascade}: pods still there: {gone.stdout}"

        def check(online: bool) -> None:
            for cascade in CASCADES:
                name = f"gone-{cascade}"
                result = joblet(data, "logs", f"job/{name}")
                assert result.returncode == 0, f"{'online' if online else 'offline'} {cascade}: {result.stderr}"
                assert sorted(line.split("] ", 1)[-1] for line in result.stdout.splitlines()) == [
                    f"{name} index 0", f"{name} index 1"], result.stdout
                for pod in pods[name]:
                    if online:  # pods/log of the deleted pod by name, through the running server
                        raw = kubectl(kubeconfig, home, "get", "--raw", f"/api/v1/namespaces/default/pods/{pod}/log")
                        assert raw.returncode == 0, raw.stderr
                        assert raw.stdout.startswith(f"{name} index ")
                    one = joblet(data, "logs", pod)
                    assert one.returncode == 0 and one.stdout.startswith(f"{name} index "), one.stderr

        check(online=True)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
    check(online=False)
