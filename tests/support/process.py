"""Waiting for a ``joblet server`` subprocess: up when it answers ``/version`` over HTTPS with
the CA and token of the kubeconfig it wrote (a real process listening, not a semantic wait)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx

from support.tls import kubeconfig_http


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
