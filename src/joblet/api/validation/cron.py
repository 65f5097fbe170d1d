"""CronJob schedules parsed exactly as robfig/cron v3 ``ParseStandard`` does.

The API server must accept and reject the same schedules Kubernetes does, with the same
error text (``spec.schedule: Invalid value: "<s>": <err>``), and croniter's grammar is not
robfig's (it takes seconds, ``L``, ``#``, and day-of-week 7). So validation uses this small
parser; :class:`CronSchedule` also exposes the parsed bit sets for anyone who wants
robfig's exact matching semantics (day-of-month/day-of-week OR rule, ``*`` handling).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

STAR_BIT = 1 << 63


class ScheduleError(ValueError):
    """``str(err)`` is robfig's error text."""


@dataclass(frozen=True)
class _Bounds:
    min: int
    max: int
    names: dict[str, int] | None = None


MINUTES = _Bounds(0, 59)
HOURS = _Bounds(0, 23)
DOM = _Bounds(1, 31)
MONTHS = _Bounds(1, 12, {m: i + 1 for i, m in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"])})
DOW = _Bounds(0, 6, {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])})

DESCRIPTORS: dict[str, str] = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}


@dataclass(frozen=True)
class CronSchedule:
    """A parsed 5-field schedule (bit sets like robfig's ``SpecSchedule``) or an ``@every``."""

    minute: int = 0
    hour: int = 0
    dom: int = 0
    month: int = 0
    dow: int = 0
    every_seconds: float | None = None
    location: str | None = None

    def matches_day(self, day: int, weekday_sunday0: int) -> bool:
        """robfig's ``dayMatches``: if either field is ``*`` both must match, else either."""
        dom_match = bool(self.dom & (1 << day))
        dow_match = bool(self.dow & (1 << weekday_sunday0))
        if self.dom & STAR_BIT or self.dow & STAR_BIT:
            return dom_match and dow_match
        return dom_match or dow_match


def _go_atoi_error(expr: str) -> str:
    if re.match(r"^[+-]?[0-9]+$", expr):
        return f'strconv.Atoi: parsing "{expr}": value out of range'
    return f'strconv.Atoi: parsing "{expr}": invalid syntax'


def _must_parse_int(expr: str) -> int:
    if not re.match(r"^[+-]?[0-9]+$", expr) or abs(int(expr)) > 2**63 - 1:
        raise ScheduleError(f"failed to parse int from {expr}: {_go_atoi_error(expr)}")
    num = int(expr)
    if num < 0:
        raise ScheduleError(f"negative number ({num}) not allowed: {expr}")
    return num


def _parse_int_or_name(expr: str, names: dict[str, int] | None) -> int:
    if names is not None and expr.lower() in names:
        return names[expr.lower()]
    return _must_parse_int(expr)


def _get_range(expr: str, r: _Bounds) -> int:
    range_and_step = expr.split("/")
    low_high = range_and_step[0].split("-")
    single = len(low_high) == 1
    extra = 0
    if low_high[0] in ("*", "?"):
        start, end, extra = r.min, r.max, STAR_BIT
    else:
        start = _parse_int_or_name(low_high[0], r.names)
        if len(low_high) == 1:
            end = start
        elif len(low_high) == 2:
            end = _parse_int_or_name(low_high[1], r.names)
        else:
            raise ScheduleError(f"too many hyphens: {expr}")
    if len(range_and_step) == 1:
        step = 1
    elif len(range_and_step) == 2:
        step = _must_parse_int(range_and_step[1])
        if single:
            end = r.max
        if step > 1:
            extra = 0
    else:
        raise ScheduleError(f"too many slashes: {expr}")
    if start < r.min:
        raise ScheduleError(f"beginning of range ({start}) below minimum ({r.min}): {expr}")
    if end > r.max:
        raise ScheduleError(f"end of range ({end}) above maximum ({r.max}): {expr}")
    if start > end:
        raise ScheduleError(f"beginning of range ({start}) beyond end of range ({end}): {expr}")
    if step == 0:
        raise ScheduleError(f"step of range should be a positive number: {expr}")
    bits = 0
    for i in range(start, end + 1, step):
        bits |= 1 << i
    return bits | extra


def _get_field(text: str, r: _Bounds) -> int:
    bits = 0
    for expr in (p for p in text.split(",") if p):
        bits |= _get_range(expr, r)
    return bits


_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART = re.compile(r"([0-9]*\.?[0-9]*)(ns|us|µs|μs|ms|s|m|h)")


def parse_go_duration(text: str) -> float:
    """Go's ``time.ParseDuration`` (seconds); raises ValueError with Go's message."""
    s = text
    if s in ("0", "+0", "-0"):
        return 0.0
    sign = 1.0
    if s[:1] in "+-" and s:
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    if not s:
        raise ValueError(f'time: invalid duration "{text}"')
    total, pos = 0.0, 0
    while pos < len(s):
        m = _DURATION_PART.match(s, pos)
        if not m or m.group(1) in ("", "."):
            if m is None and re.match(r"[0-9.]+", s[pos:]):
                unit_start = re.match(r"[0-9.]+", s[pos:])
                assert unit_start is not None
                rest = s[pos + unit_start.end():]
                if not rest:
                    raise ValueError(f'time: missing unit in duration "{text}"')
                unit = re.match(r"[^0-9.]+", rest)
                raise ValueError(f'time: unknown unit "{unit.group(0) if unit else rest}" in duration "{text}"')
            raise ValueError(f'time: invalid duration "{text}"')
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    return sign * total


def parse_standard(spec: str) -> CronSchedule:
    """robfig/cron v3 ``ParseStandard`` (5 fields, descriptors, ``TZ=``/``CRON_TZ=`` prefix)."""
    if not spec:
        raise ScheduleError("empty spec string")
    location: str | None = None
    if spec.startswith("TZ=") or spec.startswith("CRON_TZ="):
        i = spec.find(" ")
        eq = spec.find("=")
        name = spec[eq + 1:i] if i >= 0 else spec[eq + 1:]
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ScheduleError(f"provided bad location {name}: unknown time zone {name}") from exc
        location = name
        spec = spec[i:].strip() if i >= 0 else ""
    if spec.startswith("@"):
        if spec.startswith("@every "):
            text = spec[len("@every "):]
            try:
                seconds = parse_go_duration(text)
            except ValueError as exc:
                raise ScheduleError(f"failed to parse duration {spec}: {exc}") from exc
            return CronSchedule(every_seconds=max(seconds, 1.0), location=location)
        expansion = DESCRIPTORS.get(spec)
        if expansion is None:
            raise ScheduleError(f"unrecognized descriptor: {spec}")
        spec = expansion
    fields = spec.split()
    if len(fields) != 5:
        raise ScheduleError(f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]")
    return CronSchedule(
        minute=_get_field(fields[0], MINUTES),
        hour=_get_field(fields[1], HOURS),
        dom=_get_field(fields[2], DOM),
        month=_get_field(fields[3], MONTHS),
        dow=_get_field(fields[4], DOW),
        location=location,
    )
