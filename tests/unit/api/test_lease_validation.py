"""Lease validation: upstream's ValidateLease field paths and messages, and the registry
refusing a bad Lease with a 422."""

from __future__ import annotations

from typing import Any

import pytest

from joblet.api.registry import Registry
from joblet.api.validation.coordination import validate_lease, validate_lease_update
from joblet.clock import FakeClock
from joblet.errors import ApiError
from joblet.store.memory import MemoryStore


def lease(name: str = "l", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": name, "namespace": "kube-system"}, "spec": spec}


CASES: list[tuple[str, dict[str, Any], list[tuple[str, str]]]] = [
    ("valid-held", lease(holderIdentity="h_1", leaseDurationSeconds=15, leaseTransitions=0), []),
    ("valid-empty-spec", lease(), []),
    ("zero-duration", lease(leaseDurationSeconds=0),
     [("spec.leaseDurationSeconds", "Invalid value: 0: must be greater than 0")]),
    ("negative-transitions", lease(leaseTransitions=-1),
     [("spec.leaseTransitions", "Invalid value: -1: must be greater than or equal to 0")]),
    ("preferred-holder-without-strategy", lease(preferredHolder="x"),
     [("spec.preferredHolder", "Forbidden: may only be specified if `strategy` is defined")]),
    ("unknown-strategy", lease(strategy="Newest"),
     [("spec.strategy", 'Unsupported value: "Newest": supported values: "OldestEmulationVersion"')]),
    ("bad-name", lease("Not_A_Name"), [("metadata.name", "")]),
]


@pytest.mark.parametrize(("obj", "want"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_validate_lease(obj: dict[str, Any], want: list[tuple[str, str]]) -> None:
    got = [(c.field, c.message) for c in validate_lease(obj)]
    assert [f for f, _ in got] == [f for f, _ in want]
    for (_, message), (_, expected) in zip(got, want, strict=True):
        assert message.startswith(expected)


def test_update_keeps_meta_rules_and_checks_spec() -> None:
    old = lease(holderIdentity="a", leaseDurationSeconds=15)
    old["metadata"]["resourceVersion"] = "1"
    new = lease(holderIdentity="b", leaseDurationSeconds=-3)
    new["metadata"]["resourceVersion"] = "1"
    assert [c.field for c in validate_lease_update(new, old)] == ["spec.leaseDurationSeconds"]


def test_registry_rejects_bad_lease_with_422() -> None:
    registry = Registry(MemoryStore(), FakeClock())
    registry.create("namespaces", {"metadata": {"name": "kube-system"}})
    with pytest.raises(ApiError) as err:
        registry.create("leases", lease(leaseDurationSeconds=0))
    assert err.value.code == 422
    created = registry.create("leases", lease(holderIdentity="h", leaseDurationSeconds=15))
    assert created["spec"]["holderIdentity"] == "h"
