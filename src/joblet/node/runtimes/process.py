"""The default runtime: each container attempt is a real process tree under a tiny C shim.

Why this shape (measured in research/runtime-experiments.md):

* The shim (``joblet/node/shim.c``, compiled once per source hash into the cache dir) owns
  the container process: it joins the container's cgroups, execs the command, timestamps
  output into the CRI log file, forwards SIGTERM, and writes the exit status to a file
  atomically. So the agent can be ``kill -9``-ed at any time: a restarted agent reads the
  status file, or adopts a still-running shim by pid + ``/proc/<pid>/stat`` starttime and
  waits on it with a pidfd. A finished container is never run twice.
* Spawning uses ``subprocess.Popen(start_new_session=True)`` without ``preexec_fn``; exits are
  noticed through ``os.pidfd_open`` + ``loop.add_reader`` — no thread and no polling per pod.
* Kill: SIGTERM to the shim (forwarded to the container's process group), after the grace
  period SIGUSR1 (the shim SIGKILLs the group and sweeps the cgroups), and the runtime sweeps
  the cgroups too, so ``setsid`` escapees die.

On disk, per pod: ``<data_dir>/pods/<uid>/c.<name>.<attempt>.json`` (pid, starttime, start
time, log path) and ``c.<name>.<attempt>.status`` (written by the shim). Next to each log
file the runtime writes ``<attempt>.done`` once the attempt has ended, which ends
``logs -f``.

Sandboxed containers (``ContainerSpec.sandbox``: every pod when bwrap is installed) run as
``shim -I ... -- bwrap <binds> -- shim -E [-u UID] [-g GID] -- CMD`` (see :mod:`joblet.node.sandbox`):
the shim stays outside, so the status file, the CRI log, kill-by-cgroup and adoption work
exactly as for plain containers. The termination message file is a per-attempt host file
``c.<name>.<attempt>.termlog`` bound at ``terminationMessagePath``; ``_finish`` reads it (and, for
``FallbackToLogsOnError``, the log's tail), so a recovered attempt reports the same message.

Fallback without ``cc``: a POSIX ``sh`` shim with the same arguments. It cannot tell a signal
from ``exit 128+n`` (both are reported as that exit code), reports exec failures as exit 127
``Error`` instead of ``StartError``, forks ``date`` per output line, and is killed with its
process group (a killed attempt then reports exit 137).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import os
import shutil
import signal
import subprocess
import tempfile
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from joblet.clock import Clock, within
from joblet.node.cgroups import Cgroups, detect
from joblet.node.logs import DEFAULT_MAX_FILES, DEFAULT_MAX_SIZE
from joblet.node.runtimes import records
from joblet.node.runtimes.base import ContainerExit, ContainerRef, ContainerSpec, RecoveredContainer
from joblet.node.sandbox import bwrap_argv, effective_capabilities
from joblet.node.volumes import unmount_all

log = logging.getLogger(__name__)

SIGTERM_GRACE_AFTER_KILL = 10.0
_PRUNED = False

SH_SHIM = r"""
cgs=""; wd=""; mem=""
while [ $# -gt 0 ]; do
  case "$1" in
    -c) cgs="$cgs $2"; shift 2;;
    -d) wd="$2"; shift 2;;
    -m) mem="$2"; shift 2;;
    -s|-n) shift 2;;
    *) break;;
  esac
done
status="$1"; logf="$2"; shift 2; [ "$1" = "--" ] && shift
trap ':' TERM INT
{
  (
    for f in $cgs; do echo 0 > "$f"; done
    [ -n "$mem" ] && ulimit -v $((mem / 1024))
    if [ -n "$wd" ]; then cd "$wd" || exit 128; fi
    exec "$@"
  )
  echo $? > "$status.rc"
} 2>&1 | {
  trap ':' TERM INT
  while IFS= read -r line || [ -n "$line" ]; do
    printf '%s stdout F %s\n' "$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)" "$line"
  done >> "$logf"
}
rc=$(cat "$status.rc" 2>/dev/null || echo 255); rm -f "$status.rc"
printf 'exit %s\nfinished %s\n' "$rc" "$(date +%s%N)" > "$status.tmp"
mv -f "$status.tmp" "$status"
"""


def default_cache_dir() -> Path:
    env = os.environ.get("JOBLET_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "joblet"


def shim_source() -> bytes:
    return (resources.files("joblet.node") / "shim.c").read_bytes()


def ensure_shim(cache_dir: Path | None = None) -> list[str]:
    """argv prefix of the shim: the compiled C shim (built once per source hash), else ``sh``."""
    source = shim_source()
    cache = cache_dir or default_cache_dir()
    binary = cache / f"joblet-shim-{hashlib.sha256(source).hexdigest()[:16]}"
    if binary.exists():
        return [str(binary)]
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        log.warning("no C compiler: using the sh shim (signals reported as exit 128+n)")
        return ["sh", "-c", SH_SHIM, "joblet-shim"]
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        src = Path(tmp) / "shim.c"
        src.write_bytes(source)
        out = Path(tmp) / "shim"
        subprocess.run([compiler, "-O2", "-o", str(out), str(src)], check=True, capture_output=True)
        os.replace(out, binary)  # atomic: concurrent builders race harmlessly
    return [str(binary)]


def hidden_dirs(*dirs: Path) -> list[Path]:
    """The existing, distinct directories among ``dirs`` (bwrap would create a missing one on the host)."""
    out: list[Path] = []
    for d in dirs:
        if d.is_dir() and all(not os.path.samefile(d, o) for o in out):
            out.append(d)
    return out


# -- pure helpers ---------------------------------------------------------------------------


def parse_status(text: str) -> dict[str, str]:
    """``exit 3\\nfinished 123\\n`` → {"exit": "3", "finished": "123"}."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key:
            fields[key] = value
    return fields


def exit_from_status(fields: dict[str, str], oom_killed: bool, fallback_time: datetime) -> ContainerExit:
    """The kubelet's view of one attempt's end, from the shim's status file fields."""
    finished = fallback_time
    if fields.get("finished", "").isdigit():
        finished = datetime.fromtimestamp(int(fields["finished"]) / 1e9, tz=UTC)
    if "starterror" in fields:
        return ContainerExit(128, "StartError", finished, message=fields.get("message", ""))
    if "signal" in fields:
        sig = int(fields["signal"])
        return ContainerExit(128 + sig, "OOMKilled" if oom_killed else "Error", finished, signal=sig)
    code = int(fields.get("exit", "255") or 255)
    if code == 0:
        return ContainerExit(0, "Completed", finished)
    return ContainerExit(code, "OOMKilled" if oom_killed else "Error", finished)


# -- the runtime ----------------------------------------------------------------------------


class ProcessRuntime:
    def __init__(self, data_dir: Path, clock: Clock, cgroups: Cgroups | None = None,
                 shim: list[str] | None = None, cache_dir: Path | None = None,
                 log_max_bytes: int = DEFAULT_MAX_SIZE, log_max_files: int = DEFAULT_MAX_FILES,
                 hidden: list[Path] | None = None) -> None:
        """``log_max_bytes``/``log_max_files``: each attempt's log is rotated by the shim at that
        size, keeping that many files (0 bytes: no cap; the ``sh`` fallback shim never rotates).
        ``hidden``: directories a sandboxed container must not see (default: the data dir,
        which holds the server's keys, tokens, database, logs and every pod's volumes)."""
        self.log_max_bytes = log_max_bytes
        self.log_max_files = log_max_files
        self.pods_dir = data_dir / "pods"
        self.hidden = hidden if hidden is not None else [data_dir]
        self.pods_dir.mkdir(parents=True, exist_ok=True)
        self.clock = clock
        self.cgroups = cgroups if cgroups is not None else detect()
        self.shim = shim or ensure_shim(cache_dir)
        self.sh_shim = self.shim[0] == "sh"
        # the exec helper (the shim binary) must stay visible inside the sandbox
        shim_dir = os.path.realpath(self.shim[0]) if not self.sh_shim else ""
        self.hidden = [h for h in self.hidden if not shim_dir.startswith(os.path.realpath(h).rstrip("/") + "/")]
        self._children: dict[ContainerRef, int] = {}
        self._waits = records.SharedWaits()
        self._killed: set[ContainerRef] = set()
        global _PRUNED
        if not _PRUNED:  # once per process: empty cgroups that crashed agents left behind
            _PRUNED = True
            self.cgroups.prune_empty()

    def close(self) -> None:
        """Give back idle cgroups (containers still running keep theirs for the next agent)."""
        self.cgroups.close()

    # -- paths ---------------------------------------------------------------------------
    def pod_dir(self, pod_uid: str) -> Path:
        return self.pods_dir / pod_uid

    def _state_path(self, ref: ContainerRef) -> Path:
        return self.pod_dir(ref.pod_uid) / f"c.{ref.name}.{ref.attempt}.json"

    def _termlog_path(self, ref: ContainerRef) -> Path:
        return self.pod_dir(ref.pod_uid) / f"c.{ref.name}.{ref.attempt}.termlog"

    def _status_path(self, ref: ContainerRef) -> Path:
        return self.pod_dir(ref.pod_uid) / f"c.{ref.name}.{ref.attempt}.status"

    @staticmethod
    def _cgroup_name(ref: ContainerRef) -> str:
        return f"{ref.name}.{ref.attempt}"

    # -- Runtime -------------------------------------------------------------------------
    async def start(self, spec: ContainerSpec) -> datetime:
        ref = spec.ref
        os.makedirs(self.pod_dir(ref.pod_uid), exist_ok=True)
        os.makedirs(spec.log_path.parent, exist_ok=True)
        _touch(spec.log_path)  # readable (and followable) as soon as the status says it started
        started = self.clock.now()
        state: dict[str, Any] = {"startedAt": started.timestamp(), "log": str(spec.log_path)}
        args = list(self.shim)
        argv = list(spec.argv)
        if spec.fallback_to_logs:
            state["fallbackToLogs"] = True
        if spec.sandbox:
            termination = None
            if spec.termination_message_path:
                termlog = self._termlog_path(ref)
                _private_file(termlog, spec.run_as_user, spec.run_as_group)
                state["termlog"] = str(termlog)
                termination = (termlog, spec.termination_message_path)
            helper = ["env"] if self.sh_shim else [*self.shim, "-E", *self._user_args(spec)]
            argv = bwrap_argv(spec.mounts, argv, helper, spec.working_dir, termination,
                              hidden=[str(p) for p in self.hidden], capabilities=self._capabilities(spec))
            if not self.sh_shim:
                args.append("-I")
        else:
            args += self._user_args(spec)
        try:
            procs = self.cgroups.create(ref.pod_uid, self._cgroup_name(ref), spec.limits)
        except OSError as exc:
            log.warning("cgroup setup for %s failed: %s", ref.container_id, exc)
            procs = []
        for p in procs:
            args += ["-c", str(p)]
        tracking = self.cgroups.slot_of(ref.pod_uid, self._cgroup_name(ref))
        if tracking is not None:
            state["cgroup"] = str(tracking)
        # Intent before the spawn, in one record: after a crash between this record and the
        # pid record, recovery finds the shim by its status path among its arguments (adopted)
        # or knows that nothing ran (the attempt is started anew): never twice, never lost.
        records.append_record(self._state_path(ref), state)
        if spec.working_dir and not spec.sandbox:
            args += ["-d", spec.working_dir]
        if not procs and spec.limits.memory_bytes:
            args += ["-m", str(spec.limits.memory_bytes)]
        if self.log_max_bytes > 0 and not self.sh_shim:
            args += ["-s", str(self.log_max_bytes), "-n", str(self.log_max_files)]
        args += [str(self._status_path(ref)), str(spec.log_path), "--", *argv]
        # posix_spawn (vfork) in a new session: no Python between fork and exec, and our
        # descriptors are all close-on-exec (PEP 446), so nothing leaks into the shim.
        pid = os.posix_spawnp(args[0], args, spec.env, setsid=True, file_actions=_DEVNULL_STDIO)
        self._children[ref] = pid
        records.append_record(self._state_path(ref), {"pid": pid, "starttime": records.proc_starttime(pid)})
        return started

    async def wait(self, ref: ContainerRef) -> ContainerExit:
        return await self._waits.wait(ref, lambda: self._wait(ref))

    async def _wait(self, ref: ContainerRef) -> ContainerExit:
        child = self._children.get(ref)
        if child is not None:
            # Our own shim: always wait for it and reap it, even when its status file is
            # already there (it writes the status just before exiting). Skipping that left
            # every fast container's shim a zombie until fork failed with EAGAIN.
            await records.wait_pid(child)
            self._children.pop(ref, None)
            _reap(child)
        elif not self._status_path(ref).exists():
            pid = self._live_pid(ref)  # a shim adopted from an earlier agent: not ours to reap
            if pid is not None:
                await records.wait_pid(pid)
        return self._finish(ref)

    async def kill(self, ref: ContainerRef, grace_seconds: float) -> None:
        waiting = self.wait(ref)
        wait_task = asyncio.ensure_future(waiting)
        pid = self._live_pid(ref)
        if pid is not None:
            self._killed.add(ref)
            self._signal(pid, signal.SIGTERM)
            if not await within(self.clock, wait_task, grace_seconds):  # the grace period is the pod's clock
                self._signal(pid, signal.SIGKILL)
                self.cgroups.sweep(ref.pod_uid, self._cgroup_name(ref))
                done, _ = await asyncio.wait({wait_task}, timeout=SIGTERM_GRACE_AFTER_KILL)
                if not done:  # the shim itself is stuck: give up on a status
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
        await wait_task

    @staticmethod
    def _capabilities(spec: ContainerSpec) -> list[str] | None:
        """What bwrap keeps: ``spec.capabilities`` (default: the runtime set for the uid), plus
        SETUID/SETGID while the exec helper still has to switch to runAsUser/runAsGroup (a
        switch to a non-zero uid clears them again). None when we are not root: an
        unprivileged bwrap cannot add capabilities."""
        if os.getuid() != 0:
            return None
        uid = spec.run_as_user if spec.run_as_user is not None else 0
        caps = set(spec.capabilities if spec.capabilities is not None else effective_capabilities(None, uid))
        if spec.run_as_group is not None:
            caps.add("SETGID")
        if spec.run_as_user is not None:
            caps |= {"SETUID", "SETGID"}
        return sorted(caps)

    @staticmethod
    def _user_args(spec: ContainerSpec) -> list[str]:
        out: list[str] = []
        if spec.run_as_user is not None:
            out += ["-u", str(spec.run_as_user)]
        if spec.run_as_group is not None:
            out += ["-g", str(spec.run_as_group)]
        return out

    def _signal(self, pid: int, sig: signal.Signals) -> None:
        try:
            if self.sh_shim:
                os.killpg(pid, sig)
            else:
                os.kill(pid, signal.SIGUSR1 if sig == signal.SIGKILL else sig)
        except ProcessLookupError:
            pass

    def recover(self, pod_uid: str) -> list[RecoveredContainer]:
        found: list[RecoveredContainer] = []
        for attempt in records.attempts(self.pod_dir(pod_uid), pod_uid):
            ref, started, state = attempt.ref, attempt.started, attempt.state
            if "pid" not in state and not self._status_path(ref).exists():
                # The agent died between the intent record and the pid record: either the spawn
                # never happened (nothing ran: the attempt is forgotten and started anew) or the
                # shim runs with its pid unrecorded (found by its argv, adopted). Reporting it
                # lost failed the pod of a container that never ran (chaos test, 1 in 2 runs).
                shim = _unrecorded_shim(str(self._status_path(ref)))
                if shim is None:
                    self._state_path(ref).unlink(missing_ok=True)
                    continue
                records.append_record(self._state_path(ref), {"pid": shim, "starttime": records.proc_starttime(shim)})
            if self._status_path(ref).exists() or self._live_pid(ref) is None:
                found.append(RecoveredContainer(ref, started, "exited", self._finish(ref)))
            else:
                # Only a live attempt's tracking cgroup is taken back: a finished attempt's
                # pooled cgroup may already track another pod's container.
                if isinstance(state.get("cgroup"), str):
                    self.cgroups.adopt(pod_uid, self._cgroup_name(ref), state["cgroup"])
                found.append(RecoveredContainer(ref, started, "running"))
        return records.by_container(found)

    def pods(self) -> list[str]:
        return sorted(p.name for p in self.pods_dir.iterdir() if p.is_dir())

    async def remove_pod(self, pod_uid: str) -> None:
        for rec in self.recover(pod_uid):
            if rec.state == "running":
                await self.kill(rec.ref, 0)
        self.cgroups.sweep(pod_uid)
        self.cgroups.remove(pod_uid)
        unmount_all(self.pod_dir(pod_uid))
        shutil.rmtree(self.pod_dir(pod_uid), ignore_errors=True)
        self._waits.forget_pod(pod_uid)

    # -- internals -----------------------------------------------------------------------
    def _live_pid(self, ref: ContainerRef) -> int | None:
        """The shim's pid if it still runs (same pid *and* starttime as recorded)."""
        child = self._children.get(ref)
        if child is not None:
            if _running_child(child):
                return child
            self._children.pop(ref, None)
            return None
        state = records.read_records(self._state_path(ref))
        pid = state.get("pid")
        if not isinstance(pid, int):
            return None
        start = records.proc_starttime(pid)
        if start is None or start != state.get("starttime"):
            return None
        return pid

    def _finish(self, ref: ContainerRef) -> ContainerExit:
        """Read the status, detect OOM, clean the attempt's cgroups, mark the log done."""
        cg = self._cgroup_name(ref)
        oom = self.cgroups.oom_kills(ref.pod_uid, cg) > 0
        self.cgroups.sweep(ref.pod_uid, cg)
        self.cgroups.remove(ref.pod_uid, cg)
        try:
            text = self._status_path(ref).read_text()
        except FileNotFoundError:
            text = None
        if text is None:
            result = (ContainerExit(137, "Error", self.clock.now(), signal=9)
                      if ref in self._killed else records.lost_exit(self.clock.now()))
        else:
            result = exit_from_status(parse_status(text), oom, self.clock.now())
        state = records.read_records(self._state_path(ref))
        log_path = state.get("log")
        message = records.termination_message(state.get("termlog"), log_path, bool(state.get("fallbackToLogs")),
                                      result.exit_code)
        if message and not result.message:
            result = dataclasses.replace(result, message=message)
        if isinstance(log_path, str):
            with contextlib.suppress(OSError):
                _touch(Path(log_path).with_suffix(".done"))
        return result


_DEVNULL_STDIO = [
    (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
    (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
    (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
]


def _private_file(path: Path, uid: int | None, gid: int | None) -> None:
    """An empty 0600 file owned by the container's user (the termination log)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        if os.getuid() == 0 and (uid is not None or gid is not None):
            os.fchown(fd, -1 if uid is None else uid, -1 if gid is None else gid)
    finally:
        os.close(fd)


def _touch(path: Path) -> None:
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))


def _running_child(pid: int) -> bool:
    """Whether our child still runs; reaps it if it has exited."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return False
    return done == 0


def _reap(pid: int) -> None:
    """Collect an exited child so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _unrecorded_shim(status_path: str) -> int | None:
    """The pid of the shim running with ``status_path`` among its arguments (not one of its
    forked helpers, which share its argv), or None when no such process lives."""
    wanted = status_path.encode()
    found: dict[int, int] = {}  # pid -> parent pid
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                if wanted not in f.read().split(b"\0"):
                    continue
        except OSError:
            continue
        fields = records.proc_stat_fields(int(name))
        if fields is not None and len(fields) > 1:
            found[int(name)] = int(fields[1])
    return next((pid for pid, parent in sorted(found.items()) if parent not in found), None)
