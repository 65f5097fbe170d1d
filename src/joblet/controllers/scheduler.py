"""The scheduler: binds each pending pod to a node it fits on.

A node fits when it is Ready and schedulable, its labels match the pod's nodeSelector and
required node affinity, its taints are tolerated, and its allocatable cpu, memory and pod
count cover the pod's requests on top of what the pods already bound there request. The
choice is a pure function (:func:`choose_node`); the reconciler keeps per-node usage
incrementally from pod events and retries unschedulable pods whenever room frees up.
A pod that fits nowhere stays Pending with ``PodScheduled=False/Unschedulable`` and a
``FailedScheduling`` event, as upstream.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from joblet.api.validation.core import parse_quantity
from joblet.client.events import EventRecorder
from joblet.client.interface import Client
from joblet.clock import Clock, rfc3339
from joblet.controllers.result import DONE, Result
from joblet.controllers.runtime import Controller, Informer, InformerFactory, QueueWorker, WorkQueue
from joblet.errors import Conflict, NotFound
from joblet.objects import key_of, split_key

Obj = dict[str, Any]
SCHEDULER_NAME = "default-scheduler"


@dataclass(frozen=True)
class Resources:
    cpu_milli: int = 0
    memory: int = 0
    pods: int = 0

    def __add__(self, other: Resources) -> Resources:
        return Resources(self.cpu_milli + other.cpu_milli, self.memory + other.memory, self.pods + other.pods)

    def __sub__(self, other: Resources) -> Resources:
        return Resources(self.cpu_milli - other.cpu_milli, self.memory - other.memory, self.pods - other.pods)


def _milli(value: Any) -> int:
    return int(parse_quantity(value) * 1000)


def pod_requests(pod: Obj) -> Resources:
    """Effective requests: max(sum of containers, largest init container), as upstream."""
    spec = pod.get("spec") or {}

    def req(c: Obj) -> tuple[int, int]:
        res = c.get("resources") or {}
        r = res.get("requests") or {}
        limits = res.get("limits") or {}
        cpu = r.get("cpu", limits.get("cpu"))
        mem = r.get("memory", limits.get("memory"))
        return (_milli(cpu) if cpu is not None else 0, int(parse_quantity(mem)) if mem is not None else 0)

    cpu = mem = 0
    for c in spec.get("containers") or []:
        c_cpu, c_mem = req(c)
        cpu, mem = cpu + c_cpu, mem + c_mem
    for c in spec.get("initContainers") or []:
        c_cpu, c_mem = req(c)
        cpu, mem = max(cpu, c_cpu), max(mem, c_mem)
    return Resources(cpu, mem, 1)


def node_allocatable(node: Obj) -> Resources:
    alloc = (node.get("status") or {}).get("allocatable") or (node.get("status") or {}).get("capacity") or {}
    return Resources(
        _milli(alloc.get("cpu", "0")),
        int(parse_quantity(alloc.get("memory", "0"))),
        int(parse_quantity(alloc.get("pods", "110"))),
    )


def node_ready(node: Obj) -> bool:
    if (node.get("spec") or {}).get("unschedulable"):
        return False
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False


def _match_expression(labels: dict[str, str], expr: Obj) -> bool:
    key, op, values = expr.get("key", ""), expr.get("operator", ""), list(expr.get("values") or [])
    present = key in labels
    if op == "In":
        return present and labels[key] in values
    if op == "NotIn":
        return not present or labels[key] not in values
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt") and present and values:
        try:
            have, want = int(labels[key]), int(values[0])
        except ValueError:
            return False
        return have > want if op == "Gt" else have < want
    return False


def labels_match(pod: Obj, node: Obj) -> bool:
    """nodeSelector and requiredDuringSchedulingIgnoredDuringExecution node affinity."""
    labels = (node.get("metadata") or {}).get("labels") or {}
    spec = pod.get("spec") or {}
    for k, v in (spec.get("nodeSelector") or {}).items():
        if labels.get(k) != v:
            return False
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    terms = required.get("nodeSelectorTerms") or []
    if terms:
        # Terms are ORed, expressions within a term ANDed.
        return any(all(_match_expression(labels, e) for e in t.get("matchExpressions") or []) for t in terms)
    return True


#: node conditions that taint a node NoSchedule while True (upstream's TaintNodesByCondition)
CONDITION_TAINTS = {"DiskPressure": "node.kubernetes.io/disk-pressure",
                    "MemoryPressure": "node.kubernetes.io/memory-pressure",
                    "PIDPressure": "node.kubernetes.io/pid-pressure"}


def node_taints(node: Obj) -> list[Obj]:
    """The node's taints, plus the NoSchedule taint of each pressure condition that is True."""
    taints = list((node.get("spec") or {}).get("taints") or [])
    for cond in (node.get("status") or {}).get("conditions") or []:
        key = CONDITION_TAINTS.get(str(cond.get("type")))
        if key and cond.get("status") == "True" and not any(t.get("key") == key for t in taints):
            taints.append({"key": key, "effect": "NoSchedule"})
    return taints


def tolerates(pod: Obj, node: Obj) -> bool:
    tolerations = (pod.get("spec") or {}).get("tolerations") or []
    for taint in node_taints(node):
        if taint.get("effect") not in ("NoSchedule", "NoExecute"):
            continue
        if not any(_tolerates(t, taint) for t in tolerations):
            return False
    return True


def _tolerates(toleration: Obj, taint: Obj) -> bool:
    if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
        return False
    if toleration.get("operator") == "Exists":
        return not toleration.get("key") or toleration["key"] == taint.get("key")
    return bool(toleration.get("key") == taint.get("key") and toleration.get("value", "") == taint.get("value", ""))


@dataclass(frozen=True)
class Decision:
    node: str | None
    #: upstream-style reason when no node fits, e.g. "0/1 nodes are available: 1 Insufficient cpu."
    message: str = ""


def choose_node(pod: Obj, nodes: list[Obj], used: Callable[[str], Resources]) -> Decision:
    """The node with the most free cpu among those the pod fits on (pure)."""
    need = pod_requests(pod)
    reasons: dict[str, int] = {}
    best: tuple[int, str] | None = None
    for node in nodes:
        name = node["metadata"]["name"]
        why: list[str] = []
        if not node_ready(node):
            why.append("node(s) were not ready or unschedulable")
        elif not labels_match(pod, node):
            why.append("node(s) didn't match Pod's node affinity/selector")
        elif not tolerates(pod, node):
            why.append("node(s) had untolerated taint")
        else:
            free = node_allocatable(node) - used(name)
            if need.cpu_milli > free.cpu_milli:
                why.append("Insufficient cpu")
            if need.memory > free.memory:
                why.append("Insufficient memory")
            if need.pods > free.pods:
                why.append("Too many pods")
            if not why and (best is None or free.cpu_milli > best[0]):
                best = (free.cpu_milli, name)
        for w in why:
            reasons[w] = reasons.get(w, 0) + 1
    if best is not None:
        return Decision(best[1])
    detail = ", ".join(f"{n} {w}" for w, n in sorted(reasons.items()))
    msg = f"0/{len(nodes)} nodes are available" + (f": {detail}." if detail else ": no nodes registered.")
    return Decision(None, msg)


def is_terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def wants_scheduling(pod: Obj) -> bool:
    spec = pod.get("spec") or {}
    return (not spec.get("nodeName") and not is_terminal(pod)
            and not (pod.get("metadata") or {}).get("deletionTimestamp")
            and spec.get("schedulerName", SCHEDULER_NAME) == SCHEDULER_NAME)


@dataclass
class NodeUsage:
    """Requests of the non-terminal pods bound to each node, kept incrementally."""

    by_pod: dict[str, tuple[str, Resources]] = field(default_factory=dict)
    by_node: dict[str, Resources] = field(default_factory=dict)

    def observe(self, pod: Obj) -> None:
        uid = pod["metadata"].get("uid", "")
        node = (pod.get("spec") or {}).get("nodeName")
        self.forget(uid)
        if node and not is_terminal(pod):
            req = pod_requests(pod)
            self.by_pod[uid] = (node, req)
            self.by_node[node] = self.by_node.get(node, Resources()) + req

    def forget(self, uid: str) -> bool:
        prev = self.by_pod.pop(uid, None)
        if prev is None:
            return False
        node, req = prev
        self.by_node[node] = self.by_node.get(node, Resources()) - req
        return True

    def used(self, node: str) -> Resources:
        return self.by_node.get(node, Resources())


class Scheduler(Controller):
    name = "scheduler"

    def __init__(self, client: Client, clock: Clock, informers: InformerFactory, recorder: EventRecorder) -> None:
        self.client = client
        self.clock = clock
        self.recorder = recorder
        self.pods = informers.get("pods")
        self.nodes = informers.get("nodes")
        self.queue = WorkQueue(clock, "scheduler")
        self.usage = NodeUsage()
        self.unschedulable: set[str] = set()
        self.pods.add_handler(self._pod_added, self._pod_updated, self._pod_deleted)
        self.nodes.add_handler(lambda n: self._retry_unschedulable(), lambda o, n: self._retry_unschedulable())

    def informers(self) -> list[Informer]:
        return [self.pods, self.nodes]

    def queue_workers(self) -> list[QueueWorker]:
        return [QueueWorker(self.queue, self.sync)]

    def _pod_added(self, pod: Obj) -> None:
        self.usage.observe(pod)
        if wants_scheduling(pod):
            self.queue.add(key_of(pod))

    def _pod_updated(self, old: Obj, pod: Obj) -> None:
        was_using = old["metadata"].get("uid") in self.usage.by_pod
        self.usage.observe(pod)
        if was_using and pod["metadata"].get("uid") not in self.usage.by_pod:
            self._retry_unschedulable()
        if wants_scheduling(pod):
            self.queue.add(key_of(pod))

    def _pod_deleted(self, pod: Obj) -> None:
        self.unschedulable.discard(key_of(pod))
        if self.usage.forget(pod["metadata"].get("uid", "")):
            self._retry_unschedulable()

    def _retry_unschedulable(self) -> None:
        for key in self.unschedulable:
            self.queue.add(key)
        self.unschedulable.clear()

    async def sync(self, key: str) -> Result:
        pod = self.pods.get(key)
        if pod is None or not wants_scheduling(pod):
            self.unschedulable.discard(key)
            return DONE
        decision = choose_node(pod, self.nodes.list(), self.usage.used)
        ns, name = split_key(key)
        if decision.node is None:
            self.unschedulable.add(key)
            await self._mark_unschedulable(pod, decision.message)
            return DONE
        try:
            bound = await self.client.patch("pods", name, {"spec": {"nodeName": decision.node}}, ns)
        except (NotFound, Conflict):
            return DONE
        self.usage.observe(bound)
        await self.recorder.event(pod, "Normal", "Scheduled",
                                  f"Successfully assigned {ns}/{name} to {decision.node}", component="default-scheduler")
        return DONE

    async def _mark_unschedulable(self, pod: Obj, message: str) -> None:
        conds = (pod.get("status") or {}).get("conditions") or []
        current = next((c for c in conds if c.get("type") == "PodScheduled"), None)
        if current and current.get("status") == "False" and current.get("message") == message:
            return
        cond = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message,
                "lastProbeTime": None, "lastTransitionTime": rfc3339(self.clock.now())}
        others = [c for c in conds if c.get("type") != "PodScheduled"]
        try:
            await self.client.patch("pods", pod["metadata"]["name"], {"status": {"conditions": [cond, *others]}},
                                    pod["metadata"]["namespace"], subresource="status")
        except (NotFound, Conflict):
            return
        await self.recorder.event(pod, "Warning", "FailedScheduling", message, component="default-scheduler")


__all__ = ["Decimal", "Scheduler", "choose_node", "pod_requests"]
