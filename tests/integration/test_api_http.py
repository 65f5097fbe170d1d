"""The Kubernetes HTTP API over the real in-process stack, driven with httpx and HttpClient.

A real uvicorn server on a free loopback port (in a background thread with its own event
loop) serves :func:`joblet.api.server.create_app` over LocalClient → Registry → MemoryStore,
over HTTPS with the data dir's generated CA, authenticating and authorizing as ``joblet
server`` does; the tests speak HTTPS with the admin token only. The harness (:func:`running_server`) is imported by the kubectl
and python-client test files too.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import uvicorn

from joblet.api.registry import Registry
from joblet.api.server import create_app, parse_path, resolve_target
from joblet.auth.bootstrap import ensure_default_policy
from joblet.client.http import HttpClient
from joblet.client.local import LocalClient
from joblet.clock import RealClock
from joblet.config import ControlPlaneConfig
from joblet.controlplane import build_authenticator, build_authorizer
from joblet.errors import AlreadyExists, Gone, Invalid, NotFound
from joblet.kubeconfig import load_server_from_kubeconfig, write_kubeconfig
from joblet.node.logs import LogStore
from joblet.store.memory import MemoryStore
from support.tls import ServerCredentials, api_client, http_client, make_credentials

JSON = {"Content-Type": "application/json"}
TABLE_ACCEPT = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"


# --------------------------------------------------------------------------- harness

@dataclass
class RunningServer:
    url: str
    log_store: LogStore
    creds: ServerCredentials

    def http(self, timeout: float = 10.0) -> httpx.Client:
        return http_client(self.url, self.creds, timeout=timeout)

    def client(self) -> HttpClient:
        return api_client(self.url, self.creds)


@contextlib.contextmanager
def running_server(data_dir: Path, *, history_events: int | None = None,
                   bookmark_interval: float = 30.0, version_minor: str = "33", namespaces: tuple[str, ...] = ("default", "other"),
                   ) -> Iterator[RunningServer]:
    """A real uvicorn serving the API over a fresh in-memory stack, until the block ends."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    ready = threading.Event()
    state: dict[str, Any] = {}
    creds = make_credentials(data_dir)

    async def main() -> None:
        store = MemoryStore(history_events=history_events) if history_events else MemoryStore()
        clock = RealClock()
        registry = Registry(store, clock)
        for ns in namespaces:
            registry.create("namespaces", {"metadata": {"name": ns}})
        ensure_default_policy(registry)
        store.flush()
        log_store = LogStore(data_dir, clock)
        client = LocalClient(registry, log_store)
        app = create_app(client, authenticator=build_authenticator(ControlPlaneConfig(data_dir=data_dir), clock),
                         authorizer=build_authorizer(client), log_store=log_store, clock=clock,
                         bookmark_interval=bookmark_interval, version_minor=version_minor)
        server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False,
                                               timeout_graceful_shutdown=1, ssl_certfile=creds.cert_file,
                                               ssl_keyfile=creds.key_file))
        state.update(server=server, log_store=log_store)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started and not task.done():
            await asyncio.sleep(0.01)
        ready.set()
        await task

    thread = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
    thread.start()
    assert ready.wait(15), "API server did not start"
    try:
        yield RunningServer(f"https://127.0.0.1:{port}", state["log_store"], creds)
    finally:
        state["server"].should_exit = True
        thread.join(10)
        sock.close()


def job_manifest(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"backoffLimit": 2, "template": {"spec": {"restartPolicy": "Never", "containers": [
            {"name": "main", "image": "busybox", "command": ["sh", "-c", "echo hi"]}]}}, **spec},
    }


def pod_manifest(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {}},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]}}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("api")) as running:
        yield running


@pytest.fixture
def http(server: RunningServer) -> Iterator[httpx.Client]:
    with server.http() as client:
        yield client


JOBS = "/apis/batch/v1/namespaces/default/jobs"
PODS = "/api/v1/namespaces/default/pods"


def create(http: httpx.Client, path: str, obj: dict[str, Any]) -> dict[str, Any]:
    response = http.post(path, json=obj)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


# --------------------------------------------------------------------------- pure routing

@pytest.mark.parametrize(("path", "expected"), [
    ("/apis/batch/v1/namespaces/d/jobs", ("jobs", "d", None, None)),
    ("/apis/batch/v1/jobs", ("jobs", None, None, None)),
    ("/apis/batch/v1/namespaces/d/jobs/x/status", ("jobs", "d", "x", "status")),
    ("/api/v1/namespaces", ("namespaces", None, None, None)),
    ("/api/v1/namespaces/d", ("namespaces", None, "d", None)),
    ("/api/v1/namespaces/d/status", ("namespaces", None, "d", "status")),
    ("/api/v1/namespaces/d/pods/p/log", ("pods", "d", "p", "log")),
    ("/api/v1/namespaces/d/pods/p/eviction", ("pods", "d", "p", "eviction")),
    ("/api/v1/nodes/n", ("nodes", None, "n", None)),
], ids=["ns-collection", "all-namespaces", "status", "namespaces", "namespace", "namespace-status", "log",
        "eviction", "node"])
def test_resolve_target(path: str, expected: tuple[str, str | None, str | None, str | None]) -> None:
    parsed = parse_path(path)
    assert parsed is not None
    t = resolve_target(*parsed)
    assert (t.resource.plural, t.namespace, t.name, t.subresource) == expected


@pytest.mark.parametrize("path", [
    "/api/v1/pods/x", "/api/v1/widgets", "/apis/batch/v1/namespaces/d/jobs/x/log", "/apis/batch/v2/jobs",
    "/api/v1/namespaces/d/pods/p/log/extra",
], ids=["namespaced-item-without-ns", "unknown-resource", "unknown-subresource", "unknown-version", "too-deep"])
def test_resolve_target_not_found(path: str) -> None:
    parsed = parse_path(path)
    with pytest.raises(NotFound, match="the server could not find the requested resource"):
        assert parsed is not None
        resolve_target(*parsed)


# --------------------------------------------------------------------------- discovery and openapi

def test_version_and_health(http: httpx.Client) -> None:
    version = http.get("/version").json()
    assert version["major"] == "1" and version["minor"] == "33" and version["gitVersion"] == "v1.33.0-joblet"
    for path in ("/healthz", "/readyz", "/livez"):
        assert http.get(path).text == "ok"


def test_discovery_documents(http: httpx.Client) -> None:
    api = http.get("/api", headers={"Accept": "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
                                              "application/json"}).json()
    assert api["kind"] == "APIVersions" and api["versions"] == ["v1"]
    groups = {g["name"] for g in http.get("/apis").json()["groups"]}
    assert {"batch", "coordination.k8s.io"} <= groups
    core = {r["name"]: r for r in http.get("/api/v1?timeout=32s").json()["resources"]}
    assert core["pods"]["shortNames"] == ["po"] and core["pods"]["categories"] == ["all"]
    assert core["pods/log"]["verbs"] == ["get"]
    assert core["pods/eviction"]["verbs"] == ["create"] and core["pods/eviction"]["kind"] == "Eviction"
    assert core["namespaces"]["namespaced"] is False
    batch = {r["name"]: r for r in http.get("/apis/batch/v1").json()["resources"]}
    assert batch["jobs"]["verbs"] == ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
    assert batch["jobs/status"]["verbs"] == ["get", "patch", "update"]
    assert batch["cronjobs"]["shortNames"] == ["cj"]
    assert http.get("/apis/coordination.k8s.io/v1").json()["resources"][0]["name"] == "leases"


def test_openapi(http: httpx.Client) -> None:
    v2 = http.get("/openapi/v2", headers={"Accept": "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"})
    assert v2.status_code == 200 and v2.content == b""
    assert v2.headers["content-type"] == "application/octet-stream"
    index = http.get("/openapi/v3").json()["paths"]
    doc = http.get(index["apis/batch/v1"]["serverRelativeURL"]).json()
    job = doc["components"]["schemas"]["io.k8s.api.batch.v1.Job"]
    assert job["x-kubernetes-group-version-kind"] == [{"group": "batch", "kind": "Job", "version": "v1"}]
    spec = doc["components"]["schemas"]["io.k8s.api.batch.v1.JobSpec"]
    assert spec["properties"]["backoffLimit"]["type"] == "integer"
    assert "retries" in spec["properties"]["backoffLimit"]["description"]
    patch = doc["paths"]["/apis/batch/v1/namespaces/{namespace}/jobs/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {"group": "batch", "version": "v1", "kind": "Job"}
    assert "fieldValidation" in [p["name"] for p in patch["parameters"]]
    core = http.get(index["api/v1"]["serverRelativeURL"]).json()
    assert "io.k8s.api.core.v1.Container" in core["components"]["schemas"]


# --------------------------------------------------------------------------- errors

@pytest.mark.parametrize(("method", "path", "body", "headers", "code", "message"), [
    ("GET", "/nope", None, {}, 404, "the server could not find the requested resource"),
    ("GET", f"{JOBS}/missing", None, {}, 404, 'jobs.batch "missing" not found'),
    ("POST", JOBS, b"{not json", JSON, 400, "json parse error"),
    ("POST", JOBS, b"k8s\x00\x0a", {"Content-Type": "application/vnd.kubernetes.protobuf"}, 400,
     "could not be decoded as protobuf"),
    ("PATCH", f"{JOBS}/x", b"{}", {"Content-Type": "application/json"}, 415,
     "accepted media types include: application/strategic-merge-patch+json"),
    ("POST", JOBS, b" " * (3 * 1024 * 1024 + 1), JSON, 413, "Request entity too large"),
    ("POST", "/api/v1/namespaces/nons/configmaps", b'{"metadata":{"name":"c"}}', JSON, 404,
     'namespaces "nons" not found'),
    ("PUT", "/apis/batch/v1/jobs", b"{}", JSON, 405, "does not allow this method"),
    ("POST", JOBS, b"{}", {"Content-Type": "text/plain"}, 415, "accepted media types include: application/json"),
], ids=["unknown-path", "missing-object", "malformed-json", "protobuf", "bad-patch-type", "too-large",
        "missing-namespace", "method", "text-plain"])
def test_error_statuses(http: httpx.Client, method: str, path: str, body: bytes | None, headers: dict[str, str],
                        code: int, message: str) -> None:
    response = http.request(method, path, content=body, headers=headers)
    assert response.status_code == code, response.text
    status = response.json()
    assert status["kind"] == "Status" and status["code"] == code and message in status["message"]
    assert response.headers["content-type"] == "application/json"


def test_invalid_object_carries_causes(http: httpx.Client) -> None:
    bad = job_manifest("bad")
    bad["spec"]["template"]["spec"]["containers"] = []
    response = http.post(JOBS, json=bad)
    assert response.status_code == 422
    details = response.json()["details"]
    assert details["kind"] == "Job" and details["name"] == "bad"
    assert any(c["field"] == "spec.template.spec.containers" for c in details["causes"])


# --------------------------------------------------------------------------- CRUD

def test_create_takes_kind_from_url_and_defaults_content_type(http: httpx.Client) -> None:
    # as kube-apiserver: no Content-Type is JSON (the official client sends none) — with a token
    body = {"metadata": {"name": "nokind", "creationTimestamp": None}, "data": {"a": "b"}}
    response = http.post("/api/v1/namespaces/default/configmaps", content=orjson.dumps(body))
    assert response.status_code == 201, response.text
    created = response.json()
    assert (created["kind"], created["apiVersion"], created["metadata"]["namespace"]) == ("ConfigMap", "v1", "default")
    assert isinstance(created["metadata"]["resourceVersion"], str)
    assert int(response.headers["content-length"]) == len(response.content)


def test_create_generate_name_and_dry_run(http: httpx.Client) -> None:
    dry = http.post(f"{JOBS}?dryRun=All", json=job_manifest("dry"))
    assert dry.status_code == 201
    assert http.get(f"{JOBS}/dry").status_code == 404
    gen = job_manifest("")
    gen["metadata"] = {"generateName": "gen-"}
    created = create(http, JOBS, gen)
    assert created["metadata"]["name"].startswith("gen-") and len(created["metadata"]["name"]) == 9


def test_field_validation(http: httpx.Client) -> None:
    manifest = job_manifest("fv")
    manifest["spec"]["foo"] = 1
    manifest["spec"]["template"]["spec"]["containers"][0]["imagee"] = "x"
    strict = http.post(f"{JOBS}?fieldValidation=Strict", json=manifest)
    assert strict.status_code == 400
    assert strict.json()["message"] == ('Job in version "v1" cannot be handled as a Job: strict decoding error: '
                                        'unknown field "spec.template.spec.containers[0].imagee", '
                                        'unknown field "spec.foo"')
    warned = http.post(JOBS, json=manifest)
    assert warned.status_code == 201
    assert warned.headers["warning"] == ('299 - "unknown field \\"spec.template.spec.containers[0].imagee\\"", '
                                         '299 - "unknown field \\"spec.foo\\""')
    assert "foo" not in warned.json()["spec"]
    ignored = http.patch(f"{JOBS}/fv?fieldValidation=Ignore", json={"spec": {"bar": 1}},
                         headers={"Content-Type": "application/merge-patch+json"})
    assert ignored.status_code == 200 and "warning" not in ignored.headers


def test_get_list_selectors_and_all_namespaces(http: httpx.Client) -> None:
    create(http, JOBS, job_manifest("sel-a"))
    create(http, "/apis/batch/v1/namespaces/other/jobs", job_manifest("sel-b"))
    got = http.get(f"{JOBS}/sel-a").json()
    assert got["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"] == got["metadata"]["uid"]
    listed = http.get(f"{JOBS}?labelSelector=app%3Dsel-a&limit=500").json()
    assert listed["kind"] == "JobList" and [j["metadata"]["name"] for j in listed["items"]] == ["sel-a"]
    assert all(j["kind"] == "Job" and j["apiVersion"] == "batch/v1" for j in listed["items"])
    everywhere = http.get("/apis/batch/v1/jobs?labelSelector=app+in+(sel-a,sel-b)").json()
    assert sorted(j["metadata"]["namespace"] for j in everywhere["items"]) == ["default", "other"]
    by_name = http.get(f"{JOBS}?fieldSelector=metadata.name%3Dsel-a").json()
    assert len(by_name["items"]) == 1
    empty = http.get(f"{JOBS}?labelSelector=app%3Dnothing").json()
    assert empty["items"] == [] and empty["metadata"]["resourceVersion"]


def test_table_output(http: httpx.Client) -> None:
    create(http, JOBS, job_manifest("tab"))
    table = http.get(f"{JOBS}?fieldSelector=metadata.name%3Dtab", headers={"Accept": TABLE_ACCEPT}).json()
    assert table["kind"] == "Table" and table["metadata"]["resourceVersion"]
    names = [c["name"] for c in table["columnDefinitions"]]
    assert names[:4] == ["Name", "Status", "Completions", "Duration"] or names[:3] == ["Name", "Completions",
                                                                                      "Duration"]
    row = table["rows"][0]
    assert row["cells"][0] == "tab" and row["object"]["kind"] == "PartialObjectMetadata"
    full = http.get(f"{JOBS}/tab?includeObject=Object", headers={"Accept": TABLE_ACCEPT}).json()
    assert full["rows"][0]["object"]["kind"] == "Job"


def test_table_v1beta1_is_answered_in_v1beta1(http: httpx.Client) -> None:
    """A client that asks only for ``meta.k8s.io/v1beta1`` Tables (kubectl ≤ 1.14, old SDKs) gets that version."""
    create(http, JOBS, job_manifest("tab-beta"))
    beta = "application/json;as=Table;v=v1beta1;g=meta.k8s.io"
    table = http.get(f"{JOBS}?fieldSelector=metadata.name%3Dtab-beta", headers={"Accept": beta}).json()
    assert (table["kind"], table["apiVersion"]) == ("Table", "meta.k8s.io/v1beta1")
    assert table["rows"][0]["object"]["apiVersion"] == "meta.k8s.io/v1beta1"
    one = http.get(f"{JOBS}/tab-beta", headers={"Accept": beta}).json()
    assert one["apiVersion"] == "meta.k8s.io/v1beta1" and one["rows"][0]["cells"][0] == "tab-beta"
    # an unknown version is skipped in favour of the next alternative, as kube-apiserver negotiates
    plain = http.get(f"{JOBS}/tab-beta", headers={"Accept": "application/json;as=Table;v=v9;g=meta.k8s.io,"
                                                               "application/json"}).json()
    assert plain["kind"] == "Job"


METADATA_LIST_ACCEPT = ("application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,"
                        "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json")
METADATA_ACCEPT = ("application/vnd.kubernetes.protobuf;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,"
                   "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json")


def test_partial_object_metadata_list_get_and_watch(http: httpx.Client) -> None:
    """client-go's metadata client and metadata informers (the Accept headers they send) get metadata only."""
    created = create(http, JOBS, job_manifest("meta-only"))
    listed = http.get(f"{JOBS}?labelSelector=app%3Dmeta-only", headers={"Accept": METADATA_LIST_ACCEPT}).json()
    assert (listed["kind"], listed["apiVersion"]) == ("PartialObjectMetadataList", "meta.k8s.io/v1")
    assert listed["metadata"]["resourceVersion"]
    [item] = listed["items"]
    assert (item["kind"], item["apiVersion"]) == ("PartialObjectMetadata", "meta.k8s.io/v1")
    assert set(item) == {"kind", "apiVersion", "metadata"}
    assert item["metadata"]["uid"] == created["metadata"]["uid"] and item["metadata"]["labels"]["app"] == "meta-only"
    one = http.get(f"{JOBS}/meta-only", headers={"Accept": METADATA_ACCEPT}).json()
    assert set(one) == {"kind", "apiVersion", "metadata"} and one["kind"] == "PartialObjectMetadata"
    # a list asked for as a single PartialObjectMetadata (and the reverse) is 406, as upstream
    wrong = http.get(JOBS, headers={"Accept": "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"})
    assert wrong.status_code == 406 and wrong.json()["reason"] == "NotAcceptable"
    wrong = http.get(f"{JOBS}/meta-only",
                     headers={"Accept": "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"})
    assert wrong.status_code == 406
    with http.stream("GET", f"{JOBS}?watch=true&labelSelector=app%3Dmeta-only&resourceVersion="
                            f"{listed['metadata']['resourceVersion']}", headers={"Accept": METADATA_ACCEPT}) as response:
        http.patch(f"{JOBS}/meta-only", json={"metadata": {"labels": {"seen": "yes"}}},
                   headers={"Content-Type": "application/merge-patch+json"})
        [event] = read_events(response, 1)
    assert event["type"] == "MODIFIED" and event["object"]["kind"] == "PartialObjectMetadata"
    assert set(event["object"]) == {"kind", "apiVersion", "metadata"}
    assert event["object"]["metadata"]["labels"]["seen"] == "yes"


def test_update_status_and_conflict(http: httpx.Client) -> None:
    job = create(http, JOBS, job_manifest("upd"))
    job["metadata"]["labels"]["extra"] = "1"
    updated = http.put(f"{JOBS}/upd", json=job)
    assert updated.status_code == 200 and updated.json()["metadata"]["labels"]["extra"] == "1"
    stale = http.put(f"{JOBS}/upd", json=job)
    assert stale.status_code == 409 and "the object has been modified" in stale.json()["message"]
    current = updated.json()
    current["status"] = {"active": 1}
    status = http.put(f"{JOBS}/upd/status", json=current)
    assert status.status_code == 200 and status.json()["status"]["active"] == 1
    assert http.get(f"{JOBS}/upd/status").json()["status"]["active"] == 1
    mismatch = http.put(f"{JOBS}/upd", json={**current, "metadata": {**current["metadata"], "name": "other"}})
    assert mismatch.status_code == 400 and "does not match the name on the URL" in mismatch.json()["message"]


@pytest.mark.parametrize(("content_type", "patch", "expected"), [
    ("application/strategic-merge-patch+json", {"spec": {"suspend": True}}, True),
    ("application/merge-patch+json", {"spec": {"suspend": True}}, True),
    ("application/json-patch+json", [{"op": "replace", "path": "/spec/suspend", "value": True}], True),
], ids=["strategic", "merge", "json"])
def test_patch_types(http: httpx.Client, content_type: str, patch: Any, expected: bool) -> None:
    name = "patch-" + content_type.split("/")[1].split("-")[0]
    create(http, JOBS, job_manifest(name, suspend=False))
    response = http.patch(f"{JOBS}/{name}?fieldManager=kubectl-patch", content=orjson.dumps(patch),
                          headers={"Content-Type": content_type})
    assert response.status_code == 200, response.text
    assert response.json()["spec"]["suspend"] is expected


def test_json_patch_replace_missing_path_is_invalid(http: httpx.Client) -> None:
    create(http, JOBS, job_manifest("jp-missing"))
    response = http.patch(f"{JOBS}/jp-missing", json=[{"op": "replace", "path": "/spec/nothing/here", "value": 1}],
                          headers={"Content-Type": "application/json-patch+json"})
    assert response.status_code == 422, response.text


def test_server_side_apply_creates_then_updates(http: httpx.Client) -> None:
    manifest = job_manifest("ssa")
    first = http.patch(f"{JOBS}/ssa?fieldManager=kubectl&force=false", content=orjson.dumps(manifest),
                       headers={"Content-Type": "application/apply-patch+yaml"})
    assert first.status_code == 201, first.text
    manifest["metadata"]["labels"]["x"] = "y"
    second = http.patch(f"{JOBS}/ssa?fieldManager=kubectl", content=orjson.dumps(manifest),
                        headers={"Content-Type": "application/apply-patch+yaml"})
    assert second.status_code == 200 and second.json()["metadata"]["labels"]["x"] == "y"


def test_delete_job_returns_status_and_pod_returns_object(http: httpx.Client) -> None:
    job = create(http, JOBS, job_manifest("del"))
    deleted = http.request("DELETE", f"{JOBS}/del", json={"propagationPolicy": "Background"})
    assert deleted.status_code == 200
    assert deleted.json()["status"] == "Success" and deleted.json()["details"]["uid"] == job["metadata"]["uid"]
    assert http.get(f"{JOBS}/del").status_code == 404
    create(http, PODS, pod_manifest("del-pod"))
    pod = http.delete(f"{PODS}/del-pod?gracePeriodSeconds=0")
    assert pod.status_code == 200 and pod.json()["kind"] == "Pod"


def test_delete_foreground_keeps_object_with_finalizer(http: httpx.Client) -> None:
    create(http, JOBS, job_manifest("fg"))
    response = http.delete(f"{JOBS}/fg?propagationPolicy=Foreground")
    assert response.status_code == 200
    obj = response.json()
    assert obj["kind"] == "Job" and obj["metadata"]["deletionTimestamp"]
    assert "foregroundDeletion" in obj["metadata"]["finalizers"]


def test_delete_preconditions(http: httpx.Client) -> None:
    create(http, JOBS, job_manifest("pre"))
    response = http.request("DELETE", f"{JOBS}/pre", json={"preconditions": {"uid": "wrong"}})
    assert response.status_code == 409 and "Precondition failed" in response.json()["message"]


def test_deletecollection(http: httpx.Client) -> None:
    for name in ("dc-1", "dc-2"):
        create(http, "/api/v1/namespaces/default/configmaps",
               {"metadata": {"name": name, "labels": {"group": "dc"}}, "data": {}})
    response = http.delete("/api/v1/namespaces/default/configmaps?labelSelector=group%3Ddc")
    assert response.status_code == 200
    assert sorted(i["metadata"]["name"] for i in response.json()["items"]) == ["dc-1", "dc-2"]
    assert http.get("/api/v1/namespaces/default/configmaps?labelSelector=group%3Ddc").json()["items"] == []


def test_eviction(http: httpx.Client) -> None:
    create(http, PODS, pod_manifest("evict-me"))
    response = http.post(f"{PODS}/evict-me/eviction", json={
        "apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "evict-me", "namespace": "default"}})
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "Success"
    assert http.get(f"{PODS}/evict-me").status_code == 404


# --------------------------------------------------------------------------- watch

def read_events(response: httpx.Response, count: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for line in response.iter_lines():
        if line.strip():
            events.append(orjson.loads(line))
        if len(events) >= count:
            break
    return events


def test_watch_initial_events_resume_and_timeout(http: httpx.Client, server: RunningServer) -> None:
    create(http, JOBS, job_manifest("w1", )) if http.get(f"{JOBS}/w1").status_code == 404 else None
    with http.stream("GET", f"{JOBS}?watch=true&labelSelector=app%3Dw1") as response:
        assert response.headers["content-type"] == "application/json"
        assert response.headers.get("transfer-encoding") == "chunked"
        first = read_events(response, 1)[0]
        assert first["type"] == "ADDED" and first["object"]["metadata"]["name"] == "w1"
        rv = first["object"]["metadata"]["resourceVersion"]
    http.patch(f"{JOBS}/w1", json={"metadata": {"labels": {"touched": "1"}}},
               headers={"Content-Type": "application/merge-patch+json"})
    with http.stream("GET", f"{JOBS}?watch=1&resourceVersion={rv}&labelSelector=app%3Dw1") as response:
        event = read_events(response, 1)[0]
        assert event["type"] == "MODIFIED" and event["object"]["metadata"]["labels"]["touched"] == "1"
        assert event["object"]["kind"] == "Job"
    ended = http.get(f"{JOBS}?watch=true&timeoutSeconds=1&allowWatchBookmarks=true&fieldSelector=metadata.name%3Dnone")
    assert ended.status_code == 200
    types = [orjson.loads(line)["type"] for line in ended.text.splitlines() if line]
    assert types and set(types) == {"BOOKMARK"}


def test_watch_table_events(http: httpx.Client) -> None:
    listed = http.get(f"{PODS}?labelSelector=w%3Dtable", headers={"Accept": TABLE_ACCEPT}).json()
    with http.stream("GET", f"{PODS}?watch=true&labelSelector=w%3Dtable&resourceVersion="
                            f"{listed['metadata']['resourceVersion']}", headers={"Accept": TABLE_ACCEPT}) as response:
        create(http, PODS, pod_manifest("wt-1", {"w": "table"}))
        create(http, PODS, pod_manifest("wt-2", {"w": "table"}))
        events = read_events(response, 2)
    assert [e["type"] for e in events] == ["ADDED", "ADDED"]
    assert events[0]["object"]["kind"] == "Table" and events[0]["object"]["columnDefinitions"]
    assert events[1]["object"]["columnDefinitions"] == []
    assert [e["object"]["rows"][0]["cells"][0] for e in events] == ["wt-1", "wt-2"]


def test_watch_too_old_resource_version_is_410(tmp_path: Path) -> None:
    with running_server(tmp_path, history_events=3) as srv, srv.http() as http:
        for i in range(6):
            create(http, "/api/v1/namespaces/default/configmaps", {"metadata": {"name": f"c{i}"}})
        response = http.get("/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=1")
        assert response.status_code == 200
        event = orjson.loads(response.text.splitlines()[0])
        assert event["type"] == "ERROR"
        assert event["object"]["code"] == 410 and event["object"]["reason"] == "Expired"

        async def http_client_watch() -> None:
            client = srv.client()
            try:
                with pytest.raises(Gone, match="too old resource version"):
                    async for _ in client.watch("configmaps", "default", "1", timeout_seconds=1):
                        pass
            finally:
                await client.close()

        asyncio.run(http_client_watch())


# --------------------------------------------------------------------------- logs

def write_log(log_store: LogStore, pod: dict[str, Any], lines: list[str], done: bool = True) -> None:
    meta = pod["metadata"]
    path = log_store.path(meta["namespace"], meta["name"], meta["uid"], "main", 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"2024-01-01T00:00:0{i}.000000000Z stdout F {line}\n" for i, line in enumerate(lines)))
    if done:
        path.with_suffix(".done").write_text("")


def test_pod_logs_tail_timestamps_limit_and_deleted_pod(http: httpx.Client, server: RunningServer) -> None:
    pod = create(http, PODS, pod_manifest("logged"))
    write_log(server.log_store, pod, ["one", "two", "three"])
    assert http.get(f"{PODS}/logged/log?container=main").text == "one\ntwo\nthree\n"
    assert http.get(f"{PODS}/logged/log?tailLines=1").text == "three\n"
    assert http.get(f"{PODS}/logged/log?limitBytes=5").text == "one\nt"
    assert http.get(f"{PODS}/logged/log?tailLines=1&timestamps=true").text.startswith("2024-01-01T00:00:02")
    assert http.get(f"{PODS}/logged/log?container=nope").status_code == 400
    with http.stream("GET", f"{PODS}/logged/log?follow=true") as response:
        assert response.headers["content-type"].startswith("text/plain")
        assert b"".join(response.iter_bytes()) == b"one\ntwo\nthree\n"
    http.delete(f"{PODS}/logged?gracePeriodSeconds=0")
    assert http.get(f"{PODS}/logged").status_code == 404
    assert http.get(f"{PODS}/logged/log").text == "one\ntwo\nthree\n"
    assert http.get(f"{PODS}/never-existed/log").status_code == 404


# --------------------------------------------------------------------------- auth

def test_token_required_except_version_and_health(server: RunningServer) -> None:
    with http_client(server.url, server.creds, token=False) as http:
        for public in ("/version", "/healthz", "/livez", "/readyz"):
            assert http.get(public).status_code == 200, public
        for private in ("/api/v1/namespaces", "/api", "/apis", "/openapi/v2", "/metrics", "/api/v1/nosuch"):
            denied = http.get(private)
            assert denied.status_code == 401 and denied.json()["reason"] == "Unauthorized", private
        assert http.get("/api/v1/namespaces", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert http.get("/version", headers={"Authorization": "Bearer wrong"}).status_code == 401
        ok = http.get("/api/v1/namespaces", headers={"Authorization": f"Bearer {server.creds.token}"})
        assert ok.status_code == 200


# --------------------------------------------------------------------------- HttpClient

def test_http_client_round_trip(server: RunningServer) -> None:
    async def scenario() -> None:
        client = server.client()
        try:
            created = await client.create("jobs", job_manifest("hc"), "default")
            assert created["metadata"]["uid"]
            with pytest.raises(AlreadyExists, match=r'jobs\.batch "hc" already exists'):
                await client.create("jobs", job_manifest("hc"))
            got = await client.get("jobs", "hc", "default")
            listed = await client.list("jobs", "default", label_selector="app=hc")
            assert [j["metadata"]["name"] for j in listed.items] == ["hc"] and listed.resource_version
            got["metadata"]["labels"]["u"] = "1"
            updated = await client.update("jobs", got)
            assert updated["metadata"]["labels"]["u"] == "1"
            patched = await client.patch("jobs", "hc", {"spec": {"suspend": True}}, "default", "strategic")
            assert patched["spec"]["suspend"] is True
            with pytest.raises(Invalid) as err:
                await client.patch("jobs", "hc", {"spec": {"template": {"spec": {"activeDeadlineSeconds": 5}}}},
                                   "default", "merge")
            assert err.value.causes and err.value.causes[0].field.startswith("spec.template")
            events: list[str] = []
            async for batch in client.watch("jobs", "default", listed.resource_version, label_selector="app=hc",
                                            timeout_seconds=1):
                events.extend(e.type for e in batch)
                if "MODIFIED" in events:
                    break
            assert events[0] == "MODIFIED"
            deleted = await client.delete("jobs", "hc", "default", propagation_policy="Background")
            assert deleted["metadata"]["name"] == "hc"
            with pytest.raises(NotFound, match=r'jobs\.batch "hc" not found'):
                await client.get("jobs", "hc", "default")
            pod = await client.create("pods", pod_manifest("hc-pod"))
            write_log(server.log_store, pod, ["a", "b"])
            chunks = [c async for c in client.read_log("default", "hc-pod", follow=True)]
            assert b"".join(chunks) == b"a\nb\n"
        finally:
            await client.close()

    asyncio.run(scenario())


def test_http_client_watch_without_resource_version_starts_now(server: RunningServer) -> None:
    async def scenario() -> None:
        client = server.client()
        try:
            await client.create("configmaps", {"metadata": {"name": "before", "labels": {"t": "now"}}}, "default")
            stream = client.watch("configmaps", "default", None, label_selector="t=now", timeout_seconds=5)
            first = asyncio.ensure_future(stream.__anext__())
            for i in range(50):  # writes until the watch, connected at some point, reports one
                await client.create("configmaps", {"metadata": {"name": f"after-{i}", "labels": {"t": "now"}}},
                                    "default")
                done, _ = await asyncio.wait([first], timeout=0.1)
                if done:
                    break
            batch = first.result()
            assert batch and all(e.type == "ADDED" and e.object["metadata"]["name"].startswith("after-")
                                 for e in batch)
            await stream.aclose()  # type: ignore[attr-defined]
        finally:
            await client.close()

    asyncio.run(scenario())


# --------------------------------------------------------------------------- kubeconfig

def test_kubeconfig_round_trip_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_kubeconfig(tmp_path / "kc", "https://127.0.0.1:6443", token="t0k", insecure=True)
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_server_from_kubeconfig(path) == ("https://127.0.0.1:6443", "t0k", False)
    other = write_kubeconfig(tmp_path / "kc2", "http://127.0.0.1:9", name="other")
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'missing'}:{other}:{path}")
    assert load_server_from_kubeconfig(None) == ("http://127.0.0.1:9", None, True)
    assert load_server_from_kubeconfig(None, context="joblet")[0] == "https://127.0.0.1:6443"
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError):
        load_server_from_kubeconfig(None)
