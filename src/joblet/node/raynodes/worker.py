"""What runs on a Ray node: the node's container supervisor, and the task that holds a pod's resources.

Why separate: this module is shipped to the Ray cluster (``runtime_env.py_modules``) and
imported there, so it only uses the standard library and joblet's stdlib-only modules
(:mod:`joblet.clock`, :mod:`joblet.node.sandbox`, :mod:`joblet.node.cgroups`). A container is a
real subprocess in its own session (under bubblewrap when the Ray node has it) started by the
node's :class:`Supervisor`, a detached actor, so it outlives the joblet that started it. Its
output is turned into CRI log lines one chunk at a time (one timestamp per chunk, lines
prefixed with one ``bytes.replace``), batched every ``FLUSH_SECONDS`` or ``FLUSH_BYTES``, and
handed to the driver by :meth:`Supervisor.poll`, so ``kubectl logs -f`` follows a running pod.
A memory limit is enforced by a memory cgroup (v1, ``joblet-ray/<pod uid>.<container>.<attempt>``)
where the node can make one, else by an RSS watcher over the container's session: either way
the end is ``OOMKilled``, exit 137.
"""

from __future__ import annotations

import contextlib
import errno
import os
import selectors
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from joblet.clock import RealClock, rfc3339_micro
from joblet.node.cgroups import Limits, detect
from joblet.node.sandbox import bwrap_argv
from joblet.node.volumes import Mount

#: bump when the supervisor's methods change: a new version is a new actor (another name), so
#: a driver never mis-reads an older one; the driver retires older ones on its node
#: (:meth:`joblet.node.raynodes.runtime.RayRuntime._retire_older`). 3: ``poll`` reports starts.
#: 4: ``poll`` returns at once when an attempt it asks about has output or an exit not taken yet.
PROTOCOL = 4
NAMESPACE = "joblet"
CGROUP_PREFIX = "joblet-ray"
RSS_POLL_SECONDS = 0.05
#: log bytes a supervisor keeps for a container no driver takes (joblet down): the oldest go first
MAX_UNREAD_BYTES = 64 << 20
_SUPERVISORS: dict[str, Any] = {}  # actor handles a Ray worker process has looked up
FLUSH_SECONDS = 0.1
FLUSH_BYTES = 256 * 1024
MAX_PARTIAL = 16 * 1024  # a line longer than this is written as P(artial) pieces, as the kubelet does
READ_BLOCK = 64 * 1024
MAX_TERMINATION_MESSAGE_BYTES = 4096


def untaken(offset: int, base: int, kept: int, ended: bool) -> bool:
    """Whether one attempt has something for a poll whose caller holds ``offset`` bytes of its
    log: bytes after that offset (the supervisor keeps ``kept`` bytes from stream offset
    ``base``) or its exit (``ended``; a caller asks only about attempts whose exit it has not
    taken). Pure: :meth:`Supervisor.poll` returns at once when this holds for any attempt it is
    asked about, whatever the caller's ``generation`` says."""
    return ended or kept > max(offset - base, 0)


def supervisor_name(node_id: str, version: int = PROTOCOL) -> str:
    """The name of the detached supervisor actor of one Ray node (namespace ``joblet``)."""
    return f"joblet-supervisor-v{version}-{node_id}"


def pod_root(pod_uid: str) -> Path:
    """The per-pod directory on the Ray node (volumes, termination logs)."""
    return Path(tempfile.gettempdir()) / "joblet-ray" / pod_uid


def materialize(root: Path, volumes: list[dict[str, Any]]) -> dict[str, Path]:
    """Write shipped volume trees under ``root``; returns key → local path. Files are
    (re)written, nothing is deleted: an emptyDir keeps what another container wrote."""
    out: dict[str, Path] = {}
    for vol in volumes:
        base = root / "volumes" / vol["key"]
        base.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(base, int(vol.get("mode", 0o755)))
        for rel, mode, data in vol["files"]:
            target = base / rel
            if data is None:
                target.mkdir(parents=True, exist_ok=True)
                os.chmod(target, mode)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            try:
                os.write(fd, data)
                os.fchmod(fd, mode)
            finally:
                os.close(fd)
            os.replace(tmp, target)
        out[vol["key"]] = base
    return out


def cri_chunk(stamp: bytes, stream: bytes, data: bytes, final: bool) -> tuple[bytes, bytes]:
    """CRI lines for the complete lines of ``data``; returns (lines, leftover partial line).
    ``final``: the stream ended, the leftover is written as a P line."""
    cut = data.rfind(b"\n") + 1
    whole, rest = data[:cut], data[cut:]
    out = b""
    prefix = stamp + b" " + stream + b" "
    if whole:
        out = prefix + b"F " + whole[:-1].replace(b"\n", b"\n" + prefix + b"F ") + b"\n"
    if rest and (final or len(rest) > MAX_PARTIAL):
        out += prefix + b"P " + rest + b"\n"
        rest = b""
    return out, rest


def start_error_message(argv0: str, exc: OSError, workdir: str | None) -> str:
    """``state.terminated.message`` of a container that could not be started (the kubelet's words)."""
    if workdir and exc.filename == workdir:
        return f'chdir to cwd ("{workdir}") set in config.json failed: {exc.strerror or exc}'
    if isinstance(exc, FileNotFoundError) and "/" not in argv0:
        return f'exec: "{argv0}": executable file not found in $PATH'
    return f'exec: "{argv0}": {exc.strerror or exc}'


def command(payload: dict[str, Any], root: Path) -> tuple[list[str], dict[str, Any], Path | None]:
    """argv, Popen keyword arguments and the termination-log file of one container attempt."""
    local = materialize(root, payload["volumes"])
    argv: list[str] = list(payload["argv"])
    workdir = payload.get("working_dir")
    termlog: Path | None = None
    bwrap = shutil.which("bwrap") if payload.get("sandbox") else None
    kwargs: dict[str, Any] = {}
    if bwrap:
        mounts = [Mount(local[m["key"]] / m["sub"] if m.get("key") else Path(m["source"]), m["target"],
                        bool(m["read_only"])) for m in payload["mounts"]]
        termination = None
        if payload.get("termination_message_path"):
            termlog = root / f"c.{payload['name']}.{payload['attempt']}.termlog"
            termlog.touch(mode=0o600)
            termination = (termlog, str(payload["termination_message_path"]))
        # bwrap ignores SIGTERM (so a TERM to the process group reaches only the command, which
        # gets the default disposition back), as the process runtime's shim does with -I / -E
        env_tool = shutil.which("env") or "/usr/bin/env"  # coreutils (>= 8.31), not the image's
        argv = bwrap_argv(mounts, argv, [env_tool, "--default-signal=TERM"], workdir, termination, bwrap=bwrap,
                          capabilities=payload.get("capabilities"))
        argv = [env_tool, "--ignore-signal=TERM", argv[0], "--die-with-parent", *argv[1:]]
    else:
        kwargs["cwd"] = workdir or None
        if payload.get("run_as_user") is not None:
            kwargs["user"] = payload["run_as_user"]
        if payload.get("run_as_group") is not None:
            kwargs["group"] = payload["run_as_group"]
    return argv, kwargs, termlog


def join_cgroups(procs: list[Path], argv: list[str]) -> list[str]:
    """``argv`` behind a ``sh`` that moves itself into the cgroups, then execs it (same pid), so
    the command's first allocation is already charged to its memory cgroup."""
    joins = " ".join(shlex.quote(str(p)) for p in procs)
    return ["/bin/sh", "-c", f'for p in {joins}; do echo $$ > "$p" || exit 125; done; exec "$@"', "sh", *argv]


def session_rss(sid: int) -> int:
    """Resident bytes of every process in session ``sid`` (the container's tree: it starts a
    session of its own). What the RSS watcher compares with the memory limit where the Ray
    node has no writable memory cgroup."""
    total = 0
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 22 and int(fields[3]) == sid:  # field 6 (session) and 24 (rss, pages)
            total += int(fields[21]) * page
    return total


class _Container:
    """One attempt as the supervisor holds it: its process, the CRI bytes not yet taken by a
    driver (``data``, starting at stream offset ``base``) and, at the end, its exit."""

    def __init__(self, cid: str, pod_uid: str, cgroup: str) -> None:
        self.cid = cid
        self.pod_uid = pod_uid
        self.cgroup = cgroup  # the container's name in joblet-ray cgroups, "" when it has none
        self.proc: subprocess.Popen[bytes] | None = None
        self.data = bytearray()
        self.base = 0
        self.exit: dict[str, Any] | None = None
        self.killed = False
        self.oom = False


class Supervisor:
    """The containers of one Ray node, in a detached actor (``lifetime="detached"``, namespace
    ``joblet``, one per node: :func:`supervisor_name`) so that they outlive the joblet that
    started them: a restarted joblet finds them here, takes their logs from the offset it had
    written and their exit, and never runs an attempt twice.

    A threaded actor: ``poll`` blocks (on a condition) until anything changed since the
    caller's ``generation``, so one outstanding call per joblet and node carries the logs and
    exits of all its containers. Bytes a driver has written are dropped when it polls with the
    next offset; an attempt is forgotten when the driver says it recorded the exit."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.containers: dict[str, _Container] = {}
        self.generation = 0
        self.cgroups = detect(prefix=CGROUP_PREFIX)

    def _changed(self) -> None:  # with self.cond held
        self.generation += 1
        self.cond.notify_all()

    def start(self, payload: dict[str, Any]) -> int | None:
        """Start the attempt once (a second call is a no-op); its pid, None if it did not start.
        ``payload["notify"]``: the driver learns the start from :meth:`poll` (a hold task called
        this, not the driver), so the start wakes the polls."""
        cid = str(payload["cid"])
        limit = payload.get("memory_limit")
        with self.cond:
            known = self.containers.get(cid)
            if known is not None:
                return known.proc.pid if known.proc is not None else None
            c = _Container(cid, str(payload["pod_uid"]),
                           f"{payload['name']}.{payload['attempt']}" if limit and self.cgroups.available else "")
            self.containers[cid] = c
        root = pod_root(c.pod_uid)
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        argv0 = str((payload["argv"] or [""])[0])
        workdir = payload.get("working_dir")
        try:
            argv, kwargs, termlog = command(payload, root)
            if c.cgroup:
                if "/" not in argv0 and shutil.which(argv0, path=payload["env"].get("PATH", os.defpath)) is None:
                    raise FileNotFoundError(errno.ENOENT, "executable file not found", argv0)
                argv = join_cgroups(self.cgroups.create(c.pod_uid, c.cgroup, Limits(memory_bytes=int(limit or 0))), argv)
            proc = subprocess.Popen(argv, env=payload["env"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, start_new_session=True, **kwargs)
        except Exception as exc:  # OSError: not found, not executable, bad workingDir
            if c.cgroup:
                self.cgroups.remove(c.pod_uid, c.cgroup)
            message = start_error_message(argv0, exc, workdir) if isinstance(exc, OSError) else \
                f"{type(exc).__name__}: {exc}"
            self._finish(c, {"exit": 128, "reason": "StartError", "signal": None, "message": message})
            return None
        with self.cond:
            c.proc = proc
            killed = c.killed
            if payload.get("notify"):
                self._changed()
            else:  # the driver has the reply; a poll waiting for this start (``starting``) still wakes
                self.cond.notify_all()
        threading.Thread(target=self._run, args=(c, proc, termlog, limit), daemon=True, name=cid).start()
        if killed:
            self._kill(c, proc, 0)
        return proc.pid

    def _run(self, c: _Container, proc: subprocess.Popen[bytes], termlog: Path | None, limit: int | None) -> None:
        if limit and not c.cgroup:
            threading.Thread(target=self._watch_rss, args=(c, proc, int(limit)), daemon=True).start()
        for item in _pump(proc, RealClock()):
            with self.cond:
                c.data += item["log"]
                if len(c.data) > MAX_UNREAD_BYTES:  # drop whole CRI lines, the oldest
                    cut = (c.data.find(b"\n", len(c.data) - MAX_UNREAD_BYTES) + 1) or len(c.data)
                    del c.data[:cut]
                    c.base += cut
                self._changed()
        code = proc.wait()
        message = ""
        if termlog is not None:
            with contextlib.suppress(OSError):
                message = termlog.read_bytes()[:MAX_TERMINATION_MESSAGE_BYTES].decode(errors="replace")
                termlog.unlink()
        if c.cgroup:
            c.oom = c.oom or self.cgroups.oom_kills(c.pod_uid, c.cgroup) > 0
            self.cgroups.sweep(c.pod_uid, c.cgroup)
            self.cgroups.remove(c.pod_uid, c.cgroup)
        sig = -code if code < 0 else None
        exit_code = 128 + sig if sig is not None else code
        reason = "OOMKilled" if c.oom else "Completed" if exit_code == 0 else "Error"
        self._finish(c, {"exit": exit_code, "signal": sig, "reason": reason, "message": message})

    def _watch_rss(self, c: _Container, proc: subprocess.Popen[bytes], limit: int) -> None:
        """Without a memory cgroup: SIGKILL the container's session when its RSS passes the limit."""
        while proc.poll() is None:
            if session_rss(proc.pid) > limit:
                c.oom = True
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                return
            _wait_exit(proc.pid, RSS_POLL_SECONDS)

    def _finish(self, c: _Container, exit_: dict[str, Any]) -> None:
        with self.cond:
            c.exit = exit_
            self._changed()

    def poll(self, offsets: dict[str, int], generation: int, timeout: float,
             done: list[str], starting: list[str]) -> dict[str, Any]:
        """Wait (up to ``timeout``) until something changed after ``generation``, one of the
        attempts in ``offsets`` has output or an exit the caller has not taken (:func:`untaken`;
        the generation alone misses an attempt that changed while the caller's previous poll did
        not ask about it yet), or one of the attempts in ``starting`` (the caller waits for their
        start) started or ended; then, for
        each container in ``offsets`` (cid → bytes of its log the caller has), the bytes after that
        offset (``log``; ``end``: the offset after them, which the caller asks from next: bytes
        dropped past ``MAX_UNREAD_BYTES`` are skipped), ``started`` (its pid) once its process
        exists if it is in ``starting``, and its exit once it ended. ``done``: attempts whose exit
        the caller recorded."""
        awaited = set(starting)

        def ready() -> bool:
            if self.generation != generation:
                return True
            for cid, offset in offsets.items():
                c = self.containers.get(cid)
                if c is not None and untaken(offset, c.base, len(c.data), c.exit is not None):
                    return True
            for cid in awaited:
                c = self.containers.get(cid)
                if c is not None and (c.proc is not None or c.exit is not None):
                    return True
            return False

        with self.cond:
            for cid in done:
                c = self.containers.get(cid)
                if c is not None and c.exit is not None:
                    del self.containers[cid]
            self.cond.wait_for(ready, timeout)
            changes: dict[str, dict[str, Any]] = {}
            for cid, offset in offsets.items():
                c = self.containers.get(cid)
                if c is None:
                    continue
                cut = min(max(offset - c.base, 0), len(c.data))
                del c.data[:cut]
                c.base += cut
                entry: dict[str, Any] = {}
                if c.data[max(offset - c.base, 0):]:
                    entry["log"] = bytes(c.data[max(offset - c.base, 0):])
                    entry["end"] = c.base + len(c.data)  # the stream offset after it
                if cid in awaited and c.proc is not None:
                    entry["started"] = c.proc.pid
                if c.exit is not None:
                    entry["exit"] = c.exit
                if entry:
                    changes[cid] = entry
            return {"generation": self.generation, "changes": changes}

    def known(self, cids: list[str]) -> list[str]:
        """Which of these attempts this supervisor holds (running, or ended and not yet recorded)."""
        with self.cond:
            return [cid for cid in cids if cid in self.containers]

    def pid(self, cid: str) -> int | None:
        with self.cond:
            c = self.containers.get(cid)
            return c.proc.pid if c is not None and c.proc is not None and c.exit is None else None

    def kill(self, cid: str, pod_uid: str, grace_seconds: float) -> bool:
        """SIGTERM the attempt's tree, SIGKILL after the grace period. An attempt not started yet
        never starts: it ends at once, as killed (then the answer is True)."""
        with self.cond:
            c = self.containers.get(cid)
            if c is None:
                c = self.containers[cid] = _Container(cid, pod_uid, "")
                c.killed = True
                c.exit = {"exit": 137, "signal": 9, "reason": "Error", "message": ""}
                self._changed()
                return True
            c.killed = True
            proc = c.proc
        if proc is not None and c.exit is None:
            self._kill(c, proc, grace_seconds)
        return False

    def _kill(self, c: _Container, proc: subprocess.Popen[bytes], grace_seconds: float) -> None:
        kill_tree(proc.pid, grace_seconds)
        if c.cgroup:
            self.cgroups.sweep(c.pod_uid, c.cgroup)

    def forget_pod(self, pod_uid: str) -> None:
        """Kill what is left of the pod (SIGKILL), forget its attempts, remove its directory."""
        with self.cond:
            mine = [c for c in self.containers.values() if c.pod_uid == pod_uid]
        for c in mine:
            if c.proc is not None and c.exit is None:
                self._kill(c, c.proc, 0)
        with self.cond:
            for c in mine:
                self.containers.pop(c.cid, None)
        forget_pod(pod_uid)

    def pods(self) -> list[str]:
        with self.cond:
            return sorted({c.pod_uid for c in self.containers.values()})


def hold(name: str, payload: dict[str, Any] | None, cid: str) -> None:
    """Ray task that holds the container's Ray resources on its node while it runs: it has the
    node's supervisor start the attempt (``payload``; None: only wait, after a joblet restart)
    and waits for the process to exit (on a pidfd, which does not give the resources back as a
    blocking ``ray.get`` would)."""
    import ray  # on the Ray worker

    supervisor = _SUPERVISORS.get(name)
    if supervisor is None:
        supervisor = _SUPERVISORS[name] = ray.get_actor(name, namespace=NAMESPACE)
    pid = ray.get(supervisor.start.remote(payload) if payload is not None else supervisor.pid.remote(cid))
    if pid is not None:
        _wait_exit(pid, None)


def _wait_exit(pid: int, timeout: float | None) -> bool:
    """Until process ``pid`` exits or ``timeout`` passes; whether it exited."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        with selectors.DefaultSelector() as poller:
            poller.register(fd, selectors.EVENT_READ)
            return bool(poller.select(timeout))
    finally:
        os.close(fd)


def _pump(proc: subprocess.Popen[bytes], clock: RealClock) -> Iterator[dict[str, Any]]:
    """Read both pipes until EOF; yield CRI-formatted batches."""
    sel = selectors.DefaultSelector()
    assert proc.stdout is not None and proc.stderr is not None
    partial: dict[int, bytes] = {}
    for pipe, name in ((proc.stdout, b"stdout"), (proc.stderr, b"stderr")):
        os.set_blocking(pipe.fileno(), False)
        sel.register(pipe.fileno(), selectors.EVENT_READ, name)
        partial[pipe.fileno()] = b""
    batch: list[bytes] = []
    size = 0
    last = clock.monotonic()
    while sel.get_map():
        for key, _ in sel.select(FLUSH_SECONDS):
            fd = key.fd
            try:
                data = os.read(fd, READ_BLOCK)
            except BlockingIOError:
                continue
            stamp = rfc3339_micro(clock.now()).encode()
            lines, partial[fd] = cri_chunk(stamp, key.data, partial[fd] + data, final=not data)
            if not data:
                sel.unregister(fd)
            if lines:
                batch.append(lines)
                size += len(lines)
        now = clock.monotonic()
        if batch and (size >= FLUSH_BYTES or now - last >= FLUSH_SECONDS):
            yield {"log": b"".join(batch)}
            batch, size, last = [], 0, now
    sel.close()
    if batch:
        yield {"log": b"".join(batch)}


def kill_tree(pid: int, grace_seconds: float) -> bool:
    """SIGTERM the container's process group, SIGKILL after the grace period (waits on a pidfd,
    not a sleep). Returns whether SIGKILL was needed."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    if _wait_exit(pid, max(grace_seconds, 0.0)):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    return True


def forget_pod(pod_uid: str) -> None:
    """Remove the pod's directory on the Ray node."""
    shutil.rmtree(pod_root(pod_uid), ignore_errors=True)
