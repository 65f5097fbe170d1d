"""Defaulting: job-semantics.md §6 items 1-9, 40 and 50, plus pod, CronJob and namespace defaults."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from joblet.api.defaults import (
    default_cronjob,
    default_job,
    default_namespace,
    default_pod,
    default_secret,
    image_pull_policy_for,
)
from joblet.api.validation import validate_cronjob, validate_job, validate_job_update
from joblet.errors import Cause

UID = "uid-1234"
TEMPLATE: dict[str, Any] = {"spec": {"restartPolicy": "Never",
                                     "containers": [{"name": "main", "image": "busybox", "command": ["true"]}]}}


def _job(name: str = "pi", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": "default"},
            "spec": {"template": copy.deepcopy(TEMPLATE), **spec}}


def _defaulted(name: str = "pi", **spec: Any) -> dict[str, Any]:
    job = _job(name, **spec)
    default_job(job, UID)
    return job


def _messages(causes: list[Cause]) -> list[str]:
    return [c.render() for c in causes]


@pytest.mark.parametrize(("spec", "expected"), [
    pytest.param({}, {"completions": 1, "parallelism": 1, "backoffLimit": 6, "completionMode": "NonIndexed",
                      "suspend": False, "manualSelector": False, "podReplacementPolicy": "TerminatingOrFailed"},
                 id="1-defaults"),
    pytest.param({"parallelism": 3}, {"completions": None, "parallelism": 3}, id="2-work-queue"),
    pytest.param({"completions": 4}, {"completions": 4, "parallelism": 1}, id="fixed-count"),
    pytest.param({"completionMode": "Indexed", "completions": 5, "backoffLimitPerIndex": 1},
                 {"backoffLimit": 2147483647}, id="3-per-index-backoff"),
    pytest.param({"podFailurePolicy": {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}},
                 {"podReplacementPolicy": "Failed",
                  "podFailurePolicy": {"rules": [{"action": "Ignore", "onPodConditions": [
                      {"type": "DisruptionTarget", "status": "True"}]}]}}, id="pfp-status-and-replacement"),
    pytest.param({"backoffLimit": 0, "suspend": True}, {"backoffLimit": 0, "suspend": True}, id="explicit-kept"),
])
def test_job_spec_defaults(spec: dict[str, Any], expected: dict[str, Any]) -> None:
    job = _defaulted(**spec)
    for key, value in expected.items():
        assert job["spec"].get(key) == value, key
    assert validate_job(job) == [], _messages(validate_job(job))


def test_4_generated_selector_and_labels() -> None:
    job = _defaulted()
    assert job["spec"]["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": UID}}
    labels = job["spec"]["template"]["metadata"]["labels"]
    assert labels == {"batch.kubernetes.io/controller-uid": UID, "controller-uid": UID,
                      "batch.kubernetes.io/job-name": "pi", "job-name": "pi"}
    assert job["metadata"]["labels"] == labels
    assert job["metadata"]["uid"] == UID


def test_job_keeps_its_own_labels() -> None:
    job = _job()
    job["metadata"]["labels"] = {"team": "a"}
    job["spec"]["template"]["metadata"] = {"labels": {"app": "x"}}
    default_job(job, UID)
    assert job["metadata"]["labels"] == {"team": "a"}
    assert job["spec"]["template"]["metadata"]["labels"]["app"] == "x"


def test_manual_selector_generates_nothing() -> None:
    job = _job(manualSelector=True, selector={"matchLabels": {"app": "x"}})
    job["spec"]["template"]["metadata"] = {"labels": {"app": "x"}}
    default_job(job, UID)
    assert job["spec"]["selector"] == {"matchLabels": {"app": "x"}}
    assert job["spec"]["template"]["metadata"]["labels"] == {"app": "x"}
    assert validate_job(job) == []


def test_5_bad_selector_rejected() -> None:
    job = _defaulted(selector={"matchLabels": {"batch.kubernetes.io/controller-uid": "wrong"}})
    assert any(m.endswith("`selector` not auto-generated") for m in _messages(validate_job(job)))


@pytest.mark.parametrize(("restart", "pfp", "expected"), [
    pytest.param(None, False, 'spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never"',
                 id="unset"),
    pytest.param("Always", False, 'spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", '
                 '"Never"', id="always"),
    pytest.param("OnFailure", True, 'spec.template.spec.restartPolicy: Invalid value: "OnFailure": only "Never" is '
                 "supported when podFailurePolicy is specified", id="onfailure-with-pfp"),
])
def test_6_restart_policy(restart: str | None, pfp: bool, expected: str) -> None:
    job = _job()
    if restart is None:
        del job["spec"]["template"]["spec"]["restartPolicy"]
    else:
        job["spec"]["template"]["spec"]["restartPolicy"] = restart
    if pfp:
        job["spec"]["podFailurePolicy"] = {"rules": [{"action": "FailJob",
                                                      "onExitCodes": {"operator": "In", "values": [42]}}]}
    default_job(job, UID)
    assert "restartPolicy" not in job["spec"]["template"]["spec"] or restart is not None
    assert expected in _messages(validate_job(job))


def test_7_indexed_name_too_long() -> None:
    name = "x" * 62
    job = _defaulted(name, completionMode="Indexed", completions=100)
    assert (f'metadata.name: Invalid value: "{name}": will not able to create pod with invalid DNS label: {name}-99'
            in _messages(validate_job(job)))


def _update(old: dict[str, Any], mutate: Any) -> list[str]:
    new = copy.deepcopy(old)
    mutate(new["spec"])
    default_job(new)
    return _messages(validate_job_update(new, old))


def test_8_immutability() -> None:
    plain = _defaulted(completions=3)
    assert "spec.completions: Invalid value: 4: field is immutable" in _update(
        plain, lambda s: s.update(completions=4))
    indexed = _defaulted(completionMode="Indexed", completions=4, parallelism=4)
    assert ("spec.completions: Invalid value: 6: can only be modified in tandem with spec.parallelism"
            in _update(indexed, lambda s: s.update(completions=6)))
    assert _update(indexed, lambda s: s.update(completions=6, parallelism=6)) == []


def test_9_template_mutation_while_suspended() -> None:
    def set_node_selector(spec: dict[str, Any]) -> None:
        spec["template"]["spec"]["nodeSelector"] = {"zone": "a"}

    suspended = _defaulted(suspend=True)
    assert _update(suspended, set_node_selector) == []
    started = copy.deepcopy(suspended)
    started["status"] = {"startTime": "2024-01-01T00:00:00Z"}
    assert any(m.startswith("spec.template: Invalid value") for m in _update(started, set_node_selector))
    running = _defaulted()
    assert any(m.startswith("spec.template: Invalid value") for m in _update(running, set_node_selector))


@pytest.mark.parametrize(("rule", "expected"), [
    pytest.param({"succeededCount": 11}, "spec.successPolicy.rules[0].succeededCount: Invalid value: 11: must be "
                 "less than or equal to 10 (the number of specified completions)", id="count"),
    pytest.param({"succeededIndexes": "3-1"}, 'spec.successPolicy.rules[0].succeededIndexes: Invalid value: "3-1": '
                 "error parsing succeededIndexes: non-increasing order, previous: 3, current: 1", id="indexes"),
])
def test_40_success_policy_validation(rule: dict[str, Any], expected: str) -> None:
    job = _defaulted(completionMode="Indexed", completions=10, successPolicy={"rules": [rule]})
    assert expected in _messages(validate_job(job))


def _cronjob(**spec: Any) -> dict[str, Any]:
    cj: dict[str, Any] = {"apiVersion": "batch/v1", "kind": "CronJob",
                          "metadata": {"name": "hello", "namespace": "default"},
                          "spec": {"schedule": "0 * * * *", "jobTemplate": {"spec": {"template": copy.deepcopy(TEMPLATE)}},
                                   **spec}}
    default_cronjob(cj)
    return cj


def test_cronjob_defaults() -> None:
    cj = _cronjob()
    spec = cj["spec"]
    assert (spec["concurrencyPolicy"], spec["suspend"], spec["successfulJobsHistoryLimit"],
            spec["failedJobsHistoryLimit"]) == ("Allow", False, 3, 1)
    assert "completions" not in spec["jobTemplate"]["spec"]
    assert spec["jobTemplate"]["spec"]["template"]["spec"]["dnsPolicy"] == "ClusterFirst"
    assert validate_cronjob(cj) == []


@pytest.mark.parametrize(("change", "expected"), [
    pytest.param({"spec": {"schedule": "CRON_TZ=UTC 0 * * * *"}},
                 "cannot use TZ or CRON_TZ in schedule, use timeZone field instead", id="tz-in-schedule"),
    pytest.param({"spec": {"timeZone": "Local"}},
                 "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones", id="local"),
    pytest.param({"metadata": {"name": "a" * 53}}, "must be no more than 52 characters", id="name-53"),
    pytest.param({"spec": {"jobTemplate": {"spec": {"selector": {"matchLabels": {"a": "b"}},
                                                    "template": copy.deepcopy(TEMPLATE)}}}},
                 "`selector` will be auto-generated", id="selector"),
])
def test_50_cronjob_validation(change: dict[str, Any], expected: str) -> None:
    cj = _cronjob()
    for section, values in change.items():
        cj[section].update(copy.deepcopy(values))
    default_cronjob(cj)
    assert any(expected in m for m in _messages(validate_cronjob(cj))), _messages(validate_cronjob(cj))


def test_cronjob_time_zone_accepted() -> None:
    assert validate_cronjob(_cronjob(timeZone="Europe/Berlin")) == []


@pytest.mark.parametrize(("image", "policy"), [
    ("busybox", "Always"), ("busybox:latest", "Always"), ("busybox:1.36", "IfNotPresent"),
    ("localhost:5000/app", "Always"), ("localhost:5000/app:v1", "IfNotPresent"),
    ("busybox@sha256:abc", "IfNotPresent"),
])
def test_image_pull_policy(image: str, policy: str) -> None:
    assert image_pull_policy_for(image) == policy


def test_pod_defaults() -> None:
    pod: dict[str, Any] = {"metadata": {"name": "p", "namespace": "d"}, "spec": {"containers": [
        {"name": "c", "image": "busybox:1", "resources": {"limits": {"cpu": "1"}},
         "ports": [{"containerPort": 80}]}], "volumes": [{"name": "v"}, {"name": "s", "secret": {"secretName": "x"}}]}}
    default_pod(pod)
    spec = pod["spec"]
    assert (spec["restartPolicy"], spec["dnsPolicy"], spec["schedulerName"], spec["securityContext"],
            spec["terminationGracePeriodSeconds"], spec["enableServiceLinks"]) == (
        "Always", "ClusterFirst", "default-scheduler", {}, 30, True)
    ctr = spec["containers"][0]
    assert (ctr["terminationMessagePath"], ctr["terminationMessagePolicy"], ctr["imagePullPolicy"]) == (
        "/dev/termination-log", "File", "IfNotPresent")
    assert ctr["resources"]["requests"] == {"cpu": "1"}
    assert ctr["ports"][0]["protocol"] == "TCP"
    assert spec["volumes"][0] == {"name": "v", "emptyDir": {}}
    assert spec["volumes"][1]["secret"]["defaultMode"] == 420


def test_job_template_keeps_restart_policy_and_gets_pod_defaults() -> None:
    job = _defaulted()
    spec = job["spec"]["template"]["spec"]
    assert spec["restartPolicy"] == "Never"
    assert spec["terminationGracePeriodSeconds"] == 30
    assert spec["containers"][0]["imagePullPolicy"] == "Always"
    assert "enableServiceLinks" not in spec


def test_namespace_and_secret_defaults() -> None:
    ns: dict[str, Any] = {"metadata": {"name": "team"}}
    default_namespace(ns)
    assert ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": "team"}
    assert ns["spec"] == {"finalizers": ["kubernetes"]} and ns["status"] == {"phase": "Active"}
    secret: dict[str, Any] = {"metadata": {"name": "s"}, "stringData": {"k": "v"}}
    default_secret(secret)
    assert secret == {"metadata": {"name": "s"}, "type": "Opaque", "data": {"k": "dg=="}}
