"""Crash safety of the whole server: ``kill -9`` mid-Job, restart on the same data dir, exact counts.

Why: the promise of the node agent and the Job controller together is that a crash neither
loses nor repeats work. These tests run the real ``joblet server`` as a subprocess, talk to it
over HTTP only, and prove it with a marker file that every container appends to (a hostPath
volume): after the restart, each index ran exactly once and the Job counts are exact.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.tls import kubeconfig_http

Obj = dict[str, Any]
INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"


class Server:
    """``python -m joblet.cli.main server`` on a free port; start, kill -9, restart."""

    def __init__(self, data_dir: Path, cache_dir: Path, args: tuple[str, ...] = ()) -> None:
        self.data_dir = data_dir
        self.cache_dir = cache_dir
        self.args = args
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"https://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "JOBLET_CACHE_DIR": str(self.cache_dir)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "joblet.cli.main", "server", "--data-dir", str(self.data_dir),
             "--port", str(self.port), "--pod-failure-backoff", "0.2", "--crash-loop-backoff", "0.2", *self.args],
            env=env, stdout=subprocess.DEVNULL, stderr=open(self.data_dir.parent / "server.err", "ab"))  # noqa: SIM115
        poll(lambda: self._ready(), 30, "the server did not come up")

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"server exited with {self.proc.returncode}: "
                                 f"{(self.data_dir.parent / 'server.err').read_text()[-2000:]}")
        if not (self.data_dir / "kubeconfig").exists():
            return False
        try:
            with self.http(timeout=1) as http:
                return http.get("/version").status_code == 200
        except httpx.HTTPError:
            return False

    def http(self, timeout: float = 5) -> httpx.Client:
        """HTTPS with the CA and admin token of the kubeconfig the server wrote."""
        return kubeconfig_http(self.data_dir / "kubeconfig", timeout=timeout)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def get(self, path: str) -> Obj:
        with self.http() as http:
            r = http.get(path)
        r.raise_for_status()
        return r.json()  # type: ignore[no-any-return]

    def post(self, path: str, body: Obj) -> Obj:
        with self.http() as http:
            r = http.post(path, json=body)
        assert r.status_code < 300, r.text
        return r.json()  # type: ignore[no-any-return]

    def pods(self, job: str) -> list[Obj]:
        return self.get(f"/api/v1/namespaces/default/pods?labelSelector=job-name%3D{job}")["items"]  # type: ignore[no-any-return]

    def job(self, name: str) -> Obj:
        return self.get(f"/apis/batch/v1/namespaces/default/jobs/{name}")


def poll(check: Callable[[], bool], timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not check():
        if time.monotonic() > end:
            raise AssertionError(what)
        time.sleep(0.05)


def complete(job: Obj) -> bool:
    return any(c["type"] == "Complete" and c["status"] == "True" for c in (job.get("status") or {}).get("conditions") or [])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    data = tmp_path / "data"
    data.mkdir()
    srv = Server(data, tmp_path.parent / "shim-cache")
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()
        with contextlib.suppress(Exception):  # leave no pod processes behind, whatever happened
            from joblet.clock import RealClock
            from joblet.node.runtimes.process import ProcessRuntime

            rt = ProcessRuntime(data, RealClock(), cache_dir=tmp_path.parent / "shim-cache")
            import asyncio

            for uid in rt.pods():
                asyncio.run(rt.remove_pod(uid))


def shims_of(data_dir: Path) -> list[int]:
    """Live shim processes whose status files are in this data dir."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if b"joblet-shim" in cmdline and str(data_dir).encode() in cmdline:
            found.append(int(proc.name))
    return found


def test_kill9_mid_indexed_job_recovers_exactly(server: Server, tmp_path: Path) -> None:
    markers = tmp_path / "markers"
    completions = 6
    script = 'echo "$IDX" >> /markers/runs; sleep 1.5'
    server.post("/apis/batch/v1/namespaces/default/jobs", {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "crash"},
        "spec": {"completions": completions, "parallelism": 3, "completionMode": "Indexed", "backoffLimit": 0,
                 "template": {"spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                     "volumes": [{"name": "m", "hostPath": {"path": str(markers), "type": "DirectoryOrCreate"}}],
                     "containers": [{"name": "main", "image": "busybox", "command": ["sh", "-c", script],
                                     "volumeMounts": [{"name": "m", "mountPath": "/markers"}],
                                     "env": [{"name": "IDX", "valueFrom": {"fieldRef": {
                                         "fieldPath": f"metadata.annotations['{INDEX_ANNOTATION}']"}}}]}]}}},
    })
    poll(lambda: sum(1 for p in server.pods("crash") if (p.get("status") or {}).get("phase") == "Running") >= 2,
         20, "no pods ran")
    server.kill9()
    assert shims_of(server.data_dir), "the containers should outlive the killed server"
    server.start()
    poll(lambda: complete(server.job("crash")), 40, "the Job did not complete after the restart")

    status = server.job("crash")["status"]
    assert (status.get("succeeded"), status.get("failed", 0)) == (completions, 0)
    succeeded = Counter(p["metadata"]["annotations"][INDEX_ANNOTATION] for p in server.pods("crash")
                        if p["status"]["phase"] == "Succeeded")
    assert succeeded == Counter({str(i): 1 for i in range(completions)})
    runs = Counter((markers / "runs").read_text().split())
    assert runs == Counter({str(i): 1 for i in range(completions)}), "a container ran twice (or never)"
    poll(lambda: not shims_of(server.data_dir), 10, "shim processes outlived their containers")


def test_sidecar_does_not_block_job_completion(server: Server) -> None:
    server.post("/apis/batch/v1/namespaces/default/jobs", {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "side"},
        "spec": {"completions": 2, "parallelism": 2, "backoffLimit": 0,
                 "template": {"spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 5,
                     "initContainers": [{"name": "proxy", "image": "busybox", "restartPolicy": "Always",
                                         "command": ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.05; done"]}],
                     "containers": [{"name": "main", "image": "busybox", "command": ["sh", "-c", "sleep 0.3"]}]}}},
    })
    poll(lambda: complete(server.job("side")), 30, "a sidecar kept the Job from completing")
    assert server.job("side")["status"]["succeeded"] == 2
