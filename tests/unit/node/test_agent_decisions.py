"""Table tests of the node agent's and runtime's pure decisions, and the log store's rendering."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from joblet.api.defaults import qos_class
from joblet.clock import FakeClock
from joblet.logformat import render
from joblet.node.cgroups import cfs_quota_us, parse_oom_kills
from joblet.node.containerenv import expand
from joblet.node.logs import LogStore
from joblet.node.podworker import backoff_delay, should_restart
from joblet.node.quantity import parse_quantity
from joblet.node.runtimes.process import exit_from_status, parse_status

T = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(("text", "oom", "want"), [
    ("exit 0\nfinished 1\n", False, (0, "Completed")),
    ("exit 2\nfinished 1\n", False, (2, "Error")),
    ("signal 9\nfinished 1\n", True, (137, "OOMKilled")),
    ("signal 15\nfinished 1\n", False, (143, "Error")),
    ("starterror 2\nfinished 1\nmessage exec: x\n", False, (128, "StartError")),
], ids=["ok", "error", "oom", "sigterm", "starterror"])
def test_exit_from_status(text: str, oom: bool, want: tuple[int, str]) -> None:
    result = exit_from_status(parse_status(text), oom, T)
    assert (result.exit_code, result.reason) == want


@pytest.mark.parametrize(("restarts", "want"), [(0, 0.0), (1, 10.0), (2, 20.0), (5, 160.0), (9, 300.0)],
                         ids=["first-immediate", "base", "double", "x16", "capped"])
def test_backoff(restarts: int, want: float) -> None:
    assert backoff_delay(restarts, 10, 300) == want


@pytest.mark.parametrize(("policy", "code", "want"), [
    ("Never", 1, False), ("OnFailure", 1, True), ("OnFailure", 0, False), ("Always", 0, True)],
    ids=["never", "onfailure-fail", "onfailure-ok", "always"])
def test_should_restart(policy: str, code: int, want: bool) -> None:
    assert should_restart(policy, code) is want


@pytest.mark.parametrize(("q", "want"), [("500m", 0.5), ("64Mi", 64 * 2**20), ("1G", 1e9), ("2", 2.0)],
                         ids=["milli", "mebi", "giga", "plain"])
def test_parse_quantity(q: str, want: float) -> None:
    assert parse_quantity(q) == want


@pytest.mark.parametrize(("text", "want"), [
    ("$(A)-x", "1-x"), ("$$(A)", "$(A)"), ("$(B)", "$(B)")], ids=["defined", "escaped", "undefined"])
def test_expand(text: str, want: str) -> None:
    assert expand(text, {"A": "1"}) == want


@pytest.mark.parametrize(("resources", "want"), [
    ({}, "BestEffort"),
    ({"limits": {"cpu": "1", "memory": "1Gi"}}, "Guaranteed"),
    ({"requests": {"cpu": "1"}}, "Burstable")], ids=["besteffort", "guaranteed", "burstable"])
def test_qos(resources: dict[str, dict[str, str]], want: str) -> None:
    assert qos_class({"spec": {"containers": [{"name": "c", "resources": resources}]}}) == want


def test_cgroup_helpers() -> None:
    assert parse_oom_kills("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n") == 2
    assert cfs_quota_us(250) == 25000


@pytest.mark.parametrize(("line", "ts", "want"), [
    (b"2024-01-01T00:00:00.1Z stdout F hi", False, b"hi\n"),
    (b"2024-01-01T00:00:00.1Z stdout P hi", False, b"hi"),
    (b"2024-01-01T00:00:00.1Z stderr F hi", True, b"2024-01-01T00:00:00.1Z hi\n")],
    ids=["full", "partial", "timestamps"])
def test_render(line: bytes, ts: bool, want: bytes) -> None:
    assert render(line, ts) == want


def test_log_store_tail_previous_and_follow(tmp_path: Path) -> None:
    store = LogStore(tmp_path, FakeClock())
    for attempt, text in ((0, b"a"), (1, b"b")):
        p = store.path("ns", "p", "uid", "c", attempt)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"".join(b"2024-01-01T00:00:00Z stdout F %s%d\n" % (text, i) for i in range(3)))
        p.with_suffix(".done").touch()

    async def read(**kw: object) -> bytes:
        return b"".join([c async for c in store.read("ns", "p", **kw)])  # type: ignore[arg-type]

    assert asyncio.run(read(tail_lines=1)) == b"b2\n"
    assert asyncio.run(read(previous=True)) == b"a0\na1\na2\n"
    assert asyncio.run(read(follow=True, limit_bytes=4)) == b"b0\nb"
    assert store.containers("ns", "p") == ["c"] and store.pods("ns") == ["p"]
