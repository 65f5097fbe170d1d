"""Starting a real ``joblet server`` process and waiting until it answers: up when it
answers ``/version`` over HTTPS with the CA and token of the kubeconfig it wrote (a real
process listening, not a semantic wait).

Why one helper: the security, client, CLI and kubectl tests and the benchmarks (``bench/``
imports this file) all need "a server on a free port, its kubeconfig, stopped with SIGTERM at
the end"; each used to spell its own Popen, port picking and poll loop.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from joblet.client.http import HttpClient
from joblet.kubeconfig import load_access
from support.tls import kubeconfig_http


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serving(kubeconfig: Path) -> bool:
    if not kubeconfig.exists():
        return False
    try:
        with kubeconfig_http(kubeconfig, timeout=1) as http:
            return http.get("/version").status_code == 200
    except (httpx.HTTPError, OSError, ValueError, KeyError):
        return False


def wait_until_serving(proc: subprocess.Popen[bytes], kubeconfig: Path, timeout: float = 30.0,
                       log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not serving(kubeconfig):
        if proc.poll() is not None or time.monotonic() > deadline:
            text = log.read_text()[-3000:] if log is not None and log.exists() else ""
            raise AssertionError(f"joblet server did not start (exit {proc.poll()}): {text}")
        time.sleep(0.05)


def stop(proc: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without a KUBECONFIG or JOBLET_DATA_DIR that could point elsewhere."""
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "JOBLET_DATA_DIR")}
    env.update(extra)
    return env


@dataclass
class ServerProcess:
    """A running ``joblet server``: its process, data dir, port and kubeconfig."""

    proc: subprocess.Popen[bytes]
    data_dir: Path
    port: int
    log: Path | None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def kubeconfig(self) -> Path:
        return self.data_dir / "kubeconfig"

    def http(self, timeout: float = 10.0) -> httpx.Client:
        """An httpx client with the kubeconfig's server, CA and admin token."""
        return kubeconfig_http(self.kubeconfig, timeout=timeout)

    def client(self) -> HttpClient:
        return HttpClient.from_access(load_access(self.kubeconfig))


@contextlib.contextmanager
def joblet_server(data_dir: Path, *args: str, env: Mapping[str, str] | None = None, log: Path | None = None,
                  port: int | None = None, timeout: float = 30.0,
                  launcher: Sequence[str] = ("-m", "joblet")) -> Iterator[ServerProcess]:
    """``joblet server --data-dir DATA_DIR --port PORT ARGS...`` until the block ends, once it
    answers. Output goes to ``log`` (else nowhere); ``env`` defaults to :func:`clean_env`;
    ``launcher``: how Python starts joblet (a wrapper script and its arguments, e.g. tracing)."""
    port = port or free_port()
    argv = [sys.executable, *launcher, "server", "--data-dir", str(data_dir), "--port", str(port), *args]
    with contextlib.ExitStack() as files:
        out = files.enter_context(log.open("ab")) if log is not None else subprocess.DEVNULL
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=dict(env or clean_env()),
                                start_new_session=True)
    server = ServerProcess(proc, data_dir, port, log)
    try:
        wait_until_serving(proc, server.kubeconfig, timeout=timeout, log=log)
        yield server
    finally:
        stop(proc)
