"""Property-based fuzzing of every operation joblet serves in its OpenAPI v3 documents.

Why: the hand-written table in ``test_bad_input.py`` covers the inputs the audit found; this
covers the ones nobody thought of. schemathesis reads the documents the server itself serves
(``/openapi/v3`` and every group-version it lists) and generates schema-valid (positive) and
schema-breaking (negative) requests for each operation; the properties are the issue's: no
answer is a 5xx, the server process stays alive and answers ``/healthz``, and the sentinel
objects created first are unchanged at the end.

The server is a real ``joblet server`` process (SQLite store, TLS, bearer token) running the
API and the controllers but no node agent, so the pods the fuzzer creates are never run.
Bounded: ``JOBLET_FUZZ_EXAMPLES`` examples per operation and mode (default 5); run alone with
``pytest -m fuzz tests/security/test_fuzz_api.py``.
"""

from __future__ import annotations

import os
import secrets
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import requests
import schemathesis

# Imported now, at collection, not lazily inside the test: pytest assertion-rewrites schemathesis
# (a pytest plugin package), and CPython 3.11's AST constructor fails with "recursion depth
# mismatch" when that happens after earlier tests exercised deep-nesting RecursionErrors.
import schemathesis.specs.openapi.schemas
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

from joblet.clock import RealClock
from support.process import ServerProcess, clean_env, joblet_server
from support.tls import kubeconfig_http, load_access

pytestmark = [pytest.mark.fuzz, pytest.mark.slow]

CLOCK = RealClock()
EXAMPLES = int(os.environ.get("JOBLET_FUZZ_EXAMPLES", "5"))
FUZZ_NS = "fuzz"
NS = "/api/v1/namespaces/default"
JOBS = "/apis/batch/v1/namespaces/default/jobs"
SENTINELS = (f"{NS}/configmaps/sentinel", f"{NS}/secrets/sentinel", f"{JOBS}/sentinel", f"{NS}/pods/sentinel",
             "/api/v1/namespaces/default")
# Deleting a whole cluster-scoped collection is a valid request that would take the sentinels'
# namespace (or the admin's RBAC policy) with it: the only operations not fuzzed.
SKIPPED = {("DELETE", "/api/v1/namespaces"), ("DELETE", "/apis/rbac.authorization.k8s.io/v1/clusterroles"),
           ("DELETE", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings"), ("DELETE", "/api/v1/nodes")}
PROTECTED_NAMES = {"default", "kube-system", "kube-public", "sentinel", "cluster-admin"}


@dataclass
class Tally:
    codes: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    unsatisfiable: int = 0


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("fuzz")
    with joblet_server(tmp / "data", "--components", "api,controllers",
                       env=clean_env(JOBLET_TOKEN=secrets.token_urlsafe(24)), log=tmp / "server.log") as server:
        yield server


def served_schema(http: httpx.Client) -> dict[str, Any]:
    """Every group-version document the server lists, merged into one OpenAPI document."""
    merged: dict[str, Any] = {"openapi": "3.0.0", "info": {"title": "joblet", "version": "v1"}, "paths": {},
                              "components": {"schemas": {}}}
    for entry in http.get("/openapi/v3").json()["paths"].values():
        doc = http.get(entry["serverRelativeURL"]).json()
        # The documents say */* for bodies (as upstream's do); every client sends JSON there, and
        # a random media type would only ever meet the 415 check.
        for operations in doc["paths"].values():
            for operation in operations.values():
                content = operation.get("requestBody", {}).get("content", {}) if isinstance(operation, dict) else {}
                if "*/*" in content:
                    content["application/json"] = content.pop("*/*")
        merged["paths"].update(doc["paths"])
        merged["components"]["schemas"].update(doc.get("components", {}).get("schemas", {}))
    return merged


def sentinels(http: httpx.Client) -> dict[str, Any]:
    out = {}
    for path in SENTINELS:
        response = http.get(path)
        assert response.status_code == 200, f"{path}: {response.status_code}"
        body = response.json()
        if path.endswith("/jobs/sentinel") or path.endswith("/pods/sentinel") or path.endswith("namespaces/default"):
            body.pop("status", None)  # the controllers own status; the fuzzer must not touch spec/metadata
            body["metadata"].pop("resourceVersion", None)
            body["metadata"].pop("managedFields", None)
        out[path] = body
    return out


def create_sentinels(http: httpx.Client) -> None:
    template = {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}
    for path, body in (
        ("/api/v1/namespaces", {"metadata": {"name": FUZZ_NS}}),
        (f"{NS}/configmaps", {"metadata": {"name": "sentinel"}, "data": {"k": "v"}}),
        (f"{NS}/secrets", {"metadata": {"name": "sentinel"}, "data": {"k": "c2VjcmV0"}}),
        (f"{NS}/pods", {"metadata": {"name": "sentinel"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}),
        (JOBS, {"metadata": {"name": "sentinel"}, "spec": {"suspend": True, "template": template}}),
    ):
        response = http.post(path, json=body)
        assert response.status_code == 201, response.text


def touches_protected(case: Any) -> bool:
    params = case.path_parameters or {}
    return bool({params.get("name"), params.get("namespace")} & PROTECTED_NAMES) and case.method != "GET"


@pytest.mark.timeout(1500)
def test_fuzz_every_served_operation(fuzz_server: ServerProcess) -> None:
    access = load_access(fuzz_server.kubeconfig)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {access.token}"
    assert access.ca_data
    ca = fuzz_server.log.parent / "ca.crt"
    ca.write_bytes(access.ca_data)
    tally = Tally()
    with kubeconfig_http(fuzz_server.kubeconfig, timeout=30) as http:
        create_sentinels(http)
        before = sentinels(http)
        schema = schemathesis.openapi.from_dict(served_schema(http))
        operations = [result.ok() for result in schema.get_all_operations()]
        groups = {op.path.split("/namespaces")[0].rsplit("/", 1)[0] for op in operations}
        assert {"/api", "/apis/batch", "/apis/rbac.authorization.k8s.io", "/apis/coordination.k8s.io"} <= groups
        fuzzed = 0
        for operation in operations:
            if (operation.method.upper(), operation.path) in SKIPPED:
                continue
            fuzzed += 1
            modes = [schemathesis.GenerationMode.POSITIVE]
            if operation.method.upper() != "GET":  # a GET has only path parameters: nothing to negate
                modes.append(schemathesis.GenerationMode.NEGATIVE)
            for mode in modes:
                pinned = {"namespace": FUZZ_NS} if mode is schemathesis.GenerationMode.POSITIVE else {}
                if "{namespace}" not in operation.path:
                    pinned = {}
                strategy = operation.as_strategy(generation_mode=mode, path_parameters=pinned or None)
                start, sent = CLOCK.monotonic(), sum(tally.codes.values())
                run_operation(strategy, access.server, session, str(ca), tally)
                print(f"{operation.method} {operation.path} {mode.value}: {sum(tally.codes.values()) - sent} requests "
                      f"in {CLOCK.monotonic() - start:.1f}s", flush=True)
            assert fuzz_server.proc.poll() is None, f"server died fuzzing {operation.method} {operation.path}"
            assert http.get("/healthz").status_code == 200
        after = sentinels(http)
    total = sum(tally.codes.values())
    print(f"\nfuzz: {fuzzed} operations, {total} requests, codes {dict(sorted(tally.codes.items()))}, "
          f"{tally.unsatisfiable} operation-modes with nothing to generate")
    assert not tally.failures, "\n".join(tally.failures[:20])
    assert total >= fuzzed * 2, "the fuzzer sent almost nothing"
    assert after == before, "a fuzzed request changed a sentinel object"
    assert "Traceback" not in fuzz_server.log.read_text(errors="replace")


def run_operation(strategy: st.SearchStrategy[Any], base_url: str, session: requests.Session, ca: str,
                  tally: Tally) -> None:
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck), report_multiple_bugs=False)
    @given(case=strategy.filter(lambda c: not touches_protected(c)))
    def fuzz(case: Any) -> None:
        try:
            response = case.call(base_url=base_url, session=session, verify=ca, timeout=30)
        except requests.exceptions.InvalidHeader:
            return  # the client refused to send it (a header value requests will not put on the wire)
        tally.codes[response.status_code] += 1
        if response.status_code >= 500:
            tally.failures.append(f"{response.status_code} {case.method} {case.formatted_path} "
                                  f"query={case.query} headers={case.headers} body={case.body!r:.300} -> "
                                  f"{response.text[:300]}")

    try:
        fuzz()
    except Unsatisfiable:
        tally.unsatisfiable += 1  # e.g. no negative case exists for an operation without parameters
