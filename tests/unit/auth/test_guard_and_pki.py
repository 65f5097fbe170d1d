"""Browser checks (Host, Origin, content type) and the data dir's PKI, without a server."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509

from joblet.api.guard import allowed_hosts, check_request
from joblet.clock import FakeClock
from joblet.security.pki import cert_sans, ensure_serving_cert, issue_client_cert, subject_user

HOSTS = allowed_hosts(["127.0.0.1", "::1", "localhost", "api.example"], 6443)


def scope(method: str = "GET", path: str = "/api/v1/pods", **headers: str) -> dict[str, object]:
    raw = [(k.replace("_", "-").lower().encode(), v.encode()) for k, v in headers.items()]
    return {"type": "http", "method": method, "path": path, "scheme": "https", "headers": raw}


def test_host_allow_list() -> None:
    assert {"127.0.0.1:6443", "[::1]:6443", "localhost:6443", "api.example:6443"} == HOSTS
    assert check_request(scope(host="localhost:6443"), HOSTS) is None
    assert check_request(scope(host="evil.example:6443"), HOSTS).code == 421  # type: ignore[union-attr]
    assert check_request(scope(host="localhost:6444"), HOSTS).code == 421  # type: ignore[union-attr]
    assert check_request(scope(), HOSTS).code == 421  # type: ignore[union-attr]


def test_origin_and_fetch_site() -> None:
    own = scope(host="localhost:6443", origin="https://localhost:6443")
    assert check_request(own, HOSTS) is None
    assert check_request(scope(host="localhost:6443", origin="http://localhost:6443"), HOSTS).code == 403  # type: ignore[union-attr]
    assert check_request(scope(host="localhost:6443", origin="null"), HOSTS).code == 403  # type: ignore[union-attr]
    assert check_request(scope(host="localhost:6443", sec_fetch_site="cross-site"), HOSTS).code == 403  # type: ignore[union-attr]
    assert check_request(scope(host="localhost:6443", sec_fetch_site="same-origin"), HOSTS) is None
    # the dashboard is Origin-checked too
    assert check_request(scope("POST", "/ui/x", host="localhost:6443", origin="https://evil"), HOSTS).code == 403  # type: ignore[union-attr]


def test_simple_content_types_are_415() -> None:
    h = {"host": "localhost:6443"}
    for ct in ("text/plain", "text/plain; charset=utf-8", "application/x-www-form-urlencoded", "multipart/form-data; b=1"):
        assert check_request(scope("POST", content_type=ct, **h), HOSTS).code == 415  # type: ignore[union-attr]
    assert check_request(scope("PUT", **h), HOSTS).code == 415  # type: ignore[union-attr]
    assert check_request(scope("PUT", authorization="Bearer t", **h), HOSTS) is None  # the official client
    assert check_request(scope("POST", content_type="application/json", **h), HOSTS) is None
    assert check_request(scope("DELETE", content_length="2", **h), HOSTS).code == 415  # type: ignore[union-attr]
    assert check_request(scope("DELETE", **h), HOSTS) is None
    assert check_request(scope("POST", "/ui/jobs/default/x/delete", content_type="application/x-www-form-urlencoded",
                               **h), HOSTS) is None  # the dashboard's own forms (CSRF-protected there)


def test_serving_cert_is_reissued_only_when_names_change(tmp_path: Path) -> None:
    clock = FakeClock()
    first = ensure_serving_cert(tmp_path, ["127.0.0.1", "localhost"], clock.now())
    pem = first.cert.read_bytes()
    assert ensure_serving_cert(tmp_path, ["localhost", "127.0.0.1"], clock.now()).cert.read_bytes() == pem
    ca = first.ca.read_bytes()
    ensure_serving_cert(tmp_path, ["127.0.0.1", "localhost", "10.0.0.7", "api.example"], clock.now())
    cert = x509.load_pem_x509_certificate(first.cert.read_bytes())
    dns, ips = cert_sans(cert)
    assert dns == {"localhost", "api.example"} and {str(i) for i in ips} == {"127.0.0.1", "10.0.0.7"}
    assert first.ca.read_bytes() == ca  # same CA: kubeconfigs stay valid
    for path in (first.cert, first.key, first.ca, tmp_path / "pki" / "ca.key"):
        assert path.stat().st_mode & 0o077 == 0


def test_client_cert_subject_is_user_and_groups(tmp_path: Path) -> None:
    cert, _key = issue_client_cert(tmp_path, "alice", ("dev", "ops"), FakeClock().now())
    assert subject_user(cert) == ("alice", ("dev", "ops"))
