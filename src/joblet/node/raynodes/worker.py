"""What runs on a Ray worker for one container attempt (and for its kill).

Why separate: this module is shipped to the Ray cluster (``runtime_env.py_modules``) and
imported there, so it only uses the standard library, :mod:`joblet.clock` and
:mod:`joblet.node.sandbox`. The container is a real subprocess in its own session (under
bubblewrap when the Ray node has it); its output is turned into CRI log lines one chunk at a
time (one timestamp per chunk, lines prefixed with one ``bytes.replace``) and handed back to
the driver as items of a Ray streaming generator, batched every ``FLUSH_SECONDS`` or
``FLUSH_BYTES``, so ``kubectl logs -f`` follows a running pod. The last item is the exit.
"""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from joblet.clock import RealClock, rfc3339_micro
from joblet.node.sandbox import bwrap_argv
from joblet.node.volumes import Mount

FLUSH_SECONDS = 0.1
FLUSH_BYTES = 256 * 1024
MAX_PARTIAL = 16 * 1024  # a line longer than this is written as P(artial) pieces, as the kubelet does
READ_BLOCK = 64 * 1024
MAX_TERMINATION_MESSAGE_BYTES = 4096


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


def run_container(payload: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Ray generator task: start the container, yield ``{"pid"}``, ``{"log"}``\\*, ``{"exit"}``."""
    clock = RealClock()
    root = pod_root(payload["pod_uid"])
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
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
    try:
        proc = subprocess.Popen(argv, env=payload["env"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True, **kwargs)
    except OSError as exc:  # not found, not executable, bad workingDir
        what = argv[0] if not isinstance(exc, NotADirectoryError) else workdir
        yield {"exit": 128, "reason": "StartError",
               "message": f'exec: "{what}": {exc.strerror or exc}', "signal": None}
        return
    yield {"pid": proc.pid}
    yield from _pump(proc, clock)
    code = proc.wait()
    message = ""
    if termlog is not None:
        try:
            message = termlog.read_bytes()[:MAX_TERMINATION_MESSAGE_BYTES].decode(errors="replace")
        except OSError:
            pass
    sig = -code if code < 0 else None
    exit_code = 128 + sig if sig is not None else code
    yield {"exit": exit_code, "signal": sig, "reason": "Completed" if exit_code == 0 else "Error",
           "message": message}


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
    """SIGTERM the container's process group, SIGKILL after the grace period (Ray task on the
    container's node). Waits on a pidfd, not a sleep. Returns whether SIGKILL was needed."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return False
    try:
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            return False
        poller = selectors.DefaultSelector()
        poller.register(fd, selectors.EVENT_READ)
        exited = bool(poller.select(max(grace_seconds, 0.0)))
        poller.close()
        if not exited:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                return False
        return not exited
    finally:
        os.close(fd)


def forget_pod(pod_uid: str) -> None:
    """Remove the pod's directory on the Ray node."""
    shutil.rmtree(pod_root(pod_uid), ignore_errors=True)
