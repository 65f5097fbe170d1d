"""Shared by the benchmarks: a real ``joblet server`` on a fresh data dir and a free port,
reached over HTTPS with its kubeconfig's CA and admin token, as every client reaches it."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from support import process
from support.tls import kubeconfig_http


def bench_root() -> str:
    """Where benchmark data dirs go: $JOBLET_BENCH_DIR, else ~/.cache/joblet-bench.

    Not /tmp: on the VM these figures come from, creating a directory under /tmp costs
    ~200 µs against ~25 µs under $HOME (same ext4 device), and a data dir is normally under
    $HOME (~/.local/share/joblet)."""
    root = os.environ.get("JOBLET_BENCH_DIR") or os.path.expanduser("~/.cache/joblet-bench")
    os.makedirs(root, exist_ok=True)
    return root


@dataclass
class Server:
    """A running ``joblet server``: ``url`` (HTTPS), ``http()`` an httpx client that trusts its
    CA and sends the admin token of the kubeconfig it wrote."""

    url: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    kubeconfig: Path

    def http(self, timeout: float = 60.0) -> httpx.Client:
        return kubeconfig_http(self.kubeconfig, timeout=timeout)


@contextlib.contextmanager
def joblet_server(*extra: str, launcher: Sequence[str] = ("-m", "joblet"), timeout: float = 30.0) -> Iterator[Server]:
    """``joblet server`` on a fresh data dir under :func:`bench_root` and a free port, once it
    answers over HTTPS (the tests' helper, ``tests/support/process.py``); ``launcher`` as there."""
    with tempfile.TemporaryDirectory(prefix="joblet-bench-", dir=bench_root()) as tmp:
        data = Path(tmp) / "data"
        try:
            with process.joblet_server(data, *extra, env=process.clean_env(JOBLET_DATA_DIR=str(data)),
                                       launcher=launcher, timeout=timeout) as server:
                yield Server(server.url, data, server.proc, server.kubeconfig)
        except AssertionError as e:  # did not start
            sys.exit(str(e))


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
import atexit, json, os, resource, runpy, sys, time
out = sys.argv.pop(1)
spawn_wait = [0.0]
real_spawn = os.posix_spawnp
def timed_spawn(*args, **kwargs):
    start = time.perf_counter()
    try:
        return real_spawn(*args, **kwargs)
    finally:
        spawn_wait[0] += time.perf_counter() - start
os.posix_spawnp = timed_spawn
def dump():
    r = resource.getrusage(resource.RUSAGE_SELF)
    with open(out, "w") as f:
        json.dump({"user": r.ru_utime, "sys": r.ru_stime, "maxrss_kb": r.ru_maxrss,
                   "spawn_wall": spawn_wait[0]}, f)
atexit.register(dump)
sys.argv[0] = "joblet"
runpy.run_module("joblet", run_name="__main__", alter_sys=True)
"""


def joblet_argv(rusage_file: Path, *args: str) -> list[str]:
    """``python -m joblet ARGS`` that writes its own CPU time (user, sys: every thread, no child) and
    peak RSS to ``rusage_file`` at exit — the figure a loaded, shared machine does not distort —
    and the wall time its ``os.posix_spawnp`` calls took (``spawn_wall``, seconds)."""
    return [sys.executable, "-c", RUSAGE_WRAPPER, str(rusage_file), *args]
