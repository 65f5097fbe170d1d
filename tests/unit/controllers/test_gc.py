"""Table tests for the garbage collector's pure decisions."""

from __future__ import annotations

from typing import Any

import pytest

from joblet.controllers.gc import orphaned, plan_for_owner

Obj = dict[str, Any]


def owner(finalizers: list[str], deleting: bool = True) -> Obj:
    meta: Obj = {"name": "j", "namespace": "ns", "uid": "o1", "finalizers": finalizers}
    if deleting:
        meta["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    return {"kind": "Job", "metadata": meta}


def dep(name: str, deleting: bool = False) -> Obj:
    meta: Obj = {"name": name, "namespace": "ns", "uid": name, "ownerReferences": [{"uid": "o1"}]}
    if deleting:
        meta["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    return {"kind": "Pod", "metadata": meta}


PLANS = [
    ("not-deleting-does-nothing", owner(["orphan"], deleting=False), [dep("a")], [], [], None),
    ("orphan-releases-dependents-then-finalizer", owner(["orphan"]), [dep("a"), dep("b")], ["a", "b"], [], "orphan"),
    ("foreground-deletes-live-dependents-first", owner(["foregroundDeletion"]), [dep("a"), dep("b", deleting=True)],
     [], ["a"], None),
    ("foreground-waits-for-terminating-dependents", owner(["foregroundDeletion"]), [dep("b", deleting=True)],
     [], [], None),
    ("foreground-done-when-no-dependents", owner(["foregroundDeletion"]), [], [], [], "foregroundDeletion"),
    ("other-finalizers-are-not-ours", owner(["example.com/x"]), [dep("a")], [], [], None),
]


@pytest.mark.parametrize(("own", "deps", "orphan", "delete", "finalizer"), [p[1:] for p in PLANS],
                         ids=[p[0] for p in PLANS])
def test_plan_for_owner(own: Obj, deps: list[Obj], orphan: list[str], delete: list[str], finalizer: str | None) -> None:
    plan = plan_for_owner(own, deps)
    assert [d["metadata"]["name"] for d in plan.orphan] == orphan
    assert [d["metadata"]["name"] for d in plan.delete] == delete
    assert plan.remove_finalizer == finalizer


ORPHANED = [
    ("owner-exists", {"o1": True}, False),
    ("owner-gone", {"o1": False}, True),
    ("owner-unknown-is-kept", {}, False),
]


@pytest.mark.parametrize(("exists", "want"), [o[1:] for o in ORPHANED], ids=[o[0] for o in ORPHANED])
def test_orphaned(exists: dict[str, bool], want: bool) -> None:
    assert orphaned(dep("a"), exists) is want


def test_object_without_owners_is_never_orphaned() -> None:
    assert orphaned({"metadata": {"name": "x"}}, {}) is False
