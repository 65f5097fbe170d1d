"""Every real client, every path: each client, from its own pinned environment, against a real
``joblet server`` with the kubeconfig it wrote, unmodified (the table in README.md).

Each scenario creates an Indexed Job and waits for it through the client's own watch/wait,
reads the pods' logs, lists by label, resumes a suspended Job by patch, creates and lists a
CronJob, and deletes with each propagation policy (Orphan keeps the pods, Foreground removes
them before the Job goes, Background for the CronJob).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from support.clients import SCENARIOS, client_env, run_scenario

NODE_CLIENTS = [("1.4.0", "node"), ("2.0.1", "node_modules/node/bin/node")]
PYTHON_CLIENTS = [
    ("kubernetes", "37.0.2", "kubernetes_client.py"),
    ("kubernetes_asyncio", "36.1.0", "kubernetes_asyncio_client.py"),
    ("lightkube", "1.0.1", "lightkube_client.py"),
    ("pykube-ng", "23.6.0", "pykube_client.py"),
    ("kr8s", "0.20.15", "kr8s_client.py"),
]


def check(prefix: str, out: dict[str, Any]) -> None:
    assert out["pods"] == 3
    assert out["logs"] == ["index=0", "index=1", "index=2"]
    assert out["listed"] == [f"{prefix}-idx"]
    assert out["suspended_pods"] == 0 and out["resumed_complete"] is True
    assert out["cronjobs"] == [f"{prefix}-cron"] and out["cronjobs_after"] == []
    assert out["orphaned_pods"] == 3, "Orphan keeps the pods"
    assert out["foreground_pods_left"] == 0, "Foreground removes the pods before the Job"


@pytest.mark.parametrize(("name", "version", "script"), PYTHON_CLIENTS, ids=[c[0] for c in PYTHON_CLIENTS])
def test_python_client(name: str, version: str, script: str, joblet_server: Path, tmp_path: Path) -> None:
    env = client_env(name, version)
    prefix = name.replace("_", "-").lower()
    out = run_scenario([str(env / "venv" / "bin" / "python"), script, prefix], joblet_server, tmp_path / "home")
    check(prefix, out)
    if "resumed_event" in out:  # the official client's watch resumed from a resourceVersion
        assert out["resumed_event"] == "MODIFIED"
    if "got_by_name" in out:  # kr8s.get(kind, name) sends a trailing empty field-selector term
        assert out["got_by_name"] == f"{prefix}-idx"


@pytest.mark.parametrize(("version", "node"), NODE_CLIENTS, ids=[f"client-node-{v}" for v, _ in NODE_CLIENTS])
def test_client_node(version: str, node: str, joblet_server: Path, tmp_path: Path) -> None:
    """@kubernetes/client-node from npm; 2.x under the Node 22 build that the npm ``node`` package ships."""
    env = client_env("client-node", version)
    node_bin = node if node == "node" else str(env / node)
    prefix = f"node{version.split('.')[0]}"
    # ESM resolves '@kubernetes/client-node' next to the script: it runs from the env's dir
    shutil.copyfile(SCENARIOS / "client_node.mjs", env / "scenario.mjs")
    out = run_scenario([node_bin, str(env / "scenario.mjs"), prefix], joblet_server, tmp_path / "home")
    check(prefix, out)


def test_kopf_operator_on_jobs(joblet_server: Path, tmp_path: Path) -> None:
    """kopf 1.45: an operator's create/field/delete handlers on Jobs, its finalizer honoured on delete."""
    env = client_env("kopf", "1.45.2")
    out = run_scenario([str(env / "venv" / "bin" / "python"), "kopf_operator.py", "kopf"], joblet_server,
                       tmp_path / "home")
    print(f"kopf: {out['refused_patches']} optimistic patches refused (resourceVersion test failed)")
    assert out["created"] == ["kopf-idx", "kopf-susp"]
    assert out["succeeded"] == {"kopf-idx": 3, "kopf-susp": 1}
    assert out["deleted"] == ["kopf-idx", "kopf-susp"], "the delete handlers ran, then kopf let the Jobs go"
    assert out["handled_label"] == "yes" and any(f.startswith("kopf.zalando.org/") for f in out["finalizers"])


def test_dagster_execute_k8s_job(joblet_server: Path, tmp_path: Path) -> None:
    """dagster-k8s 0.29: ``execute_k8s_job`` runs an Indexed Job to success, streaming its pod's log."""
    env = client_env("dagster-k8s", "0.29.27")
    out = run_scenario([str(env / "venv" / "bin" / "python"), "dagster_k8s_op.py", "dagster"], joblet_server,
                       tmp_path / "home", {"DAGSTER_HOME": str(tmp_path / "dagster")})
    assert out["dagster_success"] is True
    assert out["succeeded"] == 3 and "Complete" in out["conditions"]
    assert out["streamed"] and all(line.startswith("hello from dagster index=") for line in out["streamed"])


def test_prefect_kubernetes_job(joblet_server: Path, tmp_path: Path) -> None:
    """prefect-kubernetes 0.8: KubernetesJob blocks and the job tasks (as the blocks call them)."""
    env = client_env("prefect-kubernetes", "0.8.0")
    out = run_scenario([str(env / "venv" / "bin" / "python"), "prefect_kubernetes_job.py", "prefect"],
                       joblet_server, tmp_path / "home", {"PREFECT_HOME": str(tmp_path / "prefect")})
    assert out["listed"] == ["prefect-idx"]
    assert out["logs"] == ["index=0", "index=1", "index=2"]
    assert out["foreground_pods_left"] == 0
    assert out["suspended_pods"] == 0 and out["resumed_complete"] is True
    assert out["orphaned_pods"] == 1
