"""SEC-02: what a web page can make a browser send is refused before it does anything —
simple-request bodies (415), foreign Host (DNS rebinding, 421), foreign Origin or
Sec-Fetch-Site (403) — against a real ``joblet server``."""

from __future__ import annotations

import json
import ssl

import httpx

from conftest import SecServer
from support.tls import kubeconfig_http

PODS = "/api/v1/namespaces/default/pods"


def pod(name: str) -> bytes:
    return json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {
        "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox", "command": ["true"]}]}}).encode()


def exists(server: SecServer, name: str) -> bool:
    with kubeconfig_http(server.kubeconfig) as http:
        return http.get(f"{PODS}/{name}").status_code == 200


def anonymous(server: SecServer) -> httpx.Client:
    return httpx.Client(base_url=server.url, verify=ssl.create_default_context(cafile=str(server.ca_file)), timeout=10)


def test_cross_site_simple_posts_are_415_and_create_nothing(sec_server: SecServer) -> None:
    with anonymous(sec_server) as http:
        for i, content_type in enumerate(("text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", "text/plain;charset=UTF-8")):
            answer = http.post(PODS, content=pod(f"csrf{i}"), headers={"Content-Type": content_type})
            assert answer.status_code == 415, (content_type, answer.text)
            assert answer.json()["reason"] == "UnsupportedMediaType"
        # fetch(no-cors) with a Blob body sends no Content-Type at all
        bare = http.post(PODS, content=pod("csrf-bare"))
        assert bare.status_code == 415
    # even with the admin token a text/plain body is refused (as kube-apiserver does)
    with kubeconfig_http(sec_server.kubeconfig) as http:
        assert http.post(PODS, content=pod("csrf-admin"), headers={"Content-Type": "text/plain"}).status_code == 415
    for name in ("csrf0", "csrf1", "csrf2", "csrf3", "csrf-bare", "csrf-admin"):
        assert not exists(sec_server, name), name


def test_foreign_host_is_misdirected(sec_server: SecServer) -> None:
    with kubeconfig_http(sec_server.kubeconfig) as http:
        for host in (f"rebind.attacker.example:{sec_server.port}", "127.0.0.1:1", "localhost"):
            answer = http.get("/api/v1/secrets", headers={"Host": host})
            assert answer.status_code == 421, host
            assert answer.json()["reason"] == "MisdirectedRequest"
        for host in (f"127.0.0.1:{sec_server.port}", f"localhost:{sec_server.port}"):
            assert http.get("/api/v1/namespaces", headers={"Host": host}).status_code == 200, host
        # the dashboard too
        assert http.get("/ui", headers={"Host": f"evil.example:{sec_server.port}"}).status_code == 421


def test_cross_origin_requests_are_forbidden(sec_server: SecServer) -> None:
    with kubeconfig_http(sec_server.kubeconfig) as http:
        evil = http.post(PODS, content=pod("xorigin"), headers={"Content-Type": "application/json",
                                                                "Origin": "http://evil.example"})
        assert evil.status_code == 403
        fetch_site = http.get("/api/v1/namespaces", headers={"Sec-Fetch-Site": "cross-site"})
        assert fetch_site.status_code == 403
        assert http.get("/api/v1/namespaces", headers={"Sec-Fetch-Site": "same-site"}).status_code == 403
        own = http.get("/api/v1/namespaces", headers={"Origin": sec_server.url, "Sec-Fetch-Site": "same-origin"})
        assert own.status_code == 200
    assert not exists(sec_server, "xorigin")
