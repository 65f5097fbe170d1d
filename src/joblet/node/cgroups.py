"""Per-container cgroup v1 directories: resource limits, OOM detection, kill-by-sweep.

Why: a process group does not contain a job that calls ``setsid`` (measured in
research/runtime-experiments.md §5), and only the memory cgroup can tell an OOM kill from
any other SIGKILL. On this host cgroup v2 has no controllers, so joblet uses the v1
``memory``, ``cpu``, ``pids`` and ``freezer`` hierarchies, one directory per container attempt:
``/sys/fs/cgroup/<controller>/joblet/<pod-uid>.<container>``. The shim joins them before
exec; the runtime reads ``memory.oom_control`` before removing them.

When the hierarchies are not writable (non-root, no cgroupfs) :func:`detect` returns a
manager with ``available = False``: the runtime then falls back to process groups and
RLIMIT_AS (an allocation failure then looks like a normal error, not OOMKilled).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from dataclasses import dataclass
from pathlib import Path

from joblet.clock import Clock, RealClock

log = logging.getLogger(__name__)

CONTROLLERS = ("memory", "cpu", "pids", "freezer")
CFS_PERIOD_US = 100_000


@dataclass(frozen=True)
class Limits:
    """What the runtime enforces for one container. ``None`` means unlimited."""

    memory_bytes: int | None = None
    cpu_millis: int | None = None
    pids: int | None = None


def cfs_quota_us(cpu_millis: int) -> int:
    """cpu limit in millicores → ``cpu.cfs_quota_us`` for a 100 ms period (min 1 ms, as the kernel)."""
    return max(1000, cpu_millis * CFS_PERIOD_US // 1000)


def parse_oom_kills(oom_control: str) -> int:
    """The ``oom_kill`` counter of a v1 ``memory.oom_control`` file (0 when absent)."""
    for line in oom_control.splitlines():
        key, _, value = line.partition(" ")
        if key == "oom_kill":
            return int(value.strip() or 0)
    return 0


class Cgroups:
    """Creates, limits, sweeps and removes joblet's cgroup directories.

    Layout: one flat directory per container attempt, ``<controller>/joblet/<pod-uid>.<name>``,
    in ``pids`` always (tracking and kill) and in ``memory`` / ``cpu`` only when the container
    has that limit. Every cgroup a process joins is a write to ``cgroup.procs``, which takes
    the kernel's cgroup rwsem and stalls forks system-wide: measured at 1,000 pods, the
    freezer hierarchy alone cost 0.7 s. So the sweep kills in a loop over the ``pids``
    cgroup instead of freezing; each pass kills every member, a killed process forks no
    more, and ``pids.max`` bounds a fork bomb.
    """

    TRACKING = ("pids",)

    def __init__(self, root: Path = Path("/sys/fs/cgroup"), prefix: str = "joblet",
                 available: bool = True, clock: Clock | None = None) -> None:
        self.root = root
        self.clock: Clock = clock or RealClock()  # the sweep's deadline and pauses
        self.prefix = prefix
        self.available = available
        # Tracking cgroups are pooled: under fork load a cgroup mkdir costs ~600 µs here (it
        # takes the kernel's cgroup locks), so an empty one is reused rather than removed.
        # The pool is per process (``pool-<pid>``) so that concurrent agents never share a slot.
        self._pool = self.base("pids") / f"pool-{os.getpid()}"
        self._free: list[Path] = []
        self._slots: dict[tuple[str, str], Path] = {}
        self._limited: set[Path] = set()
        self._next_slot = 0

    # -- paths -------------------------------------------------------------------------
    def base(self, controller: str) -> Path:
        return self.root / controller / self.prefix

    def container_dir(self, controller: str, pod_uid: str, container: str) -> Path:
        return self.base(controller) / f"{pod_uid}.{container}"

    def _pod_dirs(self, controller: str, pod_uid: str) -> list[Path]:
        prefix = pod_uid + "."
        return [d for d in _subdirs(self.base(controller)) if d.name.startswith(prefix)]

    def _dirs(self, controller: str, pod_uid: str, container: str | None) -> list[Path]:
        if controller == "pids":
            if container is not None:
                slot = self._slots.get((pod_uid, container))
                return [slot] if slot is not None else [self.container_dir(controller, pod_uid, container)]
            slots = [d for (uid, _), d in self._slots.items() if uid == pod_uid]
            return slots + self._pod_dirs(controller, pod_uid)
        if container is not None:
            return [self.container_dir(controller, pod_uid, container)]
        return self._pod_dirs(controller, pod_uid)

    # -- the tracking pool ---------------------------------------------------------------
    def _take_slot(self) -> Path:
        while self._free:
            slot = self._free.pop()
            if slot.is_dir():  # another process's prune may have removed it
                return slot
        self._pool.mkdir(exist_ok=True)
        slot = self._pool / f"slot-{self._next_slot}"
        self._next_slot += 1
        slot.mkdir(exist_ok=True)
        return slot

    def slot_of(self, pod_uid: str, container: str) -> Path | None:
        """The tracking cgroup of a container (recorded so a restarted agent can sweep it)."""
        return self._slots.get((pod_uid, container))

    def adopt(self, pod_uid: str, container: str, tracking: str) -> None:
        """Remember the tracking cgroup an earlier agent recorded for a still-running container.

        A slot of this process's own pool is never adopted: this process already knows whom
        it tracks, and taking it back would double-book it."""
        slot = Path(tracking)
        if slot.parent != self._pool:
            self._slots.setdefault((pod_uid, container), slot)

    def _release(self, pod_uid: str, container: str) -> None:
        slot = self._slots.pop((pod_uid, container), None)
        if slot is None:
            return
        if slot.parent == self._pool and not _procs(slot):
            if slot in self._limited:
                with contextlib.suppress(OSError):
                    _write(slot / "pids.max", "max")
                self._limited.discard(slot)
            self._free.append(slot)
            return
        with contextlib.suppress(OSError):
            slot.rmdir()  # an adopted slot of an earlier agent's pool

    def close(self) -> None:
        """Remove this process's idle pool slots (busy ones stay for a successor to sweep)."""
        for slot in self._free:
            with contextlib.suppress(OSError):
                slot.rmdir()
        self._free.clear()
        with contextlib.suppress(OSError):
            self._pool.rmdir()

    # -- lifecycle ---------------------------------------------------------------------
    def create(self, pod_uid: str, container: str, limits: Limits) -> list[Path]:
        """Make the container's directories, apply limits; returns the cgroup.procs files to join."""
        if not self.available:
            return []
        slot = self._take_slot()
        self._slots[(pod_uid, container)] = slot
        procs: list[Path] = [slot / "cgroup.procs"]
        controllers: list[str] = []
        if limits.memory_bytes is not None:
            controllers.append("memory")
        if limits.cpu_millis is not None:
            controllers.append("cpu")
        for controller in controllers:
            path = self.container_dir(controller, pod_uid, container)
            path.mkdir(exist_ok=True)
            procs.append(path / "cgroup.procs")
        if limits.memory_bytes is not None:
            # memsw must stay >= the memory limit; it may be absent (no swap accounting).
            _write(self.container_dir("memory", pod_uid, container) / "memory.limit_in_bytes",
                   str(limits.memory_bytes))
        if limits.cpu_millis is not None:
            cpu = self.container_dir("cpu", pod_uid, container)
            _write(cpu / "cpu.cfs_period_us", str(CFS_PERIOD_US))
            _write(cpu / "cpu.cfs_quota_us", str(cfs_quota_us(limits.cpu_millis)))
        if limits.pids is not None:
            _write(slot / "pids.max", str(limits.pids))
            self._limited.add(slot)
        return procs

    def oom_kills(self, pod_uid: str, container: str) -> int:
        if not self.available:
            return 0
        try:
            text = (self.container_dir("memory", pod_uid, container) / "memory.oom_control").read_text()
        except OSError:
            return 0  # no memory limit, no memory cgroup
        return parse_oom_kills(text)

    def pids(self, pod_uid: str, container: str | None = None) -> set[int]:
        """Every pid in the pod's (or one container's) cgroups. Every process joins the
        ``pids`` hierarchy, so reading it alone is enough."""
        found: set[int] = set()
        if not self.available:
            return found
        for d in self._dirs("pids", pod_uid, container):
            found.update(_procs(d))
        return found

    def sweep(self, pod_uid: str, container: str | None = None, deadline_seconds: float = 5.0) -> int:
        """SIGKILL every process in the cgroups until they are empty; returns how many were killed.

        Freezes first where a freezer cgroup exists, then thaws so the SIGKILLs are delivered.
        An already empty cgroup (the usual case: the shim kills what is left when the main
        process exits) costs one read.
        """
        if not self.available:
            return 0
        if not self.pids(pod_uid, container) - {os.getpid()}:
            return 0
        freezer_dirs = self._dirs("freezer", pod_uid, container)
        for d in freezer_dirs:
            with contextlib.suppress(OSError):
                _write(d / "freezer.state", "FROZEN")
        killed: set[int] = set()
        end = self.clock.monotonic() + deadline_seconds
        try:
            while True:
                pids = self.pids(pod_uid, container) - {os.getpid()}
                if not pids:
                    return len(killed)
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, signal.SIGKILL)
                    killed.add(pid)
                for d in freezer_dirs:
                    with contextlib.suppress(OSError):
                        _write(d / "freezer.state", "THAWED")
                if self.clock.monotonic() > end:
                    log.warning("cgroup sweep of pod %s left %d processes", pod_uid, len(pids))
                    return len(killed)
                self.clock.sleep(0.002)  # dying processes leave cgroup.procs within microseconds
        finally:
            for d in freezer_dirs:
                with contextlib.suppress(OSError):
                    _write(d / "freezer.state", "THAWED")

    def remove(self, pod_uid: str, container: str | None = None) -> None:
        """rmdir the container's (or the whole pod's) directories; empty cgroups only."""
        if not self.available:
            return
        keys = [(pod_uid, container)] if container is not None else [k for k in self._slots if k[0] == pod_uid]
        for uid, name in keys:
            self._release(uid, name)
        for controller in CONTROLLERS:
            for d in (self._pod_dirs(controller, pod_uid) if container is None
                      else [self.container_dir(controller, pod_uid, container)]):
                try:
                    d.rmdir()
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    log.debug("cannot remove cgroup %s: %s", d, exc)

    def prune_empty(self) -> int:
        """Remove every *empty* joblet cgroup directory (left by agents that died before cleaning
        up). rmdir fails on a cgroup with processes or children, so this never touches a live
        container, whichever data dir it belongs to. Returns how many were removed."""
        removed = 0
        if not self.available:
            return removed
        for controller in CONTROLLERS:
            for d in _subdirs(self.base(controller)):
                if d.name.startswith("pool-") and _alive(d.name[len("pool-"):]):
                    continue  # a running agent's pool: its idle slots are about to be reused
                for child in _subdirs(d):  # pool slots, and the older <pod-uid>/<container> layout
                    with contextlib.suppress(OSError):
                        child.rmdir()
                        removed += 1
                try:
                    d.rmdir()
                    removed += 1
                except OSError:
                    pass
        return removed


def detect(root: Path = Path("/sys/fs/cgroup"), prefix: str = "joblet") -> Cgroups:
    """A :class:`Cgroups` whose ``available`` says whether every controller is writable here."""
    try:
        for controller in CONTROLLERS:
            base = root / controller
            if not (base / "cgroup.procs").exists():
                raise OSError(f"no v1 {controller} hierarchy at {base}")
            (base / prefix).mkdir(exist_ok=True)
            if not os.access(base / prefix / "cgroup.procs", os.W_OK):
                raise OSError(f"{base / prefix} is not writable")
    except OSError as exc:
        log.warning("cgroups not usable (%s): falling back to process groups and RLIMIT_AS", exc)
        return Cgroups(root, prefix, available=False)
    return Cgroups(root, prefix, available=True)


def _procs(cgroup: Path) -> set[int]:
    try:
        with open(cgroup / "cgroup.procs") as f:
            return {int(p) for p in f.read().split()}
    except OSError:
        return set()


def _alive(pid_text: str) -> bool:
    return pid_text.isdigit() and os.path.exists(f"/proc/{pid_text}")


def _subdirs(path: Path) -> list[Path]:
    try:
        return [p for p in path.iterdir() if p.is_dir()]
    except OSError:
        return []


def _write(path: Path, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)
