"""Which server ``joblet run`` talks to (ux-audit B3, M8, M7): one rule, printed on the first
line. An exported ``KUBECONFIG`` naming a real cluster is never used; one naming a joblet
server is; an explicit ``--data-dir`` wins over the environment; a named server that does
not answer is exit 3; two runs on one data dir share the first one's control plane."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cli_support import cli_env, job_manifest, joblet, joblet_server, server_http

from joblet.clock import RealClock
from joblet.datadir import is_in_use
from joblet.kubeconfig import write_kubeconfig
from joblet.security.pki import ensure_serving_cert
from support.process import free_port


class _Cluster(BaseHTTPRequestHandler):
    """Answers like a real kube-apiserver's anonymous /version, and records every request
    (with the credentials it carried)."""

    seen: list[str] = []
    authorizations: list[str] = []

    def do_GET(self) -> None:
        self.seen.append(f"GET {self.path}")
        self.authorizations.append(self.headers.get("Authorization", ""))
        body = json.dumps({"major": "1", "minor": "30", "gitVersion": "v1.30.2", "platform": "linux/amd64"}).encode()
        self.send_response(200 if self.path == "/version" else 403)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        self.seen.append(f"POST {self.path}")
        self.authorizations.append(self.headers.get("Authorization", ""))
        self.send_response(403)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def real_cluster(tmp_path: Path) -> Iterator[tuple[Path, list[str], list[str]]]:
    """A kubeconfig (CA + token) at an HTTPS server that is not joblet (stands for staging),
    its request log and the Authorization header of each request."""
    seen: list[str] = []
    authorizations: list[str] = []
    handler = type("Cluster", (_Cluster,), {"seen": seen, "authorizations": authorizations})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    pki = ensure_serving_cert(tmp_path / "staging-pki", ["127.0.0.1"], RealClock().now())
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(pki.cert, pki.key)
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    path = write_kubeconfig(tmp_path / "staging.kubeconfig", f"https://127.0.0.1:{server.server_address[1]}",
                            token="staging-secret", ca_data=pki.ca.read_bytes())
    try:
        yield path, seen, authorizations
    finally:
        server.shutdown()


@pytest.fixture
def hello(tmp_path: Path) -> Path:
    path = tmp_path / "hello.yaml"
    path.write_text(job_manifest("hello", "echo hello from $HOSTNAME"))
    return path


def test_kubeconfig_at_a_real_cluster_is_not_used_and_the_target_is_named(
        tmp_path: Path, real_cluster: tuple[Path, list[str], list[str]], hello: Path) -> None:
    kubeconfig, seen, authorizations = real_cluster
    env = cli_env(tmp_path, KUBECONFIG=str(kubeconfig))
    result = joblet(env, "run", "-f", str(hello))
    assert result.returncode == 0, result.stdout + result.stderr
    default_dir = tmp_path / "xdg" / "joblet"
    assert result.stdout.splitlines()[0] == f"embedded control plane in {default_dir}"
    assert "ignoring $KUBECONFIG" in result.stderr and "is not a joblet server" in result.stderr
    assert seen and not [r for r in seen if not r.startswith("GET /version")], seen  # asked, nothing submitted
    assert authorizations and not any(authorizations), authorizations  # its token was never sent
    assert "hello from hello-" in result.stdout


def test_an_explicit_data_dir_wins_over_a_joblet_kubeconfig(tmp_path: Path, hello: Path) -> None:
    env = cli_env(tmp_path)
    with joblet_server(tmp_path / "server", env, tmp_path / "server.log"):
        env_k = cli_env(tmp_path, KUBECONFIG=str(tmp_path / "server" / "kubeconfig"))
        own = tmp_path / "mine"
        result = joblet(env_k, "run", "-f", str(hello), "--data-dir", str(own))
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.splitlines()[0] == f"embedded control plane in {own}"
        with server_http(tmp_path / "server") as http:
            jobs = http.get("/apis/batch/v1/namespaces/default/jobs").json()
        assert jobs["items"] == []  # the server named by $KUBECONFIG got nothing


def test_kubeconfig_at_a_joblet_server_is_used_and_named(tmp_path: Path, hello: Path) -> None:
    env = cli_env(tmp_path)
    with joblet_server(tmp_path / "server", env, tmp_path / "server.log") as url:
        env_k = cli_env(tmp_path, KUBECONFIG=str(tmp_path / "server" / "kubeconfig"))
        result = joblet(env_k, "run", "-f", str(hello))
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.splitlines()[0] == f"using joblet server {url} (from $KUBECONFIG)"
        with server_http(tmp_path / "server") as http:
            job = http.get("/apis/batch/v1/namespaces/default/jobs/hello").json()
        assert job["status"]["succeeded"] == 1


def test_version_says_joblet() -> None:
    from joblet.api.discovery import version_info
    from joblet.cli.connect import is_joblet_version

    assert is_joblet_version(version_info("33"))
    assert not is_joblet_version({"major": "1", "minor": "30", "gitVersion": "v1.30.2"})


def test_a_named_server_that_does_not_answer_is_exit_3(tmp_path: Path, hello: Path) -> None:
    path = write_kubeconfig(tmp_path / "gone.kubeconfig", f"http://127.0.0.1:{free_port()}")
    result = joblet(cli_env(tmp_path), "run", "-f", str(hello), "--kubeconfig", str(path))
    assert result.returncode == 3, result.stdout + result.stderr
    assert "does not answer" in result.stderr and "Traceback" not in result.stderr


def test_a_second_run_on_a_busy_data_dir_attaches_to_the_first(tmp_path: Path, hello: Path) -> None:
    env = cli_env(tmp_path)
    data = tmp_path / "d"
    slow = tmp_path / "slow.yaml"
    slow.write_text(job_manifest("slow", "sleep 4; echo slow done"))
    first = subprocess.Popen([sys.executable, "-m", "joblet", "run", "-f", str(slow), "--data-dir", str(data)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        # Once the first run holds the data dir (starting or serving: both cases must attach).
        # A fixed 0.3 s was not enough on a loaded machine: the second won the lock, ran the
        # control plane itself and the first attached to it (also right, but not this test).
        deadline = time.monotonic() + 30
        while not is_in_use(data):
            assert first.poll() is None and time.monotonic() < deadline, "the first run never took the data dir"
            time.sleep(0.02)
        second = joblet(env, "run", "-f", str(hello), "--data-dir", str(data))
        assert second.returncode == 0, second.stdout + second.stderr
        assert second.stdout.splitlines()[0].startswith("using joblet server https://127.0.0.1:")
        assert f"(from data dir {data})" in second.stdout.splitlines()[0]
        assert "hello from hello-" in second.stdout
        out, err = first.communicate(timeout=60)
        assert first.returncode == 0, out + err
        assert "slow done" in out
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()


def test_submit_errors_are_exit_2(tmp_path: Path) -> None:
    manifest = tmp_path / "ns.yaml"
    manifest.write_text(job_manifest("x", "true").replace("metadata: {name: x}", "metadata: {name: x, namespace: team-a}"))
    result = joblet(cli_env(tmp_path), "run", "-f", str(manifest), "--data-dir", str(tmp_path / "d"))
    assert result.returncode == 2, result.stdout + result.stderr
    assert 'namespaces "team-a" not found' in result.stderr
    help_text = joblet(cli_env(tmp_path), "run", "--help").stdout
    assert "Exit status" in help_text and "130/143" in help_text
