"""The contract between the node agent and a container runtime.

Why: the agent decides *what* runs and when (init order, restarts, deadlines, deletion);
a runtime only starts one container attempt, tells when it ended and how, kills it, and
remembers enough on disk that a restarted agent can learn every outcome. Keeping the
contract this small lets the agent be tested with :class:`joblet.node.runtimes.fake.FakeRuntime`
and lets podman/ray runtimes plug in: every runtime is one row of
:data:`joblet.node.runtimes.registry.RUNTIMES`.

Exit-status vocabulary (what ``ContainerExit.reason`` takes, as the kubelet reports it):

* ``Completed`` — exit code 0.
* ``Error`` — non-zero exit, or killed by a signal (exit code 128 + signal).
* ``OOMKilled`` — the container's memory cgroup recorded an OOM kill.
* ``StartError`` — the command could not be started (not found, not executable, bad
  workingDir); exit code 128, ``message`` like ``exec: "x": executable file not found in $PATH``.
  (Kubernetes reports runc's start failure the same way.)
* ``ContainerStatusUnknown`` — the attempt was started but its supervisor vanished without
  recording a status (e.g. the machine rebooted); exit code 137, as the kubelet does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal, Protocol

from joblet.node.cgroups import Limits
from joblet.node.volumes import Mount

RecoveredState = Literal["running", "exited"]


@dataclass(frozen=True)
class ContainerRef:
    """One attempt of one container of one pod."""

    pod_uid: str
    name: str
    attempt: int

    @property
    def container_id(self) -> str:
        return f"joblet://{self.pod_uid}-{self.name}-{self.attempt}"


@dataclass(frozen=True)
class ContainerSpec:
    ref: ContainerRef
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    working_dir: str | None = None
    limits: Limits = field(default_factory=Limits)
    # private mount namespace (bubblewrap) with these binds; without it the host's tree as is
    sandbox: bool = False
    mounts: list[Mount] = field(default_factory=list)
    run_as_user: int | None = None
    run_as_group: int | None = None
    # capabilities kept in the sandbox (names without CAP_); None: the runtime default for the uid
    capabilities: tuple[str, ...] | None = None
    # in-container path of the termination message file (bound to a per-attempt host file
    # when sandboxed); ``state.terminated.message`` is read from it
    termination_message_path: str | None = None
    # terminationMessagePolicy FallbackToLogsOnError: an empty message on failure → log tail
    fallback_to_logs: bool = False
    image: str = ""  # the container's image (podman runtime; the process runtime records it only)
    # the container's resources.requests (the ray runtime asks Ray for them; others ignore them)
    requests: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ContainerExit:
    exit_code: int
    reason: str
    finished_at: datetime
    signal: int | None = None
    message: str = ""


@dataclass(frozen=True)
class RecoveredContainer:
    """What a runtime knows from disk about an attempt (after an agent restart)."""

    ref: ContainerRef
    started_at: datetime
    state: RecoveredState
    exit: ContainerExit | None = None


class Runtime(Protocol):
    async def start(self, spec: ContainerSpec) -> datetime:
        """Start the attempt; returns its start time, once its process exists (a runtime that
        queues it, as Ray does for resources, returns when it really starts: the pod stays
        ContainerCreating meanwhile; a kill meanwhile ends it). Failures to start are reported
        by wait()."""

    async def wait(self, ref: ContainerRef) -> ContainerExit:
        """Until the attempt ends (works for attempts started by an earlier agent too)."""

    async def kill(self, ref: ContainerRef, grace_seconds: float) -> None:
        """SIGTERM the container's tree, SIGKILL after the grace period, then sweep its cgroup."""

    def recover(self, pod_uid: str) -> list[RecoveredContainer]:
        """Attempts recorded on disk for this pod, sorted by (name, attempt)."""

    def pods(self) -> list[str]:
        """Pod uids with state on disk."""

    async def remove_pod(self, pod_uid: str) -> None:
        """Kill anything left and forget the pod's runtime state (cgroups, state files)."""

    def close(self) -> None:
        """Give back what this object holds (idle cgroups, worker threads); running containers
        keep running for the next runtime object in the same data dir."""
