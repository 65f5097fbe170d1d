"""Shared by the benchmarks: a real ``joblet server`` on a fresh data dir and a free port, reached
over HTTPS with the admin token from the kubeconfig it writes, as every client reaches it."""

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

from joblet.kubeconfig import Access, load_access


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
    access: Access

    def client(self, timeout: float = 60) -> httpx.Client:
        """An httpx client that trusts the server's CA and sends its admin token."""
        return httpx.Client(base_url=self.url, verify=self.access.ssl_context(), timeout=timeout,
                            headers={"Authorization": f"Bearer {self.access.token}"})


@contextlib.contextmanager
def joblet_server(*extra: str) -> Iterator[Server]:
    with tempfile.TemporaryDirectory(prefix="joblet-bench-", dir=bench_root()) as tmp:
        data = Path(tmp) / "data"
        port = free_port()
        env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "JOBLET_DATA_DIR")}
        proc = subprocess.Popen([sys.executable, "-m", "joblet", "server", "--data-dir", str(data), "--port", str(port),
                                 *extra], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + 30
        kubeconfig = data / "kubeconfig"
        while not kubeconfig.exists():
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                sys.exit("joblet server did not write its kubeconfig")
            time.sleep(0.05)
        access = load_access(kubeconfig)
        server = Server(access.server, data, proc, access)
        with server.client(timeout=1) as probe:
            while True:
                try:
                    probe.get("/version").raise_for_status()
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        proc.kill()
                        sys.exit("joblet server did not start")
                    time.sleep(0.05)
        try:
            yield server
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


RUSAGE_WRAPPER = """
import atexit, json, resource, runpy, sys
out = sys.argv.pop(1)
def dump():
    r = resource.getrusage(resource.RUSAGE_SELF)
    with open(out, "w") as f:
        json.dump({"user": r.ru_utime, "sys": r.ru_stime, "maxrss_kb": r.ru_maxrss}, f)
atexit.register(dump)
sys.argv[0] = "joblet"
runpy.run_module("joblet", run_name="__main__", alter_sys=True)
"""


def joblet_argv(rusage_file: Path, *args: str) -> list[str]:
    """``python -m joblet ARGS`` that writes its own CPU time (user, sys: every thread, no child) and
    peak RSS to ``rusage_file`` at exit — the figure a loaded, shared machine does not distort."""
    return [sys.executable, "-c", RUSAGE_WRAPPER, str(rusage_file), *args]
