"""The pod status as a pure function of the pod worker's records and ``now``."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from joblet.node.podstatus import ContainerRecord, next_phase, pod_status
from joblet.node.runtimes.base import ContainerExit

Obj = dict[str, Any]
T0 = datetime(2024, 1, 1, tzinfo=UTC)


@dataclass
class View:
    """A PodView by hand: what the worker would hold."""

    pod: Obj
    uid: str = "u1"
    phase: str = "Pending"
    reason: str | None = None
    message: str | None = None
    initialized: bool = True
    start_time: datetime | None = T0
    init_specs: list[Obj] = field(default_factory=list)
    specs: list[Obj] = field(default_factory=lambda: [{"name": "main"}])
    init: dict[str, ContainerRecord] = field(default_factory=dict)
    main: dict[str, ContainerRecord] = field(default_factory=lambda: {"main": ContainerRecord("main", "busybox")})


def pod() -> Obj:
    return {"metadata": {"name": "p", "namespace": "default", "uid": "u1"},
            "spec": {"containers": [{"name": "main", "image": "busybox"}]}, "status": {}}


def cond(status: Obj, ctype: str) -> Obj:
    return next(c for c in status["conditions"] if c["type"] == ctype)


def test_pod_status_reads_and_never_writes() -> None:
    view = View(pod())
    current = pod()
    before_view, before_current = copy.deepcopy(view), copy.deepcopy(current)
    status = pod_status(view, current, T0)
    assert view == before_view and current == before_current
    assert status["phase"] == "Pending"  # the phase is the view's; only next_phase moves it
    assert status["containerStatuses"][0]["state"] == {"waiting": {"reason": "PodInitializing"}}
    assert [c["type"] for c in status["conditions"]] == [
        "PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"]
    assert pod_status(view, current, T0) == status  # same inputs, same status


def test_next_phase_running_once_a_main_container_started_and_terminal_phases_stay() -> None:
    started = {"main": ContainerRecord("main", "busybox", attempt=0, waiting_reason="")}
    assert next_phase("Pending", {"main": ContainerRecord("main", "busybox")}) == "Pending"
    assert next_phase("Pending", started) == "Running"
    assert next_phase("Failed", started) == "Failed"
    assert next_phase("Succeeded", started) == "Succeeded"


def test_conditions_keep_their_transition_time_while_their_status_holds() -> None:
    running = View(pod(), phase="Running",
                   main={"main": ContainerRecord("main", "busybox", attempt=0, started_at=T0, waiting_reason="")})
    first = pod_status(running, pod(), T0)
    assert cond(first, "Ready")["status"] == "True"
    later = T0 + timedelta(minutes=5)
    stored = {**pod(), "status": first}
    again = pod_status(running, stored, later)
    assert cond(again, "Ready")["lastTransitionTime"] == "2024-01-01T00:00:00Z"
    done = View(pod(), phase="Succeeded", main={"main": ContainerRecord(
        "main", "busybox", attempt=0, started_at=T0, waiting_reason="", result=ContainerExit(0, "Completed", later))})
    final = pod_status(done, stored, later)
    assert (cond(final, "Ready")["status"], cond(final, "Ready")["reason"]) == ("False", "PodCompleted")
    assert cond(final, "Ready")["lastTransitionTime"] == "2024-01-01T00:05:00Z"
    assert final["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 0


def test_evicted_pod_reports_disruption_target() -> None:
    view = View(pod(), phase="Failed", reason="Evicted", message="The node was low on resource: ephemeral-storage.")
    status = pod_status(view, pod(), T0)
    assert (status["reason"], status["message"]) == (view.reason, view.message)
    assert cond(status, "DisruptionTarget") == {
        "type": "DisruptionTarget", "status": "True", "lastProbeTime": None,
        "lastTransitionTime": "2024-01-01T00:00:00Z", "reason": "TerminationByKubelet", "message": view.message}
