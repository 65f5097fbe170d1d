"""A list snapshot's key order (:class:`joblet.store.paging.Entries`): where a ``continue`` key
resumes, across namespaces, for keys that are there, gone or never were."""

from __future__ import annotations

import pytest

from joblet.store.paging import Entries, no_entries


def snapshot() -> Entries:
    out = no_entries()
    for ns, names in (("a", ["x", "y"]), ("b", ["m"]), ("d", ["a", "c", "e"])):
        out.add(ns, {n: f"{ns}/{n}" for n in reversed(names)})  # the index's order is not key order
    return out


def test_entries_are_in_key_order_with_their_values() -> None:
    e = snapshot()
    assert list(zip(e.namespaces, e.names, strict=True)) == [
        ("a", "x"), ("a", "y"), ("b", "m"), ("d", "a"), ("d", "c"), ("d", "e")]
    assert e.values == [f"{ns}/{n}" for ns, n in zip(e.namespaces, e.names, strict=True)]
    assert len(e) == 6


@pytest.mark.parametrize(("key", "want"), [
    (("", ""), 0),
    (("a", "x"), 1),
    (("a", "y"), 2),  # the last of a namespace: the next namespace's first
    (("a", "z"), 2),  # gone since
    (("b", ""), 2),
    (("c", "q"), 3),  # a namespace the snapshot does not have
    (("d", "b"), 4),
    (("d", "e"), 6),  # the last key: nothing after it
    (("e", "a"), 6),
], ids=["before-all", "first", "namespace-end", "gone-name", "empty-name", "missing-namespace",
        "between-names", "last", "after-all"])
def test_a_continue_key_resumes_after_itself(key: tuple[str, str], want: int) -> None:
    assert snapshot().after(key) == want


def test_since_keeps_the_rest_in_order() -> None:
    rest = snapshot().since(3)
    assert (rest.namespaces, rest.names, rest.values) == (["d", "d", "d"], ["a", "c", "e"], ["d/a", "d/c", "d/e"])
