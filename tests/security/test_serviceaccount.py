"""A pod's service-account token is a real, least-privilege credential (issue "Secure by
default", scope 3), end to end: a real ``joblet server`` (HTTPS, admin token in D/kubeconfig,
RBAC), real kubectl, and a Job whose pod uses the official client's unmodified
``config.load_incluster_config()``. With a Role allowing only ``get`` on jobs bound to its
ServiceAccount, the pod reads its own Job and is refused (403) when it tries to create a Pod."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from support.process import joblet_server

KUBECTL = Path("/usr/bin/kubectl")
pytestmark = pytest.mark.skipif(not KUBECTL.exists(), reason="needs kubectl at /usr/bin/kubectl")

IN_POD = """
from kubernetes import client, config
config.load_incluster_config()
job = client.BatchV1Api().read_namespaced_job("reader", "default")
print("read", job.metadata.name, flush=True)
pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "sneaky"},
       "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["true"]}]}}
try:
    client.CoreV1Api().create_namespaced_pod("default", pod)
    print("create allowed", flush=True)
except client.ApiException as err:
    print("create", err.status, flush=True)
"""


@dataclass
class Server:
    url: str
    kubeconfig: Path
    home: Path


def kubectl(server: Server, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(KUBECTL), "--kubeconfig", str(server.kubeconfig), *args], input=stdin,
                            capture_output=True, text=True, timeout=180,
                            env={"HOME": str(server.home), "PATH": "/usr/bin:/bin"})
    if check:
        assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr[-2000:]}"
    return result


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("sa-security")
    with joblet_server(tmp / "data", log=tmp / "server.log", timeout=60) as server:
        running = Server(server.url, server.kubeconfig, tmp / "home")
        config = yaml.safe_load(running.kubeconfig.read_text())
        cluster = config["clusters"][0]["cluster"]
        user = config["users"][0]["user"]
        assert str(cluster.get("server", "")).startswith("https://") and cluster.get("certificate-authority-data")
        assert user.get("token")
        yield running


def wait_finished(server: Server, job: str, timeout: float = 150) -> str:
    """The Job's final condition type (Complete or Failed), polling as ``kubectl wait`` would."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = json.loads(kubectl(server, "get", f"job/{job}", "-o", "json").stdout).get("status") or {}
        for cond in status.get("conditions") or []:
            if cond["type"] in ("Complete", "Failed") and cond["status"] == "True":
                return str(cond["type"])
        time.sleep(0.5)
    return "unfinished"


def test_pod_token_reads_its_job_and_is_forbidden_to_create_pods(server: Server) -> None:
    manifests = [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "reader", "namespace": "default"}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": "job-getter", "namespace": "default"},
         "rules": [{"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "reader-gets-jobs", "namespace": "default"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "job-getter"},
         "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": "default"}]},
        {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "reader", "namespace": "default"},
         "spec": {"backoffLimit": 0, "template": {"spec": {
             "serviceAccountName": "reader", "restartPolicy": "Never",
             "containers": [{"name": "main", "image": "python", "command": [sys.executable, "-c", IN_POD]}]}}}},
    ]
    kubectl(server, "apply", "-f", "-", stdin="\n---\n".join(yaml.safe_dump(m) for m in manifests))
    finished = wait_finished(server, "reader")
    logs = kubectl(server, "logs", "job/reader", check=False).stdout
    assert finished == "Complete", f"job ended {finished}:\n{logs}"
    assert "read reader" in logs, logs
    assert "create 403" in logs, logs
    job = json.loads(kubectl(server, "get", "job/reader", "-o", "json").stdout)
    assert job["status"].get("succeeded") == 1, job["status"]
    # the pod ran as its ServiceAccount with a projected, bound token
    pod = json.loads(kubectl(server, "get", "pods", "-l", "job-name=reader", "-o", "json").stdout)["items"][0]
    assert pod["spec"]["serviceAccountName"] == "reader"
    assert any(v["name"].startswith("kube-api-access-") for v in pod["spec"]["volumes"])
    # the cluster-wide root CA is published where the token volume projects it from
    cm = json.loads(kubectl(server, "get", "configmap", "kube-root-ca.crt", "-o", "json").stdout)
    assert cm["data"]["ca.crt"].startswith("-----BEGIN CERTIFICATE-----")


def test_kubectl_create_token_authenticates_as_the_service_account(server: Server) -> None:
    kubectl(server, "create", "serviceaccount", "whoami", check=False)
    token = kubectl(server, "create", "token", "whoami", "--duration", "10m").stdout.strip()
    config = yaml.safe_load(server.kubeconfig.read_text())
    config["users"][0]["user"] = {"token": token}
    as_sa = Server(server.url, server.kubeconfig.with_name("sa-kubeconfig"), server.home)
    as_sa.kubeconfig.write_text(yaml.safe_dump(config))
    as_sa.kubeconfig.chmod(0o600)
    denied = kubectl(as_sa, "get", "secrets", check=False)
    assert denied.returncode != 0
    assert 'User "system:serviceaccount:default:whoami" cannot list resource "secrets"' in denied.stderr
