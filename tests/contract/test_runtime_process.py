"""What only the process runtime does, with real processes: signals, the shim, cgroups, sandbox, adoption.

The contract every runtime keeps is tests/contract/test_runtime_contract.py."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from joblet.clock import RealClock
from joblet.logformat import log_files
from joblet.node.cgroups import Cgroups, Limits, detect
from joblet.node.runtimes.base import ContainerExit, ContainerRef, ContainerSpec
from joblet.node.runtimes.process import SH_SHIM, ProcessRuntime
from joblet.node.volumes import Mount

CGROUPS = detect()
needs_cgroups = pytest.mark.skipif(not CGROUPS.available, reason="cgroup v1 hierarchies not writable here")
ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin"}


def poll_until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not check():
        if time.monotonic() > end:
            raise AssertionError("condition not met before the deadline")
        time.sleep(0.01)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie counts as dead
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture(autouse=True)
def _remove_pods(tmp_path: Path) -> Iterator[None]:
    yield
    data = tmp_path / "data"
    if data.exists():
        rt = ProcessRuntime(data, RealClock(), cgroups=CGROUPS, cache_dir=tmp_path.parent / "shim-cache")
        for uid in rt.pods():
            asyncio.run(rt.remove_pod(uid))


def make_runtime(tmp_path: Path, cgroups: Cgroups | None = None, shim: list[str] | None = None) -> ProcessRuntime:
    return ProcessRuntime(tmp_path / "data", RealClock(), cgroups=cgroups, shim=shim,
                          cache_dir=tmp_path.parent / "shim-cache")


def spec(rt: ProcessRuntime, uid: str, name: str, script: str, attempt: int = 0, **kw: object) -> ContainerSpec:
    ref = ContainerRef(uid, name, attempt)
    log_path = rt.pods_dir.parent / "logs" / uid / name / f"{attempt}.log"
    return ContainerSpec(ref, ["sh", "-c", script], dict(ENV), log_path, **kw)  # type: ignore[arg-type]


async def run(rt: ProcessRuntime, s: ContainerSpec) -> ContainerExit:
    await rt.start(s)
    return await asyncio.wait_for(rt.wait(s.ref), 20)


@pytest.mark.parametrize(
    ("script", "code", "reason", "sig"),
    [
        ("kill -9 $$", 137, "Error", 9),
        ("kill -TERM $$", 143, "Error", 15),
    ],
    ids=["sigkill", "sigterm"],
)
def test_death_by_signal_is_128_plus_the_signal(tmp_path: Path, script: str, code: int, reason: str, sig: int | None) -> None:
    rt = make_runtime(tmp_path)
    result = asyncio.run(run(rt, spec(rt, "u1", "main", script)))
    assert (result.exit_code, result.reason, result.signal) == (code, reason, sig)


def test_shim_timestamps_are_rfc3339_nano_and_a_last_partial_line_is_full(tmp_path: Path) -> None:
    """The shim's own format (the contract suite checks only that timestamps parse)."""
    rt = make_runtime(tmp_path)
    s = spec(rt, "u1", "main", "printf tail")
    asyncio.run(run(rt, s))
    [line] = s.log_path.read_text().splitlines()
    assert line.split(" ", 3)[1:] == ["stdout", "F", "tail"]
    assert len(line.split(" ")[0]) == 30 and line[29] == "Z" and line[4] == "-" and line[10] == "T"


def test_log_is_capped_and_rotated_as_the_shim_writes(tmp_path: Path) -> None:
    """1.2 MB of output under a 64 KiB x 3 cap: three files, each within the cap, the newest kept."""
    rt = ProcessRuntime(tmp_path / "data", RealClock(), cache_dir=tmp_path.parent / "shim-cache",
                        log_max_bytes=64 * 1024, log_max_files=3)
    if rt.sh_shim:
        pytest.skip("the sh fallback shim does not rotate")
    s = spec(rt, "u1", "main", 'i=0; while [ $i -lt 20000 ]; do echo "line $i"; i=$((i+1)); done')
    assert asyncio.run(run(rt, s)).exit_code == 0
    files = log_files(s.log_path)
    assert [p.name for p in files[:-1]] == sorted((p.name for p in files[:-1]), key=lambda n: int(n.rsplit(".", 1)[1]))
    assert len(files) == 3 and all(p.stat().st_size <= 64 * 1024 for p in files)
    text = b"".join(p.read_bytes() for p in files).decode()
    numbers = [int(line.rsplit(" ", 1)[1]) for line in text.splitlines()]
    assert numbers[-1] == 19999 and numbers == list(range(numbers[0], 20000))  # contiguous, newest kept


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
@pytest.mark.parametrize(("script", "synced"), [("true", []), ("echo hi", ["log"])], ids=["silent", "output"])
def test_the_log_is_fsynced_before_the_status_only_when_something_was_written(
        tmp_path: Path, script: str, synced: list[str]) -> None:
    """Output is on disk before the status says the container ended; a container that wrote
    nothing costs no log fsync (a journal commit on a short container's way to Succeeded)."""
    rt = make_runtime(tmp_path)
    if rt.sh_shim:
        pytest.skip("the sh fallback shim does not fsync")
    log, status, trace = tmp_path / "c.log", tmp_path / "c.status", tmp_path / "strace"
    subprocess.run(["strace", "-qq", "-e", "trace=fsync", "-y", "-o", str(trace), *rt.shim, str(status), str(log),
                    "--", "sh", "-c", script], check=True, env=ENV)
    assert status.read_text().startswith("exit 0\n")
    fsynced = ["log" if "c.log>" in line else "status" for line in trace.read_text().splitlines() if "fsync(" in line]
    assert fsynced == [*synced, "status"]


def test_env_and_working_dir(tmp_path: Path) -> None:
    rt = make_runtime(tmp_path)
    env = {**ENV, "GREETING": "hello world"}
    s = ContainerSpec(ContainerRef("u1", "c", 0), ["sh", "-c", 'echo "$GREETING $(pwd)"'], env,
                      tmp_path / "c.log", working_dir=str(tmp_path))
    asyncio.run(run(rt, s))
    assert s.log_path.read_text().split(" ", 3)[3] == f"hello world {tmp_path}\n"


def test_sh_fallback_shim(tmp_path: Path) -> None:
    rt = make_runtime(tmp_path, shim=["sh", "-c", SH_SHIM, "joblet-shim"])
    s = spec(rt, "u1", "main", "echo hi; exit 4")
    result = asyncio.run(run(rt, s))
    assert (result.exit_code, result.reason) == (4, "Error")
    assert s.log_path.read_text().endswith(" stdout F hi\n")


TREE = """
trap '' TERM
sh -c 'trap "" TERM; sleep 300' &
setsid sh -c 'trap "" TERM; sleep 300' &
echo started
wait
"""


def _kill_tree(tmp_path: Path, cgroups: Cgroups) -> tuple[ContainerExit, list[int]]:
    rt = make_runtime(tmp_path, cgroups=cgroups)
    uid = f"t-{os.getpid()}-{time.monotonic_ns()}"
    s = spec(rt, uid, "main", TREE)

    async def go() -> tuple[ContainerExit, list[int]]:
        await rt.start(s)
        poll_until(lambda: s.log_path.exists() and "started" in s.log_path.read_text())
        pids = sorted(cgroups.pids(uid)) if cgroups.available else []
        poll_until(lambda: not cgroups.available or len(cgroups.pids(uid)) >= 5)
        pids = sorted(cgroups.pids(uid)) if cgroups.available else []
        t0 = time.monotonic()
        await rt.kill(s.ref, 0.3)
        assert time.monotonic() - t0 < 5
        result = await rt.wait(s.ref)
        await rt.remove_pod(uid)
        return result, pids

    return asyncio.run(go())


@needs_cgroups
def test_kill_tree_ignoring_term_with_setsid_escapee(tmp_path: Path) -> None:
    result, pids = _kill_tree(tmp_path, CGROUPS)
    assert result.exit_code == 137 and result.signal == 9
    assert len(pids) >= 5
    poll_until(lambda: not any(alive(p) for p in pids))
    assert not any(d.name.startswith("t-none.") for d in CGROUPS.base("pids").iterdir())


def test_kill_without_cgroups_still_kills_the_group(tmp_path: Path) -> None:
    result, _ = _kill_tree(tmp_path, Cgroups(available=False))
    assert result.exit_code == 137


def _start_all(rt: ProcessRuntime, specs: list[ContainerSpec]) -> None:
    async def go() -> None:
        for s in specs:
            await rt.start(s)

    asyncio.run(go())


def test_adoption_after_agent_restart(tmp_path: Path) -> None:
    rt = make_runtime(tmp_path)
    quick = spec(rt, "u9", "quick", "exit 5")
    slow = spec(rt, "u9", "slow", "sleep 0.5; exit 7")
    started = spec(rt, "u9", "started", "sleep 0.2; exit 0")
    _start_all(rt, [quick, slow, started])
    status_file = rt.pod_dir("u9") / "c.quick.0.status"
    poll_until(status_file.exists)
    # the agent "dies": nothing of it survives but the data dir (its children are re-parented
    # only in production; here we just stop using the object, which is what matters)

    rt2 = make_runtime(tmp_path)
    recovered = {r.ref.name: r for r in rt2.recover("u9")}
    assert recovered["quick"].state == "exited"
    assert recovered["quick"].exit is not None and recovered["quick"].exit.exit_code == 5
    assert recovered["slow"].state == "running"

    async def second() -> tuple[int, int]:
        slow_exit = await asyncio.wait_for(rt2.wait(slow.ref), 10)
        other = await asyncio.wait_for(rt2.wait(started.ref), 10)
        return slow_exit.exit_code, other.exit_code

    assert asyncio.run(second()) == (7, 0)


def test_lost_container_is_status_unknown(tmp_path: Path) -> None:
    rt = make_runtime(tmp_path)
    rt.pod_dir("u8").mkdir(parents=True)
    (rt.pod_dir("u8") / "c.main.0.json").write_text('{"startedAt": 1, "pid": 999999999, "starttime": 1}')
    [rec] = rt.recover("u8")
    assert rec.exit is not None
    assert (rec.state, rec.exit.exit_code, rec.exit.reason) == ("exited", 137, "ContainerStatusUnknown")


def test_an_attempt_recorded_but_never_spawned_is_forgotten_and_runs_anew(tmp_path: Path) -> None:
    # the agent died between the intent record and the spawn: nothing ran, so nothing is lost
    rt = make_runtime(tmp_path)
    rt.pod_dir("u7").mkdir(parents=True)
    intent = rt.pod_dir("u7") / "c.main.0.json"
    intent.write_text('{"startedAt": 1}\n')
    assert rt.recover("u7") == []
    assert not intent.exists()
    assert asyncio.run(run(rt, spec(rt, "u7", "main", "exit 3"))).exit_code == 3


def test_a_shim_spawned_before_its_pid_was_recorded_is_adopted(tmp_path: Path) -> None:
    # the agent died between the spawn and the pid record: the shim (found by its status path
    # among its arguments) runs on and is adopted, not reported lost
    rt = make_runtime(tmp_path)
    rt.pod_dir("u6").mkdir(parents=True)
    (rt.pod_dir("u6") / "c.main.0.json").write_text('{"startedAt": 1}\n')
    status = rt.pod_dir("u6") / "c.main.0.status"
    stand_in = subprocess.Popen([sys.executable, "-c", "import sys, time; time.sleep(0.5); open(sys.argv[1], 'w').write('exit 4\\n')",
                                 str(status)])
    try:
        # (Popen may return before the child's exec is visible in /proc; a real shim has long run)
        poll_until(lambda: str(status).encode() in Path(f"/proc/{stand_in.pid}/cmdline").read_bytes())
        [rec] = rt.recover("u6")
        assert rec.state == "running"
        assert rt._live_pid(rec.ref) == stand_in.pid
    finally:
        stand_in.wait(10)
    assert asyncio.run(rt.wait(rec.ref)).exit_code == 4


@needs_cgroups
def test_memory_limit_is_oom_killed(tmp_path: Path) -> None:
    rt = make_runtime(tmp_path, cgroups=CGROUPS)
    uid = f"oom-{os.getpid()}"
    s = spec(rt, uid, "main", "tail /dev/zero", limits=Limits(memory_bytes=32 * 1024 * 1024))
    result = asyncio.run(run(rt, s))
    asyncio.run(rt.remove_pod(uid))
    assert (result.exit_code, result.reason) == (137, "OOMKilled")


@needs_cgroups
def test_cpu_quota_and_pids_limit_are_applied(tmp_path: Path) -> None:
    rt = make_runtime(tmp_path, cgroups=CGROUPS)
    uid = f"lim-{os.getpid()}"
    s = spec(rt, uid, "main", "cat /proc/self/cgroup | grep -c joblet; for i in 1 2 3 4 5 6; do sleep 0.3 & done; wait",
             limits=Limits(cpu_millis=250, pids=4))

    async def go() -> tuple[str, str, ContainerExit]:
        await rt.start(s)
        quota = (CGROUPS.container_dir("cpu", uid, "main.0") / "cpu.cfs_quota_us").read_text().strip()
        slot = CGROUPS.slot_of(uid, "main.0")
        assert slot is not None
        pids_max = (slot / "pids.max").read_text().strip()
        return quota, pids_max, await asyncio.wait_for(rt.wait(s.ref), 20)

    quota, pids_max, _ = asyncio.run(go())
    asyncio.run(rt.remove_pod(uid))
    assert (quota, pids_max) == ("25000", "4")
    assert b"fork" in s.log_path.read_bytes().lower()  # the 5th process could not be forked


def test_run_as_user_and_group(tmp_path: Path) -> None:
    rt = make_runtime(tmp_path)
    s = spec(rt, "u10", "main", "id -u; id -g; id -G", run_as_user=4321, run_as_group=99)
    assert asyncio.run(run(rt, s)).exit_code == 0
    assert [line.split(b" ", 3)[3] for line in s.log_path.read_bytes().splitlines()] == [b"4321", b"99", b"99"]


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap (bwrap) is not installed")
def test_a_mount_below_a_missing_directory_keeps_the_host_entries_around_it_and_creates_nothing_on_the_host(
        tmp_path: Path) -> None:
    """As the token's /run/secrets/...: the existing parent is shadowed, and its host entries are
    still there, read-write, with what is mounted below them."""
    host, vol = tmp_path / "host", tmp_path / "vol"
    (host / "sub" / "mnt").mkdir(parents=True)
    (host / "f").write_text("file\n")
    (host / "link").symlink_to("f")
    (vol / "deeper").mkdir(parents=True)
    (vol / "deeper" / "v").write_text("vol\n")
    rt = make_runtime(tmp_path)
    s = spec(rt, "u1", "main", f"cat {host}/f {host}/link {host}/new/dir/deeper/v {host}/sub/mnt/deeper/v && "
                               f"echo w > {host}/sub/out", sandbox=True,
             mounts=[Mount(vol, f"{host}/new/dir", read_only=True), Mount(vol, f"{host}/sub/mnt")])
    assert asyncio.run(run(rt, s)).exit_code == 0, s.log_path.read_text()
    assert [line.split(" ", 3)[3] for line in s.log_path.read_text().splitlines()] == ["file", "file", "vol", "vol"]
    assert sorted(p.name for p in host.iterdir()) == ["f", "link", "sub"]  # no "new" on the host
    assert sorted(p.name for p in (host / "sub").iterdir()) == ["mnt", "out"]
    assert not list((host / "sub" / "mnt").iterdir())  # the volume was mounted in the sandbox only


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap (bwrap) is not installed")
def test_sandboxed_attempt_is_adopted_with_its_termination_message(tmp_path: Path) -> None:
    vol = tmp_path / "vol"
    vol.mkdir()
    (vol / "in").write_text("data")
    rt = make_runtime(tmp_path, cgroups=CGROUPS)
    s = spec(rt, "u11", "main", "cat /joblet-test-vol/in > /dev/termination-log; sleep 0.4; exit 3", sandbox=True,
             mounts=[Mount(vol, "/joblet-test-vol", read_only=True)], termination_message_path="/dev/termination-log")
    _start_all(rt, [s])
    rt2 = make_runtime(tmp_path, cgroups=CGROUPS)  # the agent restarted while the sandbox runs
    [rec] = rt2.recover("u11")
    assert rec.state == "running"
    result = asyncio.run(asyncio.wait_for(rt2.wait(s.ref), 10))
    assert (result.exit_code, result.reason, result.message) == (3, "Error", "data")
    assert not Path("/joblet-test-vol").exists()


@needs_cgroups
def test_tracking_cgroups_are_reused_and_limits_reset(tmp_path: Path) -> None:
    """Pooled tracking cgroups: an idle slot is reused, with a pids limit set before reset."""
    cgroups = Cgroups()
    try:
        cgroups.create("pool-a", "main.0", Limits(pids=7))
        first = cgroups.slot_of("pool-a", "main.0")
        assert first is not None and (first / "pids.max").read_text().strip() == "7"
        cgroups.remove("pool-a", "main.0")
        cgroups.create("pool-b", "main.0", Limits())
        assert cgroups.slot_of("pool-b", "main.0") == first
        assert (first / "pids.max").read_text().strip() == "max"
        cgroups.remove("pool-b", "main.0")
    finally:
        cgroups.close()
    assert not first.exists()


@needs_cgroups
def test_removing_a_finished_pod_never_touches_a_reused_tracking_cgroup(tmp_path: Path) -> None:
    """A finished attempt's pooled cgroup goes to the next container; forgetting the old pod
    (e.g. its namespace is deleted) must not sweep the new container."""
    rt = make_runtime(tmp_path, cgroups=Cgroups())
    done = spec(rt, "old-pod", "main", "exit 0")
    running = spec(rt, "new-pod", "main", "sleep 30")

    async def go() -> ContainerExit:
        await rt.start(done)
        await rt.wait(done.ref)
        await rt.start(running)  # reuses the slot the first attempt gave back
        await rt.remove_pod("old-pod")
        await asyncio.sleep(0.2)
        assert rt._live_pid(running.ref) is not None, "the other pod's container was killed"
        await rt.kill(running.ref, 0)
        return await rt.wait(running.ref)

    try:
        asyncio.run(go())
    finally:
        asyncio.run(rt.remove_pod("new-pod"))
        rt.close()


def test_fast_containers_leave_no_zombie_shims(tmp_path: Path) -> None:
    """A shim that finished before wait() looked at it must still be reaped."""
    rt = make_runtime(tmp_path)
    specs = [spec(rt, f"z{i}", "main", "true") for i in range(5)]

    async def go() -> list[int]:
        for s in specs:
            await rt.start(s)
        shims = list(rt._children.values())
        await asyncio.sleep(0.3)  # let every shim finish and write its status first
        for s in specs:
            await rt.wait(s.ref)
        return shims

    shims = asyncio.run(go())
    assert len(shims) == 5 and not rt._children
    for pid in shims:  # reaped: gone from the process table, not a zombie
        assert not Path(f"/proc/{pid}").exists() or "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap (bwrap) is not installed")
@pytest.mark.parametrize(("argv", "message"), [
    (["no-such-cmd-xyz"], 'exec: "no-such-cmd-xyz": executable file not found in $PATH'),
    (["/etc/passwd"], 'exec: "/etc/passwd": Permission denied'),
], ids=["not-in-path", "not-executable"])
def test_start_error_inside_the_sandbox(tmp_path: Path, argv: list[str], message: str) -> None:
    """The exec happens in bubblewrap, behind the launcher: still a StartError, not exit 127."""
    rt = make_runtime(tmp_path)
    s = ContainerSpec(ContainerRef("u1", "main", 0), argv, dict(ENV), tmp_path / "l.log", sandbox=True)
    result = asyncio.run(run(rt, s))
    assert (result.exit_code, result.reason, result.message) == (128, "StartError", message)


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap (bwrap) is not installed")
def test_a_sandboxed_command_exiting_127_is_an_error_and_does_not_see_the_report_pipe(tmp_path: Path) -> None:
    rt = make_runtime(tmp_path)
    s = spec(rt, "u1", "main", "ls /proc/self/fd; exit 127", sandbox=True)
    result = asyncio.run(run(rt, s))
    assert (result.exit_code, result.reason) == (127, "Error")
    fds = [line.split(b" ", 3)[3] for line in s.log_path.read_bytes().splitlines()]
    assert b"100" not in fds and b"101" not in fds, fds


needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap (bwrap) is not installed")


@needs_cgroups
@needs_bwrap
def test_a_sandboxed_command_runs_in_its_cgroups_and_does_not_see_the_join_pipes(tmp_path: Path) -> None:
    """The shim joins the cgroups while bwrap sets the sandbox up; the command and what it forks
    are in them all the same, and the pipes that synchronise the join (fds 102, 103) are closed."""
    rt = make_runtime(tmp_path, cgroups=CGROUPS)
    uid = f"join-{os.getpid()}"
    s = spec(rt, uid, "main", "grep -E ':(pids|memory):' /proc/self/cgroup; sh -c \"grep ':pids:' /proc/self/cgroup\"; "
             "ls /proc/self/fd", sandbox=True, limits=Limits(memory_bytes=256 * 1024 * 1024))

    async def go() -> tuple[str, ContainerExit]:
        await rt.start(s)
        slot = CGROUPS.slot_of(uid, "main.0")
        assert slot is not None
        return str(slot.relative_to(CGROUPS.root / "pids")), await asyncio.wait_for(rt.wait(s.ref), 20)

    slot, result = asyncio.run(go())
    asyncio.run(rt.remove_pod(uid))
    assert (result.exit_code, result.reason) == (0, "Completed")
    out = [line.split(b" ", 3)[3].decode() for line in s.log_path.read_bytes().splitlines()]
    pids = [line for line in out if ":pids:" in line]
    assert len(pids) == 2 and all(line.endswith(f":/{slot}") for line in pids), (slot, out)
    assert any(line.endswith(f":memory:/joblet/{uid}.main.0") for line in out), out
    assert "102" not in out and "103" not in out, out


class _UnjoinableCgroups(Cgroups):
    """Every container gets a cgroup.procs that cannot be written."""

    def __init__(self, procs: Path) -> None:
        super().__init__(available=False)
        self.procs = procs

    def create(self, pod_uid: str, container: str, limits: Limits) -> list[Path]:
        return [self.procs]


@needs_bwrap
def test_a_sandboxed_command_is_never_run_outside_its_cgroups(tmp_path: Path) -> None:
    """A cgroup that cannot be joined is a StartError; the command never ran."""
    marker = tmp_path / "ran"
    rt = make_runtime(tmp_path, cgroups=_UnjoinableCgroups(tmp_path / "no-such-cgroup" / "cgroup.procs"))
    s = spec(rt, "u1", "main", f"touch {marker}", sandbox=True)
    result = asyncio.run(run(rt, s))
    assert (result.exit_code, result.reason) == (128, "StartError"), result
    assert not marker.exists()
