"""Named cases for kubectl Table output: columns, cells and human durations at a fixed now."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from joblet.api.tables import human_duration, job_status, to_table

NOW = datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)


def ago(seconds: int) -> str:
    from datetime import timedelta

    return (NOW - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


DURATIONS = [
    (-5, "<invalid>"), (-1, "0s"), (0, "0s"), (5, "5s"), (119, "119s"), (120, "2m"), (182, "3m2s"),
    (600, "10m"), (3 * 3600 - 1, "179m"), (3 * 3600, "3h"), (3 * 3600 + 60 * 5, "3h5m"), (8 * 3600, "8h"),
    (47 * 3600, "47h"), (2 * 86400, "2d"), (2 * 86400 + 3 * 3600, "2d3h"), (8 * 86400, "8d"),
    (400 * 86400, "400d"), (730 * 86400, "2y"), (800 * 86400, "2y70d"), (8 * 365 * 86400, "8y"),
]


@pytest.mark.parametrize(("seconds", "want"), DURATIONS, ids=[w for _, w in DURATIONS])
def test_human_duration(seconds: int, want: str) -> None:
    assert human_duration(seconds) == want


def job(conditions: list[dict[str, Any]] | None = None, status: dict[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "x", "namespace": "default", "creationTimestamp": ago(300), "uid": "u1",
                     "resourceVersion": "7", "managedFields": [{"manager": "m"}], **meta},
        "spec": {
            "completions": 3, "parallelism": 2,
            "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}},
            "template": {"spec": {"containers": [{"name": "main", "image": "busybox"},
                                                 {"name": "side", "image": "alpine"}]}},
        },
        "status": {**(status or {}), "conditions": conditions or []},
    }


def cond(type_: str, status: str = "True") -> dict[str, Any]:
    return {"type": type_, "status": status}


JOB_CASES = [
    ("running", job(status={"startTime": ago(65), "active": 2, "succeeded": 1}),
     ["x", "Running", "1/3", "65s", "5m"]),
    ("complete", job([cond("SuccessCriteriaMet"), cond("Complete")],
                     {"startTime": ago(200), "completionTime": ago(20), "succeeded": 3}),
     ["x", "Complete", "3/3", "3m", "5m"]),
    ("failed", job([cond("FailureTarget"), cond("Failed")], {"startTime": ago(100), "completionTime": ago(40), "failed": 7}),
     ["x", "Failed", "0/3", "60s", "5m"]),
    ("failure-target", job([cond("FailureTarget")], {"startTime": ago(10)}), ["x", "FailureTarget", "0/3", "10s", "5m"]),
    ("success-criteria-met", job([cond("SuccessCriteriaMet")], {"startTime": ago(10), "succeeded": 3}),
     ["x", "SuccessCriteriaMet", "3/3", "10s", "5m"]),
    ("suspended-not-started", job([cond("Suspended")]), ["x", "Suspended", "0/3", "", "5m"]),
    ("suspended-false-is-running", job([cond("Suspended", "False")]), ["x", "Running", "0/3", "", "5m"]),
    ("terminating", job([cond("Suspended")], deletionTimestamp=ago(1)), ["x", "Terminating", "0/3", "", "5m"]),
]


@pytest.mark.parametrize(("obj", "cells"), [c[1:] for c in JOB_CASES], ids=[c[0] for c in JOB_CASES])
def test_job_rows(obj: dict[str, Any], cells: list[Any]) -> None:
    table = to_table("jobs", [obj], NOW, list_rv="42")
    row = table["rows"][0]
    assert row["cells"] == [*cells, "main,side", "busybox,alpine", "batch.kubernetes.io/controller-uid=u1"]
    assert job_status(obj) == cells[1]


def test_job_table_shape() -> None:
    table = to_table("jobs", [job()], NOW, list_rv="42")
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert table["metadata"] == {"resourceVersion": "42"}
    names = [(c["name"], c["priority"]) for c in table["columnDefinitions"]]
    assert names == [("Name", 0), ("Status", 0), ("Completions", 0), ("Duration", 0), ("Age", 0),
                     ("Containers", 1), ("Images", 1), ("Selector", 1)]
    assert table["columnDefinitions"][0]["format"] == "name"
    obj = table["rows"][0]["object"]
    assert obj["kind"] == "PartialObjectMetadata" and obj["apiVersion"] == "meta.k8s.io/v1"
    assert obj["metadata"]["name"] == "x" and "managedFields" not in obj["metadata"]


def test_job_completions_without_completions() -> None:
    parallel = job(status={"succeeded": 1})
    del parallel["spec"]["completions"]
    assert to_table("jobs", [parallel], NOW)["rows"][0]["cells"][2] == "1/1 of 2"
    parallel["spec"]["parallelism"] = 1
    assert to_table("jobs", [parallel], NOW)["rows"][0]["cells"][2] == "1/1"


def test_narrow_table_and_include_object() -> None:
    table = to_table("jobs", [job()], NOW, wide=False, include_object="None")
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Status", "Completions", "Duration", "Age"]
    assert len(table["rows"][0]["cells"]) == 5 and "object" not in table["rows"][0]
    full = to_table("jobs", [job()], NOW, include_object="Object")
    assert full["rows"][0]["object"]["kind"] == "Job"
    assert to_table("jobs", [], NOW, list_rv="9")["rows"] == []


def pod(
    phase: str = "Running",
    containers: list[dict[str, Any]] | None = None,
    init: list[dict[str, Any]] | None = None,
    init_specs: int = 0,
    conditions: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    statuses = containers if containers is not None else [
        {"name": "main", "ready": True, "restartCount": 0, "state": {"running": {"startedAt": ago(60)}}}]
    obj: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default", "creationTimestamp": ago(90)},
        "spec": {"containers": [{"name": s["name"]} for s in statuses] or [{"name": "main"}],
                 "initContainers": [{"name": f"init{i}"} for i in range(init_specs)], "nodeName": "n1"},
        "status": {"phase": phase, "containerStatuses": statuses, "podIPs": [{"ip": "10.0.0.5"}],
                   "conditions": conditions or []},
    }
    if init is not None:
        obj["status"]["initContainerStatuses"] = init
    obj["metadata"].update(extra)
    return obj


def terminated(exit_code: int, reason: str = "", finished: int = 5, **extra: Any) -> dict[str, Any]:
    t: dict[str, Any] = {"exitCode": exit_code, "finishedAt": ago(finished), **extra}
    if reason:
        t["reason"] = reason
    return t


POD_CASES: list[tuple[str, dict[str, Any], list[Any]]] = [
    ("running", pod(), ["p", "1/1", "Running", "0", "90s"]),
    ("pending-no-status", pod("Pending", containers=[]), ["p", "0/1", "Pending", "0", "90s"]),
    ("container-creating", pod("Pending", [{"name": "main", "ready": False, "restartCount": 0,
                                            "state": {"waiting": {"reason": "ContainerCreating"}}}]),
     ["p", "0/1", "ContainerCreating", "0", "90s"]),
    ("completed", pod("Succeeded", [{"name": "main", "ready": False, "restartCount": 0,
                                     "state": {"terminated": terminated(0, "Completed")}}]),
     ["p", "0/1", "Completed", "0", "90s"]),
    ("error", pod("Failed", [{"name": "main", "ready": False, "restartCount": 0,
                              "state": {"terminated": terminated(1, "Error")}}]),
     ["p", "0/1", "Error", "0", "90s"]),
    ("oom-killed", pod("Failed", [{"name": "main", "ready": False, "restartCount": 0,
                                   "state": {"terminated": terminated(137, "OOMKilled")}}]),
     ["p", "0/1", "OOMKilled", "0", "90s"]),
    ("exit-code-without-reason", pod("Failed", [{"name": "main", "ready": False, "restartCount": 0,
                                                 "state": {"terminated": terminated(3)}}]),
     ["p", "0/1", "ExitCode:3", "0", "90s"]),
    ("signal-without-reason", pod("Failed", [{"name": "main", "ready": False, "restartCount": 0,
                                              "state": {"terminated": terminated(137, signal=9)}}]),
     ["p", "0/1", "Signal:9", "0", "90s"]),
    ("crash-loop-with-restarts", pod("Running", [{"name": "main", "ready": False, "restartCount": 2,
                                                  "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                                                  "lastState": {"terminated": terminated(1, "Error", finished=5)}}]),
     ["p", "0/1", "CrashLoopBackOff", "2 (5s ago)", "90s"]),
    ("running-after-restart", pod("Running", [{"name": "main", "ready": True, "restartCount": 1,
                                               "state": {"running": {}},
                                               "lastState": {"terminated": terminated(1, "Error", finished=200)}}]),
     ["p", "1/1", "Running", "1 (3m20s ago)", "90s"]),
    ("init-running", pod("Pending", [{"name": "main", "ready": False, "restartCount": 0,
                                      "state": {"waiting": {"reason": "PodInitializing"}}}],
                         init=[{"name": "init0", "ready": False, "restartCount": 0, "state": {"running": {}}}],
                         init_specs=1),
     ["p", "0/1", "Init:0/1", "0", "90s"]),
    ("init-second-of-two", pod("Pending", [], init=[
        {"name": "init0", "ready": False, "restartCount": 0, "state": {"terminated": terminated(0, "Completed")}},
        {"name": "init1", "ready": False, "restartCount": 0, "state": {"running": {}}}], init_specs=2),
     ["p", "0/1", "Init:1/2", "0", "90s"]),
    ("init-error", pod("Failed", [], init=[
        {"name": "init0", "ready": False, "restartCount": 0, "state": {"terminated": terminated(1, "Error")}}],
        init_specs=1),
     ["p", "0/1", "Init:Error", "0", "90s"]),
    ("init-crash-loop", pod("Pending", [], init=[
        {"name": "init0", "ready": False, "restartCount": 3, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
         "lastState": {"terminated": terminated(1, "Error", finished=30)}}], init_specs=1),
     ["p", "0/1", "Init:CrashLoopBackOff", "3 (30s ago)", "90s"]),
    ("terminating", pod(deletionTimestamp=ago(1)), ["p", "1/1", "Terminating", "0", "90s"]),
    ("terminated-pod-deleting-keeps-phase-reason", pod("Succeeded", [
        {"name": "main", "ready": False, "restartCount": 0, "state": {"terminated": terminated(0, "Completed")}}],
        deletionTimestamp=ago(1)), ["p", "0/1", "Completed", "0", "90s"]),
    ("completed-with-running-sidecar-container", pod("Running", [
        {"name": "a", "ready": True, "restartCount": 0, "state": {"running": {}}},
        {"name": "b", "ready": False, "restartCount": 0, "state": {"terminated": terminated(0, "Completed")}}],
        conditions=[{"type": "Ready", "status": "False"}]), ["p", "1/2", "NotReady", "0", "90s"]),
    ("scheduling-gated", pod("Pending", [], conditions=[{"type": "PodScheduled", "status": "False",
                                                         "reason": "SchedulingGated"}]),
     ["p", "0/1", "SchedulingGated", "0", "90s"]),
]


@pytest.mark.parametrize(("obj", "cells"), [c[1:] for c in POD_CASES], ids=[c[0] for c in POD_CASES])
def test_pod_rows(obj: dict[str, Any], cells: list[Any]) -> None:
    row = to_table("pods", [obj], NOW)["rows"][0]
    assert row["cells"] == [*cells, "10.0.0.5", "n1", "<none>", "<none>"]


def test_pod_row_conditions_and_wide_defaults() -> None:
    succeeded = pod("Succeeded", [{"name": "main", "ready": False, "restartCount": 0,
                                   "state": {"terminated": terminated(0, "Completed")}}])
    row = to_table("pods", [succeeded], NOW)["rows"][0]
    assert row["conditions"] == [{"type": "Completed", "status": "True", "reason": "Succeeded",
                                  "message": "The pod has completed successfully."}]
    bare = {"metadata": {"name": "q"}, "spec": {"containers": [{"name": "c"}], "readinessGates": [
        {"conditionType": "x"}]}, "status": {"conditions": [{"type": "x", "status": "True"}]}}
    assert to_table("pods", [bare], NOW)["rows"][0]["cells"] == ["q", "0/1", "", "0", "<unknown>", "<none>", "<none>",
                                                                  "<none>", "1/1"]


OTHER_CASES: list[tuple[str, str, dict[str, Any], list[Any]]] = [
    ("cronjob", "cronjobs", {
        "metadata": {"name": "nightly", "creationTimestamp": ago(7200)},
        "spec": {"schedule": "0 3 * * *", "suspend": False, "jobTemplate": {"spec": {"template": {"spec": {
            "containers": [{"name": "c", "image": "i"}]}}}}},
        "status": {"active": [{"name": "j"}], "lastScheduleTime": ago(600)}},
     ["nightly", "0 3 * * *", "<none>", "False", 1, "10m", "120m", "c", "i", ""]),
    ("cronjob-timezone-unset-suspend", "cronjobs", {
        "metadata": {"name": "c", "creationTimestamp": ago(5)}, "spec": {"schedule": "@hourly", "timeZone": "Etc/UTC"}},
     ["c", "@hourly", "Etc/UTC", "<unset>", 0, "<none>", "5s", "", "", ""]),
    ("event", "events", {
        "metadata": {"name": "x.17a", "creationTimestamp": ago(30)}, "type": "Normal", "reason": "SuccessfulCreate",
        "involvedObject": {"kind": "Job", "name": "x"}, "message": "Created pod: x-abcde\n",
        "source": {"component": "job-controller"}, "firstTimestamp": ago(30), "lastTimestamp": ago(10), "count": 2},
     ["10s", "Normal", "SuccessfulCreate", "job/x", "", "job-controller", "Created pod: x-abcde", "30s", 2, "x.17a"]),
    ("event-new-api", "events", {
        "metadata": {"name": "e"}, "type": "Warning", "reason": "R", "involvedObject": {"kind": "Pod", "name": "p"},
        "eventTime": "2024-01-01T11:59:00.123456Z", "reportingComponent": "kubelet", "reportingInstance": "n1"},
     ["59s", "Warning", "R", "pod/p", "", "kubelet, n1", "", "59s", 1, "e"]),  # 59.88s truncates
    ("namespace", "namespaces", {"metadata": {"name": "default", "creationTimestamp": ago(86400 * 3)},
                                 "status": {"phase": "Active"}}, ["default", "Active", "3d"]),
    ("node", "nodes", {
        "metadata": {"name": "n1", "creationTimestamp": ago(60), "labels": {"node-role.kubernetes.io/control-plane": ""}},
        "spec": {"unschedulable": True},
        "status": {"conditions": [{"type": "Ready", "status": "True"}], "nodeInfo": {"kubeletVersion": "v1.31.0"},
                   "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}]}},
     ["n1", "Ready,SchedulingDisabled", "control-plane", "60s", "v1.31.0", "127.0.0.1", "<none>", "<unknown>",
      "<unknown>", "<unknown>"]),
    ("secret", "secrets", {"metadata": {"name": "s", "creationTimestamp": ago(1)}, "type": "Opaque",
                           "data": {"a": "Yg==", "b": ""}}, ["s", "Opaque", 2, "1s"]),
    ("configmap", "configmaps", {"metadata": {"name": "c", "creationTimestamp": ago(1)}, "data": {"a": "b"},
                                 "binaryData": {"z": ""}}, ["c", 2, "1s"]),
    ("serviceaccount", "serviceaccounts", {"metadata": {"name": "default", "creationTimestamp": ago(1)}},
     ["default", 0, "1s"]),
    ("default", "widgets", {"metadata": {"name": "w", "creationTimestamp": ago(125)}}, ["w", "2m5s"]),
    ("lease-held", "leases", {"metadata": {"name": "l", "creationTimestamp": ago(125)},
                              "spec": {"holderIdentity": "host_1234", "leaseDurationSeconds": 15}},
     ["l", "host_1234", "2m5s"]),
    ("lease-free", "leases", {"metadata": {"name": "l", "creationTimestamp": ago(125)}}, ["l", "", "2m5s"]),
]


@pytest.mark.parametrize(("resource", "obj", "cells"), [c[1:] for c in OTHER_CASES], ids=[c[0] for c in OTHER_CASES])
def test_other_rows(resource: str, obj: dict[str, Any], cells: list[Any]) -> None:
    table = to_table(resource, [obj], NOW)
    assert len(table["columnDefinitions"]) == len(cells)
    assert table["rows"][0]["cells"] == cells


def test_event_columns_and_sorting() -> None:
    old = {"metadata": {"name": "old"}, "lastTimestamp": ago(100)}
    new = {"metadata": {"name": "new"}, "lastTimestamp": ago(5)}
    table = to_table("events", [new, old], NOW)
    assert [r["cells"][-1] for r in table["rows"]] == ["old", "new"]
    narrow = to_table("events", [new], NOW, wide=False)
    assert [c["name"] for c in narrow["columnDefinitions"]] == ["Last Seen", "Type", "Reason", "Object", "Message"]
