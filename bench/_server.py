"""Shared by the benchmarks: a real ``joblet server`` on a fresh data dir and a free port."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx


def bench_root() -> str:
    """Where benchmark data dirs go: $JOBLET_BENCH_DIR, else ~/.cache/joblet-bench.

    Not /tmp: on the VM these figures come from, creating a directory under /tmp costs
    ~200 µs against ~25 µs under $HOME (same ext4 device), and a data dir is normally under
    $HOME (~/.local/share/joblet)."""
    root = os.environ.get("JOBLET_BENCH_DIR") or os.path.expanduser("~/.cache/joblet-bench")
    os.makedirs(root, exist_ok=True)
    return root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    data_dir: Path
    process: subprocess.Popen[bytes]


@contextlib.contextmanager
def joblet_server(*extra: str) -> Iterator[Server]:
    with tempfile.TemporaryDirectory(prefix="joblet-bench-", dir=bench_root()) as tmp:
        data = Path(tmp) / "data"
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-m", "joblet", "server", "--data-dir", str(data), "--port", str(port),
                                 *extra], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env={**os.environ, "JOBLET_DATA_DIR": str(data)})
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url + "/version", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    proc.kill()
                    sys.exit("joblet server did not start")
                time.sleep(0.05)
        try:
            yield Server(url, data, proc)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


def rss_bytes(pid: int) -> int:
    """Resident set size now, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def peak_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
