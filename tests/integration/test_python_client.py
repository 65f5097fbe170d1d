"""The official ``kubernetes`` Python client against joblet's API server.

The client (v37, pydantic models with strict types) deserialises every answer into typed
models, so these tests double as a check of the wire format: strings where Kubernetes has
strings, ``items: []`` never null, required sub-fields present, Status bodies on errors.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from test_api_http import RunningServer, running_server, write_log

pytest.importorskip("kubernetes")
import kubernetes.client
import kubernetes.config
import kubernetes.watch
from kubernetes.client.exceptions import ApiException

from support.tls import write_test_kubeconfig

k8s: Any = kubernetes.client  # the generated models are loosely typed (Optional everywhere)
k8s_watch: Any = kubernetes.watch


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("py")) as running:
        yield running


@pytest.fixture(scope="module")
def api_client(server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    # Unmodified client, configured only by a kubeconfig as joblet writes it (CA data + token).
    kubeconfig = write_test_kubeconfig(tmp_path_factory.mktemp("kc") / "kubeconfig", server.url, server.creds)
    configuration = k8s.Configuration()
    kubernetes.config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    with k8s.ApiClient(configuration) as api:
        yield api


def job_model(name: str) -> Any:
    return k8s.V1Job(
        metadata=k8s.V1ObjectMeta(name=name, labels={"app": name}),
        spec=k8s.V1JobSpec(backoff_limit=1, template=k8s.V1PodTemplateSpec(spec=k8s.V1PodSpec(
            restart_policy="Never", containers=[k8s.V1Container(name="main", image="busybox", command=["true"])]))),
    )


def test_job_lifecycle(api_client: Any) -> None:
    batch = k8s.BatchV1Api(api_client)
    created = batch.create_namespaced_job("default", job_model("pj"))
    assert created.metadata.uid and created.spec.selector.match_labels
    assert created.spec.template.metadata.labels["job-name"] == "pj"
    read = batch.read_namespaced_job("pj", "default")
    assert read.metadata.resource_version == created.metadata.resource_version
    listed = batch.list_namespaced_job("default", label_selector="app=pj")
    assert [j.metadata.name for j in listed.items] == ["pj"]
    assert "pj" in [j.metadata.name for j in batch.list_job_for_all_namespaces().items]
    patched = batch.patch_namespaced_job("pj", "default", {"spec": {"suspend": True}})
    assert patched.spec.suspend is True
    json_patched = batch.patch_namespaced_job("pj", "default", [{"op": "replace", "path": "/spec/suspend",
                                                                   "value": False}])
    assert json_patched.spec.suspend is False
    status = batch.patch_namespaced_job_status("pj", "default", {"status": {"active": 1}})
    assert status.status.active == 1
    deleted = batch.delete_namespaced_job("pj", "default", propagation_policy="Foreground")
    assert isinstance(deleted, dict) and deleted["metadata"]["name"] == "pj"
    body = k8s.V1DeleteOptions(propagation_policy="Background", grace_period_seconds=0)
    assert isinstance(batch.delete_namespaced_job("pj", "default", body=body), dict)


@pytest.mark.parametrize(("call", "status", "reason"), [
    (lambda b: b.read_namespaced_job("missing", "default"), 404, "NotFound"),
    (lambda b: b.create_namespaced_job("nons", job_model("x")), 404, "NotFound"),
    (lambda b: b.create_namespaced_job("default", k8s.V1Job(metadata=k8s.V1ObjectMeta(name="inv"),
                                                            spec=k8s.V1JobSpec(template=k8s.V1PodTemplateSpec()))),
     422, "Invalid"),
], ids=["not-found", "missing-namespace", "invalid"])
def test_errors_are_api_exceptions(api_client: Any, call: Any, status: int, reason: str) -> None:
    import json

    with pytest.raises(ApiException) as err:
        call(k8s.BatchV1Api(api_client))
    assert err.value.status == status
    body = json.loads(err.value.body or "{}")
    assert body["kind"] == "Status" and body["reason"] == reason


def test_core_resources_deserialise(api_client: Any) -> None:
    core = k8s.CoreV1Api(api_client)
    secret = core.create_namespaced_secret("default", k8s.V1Secret(
        metadata=k8s.V1ObjectMeta(name="py-secret"), string_data={"user": "admin"}))
    assert secret.metadata.name == "py-secret"
    assert core.read_namespaced_secret("py-secret", "default").data == {"user": "YWRtaW4="}
    core.create_namespaced_config_map("default", k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name="py-cm"),
                                                                 data={"a": "b"}))
    assert [c.metadata.name for c in core.list_namespaced_config_map("default").items] == ["py-cm"]
    assert core.list_namespaced_event("default").items == []
    assert "default" in [n.metadata.name for n in core.list_namespace().items]


def test_watch_stream_and_pod_log(api_client: Any, server: RunningServer) -> None:
    core = k8s.CoreV1Api(api_client)
    pod = core.create_namespaced_pod("default", k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(name="pw", labels={"job-name": "pw"}),
        spec=k8s.V1PodSpec(restart_policy="Never", containers=[k8s.V1Container(name="main", image="busybox")])))
    seen: list[tuple[str, str]] = []
    w = k8s_watch.Watch()
    for event in w.stream(core.list_namespaced_pod, "default", label_selector="job-name=pw", timeout_seconds=2):
        seen.append((event["type"], event["object"].metadata.name))
        if len(seen) == 1:
            threading.Thread(target=core.patch_namespaced_pod, args=(
                "pw", "default", {"metadata": {"labels": {"seen": "1"}}})).start()
        if len(seen) == 2:
            w.stop()
    assert seen == [("ADDED", "pw"), ("MODIFIED", "pw")]
    write_log(server.log_store, {"metadata": {"namespace": "default", "name": "pw", "uid": pod.metadata.uid}},
              ["line one", "line two"])
    assert core.read_namespaced_pod_log("pw", "default") == "line one\nline two\n"
    stream = core.read_namespaced_pod_log("pw", "default", follow=True, _preload_content=False)
    assert b"".join(stream.stream()) == b"line one\nline two\n"
