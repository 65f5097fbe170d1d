"""The runtime contract for the Ray runtime, against the real Ray cluster of conftest: exit
codes and reasons, start errors, CRI-timestamped output, env and workingDir, kill with grace
(SIGTERM, then SIGKILL for a process that ignores it), and what a restarted agent learns."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from joblet.clock import RealClock
from joblet.logformat import parse_cri_line
from joblet.node.raynodes.nodes import connect
from joblet.node.raynodes.runtime import RayRuntime
from joblet.node.runtimes.base import ContainerExit, ContainerRef, ContainerSpec
from support.raycluster import RaySetup

pytestmark = [pytest.mark.ray, pytest.mark.timeout(300)]
ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin"}


def runtime(setup: RaySetup, tmp_path: Path) -> RayRuntime:
    connect(setup.cluster.address)
    return RayRuntime(tmp_path / "data", RealClock(), setup.worker_id, volume_root=lambda uid: tmp_path / uid)


def spec(tmp_path: Path, script: str, **kw: object) -> ContainerSpec:
    ref = ContainerRef(uuid.uuid4().hex, "main", 0)
    return ContainerSpec(ref, ["sh", "-c", script], dict(ENV), tmp_path / "logs" / f"{ref.pod_uid}.log",
                         **kw)  # type: ignore[arg-type]


def run(rt: RayRuntime, s: ContainerSpec) -> ContainerExit:
    async def main() -> ContainerExit:
        await rt.start(s)
        return await rt.wait(s.ref)
    return asyncio.run(main())


@pytest.mark.parametrize(("script", "code", "reason", "sig"), [
    ("exit 0", 0, "Completed", None), ("exit 3", 3, "Error", None), ("kill -KILL $$", 137, "Error", 9)])
def test_exit_codes(ray_setup: RaySetup, tmp_path: Path, script: str, code: int, reason: str,
                    sig: int | None) -> None:
    result = run(runtime(ray_setup, tmp_path), spec(tmp_path, script))
    assert (result.exit_code, result.reason, result.signal) == (code, reason, sig)


def test_start_error_for_missing_command(ray_setup: RaySetup, tmp_path: Path) -> None:
    rt = runtime(ray_setup, tmp_path)
    s = spec(tmp_path, "")
    s = ContainerSpec(s.ref, ["/no/such/binary"], dict(ENV), s.log_path)
    result = run(rt, s)
    assert (result.exit_code, result.reason) == (128, "StartError")
    assert "/no/such/binary" in result.message


def test_output_is_cri_timestamped_with_streams(ray_setup: RaySetup, tmp_path: Path) -> None:
    s = spec(tmp_path, "echo out; echo err >&2; printf tail")
    assert run(runtime(ray_setup, tmp_path), s).exit_code == 0
    lines = [parse_cri_line(line) for line in s.log_path.read_bytes().splitlines()]
    assert sorted((p[1], p[2], p[3]) for p in lines if p) == [
        (b"stderr", True, b"err"), (b"stdout", False, b"tail"), (b"stdout", True, b"out")]
    assert s.log_path.with_suffix(".done").exists()


def test_env_and_working_dir(ray_setup: RaySetup, tmp_path: Path) -> None:
    s = spec(tmp_path, 'echo "$GREETING $(pwd)"', working_dir="/tmp")
    s.env["GREETING"] = "hello"
    assert run(runtime(ray_setup, tmp_path), s).exit_code == 0
    assert s.log_path.read_bytes().split(b" ", 3)[3] == b"hello /tmp\n"


def test_kill_sends_term_then_kill_after_grace(ray_setup: RaySetup, tmp_path: Path) -> None:
    rt = runtime(ray_setup, tmp_path)
    polite = spec(tmp_path, "trap 'exit 7' TERM; echo up; while true; do sleep 0.1; done")
    stubborn = spec(tmp_path, "trap '' TERM; echo up; while true; do sleep 0.1; done")

    async def main() -> tuple[ContainerExit, ContainerExit, float]:
        for s in (polite, stubborn):
            await rt.start(s)
        while not all(s.log_path.read_bytes() for s in (polite, stubborn)):
            await asyncio.sleep(0.05)
        await rt.kill(polite.ref, 30)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await rt.kill(stubborn.ref, 2)
        return await rt.wait(polite.ref), await rt.wait(stubborn.ref), loop.time() - started

    first, second, took = asyncio.run(main())
    assert first.exit_code == 7  # its TERM trap ran
    assert (second.exit_code, second.signal) == (137, 9)
    assert took >= 2


def test_a_restarted_agent_reports_a_running_attempt_lost_once(ray_setup: RaySetup, tmp_path: Path) -> None:
    rt = runtime(ray_setup, tmp_path)
    s = spec(tmp_path, "sleep 20")

    async def start() -> None:
        await rt.start(s)
        await rt.close()  # the driver goes away; nothing recorded an exit

    asyncio.run(start())
    again = runtime(ray_setup, tmp_path)
    (rec,) = again.recover(s.ref.pod_uid)
    assert rec.state == "exited" and rec.exit is not None
    assert (rec.exit.exit_code, rec.exit.reason) == (137, "ContainerStatusUnknown")
    assert "previous run" in rec.exit.message
    (rec2,) = runtime(ray_setup, tmp_path).recover(s.ref.pod_uid)
    assert rec2.exit == rec.exit  # decided once, the same answer every time
    asyncio.run(again.remove_pod(s.ref.pod_uid))
