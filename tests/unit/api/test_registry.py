"""The registry's write semantics on a real in-memory store with a fake clock."""

from __future__ import annotations

from typing import Any

import pytest

from joblet.api.registry import Registry
from joblet.clock import FakeClock
from joblet.errors import AlreadyExists, BadRequest, Conflict, Forbidden, Invalid, NotFound
from joblet.store.memory import MemoryStore
from support.builders import job, pod

Obj = dict[str, Any]


@pytest.fixture
def reg() -> Registry:
    r = Registry(MemoryStore(), FakeClock())
    r.create("namespaces", {"metadata": {"name": "default"}})
    return r


def test_create_fills_server_fields_and_defaults(reg: Registry) -> None:
    created = reg.create("jobs", job())
    meta = created["metadata"]
    assert meta["uid"] and meta["creationTimestamp"] == "2024-01-01T00:00:00Z"
    assert meta["generation"] == 1 and meta["namespace"] == "default"
    assert isinstance(meta["resourceVersion"], str)
    assert created["spec"]["backoffLimit"] == 6
    assert created["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"] == meta["uid"]
    assert created["status"] == {}


def test_generate_name_appends_five_characters(reg: Registry) -> None:
    created = reg.create("pods", {**pod(), "metadata": {"generateName": "x-"}})
    name = created["metadata"]["name"]
    assert name.startswith("x-") and len(name) == 7


@pytest.mark.parametrize(("body", "error"), [
    pytest.param({"metadata": {}}, Invalid, id="no-name"),
    pytest.param({**pod(), "metadata": {"name": "p", "namespace": "nope"}}, NotFound, id="missing-namespace"),
    pytest.param({**pod(), "kind": "Job"}, BadRequest, id="wrong-kind"),
])
def test_create_rejects(reg: Registry, body: Obj, error: type[Exception]) -> None:
    with pytest.raises(error):
        reg.create("pods", body)


def test_create_twice_is_already_exists(reg: Registry) -> None:
    reg.create("jobs", job())
    with pytest.raises(AlreadyExists, match=r'jobs\.batch "j" already exists'):
        reg.create("jobs", job())


def test_dry_run_create_stores_nothing(reg: Registry) -> None:
    reg.create("jobs", job(), dry_run=True)
    with pytest.raises(NotFound):
        reg.get("jobs", "default", "j")


def test_main_resource_update_keeps_status_and_bumps_generation_on_spec_change(reg: Registry) -> None:
    created = reg.create("jobs", job())
    reg.update("jobs", {**created, "status": {"active": 1}}, subresource="status")
    current = reg.get("jobs", "default", "j")
    changed = {**current, "spec": {**current["spec"], "backoffLimit": 2}, "status": {}}
    updated = reg.update("jobs", changed)
    assert updated["status"] == {"active": 1}
    assert updated["metadata"]["generation"] == 2


def test_status_update_keeps_spec_but_takes_annotations(reg: Registry) -> None:
    created = reg.create("jobs", job())
    body = {**created, "spec": {**created["spec"], "backoffLimit": 1},
            "metadata": {**created["metadata"], "annotations": {"a": "b"}}, "status": {"active": 1}}
    updated = reg.update("jobs", body, subresource="status")
    assert updated["spec"]["backoffLimit"] == 6
    assert updated["metadata"]["annotations"] == {"a": "b"}
    assert updated["status"] == {"active": 1}


def test_stale_resource_version_conflicts(reg: Registry) -> None:
    created = reg.create("jobs", job())
    reg.patch("jobs", "default", "j", {"metadata": {"labels": {"x": "1"}}}, "merge")
    with pytest.raises(Conflict, match="the object has been modified"):
        reg.update("jobs", {**created, "metadata": {**created["metadata"], "labels": {"x": "2"}}})


def test_noop_update_is_not_a_write(reg: Registry) -> None:
    created = reg.create("jobs", job())
    again = reg.patch("jobs", "default", "j", {"metadata": {"labels": created["metadata"]["labels"]}}, "merge")
    assert again["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


@pytest.mark.parametrize(("patch_type", "patch"), [
    pytest.param("merge", {"spec": {"suspend": True}}, id="merge"),
    pytest.param("strategic", {"spec": {"suspend": True}}, id="strategic"),
    pytest.param("json", [{"op": "replace", "path": "/spec/suspend", "value": True}], id="json"),
])
def test_patch_types(reg: Registry, patch_type: str, patch: Any) -> None:
    reg.create("jobs", job())
    assert reg.patch("jobs", "default", "j", patch, patch_type)["spec"]["suspend"] is True


def test_apply_creates_when_absent(reg: Registry) -> None:
    created = reg.patch("jobs", "default", "j", job(), "apply", field_manager="kubectl")
    assert created["metadata"]["uid"]


def test_immutable_template_is_invalid(reg: Registry) -> None:
    reg.create("jobs", job())
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "other"}]}}}}
    with pytest.raises(Invalid, match="field is immutable"):
        reg.patch("jobs", "default", "j", patch, "strategic")


@pytest.mark.parametrize(("policy", "finalizer"), [
    pytest.param(None, "orphan", id="job-default-orphans"),
    pytest.param("Orphan", "orphan", id="orphan"),
    pytest.param("Foreground", "foregroundDeletion", id="foreground"),
])
def test_job_delete_with_propagation_waits_for_gc(reg: Registry, policy: str | None, finalizer: str) -> None:
    reg.create("jobs", job())
    marked = reg.delete("jobs", "default", "j", propagation_policy=policy)
    assert marked["metadata"]["deletionTimestamp"]
    assert marked["metadata"]["finalizers"] == [finalizer]
    reg.patch("jobs", "default", "j", {"metadata": {"finalizers": None}}, "merge")
    with pytest.raises(NotFound):
        reg.get("jobs", "default", "j")


def test_background_delete_removes_at_once(reg: Registry) -> None:
    reg.create("jobs", job())
    reg.delete("jobs", "default", "j", propagation_policy="Background")
    with pytest.raises(NotFound):
        reg.get("jobs", "default", "j")


def test_bound_pod_deletion_is_graceful_until_the_kubelet_confirms(reg: Registry) -> None:
    reg.create("pods", pod(node="n1"))
    marked = reg.delete("pods", "default", "p")
    assert marked["metadata"]["deletionGracePeriodSeconds"] == 30
    assert marked["metadata"]["deletionTimestamp"] == "2024-01-01T00:00:30Z"
    reg.delete("pods", "default", "p", grace_period_seconds=0)
    with pytest.raises(NotFound):
        reg.get("pods", "default", "p")


def test_unbound_pod_is_deleted_at_once(reg: Registry) -> None:
    reg.create("pods", pod())
    reg.delete("pods", "default", "p")
    with pytest.raises(NotFound):
        reg.get("pods", "default", "p")


def test_finalizer_holds_a_pod_until_removed(reg: Registry) -> None:
    reg.create("pods", pod(finalizers=["batch.kubernetes.io/job-tracking"]))
    reg.delete("pods", "default", "p", grace_period_seconds=0)
    held = reg.get("pods", "default", "p")
    assert held["metadata"]["deletionTimestamp"]
    with pytest.raises(Forbidden, match="no new finalizers"):
        reg.patch("pods", "default", "p", {"metadata": {"finalizers": ["a", "batch.kubernetes.io/job-tracking"]}}, "merge")
    reg.patch("pods", "default", "p",
              {"metadata": {"$deleteFromPrimitiveList/finalizers": ["batch.kubernetes.io/job-tracking"]}}, "strategic")
    with pytest.raises(NotFound):
        reg.get("pods", "default", "p")


def test_binding_a_pod_records_pod_scheduled(reg: Registry) -> None:
    reg.create("pods", pod())
    bound = reg.patch("pods", "default", "p", {"spec": {"nodeName": "n1"}}, "merge")
    assert bound["status"]["conditions"][0]["type"] == "PodScheduled"
    assert bound["status"]["conditions"][0]["status"] == "True"


def test_delete_precondition_uid_mismatch_conflicts(reg: Registry) -> None:
    reg.create("jobs", job())
    with pytest.raises(Conflict, match="Precondition failed: UID"):
        reg.delete("jobs", "default", "j", preconditions={"uid": "other"})


def test_terminating_namespace_refuses_new_content(reg: Registry) -> None:
    reg.create("namespaces", {"metadata": {"name": "gone"}})
    reg.delete("namespaces", "", "gone")
    with pytest.raises(Forbidden, match="because it is being terminated"):
        reg.create("jobs", job(), "gone")


def test_secret_string_data_is_folded_into_data(reg: Registry) -> None:
    created = reg.create("secrets", {"metadata": {"name": "s"}, "stringData": {"password": "hunter2"}})
    assert created["data"] == {"password": "aHVudGVyMg=="}
    assert "stringData" not in created
