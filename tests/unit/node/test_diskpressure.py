"""The disk-pressure decisions: thresholds as ``--eviction-hard`` spells them, the Node
condition, and the scheduler's taint for it (pure functions; the real full disk is
tests/integration/test_disk_pressure.py)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from joblet.controllers.scheduler import Resources, choose_node, node_taints
from joblet.node.diskpressure import DiskState, condition, disk_state, parse_threshold
from joblet.store.sqlite import is_disk_full


@pytest.mark.parametrize(("text", "total", "minimum"), [
    ("nodefs.available<5%", 1000, 50), ("10%", 2000, 200), ("nodefs.available<500Mi", 1, 500 * 2**20),
    ("1Gi", 0, 2**30), ("nodefs.available<0%", 10**9, 0),
])
def test_thresholds(text: str, total: int, minimum: int) -> None:
    assert parse_threshold(text).minimum(total) == minimum


@pytest.mark.parametrize("text", ["", "nodefs.available>5%", "memory.available<5%", "150%", "5 apples", "abc"])
def test_bad_thresholds_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_threshold(text)


def test_disk_state_of_a_real_filesystem(tmp_path: Path) -> None:
    assert not disk_state(tmp_path, parse_threshold("0%")).pressure
    assert disk_state(tmp_path, parse_threshold("100%")).pressure


def test_condition_keeps_its_transition_time_until_it_flips() -> None:
    on = condition(DiskState(1, 100, True), "t1", None)
    assert (on["status"], on["reason"], on["lastTransitionTime"]) == ("True", "KubeletHasDiskPressure", "t1")
    still = condition(DiskState(1, 100, True), "t2", on)
    assert (still["lastTransitionTime"], still["lastHeartbeatTime"]) == ("t1", "t2")
    off = condition(DiskState(90, 100, False), "t3", still)
    assert (off["status"], off["reason"], off["lastTransitionTime"]) == ("False", "KubeletHasNoDiskPressure", "t3")


def node(pressure: str) -> dict[str, object]:
    return {"metadata": {"name": "n"}, "spec": {},
            "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "10"},
                       "conditions": [{"type": "Ready", "status": "True"},
                                      {"type": "DiskPressure", "status": pressure}]}}


def test_disk_pressure_taints_the_node_for_the_scheduler() -> None:
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}}
    assert node_taints(node("False")) == []
    assert node_taints(node("True")) == [{"key": "node.kubernetes.io/disk-pressure", "effect": "NoSchedule"}]
    held = choose_node(pod, [node("True")], lambda _: Resources())
    assert (held.node, held.message) == (None, "0/1 nodes are available: 1 node(s) had untolerated taint.")
    assert choose_node(pod, [node("False")], lambda _: Resources()).node == "n"
    tolerant = {**pod, "spec": {**pod["spec"], "tolerations": [
        {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"}]}}
    assert choose_node(tolerant, [node("True")], lambda _: Resources()).node == "n"


def test_disk_full_errors_are_recognised() -> None:
    assert is_disk_full(sqlite3.OperationalError("database or disk is full"))
    assert is_disk_full(OSError(28, "No space left on device"))
    assert not is_disk_full(sqlite3.OperationalError("no such table: x"))
