"""Hostile input over real HTTP: every bad request is a 4xx Status, and nothing changes.

Why: the security audit (SEC-03, SEC-16, SEC-17, SEC-18) found request bodies and
parameters that crashed the server, stalled its event loop, answered 500 (sometimes after
the write), or stored values no typed client can read. Each row of :data:`CASES` is one of
those inputs, sent to a real uvicorn serving the real stack; the sentinel objects created
first must be byte-for-byte unchanged at the end.

The server comes from the integration harness (:func:`running_server`); switching that one
helper to HTTPS + token is all that authentication needs here.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "integration"))
from test_api_http import running_server

from joblet.clock import RealClock

CLOCK = RealClock()  # these tests measure how fast the real server answers

NS = "/api/v1/namespaces/default"
JOBS = "/apis/batch/v1/namespaces/default/jobs"
JSON = {"Content-Type": "application/json"}
YAML = {"Content-Type": "application/yaml"}
MERGE = {"Content-Type": "application/merge-patch+json"}
STRATEGIC = {"Content-Type": "application/strategic-merge-patch+json"}
JSON_PATCH = {"Content-Type": "application/json-patch+json"}
PROTOBUF = {"Content-Type": "application/vnd.kubernetes.protobuf"}


# --------------------------------------------------------------------------- bodies

def alias_bomb(levels: int) -> bytes:
    lines = ["apiVersion: v1", "kind: ConfigMap", "metadata: {name: bomb}", "anchors:",
             "  l0: &l0 [" + ", ".join(["ab"] * 10) + "]"]
    lines += [f"  l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, levels)]
    lines.append(f"data:\n  a: *l{levels - 1}")
    return "\n".join(lines).encode()


def deep_json(depth: int, name: str = "deep") -> bytes:
    return b'{"metadata":{"name":"' + name.encode() + b'"},"data":{"a":"b"},"x":' + b"[" * depth + b"]" * depth + b"}"


def deep_patch(depth: int) -> bytes:
    return b'{"metadata":{"annotations":{"a":"b"}},"x":' + b'{"y":' * depth + b"1" + b"}" * depth + b"}"


def job(spec: dict[str, Any], name: str = "poison") -> bytes:
    template = {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}
    return orjson.dumps({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
                         "spec": {"template": template, **spec}})


def job_with(raw_field: bytes) -> bytes:
    """A Job body with one spec field spelled as raw JSON (numbers orjson would not write)."""
    return job({}).replace(b'"spec":{', b'"spec":{' + raw_field + b",", 1)


def varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | 0x80 if n else byte)
        if not n:
            return bytes(out)


def ld(number: int, payload: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def protobuf_configmap(time_field: int, seconds: int) -> bytes:
    """A ConfigMap whose metadata carries a Time (8 creation, 9 deletion) of ``seconds``."""
    meta = ld(1, b"pb-time") + ld(time_field, varint(1 << 3) + varint(seconds))
    raw = ld(1, meta)
    return b"k8s\x00" + ld(1, ld(1, b"v1") + ld(2, b"ConfigMap")) + ld(2, raw)


# --------------------------------------------------------------------------- cases

@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    codes: tuple[int, ...] = (400,)
    within: float | None = None  # seconds the answer must arrive in


CASES = [
    # SEC-03: parser bombs, answered before anything is expanded.
    Case("yaml-alias-bomb-1e7", "POST", f"{NS}/configmaps?dryRun=All", alias_bomb(7), YAML, within=0.5),
    Case("yaml-alias-bomb-1e8", "POST", f"{NS}/configmaps?dryRun=All", alias_bomb(8), YAML, within=0.5),
    Case("apply-patch-alias", "PATCH", f"{NS}/configmaps/sentinel?fieldManager=m",
         b"metadata: {labels: &l {a: b}}\ndata: *l\n", {"Content-Type": "application/apply-patch+yaml"}),
    # SEC-16: nesting.
    Case("json-depth-600", "POST", f"{NS}/configmaps", deep_json(600), JSON),
    Case("json-depth-101", "POST", f"{NS}/configmaps", deep_json(101), JSON),
    Case("yaml-depth-400", "POST", f"{NS}/configmaps", b"metadata: {name: y}\nx: " + b"[" * 400 + b"]" * 400, YAML),
    Case("merge-patch-depth-1000", "PATCH", f"{NS}/configmaps/sentinel", deep_patch(1000), MERGE),
    Case("strategic-patch-depth-1000", "PATCH", f"{NS}/configmaps/sentinel", deep_patch(1000), STRATEGIC),
    Case("json-patch-pointer-150", "PATCH", f"{NS}/configmaps/sentinel",
         orjson.dumps([{"op": "add", "path": "/x" * 150, "value": 1}]), JSON_PATCH, codes=(422,)),
    # SEC-16: metadata.name of the wrong type.
    Case("name-int", "POST", f"{NS}/configmaps", b'{"metadata":{"name":5}}', JSON),
    Case("name-list", "POST", f"{NS}/configmaps", b'{"metadata":{"name":["a"]}}', JSON),
    # SEC-16: protobuf Time overflow.
    Case("protobuf-creation-2^62", "POST", f"{NS}/configmaps", protobuf_configmap(8, 2**62), PROTOBUF),
    Case("protobuf-creation--2^62", "POST", f"{NS}/configmaps", protobuf_configmap(8, -(2**62)), PROTOBUF),
    Case("protobuf-deletion-2^40", "POST", f"{NS}/configmaps", protobuf_configmap(9, 2**40), PROTOBUF),
    # SEC-16: NUL in names and namespaces never reaches a file path.
    Case("nul-pod-log", "GET", f"{NS}/pods/%00/log"),
    Case("nul-namespace", "GET", "/api/v1/namespaces/%00/pods/x/log"),
    Case("nul-configmap-get", "GET", f"{NS}/configmaps/a%00b"),
    Case("nul-container-deleted-pod", "GET", f"{NS}/pods/gone/log?container=%00"),
    Case("traversal-container-deleted-pod", "GET", f"{NS}/pods/gone/log?container=../../../../etc"),
    # SEC-16: watch resourceVersion is a 400 before the stream starts.
    *[Case(f"watch-rv-{label}", "GET", f"{NS}/configmaps?watch=1&resourceVersion={rv}")
      for label, rv in (("abc", "abc"), ("1e5", "1e5"), ("nul", "%00"), ("huge", "99999999999999999999"))],
    Case("watch-bad-selector", "GET", f"{NS}/configmaps?watch=1&labelSelector=a%20in%20(", codes=(400,)),
    # SEC-16: pods/log parameters.
    Case("log-sinceSeconds-huge", "GET", f"{NS}/pods/sentinel/log?sinceSeconds=99999999999",
         codes=(200, 400, 404)),
    Case("log-sinceSeconds-abc", "GET", f"{NS}/pods/sentinel/log?sinceSeconds=abc"),
    Case("log-sinceSeconds-2^64", "GET", f"{NS}/pods/sentinel/log?sinceSeconds=18446744073709551616"),
    Case("log-sinceTime-garbage", "GET", f"{NS}/pods/sentinel/log?sinceTime=garbage"),
    Case("log-sinceTime-month-13", "GET", f"{NS}/pods/sentinel/log?sinceTime=2024-13-45T00:00:00Z"),
    Case("log-tailLines-negative", "GET", f"{NS}/pods/sentinel/log?tailLines=-1", codes=(422,)),
    Case("log-tailLines-float", "GET", f"{NS}/pods/sentinel/log?tailLines=1e3"),
    Case("log-limitBytes-zero", "GET", f"{NS}/pods/sentinel/log?limitBytes=0", codes=(422,)),
    Case("log-since-both", "GET", f"{NS}/pods/sentinel/log?sinceSeconds=5&sinceTime=2024-01-01T00:00:00Z",
         codes=(422,)),
    # SEC-16: DeleteOptions of the wrong type; the sentinel must survive.
    Case("delete-grace-string", "DELETE", f"{NS}/configmaps/sentinel", b'{"gracePeriodSeconds":"abc"}', JSON),
    Case("delete-grace-object", "DELETE", f"{NS}/configmaps/sentinel", b'{"gracePeriodSeconds":{"a":1}}', JSON),
    Case("delete-dryrun-number", "DELETE", f"{NS}/configmaps/sentinel", b'{"dryRun":5}', JSON),
    Case("delete-dryrun-bogus", "DELETE", f"{NS}/configmaps/sentinel", b'{"dryRun":["Bogus"]}', JSON),
    Case("delete-grace-query", "DELETE", f"{NS}/configmaps/sentinel?gracePeriodSeconds=1.5"),
    Case("delete-collection-grace", "DELETE", f"{NS}/configmaps", b'{"gracePeriodSeconds":"abc"}', JSON),
    # SEC-16: YAML that JSON cannot carry.
    Case("yaml-lone-surrogate", "POST", f"{NS}/configmaps", b'metadata: {name: s}\ndata: {a: "\\ud800"}', YAML),
    Case("yaml-int-2^64", "POST", JOBS, b"metadata: {name: big}\nspec: {completions: 18446744073709551616}", YAML),
    Case("yaml-plain-text-binary", "POST", f"{NS}/configmaps", b"metadata: {name: b}\ndata: !!binary aGk=",
         {"Content-Type": "text/plain"}, codes=(400, 415)),
    # SEC-17: types and ranges as typed decoding.
    Case("completions-string", "POST", JOBS, job({"completions": "2"})),
    Case("completions-2^63", "POST", JOBS, job_with(b'"completions":9223372036854775808')),
    Case("completions-1.8e19", "POST", JOBS, job_with(b'"completions":1.8e19')),
    Case("backoffLimit-1.5", "POST", JOBS, job({"backoffLimit": 1.5})),
    Case("activeDeadline-1e308", "POST", JOBS, job_with(b'"activeDeadlineSeconds":1e308')),
    Case("ttl-1e20", "POST", JOBS, job_with(b'"ttlSecondsAfterFinished":1e20')),
    Case("suspend-string", "POST", JOBS, job({"suspend": "true"})),
    Case("label-number", "POST", f"{NS}/configmaps", b'{"metadata":{"name":"l","labels":{"a":1}}}', JSON),
    Case("merge-patch-completions-string", "PATCH", f"{JOBS}/sentinel", b'{"spec":{"parallelism":"2"}}', MERGE),
    Case("json-patch-parallelism-float", "PATCH", f"{JOBS}/sentinel",
         b'[{"op":"replace","path":"/spec/parallelism","value":1.5}]', JSON_PATCH),
    Case("secret-bad-base64", "POST", f"{NS}/secrets", b'{"metadata":{"name":"b64"},"data":{"k":"not base64!"}}',
         JSON),
    Case("secret-base64-no-padding", "POST", f"{NS}/secrets", b'{"metadata":{"name":"b64"},"data":{"k":"aGk"}}',
         JSON),
    Case("dryrun-bogus-create", "POST", f"{NS}/configmaps?dryRun=Bogus", b'{"metadata":{"name":"bogus"}}', JSON),
    Case("dryrun-bogus-patch", "PATCH", f"{NS}/configmaps/sentinel?dryRun=Bogus", b'{"data":{"a":"x"}}', MERGE),
    # Every real client: a failed JSON-patch test is a 422 with its cause.
    Case("json-patch-test-fails", "PATCH", f"{NS}/configmaps/sentinel",
         b'[{"op":"test","path":"/data/k","value":"other"},{"op":"replace","path":"/data/k","value":"x"}]',
         JSON_PATCH, codes=(422,)),
]


def sentinels(client: httpx.Client) -> dict[str, Any]:
    return {path: client.get(path).json() for path in
            (f"{NS}/configmaps/sentinel", f"{NS}/secrets/sentinel", f"{JOBS}/sentinel", f"{NS}/pods/sentinel")}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with running_server(tmp_path_factory.mktemp("bad-input")) as running:
        yield running


@pytest.fixture(scope="module")
def api(server: Any) -> Iterator[httpx.Client]:
    with server.http(timeout=30) as client:
        for path, body in (
            (f"{NS}/configmaps", {"metadata": {"name": "sentinel"}, "data": {"k": "v"}}),
            (f"{NS}/secrets", {"metadata": {"name": "sentinel"}, "data": {"k": "c2VjcmV0"}}),
            (f"{NS}/pods", {"metadata": {"name": "sentinel"},
                            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}),
        ):
            assert client.post(path, json=body).status_code == 201
        assert client.post(JOBS, content=job({"suspend": True}, "sentinel"), headers=JSON).status_code == 201
        before = sentinels(client)
        yield client
        assert sentinels(client) == before, "a rejected request changed a sentinel object"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_a_4xx_status(api: httpx.Client, case: Case) -> None:
    start = CLOCK.monotonic()
    response = api.request(case.method, case.path, content=case.body, headers=case.headers)
    elapsed = CLOCK.monotonic() - start
    assert response.status_code in case.codes, response.text[:500]
    if response.status_code >= 400:
        status = response.json()
        assert status["kind"] == "Status" and status["status"] == "Failure"
        assert status["code"] == response.status_code and status["reason"] and status["message"]
    if case.within is not None:
        assert elapsed < case.within, f"{case.name} took {elapsed:.2f}s"
    assert api.get("/healthz").status_code == 200


def test_failed_json_patch_test_names_its_cause(api: httpx.Client) -> None:
    response = api.patch(f"{NS}/configmaps/sentinel", headers=JSON_PATCH,
                         content=b'[{"op":"test","path":"/data/k","value":"other"}]')
    assert response.status_code == 422
    causes = response.json()["details"]["causes"]
    assert any("/data/k" in c["message"] for c in causes)


def test_typed_decoding_errors_name_the_field(api: httpx.Client) -> None:
    response = api.post(JOBS, content=job({"completions": "2"}), headers=JSON)
    assert response.status_code == 400
    status = response.json()
    assert "cannot be handled as a Job" in status["message"]
    assert [c["field"] for c in status["details"]["causes"]] == ["spec.completions"]
    assert api.get(f"{JOBS}/poison").status_code == 404


def test_dry_run_bogus_writes_nothing(api: httpx.Client) -> None:
    assert api.get(f"{NS}/configmaps/bogus").status_code == 404


def test_unicode_unknown_field_warning_is_escaped_and_the_write_answered(api: httpx.Client) -> None:
    response = api.post(f"{NS}/configmaps", content='{"metadata":{"name":"warn-unicode"},"bogus€":1}'.encode(),
                        headers=JSON)
    assert response.status_code == 201, response.text
    assert response.headers["warning"] == '299 - "unknown field \\"bogus\\u20ac\\""'
    assert api.delete(f"{NS}/configmaps/warn-unicode").status_code == 200


def test_field_selector_trailing_empty_term(api: httpx.Client) -> None:
    response = api.get(f"{NS}/configmaps", params={"fieldSelector": "metadata.name=sentinel,"})
    assert response.status_code == 200
    assert [i["metadata"]["name"] for i in response.json()["items"]] == ["sentinel"]


def test_job_delete_without_propagation_policy_warns(api: httpx.Client) -> None:
    assert api.post(JOBS, content=job({"suspend": True}, "to-delete"), headers=JSON).status_code == 201
    response = api.delete(f"{JOBS}/to-delete", params={"dryRun": "All"})
    assert response.status_code == 200
    assert response.headers["warning"] == (
        '299 - "child pods are preserved by default when jobs are deleted; set propagationPolicy=Background to '
        'remove them or set propagationPolicy=Orphan to suppress this warning"')
    quiet = api.delete(f"{JOBS}/to-delete", params={"propagationPolicy": "Background"})
    assert quiet.status_code == 200 and "warning" not in quiet.headers


def test_a_big_yaml_body_does_not_stall_the_loop(api: httpx.Client, server: Any) -> None:
    """A ~2.5 MiB YAML body takes seconds to decode; /healthz must answer meanwhile.

    (The unknown field keeps the registry's own per-key work, which runs on the loop, out of
    the measurement: this is about decoding.)"""
    body = b"metadata: {name: big-yaml}\nunknownField:\n" + b"".join(b"- %d\n" % i for i in range(300_000))
    result: dict[str, Any] = {}

    def post() -> None:
        with server.http(timeout=120) as other:
            result["code"] = other.post(f"{NS}/configmaps?dryRun=All", content=body, headers=YAML).status_code

    thread = threading.Thread(target=post)
    thread.start()
    thread.join(0.3)
    worst = 0.0
    while thread.is_alive():
        start = CLOCK.monotonic()
        assert api.get("/healthz").status_code == 200
        worst = max(worst, CLOCK.monotonic() - start)
        thread.join(0.05)
    thread.join()
    assert result["code"] in (201, 413, 422)
    assert worst < 1.0, f"/healthz waited {worst:.2f}s behind a YAML body"

