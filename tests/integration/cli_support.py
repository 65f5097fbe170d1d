"""Driving the real ``joblet`` CLI from tests: subprocesses with an isolated environment
(no ``KUBECONFIG``, a private default data dir), a real terminal through a pty for Ctrl-C and
the live status line, real ``joblet server`` processes, and a look at /proc for pod
processes that outlive what they should."""

from __future__ import annotations

import contextlib
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from support import process
from support.tls import kubeconfig_http

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


def cli_env(tmp: Path, **extra: str) -> dict[str, str]:
    """The user's environment minus joblet/kubectl targets; the default data dir under ``tmp``."""
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "JOBLET_DATA_DIR")}
    env["XDG_DATA_HOME"] = str(tmp / "xdg")
    env.update(extra)
    return env


def joblet(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "joblet", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def job_manifest(name: str, script: str, *, completions: int = 1, parallelism: int = 1, grace: int = 30,
                 extra_spec: str = "") -> str:
    return f"""apiVersion: batch/v1
kind: Job
metadata: {{name: {name}}}
spec:
  completions: {completions}
  parallelism: {parallelism}
{extra_spec}  template:
    spec:
      restartPolicy: Never
      terminationGracePeriodSeconds: {grace}
      containers:
      - name: c
        image: busybox
        command: ["sh", "-c", {script!r}]
"""


def processes_with(marker: str) -> list[int]:
    """Pids whose command line contains ``marker`` (pod processes carry a unique one)."""
    found = []
    needle = marker.encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if needle in Path(f"/proc/{entry}/cmdline").read_bytes():
                found.append(int(entry))
    return found


def kill_marked(marker: str) -> None:
    """Clean up after a failed test: only the processes this test started (by marker)."""
    for pid in processes_with(marker):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def wait_while_running(proc: subprocess.Popen[Any], done: Callable[[], bool], what: str,
                       hang_guard: float = 300.0) -> None:
    """Poll ``done()`` for as long as ``proc`` (the joblet that makes it true) runs.

    The condition is the process: its exit fails the wait at once, while a live one is merely
    slow (a loaded machine starts a control plane in seconds or in a minute); ``hang_guard``
    only stops a hung process from hanging the test."""
    deadline = time.monotonic() + hang_guard
    while not done():
        code = proc.poll()
        assert code is None, f"{what}: joblet exited ({code}) first"
        assert time.monotonic() < deadline, f"{what}: not after {hang_guard:.0f} s (hung?)"
        time.sleep(0.1)  # polling a real process's effect


def wait_until_gone(marker: str, timeout: float = 15.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while (left := processes_with(marker)) and time.monotonic() < deadline:
        time.sleep(0.1)  # waiting for real processes to exit
    return left


class Terminal:
    """``joblet`` on a real pseudo-terminal: its output as a user sees it, and Ctrl-C as a key."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        pid, fd = pty.fork()
        if pid == 0:  # the child: the pty is its controlling terminal
            try:
                os.execve(sys.executable, [sys.executable, "-m", "joblet", *args], env)
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        self.output = b""
        self.status: int | None = None

    @property
    def text(self) -> str:
        return self.output.decode(errors="replace")

    def _read(self, seconds: float) -> None:
        r, _, _ = select.select([self.fd], [], [], seconds)
        if r:
            try:
                self.output += os.read(self.fd, 65536)
            except OSError:  # the child closed the terminal
                self._reap(block=True)

    def _reap(self, block: bool = False) -> None:
        if self.status is None:
            pid, status = os.waitpid(self.pid, 0 if block else os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(status)

    def expect(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(pattern, self.text)
            if m:
                return m
            if time.monotonic() > deadline or self.status is not None:
                raise AssertionError(f"{pattern!r} not seen in:\n{self.text[-3000:]}")
            self._read(0.1)
            self._reap()

    def key(self, data: bytes) -> None:
        os.write(self.fd, data)

    def wait(self, timeout: float = 60.0) -> int:
        deadline = time.monotonic() + timeout
        while self.status is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"joblet did not exit; output:\n{self.text[-3000:]}")
            self._read(0.1)
            self._reap()
        with contextlib.suppress(OSError):
            while True:
                r, _, _ = select.select([self.fd], [], [], 0.05)
                if not r:
                    break
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    break
                self.output += chunk
        return self.status

    def close(self) -> None:
        if self.status is None:
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGKILL)
            self._reap(block=True)
        with contextlib.suppress(OSError):
            os.close(self.fd)


@contextlib.contextmanager
def joblet_server(data_dir: Path, env: dict[str, str], log: Path) -> Iterator[str]:
    """A real ``joblet server`` on a free port; yields its URL (HTTPS; talk to it with
    :func:`server_http`)."""
    with process.joblet_server(data_dir, "--pod-failure-backoff", "0.2", env=env, log=log) as server:
        yield server.url


def server_http(data_dir: Path) -> httpx.Client:
    """An admin client of the ``joblet server`` on ``data_dir`` (its kubeconfig's CA and token)."""
    return kubeconfig_http(data_dir / "kubeconfig", timeout=5)
