"""One contract suite for every store backend (memory; SQLite in a temp dir).

Why: the registry, the watch cache and every controller rely on the same promises from
whichever backend runs — one resourceVersion order, optimistic concurrency, watches that
resume or answer 410 Gone, events only after commit. Each test runs against each backend;
SQLite-only tests cover durability (reopen, SIGKILL after flush).
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import inspect
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from joblet.errors import AlreadyExists, BadRequest, Conflict, Gone, NotFound
from joblet.store import BACKENDS, MemoryStore, SqliteStore, UnknownStore, open_store
from joblet.store.interface import Key, Obj, Store, WatchEvent
from joblet.store.paging import MAX_SNAPSHOTS, Continue, ContinueExpired
from joblet.store.sharing import SharedValues
from joblet.store.watch import DEFAULT_HISTORY_BYTES, DEFAULT_HISTORY_EVENTS

StoreFactory = Callable[..., MemoryStore]

#: a URL for each row of the backend table (a new backend fails test_every_backend_has_a_url
#: until it gets one here, and then runs the whole suite)
URLS: dict[str, Callable[[Path, pytest.FixtureRequest], str]] = {
    "memory": lambda d, r: "memory://",
    "sqlite": lambda d, r: f"sqlite://{d}/joblet.db",
    # a fresh database on the session's real PostgreSQL (tests/support/postgres.py)
    "postgresql": lambda d, r: r.getfixturevalue("pg_server").create_database(),
}


def test_every_backend_has_a_url() -> None:
    assert set(URLS) == set(BACKENDS)


@pytest.fixture(params=[pytest.param(b, marks=[pytest.mark.postgres] if b == "postgresql" else [])
                        for b in sorted(BACKENDS)])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """A factory (so tests can pass history bounds); every store it made is closed afterwards."""
    made: list[MemoryStore] = []

    def make(history_events: int = DEFAULT_HISTORY_EVENTS, history_bytes: int = DEFAULT_HISTORY_BYTES) -> MemoryStore:
        store = open_store(URLS[request.param](tmp_path / f"store{len(made)}", request), history_events=history_events,
                           history_bytes=history_bytes)
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


@pytest.fixture
def store(make_store: StoreFactory) -> MemoryStore:
    return make_store()


def job(name: str, namespace: str = "default", **spec: Any) -> Obj:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": namespace},
            "spec": dict(spec)}


def jkey(name: str, namespace: str = "default") -> Key:
    return Key("jobs", namespace, name, "batch")


def rv(obj: Obj) -> int:
    value = obj["metadata"]["resourceVersion"]
    assert isinstance(value, str)
    return int(value)


def names(objs: list[Obj]) -> list[str]:
    return [f"{o['metadata'].get('namespace', '')}/{o['metadata']['name']}" for o in objs]


def summary(events: list[WatchEvent]) -> list[tuple[str, str, int]]:
    return [(e.type, e.object["metadata"]["name"], e.resource_version) for e in events]


def test_backends_satisfy_the_store_protocol(store: MemoryStore) -> None:
    typed: Store = store
    assert typed.current_rv == 0


# -- create / get ---------------------------------------------------------------------


def test_create_sets_string_resource_version_and_get_returns_it(store: MemoryStore) -> None:
    created = store.create(jkey("a"), job("a"))
    assert created["metadata"]["resourceVersion"] == "1"
    assert store.get(jkey("a")) is created
    assert store.current_rv == 1


def test_create_of_existing_key_raises_already_exists(store: MemoryStore) -> None:
    store.create(jkey("a"), job("a"))
    with pytest.raises(AlreadyExists) as err:
        store.create(jkey("a"), job("a"))
    assert str(err.value) == 'jobs.batch "a" already exists'
    assert store.current_rv == 1


@pytest.mark.parametrize(
    ("key", "message"),
    [
        pytest.param(Key("jobs", "default", "nope", "batch"), 'jobs.batch "nope" not found', id="grouped-resource"),
        pytest.param(Key("pods", "default", "nope"), 'pods "nope" not found', id="core-resource"),
        pytest.param(Key("widgets", "default", "nope"), 'widgets "nope" not found', id="unknown-resource"),
        pytest.param(Key("jobs", "other", "a", "batch"), 'jobs.batch "a" not found', id="same-name-other-namespace"),
    ],
)
def test_get_of_missing_key_raises_not_found(store: MemoryStore, key: Key, message: str) -> None:
    store.create(jkey("a"), job("a"))
    with pytest.raises(NotFound) as err:
        store.get(key)
    assert str(err.value) == message


def test_cluster_scoped_objects_use_the_empty_namespace(store: MemoryStore) -> None:
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}
    store.create(Key("namespaces", "", "team-a"), ns)
    assert store.get(Key("namespaces", "", "team-a")) is ns
    assert names(store.list("namespaces")[0]) == ["/team-a"]


# -- list -----------------------------------------------------------------------------


@pytest.fixture
def populated(store: MemoryStore) -> MemoryStore:
    for ns, name in [("b", "y"), ("a", "z"), ("b", "x"), ("a", "c"), ("c", "a")]:
        store.create(jkey(name, ns), job(name, ns, parallelism=len(name + ns)))
    store.create(Key("pods", "a", "p"), {"metadata": {"name": "p", "namespace": "a"}})
    return store


@pytest.mark.parametrize(
    ("namespace", "predicate", "expected"),
    [
        pytest.param(None, None, ["a/c", "a/z", "b/x", "b/y", "c/a"], id="all-namespaces-sorted"),
        pytest.param("", None, ["a/c", "a/z", "b/x", "b/y", "c/a"], id="empty-namespace-means-all"),
        pytest.param("b", None, ["b/x", "b/y"], id="one-namespace-sorted"),
        pytest.param("nowhere", None, [], id="unknown-namespace-empty"),
        pytest.param(None, lambda o: o["metadata"]["name"] in ("x", "z"), ["a/z", "b/x"], id="predicate"),
        pytest.param("a", lambda o: o["metadata"]["name"] == "c", ["a/c"], id="namespace-and-predicate"),
    ],
)
def test_list_returns_objects_sorted_by_namespace_then_name(
    populated: MemoryStore, namespace: str | None, predicate: Callable[[Obj], bool] | None, expected: list[str]
) -> None:
    objs, list_rv = populated.list("jobs", namespace, predicate)
    assert names(objs) == expected
    assert list_rv == populated.current_rv == 6


def test_list_of_resource_never_written_is_empty_with_current_rv(populated: MemoryStore) -> None:
    assert populated.list("cronjobs") == ([], 6)


# -- update ---------------------------------------------------------------------------


def test_update_with_matching_expected_rv_replaces_object(store: MemoryStore) -> None:
    created = store.create(jkey("a"), job("a", parallelism=1))
    updated = store.update(jkey("a"), job("a", parallelism=2), expected_rv=rv(created))
    assert rv(updated) == 2
    assert store.get(jkey("a"))["spec"] == {"parallelism": 2}


def test_update_without_expected_rv_is_unconditional(store: MemoryStore) -> None:
    store.create(jkey("a"), job("a"))
    store.update(jkey("a"), job("a", parallelism=2))
    store.update(jkey("a"), job("a", parallelism=3))
    assert store.get(jkey("a"))["metadata"]["resourceVersion"] == "3"


def test_update_with_stale_expected_rv_raises_conflict_and_keeps_object(store: MemoryStore) -> None:
    created = store.create(jkey("a"), job("a", parallelism=1))
    store.update(jkey("a"), job("a", parallelism=2))
    with pytest.raises(Conflict) as err:
        store.update(jkey("a"), job("a", parallelism=3), expected_rv=rv(created))
    assert str(err.value) == (
        'Operation cannot be fulfilled on jobs.batch "a": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    assert store.get(jkey("a"))["spec"] == {"parallelism": 2}
    assert store.current_rv == 2


def test_update_of_missing_key_raises_not_found(store: MemoryStore) -> None:
    with pytest.raises(NotFound):
        store.update(jkey("a"), job("a"))
    assert store.current_rv == 0


# -- delete ---------------------------------------------------------------------------


def test_delete_returns_object_with_new_rv_and_leaves_shared_object_untouched(store: MemoryStore) -> None:
    created = store.create(jkey("a"), job("a"))
    deleted = store.delete(jkey("a"))
    assert rv(deleted) == 2
    assert deleted["spec"] == created["spec"]
    assert created["metadata"]["resourceVersion"] == "1"
    with pytest.raises(NotFound):
        store.get(jkey("a"))
    assert store.list("jobs")[0] == []


def test_delete_with_stale_expected_rv_raises_conflict(store: MemoryStore) -> None:
    store.create(jkey("a"), job("a"))
    store.update(jkey("a"), job("a", parallelism=2))
    with pytest.raises(Conflict):
        store.delete(jkey("a"), expected_rv=1)
    assert rv(store.delete(jkey("a"), expected_rv=2)) == 3


def test_delete_of_missing_key_raises_not_found(store: MemoryStore) -> None:
    with pytest.raises(NotFound) as err:
        store.delete(Key("pods", "default", "p"))
    assert str(err.value) == 'pods "p" not found'


def test_name_can_be_reused_after_delete(store: MemoryStore) -> None:
    store.create(jkey("a"), job("a"))
    store.delete(jkey("a"))
    assert rv(store.create(jkey("a"), job("a"))) == 3


# -- resourceVersion ------------------------------------------------------------------


def test_resource_version_is_one_global_monotonic_counter(store: MemoryStore) -> None:
    seen = [
        rv(store.create(jkey("a"), job("a"))),
        rv(store.create(Key("pods", "default", "p"), {"metadata": {"name": "p"}})),
        rv(store.update(jkey("a"), job("a"))),
        rv(store.delete(Key("pods", "default", "p"))),
        rv(store.create(Key("namespaces", "", "n"), {"metadata": {"name": "n"}})),
    ]
    assert seen == [1, 2, 3, 4, 5]
    assert store.current_rv == 5


def test_failed_writes_do_not_consume_resource_versions(store: MemoryStore) -> None:
    store.create(jkey("a"), job("a"))
    attempts: list[Callable[[], Obj]] = [
        lambda: store.create(jkey("a"), job("a")),
        lambda: store.update(jkey("b"), job("b")),
        lambda: store.update(jkey("a"), job("a"), expected_rv=99),
        lambda: store.delete(jkey("b")),
    ]
    for attempt in attempts:
        with pytest.raises((AlreadyExists, NotFound, Conflict)):
            attempt()
    assert store.current_rv == 1


# -- watch ----------------------------------------------------------------------------


def test_watch_from_now_sees_only_later_events_in_order(store: MemoryStore) -> None:
    store.create(jkey("old"), job("old"))
    watch = store.watch("jobs")
    store.create(jkey("a"), job("a"))
    store.update(jkey("a"), job("a", parallelism=2))
    store.create(Key("pods", "default", "p"), {"metadata": {"name": "p", "namespace": "default"}})
    store.delete(jkey("a"))
    events = watch.poll()
    assert summary(events) == [("ADDED", "a", 2), ("MODIFIED", "a", 3), ("DELETED", "a", 5)]
    assert rv(events[-1].object) == 5
    assert events[-1].object["spec"] == {"parallelism": 2}
    assert watch.poll() == []


def test_watch_replays_events_after_a_resource_version(store: MemoryStore) -> None:
    store.create(jkey("a"), job("a"))  # 1
    store.create(jkey("b"), job("b"))  # 2
    store.update(jkey("a"), job("a", parallelism=2))  # 3
    store.delete(jkey("b"))  # 4
    watch = store.watch("jobs", since_rv=2)
    assert summary(watch.poll()) == [("MODIFIED", "a", 3), ("DELETED", "b", 4)]
    store.create(jkey("c"), job("c"))
    assert summary(watch.poll()) == [("ADDED", "c", 5)]


def test_watch_from_zero_replays_everything_on_a_fresh_store(store: MemoryStore) -> None:
    store.create(jkey("a"), job("a"))
    store.create(jkey("b"), job("b"))
    assert summary(store.watch("jobs", since_rv=0).poll()) == [("ADDED", "a", 1), ("ADDED", "b", 2)]


def test_watch_from_current_rv_replays_nothing(store: MemoryStore) -> None:
    store.create(jkey("a"), job("a"))
    watch = store.watch("jobs", since_rv=store.current_rv)
    assert watch.poll() == []
    store.create(jkey("b"), job("b"))
    assert summary(watch.poll()) == [("ADDED", "b", 2)]


def test_watch_of_one_namespace_filters_replay_and_live_events(store: MemoryStore) -> None:
    store.create(jkey("a", "ns1"), job("a", "ns1"))
    store.create(jkey("b", "ns2"), job("b", "ns2"))
    watch = store.watch("jobs", "ns2", since_rv=0)
    everywhere = store.watch("jobs")
    store.create(jkey("c", "ns1"), job("c", "ns1"))
    store.create(jkey("d", "ns2"), job("d", "ns2"))
    assert summary(watch.poll()) == [("ADDED", "b", 2), ("ADDED", "d", 4)]
    assert summary(everywhere.poll()) == [("ADDED", "c", 3), ("ADDED", "d", 4)]


def test_watch_older_than_history_raises_gone(make_store: StoreFactory) -> None:
    store = make_store(history_events=2)
    for name in "abcd":
        store.create(jkey(name), job(name))  # rv 1..4; history keeps 3, 4
    with pytest.raises(Gone) as err:
        store.watch("jobs", since_rv=1)
    assert str(err.value) == "too old resource version: 1 (2)"
    assert err.value.code == 410
    assert summary(store.watch("jobs", since_rv=2).poll()) == [("ADDED", "c", 3), ("ADDED", "d", 4)]
    assert store.watch("jobs", since_rv=4).poll() == []


def test_history_is_kept_per_resource(make_store: StoreFactory) -> None:
    store = make_store(history_events=2)
    store.create(jkey("a"), job("a"))  # 1
    for i in range(5):
        store.create(Key("pods", "default", f"p{i}"), {"metadata": {"name": f"p{i}"}})
    assert summary(store.watch("jobs", since_rv=0).poll()) == [("ADDED", "a", 1)]
    with pytest.raises(Gone):
        store.watch("pods", since_rv=0)


def test_history_is_bounded_by_bytes(make_store: StoreFactory) -> None:
    store = make_store(history_bytes=1000)
    for i in range(20):
        store.create(jkey(f"j{i}"), job(f"j{i}", payload="x" * 200))
    with pytest.raises(Gone):
        store.watch("jobs", since_rv=0)
    assert len(store.watch("jobs", since_rv=18).poll()) == 2  # ~300 bytes + 160 overhead each: 2 fit


def pod_like(i: int) -> Obj:
    """A pod of the shape (~1.3 KB JSON) the node agent writes: nested dicts and lists."""
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "default", "uid": f"uid-{i}",
                         "labels": {"batch.kubernetes.io/job-name": "soak", "controller-uid": f"c-{i}"},
                         "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "soak", "uid": "u",
                                              "controller": True, "blockOwnerDeletion": True}]},
            "spec": {"restartPolicy": "Never", "nodeName": "n1", "containers": [
                {"name": "c", "image": "busybox", "command": ["sh", "-c", f"echo {i}"],
                 "env": [{"name": f"E{k}", "value": str(k)} for k in range(8)],
                 "resources": {}, "terminationMessagePath": "/dev/termination-log"}]},
            "status": {"phase": "Succeeded", "conditions": [
                {"type": t, "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}
                for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")],
                "containerStatuses": [{"name": "c", "ready": False, "restartCount": 0, "image": "busybox",
                                       "state": {"terminated": {"exitCode": 0, "reason": "Completed",
                                                                "startedAt": "2026-01-01T00:00:00Z",
                                                                "finishedAt": "2026-01-01T00:00:01Z"}}}]}}


def test_history_memory_is_bounded_by_its_byte_bound(make_store: StoreFactory) -> None:
    """What the history holds in memory stays within history_bytes (it keeps JSON, not dicts: a
    dict history of these pods took ~4.7x the bound and grew a soak's RSS for an hour)."""
    bound = 2**20
    store = make_store(history_bytes=bound)
    key = Key("pods", "default", "p")
    store.create(key, pod_like(0))
    # Not counted: the interpreter's table of interned strings (the store interns string values)
    # growing its hash table for this test's 9,000 distinct strings; it is sized by the strings
    # alive. Nor the store's bounded table of shared sub-objects (tests/unit/store), emptied below.
    source, first = inspect.getsourcelines(SharedValues)
    interning = [tracemalloc.Filter(False, inspect.getfile(SharedValues), first + n)
                 for n, line in enumerate(source) if "intern(v)" in line]
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot().filter_traces(interning)
        for i in range(1, 3001):  # each update a fresh object, as the registry makes them
            store.update(key, pod_like(i))
        store.flush()
        store._shared.clear()
        gc.collect()
        after = tracemalloc.take_snapshot().filter_traces(interning)
        held = sum(s.size_diff for s in after.compare_to(before, "filename"))
    finally:
        tracemalloc.stop()
    assert 3000 * len(orjson.dumps(pod_like(1))) > 3 * bound  # unbounded, it would not fit
    assert held < 1.25 * bound, f"{held / 2**20:.1f} MiB held for a {bound / 2**20:.0f} MiB history"
    with pytest.raises(Gone):
        store.watch("pods", since_rv=1)
    replayed = store.watch("pods", since_rv=store.current_rv - 2).poll()
    assert [e.object["metadata"]["uid"] for e in replayed] == ["uid-2999", "uid-3000"]


def test_closed_watch_receives_nothing(store: MemoryStore) -> None:
    watch = store.watch("jobs")
    watch.close()
    store.create(jkey("a"), job("a"))
    assert watch.poll() == []


# -- flush and async delivery ---------------------------------------------------------


def test_writes_inside_a_running_loop_are_delivered_after_the_loop_turn(store: MemoryStore) -> None:
    async def scenario() -> None:
        watch = store.watch("jobs")
        store.create(jkey("a"), job("a"))
        store.create(jkey("b"), job("b"))
        assert store.get(jkey("a"))["metadata"]["name"] == "a"  # reads see writes at once
        assert watch.poll() == []  # but watchers only after the flush
        await asyncio.sleep(0)
        assert summary(watch.poll()) == [("ADDED", "a", 1), ("ADDED", "b", 2)]

    asyncio.run(scenario())


def test_explicit_flush_delivers_pending_events(store: MemoryStore) -> None:
    async def scenario() -> None:
        watch = store.watch("jobs")
        store.create(jkey("a"), job("a"))
        store.flush()
        assert summary(watch.poll()) == [("ADDED", "a", 1)]
        await asyncio.sleep(0)  # the scheduled flush finds nothing left to do
        assert watch.poll() == []

    asyncio.run(scenario())


def test_watch_from_now_ignores_writes_pending_before_it_started(store: MemoryStore) -> None:
    async def scenario() -> None:
        store.create(jkey("a"), job("a"))
        watch = store.watch("jobs")  # "now" is rv 1, even though rv 1 is not flushed yet
        store.create(jkey("b"), job("b"))
        await asyncio.sleep(0)
        assert summary(watch.poll()) == [("ADDED", "b", 2)]

    asyncio.run(scenario())


def test_watch_from_rv_gets_pending_writes_once_flushed(store: MemoryStore) -> None:
    async def scenario() -> None:
        store.create(jkey("a"), job("a"))
        store.flush()
        store.create(jkey("b"), job("b"))
        watch = store.watch("jobs", since_rv=0)
        assert summary(watch.poll()) == [("ADDED", "a", 1)]
        await asyncio.sleep(0)
        assert summary(watch.poll()) == [("ADDED", "b", 2)]

    asyncio.run(scenario())


def test_next_batch_wakes_on_event_times_out_empty_and_stops_after_close(store: MemoryStore) -> None:
    async def scenario() -> None:
        watch = store.watch("jobs")
        assert await watch.next_batch(timeout=0.01) == []

        async def writer() -> None:
            await asyncio.sleep(0)
            store.create(jkey("a"), job("a"))
            store.create(jkey("b"), job("b"))

        task = asyncio.create_task(writer())
        batch = await watch.next_batch(timeout=5)
        await task
        assert summary(batch) == [("ADDED", "a", 1), ("ADDED", "b", 2)]

        waiting = asyncio.create_task(watch.next_batch())
        await asyncio.sleep(0)
        watch.close()
        with pytest.raises(StopAsyncIteration):
            await waiting
        with pytest.raises(StopAsyncIteration):
            await watch.next_batch(timeout=0.01)

    asyncio.run(scenario())


def test_write_from_another_thread_wakes_a_watcher_on_the_loop(store: MemoryStore) -> None:
    async def scenario() -> None:
        watch = store.watch("jobs")
        waiting = asyncio.create_task(watch.next_batch(timeout=5))
        await asyncio.sleep(0)
        await asyncio.to_thread(store.create, jkey("a"), job("a"))  # no loop there: flushed at once
        assert summary(await waiting) == [("ADDED", "a", 1)]

    asyncio.run(scenario())


def test_store_close_ends_every_watch(make_store: StoreFactory) -> None:
    store = make_store()

    async def scenario() -> None:
        watch = store.watch("jobs")
        waiting = asyncio.create_task(watch.next_batch())
        await asyncio.sleep(0)
        store.close()
        with pytest.raises(StopAsyncIteration):
            await waiting

    asyncio.run(scenario())


def test_many_watchers_each_get_the_whole_stream(store: MemoryStore) -> None:
    async def scenario() -> None:
        watches = [store.watch("jobs") for _ in range(50)]
        for i in range(20):
            store.create(jkey(f"j{i}"), job(f"j{i}"))
        batches = await asyncio.gather(*(w.next_batch(timeout=5) for w in watches))
        assert all(len(b) == 20 for b in batches)

    asyncio.run(scenario())


# -- SQLite durability ----------------------------------------------------------------


def test_sqlite_objects_and_rv_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "joblet.db"
    store = SqliteStore(path)
    store.create(jkey("a"), job("a", parallelism=1))
    store.create(jkey("b", "ns2"), job("b", "ns2"))
    store.update(jkey("a"), job("a", parallelism=2))
    store.create(jkey("gone"), job("gone"))
    store.delete(jkey("gone"))  # rv 5: the newest write is a delete
    store.close()

    reopened = SqliteStore(path)
    try:
        assert reopened.current_rv == 5
        assert reopened.get(jkey("a"))["spec"] == {"parallelism": 2}
        assert reopened.get(jkey("a"))["metadata"]["resourceVersion"] == "3"
        assert names(reopened.list("jobs")[0]) == ["default/a", "ns2/b"]
        with pytest.raises(NotFound):
            reopened.get(jkey("gone"))
        assert rv(reopened.create(jkey("c"), job("c"))) == 6
    finally:
        reopened.close()


def test_sqlite_watch_after_reopen_is_gone_before_the_reopen_rv(tmp_path: Path) -> None:
    path = tmp_path / "joblet.db"
    store = SqliteStore(path)
    store.create(jkey("a"), job("a"))
    store.create(jkey("b"), job("b"))
    store.close()

    reopened = SqliteStore(path)
    try:
        with pytest.raises(Gone) as err:
            reopened.watch("jobs", since_rv=1)
        assert str(err.value) == "too old resource version: 1 (2)"
        watch = reopened.watch("jobs", since_rv=2)
        assert watch.poll() == []
        reopened.create(jkey("c"), job("c"))
        assert summary(watch.poll()) == [("ADDED", "c", 3)]
    finally:
        reopened.close()


def _rows_seen_by_another_connection(path: Path) -> int:
    with sqlite3.connect(path) as other:
        count: int = other.execute("SELECT count(*) FROM objects").fetchone()[0]
    return count


def test_sqlite_commits_once_per_loop_turn(tmp_path: Path) -> None:
    path = tmp_path / "joblet.db"
    store = SqliteStore(path)

    async def scenario() -> None:
        for i in range(100):
            store.create(jkey(f"j{i}"), job(f"j{i}"))
        assert _rows_seen_by_another_connection(path) == 0  # nothing committed mid-turn
        await asyncio.sleep(0)
        assert _rows_seen_by_another_connection(path) == 100

    try:
        asyncio.run(scenario())
    finally:
        store.close()


def test_sqlite_sync_writes_are_durable_when_they_return(tmp_path: Path) -> None:
    path = tmp_path / "joblet.db"
    store = SqliteStore(path)
    try:
        store.create(jkey("a"), job("a"))
        assert _rows_seen_by_another_connection(path) == 1
        store.delete(jkey("a"))
        assert _rows_seen_by_another_connection(path) == 0
    finally:
        store.close()


_WRITER = textwrap.dedent(
    """
    import asyncio, sys, time
    from joblet.store import SqliteStore
    from joblet.store.interface import Key

    store = SqliteStore(sys.argv[1])

    async def main() -> None:
        for i in range(300):
            store.create(Key("pods", "default", f"p{i}"), {"metadata": {"name": f"p{i}"}, "spec": {"i": i}})
            if i % 7 == 0:
                store.update(Key("pods", "default", f"p{i}"), {"metadata": {"name": f"p{i}"}, "spec": {"i": -i}})
            if i % 50 == 0:
                await asyncio.sleep(0)
        store.delete(Key("pods", "default", "p1"))
        store.flush()
        print(store.current_rv, flush=True)
        time.sleep(60)

    asyncio.run(main())
    """
)


def test_sqlite_loses_nothing_flushed_when_the_process_is_killed(tmp_path: Path) -> None:
    path = tmp_path / "joblet.db"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE, env=env)
    try:
        assert proc.stdout is not None
        flushed_rv = int(proc.stdout.readline())
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL

    store = SqliteStore(path)
    try:
        assert store.current_rv == flushed_rv == 300 + 43 + 1
        pods = store.list("pods")[0]
        assert len(pods) == 299
        assert store.get(Key("pods", "default", "p7"))["spec"] == {"i": -7}
        assert store.get(Key("pods", "default", "p8"))["spec"] == {"i": 8}
    finally:
        store.close()


# -- open_store -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "backend", "db_file"),
    [
        pytest.param("memory", MemoryStore, None, id="memory"),
        pytest.param("{tmp}/data", SqliteStore, "data/joblet.db", id="data-dir"),
        pytest.param("{tmp}/x.db", SqliteStore, "x.db", id="db-file"),
        pytest.param("sqlite://{tmp}/y.sqlite", SqliteStore, "y.sqlite", id="sqlite-url"),
        pytest.param("memory://", MemoryStore, None, id="memory-url"),
    ],
)
def test_open_store_picks_backend(tmp_path: Path, spec: str, backend: type, db_file: str | None) -> None:
    store = open_store(spec.format(tmp=tmp_path))
    try:
        assert type(store) is backend
        if db_file is not None:
            assert (tmp_path / db_file).exists()
    finally:
        store.close()


@pytest.mark.parametrize("url", ["postgresql://db/joblet?nosuch=1", "sqlite://", "memory://x", "file:///tmp/x.db"])
def test_a_url_no_backend_takes_is_refused_before_anything_opens(url: str) -> None:
    with pytest.raises(UnknownStore):
        open_store(url)


def _fresh(text: str) -> str:
    """An equal string that is a distinct object (as each JSON decode makes)."""
    return "".join(list(text))


def test_stored_objects_share_their_equal_string_values(make_store: StoreFactory, tmp_path: Path) -> None:
    # Retained objects (a Job's finished pods, their Events) repeat most of their strings: the
    # store keeps one copy of each, in the objects it serves and in those it loads from disk.
    store = make_store()
    a = store.create(jkey("a"), job("a", image=_fresh("busybox:1.36"), args=[_fresh("sleep"), {"x": _fresh("y")}]))
    b = store.create(jkey("b"), job("b", image=_fresh("busybox:1.36"), args=[_fresh("sleep"), {"x": _fresh("y")}]))
    assert a["spec"]["image"] is b["spec"]["image"]
    assert a["spec"]["args"][0] is b["spec"]["args"][0]
    assert a["spec"]["args"][1]["x"] is b["spec"]["args"][1]["x"]
    assert a["metadata"]["namespace"] is b["metadata"]["namespace"]
    # An update that shares the old version's spec keeps it shared; its new values are shared too.
    new = {**a, "metadata": dict(a["metadata"]), "status": {"image": _fresh("busybox:1.36")}}
    updated = store.update(jkey("a"), new, rv(a))
    assert updated["spec"] is a["spec"] and updated["status"]["image"] is b["spec"]["image"]
    assert store.get(jkey("a"))["spec"] == {"image": "busybox:1.36", "args": ["sleep", {"x": "y"}]}


def event(name: str, count: int = 1) -> Obj:
    return {"apiVersion": "v1", "kind": "Event", "metadata": {"name": name, "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"}, "reason": "Started",
            "count": count, "source": {"component": "kubelet"}}


def ekey(name: str) -> Key:
    return Key("events", "default", name)


def test_events_kept_as_json_read_back_as_written_and_never_shared(make_store: StoreFactory) -> None:
    # The index keeps an Event packed (ENCODED_RESOURCES): each read decodes a private copy.
    store = make_store()
    written = store.create(ekey("e1"), event("e1"))
    store.create(ekey("e2"), event("e2"))
    first, second = store.get(ekey("e1")), store.get(ekey("e1"))
    assert first == second == written == {**event("e1"), "metadata": {**event("e1")["metadata"], "resourceVersion": "1"}}
    assert first is not second and first["involvedObject"] is not second["involvedObject"]
    first["involvedObject"]["name"] = "mutated"  # a reader's copy: nobody else sees it
    assert store.get(ekey("e1"))["involvedObject"]["name"] == "p"
    listed, _ = store.list("events", "default")
    assert [e["metadata"]["name"] for e in listed] == ["e1", "e2"]
    assert store.list("events", None, lambda e: e["metadata"]["name"] == "e2")[0] == [store.get(ekey("e2"))]
    # Preconditions, updates and deletes see the stored version.
    with pytest.raises(Conflict):
        store.update(ekey("e1"), event("e1", count=2), expected_rv=2)
    bumped = store.update(ekey("e1"), event("e1", count=2), expected_rv=1)
    assert store.get(ekey("e1"))["count"] == 2 == bumped["count"]
    deleted = store.delete(ekey("e2"), expected_rv=2)
    assert deleted["count"] == 1 and rv(deleted) == 4
    with pytest.raises(NotFound):
        store.get(ekey("e2"))
    assert summary(store.watch("events", since_rv=0).poll()) == [
        ("ADDED", "e1", 1), ("ADDED", "e2", 2), ("MODIFIED", "e1", 3), ("DELETED", "e2", 4)]


def test_list_written_through_reads_only_what_was_written_up_to_that_rv(make_store: StoreFactory) -> None:
    # Each namespace keeps its objects in write order, so the list stops at the first later one.
    store = make_store()
    for name in ("e1", "e2", "e3"):
        store.create(ekey(name), event(name))
    store.create(Key("events", "other", "o1"), {**event("o1"), "metadata": {"name": "o1", "namespace": "other"}})
    store.update(ekey("e1"), event("e1", count=2), expected_rv=1)  # rv 5: now written last
    store.delete(ekey("e2"))  # rv 6
    read: list[str] = []

    def reading(obj: Obj) -> bool:
        read.append(obj["metadata"]["name"])
        return True

    listed, rv = store.list("events", None, reading, written_through=4)
    assert rv == 6 and [e["metadata"]["name"] for e in listed] == ["e3", "o1"]
    assert sorted(read) == ["e3", "o1"]  # e1 (rv 5) ended the walk of default: not even read
    assert [e["metadata"]["name"] for e in store.list("events", "default", written_through=5)[0]] == ["e3", "e1"]
    assert store.list("events", "default", written_through=2)[0] == []


def involving(name: str, involved: object) -> Obj:
    return {**event(name), "involvedObject": {"kind": "Pod", "name": involved, "namespace": "default"}}


def test_list_by_kept_value_finds_what_the_predicate_finds(make_store: StoreFactory) -> None:
    # kubectl describe's Event list: the kept value (involvedObject.name) is tested before an
    # Event is unpacked. Names do not have to follow the "<object>.<hex>" convention, and a value
    # too long to keep in clear is still found (unpacked and tested).
    store = make_store()
    long_name = "p" * 1500
    for name, involved in [("p.1", "p"), ("anything", "p"), ("pp.1", "pp"), ("p-2", "p-2"), ("ü.1", "ü"),
                           ("long.1", long_name), ("none", None)]:
        store.create(ekey(name), involving(name, involved))
    store.create(ekey("bare"), {**event("bare"), "involvedObject": {}})
    store.create(Key("events", "other", "p.9"), {**involving("p.9", "p"), "metadata": {"name": "p.9", "namespace": "other"}})

    def about(value: object) -> Callable[[Obj], bool]:
        return lambda e: e["involvedObject"].get("name", "") == value

    def names(value: str, namespace: str | None = "default") -> list[str]:
        return [e["metadata"]["name"] for e in store.list("events", namespace, about(value), kept_value=value)[0]]

    assert names("p") == ["anything", "p.1"]
    assert names("p", None) == ["anything", "p.1", "p.9"]
    assert names("pp") == ["pp.1"] and names("ü") == ["ü.1"] and names(long_name) == ["long.1"]
    assert names("") == ["bare"] and names("nobody") == []
    store.update(ekey("anything"), involving("anything", "pp"))  # an update moves it
    assert names("p") == ["p.1"] and names("pp") == ["anything", "pp.1"]
    # A hint only: the predicate still decides, and other resources ignore it.
    assert store.list("events", "default", lambda e: False, kept_value="p")[0] == []
    store.create(jkey("j"), job("j"))
    assert [j["metadata"]["name"] for j in store.list("jobs", "default", kept_value="x")[0]] == ["j"]


def plain(objs: list[Obj]) -> list[str]:
    return [o["metadata"]["name"] for o in objs]


def pages(store: MemoryStore, resource: str, namespace: str | None, limit: int,
          predicate: Callable[[Obj], bool] | None = None) -> list[list[str]]:
    """Every page of one list, read to its end, as names."""
    out: list[list[str]] = []
    token: str | None = None
    while True:
        page = store.list_page(resource, namespace, predicate, limit, token)
        out.append(plain(page.items))
        if not page.continue_token:
            return out
        token = page.continue_token


def test_pages_of_a_list_come_from_the_snapshot_of_its_first_page(make_store: StoreFactory) -> None:
    store = make_store()
    for name in ("a", "b", "c", "d", "e"):
        store.create(jkey(name), job(name))
    store.create(jkey("x", "other"), job("x", "other"))
    first = store.list_page("jobs", "default", None, 2)
    assert plain(first.items) == ["a", "b"] and first.rv == 6 and first.remaining == 3 and first.continue_token
    # Writes after the first page do not show in the later ones: the list is as of rv 6.
    store.create(jkey("bb"), job("bb"))
    store.delete(jkey("c"))
    store.update(jkey("d"), job("d", changed=True))
    second = store.list_page("jobs", "default", None, 2, first.continue_token)
    assert plain(second.items) == ["c", "d"] and second.rv == 6 and second.remaining == 1
    assert second.items[1]["spec"] == {}  # d as it was at rv 6
    third = store.list_page("jobs", "default", None, 2, second.continue_token)
    assert plain(third.items) == ["e"] and third.continue_token == "" and third.remaining is None
    # All namespaces, in (namespace, name) order; a selector fills each page with matches only.
    assert pages(store, "jobs", None, 4) == [["a", "b", "bb", "d"], ["e", "x"]]
    assert pages(store, "jobs", "default", 2, lambda o: o["metadata"]["name"] != "b") == [["a", "bb"], ["d", "e"]]
    assert store.list_page("jobs", "default", lambda o: True, 2).remaining is None  # unknown with a selector
    assert pages(store, "jobs", "default", 0) == [["a", "b", "bb", "d", "e"]]  # 0: everything, one page
    assert pages(store, "jobs", "nowhere", 2) == [[]]
    # Events are kept packed: pages decode only what they return, and a list narrowed to a kept
    # value (describe's, with kubectl's limit) holds only the entries that may have it.
    for name in ("e1", "e2", "e3"):
        store.create(ekey(name), event(name))
    store.create(ekey("q1"), involving("q1", "q"))
    assert pages(store, "events", "default", 2) == [["e1", "e2"], ["e3", "q1"]]
    narrowed = store.list_page("events", "default", None, 1, kept_value="p")
    assert plain(narrowed.items) == ["e1"] and narrowed.remaining == 2
    assert plain(store.list_page("events", "default", None, 5, kept_value="q").items) == ["q1"]
    with pytest.raises(BadRequest, match="another list"):  # the kept value is part of the list's scope
        store.list_page("events", "default", None, 1, narrowed.continue_token, kept_value="q")
    assert plain(store.list_page("events", "default", None, 5, narrowed.continue_token, kept_value="p").items) == [
        "e2", "e3"]


def test_a_continue_token_is_checked_and_an_expired_one_continues_inconsistently(make_store: StoreFactory) -> None:
    store = make_store()
    for name in ("a", "b", "c", "d"):
        store.create(jkey(name), job(name))
    first = store.list_page("jobs", "default", None, 1)
    with pytest.raises(BadRequest, match="another list"):
        store.list_page("jobs", "other", None, 1, first.continue_token)
    with pytest.raises(BadRequest, match="not valid"):
        store.list_page("jobs", "default", None, 1, "not-a-token")
    # Tokens are not signed: one forged for this namespace but naming another list's snapshot is refused.
    store.create(jkey("secret", "other"), job("secret", "other"))
    store.create(jkey("secret2", "other"), job("secret2", "other"))
    other = Continue.decode(store.list_page("jobs", "other", None, 1).continue_token)
    forged = dataclasses.replace(other, namespace="default").encode()
    with pytest.raises(BadRequest, match="another list"):
        store.list_page("jobs", "default", None, 1, forged)
    # Lists started later push the first one's snapshot out (MAX_SNAPSHOTS are kept).
    for _ in range(MAX_SNAPSHOTS):
        store.list_page("jobs", "default", None, 1)
    store.create(jkey("aa"), job("aa"))  # sorts after "a": not in the snapshot, but in the current state
    store.delete(jkey("c"))
    with pytest.raises(ContinueExpired) as expired:
        store.list_page("jobs", "default", None, 1, first.continue_token)
    assert expired.value.code == 410 and expired.value.to_status()["metadata"]["continue"] == expired.value.token
    rest: list[str] = []
    token = expired.value.token
    while token:
        page = store.list_page("jobs", "default", None, 1, token)
        rest += plain(page.items)
        token = page.continue_token
    assert rest == ["aa", "b", "d"]  # after "a", as things are now


def test_sqlite_events_kept_as_json_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "joblet.db"
    store = SqliteStore(path)
    store.create(ekey("e1"), event("e1"))
    store.close()
    reopened = SqliteStore(path)
    try:
        assert reopened.get(ekey("e1")) == {**event("e1"), "metadata": {**event("e1")["metadata"], "resourceVersion": "1"}}
        assert rv(reopened.update(ekey("e1"), event("e1", count=2), expected_rv=1)) == 2
    finally:
        reopened.close()
