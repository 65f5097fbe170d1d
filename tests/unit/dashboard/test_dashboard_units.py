"""Pure pieces of the dashboard: sessions, login CSRF, name checks, Backoff, Failures box."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from joblet.auth import UserInfo
from joblet.clock import FakeClock, rfc3339
from joblet.controllers.job.backoff import retry_at
from joblet.dashboard import pages
from joblet.dashboard.app import check_names, manual_job_name, safe_next
from joblet.dashboard.session import SessionStore, csrf_ok
from joblet.errors import NotFound

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def test_sessions_expire_and_are_random() -> None:
    clock = FakeClock(T0)
    store = SessionStore(clock, ttl=timedelta(hours=12))
    a, b = store.create(UserInfo("a")), store.create(UserInfo("b"))
    assert a.id != b.id and a.csrf != b.csrf and len(a.id) >= 40
    assert store.get(a.id) == a and store.get("nope") is None and store.get(None) is None
    clock.advance(12 * 3600 - 1)
    assert store.get(a.id) == a
    clock.advance(1)
    assert store.get(a.id) is None
    store.delete(b.id)
    assert store.get(b.id) is None


def test_session_store_is_bounded() -> None:
    store = SessionStore(FakeClock(T0), limit=3)
    first = store.create(UserInfo("u"))
    for _ in range(3):
        store.create(UserInfo("u"))
    assert len(store) == 3 and store.get(first.id) is None  # the oldest went first


def test_csrf_tokens() -> None:
    store = SessionStore(FakeClock(T0))
    s = store.create(UserInfo("u"))
    assert csrf_ok(s, s.csrf) and not csrf_ok(s, None) and not csrf_ok(s, "") and not csrf_ok(s, s.csrf + "x")
    nonce = store.new_login_nonce()
    assert store.login_csrf_ok(nonce, store.login_csrf(nonce))
    # A cookie planted by another port is useless without this server's key.
    assert not store.login_csrf_ok("planted", "planted")
    assert not store.login_csrf_ok(nonce, SessionStore(FakeClock(T0)).login_csrf(nonce))
    assert not store.login_csrf_ok(None, store.login_csrf(nonce))


@pytest.mark.parametrize("ns,name", [("default", "a b"), ("default", "\x00"), ("Default", "x"), ("default", "x\n"),
                                     ("default", "x" * 254), ("a" * 64, "x"), ("default", ".."), ("", "x")])
def test_bad_names_are_not_found(ns: str, name: str) -> None:
    with pytest.raises(NotFound):
        check_names(ns, name)


def test_good_names_pass() -> None:
    check_names("default", "render-frames.v2")


@pytest.mark.parametrize("given,expected", [(None, "/ui"), ("/ui/jobs/a/b", "/ui/jobs/a/b"), ("//evil.example", "/ui"),
                                            ("https://evil.example/ui", "/ui"), ("/ui\\@evil", "/ui"),
                                            ("/api/v1/secrets", "/ui")])
def test_next_stays_on_the_dashboard(given: str | None, expected: str) -> None:
    assert safe_next(given) == expected


def test_manual_job_names_fit_a_label() -> None:
    name = manual_job_name("x" * 63)
    assert len(name) <= 63 and name.startswith("x" * 50) and "-manual-" in name
    assert manual_job_name("nightly").startswith("nightly-manual-")
    assert not manual_job_name("a" * 49 + "-" + "b" * 20).split("-manual-")[0].endswith("-")


def pod(phase: str, finished: datetime, name: str = "p") -> dict[str, Any]:
    return {"metadata": {"name": name, "uid": name, "creationTimestamp": rfc3339(finished - timedelta(seconds=1))},
            "status": {"phase": phase, "containerStatuses": [
                {"name": "main", "state": {"terminated": {"exitCode": 0 if phase == "Succeeded" else 1,
                                                           "reason": "Error", "finishedAt": rfc3339(finished)}}}]}}


def test_backoff_retry_time_from_the_pods() -> None:
    job: dict[str, Any] = {"spec": {}, "status": {"failed": 2}}
    pods = [pod("Failed", T0, "a"), pod("Failed", T0 + timedelta(seconds=10), "b")]
    now = T0 + timedelta(seconds=12)
    # two failures: delay 10 * 2 = 20 s after the last failure
    assert retry_at(job, pods, now, 10, 600) == T0 + timedelta(seconds=30)
    assert retry_at(job, pods, T0 + timedelta(seconds=31), 10, 600) is None
    assert retry_at({"spec": {"suspend": True}, "status": {}}, pods, now, 10, 600) is None
    running = {"metadata": {"name": "c"}, "status": {"phase": "Running"}}
    assert retry_at(job, [*pods, running], now, 10, 600) is None
    failed_job = {"spec": {}, "status": {"conditions": [{"type": "Failed", "status": "True"}]}}
    assert retry_at(failed_job, pods, now, 10, 600) is None
    # a success after the failures resets the count
    assert retry_at(job, [*pods, pod("Succeeded", T0 + timedelta(seconds=11), "s")], now, 10, 600) is None


def test_backoff_badge_and_retry_line() -> None:
    job = {"metadata": {"name": "j", "namespace": "default"}, "spec": {}, "status": {"failed": 1}}
    assert pages.job_state(job) == "Backoff"
    assert pages.job_state({**job, "status": {"active": 1, "failed": 1}}) == "Running"
    assert pages.job_state({**job, "status": {}}) == "Pending"
    from joblet.dashboard.timeline import job_timeline
    tl = job_timeline(job, [], [], T0)
    html = pages.job_fragment("default", "j", job, tl, [], T0, T0 + timedelta(seconds=20))
    assert 'data-state="backoff"' in html and "next retry in 20s (00:00:20Z)" in html


def test_failures_box_escapes_and_links_the_full_log() -> None:
    entry = {"name": "j-0-abcde", "uid": "u1", "index": 0, "reason": "<b>", "message": "",
             "containers": [{"name": "main", "exitCode": 3, "reason": "Error", "logTail": ["<script>x</script>"]}]}
    html = pages.failures_html("default", [entry])
    assert "index 0 · j-0-abcde" in html and "main: exit 3 (Error)" in html
    assert "<script>" not in html and "&lt;script&gt;" in html and "&lt;b&gt;" in html
    assert 'href="/ui/logs/default/j-0-abcde?uid=u1&amp;container=main"' in html
    assert pages.failures_html("default", []) == ""


def test_pages_have_no_inline_script_or_style() -> None:
    job = {"metadata": {"name": "j", "namespace": "default"}, "spec": {"completions": 2},
           "status": {"succeeded": 1, "failed": 1}}
    html = pages.list_page([job], [], T0, csrf="c", user="u") + pages.login_page("x", "/ui")
    assert "style=" not in html and "<script>" not in html and 'src="/ui/static/app.js"' in html
