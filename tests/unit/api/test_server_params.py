"""Pure parameter parsing of the HTTP server: bad values are 400/422, never exceptions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from joblet.api import openapi
from joblet.api.server import (
    check_path_segment,
    delete_options,
    dry_run_param,
    int_param,
    log_options,
    resource_version_param,
)
from joblet.api.warning import parse_warning_header, warning_header
from joblet.errors import BadRequest, Invalid

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(("text", "want"), [(None, None), ("", None), ("5", 5), ("-3", -3), ("+7", 7),
                                            ("9223372036854775807", 2**63 - 1)])
def test_int_param_ok(text: str | None, want: int | None) -> None:
    assert int_param(text, "x") == want


@pytest.mark.parametrize("text", ["abc", "1.5", "1e3", " 5", "1_000", "٣", "9223372036854775808", "9" * 5000])
def test_int_param_bad(text: str) -> None:
    with pytest.raises(BadRequest):
        int_param(text, "x")


def test_dry_run_param() -> None:
    assert dry_run_param(None) is False and dry_run_param([]) is False
    assert dry_run_param(["All"]) is True and dry_run_param("All") is True
    for bad in (["Bogus"], "all", [5], 5, ["All", "x"]):
        with pytest.raises(BadRequest, match="dryRun: Unsupported value"):
            dry_run_param(bad)


@pytest.mark.parametrize("rv", ["abc", "1e5", "\x00", "99999999999999999999", "-1", "\uff11"])
def test_resource_version_param_bad(rv: str) -> None:
    with pytest.raises(BadRequest, match="resourceVersion"):
        resource_version_param(rv)


def test_resource_version_param_ok() -> None:
    assert resource_version_param("0") == "0" and resource_version_param("") is None
    assert resource_version_param(str(2**64 - 1)) == str(2**64 - 1)


@pytest.mark.parametrize("name", ["\x00", "a\x00b", ".", "..", "a%b", "a\nb"])
def test_check_path_segment(name: str) -> None:
    with pytest.raises(BadRequest):
        check_path_segment("name", name)
    check_path_segment("name", "good-name.1")


def test_warning_header_is_ascii_and_bounded() -> None:
    assert warning_header(['unknown field "bogus€"']) == '299 - "unknown field \\"bogus\\u20ac\\""'
    assert warning_header(["a\\b\r\n"]) == '299 - "a\\\\b\\u000d\\u000a"'
    many = warning_header([f"unknown field {'x' * 300}{i}" for i in range(100)])
    many.encode("ascii")
    assert len(many) <= 4096
    assert many.count('299 - "') >= 10  # shortened, not dropped wholesale


@pytest.mark.parametrize("texts", [['unknown field "bogus€"'], ["a\\b\r\n", 'say "hi", then go'], ["x"] * 1])
def test_warning_header_parses_back(texts: list[str]) -> None:
    """The HTTP client reads back what the server wrote, so both transports warn alike."""
    assert parse_warning_header(warning_header(texts)) == texts


def test_delete_options_types() -> None:
    assert delete_options({"gracePeriodSeconds": 5, "dryRun": ["All"]}, {}) == (None, 5, None, True)
    assert delete_options(None, {"gracePeriodSeconds": "3", "orphanDependents": "true"}) == ("Orphan", 3, None, False)
    bad: list[dict[str, Any]] = [{"gracePeriodSeconds": "abc"}, {"gracePeriodSeconds": {}}, {"dryRun": 5},
                                 {"dryRun": ["Bogus"]}, {"gracePeriodSeconds": 2**63}, {"orphanDependents": "yes"},
                                 {"preconditions": {"uid": 5}}]
    for body in bad:
        with pytest.raises(BadRequest):
            delete_options(body, {})


def test_propagation_unset_is_none() -> None:
    """None reaches the registry only when neither option was given (then a Job delete warns)."""
    assert delete_options(None, {})[0] is None
    assert delete_options({"gracePeriodSeconds": 1}, {"dryRun": "All"})[0] is None
    assert delete_options({"propagationPolicy": "Background"}, {})[0] == "Background"
    assert delete_options(None, {"orphanDependents": "false"})[0] == "Background"


def test_log_options() -> None:
    assert log_options({}, NOW) == (None, None, None)
    tail, limit, since = log_options({"tailLines": "3", "limitBytes": "10", "sinceSeconds": "60"}, NOW)
    assert (tail, limit, since) == (3, 10, datetime(2025, 12, 31, 23, 59, tzinfo=UTC))
    assert log_options({"sinceSeconds": "99999999999"}, NOW)[2] is None  # before any log: everything
    assert log_options({"sinceTime": "2025-01-01T00:00:00Z"}, NOW)[2] == datetime(2025, 1, 1, tzinfo=UTC)
    for q in ({"sinceTime": "garbage"}, {"sinceTime": "2024-13-45T00:00:00Z"}, {"tailLines": "x"}):
        with pytest.raises(BadRequest):
            log_options(q, NOW)
    for q in ({"tailLines": "-1"}, {"limitBytes": "0"}, {"sinceSeconds": "0"},
              {"sinceSeconds": "1", "sinceTime": "2025-01-01T00:00:00Z"}):
        with pytest.raises(Invalid):
            log_options(q, NOW)


@pytest.mark.parametrize(("field", "value"), [
    ("completions", "2"), ("completions", 2**31), ("backoffLimit", 1.5), ("suspend", "true"),
    ("activeDeadlineSeconds", 2**63), ("activeDeadlineSeconds", 1e308), ("ttlSecondsAfterFinished", 1e20),
])
def test_type_errors_job_spec(field: str, value: Any) -> None:
    errors = openapi.type_errors("batch/v1", "Job", {"spec": {field: value}})
    assert [c.field for c in errors] == [f"spec.{field}"]


def test_type_errors_accepts_good_values() -> None:
    job = {"metadata": {"name": "j", "labels": {"a": "b"}, "generation": 2**40},
           "spec": {"completions": None, "activeDeadlineSeconds": 2**40, "template": {"spec": {
               "securityContext": {"runAsUser": 4294967294},
               "containers": [{"name": "c", "resources": {"limits": {"cpu": 1, "memory": "1Gi"}},
                               "ports": [{"containerPort": 80}]}]}}}}
    assert openapi.type_errors("batch/v1", "Job", job) == []


def test_type_errors_secret_base64() -> None:
    good = {"a": "aGk=", "b": "", "c": "aGVs\nbG8="}
    assert openapi.type_errors("v1", "Secret", {"data": good}) == []
    bad = openapi.type_errors("v1", "Secret", {"data": {"x": "aGk", "y": "a*==", "z": "a==="}})
    assert [c.field for c in bad] == ["data[x]", "data[y]", "data[z]"]


def test_json_patch_value_types() -> None:
    openapi.check_json_patch_types("batch/v1", "Job", [{"op": "replace", "path": "/spec/parallelism", "value": 2},
                                                       {"op": "remove", "path": "/spec/completions"}])
    with pytest.raises(BadRequest, match="/spec/parallelism"):
        openapi.check_json_patch_types("batch/v1", "Job",
                                       [{"op": "replace", "path": "/spec/parallelism", "value": "2"}])
