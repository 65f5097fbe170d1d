"""Index interval strings: formatting, strict parsing (API server) and lenient parsing (controller);
:class:`IndexRuns` behaves as the set of the same indexes."""

from __future__ import annotations

import random

import pytest

from joblet.api.intervals import (
    IndexRuns,
    IntervalError,
    format_intervals,
    parse_indexes_lenient,
    parse_intervals,
    validate_no_overlap,
)


@pytest.mark.parametrize(("indexes", "text"), [
    pytest.param([], "", id="empty"),
    pytest.param([1, 3, 4, 5, 7], "1,3-5,7", id="mixed"),
    pytest.param([3, 4], "3,4", id="pair-stays-pair"),
    pytest.param(range(10), "0-9", id="one-run"),
    pytest.param([0, 2], "0,2", id="singles"),
    pytest.param([5, 1, 3, 4, 5, 2], "1-5", id="unsorted-duplicates"),
    pytest.param([2, 4, 5, 7, 8, 9], "2,4,5,7-9", id="catalog-example"),
])
def test_format_intervals(indexes: list[int], text: str) -> None:
    assert format_intervals(indexes) == text


@pytest.mark.parametrize(("text", "completions", "runs"), [
    pytest.param("", 5, [], id="empty"),
    pytest.param("0", 1, [(0, 0)], id="single"),
    pytest.param("1,3-5,7", 8, [(1, 1), (3, 5), (7, 7)], id="mixed"),
    pytest.param("0-2", 3, [(0, 2)], id="range"),
    pytest.param("+1", 3, [(1, 1)], id="go-atoi-accepts-plus"),
])
def test_parse_intervals(text: str, completions: int, runs: list[tuple[int, int]]) -> None:
    assert parse_intervals(text, completions) == runs


@pytest.mark.parametrize(("text", "completions", "message"), [
    pytest.param("invalid-format", 5, 'cannot convert string to integer for index: "invalid"', id="not-int"),
    pytest.param("1-2-3", 5, "the fragment \"1-2-3\" violates the requirement that an index interval can have at "
                 "most two parts separated by '-'", id="three-parts"),
    pytest.param("5", 5, 'too large index: "5"', id="too-large"),
    pytest.param("1-7", 5, 'too large index: "7"', id="too-large-end"),
    pytest.param("3-1", 10, "non-increasing order, previous: 3, current: 1", id="decreasing-range"),
    pytest.param("3-3", 10, "non-increasing order, previous: 3, current: 3", id="degenerate-range"),
    pytest.param("1-3,3", 10, "non-increasing order, previous: 3, current: 3", id="overlapping"),
    pytest.param("-1", 10, 'cannot convert string to integer for index: ""', id="negative"),
    pytest.param("1,,2", 10, 'cannot convert string to integer for index: ""', id="empty-fragment"),
    pytest.param(" 1", 10, 'cannot convert string to integer for index: " 1"', id="whitespace"),
])
def test_parse_intervals_errors(text: str, completions: int, message: str) -> None:
    with pytest.raises(IntervalError) as err:
        parse_intervals(text, completions)
    assert str(err.value) == message


@pytest.mark.parametrize(("text", "completions", "indexes"), [
    pytest.param("", 5, set(), id="empty"),
    pytest.param("0-4", 3, {0, 1, 2}, id="cut-at-completions"),
    pytest.param("0,x,2", 5, {0, 2}, id="drops-corrupt"),
    pytest.param("0,7,2", 5, {0}, id="stops-past-completions"),
    pytest.param("1,2-3", 5, {1, 2, 3}, id="merges"),
])
def test_parse_indexes_lenient(text: str, completions: int, indexes: set[int]) -> None:
    assert parse_indexes_lenient(text, completions) == indexes


@pytest.mark.parametrize(("completed", "failed", "message"), [
    pytest.param("0-2", "3,4", None, id="disjoint"),
    pytest.param("0-2", "2,4", "failedIndexes and completedIndexes overlap at index: 2", id="overlap"),
    pytest.param("5,7", "1-6", "failedIndexes and completedIndexes overlap at index: 5", id="overlap-range"),
    pytest.param("", "1", None, id="empty"),
])
def test_validate_no_overlap(completed: str, failed: str, message: str | None) -> None:
    assert validate_no_overlap(completed, failed, 10) == message


RUN_TEXTS = ["", "0", "0-9", "1,3-5,7", "0-4,6-9", "2,4,5,7-9", "x,3,1-2,9-7,12", "5-3,4", "0-3,2-6,8", "3,1"]


@pytest.mark.parametrize("text", RUN_TEXTS)
def test_index_runs_read_a_string_as_the_set_of_its_indexes(text: str) -> None:
    runs, indexes = IndexRuns.parse_lenient(text, 11), parse_indexes_lenient(text, 11)
    assert runs == indexes and len(runs) == len(indexes) and sorted(runs) == sorted(indexes)
    assert runs.format() == format_intervals(indexes)
    for i in range(-1, 13):
        assert (i in runs) == (i in indexes)
    assert list(runs.missing(11)) == [i for i in range(11) if i not in indexes]
    assert list(runs.missing(4)) == [i for i in range(4) if i not in indexes]
    for first, last in [(0, 10), (2, 5), (6, 6), (8, 20), (5, 3)]:
        assert runs.count_between(first, last) == sum(1 for i in range(first, last + 1) if i in indexes)


def test_index_runs_fold_in_new_indexes_as_a_set_would() -> None:
    rng = random.Random(7)
    for _ in range(200):
        base = set(rng.sample(range(40), rng.randint(0, 30)))
        new = rng.sample(range(45), rng.randint(0, 6))
        runs = IndexRuns.of(base)
        merged = runs.with_indexes(new)
        assert merged == base | set(new)
        assert merged.format() == format_intervals(base | set(new))
        assert list(merged.missing(45)) == [i for i in range(45) if i not in base | set(new)]
        if set(new) <= base:
            assert merged is runs  # nothing new: no new object
    assert IndexRuns.of([1, 2]) | {5} == {1, 2, 5}  # set operators give plain sets
