"""Completion-index interval strings (``"1,3-5,7"``) as Kubernetes writes and reads them.

Indexed Jobs report ``status.completedIndexes`` / ``status.failedIndexes`` and accept
``successPolicy.rules[].succeededIndexes`` in this compressed form. Two readers exist
upstream: the API server's strict one (:func:`parse_intervals`, errors worded like
``validateIndexesFormat``) and the controller's lenient one (:func:`parse_indexes_lenient`,
which drops bad fragments and cuts at ``completions`` so entries past a scale-down vanish).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_GO_INT = re.compile(r"^[+-]?[0-9]+$")
_INT64_MAX = 2**63 - 1


class IntervalError(ValueError):
    """A strict-parse failure; ``str(err)`` is upstream's message."""


def _atoi(s: str) -> int | None:
    """Go's ``strconv.Atoi``: optional sign, decimal digits only, 64-bit range."""
    if not _GO_INT.match(s):
        return None
    value = int(s)
    if value > _INT64_MAX or value < -_INT64_MAX - 1:
        return None
    return value


def intervals_of(indexes: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted, deduplicated indexes grouped into inclusive ``(first, last)`` runs."""
    runs: list[tuple[int, int]] = []
    for i in sorted(set(indexes)):
        if runs and runs[-1][1] == i - 1:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    return runs


def format_runs(runs: Iterable[tuple[int, int]]) -> str:
    parts: list[str] = []
    for first, last in runs:
        if last == first:
            parts.append(str(first))
        elif last == first + 1:
            parts.append(f"{first},{last}")
        else:
            parts.append(f"{first}-{last}")
    return ",".join(parts)


def format_intervals(indexes: Iterable[int]) -> str:
    """``{1,3,4,5,7}`` → ``"1,3-5,7"``; runs of two stay ``"a,b"``; empty → ``""``."""
    return format_runs(intervals_of(indexes))


def parse_interval(fragment: str, completions: int) -> tuple[int, int]:
    """``parseIndexInterval``: one ``"a"`` or ``"a-b"`` fragment, strictly."""
    limits = fragment.split("-")
    if len(limits) > 2:
        raise IntervalError(
            f'the fragment "{fragment}" violates the requirement that an index interval can have at most '
            "two parts separated by '-'")
    first = _atoi(limits[0])
    if first is None:
        raise IntervalError(f'cannot convert string to integer for index: "{limits[0]}"')
    if first >= completions:
        raise IntervalError(f'too large index: "{limits[0]}"')
    if len(limits) == 1:
        return first, first
    last = _atoi(limits[1])
    if last is None:
        raise IntervalError(f'cannot convert string to integer for index: "{limits[1]}"')
    if last >= completions:
        raise IntervalError(f'too large index: "{limits[1]}"')
    if first >= last:
        raise IntervalError(f"non-increasing order, previous: {first}, current: {last}")
    return first, last


def parse_intervals(s: str, completions: int) -> list[tuple[int, int]]:
    """``validateIndexesFormat``: strictly increasing intervals below ``completions``."""
    if not s:
        return []
    result: list[tuple[int, int]] = []
    for fragment in s.split(","):
        first, last = parse_interval(fragment, completions)
        if result and result[-1][1] >= first:
            raise IntervalError(f"non-increasing order, previous: {result[-1][1]}, current: {first}")
        result.append((first, last))
    return result


def count_intervals(runs: Iterable[tuple[int, int]]) -> int:
    return sum(last - first + 1 for first, last in runs)


def parse_runs_lenient(s: str, completions: int) -> list[tuple[int, int]]:
    """The controller's ``parseIndexesFromString``: skip corrupt fragments, cut at completions."""
    runs: list[tuple[int, int]] = []
    if not s:
        return runs
    for fragment in s.split(","):
        limits = fragment.split("-")
        first = _atoi(limits[0])
        if first is None:
            continue
        if first >= completions:
            break
        if len(limits) > 1:
            last = _atoi(limits[1])
            if last is None:
                continue
            last = min(last, completions - 1)
        else:
            last = first
        if runs and runs[-1][1] == first - 1:
            runs[-1] = (runs[-1][0], last)
        else:
            runs.append((first, last))
    return runs


def parse_indexes_lenient(s: str, completions: int) -> set[int]:
    out: set[int] = set()
    for first, last in parse_runs_lenient(s, completions):
        if last >= first:
            out.update(range(first, last + 1))
    return out


def validate_no_overlap(completed: str, failed: str, completions: int) -> str | None:
    """``validateFailedIndexesNotOverlapCompleted``: the first shared index, as upstream's message."""
    if not completed or not failed:
        return None

    def good(s: str) -> list[tuple[int, int]]:
        runs = []
        for fragment in s.split(","):
            try:
                runs.append(parse_interval(fragment, completions))
            except IntervalError:
                continue
        return runs

    c_runs, f_runs = good(completed), good(failed)
    ci = fi = 0
    while ci < len(c_runs) and fi < len(f_runs):
        (cx, cy), (fx, fy) = c_runs[ci], f_runs[fi]
        if cx <= fy and fx <= cy:
            return f"failedIndexes and completedIndexes overlap at index: {max(cx, fx)}"
        if cx <= fx:
            ci += 1
        else:
            fi += 1
    return None
