"""The dashboard against a hostile browser: sessions, CSRF, framing, headers, bad names.

Reproduces SEC-14 (a page on another 127.0.0.1 port reading the dashboard's credential),
SEC-15 (framing, missing headers) and SEC-19 (invalid names answering 500) from
/work/shared/research/security-audit.md and shows they are closed: in real Chromium where
the browser is the point, over real HTTP otherwise. The authorization tests serve
``dashboard_routes`` with a small read-only Authorizer, standing in for RBAC's ``view``.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route
from test_dashboard import (
    CHROMIUM,
    CHROMIUM_ARGS,
    TOKEN,
    _suspended,
    browser_available,
    cronjob,
    eventually,
    free_port,
    has_condition,
    http_log_in,
    job,
    log_in,
)

from joblet.auth import SYSTEM_MASTERS, Attributes, Credentials, Decision, UserInfo
from joblet.clock import FakeClock
from joblet.config import ControlPlaneConfig
from joblet.controlplane import ControlPlane
from joblet.dashboard import dashboard_routes
from joblet.kubeconfig import load_access

HEADERS = {
    "content-security-policy": "default-src 'self'; frame-ancestors 'none'",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}
VIEWER_TOKEN = "viewer-token-81d2"


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """Serve an ASGI app on a free loopback port; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as probe:
            async def up() -> bool:
                try:
                    await probe.get(base + "/ui/static/app.css")
                except httpx.HTTPError:
                    return False
                return True
            await eventually(up, what="server up")
        yield base
    finally:
        server.should_exit = True
        await task


class TwoTokens:
    """The admin token and a viewer's token, as the real token authenticator would map them."""

    async def authenticate(self, credentials: Credentials) -> UserInfo | None:
        return {TOKEN: UserInfo("admin", (SYSTEM_MASTERS,)),
                VIEWER_TOKEN: UserInfo("viewer", ("viewers",))}.get(credentials.token or "")


class ViewersRead:
    """``view`` for the group viewers (get/list/watch, also pods/log), everything for masters."""

    async def authorize(self, a: Attributes) -> Decision:
        if SYSTEM_MASTERS in a.user.groups:
            return Decision(True)
        if "viewers" in a.user.groups and a.verb in ("get", "list", "watch"):
            return Decision(True)
        return Decision(False, "viewers only read")


async def start_plane(tmp_path: Path, **cfg: Any) -> ControlPlane:
    plane = ControlPlane(ControlPlaneConfig(data_dir=tmp_path / "data", port=free_port(), token=TOKEN,
                                            pod_failure_backoff=0.2, pod_failure_backoff_max=0.4, **cfg))
    await plane.start()
    return plane


def trust(plane: ControlPlane) -> ssl.SSLContext:
    """Clients trust the data dir's CA, as its kubeconfig says."""
    return load_access(plane.config.data_dir / "kubeconfig").ssl_context()


def assert_headers(response: httpx.Response) -> None:
    for key, value in HEADERS.items():
        assert response.headers.get(key) == value, (response.request.url, key, response.headers)


@pytest.mark.skipif(not browser_available(), reason="needs playwright (pip) and chromium (apt)")
def test_session_cookie_is_unreadable_and_unframeable_from_another_port(tmp_path: Path) -> None:
    """SEC-14/15 in Chromium: HttpOnly SameSite=Strict session, no token in any page, no
    framing, and a page on another 127.0.0.1 port can neither read the cookie nor act."""
    from playwright.async_api import async_playwright

    async def main() -> None:
        plane = await start_plane(tmp_path)
        base = f"https://127.0.0.1:{plane.config.port}"
        c = plane.client
        try:
            await c.create("jobs", job("victim", "sleep 30"))
            await c.create("jobs", job("broken", "echo boom >&2; exit 2", backoffLimit=0))
            await c.create("cronjobs", cronjob("hourly", "echo hi", schedule="0 * * * *"))
            await eventually(lambda: has_condition(c, "broken", "Failed"), what="broken failed")

            async def evil(request: Request) -> HTMLResponse:
                # The attacker's page: frame the dashboard, read cookies, post an action.
                return HTMLResponse(f"""<!doctype html><title>evil</title>
<iframe id="f" src="{base}/ui/jobs/default/victim"></iframe>
<script>
document.title = "cookies:" + document.cookie;
fetch("{base}/ui/actions/jobs/default/victim/suspend", {{method: "POST", credentials: "include",
  mode: "no-cors"}}).then(() => {{ window.posted = "no-cors"; }}, () => {{ window.posted = "error"; }});
fetch("{base}/ui/actions/jobs/default/victim/suspend", {{method: "POST", credentials: "include",
  headers: {{"X-CSRF-Token": "guess"}}}}).then(() => {{ window.cors = "sent"; }},
  () => {{ window.cors = "blocked"; }});
</script>""")

            async with serving(Starlette(routes=[Route("/evil.html", evil)])) as evil_base, \
                    async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                context = await browser.new_context(ignore_https_errors=True)  # the data dir's own CA
                page = await context.new_page()
                await log_in(page, base)
                assert TOKEN not in page.url
                cookies = {ck["name"]: ck for ck in await context.cookies()}
                session = cookies["joblet_session"]
                assert session["httpOnly"] is True and session["sameSite"] == "Strict"
                assert session["path"] == "/" and session["secure"] is True  # served over HTTPS
                assert TOKEN not in session["value"]
                for path in ("/ui", "/ui/jobs/default/victim", "/ui/jobs/default/broken",
                             "/ui/cronjobs/default/hourly"):
                    await page.goto(base + path)
                    html = await page.content()
                    assert TOKEN not in html, path
                    assert "joblet_session" not in await page.evaluate("document.cookie"), path
                for path in ("/ui/partials/jobs", "/ui/partials/jobs/default/broken"):
                    fragment = await page.evaluate(f"fetch({path!r}).then(r => r.text())")
                    assert "Failures" in fragment or "jobs-table" in fragment
                    assert TOKEN not in fragment

                # Same origin but no CSRF token (or a wrong one): refused, nothing changes.
                await page.goto(base + "/ui/jobs/default/victim")
                url = "/ui/actions/jobs/default/victim/suspend"
                status = await page.evaluate(f"fetch({url!r}, {{method: 'POST'}}).then(r => r.status)")
                assert status == 403
                status = await page.evaluate(
                    f"fetch({url!r}, {{method: 'POST', headers: {{'X-CSRF-Token': 'wrong'}}}}).then(r => r.status)")
                assert status == 403
                assert not await _suspended(c, "victim")

                # The attacker on another port of 127.0.0.1.
                attacker = await context.new_page()
                await attacker.goto(evil_base + "/evil.html")
                await attacker.wait_for_function("window.posted && window.cors")
                assert "joblet_session" not in await attacker.title()
                assert await attacker.evaluate("window.cors") == "blocked"  # the preflight fails
                framed = [f for f in attacker.frames if f != attacker.main_frame]
                assert framed, "the iframe exists"
                for frame in framed:
                    try:
                        content = await frame.content()
                    except Exception:  # a blocked frame may have no document at all
                        content = ""
                    assert "victim" not in content and "joblet-csrf" not in content
                assert not await _suspended(c, "victim")

                # Logout ends the session on the server: the old cookie opens nothing.
                await page.goto(base + "/ui")
                await page.click("form.logout button")
                await page.locator("#login-form").wait_for()
                async with httpx.AsyncClient(base_url=base, cookies={"joblet_session": session["value"]},
                                             verify=trust(plane)) as http:
                    again = await http.get("/ui/partials/jobs")
                    assert again.status_code == 401
                await browser.close()
        finally:
            await plane.stop()

    asyncio.run(main())


def test_view_only_user_reads_but_cannot_act_and_sessions_expire(tmp_path: Path) -> None:
    """Actions are authorized as the session's user; a session lasts 12 hours."""

    async def main() -> None:
        clock = FakeClock()
        plane = ControlPlane(ControlPlaneConfig(data_dir=tmp_path / "data", port=free_port()), serve_http=False)
        await plane.start()
        try:
            c = plane.client
            await c.create("jobs", job("sleepy", "sleep 30"))
            await c.create("cronjobs", cronjob("daily", "echo hi"))
            routes = dashboard_routes(c, log_store=plane.log_store, clock=clock, authenticator=TwoTokens(),
                                      authorizer=ViewersRead(), secure_cookies=False)
            async with serving(Starlette(routes=routes)) as base, httpx.AsyncClient(base_url=base) as viewer, \
                    httpx.AsyncClient(base_url=base) as admin:
                bad = await viewer.get("/ui/login")
                field = re.search(r'name="csrf" value="([^"]+)"', bad.text)
                assert field is not None
                wrong = await viewer.post("/ui/login", data={"token": "nope", "csrf": field.group(1)})
                assert wrong.status_code == 401 and "not accepted" in wrong.text
                assert "joblet_session" not in wrong.headers.get("set-cookie", "")
                crossed = await viewer.post("/ui/login", data={"token": VIEWER_TOKEN, "csrf": field.group(1)},
                                            headers={"Origin": "http://127.0.0.1:1"})
                assert crossed.status_code == 403
                # A token in the URL signs nobody in.
                assert (await viewer.get(f"/ui?token={VIEWER_TOKEN}")).status_code == 401

                csrf = await http_log_in(viewer, VIEWER_TOKEN)
                admin_csrf = await http_log_in(admin, TOKEN)
                page = await viewer.get("/ui/jobs/default/sleepy")
                assert page.status_code == 200 and "viewer" in page.text
                assert (await viewer.get("/ui/cronjobs/default/daily")).status_code == 200
                for path in ("/ui/actions/jobs/default/sleepy/suspend", "/ui/actions/jobs/default/sleepy/delete",
                             "/ui/actions/cronjobs/default/daily/run"):
                    denied = await viewer.post(path, headers={"X-CSRF-Token": csrf})
                    assert denied.status_code == 403, (path, denied.text)
                    assert 'User "viewer" cannot' in denied.text
                    assert_headers(denied)
                assert not await _suspended(c, "sleepy")
                assert [j for j in (await c.list("jobs")).items if "manual" in j["metadata"]["name"]] == []
                # Another session's CSRF token is no good either.
                assert (await admin.post("/ui/actions/jobs/default/sleepy/suspend",
                                         headers={"X-CSRF-Token": csrf})).status_code == 403
                ok = await admin.post("/ui/actions/jobs/default/sleepy/suspend",
                                      headers={"X-CSRF-Token": admin_csrf})
                assert ok.status_code == 200, ok.text
                assert await _suspended(c, "sleepy")

                clock.advance(11 * 3600)
                assert (await viewer.get("/ui")).status_code == 200
                clock.advance(2 * 3600)
                expired = await viewer.get("/ui")
                assert expired.status_code == 401 and 'id="login-form"' in expired.text
        finally:
            await plane.stop()

    asyncio.run(main())


BAD_NAMES = ["%00", "a%20b", "UPPER", "a%0A", "-x", "x" * 260, "a..b", "%2E%2E"]


def test_bad_names_answer_4xx_and_every_answer_has_the_headers(tmp_path: Path) -> None:
    """SEC-19: invalid names and %00 never reach the store or the log files as a 500;
    SEC-15: the security headers on every dashboard answer, errors included."""

    async def main() -> None:
        plane = await start_plane(tmp_path)
        base = f"https://127.0.0.1:{plane.config.port}"
        try:
            async with httpx.AsyncClient(base_url=base, verify=trust(plane)) as http:
                login = await http.get("/ui")
                assert login.status_code == 401 and 'id="login-form"' in login.text
                assert_headers(login)
                assert_headers(await http.get("/", headers={"accept": "text/html"}))
                assert_headers(await http.get("/ui/static/app.js"))
                assert "<script>" not in login.text  # the CSP forbids inline scripts; none are needed
                csrf = await http_log_in(http)
                for name in BAD_NAMES:
                    for path in (f"/ui/jobs/default/{name}", f"/ui/partials/jobs/default/{name}",
                                 f"/ui/logs/default/{name}", f"/ui/cronjobs/default/{name}",
                                 f"/ui/partials/cronjobs/default/{name}", f"/ui/watch/jobs/default/{name}",
                                 f"/ui/jobs/{name}/x", f"/ui/logs/{name}/x"):
                        r = await http.get(path)
                        assert r.status_code in (400, 404), (path, r.status_code, r.text)
                        assert_headers(r)
                    r = await http.post(f"/ui/actions/jobs/default/{name}/suspend", headers={"X-CSRF-Token": csrf})
                    assert r.status_code in (400, 404), (name, r.status_code)
                r = await http.post("/ui/actions/jobs/default/missing/suspend", headers={"X-CSRF-Token": csrf})
                assert r.status_code == 404
                r = await http.post("/ui/actions/jobs/default/missing/explode", headers={"X-CSRF-Token": csrf})
                assert r.status_code == 404
                page = await http.get("/ui/jobs/default/missing")
                assert page.status_code == 404 and "missing" in page.text
                assert_headers(page)
        finally:
            await plane.stop()

    asyncio.run(main())


def test_following_the_log_of_a_missing_pod_ends_with_the_reason(tmp_path: Path) -> None:
    async def main() -> None:
        plane = await start_plane(tmp_path)
        try:
            async with httpx.AsyncClient(base_url=f"https://127.0.0.1:{plane.config.port}", verify=trust(plane)) as http:
                await http_log_in(http)
                r = await http.get("/ui/logs/default/no-such-pod", params={"follow": "true", "container": "main"})
                assert r.status_code == 200 and "no-such-pod" in r.text and "not found" in r.text, r.text
                assert r.headers["cache-control"] == "no-store"
                assert_headers(r)
        finally:
            await plane.stop()

    asyncio.run(main())
