"""Leader election over a ``coordination.k8s.io/v1`` Lease, with client-go's semantics.

Why: several ``joblet server`` replicas on one store all serve the API, but only one may run
the controllers (two Job controllers would each create the missing pods). As
kube-controller-manager does, the replicas elect a leader through the Lease
``kube-system/joblet-controller-manager``: lease 15 s, renew deadline 10 s, retry period 2 s.

The decisions are pure functions of the Lease, what this replica last observed of it and the
time (:func:`observe`, :func:`decide`, :func:`acquired_spec`, :func:`released_spec`); the thin
:class:`LeaderElector` loop does the I/O through the client, reads time from the injected clock
and sleeps through an injected coroutine, so the table tests need neither a server nor time.

Semantics kept from client-go's ``leaderelection``:

* a Lease held by someone else is taken over only once it has not changed for
  ``leaseDurationSeconds`` *as measured on this replica's monotonic clock from when it saw the
  change* (no trust in other machines' wall clocks); an empty ``holderIdentity`` (a released
  lease) is free at once;
* a takeover increments ``leaseTransitions`` and sets ``acquireTime``; a renewal keeps both;
* the leader that could not renew for ``renewDeadline`` stops leading, which is before any
  other replica may take the lease (``leaseDuration`` > ``renewDeadline``): there are never two
  leaders acting at once; one that reads another holder in the lease stops at once (client-go
  keeps trying until its deadline);
* on a clean stop the leader releases the lease (``ReleaseOnCancel``), so a successor needs not
  wait out the duration.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from joblet.client.interface import Client
from joblet.clock import Clock, rfc3339_micro
from joblet.errors import AlreadyExists, ApiError, Conflict, NotFound

log = logging.getLogger(__name__)

Obj = dict[str, Any]

LEASE_NAMESPACE = "kube-system"
LEASE_NAME = "joblet-controller-manager"
#: kube-controller-manager's --leader-elect-lease-duration / renew-deadline / retry-period
LEASE_DURATION = 15.0
RENEW_DEADLINE = 10.0
RETRY_PERIOD = 2.0
IDENTITY_FILE = "leader-identity"


@dataclass(frozen=True)
class ElectionConfig:
    identity: str
    namespace: str = LEASE_NAMESPACE
    name: str = LEASE_NAME
    lease_duration: float = LEASE_DURATION
    renew_deadline: float = RENEW_DEADLINE
    retry_period: float = RETRY_PERIOD

    def __post_init__(self) -> None:
        if not self.lease_duration > self.renew_deadline > self.retry_period > 0:
            raise ValueError("leader election needs lease duration > renew deadline > retry period > 0")


@dataclass(frozen=True)
class Observed:
    """The Lease's record as this replica last saw it, and since when (monotonic) it looks so."""

    record: tuple[Any, ...]
    since: float


class Action(enum.Enum):
    CREATE = "create"  # no Lease yet: create it, holding it
    RENEW = "renew"  # we hold it: write a fresh renewTime
    ACQUIRE = "acquire"  # free or expired: take it over
    WAIT = "wait"  # someone else holds a valid lease


def _spec(lease: Obj | None) -> Obj:
    spec = (lease or {}).get("spec")
    return spec if isinstance(spec, dict) else {}


def record_of(lease: Obj | None) -> tuple[Any, ...]:
    """What identifies one state of the lease record (client-go compares the raw record)."""
    spec = _spec(lease)
    return (spec.get("holderIdentity"), spec.get("renewTime"), spec.get("acquireTime"),
            spec.get("leaseTransitions"), spec.get("leaseDurationSeconds"))


def observe(previous: Observed | None, lease: Obj | None, mono: float) -> Observed | None:
    """The observation after reading ``lease`` at ``mono``: unchanged records keep their time."""
    if lease is None:
        return None
    record = record_of(lease)
    if previous is not None and previous.record == record:
        return previous
    return Observed(record, mono)


def lease_duration(lease: Obj | None, default: float) -> float:
    value = _spec(lease).get("leaseDurationSeconds")
    return float(value) if isinstance(value, int) and not isinstance(value, bool) and value > 0 else default


def decide(lease: Obj | None, identity: str, observed: Observed | None, mono: float,
           config: ElectionConfig) -> Action:
    """What a replica with ``identity`` does with ``lease`` (None: absent) at monotonic ``mono``."""
    if lease is None:
        return Action.CREATE
    holder = _spec(lease).get("holderIdentity") or ""
    if holder == identity:
        return Action.RENEW
    if not holder:
        return Action.ACQUIRE
    since = observed.since if observed is not None and observed.record == record_of(lease) else mono
    if mono - since >= lease_duration(lease, config.lease_duration):
        return Action.ACQUIRE
    return Action.WAIT


def acquired_spec(lease: Obj | None, identity: str, now: datetime, config: ElectionConfig) -> Obj:
    """The LeaseSpec a CREATE, RENEW or ACQUIRE writes: renewTime now; a new holder also gets
    acquireTime now and one more transition (client-go counts a take-over of a released lease too)."""
    old = _spec(lease)
    stamp = rfc3339_micro(now)
    raw = old.get("leaseTransitions")
    transitions = raw if isinstance(raw, int) and not isinstance(raw, bool) else 0
    spec: Obj = {"holderIdentity": identity, "leaseDurationSeconds": int(config.lease_duration),
                 "renewTime": stamp}
    if lease is not None and old.get("holderIdentity") == identity:
        spec["acquireTime"] = old.get("acquireTime") or stamp
        spec["leaseTransitions"] = transitions
    else:
        spec["acquireTime"] = stamp
        spec["leaseTransitions"] = transitions + 1 if lease is not None else 0
    return spec


def released_spec(lease: Obj, now: datetime) -> Obj:
    """client-go's release: no holder, a 1 s duration, the transitions kept."""
    old = _spec(lease)
    stamp = rfc3339_micro(now)
    return {"holderIdentity": "", "leaseDurationSeconds": 1, "renewTime": stamp, "acquireTime": stamp,
            "leaseTransitions": old.get("leaseTransitions") or 0}


def renew_deadline_passed(last_renew: float, mono: float, config: ElectionConfig) -> bool:
    """Whether a leader whose last successful renewal was at ``last_renew`` must stop leading."""
    return mono - last_renew >= config.renew_deadline


def default_identity(data_dir: Path | None = None) -> str:
    """``<hostname>_<uuid>`` as kube-controller-manager's. With a data dir the uuid is kept in it
    (``leader-identity``): one data dir has one process at a time (its lock), so a restarted
    server is the same candidate and renews its own lease at once instead of waiting it out."""
    host = socket.gethostname().lower() or "joblet"
    if data_dir is None:
        return f"{host}_{uuid.uuid4()}"
    path = Path(data_dir) / IDENTITY_FILE
    try:
        token = path.read_text().strip()
        uuid.UUID(token)
    except (OSError, ValueError):
        token = str(uuid.uuid4())
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.write_text(token + "\n")
        path.chmod(0o600)
    return f"{host}_{token}"


Sleep = Callable[[float], Awaitable[None]]


class LeaderElector:
    """The loop: try every retry period until leading; while leading renew every retry period;
    when a renewal has not succeeded for the renew deadline, stop leading and run for it again."""

    def __init__(self, client: Client, clock: Clock, config: ElectionConfig, *,
                 on_started: Callable[[], Awaitable[None]], on_stopped: Callable[[], Awaitable[None]],
                 sleep: Sleep = asyncio.sleep) -> None:
        self.client = client
        self.clock = clock
        self.config = config
        self.on_started = on_started
        self.on_stopped = on_stopped
        self.sleep = sleep
        self.observed: Observed | None = None
        self.leading = False
        self.last_renew = 0.0
        #: the Lease as last written or read (for release and tests)
        self.lease: Obj | None = None

    async def try_acquire_or_renew(self) -> bool:
        """One attempt (client-go's tryAcquireOrRenew): True when this replica holds the lease now."""
        cfg = self.config
        try:
            lease: Obj | None = await self.client.get("leases", cfg.name, cfg.namespace)
        except NotFound:
            lease = None
        mono = self.clock.monotonic()
        self.observed = observe(self.observed, lease, mono)
        action = decide(lease, cfg.identity, self.observed, mono, cfg)
        if action is Action.WAIT:
            self.lease = lease
            return False
        spec = acquired_spec(lease, cfg.identity, self.clock.now(), cfg)
        try:
            if lease is None:
                written = await self.client.create("leases", {
                    "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": cfg.name, "namespace": cfg.namespace}, "spec": spec}, cfg.namespace)
            else:
                written = await self.client.update("leases", {**lease, "spec": spec})
        except (AlreadyExists, Conflict):
            return False  # another replica wrote first: look again next time
        self.lease = written
        self.observed = observe(None, written, self.clock.monotonic())
        self.last_renew = mono
        if action is not Action.RENEW:
            log.info("%s acquired lease %s/%s", cfg.identity, cfg.namespace, cfg.name)
        return True

    async def _attempt(self, timeout: float) -> bool:
        """An attempt that neither raises nor outlives ``timeout`` (a hung store is a failed try)."""
        try:
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation
            async with asyncio.timeout(max(timeout, 0.001)):
                return await self.try_acquire_or_renew()
        except (ApiError, OSError, TimeoutError) as err:
            log.warning("leader election: %s/%s: %s", self.config.namespace, self.config.name, err)
            return False

    async def acquire(self) -> None:
        """Until this replica holds the lease: try, then again every retry period."""
        while not await self._attempt(self.config.retry_period):
            await self.sleep(self.config.retry_period)

    async def renew(self) -> None:
        """While this replica leads: renew every retry period; return when the renew deadline passed."""
        cfg = self.config
        while True:
            await self.sleep(cfg.retry_period)
            remaining = cfg.renew_deadline - (self.clock.monotonic() - self.last_renew)
            if remaining > 0 and not await self._attempt(min(cfg.retry_period, remaining)) and \
                    _spec(self.lease).get("holderIdentity") not in (None, cfg.identity):
                log.warning("%s: lease %s/%s is held by %s now: stopping leading", cfg.identity, cfg.namespace,
                            cfg.name, _spec(self.lease).get("holderIdentity"))
                return
            if renew_deadline_passed(self.last_renew, self.clock.monotonic(), cfg):
                log.warning("%s could not renew lease %s/%s for %.0f s: stopping leading", cfg.identity,
                            cfg.namespace, cfg.name, cfg.renew_deadline)
                return

    async def lead(self, started: bool = False) -> None:
        """Lead (the lease is already held): run ``on_started`` (unless ``started``: the caller
        did), renew until the lease is lost, then ``on_stopped``, also when cancelled."""
        self.leading = True
        starting = asyncio.ensure_future(asyncio.sleep(0) if started else self.on_started())
        try:
            await self.renew()
        finally:
            self.leading = False
            if not starting.done():
                starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
            await self.on_stopped()

    async def run(self, leading: bool = False) -> None:
        """Forever: become leader, lead until the lease is lost, run again. ``leading``: this
        replica holds the lease and has started leading already (its first try succeeded)."""
        if leading:
            await self.lead(started=True)
        while True:
            await self.acquire()
            await self.lead()

    async def release(self) -> None:
        """Give the lease up (when this replica holds it), so a successor needs not wait."""
        cfg = self.config
        with contextlib.suppress(ApiError, OSError, TimeoutError):
            async with asyncio.timeout(cfg.retry_period):
                lease = await self.client.get("leases", cfg.name, cfg.namespace)
                if _spec(lease).get("holderIdentity") != cfg.identity:
                    return
                await self.client.update("leases", {**lease, "spec": released_spec(lease, self.clock.now())})
