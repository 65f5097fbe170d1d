"""podFailurePolicy and successPolicy matching tables."""

from __future__ import annotations

from typing import Any

import pytest

from joblet.controllers.job.policy import match_pod_failure_policy, match_success_policy


def failed_pod(containers: list[tuple[str, int]], init: list[tuple[str, int]] | None = None,
               conditions: list[dict[str, str]] | None = None) -> dict[str, Any]:
    def statuses(items: list[tuple[str, int]]) -> list[dict[str, Any]]:
        return [{"name": n, "state": {"terminated": {"exitCode": c}}} for n, c in items]

    return {
        "metadata": {"name": "p", "namespace": "ns"},
        "status": {
            "phase": "Failed",
            "containerStatuses": statuses(containers),
            "initContainerStatuses": statuses(init or []),
            "conditions": conditions or [],
        },
    }


def exit_rule(action: str, operator: str, values: list[int], container: str | None = None) -> dict[str, Any]:
    rule: dict[str, Any] = {"action": action, "onExitCodes": {"operator": operator, "values": values}}
    if container:
        rule["onExitCodes"]["containerName"] = container
    return rule


DISRUPTION = {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}


@pytest.mark.parametrize(
    ("rules", "pod", "action", "counts", "message"),
    [
        pytest.param([exit_rule("FailJob", "In", [42], "main")], failed_pod([("main", 42)]), "FailJob", True,
                     "Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 0", id="failjob-exit-code"),
        pytest.param([exit_rule("Ignore", "In", [1]), exit_rule("FailJob", "NotIn", [0])], failed_pod([("c", 1)]),
                     "Ignore", False, None, id="rule-order-ignore-first"),
        pytest.param([exit_rule("Ignore", "In", [1]), exit_rule("FailJob", "NotIn", [0])], failed_pod([("c", 2)]),
                     "FailJob", True, "Container c for pod ns/p failed with exit code 2 matching FailJob rule at index 1",
                     id="rule-order-second-rule"),
        pytest.param([exit_rule("FailJob", "NotIn", [1, 2])], failed_pod([("c", 0)]), None, True, None, id="exit-0-never-matches"),
        pytest.param([exit_rule("FailJob", "NotIn", [0, 1])], failed_pod([("c", 0)], init=[("init", 3)]), "FailJob", True,
                     "Container init for pod ns/p failed with exit code 3 matching FailJob rule at index 0", id="notin-init-container"),
        pytest.param([exit_rule("FailJob", "In", [5], "other")], failed_pod([("c", 5)]), None, True, None, id="container-name-restricts"),
        pytest.param([exit_rule("Count", "In", [5])], failed_pod([("c", 5)]), "Count", True, None, id="count-action"),
        pytest.param([exit_rule("FailIndex", "In", [5])], failed_pod([("c", 5)]), "FailIndex", True, None, id="failindex-action"),
        pytest.param([DISRUPTION], failed_pod([("c", 137)], conditions=[{"type": "DisruptionTarget", "status": "True"}]),
                     "Ignore", False, None, id="on-pod-conditions"),
        pytest.param([DISRUPTION], failed_pod([("c", 137)], conditions=[{"type": "DisruptionTarget", "status": "False"}]),
                     None, True, None, id="condition-status-must-match"),
        pytest.param([{"action": "FailJob", "onPodConditions": [{"type": "DisruptionTarget"}]}],
                     failed_pod([("c", 1)], conditions=[{"type": "DisruptionTarget", "status": "True"}]), "FailJob", True,
                     "Pod ns/p has condition DisruptionTarget matching FailJob rule at index 0", id="condition-failjob-message"),
        pytest.param([exit_rule("FailJob", "In", [1])], failed_pod([("a", 2), ("b", 1)]), "FailJob", True,
                     "Container b for pod ns/p failed with exit code 1 matching FailJob rule at index 0",
                     id="first-qualifying-container-named"),
    ],
)
def test_pod_failure_policy(rules: list[dict[str, Any]], pod: dict[str, Any], action: str | None, counts: bool, message: str | None) -> None:
    verdict = match_pod_failure_policy({"rules": rules}, pod)
    assert (verdict.action, verdict.count_failed, verdict.fail_job_message) == (action, counts, message)


def test_no_policy_counts() -> None:
    verdict = match_pod_failure_policy(None, failed_pod([("c", 1)]))
    assert verdict.count_failed and verdict.action is None


@pytest.mark.parametrize(
    ("rules", "succeeded", "expect"),
    [
        pytest.param([{"succeededCount": 2}], {0}, None, id="count-not-reached"),
        pytest.param([{"succeededCount": 2}], {3, 7}, "Matched rules at index 0", id="count-reached"),
        pytest.param([{"succeededIndexes": "0-2"}], {0, 1}, None, id="indexes-missing-one"),
        pytest.param([{"succeededIndexes": "0-2"}], {0, 1, 2, 5}, "Matched rules at index 0", id="indexes-all"),
        pytest.param([{"succeededIndexes": "1-4", "succeededCount": 3}], {1, 3, 5}, None, id="both-overlap-2"),
        pytest.param([{"succeededIndexes": "1-4", "succeededCount": 3}], {1, 3, 4}, "Matched rules at index 0", id="both-overlap-3"),
        pytest.param([{"succeededIndexes": "0,1", "succeededCount": 1}], {1}, "Matched rules at index 0", id="e2e-indexes-and-count"),
        pytest.param([{"succeededIndexes": "x"}, {"succeededCount": 1}], {4}, "Matched rules at index 1", id="unparsable-rule-skipped"),
        pytest.param([{"succeededCount": 1}], set(), None, id="nothing-succeeded"),
    ],
)
def test_success_policy(rules: list[dict[str, Any]], succeeded: set[int], expect: str | None) -> None:
    assert match_success_policy({"rules": rules}, 10, succeeded) == expect
