"""Pods on a real Ray cluster (head + worker, both on this machine) through a real
``joblet server --ray-address`` and the real kubectl: Nodes mirror Ray's nodes, Jobs run
their pods as Ray tasks pinned to the node the scheduler chose, with env/volumes, live logs,
graceful deletion, podFailurePolicy, and the loss of a Ray node."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from typing import Any

import pytest
from conftest import RaySetup as RaySetupT

pytestmark = [pytest.mark.ray, pytest.mark.timeout(600)]

Obj = dict[str, Any]
RAY_POD = {"tolerations": [{"key": "joblet.dev/engine", "operator": "Equal", "value": "ray",
                            "effect": "NoSchedule"}],
           "nodeSelector": {"joblet.dev/engine": "ray"}}


def until(check: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def get(setup: RaySetupT, *args: str) -> Obj:
    return dict(json.loads(setup.kubectl("get", *args, "-o", "json").stdout))


def apply(setup: RaySetupT, obj: Obj) -> None:
    setup.kubectl("apply", "-f", "-", stdin=json.dumps(obj))


def job(name: str, command: str, **spec: Any) -> Obj:
    pod_spec = spec.pop("pod", {})
    container = {"name": "main", "image": "busybox", "command": ["sh", "-c", command],
                 **spec.pop("container", {})}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"backoffLimit": 0, **spec, "template": {"spec": {
                "restartPolicy": "Never", **RAY_POD, **pod_spec, "containers": [container]}}}}


def job_condition(setup: RaySetupT, name: str) -> str | None:
    conds = (get(setup, "job", name).get("status") or {}).get("conditions") or []
    done = [c["type"] for c in conds if c["type"] in ("Complete", "Failed") and c["status"] == "True"]
    return done[0] if done else None


def pods_of(setup: RaySetupT, job_name: str) -> list[Obj]:
    return list(get(setup, "pods", "-l", f"batch.kubernetes.io/job-name={job_name}")["items"])


def node(setup: RaySetupT, ray_id: str) -> str:
    return f"ray-{ray_id[:12]}"


def test_every_ray_node_is_a_node_with_labels_capacity_and_taint(ray_setup: RaySetupT) -> None:
    for ray_id in (ray_setup.head_id, ray_setup.worker_id):
        n = until(lambda rid=ray_id: ray_setup.kubectl("get", "node", node(ray_setup, rid), "-o", "json",
                                                        check=False).stdout, what="Node")
        obj = json.loads(n)
        labels = obj["metadata"]["labels"]
        assert labels["joblet.dev/engine"] == "ray"
        assert labels["ray.io/node-id"] == ray_id
        assert labels["kubernetes.io/hostname"]
        assert obj["spec"]["taints"] == [{"key": "joblet.dev/engine", "value": "ray", "effect": "NoSchedule"}]
        capacity = obj["status"]["capacity"]
        assert capacity["cpu"] == "1"
        assert int(capacity["memory"]) > 0
        assert obj["status"]["allocatable"] == capacity
        assert ("ray.io/worker" in capacity) == (ray_id == ray_setup.worker_id)
        ready = next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")
        assert ready["status"] == "True"


def test_indexed_job_runs_across_both_ray_nodes(ray_setup: RaySetupT) -> None:
    # one CPU per pod, one CPU per Ray node: two pods at a time can only run on two nodes
    apply(ray_setup, job("indexed", "echo index=$JOB_COMPLETION_INDEX; sleep 1", completions=4, parallelism=2,
                         completionMode="Indexed",
                         container={"resources": {"requests": {"cpu": "1"}}}))
    until(lambda: job_condition(ray_setup, "indexed"), timeout=120, what="Job finished")
    assert job_condition(ray_setup, "indexed") == "Complete"
    pods = pods_of(ray_setup, "indexed")
    nodes = {p["spec"]["nodeName"] for p in pods}
    assert nodes == {node(ray_setup, ray_setup.head_id), node(ray_setup, ray_setup.worker_id)}
    for p in pods:
        index = p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
        out = ray_setup.kubectl("logs", p["metadata"]["name"]).stdout
        assert out == f"index={index}\n"


def test_secrets_and_configmaps_in_env_and_volumes(ray_setup: RaySetupT) -> None:
    apply(ray_setup, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
                      "stringData": {"password": "s3cret"}})
    apply(ray_setup, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"},
                      "data": {"mode": "fast", "file.txt": "from-configmap\n"}})
    command = ("echo env=$PASSWORD/$MODE; cat /etc/creds/password; echo; cat /etc/settings/file.txt; "
               "echo scratch > /scratch/x; cat /scratch/x; pwd")
    apply(ray_setup, job("config", command, pod={
        "nodeSelector": {"ray.io/node-id": ray_setup.worker_id},
        "volumes": [{"name": "creds", "secret": {"secretName": "creds"}},
                    {"name": "settings", "configMap": {"name": "settings"}},
                    {"name": "scratch", "emptyDir": {}}]},
        container={"workingDir": "/etc/settings",
                   "env": [{"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
                           {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "mode"}}}],
                   "volumeMounts": [{"name": "creds", "mountPath": "/etc/creds", "readOnly": True},
                                    {"name": "settings", "mountPath": "/etc/settings"},
                                    {"name": "scratch", "mountPath": "/scratch"}]}))
    until(lambda: job_condition(ray_setup, "config"), timeout=90, what="Job finished")
    (pod,) = pods_of(ray_setup, "config")
    out = ray_setup.kubectl("logs", pod["metadata"]["name"]).stdout
    assert job_condition(ray_setup, "config") == "Complete", out
    assert pod["spec"]["nodeName"] == node(ray_setup, ray_setup.worker_id)
    assert out == "env=s3cret/fast\ns3cret\nfrom-configmap\nscratch\n/etc/settings\n"
