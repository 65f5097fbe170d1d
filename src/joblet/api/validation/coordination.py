"""Lease validation (``pkg/apis/coordination/validation``): Leases carry leader election and
node heartbeats, so a Lease with a non-positive duration or negative transition count must be
rejected with upstream's field paths and messages, not stored to confuse an elector."""

from __future__ import annotations

from typing import Any

from joblet.api.validation import field
from joblet.api.validation import meta as metav
from joblet.errors import Cause

#: LeaseSpec.strategy values upstream accepts (CoordinatedLeaseStrategy)
LEASE_STRATEGIES = ("OldestEmulationVersion",)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def validate_lease_spec(spec: dict[str, Any], path: str = "spec") -> list[Cause]:
    """``ValidateLeaseSpec``: duration > 0, transitions >= 0, preferredHolder only with a strategy."""
    errs: list[Cause] = []
    duration = _int(spec.get("leaseDurationSeconds"))
    if duration is not None and duration <= 0:
        errs.append(field.invalid(f"{path}.leaseDurationSeconds", duration, "must be greater than 0"))
    transitions = _int(spec.get("leaseTransitions"))
    if transitions is not None and transitions < 0:
        errs.append(field.invalid(f"{path}.leaseTransitions", transitions, "must be greater than or equal to 0"))
    strategy = spec.get("strategy")
    if strategy and strategy not in LEASE_STRATEGIES:
        errs.append(field.not_supported(f"{path}.strategy", strategy, LEASE_STRATEGIES))
    if spec.get("preferredHolder") and not strategy:
        errs.append(field.forbidden(f"{path}.preferredHolder", "may only be specified if `strategy` is defined"))
    return errs


def validate_lease(lease: dict[str, Any]) -> list[Cause]:
    """``ValidateLease``: a DNS-subdomain name in a namespace, and a valid spec."""
    errs = metav.validate_object_meta(lease, namespaced=True)
    spec = lease.get("spec")
    if isinstance(spec, dict):
        errs.extend(validate_lease_spec(spec))
    return errs


def validate_lease_update(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    """``ValidateLeaseUpdate``: the metadata update rules, then the new Lease as on create."""
    errs = metav.validate_object_meta_update(new, old)
    spec = new.get("spec")
    if isinstance(spec, dict):
        errs.extend(validate_lease_spec(spec))
    return errs
