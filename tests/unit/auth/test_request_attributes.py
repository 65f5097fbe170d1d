"""Request → authorizer attributes (upstream RequestInfoFactory) and upstream's 403 texts."""

from __future__ import annotations

import pytest

from joblet.auth import Attributes, UserInfo
from joblet.auth.request import forbidden, request_attributes

ALICE = UserInfo("alice", ("dev",))


@pytest.mark.parametrize(("method", "path", "query", "want"), [
    ("GET", "/api/v1/namespaces/default/pods", "", ("list", "default", "", "pods", "", "")),
    ("GET", "/api/v1/namespaces/default/pods", "watch=true", ("watch", "default", "", "pods", "", "")),
    ("GET", "/api/v1/pods", "watch=1", ("watch", "", "", "pods", "", "")),
    ("GET", "/api/v1/namespaces/default/pods/p", "", ("get", "default", "", "pods", "", "p")),
    ("GET", "/api/v1/namespaces/default/pods/p/log", "", ("get", "default", "", "pods", "log", "p")),
    ("POST", "/apis/batch/v1/namespaces/ns/jobs", "", ("create", "ns", "batch", "jobs", "", "")),
    ("PUT", "/apis/batch/v1/namespaces/ns/jobs/j/status", "", ("update", "ns", "batch", "jobs", "status", "j")),
    ("PATCH", "/apis/batch/v1/namespaces/ns/jobs/j", "", ("patch", "ns", "batch", "jobs", "", "j")),
    ("DELETE", "/apis/batch/v1/namespaces/ns/jobs/j", "", ("delete", "ns", "batch", "jobs", "", "j")),
    ("DELETE", "/apis/batch/v1/namespaces/ns/jobs", "", ("deletecollection", "ns", "batch", "jobs", "", "")),
    ("GET", "/api/v1/namespaces/ns", "", ("get", "ns", "", "namespaces", "", "ns")),
    ("PUT", "/api/v1/namespaces/ns/status", "", ("update", "ns", "", "namespaces", "status", "ns")),
    ("GET", "/api/v1/nodes", "fieldSelector=metadata.name%3Dn1", ("list", "", "", "nodes", "", "n1")),
    ("POST", "/api/v1/namespaces/d/pods/p/eviction", "", ("create", "d", "", "pods", "eviction", "p")),
])
def test_resource_requests(method: str, path: str, query: str, want: tuple[str, ...]) -> None:
    a = request_attributes(ALICE, method, path, query)
    assert a.resource_request
    assert (a.verb, a.namespace, a.api_group, a.resource, a.subresource, a.name) == want


@pytest.mark.parametrize(("method", "path", "verb"), [
    ("GET", "/version", "get"), ("GET", "/api", "get"), ("GET", "/api/v1", "get"), ("GET", "/apis/batch", "get"),
    ("GET", "/apis/batch/v1", "get"), ("POST", "/metrics", "post"), ("GET", "/openapi/v3/apis/batch/v1", "get"),
])
def test_non_resource_requests(method: str, path: str, verb: str) -> None:
    a = request_attributes(ALICE, method, path)
    assert not a.resource_request and a.verb == verb and a.path == path


def test_forbidden_messages_are_upstreams() -> None:
    ns = forbidden(request_attributes(ALICE, "POST", "/apis/batch/v1/namespaces/default/jobs"))
    assert ns.code == 403 and ns.reason == "Forbidden"
    assert ns.message == ('jobs.batch is forbidden: User "alice" cannot create resource "jobs" in API group '
                          '"batch" in the namespace "default"')
    named = forbidden(request_attributes(ALICE, "GET", "/api/v1/namespaces/d/pods/p/log"), "no rule")
    assert named.message == ('pods "p" is forbidden: User "alice" cannot get resource "pods/log" in API group "" '
                             'in the namespace "d": no rule')
    assert named.details == {"name": "p", "kind": "pods"}
    cluster = forbidden(request_attributes(ALICE, "GET", "/api/v1/nodes"))
    assert cluster.message == ('nodes is forbidden: User "alice" cannot list resource "nodes" in API group "" '
                               'at the cluster scope')
    path = forbidden(Attributes(ALICE, "get", False, path="/metrics"))
    assert path.message == 'forbidden: User "alice" cannot get path "/metrics"'
