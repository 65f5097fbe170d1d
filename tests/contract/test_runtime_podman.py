"""What only the podman runtime does, with real OCI containers: CRI partial lines, OOM,
kill with grace, recovery of an attempt that ends by itself, image start failures. The contract
every runtime keeps is tests/contract/test_runtime_contract.py.

The pure helpers are table-tested always; the contract tests need podman + runc and a working
``podman run`` here, and are skipped with the reason otherwise. One data dir (and one imported
``localhost/busybox`` image) serves the whole module to keep it fast.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import uuid
from collections.abc import Coroutine, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest

from joblet.clock import RealClock
from joblet.logformat import parse_cri_line
from joblet.node.cgroups import Limits
from joblet.node.runtimes.base import ContainerExit, ContainerRef, ContainerSpec
from joblet.node.runtimes.podman import (
    PodmanPaths,
    PodmanRuntime,
    container_name,
    containers_conf,
    exit_from_state,
    kmsg_mentions_oom,
    podman_usable,
    run_argv,
    start_failure,
    ulimits_for_host,
)
from joblet.node.volumes import Mount

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[2]
ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME": "pod-a"}
NOW = datetime(2025, 1, 1, tzinfo=UTC)


# -- pure helpers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stderr", "message"),
    [
        ("Error: nosuch: image not known\n", 'Container image "img" is not present with pull policy of Never'),
        ('Error: runc: runc create failed: unable to start container process: exec: "nosuch": executable file '
         "not found in $PATH: OCI runtime attempted to invoke a command that was not found\n",
         'exec: "nosuch": executable file not found in $PATH'),
        ("Error: something else broke\n", "something else broke"),
        ("", "podman run failed"),
    ],
    ids=["image-missing", "exec-not-found", "other", "empty"],
)
def test_start_failure_is_a_start_error_with_the_kubelet_message(stderr: str, message: str) -> None:
    assert start_failure(stderr, "img", NOW) == ContainerExit(128, "StartError", NOW, message=message)


@pytest.mark.parametrize(
    ("state", "limited", "confirmed", "killed", "want"),
    [
        ({"ExitCode": 0}, False, None, False, (0, "Completed", None)),
        ({"ExitCode": 3}, False, None, False, (3, "Error", None)),
        ({"ExitCode": 137}, False, None, False, (137, "Error", 9)),
        ({"ExitCode": 137}, True, None, False, (137, "OOMKilled", 9)),
        ({"ExitCode": 137}, True, True, False, (137, "OOMKilled", 9)),
        ({"ExitCode": 137}, True, False, False, (137, "Error", 9)),
        ({"ExitCode": 137}, True, None, True, (137, "Error", 9)),
        ({"ExitCode": 137, "OOMKilled": True}, False, None, False, (137, "OOMKilled", 9)),
        ({"ExitCode": 143}, True, None, True, (143, "Error", 15)),
    ],
    ids=["completed", "error", "sigkill-no-limit", "137-limit-kmsg-unreadable", "137-limit-kmsg-confirms",
         "137-limit-kmsg-denies", "137-we-killed", "podman-says-oom", "sigterm"],
)
def test_exit_from_state(state: dict[str, Any], limited: bool, confirmed: bool | None, killed: bool,
                         want: tuple[int, str, int | None]) -> None:
    state = {**state, "FinishedAt": "2025-01-01T00:00:01.5Z"}
    got = exit_from_state(state, limited, confirmed, killed, NOW)
    assert (got.exit_code, got.reason, got.signal) == want
    assert got.finished_at == datetime(2025, 1, 1, 0, 0, 1, 500000, tzinfo=UTC)


def test_kmsg_oom_record_is_matched_by_container_id() -> None:
    rec = b"6,1,2,-;oom-kill:constraint=CONSTRAINT_MEMCG,oom_memcg=/libpod_parent/libpod-abc,task=tail"
    assert kmsg_mentions_oom([b"noise", rec], "abc")
    assert not kmsg_mentions_oom([rec], "def")


@pytest.mark.parametrize(
    ("hard", "want"),
    [((20000, 96365), (20000, 32768)), ((-1, -1), (1 << 20, 32768)), ((1024, 100), (1024, 100))],
    ids=["this-host", "unlimited", "low"],
)
def test_ulimits_never_exceed_the_host_hard_limits(hard: tuple[int, int], want: tuple[int, int]) -> None:
    assert ulimits_for_host(*hard) == want


def test_containers_conf_has_this_hosts_fixes() -> None:
    text = containers_conf(PodmanPaths(Path("/d/podman"), Path("/run/x")), 20000, 32768)
    for line in ('runtime = "runc"', 'cgroup_manager = "cgroupfs"', 'events_logger = "file"',
                 'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]'):
        assert line in text


def test_run_argv_keeps_env_values_out_of_argv_and_overrides_the_entrypoint(tmp_path: Path) -> None:
    ref = ContainerRef("u1", "main", 2)
    spec = ContainerSpec(ref, ["python3", "-c", "pass"], {"PATH": "/bin", "SECRET": "hunter2"},
                         tmp_path / "2.log", working_dir="/w", limits=Limits(memory_bytes=1 << 20, cpu_millis=500),
                         mounts=[Mount(Path("/src"), "/dst", read_only=True)], run_as_user=1000)
    args = run_argv(spec, image="img", network="host", conmon_pidfile=tmp_path / "pid", termlog=None,
                    termination_path="/dev/termination-log")
    assert "hunter2" not in " ".join(args)
    assert args[args.index("PATH=/bin") - 1] == "--env"  # podman needs its own PATH: passed by value
    assert args[args.index("SECRET") - 1] == "--env"  # the rest is inherited from podman's environment
    assert args[args.index("--entrypoint") + 1:] == ['["python3"]', "img", "-c", "pass"]
    assert ["--name", container_name(ref)] == args[args.index("--name"):args.index("--name") + 2]
    assert "--memory-swap" in args and f"{1 << 20}b" in args
    assert "--cpus" in args and args[args.index("--cpus") + 1] == "0.5"
    assert "type=bind,source=/src,target=/dst,ro=true" in args
    assert args[args.index("--user") + 1] == "1000"
    assert args[args.index("--workdir") + 1] == "/w"


# -- contract: real podman --------------------------------------------------------------------------


def go(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    why = podman_usable()
    if why:
        pytest.skip(why)
    data = tmp_path_factory.mktemp("podman") / "data"
    made = subprocess.run([str(REPO / "scripts" / "make-busybox-image.sh"), "--data-dir", str(data)],
                          capture_output=True, text=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"cannot build localhost/busybox here: {made.stderr.strip()[-300:]}")
    rt = PodmanRuntime(data, RealClock())
    smoke = rt.cli.run_sync(["run", "--rm", "--pull", "never", "--network", "host", "localhost/busybox", "true"])
    if smoke.returncode != 0:
        pytest.skip(f"podman cannot run a container here: {smoke.stderr.strip()[-300:]}")
    yield data
    rt.cli.run_sync(["rm", "--force", "--all"])
    rt.cli.run_sync(["rmi", "--all", "--force"])
    shutil.rmtree(rt.paths.run_root, ignore_errors=True)
    shutil.rmtree(data, ignore_errors=True)


def make_spec(rt: PodmanRuntime, script: str, *, uid: str | None = None, name: str = "main", attempt: int = 0,
              **kw: Any) -> ContainerSpec:
    uid = uid or uuid.uuid4().hex[:12]
    ref = ContainerRef(uid, name, attempt)
    log_path = rt.pods_dir.parent / "logs" / uid / name / f"{attempt}.log"
    return ContainerSpec(ref, ["sh", "-c", script], dict(ENV), log_path, **kw)


async def run_one(rt: PodmanRuntime, spec: ContainerSpec) -> ContainerExit:
    await rt.start(spec)
    result = await asyncio.wait_for(rt.wait(spec.ref), 30)
    await rt.drain()
    return result


def test_output_lands_in_the_cri_log_and_env_is_passed(data_dir: Path) -> None:
    rt = PodmanRuntime(data_dir, RealClock())
    spec = make_spec(rt, 'echo "out $GREETING"; echo err >&2; hostname; printf partial')
    spec = ContainerSpec(spec.ref, spec.argv, {**spec.env, "GREETING": "hello world"}, spec.log_path,
                         image="busybox")
    assert go(run_one(rt, spec)).exit_code == 0
    lines = [parse_cri_line(x) for x in spec.log_path.read_bytes().splitlines()]
    got = {(p[1], p[2], p[3]) for p in lines if p}
    assert {(b"stdout", True, b"out hello world"), (b"stderr", True, b"err"), (b"stdout", True, b"pod-a")} <= got
    assert (b"stdout", False, b"partial") in got  # no newline at the end: a partial (P) line
    assert spec.log_path.with_suffix(".done").exists()


def test_memory_limit_is_oomkilled(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """And nothing lands in the user's directory: conmon leaves an ``oom`` file in its working
    directory, which was wherever joblet was started (one was committed to this repository)."""
    users_dir = tmp_path / "users-dir"
    users_dir.mkdir()
    monkeypatch.chdir(users_dir)
    rt = PodmanRuntime(data_dir, RealClock())
    result = go(run_one(rt, make_spec(rt, "tail /dev/zero", limits=Limits(memory_bytes=20 << 20))))
    assert (result.exit_code, result.reason, result.signal) == (137, "OOMKilled", 9)
    assert list(users_dir.iterdir()) == []


def test_kill_sends_term_then_kill_after_the_grace(data_dir: Path) -> None:
    rt = PodmanRuntime(data_dir, RealClock())
    trapping = make_spec(rt, "trap 'echo bye; exit 7' TERM; echo ready; while :; do sleep 0.1; done")
    stubborn = make_spec(rt, "trap '' TERM; echo ready; while :; do sleep 0.1; done")

    async def body() -> tuple[ContainerExit, ContainerExit]:
        for s in (trapping, stubborn):
            await rt.start(s)
        for s in (trapping, stubborn):
            await wait_for_log(s.log_path, b"ready")
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await asyncio.gather(rt.kill(trapping.ref, 30), rt.kill(stubborn.ref, 0.5))
        assert loop.time() - t0 < 15
        results = (await rt.wait(trapping.ref), await rt.wait(stubborn.ref))
        await rt.drain()
        return results

    graceful, forced = go(body())
    assert (graceful.exit_code, graceful.reason) == (7, "Error")
    assert b"bye" in trapping.log_path.read_bytes()
    assert (forced.exit_code, forced.reason, forced.signal) == (137, "Error", 9)


def test_a_new_runtime_object_recovers_running_and_finished_attempts(data_dir: Path) -> None:
    first = PodmanRuntime(data_dir, RealClock())
    uid = uuid.uuid4().hex[:12]
    done = make_spec(first, "echo one; exit 4", uid=uid, name="a")
    running = make_spec(first, "echo ready; while [ ! -e /tmp/go ]; do sleep 0.05; done; exit 5", uid=uid, name="b")

    async def start_both() -> None:
        await first.start(done)
        await first.start(running)
        await wait_for_log(running.log_path, b"ready")

    go(start_both())
    second = PodmanRuntime(data_dir, RealClock())  # the agent restarted: nothing in memory
    assert uid in second.pods()

    def finished() -> bool:
        recs = second.recover(uid)
        return recs[0].state == "exited"

    deadline = asyncio.run(_poll(finished))
    assert deadline
    recs = second.recover(uid)
    assert [(r.ref.name, r.state) for r in recs] == [("a", "exited"), ("b", "running")]
    assert recs[0].exit is not None and recs[0].exit.exit_code == 4

    async def release_and_wait() -> ContainerExit:
        rc = await second.cli.run(["exec", container_name(running.ref), "touch", "/tmp/go"])
        assert rc.returncode == 0, rc.stderr
        result = await asyncio.wait_for(second.wait(running.ref), 30)
        await second.drain()
        return result

    assert go(release_and_wait()).exit_code == 5
    third = PodmanRuntime(data_dir, RealClock())
    assert [(r.ref.name, r.exit.exit_code if r.exit else None) for r in third.recover(uid)] == [("a", 4), ("b", 5)]
    go(third.remove_pod(uid))
    assert uid not in third.pods()
    listed = third.cli.run_sync(["ps", "-a", "--filter", f"name={uid}", "--format", "{{.Names}}"])
    assert listed.stdout.strip() == ""


@pytest.mark.parametrize(
    ("argv", "image", "message"),
    [
        (["true"], "localhost/nosuch-image", 'Container image "localhost/nosuch-image" is not present with pull '
                                             "policy of Never"),
    ],
    ids=["image-missing"],
)
def test_start_failures_are_start_errors(data_dir: Path, argv: list[str], image: str, message: str) -> None:
    rt = PodmanRuntime(data_dir, RealClock())
    base = make_spec(rt, "")
    spec = ContainerSpec(base.ref, argv, base.env, base.log_path, image=image)
    result = go(run_one(rt, spec))
    assert (result.exit_code, result.reason, result.message) == (128, "StartError", message)
    assert PodmanRuntime(data_dir, RealClock()).recover(spec.ref.pod_uid)[0].exit == result


def test_termination_message_file_is_reported(data_dir: Path) -> None:
    rt = PodmanRuntime(data_dir, RealClock())
    result = go(run_one(rt, make_spec(rt, "echo -n 'it broke' > /dev/termination-log; exit 2",
                                      run_as_user=1000, run_as_group=1000)))
    assert (result.exit_code, result.message) == (2, "it broke")


# -- helpers ----------------------------------------------------------------------------------------


async def wait_for_log(path: Path, needle: bytes, timeout: float = 20.0) -> None:
    async def check() -> bool:
        return path.exists() and needle in path.read_bytes()

    end = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > end:
            raise AssertionError(f"{needle!r} not in {path} before the deadline")
        await asyncio.sleep(0.02)


async def _poll(check: Any, timeout: float = 20.0) -> bool:
    end = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > end:
            return False
        await asyncio.sleep(0.05)
    return True

