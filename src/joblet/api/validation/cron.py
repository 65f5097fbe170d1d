"""CronJob schedules: croniter parses and expands them, within robfig/cron v3's grammar.

Kubernetes parses ``spec.schedule`` with robfig/cron v3 ``ParseStandard``; the API server
must accept and reject the same schedules with the same error text
(``spec.schedule: Invalid value: "<s>": <err>``). The cron grammar itself is parsed and
expanded by the maintained ``croniter`` library. croniter's grammar is a superset of
robfig's (it also takes ``L``, ``#``, day-of-week 7, wrap-around ranges like ``5-1`` and a
sixth seconds field), so :func:`parse_standard` first runs a small *gate* that rejects what
robfig rejects, with robfig's message, and only then hands the expression to croniter.
What croniter alone does not know is handled here: the ``TZ=``/``CRON_TZ=`` prefix, the
descriptor set robfig accepts, and ``@every <Go duration>`` (a fixed interval).

The result, :class:`CronSchedule`, is what the CronJob controller's schedule math
(``joblet.controllers.cronjob.schedule``) iterates with croniter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from croniter.croniter import CroniterError


class ScheduleError(ValueError):
    """``str(err)`` is robfig's error text."""


#: The descriptors robfig's ParseStandard accepts (``@reboot`` etc. are not among them).
DESCRIPTORS: dict[str, str] = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}


@dataclass(frozen=True)
class CronSchedule:
    """A parsed schedule: a croniter expression, or a fixed ``@every`` interval.

    ``expression`` is the 5-field croniter expression (``?`` normalised to ``*``,
    descriptors expanded), empty for ``@every``. ``location`` is the zone named by a
    ``TZ=``/``CRON_TZ=`` prefix, if any.
    """

    spec: str
    expression: str = ""
    every_seconds: float | None = None
    location: str | None = None

    @property
    def is_every(self) -> bool:
        return self.every_seconds is not None


# -- robfig grammar gate ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Bounds:
    min: int
    max: int
    names: tuple[str, ...] = ()


_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DOW_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_FIELDS = (
    _Bounds(0, 59),                 # minute
    _Bounds(0, 23),                 # hour
    _Bounds(1, 31),                 # day of month
    _Bounds(1, 12, _MONTH_NAMES),   # month (jan = 1)
    _Bounds(0, 6, _DOW_NAMES),      # day of week (sun = 0; robfig rejects 7)
)
_INT = re.compile(r"^[+-]?[0-9]+$")


def _int(expr: str) -> int:
    if not _INT.match(expr) or abs(int(expr)) > 2**63 - 1:
        kind = "value out of range" if _INT.match(expr) else "invalid syntax"
        raise ScheduleError(f'failed to parse int from {expr}: strconv.Atoi: parsing "{expr}": {kind}')
    num = int(expr)
    if num < 0:
        raise ScheduleError(f"negative number ({num}) not allowed: {expr}")
    return num


def _int_or_name(expr: str, bounds: _Bounds) -> int:
    lowered = expr.lower()
    if lowered in bounds.names:
        return bounds.names.index(lowered) + (1 if bounds.names is _MONTH_NAMES else 0)
    return _int(expr)


def _check_range(expr: str, bounds: _Bounds) -> None:
    """Raise robfig's error for one comma-separated part (``getRange``), else return."""
    range_and_step = expr.split("/")
    low_high = range_and_step[0].split("-")
    if low_high[0] in ("*", "?"):
        start, end = bounds.min, bounds.max
    else:
        start = _int_or_name(low_high[0], bounds)
        if len(low_high) == 1:
            end = start
        elif len(low_high) == 2:
            end = _int_or_name(low_high[1], bounds)
        else:
            raise ScheduleError(f"too many hyphens: {expr}")
    step = 1
    if len(range_and_step) == 2:
        step = _int(range_and_step[1])
        if len(low_high) == 1:
            end = bounds.max
    elif len(range_and_step) > 2:
        raise ScheduleError(f"too many slashes: {expr}")
    if start < bounds.min:
        raise ScheduleError(f"beginning of range ({start}) below minimum ({bounds.min}): {expr}")
    if end > bounds.max:
        raise ScheduleError(f"end of range ({end}) above maximum ({bounds.max}): {expr}")
    if start > end:
        raise ScheduleError(f"beginning of range ({start}) beyond end of range ({end}): {expr}")
    if step == 0:
        raise ScheduleError(f"step of range should be a positive number: {expr}")


def _check_fields(fields: list[str]) -> None:
    for text, bounds in zip(fields, _FIELDS, strict=True):
        for part in (p for p in text.split(",") if p):
            _check_range(part, bounds)


# -- Go durations (for @every) ------------------------------------------------------------

_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART = re.compile(r"([0-9]*\.?[0-9]*)(ns|us|µs|μs|ms|s|m|h)")


def parse_go_duration(text: str) -> float:
    """Go's ``time.ParseDuration`` (seconds); raises ValueError with Go's message."""
    s = text
    if s in ("0", "+0", "-0"):
        return 0.0
    sign = 1.0
    if s and s[0] in "+-":
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    if not s:
        raise ValueError(f'time: invalid duration "{text}"')
    total, pos = 0.0, 0
    while pos < len(s):
        m = _DURATION_PART.match(s, pos)
        if not m or m.group(1) in ("", "."):
            number = re.match(r"[0-9.]+", s[pos:])
            if m is None and number is not None:
                rest = s[pos + number.end():]
                if not rest:
                    raise ValueError(f'time: missing unit in duration "{text}"')
                unit = re.match(r"[^0-9.]+", rest)
                raise ValueError(f'time: unknown unit "{unit.group(0) if unit else rest}" in duration "{text}"')
            raise ValueError(f'time: invalid duration "{text}"')
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    return sign * total


# -- ParseStandard ----------------------------------------------------------------------------


def _split_location(spec: str) -> tuple[str | None, str]:
    if not (spec.startswith("TZ=") or spec.startswith("CRON_TZ=")):
        return None, spec
    i = spec.find(" ")
    eq = spec.find("=")
    name = spec[eq + 1:i] if i >= 0 else spec[eq + 1:]
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ScheduleError(f"provided bad location {name}: unknown time zone {name}") from exc
    return name, spec[i:].strip() if i >= 0 else ""


def parse_standard(spec: str) -> CronSchedule:
    """robfig/cron v3 ``ParseStandard``: 5 fields, descriptors, ``@every``, ``TZ=`` prefix.

    Raises :class:`ScheduleError` carrying robfig's message.
    """
    if not spec:
        raise ScheduleError("empty spec string")
    location, body = _split_location(spec)
    if body.startswith("@"):
        if body.startswith("@every "):
            text = body[len("@every "):]
            try:
                seconds = parse_go_duration(text)
            except ValueError as exc:
                raise ScheduleError(f"failed to parse duration {body}: {exc}") from exc
            # robfig's Every(): whole seconds, at least one.
            return CronSchedule(spec=spec, every_seconds=float(max(int(seconds), 1)), location=location)
        expansion = DESCRIPTORS.get(body)
        if expansion is None:
            raise ScheduleError(f"unrecognized descriptor: {body}")
        body = expansion
    fields = body.split()
    if len(fields) != 5:
        raise ScheduleError(f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]")
    _check_fields(fields)
    expression = " ".join(f.replace("?", "*") for f in fields)
    try:
        croniter.expand(expression)
    except CroniterError as exc:  # the gate should have caught it; keep croniter's word
        raise ScheduleError(str(exc)) from exc
    return CronSchedule(spec=spec, expression=expression, location=location)
