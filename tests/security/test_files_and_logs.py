"""SEC-06 (file part): the data dir is 0700 (also one that was 0755), its files 0600; the audit
and access logs record who did what; SEC-21: only real loopback addresses count as loopback."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SecServer
from joblet.cli.main import is_loopback
from support.tls import kubeconfig_http


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_data_dir_is_private(sec_server: SecServer) -> None:
    assert mode(sec_server.data_dir) == 0o700  # it was created 0755 before the server started
    files = [p for p in sec_server.data_dir.rglob("*") if p.is_file() and not p.is_symlink()]
    names = {p.relative_to(sec_server.data_dir).as_posix() for p in files}
    assert {"kubeconfig", "tokens.json", "pki/ca.key", "pki/apiserver.key", "joblet.db"} <= names
    loose = {p.relative_to(sec_server.data_dir).as_posix(): oct(mode(p)) for p in files if mode(p) & 0o077}
    assert not loose
    dirs = [p for p in sec_server.data_dir.rglob("*") if p.is_dir() and not p.is_symlink()]
    assert not {p.name: oct(mode(p)) for p in dirs if mode(p) & 0o077}
    for log in (sec_server.audit_log, sec_server.access_log):
        assert mode(log) == 0o600


def test_audit_and_access_logs_record_each_request(sec_server: SecServer) -> None:
    with kubeconfig_http(sec_server.kubeconfig) as http:
        created = http.post("/api/v1/namespaces/default/configmaps",
                            json={"metadata": {"name": "audited"}, "data": {"k": "v"}},
                            headers={"User-Agent": "audit-test/1"})
        assert created.status_code == 201
    with kubeconfig_http(sec_server.kubeconfig) as http:
        http.headers.pop("Authorization")
        assert http.get("/api/v1/namespaces/default/secrets").status_code == 401
    events = [json.loads(line) for line in sec_server.audit_log.read_text().splitlines()]
    create = next(e for e in events if e["userAgent"] == "audit-test/1")
    assert create["apiVersion"] == "audit.k8s.io/v1" and create["kind"] == "Event"
    assert (create["level"], create["stage"], create["verb"]) == ("Metadata", "ResponseComplete", "create")
    assert create["user"]["username"] == "admin" and "system:masters" in create["user"]["groups"]
    assert create["objectRef"] == {"resource": "configmaps", "namespace": "default", "apiVersion": "v1"}
    assert create["responseStatus"]["code"] == 201 and create["sourceIPs"] == ["127.0.0.1"]
    assert create["requestURI"] == "/api/v1/namespaces/default/configmaps"
    assert create["auditID"] and create["requestReceivedTimestamp"] <= create["stageTimestamp"]
    assert create["annotations"]["apiserver.latency.k8s.io/total"].endswith("ms")
    denied = [e for e in events if e["requestURI"] == "/api/v1/namespaces/default/secrets"]
    assert denied[-1]["responseStatus"]["code"] == 401 and denied[-1]["user"]["username"] == "system:anonymous"
    assert denied[-1]["verb"] == "list"
    assert sec_server.token not in sec_server.audit_log.read_text()
    access = sec_server.access_log.read_text().splitlines()
    line = next(li for li in access if " create /api/v1/namespaces/default/configmaps " in li)
    _time, user, verb, path, code, size, latency = line.split(" ")
    assert (user, verb, path, code) == ("admin", "create", "/api/v1/namespaces/default/configmaps", "201")
    assert int(size) > 0 and latency.endswith("ms")
    assert any(" system:anonymous list /api/v1/namespaces/default/secrets 401 " in li for li in access)


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.3.4.5", True), ("::1", True), ("localhost", True),
    ("127.example.com", False), ("127.0.0.1.nip.invalid", False), ("0.0.0.0", False), ("8.8.8.8", False),
])
def test_sec21_loopback_is_decided_by_address(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_sec21_insecure_http_only_on_loopback(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "joblet", "server", "--data-dir", str(tmp_path / "d"),
                             "--insecure-http", "--host", "127.example.com"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2 and "loopback" in result.stderr
