"""What only the Ray runtime does, against the real Ray cluster of conftest (the contract every
runtime keeps is tests/contract/test_runtime_contract.py, which runs over Ray too): env and
workingDir on the Ray node, kill with grace (SIGTERM, then SIGKILL for a process that ignores
it), a memory limit ending in OOMKilled, and re-adoption by a restarted agent (the log
continues where the file ended; a removed pod's container is killed)."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest

from joblet.clock import RealClock
from joblet.logformat import parse_cri_line
from joblet.node.cgroups import Limits
from joblet.node.raynodes.nodes import connect
from joblet.node.raynodes.runtime import RayRuntime
from joblet.node.runtimes.base import ContainerExit, ContainerRef, ContainerSpec
from support.raycluster import RaySetup, leftovers

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


def test_a_memory_limit_ends_in_oomkilled(ray_setup: RaySetup, tmp_path: Path) -> None:
    hog = "import time; b = b'x' * (300 << 20); print('allocated', flush=True); time.sleep(30)"
    s = ContainerSpec(ContainerRef(uuid.uuid4().hex, "main", 0), ["python3", "-c", hog], dict(ENV),
                      tmp_path / "logs" / "hog.log", limits=Limits(memory_bytes=64 << 20))
    result = run(runtime(ray_setup, tmp_path), s)
    assert (result.exit_code, result.signal, result.reason) == (137, 9, "OOMKilled")


def test_a_restarted_agent_re_adopts_a_running_attempt_with_a_continuous_log(ray_setup: RaySetup,
                                                                              tmp_path: Path) -> None:
    rt = runtime(ray_setup, tmp_path)
    s = spec(tmp_path, "for i in $(seq 1 12); do echo line $i; sleep 0.25; done; exit 5")

    async def start() -> None:
        await rt.start(s)
        while b"line 2" not in s.log_path.read_bytes():
            await asyncio.sleep(0.05)

    asyncio.run(start())
    rt.close()  # the agent goes away mid-run; the container keeps running under the supervisor
    again = runtime(ray_setup, tmp_path)
    (rec,) = again.recover(s.ref.pod_uid)
    assert (rec.state, rec.exit) == ("running", None)
    result = asyncio.run(again.wait(s.ref))
    assert (result.exit_code, result.reason) == (5, "Error")
    lines = [p[3] for p in map(parse_cri_line, s.log_path.read_bytes().splitlines()) if p]
    assert lines == [f"line {i}".encode() for i in range(1, 13)]  # each line once, none lost
    (rec2,) = runtime(ray_setup, tmp_path).recover(s.ref.pod_uid)
    assert rec2.state == "exited" and rec2.exit == result  # recorded once
    asyncio.run(again.remove_pod(s.ref.pod_uid))


def test_removing_the_pod_of_an_adopted_attempt_kills_it(ray_setup: RaySetup, tmp_path: Path) -> None:
    """The agent's orphan sweep: a pod deleted while joblet was down is removed by the next
    runtime object, which kills its container on the Ray node."""
    rt = runtime(ray_setup, tmp_path)
    marker = f"sleep {300 + uuid.uuid4().int % 1000}.5"  # its command line, unique enough
    s = spec(tmp_path, f"echo up; exec {marker}")

    async def start() -> None:
        await rt.start(s)
        while not s.log_path.read_bytes():
            await asyncio.sleep(0.05)

    asyncio.run(start())
    rt.close()
    assert leftovers(marker)
    again = runtime(ray_setup, tmp_path)
    assert again.pods() == [s.ref.pod_uid]
    asyncio.run(again.remove_pod(s.ref.pod_uid))
    assert again.pods() == []
    deadline = time.monotonic() + 10
    while leftovers(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not leftovers(marker)


def test_start_returns_once_the_process_exists_not_while_queued_for_resources(ray_setup: RaySetup,
                                                                              tmp_path: Path) -> None:
    """A held attempt's start completes when its process exists on the Ray node: while the node's
    only CPU is taken, the second attempt waits in Ray (its pod stays ContainerCreating) and its
    start does not return; it returns once the first is killed and the second really runs."""
    rt = runtime(ray_setup, tmp_path)
    first = spec(tmp_path, "echo up; exec sleep 60", requests={"cpu": "1"})
    second = spec(tmp_path, "echo second; exec sleep 60", requests={"cpu": "1"})

    async def main() -> tuple[bool, bool, ContainerExit]:
        supervisor = await rt._ready_supervisor()
        await rt.start(first)
        assert await supervisor.pid.remote(first.ref.container_id) is not None  # it runs
        queued = asyncio.ensure_future(rt.start(second))
        done, _ = await asyncio.wait({queued}, timeout=3)
        assert await supervisor.known.remote([second.ref.container_id]) == []  # really still queued
        await rt.kill(first.ref, 0)
        await queued
        running = await supervisor.pid.remote(second.ref.container_id) is not None
        await rt.kill(second.ref, 0)
        result = await rt.wait(second.ref)
        for s in (first, second):
            await rt.remove_pod(s.ref.pod_uid)
        return bool(done), running, result

    returned_while_queued, running_when_returned, second_exit = asyncio.run(main())
    assert not returned_while_queued
    assert running_when_returned
    assert second_exit.signal is not None  # killed, as it ran
