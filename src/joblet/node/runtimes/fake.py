"""An in-memory runtime: the node agent runs pods through it without starting a process.

Why: the agent's decisions (init order, restarts, deletion, status) deserve tests that take
milliseconds, and the runtime contract (tests/contract/test_runtime_contract.py) needs a
reference every real runtime is compared with. This runtime honours that contract for a tiny
subset of ``sh -c``: statements separated by ``;`` or newlines, each one of ``echo [args]``
(``>&2`` sends it to stderr), ``printf TEXT`` (no newline: a partial CRI line), ``exit N``,
``true``, ``false``, ``:`` and ``sleep N``. ``$NAME`` and ``${NAME}`` expand from the env.
A fake has no time of its own: ``sleep`` blocks until the attempt is killed, and everything
before it has already happened. An unknown command ends the script with exit 127 and
``sh: NAME: not found`` on stderr, as ``sh`` does; an argv that is not ``sh -c`` and names an
unknown command fails to start (``StartError``, exit 128, the kubelet's message).

State lives in a :class:`FakeHost`; a second ``FakeRuntime`` on the same host is a restarted
agent: it recovers every attempt and can wait for or kill the running ones.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
from dataclasses import dataclass, field
from datetime import datetime

from joblet.clock import Clock
from joblet.node.runtimes.base import ContainerExit, ContainerRef, ContainerSpec, RecoveredContainer

_VAR = re.compile(r"\$\{(\w+)\}|\$(\w+)")


@dataclass
class _Attempt:
    spec: ContainerSpec
    started_at: datetime
    exit: ContainerExit | None = None
    ended: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class FakeHost:
    """What survives an agent restart: every attempt of every pod."""

    attempts: dict[ContainerRef, _Attempt] = field(default_factory=dict)


class _Blocked(Exception):
    """The script reached ``sleep``: it runs until killed."""


class _Exited(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


class FakeRuntime:
    def __init__(self, clock: Clock, host: FakeHost | None = None) -> None:
        self.clock = clock
        self.host = host if host is not None else FakeHost()

    async def start(self, spec: ContainerSpec) -> datetime:
        now = self.clock.now()
        attempt = _Attempt(spec, now)
        self.host.attempts[spec.ref] = attempt
        spec.log_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(os.open(spec.log_path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
        argv = spec.argv
        if len(argv) >= 3 and argv[0] in ("sh", "/bin/sh") and argv[1] == "-c":
            statements = [s for line in argv[2].splitlines() for s in line.split(";")]
        elif argv and argv[0] in _COMMANDS:
            statements = [shlex.join(argv)]
        else:
            name = argv[0] if argv else ""
            self._end(attempt, ContainerExit(128, "StartError", now,
                                             message=f'exec: "{name}": executable file not found in $PATH'))
            return now
        try:
            for statement in statements:
                self._run(attempt, statement)
        except _Blocked:
            return now
        except _Exited as e:
            self._end(attempt, _exit(e.code, self.clock.now()))
            return now
        self._end(attempt, _exit(0, self.clock.now()))
        return now

    async def wait(self, ref: ContainerRef) -> ContainerExit:
        attempt = self.host.attempts[ref]
        await attempt.ended.wait()
        assert attempt.exit is not None
        return attempt.exit

    async def kill(self, ref: ContainerRef, grace_seconds: float) -> None:
        attempt = self.host.attempts.get(ref)
        if attempt is not None and attempt.exit is None:  # sh without a trap dies of SIGTERM
            self._end(attempt, ContainerExit(143, "Error", self.clock.now(), signal=15))

    def recover(self, pod_uid: str) -> list[RecoveredContainer]:
        found = [RecoveredContainer(ref, a.started_at, "running" if a.exit is None else "exited", a.exit)
                 for ref, a in self.host.attempts.items() if ref.pod_uid == pod_uid]
        return sorted(found, key=lambda r: (r.ref.name, r.ref.attempt))

    def pods(self) -> list[str]:
        return sorted({ref.pod_uid for ref in self.host.attempts})

    async def remove_pod(self, pod_uid: str) -> None:
        for ref in [ref for ref in self.host.attempts if ref.pod_uid == pod_uid]:
            await self.kill(ref, 0)
            del self.host.attempts[ref]

    def close(self) -> None:
        """Nothing to give back: the host keeps the attempts for the next runtime object."""

    # -- the sh subset ---------------------------------------------------------------------
    def _run(self, attempt: _Attempt, statement: str) -> None:
        env = attempt.spec.env
        words = shlex.split(_VAR.sub(lambda m: env.get(m.group(1) or m.group(2), ""), statement))
        if not words:
            return
        stream = "stdout"
        if words[-1] == ">&2":
            stream, words = "stderr", words[:-1]
        command, args = words[0], words[1:]
        if command == "echo":
            self._log(attempt, stream, " ".join(args), full=True)
        elif command == "printf":
            self._log(attempt, stream, " ".join(args), full=False)
        elif command in ("true", ":"):
            pass
        elif command == "false":
            raise _Exited(1)
        elif command == "exit":
            raise _Exited(int(args[0]) if args else 0)
        elif command == "sleep":
            raise _Blocked
        else:
            self._log(attempt, "stderr", f"sh: {command}: not found", full=True)
            raise _Exited(127)

    def _log(self, attempt: _Attempt, stream: str, text: str, full: bool) -> None:
        stamp = self.clock.now().strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"
        fd = os.open(attempt.spec.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, f"{stamp} {stream} {'F' if full else 'P'} {text}\n".encode())
        finally:
            os.close(fd)

    @staticmethod
    def _end(attempt: _Attempt, result: ContainerExit) -> None:
        attempt.exit = result
        done = attempt.spec.log_path.with_suffix(".done")
        os.close(os.open(done, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
        attempt.ended.set()


_COMMANDS = frozenset({"echo", "printf", "true", "false", "sleep"})  # executables, not builtins


def _exit(code: int, now: datetime) -> ContainerExit:
    return ContainerExit(code, "Completed" if code == 0 else "Error", now)
