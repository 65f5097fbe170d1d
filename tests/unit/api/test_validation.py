"""Validation: every scenario of conformance/validation.yaml against the pure functions,
plus named cases for pods, metadata, job status, cron schedules and quantities."""

from __future__ import annotations

import copy
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from harness.catalog import BASE_TEMPLATE, default_catalog_dir, expand_generators
from harness.matching import deep_merge, get_path

from joblet.api.defaults import default_cronjob, default_job, default_pod
from joblet.api.validation import (
    parse_quantity,
    parse_standard,
    validate_cronjob,
    validate_cronjob_update,
    validate_job,
    validate_job_status_update,
    validate_job_update,
    validate_object_meta,
    validate_pod,
    validate_pod_update,
)
from joblet.api.validation.core import QuantityError, validate_configmap, validate_namespace, validate_secret
from joblet.api.validation.cron import ScheduleError
from joblet.errors import Cause

CONFORMANCE_DIR = default_catalog_dir()
UID = "11111111-2222-3333-4444-555555555555"


def _create(manifest: dict[str, Any]) -> tuple[dict[str, Any], list[Cause]]:
    obj = expand_generators(copy.deepcopy(manifest))
    obj.setdefault("metadata", {}).setdefault("namespace", "default")
    if obj["kind"] == "Job":
        default_job(obj, UID)
        return obj, validate_job(obj)
    default_cronjob(obj)
    return obj, validate_cronjob(obj)


KNOWN_DEVIATIONS: dict[str, str] = yaml.safe_load(
    (Path(__file__).resolve().parents[2] / "conformance" / "known_deviations.yaml").read_text()) or {}


def _scenarios() -> list[Any]:
    data = yaml.safe_load((CONFORMANCE_DIR / "validation.yaml").read_text())
    return [pytest.param(s, id=s["id"], marks=[pytest.mark.xfail(strict=True, reason=KNOWN_DEVIATIONS[s["id"]])]
                         if s["id"] in KNOWN_DEVIATIONS else []) for s in data["scenarios"]]


def _assert_causes(causes: list[Cause], expected: list[dict[str, str]]) -> None:
    rendered = [c.render() for c in causes]
    for want in expected:
        hits = [c for c in causes if c.field == want["field"]
                and want.get("message_contains", "") in c.message]
        assert hits, f"no cause {want} in {rendered}"


@pytest.mark.parametrize("scenario", _scenarios())
def test_conformance_validation_scenario(scenario: dict[str, Any]) -> None:
    kind = scenario.get("kind", "invalid")
    expect = scenario["expect"]
    old, causes = _create(scenario["manifest"])
    if kind == "valid":
        assert causes == []
        for dotted, value in (expect.get("defaults") or {}).items():
            assert get_path(old, dotted) == value, dotted
        return
    if kind in ("update_valid", "update_invalid"):
        assert causes == [], [c.render() for c in causes]
        new = deep_merge(old, expand_generators(scenario["update"]))
        default_job(new)
        causes = validate_job_update(new, old)
        if kind == "update_valid":
            assert causes == [], [c.render() for c in causes]
            return
    assert causes, "expected the object to be rejected"
    _assert_causes(causes, expect.get("causes") or [])


# ---------------------------------------------------------------- exact messages


def _job(**spec: Any) -> dict[str, Any]:
    job: dict[str, Any] = {"apiVersion": "batch/v1", "kind": "Job",
                           "metadata": {"name": "myjob", "namespace": "default"},
                           "spec": {"template": copy.deepcopy(BASE_TEMPLATE), **spec}}
    return job


def _rendered(causes: list[Cause]) -> list[str]:
    return [c.render() for c in causes]


EXACT_JOB_CASES = [
    ("negative-parallelism", {"parallelism": -1},
     "spec.parallelism: Invalid value: -1: must be greater than or equal to 0"),
    ("pfp-unsupported-action", {"podFailurePolicy": {"rules": [
        {"action": "UnknownAction", "onExitCodes": {"operator": "In", "values": [1]}}]}},
     'spec.podFailurePolicy.rules[0].action: Unsupported value: "UnknownAction": supported values: '
     '"Count", "FailIndex", "FailJob", "Ignore"'),
    ("pfp-required-action", {"podFailurePolicy": {"rules": [
        {"action": "", "onExitCodes": {"operator": "In", "values": [1]}}]}},
     'spec.podFailurePolicy.rules[0].action: Required value: valid values: ["Count" "FailIndex" "FailJob" "Ignore"]'),
    ("pfp-duplicate", {"podFailurePolicy": {"rules": [
        {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [11, 11]}}]}},
     "spec.podFailurePolicy.rules[0].onExitCodes.values[1]: Duplicate value: 11"),
    ("pfp-too-many-rules", {"podFailurePolicy": {"rules": [
        {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [i + 1]}} for i in range(21)]}},
     "spec.podFailurePolicy.rules: Too many: 21: must have at most 20 items"),
    ("pfp-fail-index-needs-blpi", {"podFailurePolicy": {"rules": [
        {"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [1]}}]}},
     'spec.podFailurePolicy.rules[0].action: Invalid value: "FailIndex": requires the backoffLimitPerIndex to be set'),
    ("pfp-one-of", {"podFailurePolicy": {"rules": [{"action": "FailJob"}]}},
     "spec.podFailurePolicy.rules[0]: Invalid value: specifying one of OnExitCodes and OnPodConditions is required"),
    ("pfp-onfailure", {"podFailurePolicy": {"rules": [
        {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [1]}}]},
        "template": {"spec": {"restartPolicy": "OnFailure", "containers": [{"name": "a", "image": "b"}]}}},
     'spec.template.spec.restartPolicy: Invalid value: "OnFailure": only "Never" is supported when '
     "podFailurePolicy is specified"),
    ("restart-policy-always", {"template": {"spec": {"restartPolicy": "Always",
                                                     "containers": [{"name": "a", "image": "b"}]}}},
     'spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never"'),
    ("restart-policy-unset", {"template": {"spec": {"containers": [{"name": "a", "image": "b"}]}}},
     'spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never"'),
    ("bad-completion-mode", {"completionMode": "Foo"},
     'spec.completionMode: Unsupported value: "Foo": supported values: "NonIndexed", "Indexed"'),
    ("indexed-parallelism", {"completionMode": "Indexed", "completions": 2, "parallelism": 100001},
     "spec.parallelism: Invalid value: 100001: must be less than or equal to 100000 when completion mode is Indexed"),
    ("mfi-gt-completions", {"completionMode": "Indexed", "completions": 2, "backoffLimitPerIndex": 1,
                            "maxFailedIndexes": 3},
     "spec.maxFailedIndexes: Invalid value: 3: must be less than or equal to completions"),
    ("success-count-gt-completions", {"completionMode": "Indexed", "completions": 10,
                                      "successPolicy": {"rules": [{"succeededCount": 11}]}},
     "spec.successPolicy.rules[0].succeededCount: Invalid value: 11: must be less than or equal to 10 "
     "(the number of specified completions)"),
    ("success-indexes-decreasing", {"completionMode": "Indexed", "completions": 10,
                                    "successPolicy": {"rules": [{"succeededIndexes": "3-1"}]}},
     'spec.successPolicy.rules[0].succeededIndexes: Invalid value: "3-1": error parsing succeededIndexes: '
     "non-increasing order, previous: 3, current: 1"),
    ("success-empty-rules", {"completionMode": "Indexed", "completions": 10, "successPolicy": {"rules": []}},
     "spec.successPolicy.rules: Required value: at least one rules must be specified when the successPolicy "
     "is specified"),
    ("managed-by-too-long", {"managedBy": "example.com/" + "a" * 60},
     "spec.managedBy: Too long: may not be more than 63 bytes"),
    ("managed-by-not-path", {"managedBy": "nopath"},
     'spec.managedBy: Invalid value: "nopath": must be a domain-prefixed path (such as "acme.io/foo")'),
]


@pytest.mark.parametrize(("spec", "expected"), [pytest.param(s, e, id=i) for i, s, e in EXACT_JOB_CASES])
def test_job_create_exact_message(spec: dict[str, Any], expected: str) -> None:
    job = _job(**spec)
    default_job(job, UID)
    assert expected in _rendered(validate_job(job))


def test_indexed_name_too_long_for_pod_hostname() -> None:
    # 61 chars + "-99" = 64 > 63 (a 60-char name still fits, unlike job-semantics.md §6.7 suggests).
    name = "a" * 61
    job = _job(completionMode="Indexed", completions=100)
    job["metadata"]["name"] = name
    default_job(job, UID)
    assert (f'metadata.name: Invalid value: "{name}": will not able to create pod with invalid DNS label: {name}-99'
            in _rendered(validate_job(job)))


def test_bad_selector_not_auto_generated() -> None:
    job = _job(selector={"matchLabels": {"batch.kubernetes.io/controller-uid": "other"}})
    default_job(job, UID)
    messages = _rendered(validate_job(job))
    assert any(m.startswith("spec.selector: Invalid value:") and m.endswith("`selector` not auto-generated")
               for m in messages), messages


def test_wrong_user_template_label_rejected() -> None:
    job = _job()
    job["spec"]["template"]["metadata"] = {"labels": {"job-name": "other"}}
    default_job(job, UID)
    messages = _rendered(validate_job(job))
    assert any(m.startswith("spec.template.metadata.labels[job-name]: Invalid value:") and m.endswith(": myjob")
               for m in messages), messages


def test_manual_selector_must_match_template() -> None:
    job = _job(manualSelector=True, selector={"matchLabels": {"app": "x"}})
    default_job(job, UID)
    messages = _rendered(validate_job(job))
    assert any(m.endswith("`selector` does not match template `labels`") for m in messages), messages
    job["spec"]["template"]["metadata"] = {"labels": {"app": "x"}}
    assert validate_job(job) == []


# ---------------------------------------------------------------- updates


def _created(**spec: Any) -> dict[str, Any]:
    job = _job(**spec)
    default_job(job, UID)
    assert validate_job(job) == [], _rendered(validate_job(job))
    return job


def _updated(old: dict[str, Any], patch: dict[str, Any]) -> list[str]:
    new = deep_merge(old, patch)
    default_job(new)
    return _rendered(validate_job_update(new, old))


def test_nonindexed_completions_immutable() -> None:
    old = _created(completions=2)
    assert "spec.completions: Invalid value: 3: field is immutable" in _updated(old, {"spec": {"completions": 3}})


def test_indexed_completions_in_tandem_with_parallelism() -> None:
    old = _created(completionMode="Indexed", completions=4, parallelism=4)
    assert ("spec.completions: Invalid value: 6: can only be modified in tandem with spec.parallelism"
            in _updated(old, {"spec": {"completions": 6}}))
    assert _updated(old, {"spec": {"completions": 6, "parallelism": 6}}) == []


def test_template_scheduling_directives_mutable_only_while_suspended_and_not_started() -> None:
    old = _created(suspend=True)
    patch = {"spec": {"template": {"spec": {"nodeSelector": {"disk": "ssd"}}}}}
    assert _updated(old, patch) == []
    started = copy.deepcopy(old)
    started["status"] = {"startTime": "2024-01-01T00:00:00Z"}
    messages = _updated(started, patch)
    assert any(m.startswith("spec.template: Invalid value:") and m.endswith("field is immutable") for m in messages)


def test_template_image_never_mutable() -> None:
    old = _created(suspend=True)
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "abc", "image": "other"}]}}}}
    assert any(m.startswith("spec.template: ") for m in _updated(old, patch))


def test_unchanged_update_is_valid() -> None:
    old = _created()
    assert _updated(old, {"metadata": {"labels": {"extra": "x"}}}) == []


# ---------------------------------------------------------------- status


def _status_update(spec: dict[str, Any], old_status: dict[str, Any], new_status: dict[str, Any]) -> list[str]:
    old = _created(**spec)
    old["status"] = old_status
    new = copy.deepcopy(old)
    new["status"] = new_status
    return _rendered(validate_job_status_update(new, old))


def _cond(ctype: str, status: str = "True") -> dict[str, str]:
    return {"type": ctype, "status": status}


START = "2024-01-01T00:00:00Z"
LATER = "2024-01-01T00:01:00Z"

STATUS_CASES = [
    ("complete-without-scm", {}, {"startTime": START},
     {"startTime": START, "completionTime": LATER, "conditions": [_cond("Complete")]},
     "status.conditions: Invalid value: cannot set Complete=True condition without the SuccessCriteriaMet=true condition"),
    ("ready-gt-active", {}, {"active": 1, "ready": 1}, {"active": 1, "ready": 2},
     "status.ready: Invalid value: 2: cannot set more ready pods than active"),
    ("decrease-failed", {}, {"failed": 2}, {"failed": 1},
     "status.failed: Invalid value: 1: cannot decrease the failed counter"),
    ("decrease-succeeded", {}, {"succeeded": 2}, {"succeeded": 1},
     "status.succeeded: Invalid value: 1: cannot decrease the succeeded counter"),
    ("failed-without-failure-target", {}, {"startTime": START},
     {"startTime": START, "conditions": [_cond("Failed")]},
     "status.conditions: Invalid value: cannot set Failed=True condition without the FailureTarget=true condition"),
    ("disable-terminal", {}, {"startTime": START, "conditions": [_cond("FailureTarget"), _cond("Failed")]},
     {"startTime": START, "conditions": [_cond("FailureTarget"), _cond("Failed", "False")]},
     "status.conditions: Invalid value: cannot disable the terminal Failed=True condition"),
    ("completed-indexes-nonindexed", {}, {}, {"completedIndexes": "0"},
     'status.completedIndexes: Invalid value: "0": cannot set non-empty completedIndexes when non-indexed '
     "completion mode"),
    ("completed-indexes-bad", {"completionMode": "Indexed", "completions": 3}, {}, {"completedIndexes": "0,5"},
     'status.completedIndexes: Invalid value: "0,5": error parsing completedIndexes: too large index: "5"'),
    ("failed-indexes-without-blpi", {"completionMode": "Indexed", "completions": 3}, {}, {"failedIndexes": "1"},
     'status.failedIndexes: Invalid value: "1": cannot set non-null failedIndexes when backoffLimitPerIndex is null'),
    ("indexes-overlap", {"completionMode": "Indexed", "completions": 5, "backoffLimitPerIndex": 1}, {},
     {"completedIndexes": "0-2", "failedIndexes": "2,4"},
     'status.failedIndexes: Invalid value: "2,4": failedIndexes and completedIndexes overlap at index: 2'),
    ("uncounted-duplicate", {}, {}, {"uncountedTerminatedPods": {"succeeded": ["a"], "failed": ["a"]}},
     'status.uncountedTerminatedPods.failed[0]: Duplicate value: "a"'),
    ("start-time-removed", {}, {"startTime": START}, {},
     "status.startTime: Required value: startTime cannot be removed for unsuspended job"),
    ("active-on-finished", {}, {"startTime": START, "active": 1},
     {"startTime": START, "active": 1, "completionTime": LATER,
      "conditions": [_cond("SuccessCriteriaMet"), _cond("Complete")]},
     "status.active: Invalid value: 1: active>0 is invalid for finished job"),
    ("completion-before-start", {}, {"startTime": LATER},
     {"startTime": LATER, "completionTime": START, "conditions": [_cond("SuccessCriteriaMet"), _cond("Complete")]},
     'status.completionTime: Invalid value: "2024-01-01T00:00:00Z": completionTime cannot be set before startTime'),
]


@pytest.mark.parametrize(("spec", "old_status", "new_status", "expected"),
                         [pytest.param(s, o, n, e, id=i) for i, s, o, n, e in STATUS_CASES])
def test_job_status_update_rejected(spec: dict[str, Any], old_status: dict[str, Any],
                                    new_status: dict[str, Any], expected: str) -> None:
    assert expected in _status_update(spec, old_status, new_status)


def test_job_status_controller_sequence_is_valid() -> None:
    steps = [
        {},
        {"startTime": START, "active": 1, "ready": 0, "terminating": 0},
        {"startTime": START, "active": 1, "ready": 1, "terminating": 0},
        {"startTime": START, "active": 0, "ready": 0, "terminating": 0,
         "uncountedTerminatedPods": {"succeeded": ["uid-1"]}},
        {"startTime": START, "active": 0, "ready": 0, "terminating": 0, "succeeded": 1,
         "uncountedTerminatedPods": {}, "conditions": [_cond("SuccessCriteriaMet")]},
        {"startTime": START, "active": 0, "ready": 0, "terminating": 0, "succeeded": 1, "completionTime": LATER,
         "uncountedTerminatedPods": {}, "conditions": [_cond("SuccessCriteriaMet"), _cond("Complete")]},
    ]
    job = _created()
    for status in steps:
        new = copy.deepcopy(job)
        new["status"] = status
        assert validate_job_status_update(new, job) == [], status
        job = new


def test_elastic_indexed_may_decrease_succeeded() -> None:
    spec = {"completionMode": "Indexed", "completions": 3, "parallelism": 3}
    assert _status_update(spec, {"succeeded": 4}, {"succeeded": 3}) == []


# ---------------------------------------------------------------- CronJob


def _cronjob(**spec: Any) -> dict[str, Any]:
    cj: dict[str, Any] = {"apiVersion": "batch/v1", "kind": "CronJob",
                          "metadata": {"name": "mycronjob", "namespace": "default"},
                          "spec": {"schedule": "*/1 * * * *",
                                   "jobTemplate": {"spec": {"template": copy.deepcopy(BASE_TEMPLATE)}}, **spec}}
    default_cronjob(cj)
    return cj


CRON_CASES = [
    ("cron-tz-in-schedule", {"schedule": "CRON_TZ=UTC 0 * * * *"},
     'spec.schedule: Invalid value: "CRON_TZ=UTC 0 * * * *": cannot use TZ or CRON_TZ in schedule, '
     "use timeZone field instead"),
    ("local-time-zone", {"timeZone": "Local"},
     'spec.timeZone: Invalid value: "Local": timeZone must be an explicit time zone as defined in '
     "https://www.iana.org/time-zones"),
    ("empty-time-zone", {"timeZone": ""},
     'spec.timeZone: Invalid value: "": timeZone must be nil or non-empty string'),
    ("unknown-time-zone", {"timeZone": "bad-time-zone"},
     'spec.timeZone: Invalid value: "bad-time-zone": unknown time zone bad-time-zone'),
    ("bad-schedule-fields", {"schedule": "obvious error schedule"},
     'spec.schedule: Invalid value: "obvious error schedule": expected exactly 5 fields, found 3: '
     "[obvious error schedule]"),
    ("bad-schedule-range", {"schedule": "61 * * * *"},
     'spec.schedule: Invalid value: "61 * * * *": end of range (61) above maximum (59): 61'),
    ("selector-set", {"jobTemplate": {"spec": {"selector": {"matchLabels": {"a": "b"}},
                                               "template": copy.deepcopy(BASE_TEMPLATE)}}},
     'spec.jobTemplate.spec.selector: Invalid value: {"matchLabels":{"a":"b"}}: `selector` will be auto-generated'),
    ("concurrency-unsupported", {"concurrencyPolicy": "Sometimes"},
     'spec.concurrencyPolicy: Unsupported value: "Sometimes": supported values: "Allow", "Forbid", "Replace"'),
    ("negative-deadline", {"startingDeadlineSeconds": -1},
     "spec.startingDeadlineSeconds: Invalid value: -1: must be greater than or equal to 0"),
    ("manual-selector", {"jobTemplate": {"spec": {"manualSelector": True, "template": copy.deepcopy(BASE_TEMPLATE)}}},
     'spec.jobTemplate.spec.manualSelector: Unsupported value: true: supported values: "nil", "false"'),
]


@pytest.mark.parametrize(("spec", "expected"), [pytest.param(s, e, id=i) for i, s, e in CRON_CASES])
def test_cronjob_exact_message(spec: dict[str, Any], expected: str) -> None:
    assert expected in _rendered(validate_cronjob(_cronjob(**spec)))


def test_cronjob_name_limit_only_on_create() -> None:
    cj = _cronjob()
    cj["metadata"]["name"] = "a" * 53
    assert f'metadata.name: Invalid value: "{"a" * 53}": must be no more than 52 characters' in _rendered(
        validate_cronjob(cj))
    assert validate_cronjob_update(cj, copy.deepcopy(cj)) == []


def test_cronjob_tz_kept_if_old_schedule_had_it() -> None:
    old = _cronjob(schedule="TZ=UTC 0 * * * *")
    new = copy.deepcopy(old)
    new["spec"]["suspend"] = True
    assert validate_cronjob_update(new, old) == []
    new["spec"]["timeZone"] = "Europe/Berlin"
    assert any("cannot use both timeZone field and TZ or CRON_TZ in schedule" in m
               for m in _rendered(validate_cronjob_update(new, old)))


@pytest.mark.parametrize("schedule", [
    "* * * * ?", "*/5 * * * *", "0 0 1 jan mon-fri", "@hourly", "@every 1h30m", "0 9-17/2 * * 1-5",
    "TZ=Europe/Berlin 0 * * * *", "59 23 31 2 *",
])
def test_schedule_accepted(schedule: str) -> None:
    parse_standard(schedule)


@pytest.mark.parametrize(("schedule", "message"), [
    ("", "empty spec string"),
    ("* * * *", "expected exactly 5 fields, found 4: [* * * *]"),
    ("@fortnightly", "unrecognized descriptor: @fortnightly"),
    ("* * * * 7", "end of range (7) above maximum (6): 7"),
    ("5-1 * * * *", "beginning of range (5) beyond end of range (1): 5-1"),
    ("*/0 * * * *", "step of range should be a positive number: */0"),
    ("1-2-3 * * * *", "too many hyphens: 1-2-3"),
    ("x * * * *", 'failed to parse int from x: strconv.Atoi: parsing "x": invalid syntax'),
    ("@every x", 'failed to parse duration @every x: time: invalid duration "x"'),
    ("0 0 0 * *", "beginning of range (0) below minimum (1): 0"),
])
def test_schedule_rejected(schedule: str, message: str) -> None:
    with pytest.raises(ScheduleError) as err:
        parse_standard(schedule)
    assert str(err.value) == message


# ---------------------------------------------------------------- metadata


@pytest.mark.parametrize(("meta", "expected"), [
    pytest.param({"namespace": "default"}, "metadata.name: Required value: name or generateName is required",
                 id="name-required"),
    pytest.param({"name": "Bad_Name", "namespace": "default"},
                 'metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain must consist of lower case '
                 "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. "
                 "'example.com', regex used for validation is "
                 "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')", id="bad-name"),
    pytest.param({"name": "x"}, "metadata.namespace: Required value", id="namespace-required"),
    pytest.param({"name": "x", "namespace": "default", "labels": {"a": "b c"}},
                 'metadata.labels: Invalid value: "b c": a valid label must be an empty string or consist of '
                 "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character "
                 "(e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is "
                 "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')", id="bad-label-value"),
    pytest.param({"name": "x", "namespace": "default", "finalizers": ["custom"]},
                 'metadata.finalizers: Invalid value: "custom": name is neither a standard finalizer name nor is it '
                 "fully qualified", id="unqualified-finalizer"),
])
def test_object_meta_rejected(meta: dict[str, Any], expected: str) -> None:
    assert expected in _rendered(validate_object_meta({"metadata": meta}, namespaced=True))


def test_generate_name_with_trailing_dash_is_valid() -> None:
    assert validate_object_meta({"metadata": {"generateName": "pi-", "namespace": "d", "name": "pi-abcde"}},
                                namespaced=True) == []


def test_cluster_scoped_namespace_forbidden() -> None:
    assert "metadata.namespace: Forbidden: not allowed on this type" in _rendered(
        validate_object_meta({"metadata": {"name": "n", "namespace": "x"}}, namespaced=False))


def test_namespace_name_must_be_label() -> None:
    assert validate_namespace({"metadata": {"name": "team-a"}}) == []
    assert validate_namespace({"metadata": {"name": "a.b"}})


def test_configmap_and_secret_keys() -> None:
    assert validate_configmap({"metadata": {"name": "c", "namespace": "d"}, "data": {"ok.key": "v"}}) == []
    assert any(m.startswith("data[bad key]: Invalid value:")
               for m in _rendered(validate_configmap({"metadata": {"name": "c", "namespace": "d"},
                                                      "data": {"bad key": "v"}})))
    assert validate_secret({"metadata": {"name": "s", "namespace": "d"}, "data": {"k": "dg=="}}) == []


# ---------------------------------------------------------------- pods


def _pod(**spec: Any) -> dict[str, Any]:
    pod: dict[str, Any] = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
                           "spec": {"containers": [{"name": "main", "image": "busybox"}], **spec}}
    default_pod(pod)
    return pod


POD_CASES = [
    ("containers-required", {"containers": []}, "spec.containers: Required value"),
    ("image-required", {"containers": [{"name": "main"}]}, "spec.containers[0].image: Required value"),
    ("container-name-duplicate", {"containers": [{"name": "a", "image": "x"}, {"name": "a", "image": "y"}]},
     'spec.containers[1].name: Duplicate value: "a"'),
    ("container-name-label", {"containers": [{"name": "A_b", "image": "x"}]},
     'spec.containers[0].name: Invalid value: "A_b": a lowercase RFC 1123 label must consist of lower case '
     "alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  "
     "or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"),
    ("restart-policy", {"restartPolicy": "Sometimes"},
     'spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"'),
    ("volume-duplicate", {"volumes": [{"name": "v", "emptyDir": {}}, {"name": "v", "emptyDir": {}}]},
     'spec.volumes[1].name: Duplicate value: "v"'),
    ("mount-unknown-volume",
     {"containers": [{"name": "m", "image": "x", "volumeMounts": [{"name": "nope", "mountPath": "/d"}]}]},
     'spec.containers[0].volumeMounts[0].name: Not found: "nope"'),
    ("bad-quantity", {"containers": [{"name": "m", "image": "x", "resources": {"limits": {"cpu": "lots"}}}]},
     "spec.containers[0].resources.limits[cpu]: Invalid value: \"lots\": quantities must match the regular "
     "expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"),
    ("requests-over-limits", {"containers": [{"name": "m", "image": "x", "resources": {
        "limits": {"memory": "1Gi"}, "requests": {"memory": "2Gi"}}}]},
     'spec.containers[0].resources.requests[memory]: Invalid value: "2Gi": must be less than or equal to '
     "memory limit of 1Gi"),
]


@pytest.mark.parametrize(("spec", "expected"), [pytest.param(s, e, id=i) for i, s, e in POD_CASES])
def test_pod_rejected(spec: dict[str, Any], expected: str) -> None:
    assert expected in _rendered(validate_pod(_pod(**spec)))


def test_defaulted_pod_is_valid() -> None:
    pod = _pod(volumes=[{"name": "data", "emptyDir": {}}])
    pod["spec"]["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
    assert validate_pod(pod) == []


def test_pod_update_rules() -> None:
    old = _pod(activeDeadlineSeconds=100)
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["image"] = "busybox:2"
    new["spec"]["activeDeadlineSeconds"] = 50
    new["spec"]["nodeName"] = "node-1"
    new["spec"]["tolerations"] = [{"key": "k", "operator": "Exists", "effect": "NoSchedule"}]
    assert validate_pod_update(new, old) == []
    rebound = copy.deepcopy(new)
    rebound["spec"]["nodeName"] = "node-2"
    assert any(m.startswith("spec: Forbidden: pod updates may not change fields")
               for m in _rendered(validate_pod_update(rebound, new)))
    longer = copy.deepcopy(new)
    longer["spec"]["activeDeadlineSeconds"] = 60
    assert ("spec.activeDeadlineSeconds: Invalid value: 60: must be less than or equal to previous value"
            in _rendered(validate_pod_update(longer, new)))
    env = copy.deepcopy(old)
    env["spec"]["containers"][0]["env"] = [{"name": "A", "value": "b"}]
    assert any(m.startswith("spec: Forbidden:") for m in _rendered(validate_pod_update(env, old)))


@pytest.mark.parametrize(("text", "value"), [
    ("500m", Decimal("0.5")), ("1", Decimal(1)), ("1Gi", Decimal(2**30)), ("128Mi", Decimal(128 * 2**20)),
    ("1k", Decimal(1000)), ("2M", Decimal(2_000_000)), ("1e3", Decimal(1000)), ("1.5", Decimal("1.5")),
    ("100Ki", Decimal(102400)), (2, Decimal(2)), ("0.1", Decimal("0.1")), ("1E-3", Decimal("0.001")),
])
def test_parse_quantity(text: str | int, value: Decimal) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "abc", "1Xi", "1.2.3", "--1", "Mi"])
def test_parse_quantity_rejects(text: str) -> None:
    with pytest.raises(QuantityError):
        parse_quantity(text)


def test_update_without_uid_keeps_stored_identity() -> None:
    old = _created()
    old["metadata"]["creationTimestamp"] = START
    new = copy.deepcopy(old)
    del new["metadata"]["uid"]
    del new["metadata"]["creationTimestamp"]
    assert validate_job_update(new, old) == []
    new["metadata"]["uid"] = "other"
    assert 'metadata.uid: Invalid value: "other": field is immutable' in _rendered(validate_job_update(new, old))
