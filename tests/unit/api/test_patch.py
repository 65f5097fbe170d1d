"""Named cases for JSON merge patch, JSON patch, strategic merge patch and server-side apply."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from joblet.api.apply import apply_patch, fields_v1
from joblet.api.patch import (
    REJECTED_MESSAGE,
    PatchError,
    json_merge_patch,
    json_patch,
    strategic_merge_patch,
)
from joblet.errors import BadRequest, Conflict, Invalid


def job(containers: list[dict[str, Any]] | None = None, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "x", "namespace": "default", "labels": {"app": "demo"}},
        "spec": {
            "backoffLimit": 2,
            **spec,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": containers
                    if containers is not None
                    else [{"name": "main", "image": "busybox", "env": [{"name": "A", "value": "1"}]}],
                }
            },
        },
    }


# ---------------------------------------------------------------- JSON merge patch

MERGE_CASES = [
    ("set-field", {"a": 1}, {"b": 2}, {"a": 1, "b": 2}),
    ("null-deletes", {"a": 1, "b": 2}, {"b": None}, {"a": 1}),
    ("nested-merge", {"m": {"x": 1, "y": 2}}, {"m": {"y": 3}}, {"m": {"x": 1, "y": 3}}),
    ("list-replaced", {"l": [1, 2, 3]}, {"l": [4]}, {"l": [4]}),
    ("object-replaces-scalar", {"a": 1}, {"a": {"b": None, "c": 1}}, {"a": {"c": 1}}),
    ("missing-null-noop", {"a": 1}, {"z": None}, {"a": 1}),
]


@pytest.mark.parametrize(("target", "patch", "want"), [c[1:] for c in MERGE_CASES], ids=[c[0] for c in MERGE_CASES])
def test_json_merge_patch(target: dict[str, Any], patch: dict[str, Any], want: dict[str, Any]) -> None:
    before = copy.deepcopy(target)
    assert json_merge_patch(target, patch) == want
    assert target == before


# ---------------------------------------------------------------- JSON patch

JSON_PATCH_CASES = [
    ("replace", {"spec": {"suspend": False}}, [{"op": "replace", "path": "/spec/suspend", "value": True}],
     {"spec": {"suspend": True}}),
    ("add-new-key", {"spec": {}}, [{"op": "add", "path": "/spec/x", "value": 1}], {"spec": {"x": 1}}),
    ("add-append", {"l": [1]}, [{"op": "add", "path": "/l/-", "value": 2}], {"l": [1, 2]}),
    ("add-insert", {"l": [1, 3]}, [{"op": "add", "path": "/l/1", "value": 2}], {"l": [1, 2, 3]}),
    ("remove", {"a": 1, "b": 2}, [{"op": "remove", "path": "/a"}], {"b": 2}),
    ("remove-index", {"l": [1, 2]}, [{"op": "remove", "path": "/l/0"}], {"l": [2]}),
    ("move", {"a": {"x": 1}}, [{"op": "move", "from": "/a/x", "path": "/b"}], {"a": {}, "b": 1}),
    ("copy", {"a": [1]}, [{"op": "copy", "from": "/a", "path": "/b"}], {"a": [1], "b": [1]}),
    ("test-then-replace", {"a": 1}, [{"op": "test", "path": "/a", "value": 1},
                                     {"op": "replace", "path": "/a", "value": 2}], {"a": 2}),
    ("escaped-pointer", {"metadata": {"labels": {"a/b": "1"}}},
     [{"op": "replace", "path": "/metadata/labels/a~1b", "value": "2"}], {"metadata": {"labels": {"a/b": "2"}}}),
]


@pytest.mark.parametrize(("target", "ops", "want"), [c[1:] for c in JSON_PATCH_CASES],
                         ids=[c[0] for c in JSON_PATCH_CASES])
def test_json_patch(target: dict[str, Any], ops: list[dict[str, Any]], want: dict[str, Any]) -> None:
    before = copy.deepcopy(target)
    assert json_patch(target, ops) == want
    assert target == before


JSON_PATCH_FAILURES = [
    ("replace-missing", [{"op": "replace", "path": "/spec/nope", "value": 1}],
     "replace operation does not apply: doc is missing key: /spec/nope: missing value"),
    ("remove-missing-key", [{"op": "remove", "path": "/spec/nope"}],
     "error in remove for path: '/spec/nope': Unable to remove nonexistent key: nope: missing value"),
    ("remove-missing-parent", [{"op": "remove", "path": "/nope/x"}],
     'remove operation does not apply: doc is missing path: "/nope/x": missing value'),
    ("add-missing-parent", [{"op": "add", "path": "/nope/x", "value": 1}],
     'add operation does not apply: doc is missing path: "/nope/x": missing value'),
    ("test-fails", [{"op": "test", "path": "/spec/suspend", "value": True}],
     "testing value /spec/suspend failed: test failed"),
    ("test-bool-vs-int", [{"op": "test", "path": "/spec/n", "value": True}],
     "testing value /spec/n failed: test failed"),
    ("unknown-op", [{"op": "frob", "path": "/spec"}], "Unexpected kind: frob"),
]


@pytest.mark.parametrize(("ops", "detail"), [c[1:] for c in JSON_PATCH_FAILURES], ids=[c[0] for c in JSON_PATCH_FAILURES])
def test_json_patch_failures_are_422(ops: list[dict[str, Any]], detail: str) -> None:
    with pytest.raises(PatchError) as info:
        json_patch({"spec": {"suspend": False, "n": 1}}, ops)
    err = info.value
    assert isinstance(err, Invalid) and err.code == 422
    assert err.message == REJECTED_MESSAGE
    assert err.detail == detail
    assert err.to_status()["details"]["causes"] == [{"reason": "UnexpectedServerResponse", "message": detail}]


def test_json_patch_body_must_be_a_list() -> None:
    with pytest.raises(BadRequest):
        json_patch({}, {"op": "add"})


# ---------------------------------------------------------------- strategic merge patch

CAPTURED_KUBECTL_APPLY = {
    "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}\n"}},
    "spec": {
        "backoffLimit": 3,
        "template": {
            "spec": {
                "$setElementOrder/containers": [{"name": "main"}],
                "containers": [{"$setElementOrder/env": [{"name": "A"}], "env": [{"name": "A", "value": "2"}],
                                "name": "main"}],
            }
        },
    },
}


def containers_of(obj: dict[str, Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = obj["spec"]["template"]["spec"]["containers"]
    return result


def test_smp_captured_kubectl_apply_patch() -> None:
    target = job()
    result = strategic_merge_patch(target, CAPTURED_KUBECTL_APPLY, "Job")
    assert result["spec"]["backoffLimit"] == 3
    assert containers_of(result) == [{"name": "main", "image": "busybox", "env": [{"name": "A", "value": "2"}]}]
    assert result["metadata"]["annotations"] == {"kubectl.kubernetes.io/last-applied-configuration": "{}\n"}
    assert result["metadata"]["labels"] == {"app": "demo"}
    assert target == job()  # input untouched


SMP_CASES: list[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]] = [
    (
        "env-merge-by-name",
        job([{"name": "main", "image": "i", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}]),
        {"spec": {"template": {"spec": {"containers": [{"name": "main", "env": [{"name": "C", "value": "3"},
                                                                                 {"name": "A", "value": "9"}]}]}}}},
        # upstream normalizeElementOrder: patch items in patch order, server-only B after A
        {"containers": [{"name": "main", "image": "i", "env": [{"name": "C", "value": "3"}, {"name": "A", "value": "9"},
                                                                 {"name": "B", "value": "2"}]}]},
    ),
    (
        "container-merge-and-add",
        job([{"name": "a", "image": "ia"}, {"name": "b", "image": "ib"}]),
        {"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "ib2"}, {"name": "c", "image": "ic"}]}}}},
        {"containers": [{"name": "a", "image": "ia"}, {"name": "b", "image": "ib2"}, {"name": "c", "image": "ic"}]},
    ),
    (
        "container-patch-delete",
        job([{"name": "a", "image": "ia"}, {"name": "b", "image": "ib"}]),
        {"spec": {"template": {"spec": {"containers": [{"name": "a", "$patch": "delete"}]}}}},
        {"containers": [{"name": "b", "image": "ib"}]},
    ),
    (
        "list-patch-replace",
        job([{"name": "a", "image": "ia"}, {"name": "b", "image": "ib"}]),
        {"spec": {"template": {"spec": {"containers": [{"name": "z", "image": "iz"}, {"$patch": "replace"}]}}}},
        {"containers": [{"name": "z", "image": "iz"}]},
    ),
    (
        "set-element-order-reorders",
        job([{"name": "a", "image": "ia"}, {"name": "b", "image": "ib"}]),
        {"spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
                                        "containers": [{"name": "a", "image": "ia2"}]}}}},
        {"containers": [{"name": "b", "image": "ib"}, {"name": "a", "image": "ia2"}]},
    ),
    (
        "null-deletes-key",
        job([{"name": "a", "image": "ia", "workingDir": "/w"}]),
        {"spec": {"template": {"spec": {"containers": [{"name": "a", "workingDir": None}]}}}},
        {"containers": [{"name": "a", "image": "ia"}]},
    ),
    (
        "tolerations-atomic",
        {**job(), "spec": {"template": {"spec": {"containers": [], "tolerations": [{"key": "a"}, {"key": "b"}]}}}},
        {"spec": {"template": {"spec": {"tolerations": [{"key": "c"}]}}}},
        {"containers": [], "tolerations": [{"key": "c"}]},
    ),
    (
        "volume-mounts-by-mount-path",
        job([{"name": "a", "volumeMounts": [{"name": "v", "mountPath": "/a"}, {"name": "w", "mountPath": "/b"}]}]),
        {"spec": {"template": {"spec": {"containers": [{"name": "a", "volumeMounts": [
            {"name": "v2", "mountPath": "/a"}]}]}}}},
        {"containers": [{"name": "a", "volumeMounts": [{"name": "v2", "mountPath": "/a"}, {"name": "w", "mountPath": "/b"}]}]},
    ),
    (
        "ports-by-container-port",
        job([{"name": "a", "ports": [{"containerPort": 80, "name": "http"}]}]),
        {"spec": {"template": {"spec": {"containers": [{"name": "a", "ports": [{"containerPort": 80, "protocol": "TCP"},
                                                                               {"containerPort": 90}]}]}}}},
        {"containers": [{"name": "a", "ports": [{"containerPort": 80, "name": "http", "protocol": "TCP"},
                                                {"containerPort": 90}]}]},
    ),
    (
        "retain-keys-clears-others",
        {"kind": "Pod", "spec": {"containers": [], "volumes": [{"name": "v", "emptyDir": {}}]}},
        {"spec": {"volumes": [{"name": "v", "$retainKeys": ["name", "hostPath"], "hostPath": {"path": "/x"}}]}},
        {"containers": [], "volumes": [{"name": "v", "hostPath": {"path": "/x"}}]},
    ),
]


@pytest.mark.parametrize(("target", "patch", "want_spec"), [c[1:] for c in SMP_CASES], ids=[c[0] for c in SMP_CASES])
def test_strategic_merge_patch(target: dict[str, Any], patch: dict[str, Any], want_spec: dict[str, Any]) -> None:
    before = copy.deepcopy(target)
    kind = target.get("kind", "Job")
    result = strategic_merge_patch(target, patch, kind)
    spec = result["spec"] if kind == "Pod" else result["spec"]["template"]["spec"]
    for key, value in want_spec.items():
        assert spec[key] == value, key
    assert target == before


META_CASES: list[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]] = [
    ("finalizers-merge-as-set", {"finalizers": ["a", "b"]}, {"finalizers": ["b", "c"]}, {"finalizers": ["a", "b", "c"]}),
    ("delete-from-primitive-list", {"finalizers": ["a", "b", "c"]},
     {"$deleteFromPrimitiveList/finalizers": ["b"]}, {"finalizers": ["a", "c"]}),
    ("primitive-order-and-delete", {"finalizers": ["a", "b"]},
     {"$setElementOrder/finalizers": ["c", "a"], "finalizers": ["c"], "$deleteFromPrimitiveList/finalizers": ["b"]},
     {"finalizers": ["c", "a"]}),
    ("labels-merge-and-null", {"labels": {"a": "1", "b": "2"}}, {"labels": {"a": None, "c": "3"}},
     {"labels": {"b": "2", "c": "3"}}),
    ("owner-references-by-uid", {"ownerReferences": [{"uid": "1", "name": "x"}]},
     {"ownerReferences": [{"uid": "1", "controller": True}, {"uid": "2", "name": "y"}]},
     {"ownerReferences": [{"uid": "1", "name": "x", "controller": True}, {"uid": "2", "name": "y"}]}),
    ("map-patch-replace", {"labels": {"a": "1"}}, {"labels": {"$patch": "replace", "b": "2"}}, {"labels": {"b": "2"}}),
    ("map-patch-delete", {"labels": {"a": "1"}}, {"labels": {"$patch": "delete"}}, {"labels": {}}),
]


@pytest.mark.parametrize(("meta", "patch", "want"), [c[1:] for c in META_CASES], ids=[c[0] for c in META_CASES])
def test_smp_metadata(meta: dict[str, Any], patch: dict[str, Any], want: dict[str, Any]) -> None:
    result = strategic_merge_patch({"metadata": meta}, {"metadata": patch}, "Pod")
    assert result["metadata"] == want


def test_smp_status_conditions_merge_by_type() -> None:
    target = {"status": {"conditions": [{"type": "Complete", "status": "False"}, {"type": "Suspended", "status": "True"}]}}
    patch = {"status": {"conditions": [{"type": "Complete", "status": "True"}]}}
    got = strategic_merge_patch(target, patch, "Job")["status"]["conditions"]
    assert got == [{"type": "Complete", "status": "True"}, {"type": "Suspended", "status": "True"}]


def test_smp_unknown_kind_merges_maps_and_replaces_lists() -> None:
    got = strategic_merge_patch({"data": {"a": "1"}, "l": [1, 2]}, {"data": {"b": "2"}, "l": [3]}, "ConfigMap")
    assert got == {"data": {"a": "1", "b": "2"}, "l": [3]}


@pytest.mark.parametrize(
    "patch",
    [
        {"spec": {"template": {"spec": {"containers": [{"image": "no-name"}]}}}},
        {"metadata": {"$patch": "frobnicate"}},
        {"spec": {"template": {"spec": {"volumes": [{"name": "v", "$retainKeys": ["name"], "emptyDir": {}}]}}}},
    ],
    ids=["missing-merge-key", "unknown-patch-directive", "retain-keys-mismatch"],
)
def test_smp_malformed_is_bad_request(patch: dict[str, Any]) -> None:
    with pytest.raises(BadRequest):
        strategic_merge_patch(job(), patch, "Job")


# ---------------------------------------------------------------- server-side apply

NOW = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)


def test_apply_creates_with_managed_fields() -> None:
    applied = job()
    result = apply_patch(None, applied, "kubectl", False, now=NOW)
    (entry,) = result["metadata"]["managedFields"]
    assert entry["manager"] == "kubectl" and entry["operation"] == "Apply"
    assert entry["apiVersion"] == "batch/v1" and entry["time"] == "2024-01-01T12:00:00Z"
    assert entry["fieldsType"] == "FieldsV1"
    fv = entry["fieldsV1"]
    assert fv["f:metadata"] == {"f:labels": {"f:app": {}}}
    main = fv["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"main"}']
    assert main["."] == {} and main["f:image"] == {}
    assert main["f:env"]['k:{"name":"A"}'] == {".": {}, "f:name": {}, "f:value": {}}
    assert "f:apiVersion" not in fv and "f:kind" not in fv
    assert result["spec"] == applied["spec"]


def test_apply_removes_fields_the_manager_dropped_and_keeps_others() -> None:
    first = apply_patch(None, job(activeDeadlineSeconds=30), "kubectl", False, now=NOW)
    live = copy.deepcopy(first)
    live["spec"]["selector"] = {"matchLabels": {"controller-uid": "u"}}  # server default, unowned
    live["metadata"]["labels"]["extra"] = "kept"
    second_config = job()
    del second_config["metadata"]["labels"]
    second = apply_patch(live, second_config, "kubectl", False, now=NOW)
    assert "activeDeadlineSeconds" not in second["spec"]
    assert second["spec"]["selector"] == {"matchLabels": {"controller-uid": "u"}}
    assert second["metadata"]["labels"] == {"extra": "kept"}
    assert len(second["metadata"]["managedFields"]) == 1


def test_apply_conflict_and_force() -> None:
    first = apply_patch(None, job(), "alice", False, now=NOW)
    with pytest.raises(Conflict) as info:
        apply_patch(first, job(backoffLimit=5), "bob", False, now=NOW)
    assert info.value.message == 'Apply failed with 1 conflict: conflict with "alice" using batch/v1: .spec.backoffLimit'
    forced = apply_patch(first, job(backoffLimit=5), "bob", True, now=NOW)
    assert forced["spec"]["backoffLimit"] == 5
    owners = {e["manager"]: e["fieldsV1"] for e in forced["metadata"]["managedFields"]}
    assert "f:backoffLimit" not in owners["alice"]["f:spec"]
    assert "f:backoffLimit" in owners["bob"]["f:spec"]


def test_apply_same_values_from_two_managers_share_ownership() -> None:
    first = apply_patch(None, job(), "alice", False, now=NOW)
    second = apply_patch(first, job(), "bob", False, now=NOW)
    assert [e["manager"] for e in second["metadata"]["managedFields"]] == ["alice", "bob"]


def test_fields_v1_primitive_merge_list() -> None:
    fv = fields_v1({"metadata": {"name": "x", "finalizers": ["a"]}}, "Pod")
    assert fv == {"f:metadata": {"f:finalizers": {'v:"a"': {}}}}
