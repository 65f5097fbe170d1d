"""A pod's status as the kubelet reports it, computed from the pod worker's container records.

Why apart: the status is what the Job controller and every Kubernetes user read, so its
vocabulary (phase, the five conditions and their order, container states, ``lastState``,
``restartCount``) must match the kubelet's exactly; as pure functions of the records and
``now`` it is checked without running anything. :func:`pod_status` reads, never writes: the
phase moves only through :func:`next_phase`, which the worker applies itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from joblet.api.defaults import qos_class
from joblet.clock import rfc3339
from joblet.node.containerenv import POD_IP
from joblet.node.runtimes.base import ContainerExit, ContainerRef
from joblet.objects import deep_copy

Obj = dict[str, Any]
TERMINAL_PHASES = ("Succeeded", "Failed")


def set_condition(conditions: list[Obj], ctype: str, status: str, now: str,
                  reason: str | None = None, message: str | None = None) -> None:
    """Upsert a pod condition; lastTransitionTime moves only when the status changes."""
    for cond in conditions:
        if cond.get("type") == ctype:
            if cond.get("status") != status:
                cond["lastTransitionTime"] = now
            cond["status"] = status
            for key, value in (("reason", reason), ("message", message)):
                if value:
                    cond[key] = value
                else:
                    cond.pop(key, None)
            return
    cond = {"type": ctype, "status": status, "lastProbeTime": None, "lastTransitionTime": now}
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    conditions.append(cond)


def terminated_state(ref: ContainerRef, started: datetime | None, result: ContainerExit) -> Obj:
    term: Obj = {
        "exitCode": result.exit_code,
        "reason": result.reason,
        "startedAt": rfc3339(started) if started else None,
        "finishedAt": rfc3339(result.finished_at),
        "containerID": ref.container_id,
    }
    if result.signal:
        term["signal"] = result.signal
    if result.message:
        term["message"] = result.message
    return {"terminated": term}


# -- per-container record -----------------------------------------------------------------------


@dataclass
class ContainerRecord:
    name: str
    image: str
    attempt: int = -1  # -1: never started
    restart_count: int = 0
    started_at: datetime | None = None
    result: ContainerExit | None = None
    waiting_reason: str = "PodInitializing"
    waiting_message: str = ""
    # the runtime is starting an attempt (waiting ContainerCreating, but a stop must kill it)
    starting: bool = False
    last_state: Obj = field(default_factory=dict)

    @property
    def running(self) -> bool:
        return self.attempt >= 0 and self.result is None and not self.waiting_reason

    def status(self, pod_uid: str) -> Obj:
        ref = ContainerRef(pod_uid, self.name, max(self.attempt, 0))
        state: Obj
        if self.waiting_reason:
            state = {"waiting": {"reason": self.waiting_reason}}
            if self.waiting_message:
                state["waiting"]["message"] = self.waiting_message
        elif self.result is not None:
            state = terminated_state(ref, self.started_at, self.result)
        else:
            state = {"running": {"startedAt": rfc3339(self.started_at) if self.started_at else None}}
        out: Obj = {
            "name": self.name, "image": self.image, "imageID": "", "ready": self.running,
            "started": self.running, "restartCount": self.restart_count, "state": state,
            "lastState": self.last_state,
        }
        if self.attempt >= 0:
            out["containerID"] = ref.container_id
        return out


class PodView(Protocol):
    """What the status is built from (the pod worker is one)."""

    @property
    def pod(self) -> Obj: ...
    @property
    def uid(self) -> str: ...
    @property
    def phase(self) -> str: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def message(self) -> str | None: ...
    @property
    def initialized(self) -> bool: ...
    @property
    def start_time(self) -> datetime | None: ...
    @property
    def init_specs(self) -> Sequence[Obj]: ...
    @property
    def specs(self) -> Sequence[Obj]: ...
    @property
    def init(self) -> Mapping[str, ContainerRecord]: ...
    @property
    def main(self) -> Mapping[str, ContainerRecord]: ...


def next_phase(phase: str, main: Mapping[str, ContainerRecord]) -> str:
    """``Pending`` becomes ``Running`` once a main container has started; terminal phases stay."""
    if phase not in TERMINAL_PHASES and any(r.attempt >= 0 for r in main.values()):
        return "Running"
    return phase


def pod_status(view: PodView, current: Obj, now_time: datetime) -> Obj:
    """The pod's ``status`` as of ``now_time``, starting from ``current`` (the stored pod, whose
    conditions keep their transition times while their status holds)."""
    now = rfc3339(now_time)
    status = deep_copy(current.get("status") or {})
    conditions: list[Obj] = status.setdefault("conditions", [])
    phase = view.phase
    terminal = phase in TERMINAL_PHASES
    main = view.main
    running = view.initialized and bool(main) and all(r.running for r in main.values())
    set_condition(conditions, "PodScheduled", "True", now)
    set_condition(conditions, "PodReadyToStartContainers", "False" if terminal else "True", now)
    if view.initialized:
        set_condition(conditions, "Initialized", "True", now)
    else:
        pending = [n for n, r in view.init.items() if r.result is None or r.result.exit_code != 0]
        set_condition(conditions, "Initialized", "False", now, "ContainersNotInitialized",
                      f"containers with incomplete status: [{' '.join(pending)}]")
    if running and not terminal:
        set_condition(conditions, "ContainersReady", "True", now)
        set_condition(conditions, "Ready", "True", now)
    else:
        reason = "PodCompleted" if terminal else "ContainersNotReady"
        unready = [n for n, r in main.items() if not r.running]
        message = None if terminal else f"containers with unready status: [{' '.join(unready)}]"
        set_condition(conditions, "ContainersReady", "False", now, reason, message)
        set_condition(conditions, "Ready", "False", now, reason, message)
    if view.reason == "Evicted":
        set_condition(conditions, "DisruptionTarget", "True", now, "TerminationByKubelet", view.message)
    order = {"PodReadyToStartContainers": 0, "Initialized": 1, "Ready": 2, "ContainersReady": 3,
             "PodScheduled": 4}
    conditions.sort(key=lambda c: order.get(str(c.get("type")), 5))
    status.update(
        phase=phase, hostIP=POD_IP, hostIPs=[{"ip": POD_IP}], podIP=POD_IP, podIPs=[{"ip": POD_IP}],
        startTime=rfc3339(view.start_time) if view.start_time else now, qosClass=qos_class(view.pod),
        containerStatuses=[main[c["name"]].status(view.uid) for c in view.specs],
    )
    if view.init_specs:
        status["initContainerStatuses"] = [view.init[c["name"]].status(view.uid) for c in view.init_specs]
    if view.reason:
        status["reason"], status["message"] = view.reason, view.message
    return status
