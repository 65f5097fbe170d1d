"""Completion-index interval strings (``"1,3-5,7"``) as Kubernetes writes and reads them.

:class:`IndexRuns` holds such a set as its runs, so the Job controller's per-sync work on the
completed indexes of a 100,000-completion Job costs what the runs cost, not every index.

Indexed Jobs report ``status.completedIndexes`` / ``status.failedIndexes`` and accept
``successPolicy.rules[].succeededIndexes`` in this compressed form. Two readers exist
upstream: the API server's strict one (:func:`parse_intervals`, errors worded like
``validateIndexesFormat``) and the controller's lenient one (:func:`parse_indexes_lenient`,
which drops bad fragments and cuts at ``completions`` so entries past a scale-down vanish).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Iterator
from collections.abc import Set as AbstractSet
from typing import TypeVar

_GO_INT = re.compile(r"^[+-]?[0-9]+$")
_INT64_MAX = 2**63 - 1
_S = TypeVar("_S")


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


def _merged(runs: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Runs sorted, with overlapping and adjacent ones joined (what :func:`intervals_of` gives)."""
    out: list[tuple[int, int]] = []
    for first, last in sorted(r for r in runs if r[1] >= r[0]):
        if out and first <= out[-1][1] + 1:
            if last > out[-1][1]:
                out[-1] = (out[-1][0], last)
        else:
            out.append((first, last))
    return out


class IndexRuns(AbstractSet[int]):
    """An immutable set of indexes kept as sorted, maximal inclusive runs.

    Membership is a bisect, size is kept, :meth:`with_indexes` folds in a few new indexes and
    :meth:`missing` walks the gaps, all in time proportional to the runs (a Job's completed
    indexes are a handful of runs however many there are). Compares equal to a ``set`` of
    the same indexes; set operators (``|``, ``&``, ``-``) give a plain ``set``."""

    __slots__ = ("_firsts", "_len", "_runs")

    def __init__(self, runs: Iterable[tuple[int, int]] = ()) -> None:
        self._runs = _merged(runs)
        self._firsts = [first for first, _ in self._runs]
        self._len = count_intervals(self._runs)

    @classmethod
    def of(cls, indexes: Iterable[int]) -> IndexRuns:
        return indexes if isinstance(indexes, IndexRuns) else cls(intervals_of(indexes))

    @classmethod
    def parse_lenient(cls, s: str, completions: int) -> IndexRuns:
        """:func:`parse_indexes_lenient` as runs."""
        return cls(parse_runs_lenient(s, completions))

    @classmethod
    def _from_iterable(cls, it: Iterable[_S]) -> AbstractSet[_S]:
        return set(it)

    @property
    def runs(self) -> list[tuple[int, int]]:
        return list(self._runs)

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, int):
            return False
        at = bisect.bisect_right(self._firsts, value) - 1
        return at >= 0 and value <= self._runs[at][1]

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[int]:
        for first, last in self._runs:
            yield from range(first, last + 1)

    def __repr__(self) -> str:
        return f"IndexRuns({format_runs(self._runs)!r})"

    def count_between(self, first: int, last: int) -> int:
        """How many of ``first..last`` (inclusive) are in the set."""
        total = 0
        at = max(0, bisect.bisect_right(self._firsts, first) - 1)
        while at < len(self._runs) and self._runs[at][0] <= last:
            lo, hi = max(first, self._runs[at][0]), min(last, self._runs[at][1])
            total += max(0, hi - lo + 1)
            at += 1
        return total

    def with_indexes(self, indexes: Iterable[int]) -> IndexRuns:
        """This set and ``indexes`` (self when they add nothing)."""
        new = [i for i in indexes if i not in self]
        if not new:
            return self
        return IndexRuns([*self._runs, *((i, i) for i in new)])

    def missing(self, below: int) -> Iterator[int]:
        """The indexes from 0 up to ``below`` (excluded) that are not in the set, ascending."""
        candidate = 0
        for first, last in self._runs:
            if candidate >= below:
                return
            yield from range(candidate, min(first, below))
            candidate = max(candidate, last + 1)
        yield from range(candidate, below)

    def format(self) -> str:
        """:func:`format_intervals` of the same indexes."""
        return format_runs(self._runs)
