"""The optional podman runtime: each container attempt is a real OCI container from a local image.

Why: some users want the image (its filesystem, its libraries) and not the host's tree, with the
same pod semantics the process runtime gives. podman is daemonless, and its per-container
monitor, conmon, already plays the role of the process runtime's shim: it outlives the agent,
writes the exit status, and writes the container's output in the CRI log format
(``--log-driver k8s-file`` is exactly ``<RFC3339Nano> stdout|stderr F|P <text>``). So the agent
can be killed at any time: a restarted agent adopts a running container by conmon's pid and
start time (``--conmon-pidfile``), waits on it with a pidfd (no thread, no polling, no
``podman wait`` process per pod), and learns the exit code with ``podman inspect``.

What this host needs (measured in research/runtime-experiments.md §1), all written by this module
into ``<data_dir>/podman/`` and passed with ``CONTAINERS_CONF`` / ``CONTAINERS_STORAGE_CONF``:

* ``runtime = "runc"``: crun refuses hybrid cgroup hosts with a controller on v2;
* ``cgroup_manager = "cgroupfs"`` and ``events_logger = "file"``: no systemd, no journald;
* explicit ``default_ulimits`` no higher than the host's hard limits (no CAP_SYS_RESOURCE);
* overlay storage in our own graphroot (``<data_dir>/podman/storage``), so joblet's images and
  containers never mix with the user's; ``--network host`` (125 ms per run vs 311 ms bridged).

Documented choices:

* images are never pulled (``--pull never``); a missing image ends the attempt with
  ``StartError`` and the kubelet's ``ErrImageNeverPull`` message. Import one with
  ``scripts/make-busybox-image.sh --data-dir D`` (or ``podman import`` with the env
  :func:`podman_env` returns). An empty image means :data:`DEFAULT_IMAGE`;
* ``argv`` (command + args, as the agent merged them) replaces the image's ENTRYPOINT and CMD;
* ``.State.OOMKilled`` stays false on cgroup v1 even after a memcg OOM kill, so OOMKilled is
  inferred: exit 137 with a memory limit set, confirmed by the kernel log (``/dev/kmsg`` names
  ``oom_memcg=.../libpod-<id>``) when it is readable, and never for an attempt we killed;
* memory limits set ``--memory-swap`` to the same value (no swap, as the kubelet);
* the termination message is a per-attempt host file bound at ``terminationMessagePath``
  (default ``/dev/termination-log``), so it works for every container, sandboxed or not;
* env values reach podman through its own environment (``--env NAME``), not its argv, so
  secrets do not show up in ``ps``; names podman itself needs (``PATH``...) go as ``NAME=value``;
* once an attempt's outcome is persisted (``c.<name>.<attempt>.status``) its container is
  removed (``podman rm``) in the background: the log file and status stay until ``remove_pod``.

Cost: about 110 ms for ``podman run -d``, 25 ms for the inspect and 80 ms for the removal
per attempt, almost all of it podman's own start-up (see the report / ``bench/``).

One module (~570 lines): one runtime behind one interface; the pure argv and inspect parsing
sit at the top, the shared attempt records in records.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import shutil
import signal
import subprocess
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import orjson

from joblet.clock import Clock, parse_time, within
from joblet.node.runtimes import records
from joblet.node.runtimes.base import ContainerExit, ContainerRef, ContainerSpec, RecoveredContainer

log = logging.getLogger(__name__)

DEFAULT_IMAGE = "localhost/busybox:latest"
DEFAULT_TERMINATION_MESSAGE_PATH = "/dev/termination-log"
POD_UID_LABEL = "io.joblet.pod-uid"
KILL_AFTER_SIGKILL_SECONDS = 10.0
#: env names podman itself reads: passed to the container as NAME=value, never inherited
PODMAN_OWN_ENV = frozenset({"PATH", "HOME", "TMPDIR", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "XDG_DATA_HOME",
                            "CONTAINERS_CONF", "CONTAINERS_STORAGE_CONF", "CONTAINERS_REGISTRIES_CONF",
                            "REGISTRIES_CONFIG_PATH", "STORAGE_DRIVER", "STORAGE_OPTS", "CONTAINER_HOST",
                            "CONTAINER_CONNECTION", "LANG", "LC_ALL", "TZ"})


# -- pure helpers ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PodmanPaths:
    """Where podman's config and storage live for one joblet data dir."""

    root: Path  # <data_dir>/podman
    run_root: Path  # tmpfs when possible: podman detects reboots through it

    @property
    def containers_conf(self) -> Path:
        return self.root / "containers.conf"

    @property
    def storage_conf(self) -> Path:
        return self.root / "storage.conf"

    @property
    def graph_root(self) -> Path:
        return self.root / "storage"


def podman_paths(data_dir: Path, run_base: Path = Path("/run/joblet")) -> PodmanPaths:
    root = data_dir.resolve() / "podman"
    digest = hashlib.sha256(str(root).encode()).hexdigest()[:12]
    run_root = run_base / f"podman-{digest}" if os.access(run_base.parent, os.W_OK) else root / "run"
    return PodmanPaths(root, run_root)


def containers_conf(paths: PodmanPaths, nofile: int, nproc: int) -> str:
    """containers.conf for this host (research/runtime-experiments.md §1)."""
    return (
        "[containers]\n"
        f'default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]\n'
        'log_driver = "k8s-file"\n'
        "[engine]\n"
        'runtime = "runc"\n'
        'cgroup_manager = "cgroupfs"\n'
        'events_logger = "file"\n'
        f'events_logfile_path = "{paths.run_root}/events.log"\n'
        f'tmp_dir = "{paths.run_root}/tmp"\n'
        "[network]\n"
        f'network_config_dir = "{paths.root}/networks"\n'
    )


def storage_conf(paths: PodmanPaths) -> str:
    return (
        "[storage]\n"
        'driver = "overlay"\n'
        f'graphroot = "{paths.graph_root}"\n'
        f'runroot = "{paths.run_root}/storage"\n'
    )


def ulimits_for_host(hard_nofile: int, hard_nproc: int) -> tuple[int, int]:
    """nofile/nproc no higher than the host's hard limits (podman would raise them and fail)."""
    nofile = hard_nofile if hard_nofile > 0 else 1 << 20
    nproc = hard_nproc if hard_nproc > 0 else 1 << 20
    return min(nofile, 1 << 20), min(nproc, 32768)


def container_name(ref: ContainerRef) -> str:
    """``joblet-<pod uid>-<container>-<attempt>``: valid podman name, unique per attempt."""
    return f"joblet-{ref.pod_uid}-{ref.name}-{ref.attempt}"


def podman_env(paths: PodmanPaths, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment every podman command of this runtime runs with."""
    env = {k: v for k, v in (base if base is not None else os.environ).items() if k in ("PATH", "HOME", "LANG")}
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    env["CONTAINERS_CONF"] = str(paths.containers_conf)
    env["CONTAINERS_STORAGE_CONF"] = str(paths.storage_conf)
    return env


def run_argv(spec: ContainerSpec, *, image: str, network: str, conmon_pidfile: Path,
             termlog: Path | None, termination_path: str) -> list[str]:
    """``podman run -d ...`` arguments (after the ``podman`` binary) for one attempt."""
    ref = spec.ref
    args = ["run", "-d", "--pull", "never", "--name", container_name(ref),
            "--label", f"{POD_UID_LABEL}={ref.pod_uid}", f"--network={network}",
            "--conmon-pidfile", str(conmon_pidfile),
            "--log-driver", "k8s-file", "--log-opt", f"path={spec.log_path}"]
    if spec.env.get("HOSTNAME"):
        args += ["--hostname", spec.env["HOSTNAME"]]
    for name, value in spec.env.items():
        args += ["--env", f"{name}={value}" if name in PODMAN_OWN_ENV or "=" in name else name]
    if spec.working_dir:
        args += ["--workdir", spec.working_dir]
    limits = spec.limits
    if limits.memory_bytes:
        args += ["--memory", f"{limits.memory_bytes}b", "--memory-swap", f"{limits.memory_bytes}b"]
    if limits.cpu_millis:
        args += ["--cpus", f"{limits.cpu_millis / 1000:g}"]
    if limits.pids:
        args += ["--pids-limit", str(limits.pids)]
    if spec.run_as_user is not None or spec.run_as_group is not None:
        user = str(spec.run_as_user if spec.run_as_user is not None else 0)
        if spec.run_as_group is not None:
            user += f":{spec.run_as_group}"
        args += ["--user", user]
    for m in spec.mounts:
        args += ["--mount", f"type=bind,source={m.source},target={m.target}" + (",ro=true" if m.read_only else "")]
    if termlog is not None:
        args += ["--mount", f"type=bind,source={termlog},target={termination_path}"]
    if spec.argv:
        args += ["--entrypoint", orjson.dumps(spec.argv[:1]).decode(), image, *spec.argv[1:]]
    else:
        args.append(image)
    return args


def start_failure(stderr: str, image: str, now: datetime) -> ContainerExit:
    """The kubelet's view of a ``podman run`` that did not start the container."""
    text = stderr.strip()
    if "image not known" in text or "no such image" in text.lower():
        return ContainerExit(128, "StartError", now,
                             message=f'Container image "{image}" is not present with pull policy of Never')
    marker = text.find("exec: ")
    if marker >= 0:
        message = text[marker:]
        message = message.split(": OCI runtime", 1)[0]
    else:
        message = text.removeprefix("Error: ").splitlines()[-1] if text else "podman run failed"
    return ContainerExit(128, "StartError", now, message=message)


def exit_from_state(state: Mapping[str, Any], memory_limited: bool, oom_confirmed: bool | None,
                    killed: bool, fallback_time: datetime) -> ContainerExit:
    """The kubelet's view of a finished container, from ``podman inspect``'s ``State``.

    ``oom_confirmed``: what the kernel log says (None when it could not be read)."""
    finished = fallback_time
    raw = str(state.get("FinishedAt") or "")
    if raw and not raw.startswith("0001-"):
        with contextlib.suppress(ValueError):
            finished = parse_time(raw)
    code = int(state.get("ExitCode") or 0)
    if code == 0:
        return ContainerExit(0, "Completed", finished)
    oom = bool(state.get("OOMKilled")) or (
        code == 137 and memory_limited and not killed and oom_confirmed is not False)
    sig = code - 128 if 128 < code < 160 else None
    return ContainerExit(code, "OOMKilled" if oom else "Error", finished, signal=sig)


def kmsg_mentions_oom(records: Sequence[bytes], container_id: str) -> bool:
    """Whether kernel log records show a memcg OOM kill in the container's cgroup."""
    needle = f"oom_memcg=/libpod_parent/libpod-{container_id}".encode()
    alt = f"libpod-{container_id}".encode()
    return any(needle in r or (b"oom_memcg=" in r and alt in r) for r in records)


def exit_to_json(result: ContainerExit) -> dict[str, Any]:
    return {"exitCode": result.exit_code, "reason": result.reason, "finishedAt": result.finished_at.timestamp(),
            "signal": result.signal, "message": result.message}


def exit_from_json(value: Mapping[str, Any]) -> ContainerExit:
    sig = value.get("signal")
    return ContainerExit(int(value["exitCode"]), str(value["reason"]),
                         datetime.fromtimestamp(float(value["finishedAt"]), tz=UTC),
                         signal=int(sig) if isinstance(sig, int) else None, message=str(value.get("message") or ""))


# -- side effects behind small protocols ------------------------------------------------------


@dataclass(frozen=True)
class CommandResult:
    returncode: int
    stdout: str
    stderr: str


class PodmanCli(Protocol):
    """Runs ``podman <args>``: async for the agent's loop, sync for ``recover``."""

    async def run(self, args: Sequence[str], env: Mapping[str, str] | None = None) -> CommandResult: ...

    def run_sync(self, args: Sequence[str]) -> CommandResult: ...


class RealPodmanCli:
    """podman commands on a small thread pool.

    Not asyncio subprocesses: cancelling one of those (agent shutdown, ``asyncio.run`` ending)
    kills podman mid-command, which can leave a libpod SHM lock held forever and hang every
    later command on that container. A thread lets the command finish whatever happens."""

    def __init__(self, binary: str, env: Mapping[str, str], cwd: Path, workers: int = 4) -> None:
        """``cwd``: where podman runs. conmon leaves files in its working directory (an empty
        ``oom`` after an OOM kill): the data dir's podman root, not the user's directory."""
        self.binary = binary
        self.env = dict(env)
        self.cwd = cwd
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="podman")

    async def run(self, args: Sequence[str], env: Mapping[str, str] | None = None) -> CommandResult:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, self._run, list(args), {**(env or {}), **self.env})

    def run_sync(self, args: Sequence[str]) -> CommandResult:
        return self._run(list(args), self.env)

    def _run(self, args: list[str], env: dict[str, str]) -> CommandResult:
        proc = subprocess.run([self.binary, *args], env=env, stdin=subprocess.DEVNULL, cwd=self.cwd,
                              capture_output=True, check=False)
        return CommandResult(proc.returncode, proc.stdout.decode(errors="replace"),
                             proc.stderr.decode(errors="replace"))


def read_kmsg() -> list[bytes] | None:
    """Every record still in the kernel ring buffer (None when /dev/kmsg cannot be read)."""
    try:
        fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    records: list[bytes] = []
    try:
        while True:
            try:
                records.append(os.read(fd, 8192))
            except BlockingIOError:
                break
            except OSError:  # EPIPE: a record was overwritten while reading; keep going
                continue
    finally:
        os.close(fd)
    return records


def podman_usable(binary: str = "podman") -> str | None:
    """None when podman is installed; else why the podman runtime cannot be used here."""
    if shutil.which(binary) is None:
        return "podman is not installed (apt-get install -y podman runc)"
    if shutil.which("runc") is None:
        return "runc is not installed (apt-get install -y runc)"
    return None


def write_config(data_dir: Path) -> PodmanPaths:
    """Write containers.conf and storage.conf for ``data_dir``; return the paths."""
    import resource

    paths = podman_paths(data_dir)
    for d in (paths.root, paths.graph_root, paths.run_root, paths.run_root / "tmp"):
        d.mkdir(parents=True, exist_ok=True)
    nofile, nproc = ulimits_for_host(resource.getrlimit(resource.RLIMIT_NOFILE)[1],
                                     resource.getrlimit(resource.RLIMIT_NPROC)[1])
    _write_if_changed(paths.containers_conf, containers_conf(paths, nofile, nproc))
    _write_if_changed(paths.storage_conf, storage_conf(paths))
    return paths


# -- the runtime ----------------------------------------------------------------------------


class PodmanRuntime:
    def __init__(self, data_dir: Path, clock: Clock, *, binary: str = "podman", default_image: str = DEFAULT_IMAGE,
                 network: str = "host", cli: PodmanCli | None = None,
                 kmsg: Any = read_kmsg) -> None:
        self.pods_dir = data_dir / "pods"
        self.pods_dir.mkdir(parents=True, exist_ok=True)
        self.clock = clock
        self.paths = write_config(data_dir)
        self.env = podman_env(self.paths)
        self.cli: PodmanCli = cli if cli is not None else RealPodmanCli(binary, self.env, self.paths.root)
        self.default_image = default_image
        self.network = network
        self.kmsg = kmsg
        self._waits = records.SharedWaits()
        self._killed: set[ContainerRef] = set()
        self._background: set[asyncio.Future[Any]] = set()

    # -- paths ---------------------------------------------------------------------------
    def pod_dir(self, pod_uid: str) -> Path:
        return self.pods_dir / pod_uid

    def _path(self, ref: ContainerRef, suffix: str) -> Path:
        return self.pod_dir(ref.pod_uid) / f"c.{ref.name}.{ref.attempt}.{suffix}"

    # -- Runtime -------------------------------------------------------------------------
    async def start(self, spec: ContainerSpec) -> datetime:
        ref = spec.ref
        self.pod_dir(ref.pod_uid).mkdir(parents=True, exist_ok=True)
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        spec.log_path.touch()
        started = self.clock.now()
        image = spec.image or self.default_image
        termlog = self._path(ref, "termlog")
        termlog.touch(mode=0o666)
        os.chmod(termlog, 0o666)
        state: dict[str, Any] = {
            "startedAt": started.timestamp(), "log": str(spec.log_path), "name": container_name(ref),
            "image": image, "memoryLimited": bool(spec.limits.memory_bytes), "termlog": str(termlog),
            "fallbackToLogs": spec.fallback_to_logs,
        }
        records.append_record(self._path(ref, "json"), state)  # intent first: never start an attempt twice
        pidfile = self._path(ref, "conmon")
        args = run_argv(spec, image=image, network=self.network, conmon_pidfile=pidfile, termlog=termlog,
                        termination_path=spec.termination_message_path or DEFAULT_TERMINATION_MESSAGE_PATH)
        result = await self.cli.run(args, env=spec.env)
        if result.returncode != 0:
            failure = start_failure(result.stderr, image, self.clock.now())
            records.append_record(self._path(ref, "status"), exit_to_json(failure))
            self._remove_container_later(container_name(ref))
            _touch_done(spec.log_path)
            return started
        state["id"] = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
        pid = _read_pid(pidfile)
        if pid is not None:
            state.update(conmonPid=pid, conmonStart=records.proc_starttime(pid))
        records.append_record(self._path(ref, "json"), state)
        return started

    async def wait(self, ref: ContainerRef) -> ContainerExit:
        return await self._waits.wait(ref, lambda: self._wait(ref))

    async def _wait(self, ref: ContainerRef) -> ContainerExit:
        known = self._status(ref)
        if known is not None:
            return known
        pid = self._live_conmon(ref)
        if pid is not None:
            await records.wait_pid(pid)
        inspected = await self.cli.run(["inspect", "--format", "json", self._name(ref)])
        return self._finish(ref, inspected)

    async def kill(self, ref: ContainerRef, grace_seconds: float) -> None:
        wait_task = asyncio.ensure_future(self.wait(ref))
        if self._status(ref) is None and not wait_task.done():
            self._killed.add(ref)
            name = self._name(ref)
            await self.cli.run(["kill", "--signal", "TERM", name])
            if not await within(self.clock, wait_task, grace_seconds):  # the grace period is the pod's clock
                await self.cli.run(["kill", "--signal", "KILL", name])
                done, _ = await asyncio.wait({wait_task}, timeout=KILL_AFTER_SIGKILL_SECONDS)
                if not done:  # conmon itself is stuck
                    pid = self._live_conmon(ref)
                    if pid is not None:
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(pid, signal.SIGKILL)
        await wait_task

    def recover(self, pod_uid: str) -> list[RecoveredContainer]:
        found: list[RecoveredContainer] = []
        for attempt in records.attempts(self.pod_dir(pod_uid), pod_uid):
            ref, started = attempt.ref, attempt.started
            known = self._status(ref)
            if known is None and self._live_conmon(ref) is None:
                inspected = self.cli.run_sync(["inspect", "--format", "json", self._name(ref)])
                known = self._finish(ref, inspected, remove=False)
            if known is None:
                found.append(RecoveredContainer(ref, started, "running"))
            else:
                found.append(RecoveredContainer(ref, started, "exited", known))
        return records.by_container(found)

    def pods(self) -> list[str]:
        return sorted(p.name for p in self.pods_dir.iterdir() if p.is_dir())

    async def remove_pod(self, pod_uid: str) -> None:
        names: list[str] = []
        for rec in self.recover(pod_uid):
            if rec.state == "running":
                await self.kill(rec.ref, 0)
            names.append(container_name(rec.ref))
        if names:
            await self.cli.run(["rm", "--force", "--ignore", *names])
        shutil.rmtree(self.pod_dir(pod_uid), ignore_errors=True)
        for ref in self._waits.forget_pod(pod_uid):
            self._killed.discard(ref)

    async def drain(self) -> None:
        """Wait for background container removals (tests, benchmarks)."""
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    def close(self) -> None:
        """Agent shutdown: podman commands in flight still finish (their threads are not killed)."""
        if isinstance(self.cli, RealPodmanCli):
            self.cli.pool.shutdown(wait=False)

    # -- internals -----------------------------------------------------------------------
    def _name(self, ref: ContainerRef) -> str:
        state = records.read_records(self._path(ref, "json"))
        return str(state.get("id") or container_name(ref))

    def _status(self, ref: ContainerRef) -> ContainerExit | None:
        value = records.read_records(self._path(ref, "status"))
        if not value:
            return None
        try:
            return exit_from_json(value)
        except (KeyError, TypeError, ValueError):
            return None

    def _live_conmon(self, ref: ContainerRef) -> int | None:
        """conmon's pid if it still runs (same pid *and* start time as recorded)."""
        state = records.read_records(self._path(ref, "json"))
        pid = state.get("conmonPid")
        if not isinstance(pid, int):
            pid = _read_pid(self._path(ref, "conmon"))
            if pid is None:
                return None
            return pid if records.proc_starttime(pid) is not None else None  # start interrupted before the record
        start = records.proc_starttime(pid)
        return pid if start is not None and start == state.get("conmonStart") else None

    def _finish(self, ref: ContainerRef, inspected: CommandResult, remove: bool = True) -> ContainerExit:
        """Turn ``podman inspect`` into the attempt's outcome; persist it; schedule removal."""
        known = self._status(ref)
        if known is not None:
            return known
        state = records.read_records(self._path(ref, "json"))
        now = self.clock.now()
        container_state: dict[str, Any] = {}
        if inspected.returncode == 0:
            with contextlib.suppress(orjson.JSONDecodeError, IndexError, TypeError, AttributeError):
                container_state = dict(orjson.loads(inspected.stdout)[0].get("State") or {})
        status = str(container_state.get("Status") or "")
        if status not in ("exited", "stopped"):
            # gone, never started, or "running" with conmon dead (a reboot): no outcome recorded
            result = (ContainerExit(137, "Error", now, signal=9) if ref in self._killed else records.lost_exit(now))
        else:
            memory_limited = bool(state.get("memoryLimited"))
            oom_confirmed: bool | None = None
            code = int(container_state.get("ExitCode") or 0)
            if code == 137 and memory_limited and ref not in self._killed:
                kernel_log = self.kmsg()
                cid = str(state.get("id") or "")
                oom_confirmed = kmsg_mentions_oom(kernel_log, cid) if kernel_log is not None and cid else None
            result = exit_from_state(container_state, memory_limited, oom_confirmed, ref in self._killed, now)
        message = records.termination_message(state.get("termlog"), state.get("log"), bool(state.get("fallbackToLogs")),
                                      result.exit_code)
        if message and not result.message:
            result = ContainerExit(result.exit_code, result.reason, result.finished_at, result.signal, message)
        records.append_record(self._path(ref, "status"), exit_to_json(result))
        log_path = state.get("log")
        if isinstance(log_path, str):
            _touch_done(Path(log_path))
        if remove:  # recover() runs outside the loop's control: remove_pod removes those
            self._remove_container_later(str(state.get("id") or container_name(ref)))
        return result

    def _remove_container_later(self, name: str) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        task = asyncio.ensure_future(self.cli.run(["rm", "--force", "--ignore", name]), loop=loop)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _touch_done(log_path: Path) -> None:
    with contextlib.suppress(OSError):
        log_path.with_suffix(".done").touch()


def _write_if_changed(path: Path, text: str) -> None:
    with contextlib.suppress(OSError):
        if path.read_text() == text:
            return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m joblet.node.runtimes.podman DATA_DIR``: write the config, print its env."""
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m joblet.node.runtimes.podman DATA_DIR", file=sys.stderr)
        return 2
    paths = write_config(Path(args[0]).expanduser())
    print(f"export CONTAINERS_CONF={paths.containers_conf}")
    print(f"export CONTAINERS_STORAGE_CONF={paths.storage_conf}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
