"""WorkQueue and Informer semantics (client-go behaviour) with a FakeClock."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from joblet.api.registry import Registry
from joblet.client.local import LocalClient
from joblet.clock import FakeClock
from joblet.controllers.runtime import (
    ControllerManager,
    Informer,
    QueueWorker,
    ShutDown,
    WorkQueue,
    drain,
    process_next,
)
from joblet.store.memory import MemoryStore


def test_add_deduplicates_waiting_keys() -> None:
    q = WorkQueue(FakeClock())
    q.add("a")
    q.add("b")
    q.add("a")
    assert len(q) == 2
    assert q.get_nowait() == "a"
    assert q.get_nowait() == "b"
    assert q.get_nowait() is None


def test_key_readded_while_processing_runs_again_after_done() -> None:
    q = WorkQueue(FakeClock())
    q.add("a")
    assert q.get_nowait() == "a"
    q.add("a")
    assert len(q) == 0, "not handed to a second worker while processing"
    q.done("a")
    assert q.get_nowait() == "a"
    q.done("a")
    assert q.get_nowait() is None


@pytest.mark.parametrize(
    ("requests", "advance", "expect_ready"),
    [
        pytest.param([5.0], 4.9, 0, id="not-yet-due"),
        pytest.param([5.0], 5.0, 1, id="due-exactly"),
        pytest.param([5.0, 1.0], 1.0, 1, id="earlier-request-wins"),
        pytest.param([1.0, 5.0], 1.0, 1, id="later-request-ignored"),
        pytest.param([0.0], 0.0, 1, id="zero-delay-is-add"),
    ],
)
def test_add_after_uses_clock(requests: list[float], advance: float, expect_ready: int) -> None:
    clock = FakeClock()
    q = WorkQueue(clock)
    for delay in requests:
        q.add_after("k", delay)
    clock.advance(advance)
    q.fire_due()
    assert len(q) == expect_ready


def test_rate_limited_delays_double_to_sixty_and_forget_resets() -> None:
    clock = FakeClock()
    q = WorkQueue(clock)
    delays = []
    for _ in range(9):
        start = clock.monotonic()
        q.add_rate_limited("k")
        delays.append(q.waiting()["k"] - start)
        clock.advance(delays[-1])
        q.fire_due()
        assert q.get_nowait() == "k"
        q.done("k")
    assert delays == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    q.forget("k")
    assert q.num_requeues("k") == 0
    q.add_rate_limited("k")
    assert q.waiting()["k"] - clock.monotonic() == 1


def test_real_timer_fires_with_real_clock_and_get_waits() -> None:
    from joblet.clock import RealClock

    async def main() -> str:
        q = WorkQueue(RealClock())
        q.add_after("later", 0.01)
        return await asyncio.wait_for(q.get(), 2)

    assert asyncio.run(main()) == "later"


def test_shutdown_wakes_waiting_workers() -> None:
    async def main() -> None:
        q = WorkQueue(FakeClock())
        waiter = asyncio.create_task(q.get())
        await asyncio.sleep(0)
        q.shutdown()
        with pytest.raises(ShutDown):
            await asyncio.wait_for(waiter, 1)

    asyncio.run(main())


def test_process_next_requeues_failures_rate_limited() -> None:
    async def main() -> None:
        clock = FakeClock()
        q = WorkQueue(clock)
        calls: list[str] = []

        async def sync(key: str) -> None:
            calls.append(key)
            if len(calls) == 1:
                raise RuntimeError("boom")

        q.add("x")
        await process_next(q, sync)
        assert q.waiting() == {"x": clock.monotonic() + 1}
        clock.advance(1)
        q.fire_due()
        assert await drain(q, sync) == 1
        assert calls == ["x", "x"] and q.num_requeues("x") == 0

    asyncio.run(main())


def _pod(name: str, owner: str = "") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "default"}
    if owner:
        meta["ownerReferences"] = [{"apiVersion": "batch/v1", "kind": "Job", "name": "j", "uid": owner, "controller": True}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": {"containers": [{"name": "c", "image": "x"}]}}


def test_informer_lists_watches_indexes_and_dispatches() -> None:
    async def main() -> None:
        clock = FakeClock()
        client = LocalClient(Registry(MemoryStore(), clock))
        await client.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}})
        await client.create("pods", _pod("before", "u1"))
        inf = Informer(client, "pods")
        inf.add_index("owner", lambda p: [r["uid"] for r in p["metadata"].get("ownerReferences") or []])
        seen: list[tuple[str, str]] = []
        inf.add_handler(
            lambda o: seen.append(("add", o["metadata"]["name"])),
            lambda old, new: seen.append(("update", new["metadata"]["name"])),
            lambda o: seen.append(("delete", o["metadata"]["name"])),
        )
        inf.start()
        await asyncio.wait_for(inf.synced.wait(), 2)
        created = await client.create("pods", _pod("after", "u1"))
        await client.patch("pods", "after", {"metadata": {"labels": {"x": "y"}}}, "default")
        await client.delete("pods", "before", "default")
        for _ in range(50):
            await asyncio.sleep(0.001)
            if ("delete", "before") in seen:
                break
        assert seen == [("add", "before"), ("add", "after"), ("update", "after"), ("delete", "before")]
        assert [p["metadata"]["name"] for p in inf.by_index("owner", "u1")] == ["after"]
        cached = inf.get("default/after")
        assert cached is not None and cached["metadata"]["labels"] == {"x": "y"}
        assert created["metadata"]["uid"] == cached["metadata"]["uid"]
        await inf.stop()

    asyncio.run(main())


def test_informer_replace_emits_differences() -> None:
    inf = Informer(None, "pods")  # type: ignore[arg-type]
    events: list[str] = []
    inf.add_handler(lambda o: events.append("add"), lambda a, b: events.append("update"), lambda o: events.append("delete"))
    a = _pod("a") | {"metadata": {"name": "a", "namespace": "default", "resourceVersion": "1"}}
    b = _pod("b") | {"metadata": {"name": "b", "namespace": "default", "resourceVersion": "2"}}
    inf.replace([a, b], "2")
    a2 = _pod("a") | {"metadata": {"name": "a", "namespace": "default", "resourceVersion": "3"}}
    inf.replace([a2], "3")
    assert events == ["add", "add", "delete", "update"]


def test_informer_keeps_one_key_string_per_object_across_its_cache_and_indexes() -> None:
    # A retained object (a finished pod) must not cost a fresh key string per event and per index.
    inf = Informer(None, "pods")  # type: ignore[arg-type]
    inf.add_index("by-node", lambda o: [o["spec"].get("nodeName", "")])
    for rv in range(1, 4):
        inf.apply("MODIFIED" if rv > 1 else "ADDED",
                  {"metadata": {"name": "p", "namespace": "default", "resourceVersion": str(rv)},
                   "spec": {"nodeName": "vm"}})
    (cache_key,) = inf.cache
    (index_key,) = inf.index_keys("by-node", "vm")
    assert cache_key == "default/p" and index_key is cache_key


def test_informer_index_follows_an_object_from_one_value_to_several_and_back() -> None:
    # One value is kept as itself, several as a tuple: either way a change leaves no stale entry.
    inf = Informer(None, "pods")  # type: ignore[arg-type]
    inf.add_index("owner", lambda o: o["spec"]["owners"])
    for rv, owners in enumerate((["a"], ["a", "b"], ["c"], []), start=1):
        inf.apply("MODIFIED" if rv > 1 else "ADDED",
                  {"metadata": {"name": "p", "namespace": "default", "resourceVersion": str(rv)},
                   "spec": {"owners": owners}})
        assert {v: inf.index_keys("owner", v) for v in "abc"} == {v: {"default/p"} if v in owners else set()
                                                                  for v in "abc"}
    inf.apply("MODIFIED", {"metadata": {"name": "p", "namespace": "default", "resourceVersion": "9"},
                           "spec": {"owners": ["b"]}})
    inf.apply("DELETED", {"metadata": {"name": "p", "namespace": "default"}, "spec": {"owners": ["b"]}})
    assert inf.index_keys("owner", "b") == set()


def test_manager_runs_workers_and_stops() -> None:
    async def main() -> None:
        clock = FakeClock()
        client = LocalClient(Registry(MemoryStore(), clock))
        await client.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}})
        done = asyncio.Event()
        q = WorkQueue(clock, "test")

        async def sync(key: str) -> None:
            done.set()

        from joblet.controllers.runtime import Controller

        class Demo(Controller):
            def __init__(self) -> None:
                self.inf = Informer(client, "pods")
                self.inf.add_handler(lambda o: q.add(o["metadata"]["name"]))

            def informers(self) -> list[Informer]:
                return [self.inf]

            def queue_workers(self) -> list[QueueWorker]:
                return [QueueWorker(q, sync, 2)]

        mgr = ControllerManager([Demo()])
        await mgr.start()
        await client.create("pods", _pod("p"))
        await asyncio.wait_for(done.wait(), 2)
        await mgr.stop()
        assert q.shutting_down

    asyncio.run(main())


def test_a_sync_that_requeues_itself_rate_limited_backs_off_longer_each_time() -> None:
    """A Conflict handled inside the sync (requeue rate-limited, return) must not reset the
    key's failure count: 1 s, then 2 s, then 4 s, not 1 s forever."""
    async def main() -> None:
        clock = FakeClock()
        q = WorkQueue(clock)

        async def sync(key: str) -> None:
            q.add_rate_limited(key)

        q.add("x")
        for delay in (1, 2, 4):
            await process_next(q, sync)
            assert q.waiting() == {"x": clock.monotonic() + delay}
            clock.advance(delay)
            q.fire_due()

    asyncio.run(main())


def test_a_key_that_is_ready_again_at_once_does_not_hold_the_loop_and_stop_returns() -> None:
    """The in-process client never suspends: a sync that re-adds its key at once must still let
    other tasks run (informers, stop()); before, the worker spun and plane.stop() hung."""
    import threading

    from joblet.controllers.runtime import Controller

    outcome: list[int] = []

    async def main() -> None:
        q = WorkQueue(FakeClock(), "hot")
        syncs = 0

        async def sync(key: str) -> None:
            nonlocal syncs
            syncs += 1
            q.add(key)

        class Hot(Controller):
            def informers(self) -> list[Informer]:
                return []

            def queue_workers(self) -> list[QueueWorker]:
                return [QueueWorker(q, sync)]

        mgr = ControllerManager([Hot()])
        await mgr.start()
        q.add("k")
        for _ in range(10):
            await asyncio.sleep(0)
        await mgr.stop()
        outcome.append(syncs)

    # a thread, so that a spinning loop fails the test instead of hanging it
    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    thread.join(30)
    assert not thread.is_alive(), "the hot key held the event loop: stop() never ran"
    assert outcome and outcome[0] >= 2
