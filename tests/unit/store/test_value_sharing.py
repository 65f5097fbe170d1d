"""The store's sharing of equal values between the objects it keeps (joblet.store.sharing)."""

from __future__ import annotations

import copy
import tracemalloc

import orjson

from joblet.store.interface import Key
from joblet.store.memory import MemoryStore
from joblet.store.sharing import SHARE_MAX_DEPTH, SharedValues


def finished_pod(i: int) -> dict:
    """A Job's pod as the node agent leaves it: the template's parts equal across pods."""
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"job-{i}-x", "namespace": "default", "uid": f"uid-{i}",
                         "labels": {"batch.kubernetes.io/job-name": "job", "batch.kubernetes.io/job-completion-index": str(i)},
                         "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "job", "uid": "j",
                                              "controller": True, "blockOwnerDeletion": True}],
                         "finalizers": []},
            "spec": {"hostname": f"job-{i}", "containers": [
                {"name": "c", "image": "busybox", "resources": {}, "env": [{"name": "A", "value": "1"}]}],
                "securityContext": {}},
            "status": {"phase": "Succeeded", "conditions": [
                {"type": "Ready", "status": "False", "lastProbeTime": None, "lastTransitionTime": "2026-01-01T00:00:00Z"}],
                "hostIPs": [{"ip": "127.0.0.1"}]}}


def test_a_stored_object_reads_back_equal_and_encodes_to_the_same_json() -> None:
    store = MemoryStore()
    for i in range(3):
        written = finished_pod(i)
        expected = orjson.dumps(written)
        store.create(Key("pods", "default", f"job-{i}-x"), written)
        got = store.get(Key("pods", "default", f"job-{i}-x"))
        del got["metadata"]["resourceVersion"]
        assert orjson.dumps(got) == expected
        assert got == finished_pod(i)


def test_equal_sub_objects_of_different_objects_are_one_object() -> None:
    shared = SharedValues()
    a, b = finished_pod(1), finished_pod(2)
    shared.share(a)
    shared.share(b)
    assert a["metadata"]["ownerReferences"] is b["metadata"]["ownerReferences"]
    assert a["status"] is b["status"]
    assert a["spec"]["containers"][0]["env"] is b["spec"]["containers"][0]["env"]
    # Different values stay apart, and so do the object and its metadata (the store writes into them).
    assert a["spec"] is not b["spec"]
    assert a["metadata"]["labels"] is not b["metadata"]["labels"]
    assert a["metadata"] is not b["metadata"]


def test_json_types_that_python_calls_equal_are_not_shared() -> None:
    shared = SharedValues()
    objs = [{"spec": {"v": v}} for v in (1, True, 1.0, 0.0, -0.0)]
    for o in objs:
        shared.share(o)
    assert [orjson.dumps(o) for o in objs] == [b'{"spec":{"v":1}}', b'{"spec":{"v":true}}', b'{"spec":{"v":1.0}}',
                                               b'{"spec":{"v":0.0}}', b'{"spec":{"v":-0.0}}']
    # Key order is part of a node's identity: the JSON a reader gets keeps the order it was written in.
    ab, ba = {"spec": {"a": 1, "b": 2}}, {"spec": {"b": 2, "a": 1}}
    shared.share(ab)
    shared.share(ba)
    assert list(ba["spec"]) == ["b", "a"]
    # A list is not a dict, even an empty one.
    empty = [{"spec": {"x": {}}}, {"spec": {"x": []}}]
    for o in empty:
        shared.share(o)
    assert empty[1]["spec"]["x"] == []


def test_the_table_is_bounded_and_forgetting_keeps_objects_intact() -> None:
    shared = SharedValues(max_nodes=50)
    pods = [finished_pod(i) for i in range(200)]
    expected = copy.deepcopy(pods)
    for p in pods:
        shared.share(p)
        assert len(shared) <= 50
    shared.clear()
    assert len(shared) == 0
    assert pods == expected
    # Still shared after the table was emptied: a new pod gets its own copy, the old ones keep theirs.
    late = finished_pod(500)
    shared.share(late)
    assert late["status"] == pods[0]["status"] and late["status"] is not pods[0]["status"]


def test_a_new_version_shares_with_the_old_one_even_when_copied() -> None:
    store = MemoryStore()
    key = Key("pods", "default", "job-1-x")
    first = store.create(key, finished_pod(1))
    second = copy.deepcopy(first)  # as a patch clones its target
    second["status"]["phase"] = "Failed"
    store.update(key, second)
    assert second["spec"] is first["spec"]
    assert second["status"] is not first["status"]
    assert first["status"]["phase"] == "Succeeded"


def test_a_deeply_nested_object_is_stored_whole() -> None:
    deep: dict = {"leaf": "x"}
    for _ in range(SHARE_MAX_DEPTH * 3):
        deep = {"d": [deep]}
    store = MemoryStore()
    obj = {"metadata": {"name": "cm"}, "data": deep}
    encoded = orjson.dumps(deep)
    store.create(Key("configmaps", "default", "cm"), obj)
    assert orjson.dumps(store.get(Key("configmaps", "default", "cm"))["data"]) == encoded


def test_an_event_is_kept_as_json_of_its_own_size() -> None:
    """orjson's output holds its whole write buffer (4 KiB for a small Event): the index keeps an
    exact-size copy, or an Event kept as JSON would take more than the decoded one."""
    store = MemoryStore(history_events=1)  # the history's own copies are not what is measured
    event = {"metadata": {"name": "e", "namespace": "default"}, "reason": "Started", "message": "x" * 500}
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(100):
            store.create(Key("events", "default", f"e{i}"), {**event, "metadata": {**event["metadata"], "name": f"e{i}"}})
        store.flush()
        per_event = (tracemalloc.get_traced_memory()[0] - before) / 100
    finally:
        tracemalloc.stop()
    assert per_event < 2 * len(orjson.dumps(store.get(Key("events", "default", "e1"))))
