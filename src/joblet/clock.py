"""The only place joblet reads wall time.

Controllers take ``now`` from a :class:`Clock`; tests pass a :class:`FakeClock` and move
time by hand instead of sleeping. Also holds the RFC 3339 helpers Kubernetes uses on the wire.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Current time, timezone-aware UTC."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards (for durations and timers)."""

    def sleep(self, seconds: float) -> None:
        """Block this thread for ``seconds`` (synchronous code only: a coroutine awaits)."""


class RealClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(max(seconds, 0.0))


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2024, 1, 1, tzinfo=UTC)
        self._mono = 1000.0

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def sleep(self, seconds: float) -> None:
        """Returns at once, with fake time ``seconds`` later (a polling loop ends by its deadline)."""
        self.advance(max(seconds, 0.0))

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)
        self._mono += seconds

    def set(self, when: datetime) -> None:
        self._mono += (when - self._now).total_seconds()
        self._now = when


def rfc3339(dt: datetime) -> str:
    """Kubernetes' wire format for metav1.Time: second precision, UTC, trailing Z."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_micro(dt: datetime) -> str:
    """metav1.MicroTime (used by events and leases)."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: str) -> datetime:
    """Parse an RFC 3339 timestamp as Kubernetes writes it (Z or offset, optional fraction)."""
    text = value.strip()
    if text.endswith("Z") or text.endswith("z"):
        text = text[:-1] + "+00:00"
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def parse_time_or_none(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_time(value)
    except (ValueError, OverflowError):
        return None


_MICRO_TIME_FIELDS = frozenset({"eventTime", "renewTime", "acquireTime"})


def _is_time_field(key: str) -> bool:
    return key.endswith(("Time", "Timestamp")) or key in ("startedAt", "finishedAt")


def _canonical(key: str, value: str) -> str:
    try:
        parsed = parse_time(value)
    except (ValueError, OverflowError):
        return value  # validation reports it
    return rfc3339_micro(parsed) if key in _MICRO_TIME_FIELDS else rfc3339(parsed)


class TooDeep(ValueError):
    """A JSON value nested deeper than the caller allows."""


def canonicalize_times(value: object, key: str = "", max_depth: int | None = None) -> object:
    """Rewrite timestamps the way the apiserver's decoding into metav1.Time does: any offset
    becomes UTC ``Z``, second precision (microseconds for MicroTime fields). Clients such as
    the Python one send ``+00:00``; stored objects must compare equal to what we wrote.

    Iterative, so no nesting depth can exhaust the Python stack; with ``max_depth`` a value
    whose containers nest deeper (the top-level value is depth 1) raises :class:`TooDeep`.
    """
    stack: list[tuple[object, str, int]] = [(value, key, 1)]
    while stack:
        node, k, depth = stack.pop()
        if max_depth is not None and depth > max_depth:
            raise TooDeep(f"nesting depth exceeds {max_depth}")
        if isinstance(node, dict):
            for ck, cv in node.items():
                if isinstance(cv, str):
                    if _is_time_field(ck):
                        node[ck] = _canonical(ck, cv)
                elif isinstance(cv, dict | list):
                    stack.append((cv, ck, depth + 1))
        elif isinstance(node, list):
            timed = _is_time_field(k)
            for i, item in enumerate(node):
                if isinstance(item, dict | list):
                    stack.append((item, k, depth + 1))
                elif timed and isinstance(item, str):
                    node[i] = _canonical(k, item)
    return value


def canonicalize_json_patch_times(ops: list[object], max_depth: int | None = None) -> None:
    """The same for the values of JSON patch operations whose path ends in a time field."""
    for op in ops:
        if not isinstance(op, dict):
            continue
        field = str(op.get("path", "")).rsplit("/", 1)[-1]
        if isinstance(op.get("value"), str) and _is_time_field(field):
            op["value"] = _canonical(field, op["value"])
        elif isinstance(op.get("value"), dict | list):
            canonicalize_times(op["value"], field, max_depth)
