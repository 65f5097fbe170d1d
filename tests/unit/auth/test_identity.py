"""One identity per store: the token-table merge as a table of cases, and two data dirs on one
in-memory store ending up with one CA, one SA key and each other's tokens."""

from __future__ import annotations

from pathlib import Path

import pytest

from joblet.api.registry import Registry
from joblet.auth.identity import SharedTokenStore, merge_tokens, share_identity
from joblet.clock import FakeClock
from joblet.security.pki import ensure_ca
from joblet.security.satokens import load_or_create_signing_key
from joblet.security.tokens import TokenEntry, TokenStore
from joblet.store.memory import MemoryStore


def e(h: str) -> TokenEntry:
    return TokenEntry(f"user-{h}", h, ("g",))


MERGE_CASES = [
    ("first-publish-adds-all", [], [e("a"), e("b")], [], ["a", "b"]),
    ("keeps-other-replicas", [e("x")], [e("a")], [], ["x", "a"]),
    ("gained-entry-added", [e("x"), e("a")], [e("a"), e("b")], [e("a")], ["x", "a", "b"]),
    ("revoked-entry-removed", [e("x"), e("a"), e("b")], [e("a")], [e("a"), e("b")], ["x", "a"]),
    ("no-duplicates", [e("a")], [e("a")], [], ["a"]),
    ("others-entry-not-removed-by-absence", [e("x")], [], [], ["x"]),
]


@pytest.mark.parametrize(("shared", "local", "published", "want"), [c[1:] for c in MERGE_CASES],
                         ids=[c[0] for c in MERGE_CASES])
def test_merge_tokens(shared: list[TokenEntry], local: list[TokenEntry], published: list[TokenEntry],
                      want: list[str]) -> None:
    assert [x.sha256 for x in merge_tokens(shared, local, published)] == want


def test_two_data_dirs_on_one_store_share_ca_sa_key_and_tokens(tmp_path: Path) -> None:
    clock = FakeClock()
    registry = Registry(MemoryStore(), clock)
    registry.create("namespaces", {"metadata": {"name": "kube-system"}})
    first, second = tmp_path / "a", tmp_path / "b"
    # the first data dir existed before (a single server's): its PKI becomes the store's
    ca_first, _ = ensure_ca(first, clock.now())
    token_a = TokenStore(first).create("alice", ("devs",))
    share_identity(registry, first, clock.now())
    clock.advance(5)
    ensure_ca(second, clock.now())  # a different CA of its own, replaced by the store's
    share_identity(registry, second, clock.now())
    assert (second / "pki/ca.crt").read_bytes() == (first / "pki/ca.crt").read_bytes()
    assert (second / "pki/ca.key").read_bytes() == (first / "pki/ca.key").read_bytes()
    assert (second / "pki/sa.key").read_bytes() == (first / "pki/sa.key").read_bytes()
    assert (second / "pki/ca.key").stat().st_mode & 0o777 == 0o600
    assert ensure_ca(second, clock.now())[0] == ca_first
    assert load_or_create_signing_key(second).private_numbers() == load_or_create_signing_key(first).private_numbers()

    shared_a = SharedTokenStore(first, registry, clock)
    shared_b = SharedTokenStore(second, registry, clock)
    assert shared_b.lookup(token_a, clock.now()) is not None  # from the Secret the first replica created
    token_b = TokenStore(second).create("bob", ("ops",))
    assert shared_a.lookup(token_b, clock.now()) is None
    assert shared_b.publish()
    clock.advance(3)  # past the shared table's cache
    found = shared_a.lookup(token_b, clock.now())
    assert found is not None and (found.name, found.groups) == ("bob", ("ops",))
    TokenStore(second).revoke("bob")
    assert shared_b.publish()
    clock.advance(3)
    assert shared_a.lookup(token_b, clock.now()) is None
    assert shared_a.lookup(token_a, clock.now()) is not None
