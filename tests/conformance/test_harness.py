"""Unit tests of the conformance harness's pure parts (no server needed).

Why: a harness bug looks exactly like a system bug in the conformance report; the matching
conventions, interval strings, placeholder substitution, trigger evaluation and expectation
checks over a hand-made timeline are pinned here with named cases.
"""

from __future__ import annotations

from typing import Any

import pytest
from harness.catalog import (
    Scenario,
    Timing,
    default_catalog_dir,
    expand_generators,
    load_catalog,
    prepare_manifest,
)
from harness.checks import (
    Context,
    UnsupportedFormat,
    evaluate,
    never_violations,
    scenario_gaps,
    select_pod,
    trigger_met,
    unsupported_keys,
)
from harness.matching import (
    cause_problems,
    condition_order_problems,
    format_intervals,
    get_path,
    match_conditions,
    match_value,
    parse_duration,
    parse_go_duration,
    parse_intervals,
    set_path,
    substitute,
)
from harness.runner import bind_now_placeholders
from harness.timeline import Timeline

# ------------------------------------------------------------------ intervals


@pytest.mark.parametrize(
    ("text", "indexes"),
    [
        pytest.param("", [], id="empty"),
        pytest.param("0", [0], id="single"),
        pytest.param("0,2", [0, 2], id="two-apart"),
        pytest.param("0,1", [0, 1], id="pair-written-with-comma"),
        pytest.param("0-3", [0, 1, 2, 3], id="run"),
        pytest.param("2,4,5,7-9", [2, 4, 5, 7, 8, 9], id="mixed"),
    ],
)
def test_intervals_round_trip(text: str, indexes: list[int]) -> None:
    assert parse_intervals(text) == indexes
    assert format_intervals(indexes) == text


@pytest.mark.parametrize("bad", [pytest.param("3-1", id="descending"), pytest.param("1,,2", id="empty-fragment")])
def test_intervals_reject(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_intervals(bad)


# ------------------------------------------------------------------ durations


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("5s", 5.0), ("500ms", 0.5), ("2m", 120.0), (7, 7.0), ("1.5s", 1.5)],
    ids=["seconds", "millis", "minutes", "bare-int", "fraction"],
)
def test_parse_duration(value: Any, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("3h59m0.1s", 14340.1), ("66h0m0.1s", 237600.1), ("20h0m0.1s", 72000.1), ("100ms", 0.1)],
    ids=["hms", "long-hours", "no-prev-run", "millis"],
)
def test_parse_go_duration(text: str, seconds: float) -> None:
    assert parse_go_duration(text) == pytest.approx(seconds)


# ------------------------------------------------------------------ value matching


@pytest.mark.parametrize(
    ("expected", "actual", "ok"),
    [
        pytest.param(4, 4, True, id="int-exact"),
        pytest.param(4, 3, False, id="int-mismatch"),
        pytest.param(0, None, True, id="zero-matches-omitted"),
        pytest.param({"min": 1, "max": 2}, 2, True, id="range-in"),
        pytest.param({"min": 1, "max": 2}, 3, False, id="range-above"),
        pytest.param({"min": 1}, None, False, id="range-omitted-is-zero"),
        pytest.param("set", "2024-01-01T00:00:00Z", True, id="set-present"),
        pytest.param("set", None, False, id="set-absent"),
        pytest.param(None, None, True, id="null-absent"),
        pytest.param(None, "x", False, id="null-present"),
        pytest.param({}, {"succeeded": [], "failed": []}, True, id="empty-object-with-empty-lists"),
        pytest.param({}, None, True, id="empty-object-absent"),
        pytest.param({}, {"succeeded": ["u1"]}, False, id="empty-object-not-empty"),
        pytest.param({"a": 1}, {"a": 1, "b": 2}, True, id="subset"),
        pytest.param("2024-01-01T00:00:00Z", "2024-01-01T00:00:00+00:00", True, id="times-as-instants"),
        pytest.param(True, None, False, id="bool-true-vs-absent"),
        pytest.param(False, None, True, id="bool-false-vs-absent"),
        pytest.param([{"kind": "Job"}], [{"kind": "Job", "uid": "u"}], True, id="list-of-dicts-subset"),
        pytest.param([{"kind": "Job"}], [], False, id="list-length"),
    ],
)
def test_match_value(expected: Any, actual: Any, ok: bool) -> None:
    assert (not match_value(expected, actual)) is ok


@pytest.mark.parametrize(
    ("expected", "actual", "ok"),
    [
        pytest.param({"completedIndexes": "0,2"}, {"completedIndexes": "0,2"}, True, id="exact"),
        pytest.param({"completedIndexes": ""}, {}, True, id="empty-is-omitted"),
        pytest.param({"failedIndexes": "0-1"}, {"failedIndexes": "0,1"}, False, id="non-canonical-differs"),
        pytest.param({"completedIndexes": "1"}, {"completedIndexes": "0,1"}, False, id="mismatch"),
    ],
)
def test_match_interval_fields(expected: dict[str, Any], actual: dict[str, Any], ok: bool) -> None:
    assert (not match_value(expected, actual, "status")) is ok


# ------------------------------------------------------------------ placeholders and paths


@pytest.mark.parametrize(
    ("value", "names", "want"),
    [
        pytest.param("<job uid>", {"job uid": "u1"}, "u1", id="whole-string"),
        pytest.param("indexed-job-<index>", {"index": 3}, "indexed-job-3", id="inside-string"),
        pytest.param("<index>", {"index": 3}, 3, id="keeps-type"),
        pytest.param("<now1 RFC3339>", {"now1": "T"}, "T", id="qualifier-dropped"),
        pytest.param("<other>", {}, "<other>", id="unknown-left-alone"),
        pytest.param({"k": ["<job uid>"]}, {"job uid": "u"}, {"k": ["u"]}, id="nested"),
    ],
)
def test_substitute(value: Any, names: dict[str, Any], want: Any) -> None:
    assert substitute(value, names) == want


def test_now_placeholders_strictly_increase() -> None:
    names: dict[str, Any] = {}
    bind_now_placeholders({"a": "<now1 RFC3339>", "b": "<now2 RFC3339>"}, names)
    assert names["now1"] < names["now2"]
    before = dict(names)
    bind_now_placeholders("<now1>", names)
    assert names == before


@pytest.mark.parametrize(
    ("path", "want"),
    [
        ("spec.selector.matchLabels", {"a": "b"}),
        ("status.conditions[type=X].lastTransitionTime", "t1"),
        ("status.conditions[0].type", "X"),
        ("spec.missing.deeper", None),
    ],
    ids=["dotted", "selector", "index", "missing"],
)
def test_get_path(path: str, want: Any) -> None:
    obj = {"spec": {"selector": {"matchLabels": {"a": "b"}}}, "status": {"conditions": [{"type": "X", "lastTransitionTime": "t1"}]}}
    assert get_path(obj, path) == want


def test_set_path_updates_selected_condition_and_removes_on_null() -> None:
    obj: dict[str, Any] = {"metadata": {"labels": {"a": "b"}}, "status": {"conditions": [{"type": "X", "lastTransitionTime": "t1"}]}}
    set_path(obj, "status.conditions[type=X].lastTransitionTime", "t2")
    set_path(obj, "metadata.labels", None)
    assert obj == {"metadata": {}, "status": {"conditions": [{"type": "X", "lastTransitionTime": "t2"}]}}


# ------------------------------------------------------------------ conditions and causes


def test_match_conditions_reports_reason_mismatch_and_regex() -> None:
    conds = [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded", "message": "Container c for pod ns/p failed"}]
    assert not match_conditions([{"type": "Failed", "status": "True", "message_regex": "^Container c for pod .+ failed$"}], conds)
    problems = match_conditions([{"type": "Failed", "reason": "BackoffLimitExceeded"}], conds)
    assert problems and "BackoffLimitExceeded" in problems[0]
    assert match_conditions([{"type": "Complete"}], conds)


@pytest.mark.parametrize(
    ("order", "ok"),
    [(["SuccessCriteriaMet", "Complete"], True), (["Complete", "SuccessCriteriaMet"], False), (["Failed"], False)],
    ids=["in-order", "reversed", "absent"],
)
def test_condition_order(order: list[str], ok: bool) -> None:
    conds = [
        {"type": "SuccessCriteriaMet", "lastTransitionTime": "2024-01-01T00:00:00Z"},
        {"type": "Complete", "lastTransitionTime": "2024-01-01T00:00:01Z"},
    ]
    assert (not condition_order_problems(order, conds)) is ok


def test_causes_matched_anywhere_by_field_and_fragment() -> None:
    status = {"details": {"causes": [
        {"field": "spec.template", "message": "Required value"},
        {"field": "spec.completions", "message": "Required value: when completion mode is Indexed"},
    ]}}
    assert not cause_problems([{"field": "spec.completions", "message_contains": "when completion mode"}], status)
    assert cause_problems([{"field": "spec.completions", "message_contains": "nope"}], status)
    assert cause_problems([{"field": "spec.parallelism"}], status)


# ------------------------------------------------------------------ catalog expansion


def test_generators_and_base_template() -> None:
    value = expand_generators({
        "values": "<0..255 (256 ints)>",
        "rules": "<3 rules {action: FailJob, onExitCodes: {operator: In, values: [i+1]}}>",
        "template": "base",
    })
    assert value["values"] == list(range(256))
    assert [r["onExitCodes"]["values"] for r in value["rules"]] == [[1], [2], [3]]
    assert value["template"]["spec"]["containers"][0]["name"] == "abc"


def test_prepare_manifest_substitutes_run_id_and_drops_namespace() -> None:
    m = prepare_manifest({"metadata": {"name": "x", "namespace": "n"},
                          "spec": {"volumes": [{"hostPath": {"path": "/tmp/k8s-conformance/${RUN_ID}/a"}}]}}, "r1")
    assert m["spec"]["volumes"][0]["hostPath"]["path"] == "/tmp/k8s-conformance/r1/a"
    assert "namespace" not in m["metadata"]


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        ({"id": "a", "kind": "table", "columns": [], "rows": []}, "table"),
        ({"id": "a", "manifest": {"kind": "Job"}, "expect": {"http_status": 422}}, "create_invalid"),
        ({"id": "a", "kind": "update_valid", "manifest": {}}, "update_valid"),
        ({"id": "a", "cronjob": {"kind": "CronJob"}, "expect": {"http_status": 422}}, "create_invalid"),
        ({"id": "a", "job": {"kind": "Job"}, "expect": {}}, "workload"),
    ],
    ids=["table", "validation-default", "update-valid", "cron-create-invalid", "workload"],
)
def test_scenario_kind(raw: dict[str, Any], kind: str) -> None:
    assert Scenario(id="a", group="g", file="f", raw=raw, expect=dict(raw.get("expect") or {})).kind == kind


def test_timing_scales_only_backoff_scenarios() -> None:
    timing = Timing(backoff_base=1.0)
    dependent = Scenario("a", "g", "f", {}, {"depends_on_backoff_base": True, "timeout_s": 90})
    plain = Scenario("b", "g", "f", {}, {"timeout_s": 90})
    assert timing.bound(dependent, 10) == pytest.approx(1.0)
    assert timing.bound(plain, 10) == 10
    assert timing.deadline(dependent) == 90


def test_every_catalog_word_is_implemented() -> None:
    for scenario in load_catalog(default_catalog_dir()):
        assert not unsupported_keys(scenario.expect), scenario.id
        assert scenario_gaps(scenario) == [], scenario.id


# ------------------------------------------------------------------ timeline, triggers, checks


def _pod(name: str, uid: str, phase: str, index: int | None = None, **meta: Any) -> dict[str, Any]:
    annotations = {"batch.kubernetes.io/job-completion-index": str(index)} if index is not None else {}
    return {"metadata": {"name": name, "uid": uid, "annotations": annotations, **meta}, "status": {"phase": phase}}


def _job(status: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "j", "uid": "ju"}, "status": status}


def _ctx(expect: dict[str, Any] | None = None, **raw: Any) -> Context:
    return Context(scenario=Scenario("s", "g", "f", raw, expect or {}), names={"job uid": "ju"})


def _timeline() -> Timeline:
    tl = Timeline(job_name="j")
    tl.apply("Job", "ADDED", _job({}), 0.0)
    tl.apply("Pod", "ADDED", _pod("p0", "u0", "Pending", 0), 0.1)
    tl.apply("Pod", "MODIFIED", _pod("p0", "u0", "Running", 0), 0.5)
    tl.apply("Pod", "ADDED", _pod("p1", "u1", "Running", 1), 0.6)
    tl.apply("Job", "MODIFIED", _job({"active": 2, "ready": 2}), 0.7)
    tl.apply("Pod", "MODIFIED", _pod("p0", "u0", "Failed", 0), 2.0)
    tl.apply("Job", "MODIFIED", _job({"active": 1, "failed": 1, "ready": 1}), 2.1)
    tl.apply("Pod", "ADDED", _pod("p2", "u2", "Pending", 0), 3.0)
    tl.apply("Pod", "MODIFIED", _pod("p1", "u1", "Succeeded", 1), 4.0)
    tl.apply("Pod", "MODIFIED", _pod("p2", "u2", "Succeeded", 0), 5.0)
    tl.apply("Job", "MODIFIED", _job({"succeeded": 2, "failed": 1, "completedIndexes": "0,1",
                                      "conditions": [{"type": "Complete", "status": "True"}]}), 5.1)
    return tl


@pytest.mark.parametrize(
    ("when", "t", "prev", "met"),
    [
        pytest.param({"t": "5s"}, 4.9, None, False, id="t-before"),
        pytest.param({"t": "5s"}, 5.0, None, True, id="t-reached"),
        pytest.param({"pods_succeeded": 2}, 6.0, None, True, id="pods-succeeded-ever"),
        pytest.param({"pods_succeeded": 3}, 6.0, None, False, id="pods-succeeded-not-yet"),
        pytest.param({"pods_running": 1}, 6.0, None, False, id="no-pod-running-now"),
        pytest.param({"status": {"succeeded": 2, "failed": {"min": 1}}}, 6.0, None, True, id="status-subset"),
        pytest.param({"condition": {"type": "Complete", "status": "True"}}, 6.0, None, True, id="condition"),
        pytest.param({"after_previous": True}, 6.0, 5.0, True, id="after-previous"),
        pytest.param({"t_after_previous": "5s"}, 9.0, 5.0, False, id="t-after-previous-early"),
        pytest.param({"t_after_previous": "5s"}, 10.0, 5.0, True, id="t-after-previous-due"),
        pytest.param({"created": True}, 0.0, None, True, id="created"),
        pytest.param({"t": "1s", "pods_succeeded": 5}, 6.0, None, False, id="and-of-keys"),
    ],
)
def test_triggers(when: dict[str, Any], t: float, prev: float | None, met: bool) -> None:
    assert trigger_met(when, _timeline(), t, prev, _ctx()) is met


def test_unknown_trigger_is_a_harness_gap() -> None:
    with pytest.raises(UnsupportedFormat):
        trigger_met({"moon_phase": "full"}, _timeline(), 0.0, None, _ctx())


def test_pods_running_trigger_and_select() -> None:
    tl = Timeline(job_name="j")
    tl.apply("Pod", "ADDED", _pod("a", "ua", "Running", 0), 0.1)
    tl.apply("Pod", "ADDED", _pod("b", "ub", "Running", 1), 0.2)
    assert trigger_met({"pods_running": 2}, tl, 1.0, None, _ctx())
    assert select_pod({"first": True}, tl) == "ua"
    assert select_pod({"index": 1}, tl) == "ub"
    assert select_pod({"index": 7}, tl) is None
    tl.selected_pod = "ub"
    assert select_pod({"same_as_previous": True}, tl) == "ub"


@pytest.mark.parametrize(
    ("expect", "ok"),
    [
        pytest.param({"conditions": [{"type": "Complete", "status": "True"}]}, True, id="conditions"),
        pytest.param({"status": {"succeeded": 2, "failed": 1, "active": 0, "completedIndexes": "0,1"}}, True, id="status"),
        pytest.param({"pods": {"created": 3, "phases": {"Succeeded": 2, "Failed": 1}}}, True, id="pods-created-phases"),
        pytest.param({"pods": {"created": 2}}, False, id="pods-created-wrong"),
        pytest.param({"pods": {"created_per_index": {"0": 2, "1": 1}}}, True, id="created-per-index"),
        pytest.param({"pods_succeeded_indexes": [0, 1]}, True, id="succeeded-indexes"),
        pytest.param({"during": [{"at": "x", "status": {"active": 1, "failed": 1, "ready": 1}}]}, True, id="during-observed"),
        pytest.param({"during": [{"at": "x", "status": {"active": 2, "failed": 1}}]}, False, id="during-never"),
        pytest.param({"status_sequence": [{"active": 2}, {"failed": 1, "active": 1}, {"succeeded": 2}]}, True, id="sequence"),
        pytest.param({"status_sequence": [{"succeeded": 2}, {"active": 2}]}, False, id="sequence-out-of-order"),
        pytest.param({"max_active_at_any_time": 2}, True, id="max-active"),
        pytest.param({"max_active_at_any_time": 1}, False, id="max-active-exceeded"),
        pytest.param({"conditions_absent": ["Failed"]}, True, id="absent"),
        pytest.param({"conditions_count": 1}, True, id="count"),
        pytest.param({"job_get": {"http_status": 200}}, True, id="job-present"),
        pytest.param({"pod_each": {"annotations_contain_key": "batch.kubernetes.io/job-completion-index"}}, True, id="pod-each"),
        pytest.param({"timing": {"min_gap_between_pod_creations_s": 0.4}}, True, id="min-gap"),
        pytest.param({"timing": {"min_gap_between_pod_creations_s": 4}}, False, id="min-gap-violated"),
        pytest.param({"notes": "doc only", "timeout_s": 3}, True, id="doc-keys-ignored"),
    ],
)
def test_expectations_over_timeline(expect: dict[str, Any], ok: bool) -> None:
    assert (not evaluate(expect, _timeline(), _ctx(expect))) is ok


def test_never_checks_flag_history() -> None:
    tl = _timeline()
    assert not never_violations({"conditions_absent": ["Failed"], "status": {"active": 99}}, tl, _ctx())
    tl.apply("Job", "MODIFIED", _job({"conditions": [{"type": "Failed", "status": "True"}]}), 6.0)
    tl.apply("Job", "MODIFIED", _job({}), 7.0)
    assert never_violations({"conditions_absent": ["Failed"]}, tl, _ctx())


def test_deleted_pods_count_as_created_and_deleted_by_controller() -> None:
    tl = Timeline(job_name="j")
    tl.apply("Pod", "ADDED", _pod("a", "ua", "Running", 1), 0.1)
    tl.apply("Pod", "ADDED", _pod("b", "ub", "Running", 2), 0.1)
    tl.apply("Pod", "DELETED", _pod("a", "ua", "Running", 1), 1.0)
    tl.harness_deleted_pods.add("ub")
    tl.apply("Pod", "DELETED", _pod("b", "ub", "Running", 2), 1.0)
    expect = {"pods": {"created": 2, "remaining": 0, "deleted_by_controller": 1, "indexes_deleted_by_controller": [1]}}
    assert not evaluate(expect, tl, _ctx(expect))


def test_pod_field_expectations_with_placeholders() -> None:
    tl = Timeline(job_name="j")
    pod = _pod("j-0-abc", "u", "Running", 0, generateName="j-0-",
               ownerReferences=[{"kind": "Job", "name": "j", "uid": "ju", "controller": True}],
               finalizers=["batch.kubernetes.io/job-tracking"])
    pod["spec"] = {"hostname": "j-0", "containers": [{"name": "c", "env": [
        {"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
            "fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}}}]}]}
    tl.apply("Pod", "ADDED", pod, 0.1)
    expect = {
        "pod_each": {"spec.hostname": "j-<index>", "generateName": "j-<index>-", "env": {"JOB_COMPLETION_INDEX": "<index>"}},
        "pod_while_running": {"ownerReferences": [{"kind": "Job", "uid": "<job uid>", "controller": True}],
                              "finalizers_contain": ["batch.kubernetes.io/job-tracking"]},
    }
    assert not evaluate(expect, tl, _ctx(expect))
    assert evaluate({"pod_each": {"spec.hostname": "other-<index>"}}, tl, _ctx())


def test_unknown_expectation_key_is_reported() -> None:
    assert unsupported_keys({"conditions": [], "frobnicate": 1, "notes": "x"}) == ["frobnicate"]


def _job_with(command: str, **expect: Any) -> Scenario:
    raw = {"id": "x", "job": {"kind": "Job", "spec": {"template": {"spec": {"containers": [
        {"name": "c", "command": ["sh", "-c", command]}]}}}}}
    return Scenario("x", "g", "f", raw, dict(expect))


@pytest.mark.parametrize(
    ("scenario", "unscaled"),
    [
        pytest.param(_job_with("sleep 3; exit 0", depends_on_backoff_base=True), True, id="finite-sleep-races-backoff"),
        pytest.param(_job_with("exec sleep 3600", depends_on_backoff_base=True), False, id="forever-sleep"),
        pytest.param(_job_with("sleep 3; exit 0"), False, id="not-backoff-dependent"),
        pytest.param(_job_with("exit 1", depends_on_backoff_base=True), False, id="no-sleep"),
    ],
)
def test_needs_unscaled_backoff(scenario: Scenario, unscaled: bool) -> None:
    assert scenario.needs_unscaled_backoff is unscaled


@pytest.mark.parametrize(
    ("raw", "slow"),
    [
        ({"id": "c", "cronjob": {"kind": "CronJob"}, "expect": {"timeout_s": 300}}, True),
        ({"id": "c", "cronjob": {"kind": "CronJob"}, "expect": {"timeout_s": 60, "steps_all_succeed": True}}, False),
        ({"id": "c", "cronjob": {"kind": "CronJob"}, "expect": {"http_status": 422}}, False),
        ({"id": "j", "job": {"kind": "Job"}, "expect": {"timeout_s": 300}}, False),
    ],
    ids=["cron-e2e-minutes", "cron-api-ops-short", "cron-create-invalid", "job-long"],
)
def test_slow_classification(raw: dict[str, Any], slow: bool) -> None:
    assert Scenario("c", "g", "f", raw, dict(raw.get("expect") or {})).needs_real_minutes is slow


# ------------------------------------------------------------------ the full vocabulary (README)

FULL_VOCABULARY_SCENARIO: dict[str, Any] = {
    "id": "x", "source": {}, "description": "every word of the README's full vocabulary",
    "job": {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j", "labels": {"app": "x"}}},
    "pre_create": [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "orphan", "labels": {"app": "x"}}}],
    "actions": [
        {"when": {"pods_remaining_active": 0, "created": True}, "do": "update_job", "set": {"spec.suspend": False}},
        {"when": {"after_previous": True}, "do": "update_pod", "select": {"from": "orphan"},
         "set": {"metadata.annotations.updated": "true"}},
        {"when": {"after_previous": True}, "do": "host_touch", "path": "/tmp/x"},
        {"when": {"after_previous": True}, "do": "delete_collection", "labelSelector": "app=x", "wait_for_gc": True},
        {"when": {"after_previous": True}, "do": "update_status",
         "set": {"status.conditions[type=Complete].status": "False"}},
        {"when": {"after_previous": True}, "do": "assert", "expect": {"events_reasons_contain": ["Completed"]}},
    ],
    "expect": {
        "conditions_before_delete": [{"type": "Complete", "status": "True"}],
        "status_sequence": [{"ready": 1}, {"active": 0}],
        "watch_events": [{"type": "ADDED", "label": {"app": "x"}}, {"type": "DELETED"}],
        "list_all_namespaces_by_label_before_delete": 1,
        "list_after_delete": 0,
        "pod orphan": {"finalizers_contain": ["f"], "ownerReferences": [{"kind": "Job", "name": "j"}]},
        "pods": {"created_by_controller": 1, "created_per_index": [1, 1]},
        "events_reasons_contain": ["Completed"],
        "deleted_job_not_in_status_active": True,
        "timing": {"job_exists_at_s_after_finish": 5, "job_gone_by_s_after_finish": 10},
    },
}


def test_the_full_vocabulary_is_implemented() -> None:
    assert scenario_gaps(Scenario("x", "g", "f", FULL_VOCABULARY_SCENARIO, FULL_VOCABULARY_SCENARIO["expect"])) == []


@pytest.mark.parametrize(("raw", "gap"), [
    pytest.param({"job": {}, "expect": {}, "colour": "red"}, "unknown scenario key 'colour'", id="scenario-key"),
    pytest.param({"kind": "invalid_create", "manifest": {}}, "unknown scenario kind", id="scenario-kind"),
    pytest.param({"job": {}, "actions": [{"do": "reboot_node"}]}, "unknown verb 'reboot_node'", id="verb"),
    pytest.param({"job": {}, "actions": [{"do": "delete_collection", "wait_for_gcc": True}]},
                 "unknown key 'wait_for_gcc'", id="verb-key"),
    pytest.param({"job": {}, "actions": [{"do": "delete_pod", "when": {"pods_runing": 1}}]},
                 "unknown trigger 'pods_runing'", id="trigger"),
    pytest.param({"job": {}, "actions": [{"do": "delete_pod", "select": {"index": 1, "newest": True}}]},
                 "unknown key 'newest'", id="select"),
    pytest.param({"job": {}, "expect": {"pods": {"created_by_kubelet": 1}}}, "unknown key 'created_by_kubelet'",
                 id="pods-key"),
    pytest.param({"job": {}, "expect": {"timing": {"job_gone_by_s": 3}}}, "unknown key 'job_gone_by_s'", id="timing"),
    pytest.param({"job": {}, "expect": {"pod orphan": {"labels_contain": {}}}}, "unknown key 'labels_contain'",
                 id="pod-named"),
    pytest.param({"job": {}, "expect": {"during": [{"at": "x", "statuz": {}}]}}, "unknown expectation 'statuz'",
                 id="during"),
    pytest.param({"job": {}, "actions": [{"do": "assert", "expect": {"podz": {}}}]}, "unknown expectation 'podz'",
                 id="assert-expect"),
    pytest.param({"job": {}, "pre_create": [{"kind": "Pod"}]}, "not a complete manifest", id="pre-create"),
])
def test_an_unknown_word_is_a_loud_harness_gap(raw: dict[str, Any], gap: str) -> None:
    gaps = scenario_gaps(Scenario("x", "g", "f", raw, dict(raw.get("expect") or {})))
    assert any(gap in g for g in gaps), gaps


def test_index_placeholder_generators() -> None:
    out = expand_generators({"rules": "<3 patterns {values: [<i>], name: 'r-<i+1>', status: 'True'}>"})
    assert out == {"rules": [{"values": [0], "name": "r-1", "status": "True"},
                             {"values": [1], "name": "r-2", "status": "True"},
                             {"values": [2], "name": "r-3", "status": "True"}]}
    assert expand_generators("<2 x {a: i+1}>") == [{"a": 1}, {"a": 2}]
    assert expand_generators("<3..5 (3 ints)>") == [3, 4, 5]


def test_pods_remaining_active_is_exact() -> None:
    tl = _timeline()  # at the end: p0 Failed, p1 and p2 Succeeded
    assert trigger_met({"pods_remaining_active": 0}, tl, 6.0, None, _ctx())
    tl.apply("Pod", "ADDED", _pod("p3", "u3", "Running", 2), 6.0)
    tl.apply("Pod", "ADDED", _pod("p4", "u4", "Running", 3, deletionTimestamp="2024-01-01T00:00:00Z"), 6.1)
    assert trigger_met({"pods_remaining_active": 1}, tl, 6.2, None, _ctx())
    assert not trigger_met({"pods_remaining_active": 2}, tl, 6.2, None, _ctx())


def _with_orphan() -> Timeline:
    tl = _timeline()
    tl.ignored_pods.add("orphan")
    tl.apply("Pod", "ADDED", _pod("orphan", "uo", "Running", finalizers=["batch.kubernetes.io/job-tracking"],
                                  ownerReferences=[{"kind": "Job", "name": "j", "uid": "ju", "controller": True}]), 6.0)
    return tl


def test_pre_created_pods_are_selectable_by_name_and_never_counted() -> None:
    tl = _with_orphan()
    assert select_pod({"from": "orphan"}, tl) == "uo"
    assert not evaluate({"pods": {"created": 3, "created_by_controller": 3}}, tl, _ctx())
    with pytest.raises(UnsupportedFormat):
        select_pod({"from": "stranger"}, tl)
    tl.apply("Pod", "DELETED", _pod("orphan", "uo", "Running"), 7.0)
    assert select_pod({"from": "orphan"}, tl) is None


def test_pod_named_expectations() -> None:
    tl = _with_orphan()
    good = {"pod orphan": {"finalizers_contain": ["batch.kubernetes.io/job-tracking"],
                           "ownerReferences": [{"kind": "Job", "name": "j", "controller": True}]}}
    assert evaluate(good, tl, _ctx()) == []
    bad = {"pod orphan": {"finalizers_contain": ["other"], "ownerReferences": [{"kind": "CronJob"}]}}
    assert len(evaluate(bad, tl, _ctx())) == 2
    assert evaluate({"pod ghost": {"finalizers_contain": []}}, tl, _ctx())


def test_created_per_index_as_a_list() -> None:
    tl = _timeline()  # index 0: p0 and p2, index 1: p1
    assert evaluate({"pods": {"created_per_index": [2, 1]}}, tl, _ctx()) == []
    assert evaluate({"pods": {"created_per_index": [1, 1]}}, tl, _ctx())


def test_conditions_before_delete_uses_history_up_to_the_delete() -> None:
    tl = _timeline()
    ctx = _ctx()
    ctx.delete_t = 5.5
    tl.apply("Job", "MODIFIED", _job({"conditions": [{"type": "Failed", "status": "True"}]}), 6.0)
    tl.apply("Job", "DELETED", _job({}), 6.5)
    assert evaluate({"conditions_before_delete": [{"type": "Complete", "status": "True"}]}, tl, ctx) == []
    assert evaluate({"conditions_before_delete": [{"type": "Failed", "status": "True"}]}, tl, ctx)


def test_watch_events_ordered_subsequence() -> None:
    tl = Timeline(job_name="j")
    tl.apply("Job", "ADDED", {"metadata": {"name": "j", "uid": "a", "labels": {"l": "1"}}}, 0.0)
    tl.apply("Pod", "ADDED", _pod("p", "u", "Running"), 0.1)
    tl.apply("Job", "MODIFIED", {"metadata": {"name": "j", "uid": "a", "labels": {"l": "1"},
                                              "annotations": {"updated": "true"}}}, 0.2)
    tl.apply("Job", "DELETED", {"metadata": {"name": "j", "uid": "a"}}, 0.3)
    ok = [{"type": "ADDED", "label": {"l": "1"}}, {"type": "MODIFIED", "annotation": {"updated": "true"}},
          {"type": "DELETED"}]
    assert evaluate({"watch_events": ok}, tl, _ctx()) == []
    assert evaluate({"watch_events": [{"type": "DELETED"}, {"type": "ADDED"}]}, tl, _ctx())
    assert evaluate({"watch_events": [{"type": "MODIFIED", "annotation": {"updated": "false"}}]}, tl, _ctx())


def test_list_counts_and_event_reasons_come_from_the_runner() -> None:
    ctx = _ctx()
    tl = _timeline()
    expect = {"list_all_namespaces_by_label_before_delete": 1, "list_after_delete": 0,
              "events_reasons_contain": ["SuccessfulCreate", "Completed"]}
    assert len(evaluate(expect, tl, ctx)) == 3
    ctx.responses.update({"list_all_namespaces_by_label_before_delete": 1, "list_after_delete": 0})
    ctx.event_reasons.update({"SuccessfulCreate", "Completed", "SuccessfulDelete"})
    assert evaluate(expect, tl, ctx) == []


def test_deleted_job_not_in_status_active() -> None:
    tl = Timeline(cronjob_name="cj")
    ref = {"kind": "Job", "name": "j1", "uid": "j1u"}
    tl.apply("CronJob", "ADDED", {"metadata": {"name": "cj", "uid": "c"}, "status": {"active": [ref]}}, 0.0)
    tl.apply("Job", "ADDED", {"metadata": {"name": "j1", "uid": "j1u"}}, 0.1)
    assert evaluate({"deleted_job_not_in_status_active": True}, tl, _ctx())  # nothing deleted yet
    tl.apply("Job", "DELETED", {"metadata": {"name": "j1", "uid": "j1u"}}, 1.0)
    assert evaluate({"deleted_job_not_in_status_active": True}, tl, _ctx())  # still listed
    tl.apply("CronJob", "MODIFIED", {"metadata": {"name": "cj", "uid": "c"}, "status": {}}, 2.0)
    assert evaluate({"deleted_job_not_in_status_active": True}, tl, _ctx()) == []


def _finished_at(t: float) -> Timeline:
    tl = Timeline(job_name="j")
    tl.apply("Job", "ADDED", _job({}), 0.0)
    tl.apply("Job", "MODIFIED", _job({"conditions": [{"type": "Complete", "status": "True"}]}), t)
    return tl


def test_ttl_timing_bounds() -> None:
    exists = {"timing": {"job_exists_at_s_after_finish": 5}}
    gone_by = {"timing": {"job_gone_by_s_after_finish": 10}}
    tl = _finished_at(2.0)
    ctx = _ctx()
    ctx.now = 4.0
    assert evaluate(exists, tl, ctx)  # only 2 s so far: keep waiting
    ctx.now = 7.5
    assert evaluate(exists, tl, ctx) == []
    assert evaluate(gone_by, tl, ctx)  # still there
    tl.apply("Job", "DELETED", _job({}), 8.0)
    assert evaluate(exists, tl, ctx) == [] and evaluate(gone_by, tl, ctx) == []
    early = _finished_at(2.0)
    early.apply("Job", "DELETED", _job({}), 4.0)
    assert evaluate(exists, early, ctx)  # gone 2 s after finishing, promised 5
    late = _finished_at(2.0)
    late.apply("Job", "DELETED", _job({}), 20.0)
    assert evaluate(gone_by, late, ctx)  # 18 s > 10 s (+ slack)
