"""``joblet server --encryption-key-file``: what kubectl stores as a Secret is not on disk in clear.

Why end to end: the promise is about a real server's data dir. The real ``joblet server`` runs
as a subprocess, the real kubectl creates and reads the Secret through the kubeconfig the server
wrote, and the test reads a copy of ``joblet.db`` and its WAL taken while the server runs.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from joblet.security.encryption import generate_key_line

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")
VALUE = "correct-horse-battery-staple-42"


class Server:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.data_dir = tmp / "data"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.proc: subprocess.Popen[bytes] | None = None

    def argv(self, key_file: Path | None) -> list[str]:
        extra = ["--encryption-key-file", str(key_file)] if key_file else []
        return [sys.executable, "-m", "joblet.cli.main", "server", "--data-dir", str(self.data_dir),
                "--port", str(self.port), "--components", "api", *extra]

    def start(self, key_file: Path | None) -> None:
        self.proc = subprocess.Popen(self.argv(key_file), stdout=subprocess.DEVNULL,
                                     stderr=open(self.tmp / "server.err", "wb"))  # noqa: SIM115
        end = time.monotonic() + 30
        while self.kubectl("get", "--raw", "/version", check=False).returncode != 0:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited: {(self.tmp / 'server.err').read_text()[-2000:]}")
            if time.monotonic() > end:
                raise AssertionError("server did not come up")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(15)

    def kubectl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        assert KUBECTL is not None
        kubeconfig = self.data_dir / "kubeconfig"
        if not kubeconfig.exists():
            return subprocess.CompletedProcess(args, 1, "", "no kubeconfig yet")
        result = subprocess.run([KUBECTL, "--kubeconfig", str(kubeconfig), *args], capture_output=True, text=True,
                                timeout=60, env={"HOME": str(self.tmp / "home"), "PATH": "/usr/bin:/bin"})
        if check:
            assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}"
        return result


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(tmp_path)
    try:
        yield srv
    finally:
        srv.stop()


def test_secret_is_encrypted_on_disk_and_needs_the_key_to_start(server: Server, tmp_path: Path) -> None:
    key_file = tmp_path / "encryption.key"
    old_umask = os.umask(0o077)
    try:
        key_file.write_text(generate_key_line() + "\n")
    finally:
        os.umask(old_umask)
    server.start(key_file)
    server.kubectl("create", "secret", "generic", "db-pass", f"--from-literal=password={VALUE}")
    server.kubectl("create", "configmap", "plain", "--from-literal=visible=configmap-in-clear")

    copy = tmp_path / "copy"
    copy.mkdir()
    blob = b""
    for name in ("joblet.db", "joblet.db-wal"):
        if (server.data_dir / name).exists():
            shutil.copy(server.data_dir / name, copy / name)
            blob += (copy / name).read_bytes()
    assert b"configmap-in-clear" in blob  # the copy holds the objects...
    assert b"k8s:enc:aesgcm:v1:key1:" in blob  # ...and the Secret, encrypted
    assert VALUE.encode() not in blob
    assert base64.b64encode(VALUE.encode()) not in blob

    server.stop()
    server.start(key_file)
    got = server.kubectl("get", "secret", "db-pass", "-o", "jsonpath={.data.password}").stdout
    assert base64.b64decode(got).decode() == VALUE
    server.stop()

    refused = subprocess.run(server.argv(None), capture_output=True, text=True, timeout=60)
    assert refused.returncode == 3  # an environment problem (the CLI's exit code 3), not a failed Job
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1, refused.stderr
    assert lines[0].startswith("error: ") and "--encryption-key-file" in lines[0]
    assert "aesgcm key 'key1'" in lines[0]
