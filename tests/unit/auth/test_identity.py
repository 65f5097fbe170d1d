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
    ("first-publish-adds-all", [], [e("a"), e("b")], [("me", "a"), ("me", "b")]),
    ("keeps-other-replicas", [("other", e("x"))], [e("a")], [("other", "x"), ("me", "a")]),
    ("gained-entry-added", [("other", e("x")), ("me", e("a"))], [e("a"), e("b")],
     [("other", "x"), ("me", "a"), ("me", "b")]),
    ("revoked-entry-removed-even-after-a-restart", [("other", e("x")), ("me", e("a")), ("me", e("b"))], [e("a")],
     [("other", "x"), ("me", "a")]),
    ("others-entries-not-removed-by-absence", [("other", e("x"))], [], [("other", "x")]),
]


@pytest.mark.parametrize(("shared", "local", "want"), [c[1:] for c in MERGE_CASES], ids=[c[0] for c in MERGE_CASES])
def test_merge_tokens(shared: list[tuple[str, TokenEntry]], local: list[TokenEntry],
                      want: list[tuple[str, str]]) -> None:
    assert [(o, x.sha256) for o, x in merge_tokens(shared, local, "me")] == want


def test_two_data_dirs_on_one_store_share_ca_sa_key_and_tokens(tmp_path: Path) -> None:
    clock = FakeClock()
    registry = Registry(MemoryStore(), clock)
    registry.create("namespaces", {"metadata": {"name": "kube-system"}})
    first, second = tmp_path / "a", tmp_path / "b"
    # the first data dir existed before (a single server's): its PKI becomes the store's
    ca_first, _ = ensure_ca(first, clock.now())
    token_a = TokenStore(first).create("alice", ("devs",))
    share_identity(registry, first, "a", clock.now())
    clock.advance(5)
    ensure_ca(second, clock.now())  # a different CA of its own, replaced by the store's
    share_identity(registry, second, "b", clock.now())
    assert (second / "pki/ca.crt").read_bytes() == (first / "pki/ca.crt").read_bytes()
    assert (second / "pki/ca.key").read_bytes() == (first / "pki/ca.key").read_bytes()
    assert (second / "pki/sa.key").read_bytes() == (first / "pki/sa.key").read_bytes()
    assert (second / "pki/ca.key").stat().st_mode & 0o777 == 0o600
    assert ensure_ca(second, clock.now())[0] == ca_first
    assert load_or_create_signing_key(second).private_numbers() == load_or_create_signing_key(first).private_numbers()

    shared_a = SharedTokenStore(first, registry, clock, "a")
    shared_b = SharedTokenStore(second, registry, clock, "b")
    assert shared_b.lookup(token_a, clock.now()) is not None  # from the Secret the first replica created
    token_b = TokenStore(second).create("bob", ("ops",))
    assert shared_a.lookup(token_b, clock.now()) is None
    assert shared_b.publish()
    clock.advance(3)  # past the shared table's cache
    found = shared_a.lookup(token_b, clock.now())
    assert found is not None and (found.name, found.groups) == ("bob", ("ops",))
    TokenStore(second).revoke("bob")
    # the replica whose file it was refuses it at once, before publishing and within the cache
    assert shared_b.lookup(token_b, clock.now()) is None
    assert shared_b.publish()
    clock.advance(3)
    assert shared_a.lookup(token_b, clock.now()) is None
    assert shared_a.lookup(token_a, clock.now()) is not None
    # a revocation made while the replica was down leaves the shared table on its next publish
    TokenStore(first).revoke("alice")
    restarted = SharedTokenStore(first, registry, clock, "a")
    assert restarted.publish()
    clock.advance(3)
    assert shared_b.lookup(token_a, clock.now()) is None
