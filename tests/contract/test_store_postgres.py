"""What only the PostgreSQL store promises: several replicas on one database share one truth.

Why: the contract suite (test_store.py) checks one store at a time; here two or three
``PostgresStore`` instances (replicas) share one real database, and the real server is
restarted and killed under writes. Each test gets a fresh database (tests/support/postgres.py).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from joblet.errors import Conflict, Gone, InsufficientStorage
from joblet.security.encryption import AesGcmEncryption
from joblet.store import open_store, url_password
from joblet.store.interface import Key, Obj, WatchEvent
from joblet.store.postgres import PostgresStore
from support.postgres import PostgresServer

pytestmark = pytest.mark.postgres


def job(name: str, **spec: Any) -> Obj:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": "default"},
            "spec": dict(spec)}


def jkey(name: str) -> Key:
    return Key("jobs", "default", name, "batch")


def summary(events: list[WatchEvent]) -> list[tuple[str, str, int]]:
    return [(e.type, e.object["metadata"]["name"], e.resource_version) for e in events]


@pytest.fixture
def replicas(pg_url: str) -> Iterator[list[PostgresStore]]:
    """Three replicas on one database."""
    made: list[PostgresStore] = []
    for _ in range(3):
        store = open_store(pg_url)
        assert isinstance(store, PostgresStore)
        made.append(store)
    yield made
    for store in made:
        store.close()


async def collect(watch: Any, count: int, timeout: float = 10.0) -> list[WatchEvent]:
    got: list[WatchEvent] = []
    async with asyncio.timeout(timeout):
        while len(got) < count:
            got.extend(await watch.next_batch(timeout=timeout))
    return got


def test_replicas_see_each_others_writes_through_watches_with_the_same_rvs(replicas: list[PostgresStore]) -> None:
    a, b, c = replicas

    async def scenario() -> None:
        watches = [r.watch("jobs") for r in replicas]
        a.create(jkey("one"), job("one"))
        await asyncio.sleep(0)  # a's turn commits
        b.create(jkey("two"), job("two"))
        await asyncio.sleep(0)
        c.delete(jkey("one"))
        await asyncio.sleep(0)
        seen = [summary(await collect(w, 3)) for w in watches]
        assert seen[0] == [("ADDED", "one", 1), ("ADDED", "two", 2), ("DELETED", "one", 3)]
        assert seen[1] == seen[0] and seen[2] == seen[0]

    asyncio.run(scenario())
    for r in replicas:
        assert [o["metadata"]["name"] for o in r.list("jobs")[0]] == ["two"]
        assert r.current_rv == 3


def test_a_write_on_one_replica_is_read_on_another_after_sync(replicas: list[PostgresStore]) -> None:
    a, b, _ = replicas
    created = a.create(jkey("x"), job("x", parallelism=2))
    assert b.sync() == 1
    assert b.get(jkey("x")) == created


def test_an_event_written_on_one_replica_is_kept_as_json_and_read_on_another(replicas: list[PostgresStore]) -> None:
    a, b, _ = replicas
    key = Key("events", "default", "e")
    created = a.create(key, {"metadata": {"name": "e", "namespace": "default"}, "reason": "Started", "count": 1})
    assert b.sync() == 1
    assert b.get(key) == created and b.get(key) is not b.get(key)  # decoded afresh on each read
    bumped = b.update(key, {**created, "count": 2}, expected_rv=1)
    assert a.sync() == 2
    assert a.get(key) == bumped
    assert a.delete(key, expected_rv=2)["count"] == 2
    assert b.sync() == 3 and b.list("events")[0] == []


def test_concurrent_conflicting_updates_exactly_one_wins(replicas: list[PostgresStore]) -> None:
    first = replicas[0].create(jkey("race"), job("race"))
    for r in replicas:
        r.sync()
    expected = int(first["metadata"]["resourceVersion"])
    barrier = threading.Barrier(len(replicas))
    outcomes: list[str] = []

    def writer(i: int, store: PostgresStore) -> None:
        barrier.wait()
        try:
            store.update(jkey("race"), job("race", parallelism=i), expected_rv=expected)
            outcomes.append(f"won:{i}")
        except Conflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=writer, args=(i, r)) for i, r in enumerate(replicas)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    winners = [o for o in outcomes if o.startswith("won:")]
    assert len(winners) == 1 and outcomes.count("conflict") == len(replicas) - 1, outcomes
    winner = int(winners[0].split(":")[1])
    for r in replicas:
        r.sync()
        assert r.get(jkey("race"))["spec"]["parallelism"] == winner
        assert r.current_rv == expected + 1


def test_a_watch_resumes_on_another_replica_from_the_same_rv(replicas: list[PostgresStore]) -> None:
    a, b, _ = replicas
    a.create(jkey("j1"), job("j1"))
    resume_from = a.current_rv
    a.create(jkey("j2"), job("j2"))
    a.update(jkey("j1"), job("j1", parallelism=3))
    b.sync()
    assert summary(b.watch("jobs", since_rv=resume_from).poll()) == [("ADDED", "j2", 2), ("MODIFIED", "j1", 3)]
    # A replica opened later loads the retained history too.
    late = open_store(a._conninfo)
    try:
        assert summary(late.watch("jobs", since_rv=resume_from).poll()) == [("ADDED", "j2", 2), ("MODIFIED", "j1", 3)]
    finally:
        late.close()


def test_watch_from_a_compacted_rv_is_gone_on_every_replica(pg_url: str) -> None:
    a = open_store(pg_url, history_events=10)
    try:
        for i in range(600):  # crosses a compaction step: the events table keeps the last 10
            a.create(jkey(f"j{i}"), job(f"j{i}"))
        with psycopg.connect(pg_url) as conn:
            oldest = conn.execute("SELECT min(rv), count(*) FROM joblet_events").fetchone()
        assert oldest is not None and oldest[1] <= 110 and oldest[0] > 400
        late = open_store(pg_url, history_events=10)
        try:
            with pytest.raises(Gone):
                late.watch("jobs", since_rv=5)
            assert summary(late.watch("jobs", since_rv=598).poll()) == [("ADDED", "j598", 599), ("ADDED", "j599", 600)]
            assert len(late.list("jobs")[0]) == 600
        finally:
            late.close()
        with pytest.raises(Gone):
            a.watch("jobs", since_rv=5)
    finally:
        a.close()


def test_secrets_are_encrypted_at_rest_in_postgres(pg_url: str) -> None:
    enc = AesGcmEncryption([("key1", bytes(range(32)))])
    store = open_store(pg_url, encryption=enc)
    try:
        secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "default"},
                  "data": {"password": "aHVudGVyMg=="}}
        store.create(Key("secrets", "default", "s"), secret)
        with psycopg.connect(pg_url) as conn:
            rows = conn.execute("SELECT data FROM joblet_objects WHERE resource = 'secrets' "
                                "UNION ALL SELECT data FROM joblet_events WHERE resource = 'secrets'").fetchall()
        assert len(rows) == 2 and all(b"aHVudGVyMg" not in bytes(r[0]) for r in rows)
        other = open_store(pg_url, encryption=enc)
        try:
            assert other.get(Key("secrets", "default", "s"))["data"] == {"password": "aHVudGVyMg=="}
        finally:
            other.close()
    finally:
        store.close()


def test_secrets_in_clear_or_under_an_old_key_are_rewritten_at_open(pg_url: str) -> None:
    old = AesGcmEncryption([("old", bytes(32))])
    new = AesGcmEncryption([("new", bytes(range(32))), ("old", bytes(32))])
    secret_key = Key("secrets", "default", "s")
    plain = open_store(pg_url)
    plain.create(secret_key, {"apiVersion": "v1", "kind": "Secret",
                              "metadata": {"name": "s", "namespace": "default"}, "data": {"k": "c2VjcmV0"}})
    plain.close()

    def stored() -> list[bytes]:
        with psycopg.connect(pg_url) as conn:
            return [bytes(r[0]) for r in conn.execute(
                "SELECT data FROM joblet_objects WHERE resource = 'secrets' "
                "UNION ALL SELECT data FROM joblet_events WHERE resource = 'secrets'").fetchall()]

    assert all(b"c2VjcmV0" in d for d in stored())
    for enc, prefix in ((old, b"k8s:enc:aesgcm:v1:old:"), (new, b"k8s:enc:aesgcm:v1:new:")):
        store = open_store(pg_url, encryption=enc)
        try:
            assert store.get(secret_key)["data"] == {"k": "c2VjcmV0"}
        finally:
            store.close()
        assert [d[:len(prefix)] for d in stored()] == [prefix, prefix]


def wait_for(predicate: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.mark.parametrize("how", ["restart", "kill"])
def test_postgres_restart_mid_writes_loses_nothing_acknowledged(pg_server: PostgresServer, pg_url: str,
                                                                how: str) -> None:
    """A writer thread creates Jobs without pause while the server restarts (pg_ctl restart -m
    fast) or is SIGKILLed and started again: every acknowledged write is stored and reaches the
    other replica's watch exactly once, in rv order; the refused ones are nowhere."""
    writer = open_store(pg_url)
    watcher = open_store(pg_url)
    acknowledged: list[str] = []
    refused: list[str] = []
    stop = threading.Event()

    def write() -> None:
        i = 0
        while not stop.is_set():
            name = f"j{i}"
            i += 1
            try:
                writer.create(jkey(name), job(name))  # no loop: committed before it returns
                acknowledged.append(name)
            except InsufficientStorage:
                refused.append(name)

    try:
        async def scenario() -> list[WatchEvent]:
            watch = watcher.watch("jobs")
            thread = threading.Thread(target=write)
            thread.start()
            try:
                await asyncio.to_thread(wait_for, lambda: len(acknowledged) >= 100)
                if how == "restart":
                    await asyncio.to_thread(pg_server.restart)
                else:
                    await asyncio.to_thread(pg_server.kill)
                    await asyncio.to_thread(pg_server.start)
                after = len(acknowledged)
                await asyncio.to_thread(wait_for, lambda: len(acknowledged) >= after + 100)
            finally:
                stop.set()
                await asyncio.to_thread(thread.join, 60)
            return await collect(watch, len(acknowledged), timeout=60)

        events = asyncio.run(scenario())
        names = [e.object["metadata"]["name"] for e in events]
        assert names == acknowledged  # the watcher resumed after the restart: every write once, in order
        rvs = [e.resource_version for e in events]
        assert rvs == list(range(1, len(rvs) + 1))  # no rv lost or reused by a failed write
        fresh = open_store(pg_url)
        try:
            stored = {o["metadata"]["name"] for o in fresh.list("jobs")[0]}
        finally:
            fresh.close()
        assert stored == set(acknowledged) and not stored & set(refused)
        if how == "kill":
            assert refused, "the writes while the server was down must have been refused"
    finally:
        writer.close()
        watcher.close()


def test_store_url_password_is_found() -> None:
    assert url_password("postgresql://joblet:s3cret@db/joblet") == "s3cret"
    assert url_password("postgresql://db/joblet?password=s3cret") == "s3cret"
    assert url_password("postgresql://joblet@db/joblet") is None


def test_a_turn_whose_connection_dies_before_commit_is_not_acknowledged_and_leaves_no_trace(pg_url: str) -> None:
    """The writer's backend is terminated after two writes of a turn and before its commit: the
    flush (what the API server calls before answering) raises 507, the cache forgets both writes,
    watchers never see them, and the next write takes the same rv on a new connection."""
    store = open_store(pg_url)
    assert isinstance(store, PostgresStore)
    try:
        store.create(jkey("before"), job("before"))

        async def scenario() -> list[WatchEvent]:
            watch = store.watch("jobs")
            store.create(jkey("lost1"), job("lost1"))  # a turn: not committed until the loop turns
            store.update(jkey("before"), job("before", parallelism=9))
            with psycopg.connect(pg_url, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (store._db.info.backend_pid,))
            with pytest.raises(InsufficientStorage):
                store.flush()
            assert [o["metadata"]["name"] for o in store.list("jobs")[0]] == ["before"]
            assert store.get(jkey("before")).get("spec") == {}
            assert store.current_rv == 1
            store.create(jkey("after"), job("after"))
            await asyncio.sleep(0)
            return await collect(watch, 1)

        assert summary(asyncio.run(scenario())) == [("ADDED", "after", 2)]
        other = open_store(pg_url)
        try:
            assert sorted(o["metadata"]["name"] for o in other.list("jobs")[0]) == ["after", "before"]
            assert other.current_rv == 2
        finally:
            other.close()
    finally:
        store.close()


def test_a_commit_whose_answer_was_lost_is_looked_up_by_its_turn_tag(pg_url: str) -> None:
    """When COMMIT loses its connection, the store reconnects and asks whether its turn's last
    event is there with its own tag: yes only for the very turn that committed."""
    store = open_store(pg_url)
    assert isinstance(store, PostgresStore)
    try:
        store.create(jkey("a"), job("a"))  # turn 1, rv 1
        tag = f"{store.replica_id}:1"
        assert store._committed_after_all(tag, 1)
        assert not store._committed_after_all(f"{store.replica_id}:2", 1)  # another turn of ours
        assert not store._committed_after_all(tag, 2)  # an rv nobody wrote
        other = open_store(pg_url)
        try:
            other.create(jkey("b"), job("b"))  # rv 2, another replica's turn 1
            assert not store._committed_after_all(tag, 2)
        finally:
            other.close()
        store.create(jkey("c"), job("c"))  # still writes after the reconnects
        assert store.current_rv == 3
    finally:
        store.close()
