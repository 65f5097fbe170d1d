"""SEC-01 (no credentials, no API), SEC-07 (no token on argv), client certificates and
upstream's 403 messages, against a real ``joblet server`` over HTTPS."""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from conftest import SecServer
from joblet.clock import RealClock
from joblet.kubeconfig import load_access, write_kubeconfig
from joblet.security.pki import issue_client_cert
from joblet.security.tokens import TokenStore
from support.tls import kubeconfig_http

POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "{name}"},
       "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox", "command": ["true"]}]}}


def pod(name: str) -> dict[str, object]:
    return json.loads(json.dumps(POD).replace("{name}", name))  # type: ignore[no-any-return]


def ca_context(server: SecServer) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(server.ca_file))


def pod_names(server: SecServer) -> list[str]:
    with kubeconfig_http(server.kubeconfig) as http:
        return [p["metadata"]["name"] for p in http.get("/api/v1/namespaces/default/pods").json()["items"]]


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("curl"), reason="needs root (to become nobody) and curl")
def test_sec01_another_local_user_gets_401_and_no_pod_runs(sec_server: SecServer, tmp_path: Path) -> None:
    body = tmp_path / "pod.json"
    body.write_text(json.dumps(pod("lpe")))
    body.chmod(0o644)
    tmp_path.chmod(0o755)
    command = (f"curl -sk -w '\\n%{{http_code}}' -X POST -H 'Content-Type: application/json' "
               f"--data @{body} {sec_server.url}/api/v1/namespaces/default/pods")
    result = subprocess.run(["su", "-s", "/bin/sh", "nobody", "-c", command], capture_output=True, text=True,
                            timeout=30)
    *answer, code = result.stdout.strip().splitlines()
    assert code == "401", result.stdout + result.stderr
    assert json.loads("".join(answer))["reason"] == "Unauthorized"
    # nobody cannot read the credentials either
    read = subprocess.run(["su", "-s", "/bin/sh", "nobody", "-c", f"cat {sec_server.kubeconfig}"],
                          capture_output=True, text=True, timeout=30)
    assert read.returncode != 0 and "token" not in read.stdout
    assert "lpe" not in pod_names(sec_server)
    # the admin token of the kubeconfig works
    with kubeconfig_http(sec_server.kubeconfig) as http:
        assert http.post("/api/v1/namespaces/default/pods", json=pod("admin-pod")).status_code == 201
    assert "admin-pod" in pod_names(sec_server)


def test_only_health_and_version_are_anonymous(sec_server: SecServer) -> None:
    with httpx.Client(base_url=sec_server.url, verify=ca_context(sec_server), timeout=10) as http:
        for path in ("/healthz", "/livez", "/readyz", "/version"):
            assert http.get(path).status_code == 200, path
        for path in ("/api", "/apis", "/api/v1/namespaces", "/metrics", "/openapi/v2", "/ui", "/nope"):
            answer = http.get(path)
            assert answer.status_code == 401, (path, answer.status_code)


def test_sec07_the_token_is_not_on_any_command_line(sec_server: SecServer) -> None:
    cmdline = Path(f"/proc/{sec_server.proc.pid}/cmdline").read_bytes()
    assert sec_server.token.encode() not in cmdline
    assert load_access(sec_server.kubeconfig).token == sec_server.token  # JOBLET_TOKEN became the admin token
    stored = (sec_server.data_dir / "tokens.json").read_text()
    assert sec_server.token not in stored  # hashed


def test_sec07_token_on_argv_is_refused(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "joblet", "server", "--data-dir", str(tmp_path / "d"),
                             "--token", "s3cret"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "--token-file" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "d").exists()


def test_a_user_without_rights_gets_upstreams_403(sec_server: SecServer) -> None:
    token = TokenStore(sec_server.data_dir).create("alice-sec", ("dev",), replace=True)
    with httpx.Client(base_url=sec_server.url, verify=ca_context(sec_server), timeout=10,
                      headers={"Authorization": f"Bearer {token}"}) as http:
        job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"}, "spec": {"template": {"spec": {
            "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}
        denied = http.post("/apis/batch/v1/namespaces/default/jobs", json=job)
        assert denied.status_code == 403
        assert denied.json()["message"] == ('jobs.batch is forbidden: User "alice-sec" cannot create resource "jobs" '
                                            'in API group "batch" in the namespace "default"')
        assert denied.json()["details"] == {"group": "batch", "kind": "jobs"}
        nodes = http.get("/api/v1/nodes/n1")
        assert nodes.json()["message"] == ('nodes "n1" is forbidden: User "alice-sec" cannot get resource "nodes" '
                                           'in API group "" at the cluster scope')
        log = http.get("/api/v1/namespaces/default/pods/p/log")
        assert log.json()["message"] == ('pods "p" is forbidden: User "alice-sec" cannot get resource "pods/log" '
                                         'in API group "" in the namespace "default"')
        assert http.get("/metrics").json()["message"] == 'forbidden: User "alice-sec" cannot get path "/metrics"'


def cert_context(server: SecServer, tmp_path: Path, user: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    ctx.load_cert_chain(str(tmp_path / f"{user}.crt"), str(tmp_path / f"{user}.key"))
    return ctx


def test_client_certificate_users(sec_server: SecServer, tmp_path: Path) -> None:
    """--client-ca: CN is the user, O the groups, as kube-apiserver; kubectl and httpx both present it."""
    now = RealClock().now()
    admin_cert, admin_key = issue_client_cert(sec_server.data_dir, "carol", ("system:masters",), now)
    bob_cert, bob_key = issue_client_cert(sec_server.data_dir, "bob", ("dev",), now)
    ca = sec_server.ca_file.read_bytes()
    for name, cert, key in (("carol", admin_cert, admin_key), ("bob", bob_cert, bob_key)):
        (tmp_path / f"{name}.crt").write_bytes(cert)
        (tmp_path / f"{name}.key").write_bytes(key)
    with httpx.Client(base_url=sec_server.url, timeout=10, verify=cert_context(sec_server, tmp_path, "carol")) as http:
        assert http.get("/api/v1/namespaces").status_code == 200
    with httpx.Client(base_url=sec_server.url, timeout=10, verify=cert_context(sec_server, tmp_path, "bob")) as http:
        denied = http.get("/api/v1/namespaces")
        assert denied.status_code == 403 and 'User "bob" cannot list resource "namespaces"' in denied.json()["message"]
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return
    config = write_kubeconfig(tmp_path / "kc", sec_server.url, ca_data=ca)
    text = config.read_text().replace("user: {}", "user:\n    client-certificate: carol.crt\n    client-key: carol.key")
    config.write_text(text)
    result = subprocess.run([kubectl, "--kubeconfig", str(config), "get", "namespaces", "-o", "name"],
                            capture_output=True, text=True, timeout=60, env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert "namespace/default" in result.stdout.split()
    # and joblet's own kubeconfig reader presents it too
    access = load_access(config)
    assert access.client_cert_data == admin_cert and access.token is None
