"""Pure value matching for the conformance catalog: no I/O, no clock.

Why: every expectation in the catalog reduces to "does this observed wire-format value match
this expected YAML value" under a handful of conventions (README "expect"): integers exact,
``{min, max}`` ranges, ``set`` = non-null, ``null`` = absent, ``{}`` = empty, completion-index
interval strings, RFC 3339 times compared as instants, placeholders (``<job uid>``,
``<index>``, ``<now1>``...). Each matcher returns a list of human-readable problems (empty =
match) so a failing scenario says exactly what differed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

Obj = dict[str, Any]

INTERVAL_KEYS = frozenset({"completedIndexes", "failedIndexes", "succeededIndexes"})
_DURATION = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_SEGMENT = re.compile(r"^([^\[\]]+)?((?:\[[^\]]+\])*)$")
_PLACEHOLDER = re.compile(r"<([^<>]+)>")


# ------------------------------------------------------------------ intervals


def parse_intervals(text: str | None) -> list[int]:
    """Indexes named by an upstream interval string (``"2,4,5,7-9"``); ``""``/None -> []."""
    if not text:
        return []
    out: list[int] = []
    for fragment in text.split(","):
        fragment = fragment.strip()
        if not fragment:
            raise ValueError(f"empty fragment in interval string {text!r}")
        if "-" in fragment:
            first_s, last_s = fragment.split("-", 1)
            first, last = int(first_s), int(last_s)
            if last < first:
                raise ValueError(f"descending interval {fragment!r} in {text!r}")
            out.extend(range(first, last + 1))
        else:
            out.append(int(fragment))
    return sorted(set(out))


def format_intervals(indexes: Iterable[int]) -> str:
    """Upstream ``orderedIntervals.String()``: runs of 3+ as ``a-b``, a pair as ``a,b``."""
    runs: list[list[int]] = []
    for i in sorted(set(indexes)):
        if runs and runs[-1][1] == i - 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    parts: list[str] = []
    for first, last in runs:
        if last == first:
            parts.append(str(first))
        elif last == first + 1:
            parts.append(f"{first},{last}")
        else:
            parts.append(f"{first}-{last}")
    return ",".join(parts)


# ------------------------------------------------------------------ durations and times


def parse_duration(value: Any) -> float:
    """``5s`` / ``500ms`` / ``2m`` / bare number (seconds) -> seconds."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        return float(value)
    m = _DURATION.match(str(value))
    if not m:
        raise ValueError(f"not a duration: {value!r}")
    number = float(m.group(1))
    unit = m.group(2) or "s"
    return number * {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[unit]


def parse_go_duration(text: str) -> float:
    """Go ``time.Duration.String()`` form (``3h59m0.1s``, ``66h0m0.1s``) -> seconds."""
    total = 0.0
    pos = 0
    for m in re.finditer(r"(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)", text):
        if m.start() != pos:
            raise ValueError(f"not a Go duration: {text!r}")
        pos = m.end()
        scale = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}[m.group(2)]
        total += float(m.group(1)) * scale
    if pos != len(text) or not text:
        raise ValueError(f"not a Go duration: {text!r}")
    return total


def parse_rfc3339(value: Any) -> datetime | None:
    if not isinstance(value, str) or "T" not in value:
        return None
    text = value.strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def rfc3339(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ------------------------------------------------------------------ placeholders


def substitute(value: Any, names: Mapping[str, Any]) -> Any:
    """Replace ``<name>`` placeholders found in ``names`` (recursively, keys untouched).

    A string that is exactly one placeholder takes the bound value as is (keeps types);
    placeholders inside longer strings are replaced textually. ``<now1 RFC3339>`` is looked
    up as ``now1`` (the qualifier after the first word is descriptive). Unknown placeholders
    are left untouched.
    """
    if isinstance(value, str):
        whole = _PLACEHOLDER.fullmatch(value)
        if whole:
            key = placeholder_key(whole.group(1))
            if key in names:
                return names[key]
            return value

        def repl(m: re.Match[str]) -> str:
            key = placeholder_key(m.group(1))
            return str(names[key]) if key in names else m.group(0)

        return _PLACEHOLDER.sub(repl, value)
    if isinstance(value, list):
        return [substitute(v, names) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, names) for k, v in value.items()}
    return value


def placeholder_key(inner: str) -> str:
    """``job uid`` stays ``job uid``; ``now1 RFC3339`` -> ``now1``."""
    inner = inner.strip()
    if inner.endswith(" RFC3339"):
        return inner[: -len(" RFC3339")].strip()
    return inner


def placeholders_in(value: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(value, str):
        found.update(placeholder_key(m.group(1)) for m in _PLACEHOLDER.finditer(value))
    elif isinstance(value, list):
        for v in value:
            found |= placeholders_in(v)
    elif isinstance(value, dict):
        for v in value.values():
            found |= placeholders_in(v)
    return found


# ------------------------------------------------------------------ dotted paths


def _split_path(path: str) -> list[str | int | tuple[str, str]]:
    """``status.conditions[type=X].lastTransitionTime`` -> ['status','conditions',('type','X'),'lastTransitionTime']."""
    out: list[str | int | tuple[str, str]] = []
    for segment in path.split("."):
        m = _SEGMENT.match(segment)
        if not m:
            raise ValueError(f"bad path segment {segment!r} in {path!r}")
        if m.group(1):
            out.append(m.group(1))
        for sel in re.findall(r"\[([^\]]+)\]", m.group(2) or ""):
            if "=" in sel:
                k, v = sel.split("=", 1)
                out.append((k, v))
            else:
                out.append(int(sel))
    return out


_MISSING = object()


def get_path(obj: Any, path: str) -> Any:
    """Value at a dotted path, None when any step is missing."""
    cur: Any = obj
    for step in _split_path(path):
        if isinstance(step, tuple):
            if not isinstance(cur, list):
                return None
            cur = next((x for x in cur if isinstance(x, dict) and str(x.get(step[0])) == step[1]), None)
        elif isinstance(step, int):
            cur = cur[step] if isinstance(cur, list) and -len(cur) <= step < len(cur) else None
        else:
            cur = cur.get(step) if isinstance(cur, dict) else None
        if cur is None:
            return None
    return cur


def set_path(obj: Obj, path: str, value: Any) -> None:
    """Set (or, for value None, remove) the value at a dotted path, creating dicts on the way."""
    steps = _split_path(path)
    cur: Any = obj
    for step in steps[:-1]:
        if isinstance(step, tuple):
            found = next((x for x in cur if isinstance(x, dict) and str(x.get(step[0])) == step[1]), None)
            if found is None:
                raise KeyError(f"no element with {step[0]}={step[1]} at {path!r}")
            cur = found
        elif isinstance(step, int):
            cur = cur[step]
        else:
            if not isinstance(cur.get(step), dict | list):
                cur[step] = {}
            cur = cur[step]
    last = steps[-1]
    if isinstance(last, tuple):
        raise ValueError(f"path {path!r} cannot end in a selector")
    if isinstance(last, int):
        cur[last] = value
    elif value is None:
        cur.pop(last, None)
    else:
        cur[last] = value


def deep_merge(base: Obj, patch: Mapping[str, Any]) -> Obj:
    """JSON merge patch (RFC 7386) applied to a copy: dicts merge, null deletes, rest replaces."""
    out = dict(base)
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


# ------------------------------------------------------------------ value matching


def _is_range(expected: Any) -> bool:
    return isinstance(expected, dict) and bool(expected) and set(expected) <= {"min", "max"}


def _is_empty(actual: Any) -> bool:
    if actual is None:
        return True
    if isinstance(actual, dict):
        return all(_is_empty(v) for v in actual.values())
    if isinstance(actual, list | str):
        return len(actual) == 0
    return False


def match_value(expected: Any, actual: Any, where: str = "") -> list[str]:
    """Problems found matching ``actual`` against the catalog's ``expected`` value."""
    label = where or "value"
    key = where.rsplit(".", 1)[-1]
    if expected is None:
        return [] if actual is None or actual == "" else [f"{label}: expected absent, got {actual!r}"]
    if expected == "set":
        return [] if actual is not None else [f"{label}: expected set, got absent"]
    if _is_range(expected):
        number = 0 if actual is None else actual
        if not isinstance(number, int | float) or isinstance(number, bool):
            return [f"{label}: expected a number in {expected}, got {actual!r}"]
        lo, hi = expected.get("min"), expected.get("max")
        if (lo is not None and number < lo) or (hi is not None and number > hi):
            return [f"{label}: expected {expected}, got {actual!r}"]
        return []
    if key in INTERVAL_KEYS and isinstance(expected, str):
        got = actual if actual is not None else ""
        if got == expected:
            return []
        try:
            decoded = parse_intervals(got) if isinstance(got, str) else got
        except ValueError:
            decoded = got
        return [f"{label}: expected {expected!r} ({parse_intervals(expected)}), got {got!r} ({decoded})"]
    if isinstance(expected, bool):
        got_b = False if actual is None else actual
        return [] if got_b is expected else [f"{label}: expected {expected}, got {actual!r}"]
    if isinstance(expected, int | float):
        got_n = 0 if actual is None else actual
        if isinstance(got_n, bool) or got_n != expected:
            return [f"{label}: expected {expected}, got {actual!r}"]
        return []
    if isinstance(expected, dict):
        if not expected:
            return [] if _is_empty(actual) else [f"{label}: expected empty, got {actual!r}"]
        if not isinstance(actual, dict):
            return [f"{label}: expected an object matching {expected}, got {actual!r}"]
        problems: list[str] = []
        for k, v in expected.items():
            problems += match_value(v, actual.get(k), f"{where}.{k}" if where else k)
        return problems
    if isinstance(expected, list):
        if not isinstance(actual, list):
            if not expected and actual is None:
                return []
            return [f"{label}: expected list {expected!r}, got {actual!r}"]
        if len(expected) != len(actual):
            return [f"{label}: expected {len(expected)} items {expected!r}, got {len(actual)}: {actual!r}"]
        if all(isinstance(e, dict) for e in expected):
            return _match_unordered(expected, actual, label)
        problems = []
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            problems += match_value(e, a, f"{label}[{i}]")
        return problems
    if isinstance(expected, str):
        if expected == actual:
            return []
        t_exp, t_act = parse_rfc3339(expected), parse_rfc3339(actual)
        if t_exp is not None and t_act is not None and t_exp == t_act:
            return []
        return [f"{label}: expected {expected!r}, got {actual!r}"]
    return [] if expected == actual else [f"{label}: expected {expected!r}, got {actual!r}"]


def _match_unordered(expected: list[Any], actual: list[Any], label: str) -> list[str]:
    """Each expected dict matches a distinct actual element (greedy)."""
    used: set[int] = set()
    problems: list[str] = []
    for e in expected:
        hit = next((i for i, a in enumerate(actual) if i not in used and not match_value(e, a)), None)
        if hit is None:
            problems.append(f"{label}: no element matches {e!r} in {actual!r}")
        else:
            used.add(hit)
    return problems


def subset_matches(expected: Mapping[str, Any], actual: Mapping[str, Any] | None) -> bool:
    return not match_value(dict(expected), dict(actual or {}))


# ------------------------------------------------------------------ conditions


def conditions_of(obj: Obj | None) -> list[Obj]:
    return list(((obj or {}).get("status") or {}).get("conditions") or [])


def match_conditions(expected: list[Mapping[str, Any]], actual: list[Obj]) -> list[str]:
    """Each expected ``{type, status, reason?, message?, message_regex?}`` is present."""
    problems: list[str] = []
    for exp in expected:
        same_type = [c for c in actual if c.get("type") == exp.get("type")]
        if not same_type:
            problems.append(f"condition {exp.get('type')}: absent (have {[c.get('type') for c in actual]})")
            continue
        best: list[str] | None = None
        for cond in same_type:
            issues = _condition_issues(exp, cond)
            if not issues:
                best = []
                break
            if best is None or len(issues) < len(best):
                best = issues
        if best:
            problems.append(f"condition {exp.get('type')}: " + "; ".join(best))
    return problems


def _condition_issues(exp: Mapping[str, Any], cond: Obj) -> list[str]:
    issues: list[str] = []
    for field in ("status", "reason", "message"):
        if field in exp and cond.get(field) != exp[field]:
            issues.append(f"{field} {cond.get(field)!r} != {exp[field]!r}")
    if "message_regex" in exp and not re.search(str(exp["message_regex"]), str(cond.get("message") or "")):
        issues.append(f"message {cond.get('message')!r} !~ /{exp['message_regex']}/")
    return issues


def condition_order_problems(order: list[str], actual: list[Obj]) -> list[str]:
    """Types appear in this order of lastTransitionTime (ties resolved by list position)."""
    position: dict[str, tuple[datetime, int]] = {}
    for i, cond in enumerate(actual):
        when = parse_rfc3339(cond.get("lastTransitionTime")) or datetime.max.replace(tzinfo=UTC)
        position.setdefault(str(cond.get("type")), (when, i))
    missing = [t for t in order if t not in position]
    if missing:
        return [f"condition_order: {missing} absent"]
    keys = [position[t] for t in order]
    if keys != sorted(keys):
        return [f"condition_order: expected {order}, got {[(t, rfc3339(position[t][0])) for t in order]}"]
    return []


# ------------------------------------------------------------------ validation causes


def cause_problems(expected: list[Mapping[str, Any]], status: Mapping[str, Any] | None) -> list[str]:
    """Each ``{field, message_contains?}`` matches some entry of ``status.details.causes``."""
    causes = list(((status or {}).get("details") or {}).get("causes") or [])
    problems: list[str] = []
    for exp in expected:
        field = exp.get("field")
        fragment = exp.get("message_contains")
        hit = any(
            (field is None or c.get("field") == field)
            and (fragment is None or str(fragment) in str(c.get("message") or ""))
            for c in causes
        )
        if not hit:
            problems.append(
                f"no cause {{field: {field!r}, message_contains: {fragment!r}}} in "
                f"{[(c.get('field'), c.get('message')) for c in causes]}"
            )
    return problems
