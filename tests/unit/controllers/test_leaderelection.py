"""Leader election: the pure decisions as a table of named cases, and the loop with a fake
clock over one in-memory store shared by several candidates (no sleeping, no server)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from joblet.api.registry import Registry
from joblet.client.local import LocalClient
from joblet.clock import FakeClock
from joblet.controllers.leaderelection import (
    Action,
    ElectionConfig,
    LeaderElector,
    Observed,
    acquired_spec,
    decide,
    default_identity,
    observe,
    record_of,
    released_spec,
    renew_deadline_passed,
)
from joblet.store.memory import MemoryStore

CFG = ElectionConfig(identity="me")
NOW = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def lease(holder: str | None, duration: int = 15, transitions: int = 3, renew: str = "2026-01-02T03:04:00.000000Z",
          acquire: str = "2026-01-01T00:00:00.000000Z") -> dict[str, Any]:
    spec: dict[str, Any] = {"leaseDurationSeconds": duration, "leaseTransitions": transitions,
                            "renewTime": renew, "acquireTime": acquire}
    if holder is not None:
        spec["holderIdentity"] = holder
    return {"metadata": {"name": "joblet-controller-manager", "namespace": "kube-system"}, "spec": spec}


OTHER = lease("other")
SEEN_AT_100 = Observed(record_of(OTHER), 100.0)

DECIDE_CASES: list[tuple[str, dict[str, Any] | None, Observed | None, float, Action]] = [
    ("absent-create", None, None, 100.0, Action.CREATE),
    ("ours-renew", lease("me"), None, 100.0, Action.RENEW),
    ("ours-even-if-old-renew", lease("me"), Observed(record_of(lease("me")), 0.0), 1e6, Action.RENEW),
    ("released-empty-holder", lease(""), None, 100.0, Action.ACQUIRE),
    ("no-holder-field", lease(None), None, 100.0, Action.ACQUIRE),
    ("other-first-seen-now-wait", OTHER, None, 100.0, Action.WAIT),
    ("other-seen-14s-ago-wait", OTHER, SEEN_AT_100, 114.9, Action.WAIT),
    ("other-unchanged-15s-expired", OTHER, SEEN_AT_100, 115.0, Action.ACQUIRE),
    ("other-renewed-since-observation-wait", lease("other", renew="2026-01-02T03:04:09.000000Z"),
     SEEN_AT_100, 500.0, Action.WAIT),
    ("lease-own-duration-counts", lease("other", duration=40), Observed(record_of(lease("other", duration=40)), 100.0),
     130.0, Action.WAIT),
    ("short-duration-expires-sooner", lease("other", duration=1), Observed(record_of(lease("other", duration=1)), 100.0),
     101.0, Action.ACQUIRE),
]


@pytest.mark.parametrize(("obj", "observed", "mono", "want"), [c[1:] for c in DECIDE_CASES],
                         ids=[c[0] for c in DECIDE_CASES])
def test_decide(obj: dict[str, Any] | None, observed: Observed | None, mono: float, want: Action) -> None:
    assert decide(obj, "me", observed, mono, CFG) is want


def test_observe_keeps_time_of_unchanged_record_and_restarts_on_change() -> None:
    first = observe(None, OTHER, 10.0)
    assert first == Observed(record_of(OTHER), 10.0)
    assert observe(first, OTHER, 20.0) is first
    renewed = lease("other", renew="2026-01-02T03:04:02.000000Z")
    assert observe(first, renewed, 20.0) == Observed(record_of(renewed), 20.0)
    assert observe(first, None, 20.0) is None


SPEC_CASES: list[tuple[str, dict[str, Any] | None, dict[str, Any]]] = [
    ("create", None, {"holderIdentity": "me", "leaseDurationSeconds": 15, "leaseTransitions": 0,
                      "acquireTime": "2026-01-02T03:04:05.678901Z", "renewTime": "2026-01-02T03:04:05.678901Z"}),
    ("renew-keeps-acquire-and-transitions", lease("me"),
     {"holderIdentity": "me", "leaseDurationSeconds": 15, "leaseTransitions": 3,
      "acquireTime": "2026-01-01T00:00:00.000000Z", "renewTime": "2026-01-02T03:04:05.678901Z"}),
    ("takeover-counts-a-transition", lease("other"),
     {"holderIdentity": "me", "leaseDurationSeconds": 15, "leaseTransitions": 4,
      "acquireTime": "2026-01-02T03:04:05.678901Z", "renewTime": "2026-01-02T03:04:05.678901Z"}),
    ("released-takeover-counts-too", lease("", duration=1),
     {"holderIdentity": "me", "leaseDurationSeconds": 15, "leaseTransitions": 4,
      "acquireTime": "2026-01-02T03:04:05.678901Z", "renewTime": "2026-01-02T03:04:05.678901Z"}),
]


@pytest.mark.parametrize(("obj", "want"), [c[1:] for c in SPEC_CASES], ids=[c[0] for c in SPEC_CASES])
def test_acquired_spec(obj: dict[str, Any] | None, want: dict[str, Any]) -> None:
    assert acquired_spec(obj, "me", NOW, CFG) == want


def test_released_spec_frees_the_lease_and_keeps_transitions() -> None:
    assert released_spec(lease("me"), NOW) == {
        "holderIdentity": "", "leaseDurationSeconds": 1, "leaseTransitions": 3,
        "acquireTime": "2026-01-02T03:04:05.678901Z", "renewTime": "2026-01-02T03:04:05.678901Z"}


@pytest.mark.parametrize(("since", "mono", "passed"), [(100.0, 109.9, False), (100.0, 110.0, True)])
def test_renew_deadline(since: float, mono: float, passed: bool) -> None:
    assert renew_deadline_passed(since, mono, CFG) is passed


def test_config_requires_duration_over_deadline_over_retry() -> None:
    with pytest.raises(ValueError):
        ElectionConfig(identity="x", lease_duration=10, renew_deadline=10)


def test_identity_is_host_and_uuid_kept_per_data_dir(tmp_path: Path) -> None:
    one = default_identity(tmp_path)
    assert one == default_identity(tmp_path)
    assert one != default_identity(tmp_path / "other")
    host, _, token = one.rpartition("_")
    assert host and len(token) == 36
    assert (tmp_path / "leader-identity").stat().st_mode & 0o777 == 0o600
    assert default_identity() != default_identity()


# ------------------------------------------------------------------ the loop, fake clock


class Cluster:
    """Several candidates on one in-memory store; time moves only through ``sleep``."""

    def __init__(self) -> None:
        self.clock = FakeClock(NOW)
        self.registry = Registry(MemoryStore(), self.clock)
        self.registry.create("namespaces", {"metadata": {"name": "kube-system"}})
        self.events: list[str] = []
        self.broken: set[str] = set()

    def elector(self, name: str) -> LeaderElector:
        cluster = self

        class Client(LocalClient):
            async def get(self, resource: str, name_: str, namespace: str = "") -> Any:
                if name in cluster.broken:
                    raise OSError("connection refused")
                return await super().get(resource, name_, namespace)

        async def started() -> None:
            self.events.append(f"{name}+")

        async def stopped() -> None:
            self.events.append(f"{name}-")

        async def sleep(seconds: float) -> None:
            self.clock.advance(seconds / 2)  # two candidates share the clock: each moves half
            await asyncio.sleep(0)

        return LeaderElector(Client(self.registry), self.clock, ElectionConfig(identity=name),
                             on_started=started, on_stopped=stopped, sleep=sleep)

    def holder(self) -> str:
        return str(self.registry.get("leases", "kube-system", "joblet-controller-manager")["spec"]["holderIdentity"])


def test_first_candidate_leads_at_once_and_the_other_waits() -> None:
    async def main() -> None:
        c = Cluster()
        a, b = c.elector("a"), c.elector("b")
        assert await a.try_acquire_or_renew()
        assert not await b.try_acquire_or_renew()
        assert c.holder() == "a"
        lease = c.registry.get("leases", "kube-system", "joblet-controller-manager")
        assert lease["spec"]["leaseTransitions"] == 0
        assert lease["spec"]["renewTime"] == "2026-01-02T03:04:05.678901Z"

    asyncio.run(main())


def test_failover_after_the_lease_expires_and_never_two_leaders() -> None:
    async def main() -> None:
        c = Cluster()
        a, b = c.elector("a"), c.elector("b")
        assert await a.try_acquire_or_renew()
        runs = [asyncio.ensure_future(a.lead()), asyncio.ensure_future(b.run())]
        for _ in range(40):  # a renews; b waits
            await asyncio.sleep(0)
        assert c.holder() == "a" and c.events == ["a+"]
        t_lost = c.clock.monotonic()
        c.broken.add("a")  # a can no longer reach the store
        while "b+" not in c.events:
            await asyncio.sleep(0)
            assert c.clock.monotonic() - t_lost < 60, c.events
        # a stopped leading (renew deadline) before b started (lease duration)
        assert c.events == ["a+", "a-", "b+"]
        assert c.holder() == "b"
        lease = c.registry.get("leases", "kube-system", "joblet-controller-manager")
        assert lease["spec"]["leaseTransitions"] == 1
        for r in runs:
            r.cancel()
        await asyncio.gather(*runs, return_exceptions=True)

    asyncio.run(main())


def test_release_frees_the_lease_for_an_immediate_successor() -> None:
    async def main() -> None:
        c = Cluster()
        a, b = c.elector("a"), c.elector("b")
        assert await a.try_acquire_or_renew()
        assert not await b.try_acquire_or_renew()
        await b.release()  # not the holder: nothing happens
        assert c.holder() == "a"
        await a.release()
        assert c.holder() == ""
        assert await b.try_acquire_or_renew()
        assert c.holder() == "b"

    asyncio.run(main())


def test_a_stale_write_loses_on_conflict() -> None:
    async def main() -> None:
        c = Cluster()
        a, b = c.elector("a"), c.elector("b")
        assert await a.try_acquire_or_renew()
        stale = c.registry.get("leases", "kube-system", "joblet-controller-manager")
        c.clock.advance(2)
        assert await a.try_acquire_or_renew()  # a renews: the resourceVersion moves on
        with pytest.raises(Exception, match="modified"):
            await b.client.update("leases", {**stale, "spec": acquired_spec(stale, "b", NOW, CFG)})
        assert c.holder() == "a"

    asyncio.run(main())


def test_a_leader_that_sees_another_holder_stops_at_once() -> None:
    async def main() -> None:
        c = Cluster()
        a = c.elector("a")
        assert await a.try_acquire_or_renew()
        leading = asyncio.ensure_future(a.lead())
        await asyncio.sleep(0)
        lease = c.registry.get("leases", "kube-system", "joblet-controller-manager")
        c.registry.update("leases", {**lease, "spec": acquired_spec(lease, "usurper", NOW, CFG)})
        started = c.clock.monotonic()
        await leading
        assert c.events == ["a+", "a-"]
        assert c.clock.monotonic() - started < CFG.renew_deadline  # not waiting out the deadline

    asyncio.run(main())
