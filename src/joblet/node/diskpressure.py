"""Disk pressure, as the kubelet's eviction manager handles ``nodefs.available``.

Why: a pod writing fast (its log, its emptyDir) can fill the data dir's filesystem, and the
store (SQLite) lives there too. Below the hard threshold (``--eviction-hard``, default
``nodefs.available<5%``) the Node reports ``DiskPressure=True`` (the scheduler then treats it as
the ``node.kubernetes.io/disk-pressure:NoSchedule`` taint, as upstream's TaintNodesByCondition
does, so new pods stay Pending with a ``FailedScheduling`` event), and the running pod using
the most disk is evicted: phase Failed, reason ``Evicted``, a ``DisruptionTarget`` condition
with reason ``TerminationByKubelet``, one pod per check, as upstream. When space returns the
condition goes back to False and pods schedule again.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from joblet.node.quantity import parse_quantity

DEFAULT_EVICTION_HARD = "nodefs.available<5%"
CHECK_SECONDS = 2.0
EVICTED_MESSAGE = "The node was low on resource: ephemeral-storage. Threshold quantity: {threshold}, available: {available}. "

_SPEC = re.compile(r"^(?:nodefs\.available<)?\s*([0-9.]+)\s*(%|[A-Za-z]*)$")


@dataclass(frozen=True)
class Threshold:
    """Free space below which the node is under disk pressure: a share of the filesystem or bytes."""

    text: str
    percent: float | None = None
    size: int | None = None

    def minimum(self, total: int) -> int:
        return int(total * self.percent / 100) if self.percent is not None else int(self.size or 0)


def parse_threshold(text: str) -> Threshold:
    """``nodefs.available<5%``, ``nodefs.available<500Mi``, ``5%`` or ``500Mi``."""
    match = _SPEC.match(text.strip())
    if not match:
        raise ValueError(f"eviction threshold {text!r}: expected nodefs.available<N% or nodefs.available<QUANTITY")
    number, unit = match.groups()
    if unit == "%":
        percent = float(number)
        if not 0 <= percent <= 100:
            raise ValueError(f"eviction threshold {text!r}: a percentage is between 0 and 100")
        return Threshold(text, percent=percent)
    return Threshold(text, size=int(parse_quantity(number + unit)))


@dataclass(frozen=True)
class DiskState:
    available: int
    total: int
    pressure: bool


def disk_state(path: Path, threshold: Threshold) -> DiskState:
    """Free space of the filesystem holding ``path`` (as an unprivileged writer sees it)."""
    st = os.statvfs(path)
    available, total = st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize
    return DiskState(available, total, available < threshold.minimum(total))


def usage_bytes(*roots: Path) -> int:
    """Bytes allocated under the roots (files only; symlinks not followed)."""
    total = 0
    for root in roots:
        for directory, _dirs, files in os.walk(root):
            for name in files:
                try:
                    total += os.lstat(os.path.join(directory, name)).st_blocks * 512
                except OSError:
                    continue
    return total


def condition(state: DiskState, now: str, previous: dict[str, object] | None) -> dict[str, object]:
    """The Node's ``DiskPressure`` condition, with upstream's reasons and messages."""
    status = "True" if state.pressure else "False"
    changed = previous is None or previous.get("status") != status
    return {
        "type": "DiskPressure", "status": status,
        "reason": "KubeletHasDiskPressure" if state.pressure else "KubeletHasNoDiskPressure",
        "message": "kubelet has disk pressure" if state.pressure else "kubelet has no disk pressure",
        "lastHeartbeatTime": now,
        "lastTransitionTime": now if changed else (previous or {}).get("lastTransitionTime", now),
    }

