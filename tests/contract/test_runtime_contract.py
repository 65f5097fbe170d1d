"""The runtime contract (joblet.node.runtimes.base), once, for every row of the runtime table.

Each test runs against every runtime in ``RUNTIMES`` that is usable here (fake, process,
podman, ray); one that is not usable is skipped with its ``usable()`` reason. Ray's cases run
against a real local Ray cluster (one head, started once for this module, marker ``ray``).
What only one runtime does (signals, cgroups, sandbox, image pulls, OOM on Ray) stays in that
runtime's own test file.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from joblet.clock import RealClock
from joblet.logformat import line_time, parse_cri_line
from joblet.node.runtimes.base import ContainerExit, ContainerRef, ContainerSpec, Runtime
from joblet.node.runtimes.fake import FakeHost, FakeRuntime
from joblet.node.runtimes.registry import RUNTIMES, RuntimeOptions

REPO = Path(__file__).resolve().parents[2]
ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
TIMEOUT = 30.0


@dataclass
class Harness:
    """One runtime under test: ``reopen()`` is a fresh runtime object on the same state (an
    agent restart); ``logs`` is where attempts write their logs."""

    reopen: Callable[[], Runtime]
    logs: Path


def _podman_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from joblet.node.runtimes.podman import PodmanRuntime

    data = tmp_path_factory.mktemp("podman") / "data"
    made = subprocess.run([str(REPO / "scripts" / "make-busybox-image.sh"), "--data-dir", str(data)],
                          capture_output=True, text=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"cannot build localhost/busybox here: {made.stderr.strip()[-300:]}")
    smoke = PodmanRuntime(data, RealClock()).cli.run_sync(
        ["run", "--rm", "--pull", "never", "--network", "host", "localhost/busybox", "true"])
    if smoke.returncode != 0:
        pytest.skip(f"podman cannot run a container here: {smoke.stderr.strip()[-300:]}")
    return data


@pytest.fixture(scope="module")
def podman_data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One data dir with one imported image for every podman case (an import takes seconds)."""
    ok, why = RUNTIMES["podman"].usable()
    if not ok:
        pytest.skip(why)
    data = _podman_data_dir(tmp_path_factory)
    yield data
    from joblet.node.runtimes.podman import PodmanRuntime

    rt = PodmanRuntime(data, RealClock())
    rt.cli.run_sync(["rm", "--force", "--all"])
    rt.cli.run_sync(["rmi", "--all", "--force"])
    shutil.rmtree(rt.paths.run_root, ignore_errors=True)
    shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    """A real Ray cluster (one head) for the ray cases; this process's Ray driver is shut down
    after them, so later modules can connect to clusters of their own."""
    from support.raycluster import RAY, RayCluster

    if RAY is None:
        pytest.skip("ray is not installed (pip install 'joblet[ray]')")
    import ray

    ray.shutdown()  # a driver of another test's cluster: this module's runtimes connect to this one
    cluster = RayCluster(Path(tempfile.mkdtemp(prefix="jrc", dir="/tmp")))  # short: Ray's socket paths
    try:
        cluster.start_head()
        yield cluster.address
    finally:
        ray.shutdown()
        leaked = cluster.stop_all()
        shutil.rmtree(cluster.temp_dir, ignore_errors=True)
    assert not leaked, f"processes outlived the Ray cluster: {leaked}"


def _runtime_params() -> list[object]:
    return [pytest.param(name, marks=pytest.mark.ray) if name == "ray" else name for name in sorted(RUNTIMES)]


@pytest.fixture(params=_runtime_params())
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    name: str = request.param
    ok, why = RUNTIMES[name].usable()
    if not ok:
        pytest.skip(f"runtime {name} is not usable here: {why}")
    opened: list[Runtime] = []
    if name == "fake":  # its state lives in memory: a restart shares the host
        host = FakeHost()

        def reopen() -> Runtime:
            return FakeRuntime(RealClock(), host)

        logs = tmp_path / "logs"
    else:
        data = request.getfixturevalue("podman_data") if name == "podman" else tmp_path / "data"
        address = request.getfixturevalue("ray_address") if name == "ray" else None
        options = RuntimeOptions(data, RealClock(), ray_address=address)

        def reopen() -> Runtime:
            return RUNTIMES[name].factory(options)

        logs = data / "logs"
    first = reopen()

    def tracked() -> Runtime:
        rt = first if not opened else reopen()
        opened.append(rt)
        return rt

    yield Harness(tracked, logs)
    last = reopen()
    for uid in last.pods():
        asyncio.run(last.remove_pod(uid))
    for rt in (*opened, last):
        rt.close()


def spec(h: Harness, script: str, *, uid: str | None = None, name: str = "main",
         env: dict[str, str] | None = None) -> ContainerSpec:
    uid = uid or uuid.uuid4().hex[:12]
    return ContainerSpec(ContainerRef(uid, name, 0), ["sh", "-c", script], {**ENV, **(env or {})},
                         h.logs / uid / name / "0.log", image="localhost/busybox")


async def run(rt: Runtime, s: ContainerSpec) -> ContainerExit:
    await rt.start(s)
    return await asyncio.wait_for(rt.wait(s.ref), TIMEOUT)


async def until(check: Callable[[], bool]) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + TIMEOUT
    while not check():
        if loop.time() > end:
            raise AssertionError("condition not met before the deadline")
        await asyncio.sleep(0.02)


def logged(s: ContainerSpec) -> list[tuple[bytes, bytes]]:
    """(stream, text) of each CRI line, every line carrying a parseable timestamp."""
    lines = s.log_path.read_bytes().splitlines() if s.log_path.exists() else []
    assert all(line_time(line) is not None for line in lines), lines
    return [(p[1], p[3]) for p in map(parse_cri_line, lines) if p]


@pytest.mark.parametrize(("script", "code", "reason"),
                         [("exit 0", 0, "Completed"), ("exit 3", 3, "Error"), ("false", 1, "Error")],
                         ids=["exit-0", "exit-3", "false"])
def test_exit_code_and_reason(harness: Harness, script: str, code: int, reason: str) -> None:
    rt = harness.reopen()
    s = spec(harness, script)
    result = asyncio.run(run(rt, s))
    assert (result.exit_code, result.reason, result.signal) == (code, reason, None)
    assert asyncio.run(rt.wait(s.ref)) == result  # waiting again gives the same outcome


def test_missing_command_is_a_start_error(harness: Harness) -> None:
    rt = harness.reopen()
    base = spec(harness, "")
    s = ContainerSpec(base.ref, ["no-such-cmd-xyz"], base.env, base.log_path, image=base.image)
    result = asyncio.run(run(rt, s))
    assert (result.exit_code, result.reason) == (128, "StartError")
    assert result.message == 'exec: "no-such-cmd-xyz": executable file not found in $PATH'


def test_output_and_env_reach_the_cri_log(harness: Harness) -> None:
    rt = harness.reopen()
    s = spec(harness, 'echo "out $GREETING"; echo err >&2; printf tail', env={"GREETING": "hello world"})
    assert asyncio.run(run(rt, s)).exit_code == 0
    got = logged(s)
    assert sorted(got) == sorted([(b"stdout", b"out hello world"), (b"stderr", b"err"), (b"stdout", b"tail")])
    assert [t for stream, t in got if stream == b"stdout"] == [b"out hello world", b"tail"]  # in order
    assert s.log_path.with_suffix(".done").exists()  # the end of `logs -f`


def test_kill_ends_a_running_attempt(harness: Harness) -> None:
    rt = harness.reopen()
    s = spec(harness, "echo ready; sleep 30")

    async def go() -> ContainerExit:
        await rt.start(s)
        await until(lambda: (b"stdout", b"ready") in logged(s))
        await rt.kill(s.ref, 0.5)
        return await asyncio.wait_for(rt.wait(s.ref), TIMEOUT)

    result = asyncio.run(go())
    assert result.reason == "Error"
    assert (result.exit_code, result.signal) in ((143, 15), (137, 9))


def test_a_restarted_agent_recovers_every_attempt_and_removes_the_pod(harness: Harness) -> None:
    first = harness.reopen()
    uid = uuid.uuid4().hex[:12]
    done = spec(harness, "echo one; exit 4", uid=uid, name="a")
    running = spec(harness, "echo ready; sleep 30", uid=uid, name="b")

    async def start_both() -> None:
        await first.start(done)
        await first.start(running)
        await until(lambda: (b"stdout", b"ready") in logged(running))
        await asyncio.wait_for(first.wait(done.ref), TIMEOUT)

    asyncio.run(start_both())
    second = harness.reopen()  # nothing in memory but what the runtime keeps for a restart
    assert uid in second.pods()
    recs = second.recover(uid)
    assert [(r.ref.name, r.state) for r in recs] == [("a", "exited"), ("b", "running")]
    assert recs[0].exit is not None and (recs[0].exit.exit_code, recs[0].exit.reason) == (4, "Error")

    async def kill_running() -> ContainerExit:
        await second.kill(running.ref, 0.5)
        return await asyncio.wait_for(second.wait(running.ref), TIMEOUT)

    assert asyncio.run(kill_running()).exit_code in (137, 143)
    asyncio.run(second.remove_pod(uid))
    assert uid not in second.pods()
    assert second.recover(uid) == []
