"""The alert controller's decisions: triggers, policies, webhooks, redaction, payload, backoff."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import pytest

from joblet.controllers.alerts import (
    REDACTED,
    Trigger,
    alert_on,
    backoff_delay,
    build_job_payload,
    failed_pods,
    job_trigger,
    redact_lines,
    redact_text,
    safe_url,
    secret_refs,
    secret_values,
    too_old,
    url_allowed,
    wants_alert,
    webhooks_for,
)

Obj = dict[str, Any]
NOW = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)


def job(*conditions: tuple[str, str], annotations: Obj | None = None) -> Obj:
    return {"metadata": {"name": "j", "namespace": "d", "uid": "u1", "annotations": annotations or {}},
            "status": {"failed": 2, "conditions": [
                {"type": t, "status": "True", "reason": r, "message": f"{r} happened",
                 "lastTransitionTime": "2024-01-01T11:59:00Z"} for t, r in conditions]}}


@pytest.mark.parametrize(("obj", "expected"), [
    pytest.param(job(), None, id="running"),
    pytest.param(job(("Failed", "BackoffLimitExceeded")), "failure", id="failed"),
    pytest.param(job(("FailureTarget", "BackoffLimitExceeded")), None, id="failure-target-only"),
    pytest.param(job(("SuccessCriteriaMet", "CompletionsReached"), ("Complete", "CompletionsReached")), "success",
                 id="complete"),
])
def test_job_trigger(obj: Obj, expected: str | None) -> None:
    t = job_trigger(obj)
    assert (t.kind if t else None) == expected


@pytest.mark.parametrize(("kind", "policy", "expected"), [
    pytest.param("failure", "failure", True, id="failure-default"),
    pytest.param("success", "failure", False, id="success-not-by-default"),
    pytest.param("success", "success", True, id="success-opt-in"),
    pytest.param("failure", "success", False, id="success-only"),
    pytest.param("success", "always", True, id="always-success"),
    pytest.param("missed-schedule", "failure", True, id="missed-schedule"),
])
def test_wants_alert(kind: str, policy: str, expected: bool) -> None:
    assert wants_alert(kind, policy) is expected


def test_alert_on_defaults_to_failure() -> None:
    assert alert_on(None) == "failure"
    assert alert_on(job(annotations={"joblet.dev/alert-on": "Always"})) == "always"
    assert alert_on(job(annotations={"joblet.dev/alert-on": "bogus"})) == "failure"


def test_webhooks_merge_flags_and_annotations_without_duplicates() -> None:
    j = job(annotations={"joblet.dev/alert-webhook": "http://a/x, http://b/y,ftp://nope"})
    cj = {"metadata": {"annotations": {"joblet.dev/alert-webhook": "http://a/x,https://c"}}}
    allow = ["a", "b", "https://c"]
    assert webhooks_for(["http://g"], j, cj, None, allow=allow) == ["http://g", "http://a/x", "http://b/y", "https://c"]


def test_annotation_webhooks_need_the_allow_list() -> None:
    j = job(annotations={"joblet.dev/alert-webhook": "http://127.0.0.1:8080/x,http://169.254.169.254/latest"})
    assert webhooks_for(["http://g"], j) == ["http://g"]  # none allowed by default
    assert webhooks_for([], j, allow=["127.0.0.1:8080"]) == ["http://127.0.0.1:8080/x"]


@pytest.mark.parametrize(("url", "pattern", "allowed"), [
    ("https://hooks.slack.com/services/T0/B0", "hooks.slack.com", True),
    ("https://hooks.slack.com/services/T0/B0", "https://hooks.slack.com/services", True),
    ("https://hooks.slack.com/servicesX", "https://hooks.slack.com/services", False),
    ("http://hooks.slack.com/services/T0", "https://hooks.slack.com", False),  # scheme
    ("https://hooks.slack.com:8443/x", "hooks.slack.com", False),  # port
    ("https://hooks.slack.com:443/x", "hooks.slack.com", True),
    ("https://a.example.com/x", "*.example.com", True),
    ("https://example.com/x", "*.example.com", False),
    ("https://evilexample.com/x", "*.example.com", False),
    ("http://hooks.slack.com@127.0.0.1/x", "hooks.slack.com", False),  # userinfo trick
    ("http://user:pw@hooks.slack.com/x", "hooks.slack.com", False),  # credentials
    ("https://hooks.slack.com/services/../admin", "hooks.slack.com/services", False),
    ("https://hooks.slack.com/services/%2e%2e/admin", "hooks.slack.com/services", False),
    ("ftp://hooks.slack.com/x", "hooks.slack.com", False),
    ("http://127.0.0.1:9/hook", "127.0.0.1:9", True),
    ("http://[::1]:9/hook", "[::1]:9", True),
    ("http://127.0.0.1:99999/hook", "127.0.0.1", False),  # invalid port
])
def test_url_allowed(url: str, pattern: str, allowed: bool) -> None:
    assert url_allowed(url, [pattern]) is allowed


@pytest.mark.parametrize(("url", "expected"), [
    pytest.param("https://hooks.slack.com/services/T0/B0/secret", "https://hooks.slack.com/…", id="path-hidden"),
    pytest.param("http://user:pw@127.0.0.1:8080/", "http://127.0.0.1:8080", id="credentials-hidden"),
    pytest.param("http://h?token=x", "http://h/…", id="query-hidden"),
])
def test_safe_url(url: str, expected: str) -> None:
    assert safe_url(url) == expected


@pytest.mark.parametrize(("attempt", "expected"), [(1, 1.0), (2, 2.0), (3, 4.0), (10, 30.0)],
                         ids=["first", "second", "third", "capped"])
def test_backoff_delay(attempt: int, expected: float) -> None:
    assert backoff_delay(attempt, 1.0, 30.0) == expected


def test_too_old() -> None:
    assert not too_old(Trigger("failure", "", "", "2024-01-01T11:59:00Z"), NOW, 3600)
    assert too_old(Trigger("failure", "", "", "2023-12-31T00:00:00Z"), NOW, 3600)


POD: Obj = {
    "metadata": {"name": "j-0-abcde", "uid": "p1", "creationTimestamp": "2024-01-01T11:58:00Z",
                 "annotations": {"batch.kubernetes.io/job-completion-index": "0"}},
    "spec": {
        "containers": [{"name": "c", "env": [
            {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}],
            "envFrom": [{"secretRef": {"name": "api"}}]}],
        "volumes": [{"name": "v", "secret": {"secretName": "certs"}},
                    {"name": "p", "projected": {"sources": [{"secret": {"name": "proj"}}]}}],
    },
    "status": {"phase": "Failed", "containerStatuses": [
        {"name": "c", "state": {"terminated": {"exitCode": 3, "reason": "Error"}}}]},
}


def test_secret_refs_cover_env_envfrom_and_volumes() -> None:
    assert secret_refs(POD) == {"db", "api", "certs", "proj"}


def test_secret_values_decode_data_and_skip_short_values() -> None:
    secret = {"data": {"password": base64.b64encode(b"hunter22").decode(), "short": base64.b64encode(b"ab").decode()},
              "stringData": {"pem": "-----BEGIN-----\nMIIBsecretline\n-----END-----"}}
    values = secret_values(secret)
    assert "hunter22" in values and "MIIBsecretline" in values
    assert "ab" not in values
    # encodings of a value are redacted too (best effort)
    assert {base64.b64encode(b"hunter22").decode(), b"hunter22".hex(), b"hunter22".hex().upper(),
            base64.b64encode(b"hunter22").decode().rstrip("=")} <= values


def test_redaction_of_lines_and_messages() -> None:
    secrets = {"hunter22"}
    assert redact_lines(["connecting", "password is hunter22!", "done"], secrets) == ["connecting", REDACTED, "done"]
    assert redact_text("auth failed for hunter22", secrets) == "auth failed for [redacted]"


def test_failed_pods_newest_first_and_limited() -> None:
    pods = [{**POD, "metadata": {**POD["metadata"], "name": f"p{i}", "creationTimestamp": f"2024-01-01T11:5{i}:00Z"}}
            for i in range(5)]
    ok = {"metadata": {"name": "ok"}, "status": {"phase": "Succeeded"}}
    assert [p["metadata"]["name"] for p in failed_pods([*pods, ok], limit=2)] == ["p4", "p3"]


def test_payload_has_everything_and_no_secret() -> None:
    j = job(("Failed", "BackoffLimitExceeded"))
    j["status"]["conditions"][0]["message"] = "failed with hunter22"
    trigger = job_trigger(j)
    assert trigger is not None
    tails = {"j-0-abcde": {"c": ["starting", "using password hunter22", "exit 3"]}}
    payload = build_job_payload(j, trigger, [POD], tails, {"hunter22"}, "http://127.0.0.1:6443", NOW)
    assert payload["kind"] == "JobFailed"
    assert (payload["job"], payload["namespace"], payload["uid"]) == ("j", "d", "u1")
    assert payload["reason"] == "BackoffLimitExceeded"
    assert payload["dashboardUrl"] == "http://127.0.0.1:6443/ui/jobs/d/j"
    assert payload["time"] == "2024-01-01T12:00:00Z"
    pod = payload["failedPods"][0]
    assert pod["name"] == "j-0-abcde" and pod["index"] == 0 and pod["exitCodes"] == {"c": 3}
    assert pod["containers"][0]["logTail"] == ["starting", REDACTED, "exit 3"]
    assert "hunter22" not in str(payload)
