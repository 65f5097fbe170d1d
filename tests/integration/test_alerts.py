"""Alerts end to end: a real control plane, real pods, and real HTTP listeners on 127.0.0.1.

A failing Job's payload reaches the webhook (exit codes, log tail, secrets redacted) and is
recorded on the Job; a restart does not send it again; dead webhooks (nothing listening, a
server that never answers) neither block other Jobs nor go unreported.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import threading
from collections.abc import Awaitable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from joblet.client.interface import Client
from joblet.config import ControlPlaneConfig
from joblet.controllers.alerts import ALERTED, REDACTED, AlertController
from joblet.controlplane import ControlPlane
from support.waiting import eventually

Obj = dict[str, Any]
SECRET = "hunter2-s3cr3t"


class Listener:
    """A tiny webhook receiver: records JSON bodies; optionally never answers."""

    def __init__(self, hang: bool = False) -> None:
        self.bodies: list[Obj] = []
        self.release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                if hang:
                    outer.release.wait(30)
                    return
                outer.bodies.append(json.loads(body))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


def dead_port() -> int:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


def job(name: str, command: str, annotations: Obj | None = None, backoff_limit: int = 0, **container: Any) -> Obj:
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "annotations": annotations or {}},
        "spec": {"backoffLimit": backoff_limit, "template": {"spec": {
            "restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "main", "image": "busybox", "command": ["sh", "-c", command], **container}]}}},
    }


async def events_of(client: Client, name: str, reason: str) -> list[Obj]:
    items = (await client.list("events", "default")).items
    return [e for e in items if (e.get("involvedObject") or {}).get("name") == name and e.get("reason") == reason]


async def finished(client: Client, name: str, ctype: str) -> bool:
    j = await client.get("jobs", name, "default")
    return any(c.get("type") == ctype and c.get("status") == "True" for c in (j.get("status") or {}).get("conditions") or [])


def alert_controller(plane: ControlPlane) -> AlertController:
    manager: Any = plane._manager  # test access to the assembled controllers
    return next(c for c in manager.controllers if isinstance(c, AlertController))


def config(tmp_path: Path, webhooks: tuple[str, ...] = (), allow: tuple[str, ...] = ()) -> ControlPlaneConfig:
    return ControlPlaneConfig(data_dir=tmp_path / "data", alert_webhooks=webhooks, alert_webhook_allow=allow,
                              dashboard_url="http://dash:1")


def host_port(url: str) -> str:
    return url.split("://", 1)[1].split("/", 1)[0]


def test_failing_job_alert_reaches_webhook_once_with_logs_and_no_secrets(tmp_path: Path, listener: Listener) -> None:
    async def main() -> None:
        plane = ControlPlane(config(tmp_path, allow=(host_port(listener.url),)), serve_http=False)
        await plane.start()
        try:
            c = plane.client
            await c.create("secrets", {"metadata": {"name": "db"},
                                       "data": {"password": base64.b64encode(SECRET.encode()).decode()}}, "default")
            cmd = 'for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25; do echo "line $i"; done; ' \
                  'echo "connecting with $PASSWORD"; echo "giving up" >&2; exit 3'
            await c.create("jobs", job("boom", cmd, {"joblet.dev/alert-webhook": listener.url},
                                       env=[{"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db",
                                                                                                "key": "password"}}}]))
            await eventually(lambda: _true(len(listener.bodies) >= 1), what="alert delivered")
            await eventually(lambda: _nonempty(events_of(c, "boom", "AlertSent")), what="AlertSent event")
            payload = listener.bodies[0]
            assert payload["kind"] == "JobFailed" and payload["job"] == "boom" and payload["namespace"] == "default"
            assert payload["reason"] == "BackoffLimitExceeded"
            assert payload["uid"] == (await c.get("jobs", "boom", "default"))["metadata"]["uid"]
            assert payload["dashboardUrl"] == "http://dash:1/ui/jobs/default/boom"
            pod = payload["failedPods"][0]
            assert pod["exitCodes"] == {"main": 3}
            tail = pod["containers"][0]["logTail"]
            assert len(tail) == 20 and tail[-1] == "giving up" and REDACTED in tail
            assert SECRET not in json.dumps(payload)
            annotations = (await c.get("jobs", "boom", "default"))["metadata"]["annotations"]
            assert annotations[ALERTED] == "failure"
        finally:
            await plane.stop()
        # A restart sees the claim and delivers nothing again.
        plane = ControlPlane(config(tmp_path), serve_http=False)
        await plane.start()
        try:
            ctrl = alert_controller(plane)
            assert len(ctrl.queue) == 0 and ctrl.pending() == 0
            assert len(listener.bodies) == 1
        finally:
            await plane.stop()

    asyncio.run(main())


def test_success_alert_only_when_asked(tmp_path: Path, listener: Listener) -> None:
    async def main() -> None:
        plane = ControlPlane(config(tmp_path, (listener.url,)), serve_http=False)
        await plane.start()
        try:
            c = plane.client
            await c.create("jobs", job("quiet", "true"))
            await c.create("jobs", job("loud", "true", {"joblet.dev/alert-on": "success"}))
            await eventually(lambda: _true(len(listener.bodies) >= 1), what="success alert")
            await eventually(lambda: finished(c, "quiet", "Complete"), what="quiet complete")
            ctrl = alert_controller(plane)
            await eventually(lambda: _true(len(ctrl.queue) == 0 and ctrl.pending() == 0), what="alerts idle")
            assert [b["job"] for b in listener.bodies] == ["loud"]
            assert listener.bodies[0]["kind"] == "JobSucceeded"
        finally:
            await plane.stop()

    asyncio.run(main())


def test_dead_webhooks_do_not_slow_other_jobs(tmp_path: Path) -> None:
    hanging = Listener(hang=True)
    refused = f"http://127.0.0.1:{dead_port()}/hook"

    async def main() -> None:
        plane = ControlPlane(config(tmp_path, (refused, hanging.url)), serve_http=False)
        await plane.start()
        try:
            ctrl = alert_controller(plane)
            ctrl.timeout, ctrl.backoff_base, ctrl.max_attempts = 1.0, 0.1, 2
            c = plane.client
            for i in range(3):
                await c.create("jobs", job(f"fail-{i}", "exit 1"))
            await eventually(lambda: _true(ctrl.pending() > 0), what="deliveries in flight")
            loop = asyncio.get_running_loop()
            start = loop.time()
            for i in range(3):
                await c.create("jobs", job(f"ok-{i}", "true"))
            for name in ("ok-0", "ok-1", "ok-2"):
                await eventually(functools.partial(finished, c, name, "Complete"), timeout=10, what=name)
            assert loop.time() - start < 8
            for name in ("fail-0", "fail-1", "fail-2"):
                await eventually(functools.partial(_failed_alerts, c, name, 2), timeout=20, what=f"AlertFailed {name}")
            failed = await events_of(c, "fail-0", "AlertFailed")
            assert all("after 2 attempt(s)" in e["message"] for e in failed)
        finally:
            await plane.stop()

    try:
        asyncio.run(main())
    finally:
        hanging.close()


def test_annotation_webhooks_only_when_allowed_and_without_transport_details(tmp_path: Path,
                                                                           listener: Listener) -> None:
    refused = f"http://127.0.0.1:{dead_port()}/hook"

    async def main() -> None:
        allow = (host_port(refused),)
        plane = ControlPlane(config(tmp_path, allow=allow), serve_http=False)
        await plane.start()
        try:
            ctrl = alert_controller(plane)
            ctrl.timeout, ctrl.backoff_base, ctrl.max_attempts = 1.0, 0.05, 2
            c = plane.client
            # Not on the allow list: never contacted.
            await c.create("jobs", job("not-allowed", "exit 1", {"joblet.dev/alert-webhook": listener.url}))
            # Allowed, but nothing listens: the event says "delivery failed" and no more.
            await c.create("jobs", job("refused", "exit 1", {"joblet.dev/alert-webhook": refused}))
            await eventually(lambda: _nonempty(events_of(c, "refused", "AlertFailed")), timeout=20,
                             what="AlertFailed refused")
            message = (await events_of(c, "refused", "AlertFailed"))[0]["message"]
            assert message.endswith(": delivery failed"), message
            assert "Connect" not in message and "attempt" not in message
            await eventually(lambda: finished(c, "not-allowed", "Failed"), what="not-allowed failed")
            await eventually(lambda: _true(len(ctrl.queue) == 0 and ctrl.pending() == 0), what="alerts idle")
            assert listener.bodies == []
            assert await events_of(c, "not-allowed", "AlertFailed") == []
        finally:
            await plane.stop()

    asyncio.run(main())


async def _true(value: bool) -> bool:
    return value


async def _nonempty(items: Awaitable[list[Obj]]) -> bool:
    return bool(await items)


async def _failed_alerts(client: Client, name: str, n: int) -> bool:
    return len(await events_of(client, name, "AlertFailed")) >= n
