"""The dashboard in real headless Chromium (Playwright), plus logs that outlive their Job.

Chromium comes from Debian (``apt-get install chromium``) and Playwright's Python driver
from pip; the browser is launched from /usr/bin/chromium (never ``playwright install``).
The browser test is skipped when either is missing. With JOBLET_UPDATE_SCREENSHOT=1 it also
refreshes docs/dashboard.png, the README's screenshot.
"""

from __future__ import annotations

import asyncio
import functools
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from joblet.client.interface import Client
from joblet.config import ControlPlaneConfig
from joblet.controlplane import ControlPlane
from joblet.errors import NotFound
from joblet.kubeconfig import load_access
from support import waiting
from support.tls import kubeconfig_async_http

#: this file's components take a while on a busy machine
eventually = functools.partial(waiting.eventually, timeout=20.0)

Obj = dict[str, Any]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "dashboard.png"


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


def job(name: str, command: str, **spec: Any) -> Obj:
    volumes = spec.pop("volumes", None)
    mounts = spec.pop("mounts", None)
    pod: Obj = {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                "containers": [{"name": "main", "image": "busybox", "command": ["sh", "-c", command],
                                **({"volumeMounts": mounts} if mounts else {})}]}
    if volumes:
        pod["volumes"] = volumes
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {**spec, "template": {"spec": pod}}}


async def has_condition(client: Client, name: str, ctype: str) -> bool:
    j = await client.get("jobs", name, "default")
    return any(c.get("type") == ctype and c.get("status") == "True" for c in (j.get("status") or {}).get("conditions") or [])


async def gone(client: Client, resource: str, name: str) -> bool:
    try:
        await client.get(resource, name, "default")
    except NotFound:
        return True
    return False


def browser_available() -> bool:
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return False
    return os.path.exists(CHROMIUM)


TOKEN = "dashboard-test-token-3f9c"


async def log_in(page: Any, base: str, token: str = TOKEN) -> None:
    """Sign in through the login form, as a person would (the token is typed, never in a URL)."""
    await page.goto(base + "/ui")
    await page.fill("#token", token)
    await page.click("#login-form button[type=submit]")
    await page.wait_for_url("**/ui")


async def http_log_in(http: httpx.AsyncClient, token: str = TOKEN) -> str:
    """The login form flow without a browser; returns the session's CSRF token."""
    form = await http.get("/ui/login")
    field = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert field is not None, form.text
    done = await http.post("/ui/login", data={"token": token, "csrf": field.group(1), "next": "/ui"})
    assert done.status_code == 303, done.text
    meta = re.search(r'name="joblet-csrf" content="([^"]+)"', (await http.get("/ui")).text)
    assert meta is not None
    return meta.group(1)


def cronjob(name: str, command: str, schedule: str = "0 3 * * *", **spec: Any) -> Obj:
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name},
            "spec": {"schedule": schedule, **spec, "jobTemplate": {"spec": job(name, command)["spec"]}}}


@pytest.mark.skipif(not browser_available(), reason="needs playwright (pip) and chromium (apt)")
def test_dashboard_in_headless_chromium(tmp_path: Path) -> None:
    from playwright.async_api import async_playwright

    state = tmp_path / "state"
    state.mkdir()
    retry_once = ('i=$JOB_COMPLETION_INDEX; echo "index $i starting"; sleep 0.$((i + 3)); '
                  'if [ $((i % 2)) = 1 ] && [ ! -e /state/$i ]; then touch /state/$i; '
                  'echo "index $i: transient failure, will retry" >&2; exit 1; fi; echo "index $i done"')

    async def main() -> None:
        port = free_port()
        plane = ControlPlane(ControlPlaneConfig(data_dir=tmp_path / "data", port=port, token=TOKEN,
                                                pod_failure_backoff=0.5, pod_failure_backoff_max=1))
        await plane.start()
        base = f"https://127.0.0.1:{port}"
        try:
            c = plane.client
            await c.create("jobs", job("render-frames", retry_once, completionMode="Indexed", completions=4,
                                       parallelism=4, backoffLimit=6,
                                       volumes=[{"name": "state", "hostPath": {"path": str(state)}}],
                                       mounts=[{"name": "state", "mountPath": "/state"}]))
            await c.create("jobs", job("nightly-report", "echo 'connecting to db'; echo 'cannot reach the database'"
                                       " >&2; exit 3", backoffLimit=0))
            await c.create("cronjobs", cronjob("backup", "echo backing up", timeZone="Europe/Berlin"))
            await eventually(lambda: has_condition(c, "render-frames", "Complete"), what="render-frames complete")
            await eventually(lambda: has_condition(c, "nightly-report", "Failed"), what="nightly-report failed")
            await c.create("jobs", job("long-train", "for i in $(seq 1 300); do echo step $i; sleep 0.1; done"))

            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                # the browser does not know the data dir's CA
                page = await browser.new_page(viewport={"width": 1200, "height": 900}, ignore_https_errors=True)
                await page.goto(base + "/")
                assert page.url.endswith("/ui")
                await page.locator("#login-form").wait_for()  # no session yet: the login form
                await log_in(page, base)
                rows = page.locator("#jobs-table tr.job-row")
                await rows.first.wait_for()
                assert await rows.count() == 3
                assert await page.locator('tr[data-state="failed"] >> text=nightly-report').count() == 1
                # Live: the running Job appears as running without a reload (watch → fragment refresh).
                await page.locator('tr[data-state="running"] >> text=long-train').wait_for(timeout=10_000)

                await page.click("text=render-frames")
                await page.wait_for_url("**/ui/jobs/default/render-frames")
                rows_tl = page.locator(".timeline .tl-row")
                assert await rows_tl.count() == 4
                assert await page.locator(".tl-row:has-text('index 1') .bar.failed").count() == 1
                assert await page.locator(".tl-row:has-text('index 1') .bar.succeeded").count() == 1
                assert await page.locator(".tl-row:has-text('index 0') .bar").count() == 1
                # The CSP allows no inline styles: app.js positions the bars from data attributes.
                width = await page.locator(".tl-row:has-text('index 0') .bar").evaluate("b => b.style.width")
                assert width.endswith("%") and float(width[:-1]) > 0
                await page.locator(".tl-row:has-text('index 1') .bar.failed").click()
                await page.locator("#log", has_text="transient failure").wait_for()
                await page.locator(".tl-row:has-text('index 2') .bar").click()
                await page.locator("#log", has_text="index 2 done").wait_for()
                assert await page.locator("table.events >> text=SuccessfulCreate").count() >= 1
                assert "completionMode: Indexed" in (await page.locator("#yaml").text_content() or "")
                if os.environ.get("JOBLET_UPDATE_SCREENSHOT"):  # the README's picture, on request
                    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
                    await page.screenshot(path=str(SCREENSHOT), full_page=True)

                # A failed Job: the Failures box, above the events, says why without a click.
                await page.goto(base + "/ui/jobs/default/nightly-report")
                failure = page.locator("#failures li.failure")
                assert await failure.count() == 1
                text = await failure.text_content() or ""
                assert "main: exit 3 (Error)" in text and "cannot reach the database" in text, text
                boxes = await page.evaluate(
                    "() => [...document.querySelectorAll('#failures, #log, table.events')].map(e => e.tagName)")
                assert boxes == ["SECTION", "PRE", "TABLE"]  # Failures, then logs, then the events
                await page.locator("#log", has_text="cannot reach the database").wait_for()  # latest attempt

                # Live logs of a running pod, then suspend and delete, all through /ui routes.
                await page.goto(base + "/ui/jobs/default/long-train")
                await page.locator("#log", has_text="step").wait_for(timeout=10_000)
                await page.click("#suspend")
                await eventually(lambda: _suspended(c, "long-train"), what="suspended")
                page.on("dialog", lambda d: asyncio.ensure_future(d.accept()))
                await page.click("#delete")
                await page.wait_for_url("**/ui", timeout=10_000)
                await eventually(lambda: gone(c, "jobs", "long-train"), what="long-train deleted")

                # The CronJob page: schedule in its zone, next runs, Run now, Suspend.
                await page.click("text=backup")
                await page.wait_for_url("**/ui/cronjobs/default/backup")
                assert await page.locator("#next-runs li").count() == 5
                first_run = await page.locator("#next-runs li").first.text_content() or ""
                assert first_run.endswith(("+01:00", "+02:00")), first_run  # Europe/Berlin
                await page.click("#run")
                await page.wait_for_url("**/ui/jobs/default/backup-manual-*", timeout=10_000)
                manual = page.url.rsplit("/", 1)[1]
                created = await c.get("jobs", manual, "default")
                assert created["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
                assert created["metadata"]["ownerReferences"][0]["name"] == "backup"
                await eventually(lambda: has_condition(c, manual, "Complete"), what="manual run complete")
                await page.goto(base + "/ui/cronjobs/default/backup")
                assert await page.locator(f"#cronjob-jobs >> text={manual}").count() == 1
                await page.click("#suspend")
                await eventually(lambda: _suspended(c, "backup", "cronjobs"), what="cronjob suspended")
                await page.locator("#resume:not([disabled])").wait_for()
                await browser.close()
        finally:
            await plane.stop()

    asyncio.run(main())


async def _suspended(client: Client, name: str, resource: str = "jobs") -> bool:
    return bool(((await client.get(resource, name, "default")).get("spec") or {}).get("suspend"))


def test_logs_of_a_deleted_job_stay_readable(tmp_path: Path) -> None:
    """Foreground deletion (what the TTL controller does) removes Job and pods, not their logs."""
    data = tmp_path / "data"

    async def main() -> None:
        port = free_port()
        plane = ControlPlane(ControlPlaneConfig(data_dir=data, port=port, pod_failure_backoff=0.2,
                                                pod_failure_backoff_max=0.4))
        await plane.start()
        try:
            c = plane.client
            await c.create("jobs", job("gone", 'echo "attempt of $JOB_COMPLETION_INDEX"; exit 1',
                                       completionMode="Indexed", completions=2, parallelism=1, backoffLimit=1))
            await eventually(lambda: has_condition(c, "gone", "Failed"), what="failed")
            await c.delete("jobs", "gone", "default", propagation_policy="Foreground")
            await eventually(lambda: gone(c, "jobs", "gone"), what="job deleted")
            async with kubeconfig_async_http(data / "kubeconfig") as http:
                # The Kubernetes paths are not shadowed by the dashboard.
                root = await http.get("/", headers={"accept": "application/json"})
                assert root.status_code == 404 and root.json()["kind"] == "Status"
                assert (await http.get("/version")).json()["major"] == "1"
                await http_log_in(http, load_access(data / "kubeconfig").token or "")  # the generated admin token
                page = await http.get("/ui/jobs/default/gone")
                assert page.status_code == 200 and "Deleted" in page.text and 'class="bar unknown"' in page.text
        finally:
            await plane.stop()

    asyncio.run(main())
    env = {**os.environ, "KUBECONFIG": str(tmp_path / "none")}
    out = subprocess.run([sys.executable, "-m", "joblet", "logs", "job/gone", "--all-attempts", "--data-dir",
                          str(data)], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    # parallelism 1, backoffLimit 1: index 0 fails twice (two pods, one attempt each), then the Job fails.
    assert len(lines) == 2, out.stdout
    pods = {line.split("/")[1].split(" ")[0] for line in lines}
    assert len(pods) == 2
    # Attempts are numbered per completion index across its pods (ux-audit m12).
    assert all(line.startswith("[0/gone-0-") for line in lines)
    assert lines[0].endswith(" attempt 1] attempt of 0") and lines[1].endswith(" attempt 2] attempt of 0")


def test_chromium_is_in_the_test_script() -> None:
    script = (Path(__file__).resolve().parents[2] / "scripts" / "test").read_text()
    assert "chromium" in script or shutil.which("chromium") is None


def test_a_job_in_backoff_says_when_it_retries(tmp_path: Path) -> None:
    """Not "Pending": between a failure and its replacement the Job page shows Backoff and
    the next retry time (the controller's --pod-failure-backoff, here 30 s)."""

    async def main() -> None:
        port = free_port()
        plane = ControlPlane(ControlPlaneConfig(data_dir=tmp_path / "data", port=port, token=TOKEN,
                                                pod_failure_backoff=30, pod_failure_backoff_max=60))
        await plane.start()
        try:
            c = plane.client
            await c.create("jobs", job("flaky", "echo 'disk full' >&2; exit 4", backoffLimit=3))

            async def failed_once() -> bool:
                return int(((await c.get("jobs", "flaky", "default")).get("status") or {}).get("failed") or 0) >= 1
            await eventually(failed_once, what="first failure")
            async with kubeconfig_async_http(tmp_path / "data" / "kubeconfig") as http:
                await http_log_in(http)

                async def backoff_shown() -> bool:
                    page = await http.get("/ui/jobs/default/flaky")
                    return 'class="badge backoff"' in page.text and "next retry in" in page.text
                await eventually(backoff_shown, what="Backoff on the Job page")
                page = await http.get("/ui/jobs/default/flaky")
                retry = re.search(r"next retry in (\d+)s", page.text)
                assert retry is not None and 20 <= int(retry.group(1)) <= 30, page.text
                assert "disk full" in page.text and "exit 4" in page.text  # the Failures box
                listing = await http.get("/ui/partials/jobs")
                assert 'data-state="backoff"' in listing.text
        finally:
            await plane.stop()

    asyncio.run(main())
