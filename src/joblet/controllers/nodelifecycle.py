"""The node lifecycle controller: a node that stops heartbeating loses its pods.

Why: a pod bound to a node whose agent died (machine gone, ``joblet node`` killed) would
stay Running forever, and its Job would wait forever. Upstream splits the cure over three
controllers; joblet does their combined effect in one place, with their exact strings:

* **node lifecycle** (``pkg/controller/nodelifecycle``): a node whose ``Ready`` heartbeat has
  not changed for ``node_heartbeat_timeout`` seconds (upstream ``--node-monitor-grace-period``,
  40 s) gets ``Ready=Unknown``, reason ``NodeStatusUnknown``, message ``Kubelet stopped posting
  node status.``, and the ``node.kubernetes.io/unreachable`` taints (``NoSchedule`` and
  ``NoExecute``). Once the agent posts ``Ready=True`` again the taints are removed.
* **taint eviction** (``pkg/controller/tainteviction``): every pod on the node that does not
  tolerate the ``NoExecute`` taint (or whose ``tolerationSeconds`` ran out) gets the condition
  ``DisruptionTarget=True``, reason ``DeletionByTaintManager``, message ``Taint manager:
  deleting due to NoExecute taint``, and is deleted.
* **pod GC** (``pkg/controller/podgc``): since no kubelet will ever finish those pods, they are
  marked ``phase: Failed`` first and deleted with grace 0, as ``markFailedAndDeletePodWithCondition``
  does; a pod bound to a node that no longer exists (after a quarantine as long as the
  heartbeat timeout; upstream 40 s) gets ``DisruptionTarget`` reason ``DeletionByPodGC``,
  message ``PodGC: node no longer exists``.

So the Job controller sees a Failed pod with ``DisruptionTarget`` and a podFailurePolicy rule
``onPodConditions: [{type: DisruptionTarget}]`` applies. (Upstream differs in timing: the
default ``tolerationSeconds: 300`` added by admission, and a Job with a podFailurePolicy waits
for the pod to become terminal, which on a dead node only PodGC does once the Node object is
deleted. joblet adds no default tolerations, so pods fail right after the heartbeat timeout.)

Heartbeat age is measured on this controller's clock, as upstream's ``probeTimestamp``: the
time *we* first saw the current ``lastHeartbeatTime`` value. Clock skew between machines does
not matter, and a node first seen after a controller restart gets a full grace period (so a
restarted single-process server never fails the pods its own agent is about to adopt).

The decisions (:func:`observe_heartbeat`, :func:`lost_node_status`, :func:`wanted_taints`,
:func:`evictions`, :func:`failed_pod_status`) are pure; :class:`NodeLifecycleController` does
the I/O.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from joblet.client.events import EventRecorder
from joblet.client.interface import Client
from joblet.clock import Clock, parse_time_or_none, rfc3339
from joblet.controllers.result import DONE, Result
from joblet.controllers.runtime import Controller, Informer, InformerFactory, QueueWorker, WorkQueue
from joblet.errors import Conflict, NotFound
from joblet.objects import deep_copy, failed_pod_status, key_of

Obj = dict[str, Any]

NODE_STATUS_UNKNOWN = "NodeStatusUnknown"
NODE_STATUS_UNKNOWN_MESSAGE = "Kubelet stopped posting node status."
NODE_STATUS_NEVER_MESSAGE = "Kubelet never posted node status."
#: condition types upstream turns Unknown with Ready (only those the node already has).
NODE_CONDITION_TYPES = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")
UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"
TAINT_EVICTION_REASON = "DeletionByTaintManager"
TAINT_EVICTION_MESSAGE = "Taint manager: deleting due to NoExecute taint"
PODGC_REASON = "DeletionByPodGC"
PODGC_MESSAGE = "PodGC: node no longer exists"
BY_NODE = "node-name"

log = logging.getLogger(__name__)


# -- pure decisions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class HeartbeatSeen:
    """The last ``lastHeartbeatTime`` value of a node and when this controller first saw it."""

    heartbeat: str
    probe: datetime


def ready_condition(node: Obj) -> Obj | None:
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return dict(cond)
    return None


def ready_status(node: Obj) -> str:
    cond = ready_condition(node)
    return str(cond.get("status") or "Unknown") if cond is not None else "Unknown"


def observe_heartbeat(previous: HeartbeatSeen | None, node: Obj, now: datetime) -> HeartbeatSeen:
    """Upstream's probeTimestamp: moves to ``now`` whenever the heartbeat value changes, and is
    ``now`` for a node seen for the first time."""
    cond = ready_condition(node) or {}
    heartbeat = str(cond.get("lastHeartbeatTime") or "")
    if previous is not None and previous.heartbeat == heartbeat:
        return previous
    return HeartbeatSeen(heartbeat, now)


def heartbeat_expires(seen: HeartbeatSeen, timeout: float) -> datetime:
    return seen.probe + timedelta(seconds=timeout)


def lost_node_status(node: Obj, seen: HeartbeatSeen, now: datetime, timeout: float) -> Obj | None:
    """The node status to write once the heartbeat expired (None: nothing to change).

    Ready and the pressure conditions the node has become Unknown, keeping their
    lastHeartbeatTime; a condition already Unknown is left alone (upstream)."""
    if now < heartbeat_expires(seen, timeout):
        return None
    status = deep_copy(node.get("status") or {})
    conditions: list[Obj] = status.setdefault("conditions", [])
    changed = False
    message = NODE_STATUS_UNKNOWN_MESSAGE
    if not any(c.get("type") == "Ready" for c in conditions):
        conditions.append({"type": "Ready", "lastHeartbeatTime": None})
        message = NODE_STATUS_NEVER_MESSAGE
    for cond in conditions:
        if cond.get("type") in NODE_CONDITION_TYPES and cond.get("status") != "Unknown":
            cond.update(status="Unknown", reason=NODE_STATUS_UNKNOWN, message=message,
                        lastTransitionTime=rfc3339(now))
            changed = True
    return status if changed else None


def lost_since(node: Obj) -> datetime | None:
    """When the node was declared lost (its Ready=Unknown transition), or None if it is not."""
    cond = ready_condition(node)
    if cond is None or cond.get("status") != "Unknown":
        return None
    return parse_time_or_none(cond.get("lastTransitionTime")) or datetime.min.replace(tzinfo=UTC)


def wanted_taints(node: Obj, now: datetime) -> list[Obj] | None:
    """``spec.taints`` as they should be (None: unchanged): the unreachable taints while the
    node is lost, none of them once it is Ready again."""
    taints: list[Obj] = list((node.get("spec") or {}).get("taints") or [])
    ours = [t for t in taints if t.get("key") == UNREACHABLE_TAINT]
    others = [t for t in taints if t.get("key") != UNREACHABLE_TAINT]
    status = ready_status(node)
    if lost_since(node) is not None:
        effects = {t.get("effect") for t in ours}
        if effects >= {"NoSchedule", "NoExecute"}:
            return None
        added = rfc3339(now)
        return [*others, {"key": UNREACHABLE_TAINT, "effect": "NoSchedule"},
                {"key": UNREACHABLE_TAINT, "effect": "NoExecute", "timeAdded": added}]
    if status == "True" and ours:
        return others
    return None


def _tolerates_unreachable(toleration: Obj) -> bool:
    if toleration.get("effect") not in (None, "", "NoExecute"):
        return False
    key = toleration.get("key")
    if toleration.get("operator") == "Exists":
        return not key or key == UNREACHABLE_TAINT
    return bool(key == UNREACHABLE_TAINT and not toleration.get("value"))


def eviction_delay(pod: Obj) -> float | None:
    """Seconds after the taint until the pod is evicted: 0 without a matching toleration,
    its smallest ``tolerationSeconds`` (negative counts as 0), None if tolerated forever."""
    matching = [t for t in (pod.get("spec") or {}).get("tolerations") or [] if _tolerates_unreachable(t)]
    if not matching:
        return 0.0
    seconds = [t.get("tolerationSeconds") for t in matching]
    if any(s is None for s in seconds):
        return None
    return max(0.0, float(min(int(s) for s in seconds if s is not None)))


def is_terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def has_disruption_target(pod: Obj, reason: str) -> bool:
    return any(c.get("type") == "DisruptionTarget" and c.get("status") == "True" and c.get("reason") == reason
               for c in (pod.get("status") or {}).get("conditions") or [])


@dataclass(frozen=True)
class Evictions:
    #: pods to mark Failed with DisruptionTarget, then delete.
    now: list[Obj]
    #: seconds until the next tolerating pod is due (None: none waits).
    next_in: float | None


def evictions(pods: list[Obj], since: datetime, now: datetime, reason: str, tolerations: bool = True) -> Evictions:
    """Which pods bound to a lost node go now (pure).

    Non-terminal pods go once their toleration of the NoExecute taint ran out; a pod this
    controller already failed but could not delete yet goes again. Pods that finished
    before the node was lost keep their outcome."""
    due: list[Obj] = []
    next_in: float | None = None
    for pod in pods:
        if is_terminal(pod):
            if has_disruption_target(pod, reason) and not (pod.get("metadata") or {}).get("deletionTimestamp"):
                due.append(pod)
            continue
        delay = eviction_delay(pod) if tolerations else 0.0
        if delay is None:
            continue
        remaining = (since + timedelta(seconds=delay) - now).total_seconds()
        if remaining <= 0:
            due.append(pod)
        elif next_in is None or remaining < next_in:
            next_in = remaining
    return Evictions(due, next_in)


# -- the reconciler ----------------------------------------------------------------------------


def _node_of(pod: Obj) -> list[str]:
    node = (pod.get("spec") or {}).get("nodeName")
    return [node] if node else []


class NodeLifecycleController(Controller):
    name = "node-lifecycle"

    def __init__(self, client: Client, clock: Clock, informers: InformerFactory, heartbeat_timeout: float = 40.0,
                 recorder: EventRecorder | None = None) -> None:
        self.client = client
        self.clock = clock
        self.timeout = heartbeat_timeout
        self.recorder = recorder
        self.nodes = informers.get("nodes")
        self.pods = informers.get("pods")
        self.pods.add_index(BY_NODE, _node_of)
        self.queue = WorkQueue(clock, "node-lifecycle")
        self.seen: dict[str, HeartbeatSeen] = {}
        #: when (clock.monotonic) each node's heartbeat expiry was due to be checked
        self.check_due: dict[str, float] = {}
        #: node names with pods bound to them but no Node object, and since when (PodGC quarantine).
        self.missing_since: dict[str, datetime] = {}
        self.nodes.add_handler(self._node_changed, lambda _old, n: self._node_changed(n), self._node_changed)
        self.pods.add_handler(self._pod_changed, lambda _old, p: self._pod_changed(p))

    def informers(self) -> list[Informer]:
        return [self.nodes, self.pods]

    def queue_workers(self) -> list[QueueWorker]:
        return [QueueWorker(self.queue, self.sync)]

    def _node_changed(self, node: Obj) -> None:
        self.queue.add(key_of(node))

    def _pod_changed(self, pod: Obj) -> None:
        node_name = (pod.get("spec") or {}).get("nodeName")
        if not node_name or is_terminal(pod):
            return
        node = self.nodes.get(node_name)
        if node is None or lost_since(node) is not None:
            self.queue.add(node_name)

    async def sync(self, node_name: str) -> Result:
        now = self.clock.now()
        node = self.nodes.get(node_name)
        if node is None:
            self.seen.pop(node_name, None)
            return Result(requeue_after=await self._sync_missing(node_name, now))
        self.missing_since.pop(node_name, None)
        seen = self.seen[node_name] = observe_heartbeat(self.seen.get(node_name), node, now)
        due = self.check_due.get(node_name)
        if due is not None and self.clock.monotonic() - due > self.timeout / 2:
            # This controller was not running when the expiry was due (process stopped, loop
            # starved): it observed nothing meanwhile, so the silence proves nothing about the
            # node. Start a fresh grace period instead of failing its pods.
            seen = self.seen[node_name] = HeartbeatSeen(seen.heartbeat, now)
            log.warning("node-lifecycle: checked node %s %.1fs late; its heartbeat gets a fresh grace period",
                        node_name, self.clock.monotonic() - due)
        self.check_due.pop(node_name, None)
        status = lost_node_status(node, seen, now, self.timeout)
        if status is not None:
            body = deep_copy(node)
            body["status"] = status
            try:
                node = await self.client.update("nodes", body, subresource="status")
            except Conflict:
                # the agent wrote a heartbeat meanwhile: look again once the informer has it
                self.queue.add_rate_limited(node_name)
                return DONE
            except NotFound:
                return DONE
            if self.recorder is not None:
                await self.recorder.event(node, "Normal", "NodeNotReady",
                                          f"Node {node_name} status is now: NodeNotReady",
                                          component="node-controller")
        check_after: float | None = None
        if status is None and lost_since(node) is None:
            delay = (heartbeat_expires(seen, self.timeout) - now).total_seconds()
            self.check_due[node_name] = self.clock.monotonic() + max(delay, 0)
            check_after = delay
        taints = wanted_taints(node, now)
        if taints is not None:
            try:
                node = await self.client.patch("nodes", node_name, {"metadata": {
                    "resourceVersion": node["metadata"]["resourceVersion"]}, "spec": {"taints": taints or None}})
            except Conflict:
                self.queue.add_rate_limited(node_name)
                return Result(requeue_after=check_after)
            except NotFound:
                return DONE
        since = lost_since(node)
        if since is None:
            return Result(requeue_after=check_after)
        plan = evictions(self.pods.by_index(BY_NODE, node_name), since, now, TAINT_EVICTION_REASON)
        for pod in plan.now:
            await self._fail_and_delete(pod, now, TAINT_EVICTION_REASON, TAINT_EVICTION_MESSAGE, "TaintManagerEviction")
        return Result(requeue_after=min((t for t in (check_after, plan.next_in) if t is not None), default=None))

    async def _sync_missing(self, node_name: str, now: datetime) -> float | None:
        """Pods of a Node that is gone: failed and deleted once its grace ran out; returns
        when to look again."""
        pods = self.pods.by_index(BY_NODE, node_name)
        if not any(not is_terminal(p) or has_disruption_target(p, PODGC_REASON) for p in pods):
            self.missing_since.pop(node_name, None)
            return None
        since = self.missing_since.setdefault(node_name, now)
        plan = evictions(pods, since + timedelta(seconds=self.timeout), now, PODGC_REASON, tolerations=False)
        for pod in plan.now:
            await self._fail_and_delete(pod, now, PODGC_REASON, PODGC_MESSAGE, None)
        return plan.next_in

    async def _fail_and_delete(self, pod: Obj, now: datetime, reason: str, message: str, event: str | None) -> None:
        meta = pod["metadata"]
        name, ns = meta["name"], meta["namespace"]
        if not is_terminal(pod):
            try:
                await self.client.patch("pods", name, {
                    "metadata": {"resourceVersion": meta["resourceVersion"]},
                    "status": failed_pod_status(pod, now, reason, message)}, ns, subresource="status")
            except Conflict:
                self.queue.add_rate_limited(pod["spec"]["nodeName"])
                return
            except NotFound:
                return
            if self.recorder is not None and event:
                await self.recorder.event(pod, "Normal", event, f"Marking for deletion Pod {ns}/{name}",
                                          component="taint-eviction-controller")
        try:
            await self.client.delete("pods", name, ns, grace_period_seconds=0, preconditions={"uid": meta["uid"]})
        except (NotFound, Conflict):
            pass


__all__ = ["NodeLifecycleController", "evictions", "failed_pod_status", "lost_node_status", "observe_heartbeat",
           "wanted_taints"]
