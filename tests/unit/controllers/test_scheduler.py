"""Table tests for the scheduler's pure decisions."""

from __future__ import annotations

from typing import Any

import pytest

from joblet.controllers.scheduler import NodeUsage, Resources, choose_node, pod_requests

Obj = dict[str, Any]


def node(name: str, cpu: str = "2", memory: str = "4Gi", pods: str = "110", ready: bool = True,
         labels: dict[str, str] | None = None, taints: list[Obj] | None = None) -> Obj:
    return {"metadata": {"name": name, "labels": labels or {}},
            "spec": {"taints": taints or []},
            "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": pods},
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def pod(cpu: str | None = None, memory: str | None = None, node_selector: dict[str, str] | None = None,
        tolerations: list[Obj] | None = None, affinity: Obj | None = None) -> Obj:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    spec: Obj = {"containers": [{"name": "c", "resources": {"requests": requests}}]}
    if node_selector:
        spec["nodeSelector"] = node_selector
    if tolerations:
        spec["tolerations"] = tolerations
    if affinity:
        spec["affinity"] = affinity
    return {"metadata": {"name": "p", "namespace": "default", "uid": "u1"}, "spec": spec}


def nothing_used(_: str) -> Resources:
    return Resources()


CASES = [
    ("fits-empty-node", pod(cpu="500m"), [node("a")], nothing_used, "a", ""),
    ("best-effort-fits", pod(), [node("a")], nothing_used, "a", ""),
    ("no-nodes", pod(), [], nothing_used, None, "0/0 nodes are available: no nodes registered."),
    ("insufficient-cpu", pod(cpu="3"), [node("a")], nothing_used, None,
     "0/1 nodes are available: 1 Insufficient cpu."),
    ("insufficient-memory-after-usage", pod(memory="1Gi"), [node("a", memory="2Gi")],
     lambda n: Resources(0, int(1.5 * 2**30), 1), None, "0/1 nodes are available: 1 Insufficient memory."),
    ("too-many-pods", pod(), [node("a", pods="1")], lambda n: Resources(0, 0, 1), None,
     "0/1 nodes are available: 1 Too many pods."),
    ("not-ready-skipped", pod(), [node("a", ready=False), node("b")], nothing_used, "b", ""),
    ("node-selector", pod(node_selector={"disk": "ssd"}), [node("a"), node("b", labels={"disk": "ssd"})],
     nothing_used, "b", ""),
    ("node-selector-nowhere", pod(node_selector={"disk": "ssd"}), [node("a")], nothing_used, None,
     "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."),
    ("required-affinity-in", pod(affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z2"]}]}]}}}),
     [node("a", labels={"zone": "z1"}), node("b", labels={"zone": "z2"})], nothing_used, "b", ""),
    ("untolerated-taint", pod(), [node("a", taints=[{"key": "gpu", "value": "yes", "effect": "NoSchedule"}])],
     nothing_used, None, "0/1 nodes are available: 1 node(s) had untolerated taint."),
    ("tolerated-taint", pod(tolerations=[{"key": "gpu", "operator": "Exists"}]),
     [node("a", taints=[{"key": "gpu", "value": "yes", "effect": "NoSchedule"}])], nothing_used, "a", ""),
    ("most-free-cpu-wins", pod(cpu="100m"), [node("a", cpu="2"), node("b", cpu="4")], nothing_used, "b", ""),
]


@pytest.mark.parametrize(("pod_", "nodes", "used", "want_node", "want_message"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_choose_node(pod_: Obj, nodes: list[Obj], used: Any, want_node: str | None, want_message: str) -> None:
    decision = choose_node(pod_, nodes, used)
    assert decision.node == want_node
    assert decision.message == want_message


def test_requests_take_the_larger_of_containers_and_init_containers() -> None:
    p = pod(cpu="200m", memory="100Mi")
    p["spec"]["containers"].append({"name": "d", "resources": {"requests": {"cpu": "300m"}}})
    p["spec"]["initContainers"] = [{"name": "i", "resources": {"requests": {"cpu": "1", "memory": "50Mi"}}}]
    assert pod_requests(p) == Resources(1000, 100 * 2**20, 1)


def test_node_usage_is_released_when_the_pod_finishes() -> None:
    usage = NodeUsage()
    p = pod(cpu="1")
    p["spec"]["nodeName"] = "a"
    usage.observe(p)
    assert usage.used("a") == Resources(1000, 0, 1)
    done = {**p, "status": {"phase": "Succeeded"}}
    usage.observe(done)
    assert usage.used("a") == Resources()
