"""spec.podFailurePolicy and spec.successPolicy matching (upstream pod_failure_policy.go,
success_policy.go).

Pure functions: a failed pod and the policy in, the first matching rule's verdict out.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any

from joblet.api.intervals import IndexRuns, parse_runs_lenient

Obj = dict[str, Any]

FAIL_JOB = "FailJob"
FAIL_INDEX = "FailIndex"
IGNORE = "Ignore"
COUNT = "Count"


@dataclass(frozen=True)
class PolicyVerdict:
    """What a pod failure policy says about one failed pod.

    ``fail_job_message`` is set only for a FailJob match; ``count_failed`` is False only
    for an Ignore match; ``action`` is None when no rule matched (default handling).
    """

    fail_job_message: str | None
    count_failed: bool
    action: str | None
    rule_index: int | None = None


NO_MATCH = PolicyVerdict(None, True, None)


def _exit_codes_match(code: int, requirement: Obj) -> bool:
    values = requirement.get("values") or []
    operator = requirement.get("operator")
    if operator == "In":
        return code in values
    if operator == "NotIn":
        return code not in values
    return False


def _matching_container(statuses: list[Obj], requirement: Obj) -> tuple[str, int] | None:
    wanted = requirement.get("containerName")
    for cs in statuses:
        terminated = (cs.get("state") or {}).get("terminated")
        if not terminated:
            continue
        if wanted is not None and wanted != cs.get("name"):
            continue
        code = int(terminated.get("exitCode") or 0)
        if code != 0 and _exit_codes_match(code, requirement):
            return str(cs.get("name") or ""), code
    return None


def match_on_exit_codes(pod: Obj, requirement: Obj) -> tuple[str, int] | None:
    """The first container (then init container) whose non-zero exit code matches."""
    status = pod.get("status") or {}
    found = _matching_container(status.get("containerStatuses") or [], requirement)
    if found is not None:
        return found
    return _matching_container(status.get("initContainerStatuses") or [], requirement)


def match_on_pod_conditions(pod: Obj, patterns: list[Obj]) -> str | None:
    """Type of the first pod condition matching a pattern (type and status)."""
    for cond in (pod.get("status") or {}).get("conditions") or []:
        for pattern in patterns:
            if cond.get("type") == pattern.get("type") and cond.get("status") == (pattern.get("status") or "True"):
                return str(cond.get("type"))
    return None


def _verdict(action: str, index: int, message: str | None) -> PolicyVerdict | None:
    if action == IGNORE:
        return PolicyVerdict(None, False, IGNORE, index)
    if action == FAIL_INDEX:
        return PolicyVerdict(None, True, FAIL_INDEX, index)
    if action == COUNT:
        return PolicyVerdict(None, True, COUNT, index)
    if action == FAIL_JOB:
        return PolicyVerdict(message, True, FAIL_JOB, index)
    return None


def match_pod_failure_policy(policy: Obj | None, pod: Obj) -> PolicyVerdict:
    """matchPodFailurePolicy: the first matching rule decides; no match → count the failure."""
    if not policy:
        return NO_MATCH
    meta = pod.get("metadata") or {}
    ns, name = meta.get("namespace", ""), meta.get("name", "")
    for index, rule in enumerate(policy.get("rules") or []):
        action = str(rule.get("action") or "")
        on_exit = rule.get("onExitCodes")
        on_conditions = rule.get("onPodConditions")
        if on_exit is not None:
            found = match_on_exit_codes(pod, on_exit)
            if found is None:
                continue
            container, code = found
            message = (
                f"Container {container} for pod {ns}/{name} failed with exit code {code} "
                f"matching {action} rule at index {index}"
            )
            verdict = _verdict(action, index, message)
            if verdict is not None:
                return verdict
        elif on_conditions is not None:
            cond_type = match_on_pod_conditions(pod, on_conditions)
            if cond_type is None:
                continue
            message = f"Pod {ns}/{name} has condition {cond_type} matching {action} rule at index {index}"
            verdict = _verdict(action, index, message)
            if verdict is not None:
                return verdict
    return NO_MATCH


def match_success_policy(policy: Obj | None, completions: int, succeeded: AbstractSet[int]) -> str | None:
    """matchSuccessPolicy: the message of the first met rule, or None."""
    if not policy or not succeeded:
        return None
    done = IndexRuns.of(succeeded)
    for index, rule in enumerate(policy.get("rules") or []):
        indexes_str = rule.get("succeededIndexes")
        count = rule.get("succeededCount")
        if indexes_str is not None:
            runs = parse_runs_lenient(str(indexes_str), completions)
            if not runs:
                continue
            listed = 0
            overlap = 0
            for first, last in runs:  # run against runs, not index by index
                listed += max(0, last - first + 1)
                overlap += done.count_between(first, last)
            if overlap == listed or (count is not None and overlap >= int(count)):
                return f"Matched rules at index {index}"
        elif count is not None and len(succeeded) >= int(count):
            return f"Matched rules at index {index}"
    return None
