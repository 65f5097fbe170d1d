"""What to write for each recorded Event: client-go's EventCorrelator, as pure decisions.

Why: a Job of 3,000 pods records 3,000 ``SuccessfulCreate`` Events on the Job, each one a
store write, a watch event for every Event watcher and a row to expire an hour later. client-go
(``tools/record/events_cache.go``) keeps that down before anything reaches the API server, in
this order, and so does :meth:`EventCorrelator.correlate`:

1. **Aggregation** (``EventAggregator``): Events from the same source about the same object
   with the same type and reason that differ only in message are *similar*. Once
   :data:`AGGREGATE_MAX_EVENTS` distinct messages were seen within
   :data:`AGGREGATE_INTERVAL_SECONDS` of each other, every further similar Event becomes one
   Event whose message is ``(combined from similar events): <latest message>`` and whose count
   goes up: the Job above gets 9 Events of its own and one combined one.
2. **Dedup** (``eventLogger``): an Event identical to one already written (after step 1) bumps
   that Event's ``count`` and ``lastTimestamp`` with a patch instead of creating a new one.
   Kept from joblet's recorder: a record older than :data:`DEDUP_WINDOW_SECONDS` is forgotten,
   so a repeat after ten quiet minutes is a new Event (client-go's LRU has no window: it patches
   the old one however old, until the LRU or the API server's Event TTL drops it).
3. **Spam filter** (``EventSourceObjectSpamFilter``): a token bucket per source + involved
   object (:data:`SPAM_BURST` tokens, refilled at :data:`SPAM_QPS`, one every 5 minutes). Every
   correlated Event takes a token, patches included; without one it is dropped, not written.
   The key is the one of ``getSpamKey`` in the client-go read (kubernetes commit 00080d40):
   source component and host, involved object's kind, namespace, name, uid and apiVersion —
   not type, reason or message. That version makes the key pluggable
   (``CorrelatorOptions.SpamKeyFunc``) but the default is still source + object, so all of a
   Job's Events share one bucket: after 25 (and one per 5 minutes), a big Job's later Events
   are dropped, as upstream drops them. Reasons given as ``unthrottled`` skip the filter:
   joblet's recorder passes ``InvalidObject`` (the terminal failure ``joblet run`` stops on)
   and the reasons a Job ends with (``Completed``, ``BackoffLimitExceeded``…), once per
   object each, which upstream would drop for a big Job (see
   :data:`joblet.client.events.UNTHROTTLED_REASONS`).

Steps 1 and 2 update their records even for an Event step 3 then drops (as upstream), so the
count an accepted patch carries includes the dropped repeats. Each of the three caches keeps at
most :data:`MAX_ENTRIES` records, the least recently used evicted first (client-go's LRUs); a
record whose window has passed is ignored, not swept. Time is :class:`joblet.clock.Clock`'s
monotonic clock.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from joblet.clock import Clock

Obj = dict[str, Any]

#: client-go's defaultAggregateMaxEvents: the distinct messages after which similar Events combine.
AGGREGATE_MAX_EVENTS = 10
#: client-go's defaultAggregateIntervalInSeconds: a similar Event this long after the last one starts afresh.
AGGREGATE_INTERVAL_SECONDS = 600.0
#: how long an identical Event still bumps the count of the one written (joblet's; see the module doc).
DEDUP_WINDOW_SECONDS = 600.0
#: client-go's defaultSpamBurst: Events a source may write about one object at once.
SPAM_BURST = 25
#: client-go's defaultSpamQPS: the bucket's refill, one Event per 5 minutes.
SPAM_QPS = 1.0 / 300.0
#: client-go's maxLruCacheEntries: records each cache keeps at most.
MAX_ENTRIES = 4096
#: what a combined Event's message starts with (client-go's EventAggregatorByReasonMessageFunc).
COMBINED_PREFIX = "(combined from similar events): "

#: source component and host, involved object's kind, namespace, name, uid and apiVersion,
#: joined by NULs (a str: its hash is computed once, where a nested tuple's is recomputed per lookup)
SpamKey = str
AggregateKey = tuple[SpamKey, str, str]  # + type, reason
#: what identifies a written Event: its aggregate key and message, or None for the combined one.
LogKey = tuple[AggregateKey, str | None]


@dataclass(slots=True)
class Create:
    """Create a new Event with this message and count; then :meth:`EventCorrelator.created`."""

    key: LogKey
    message: str
    count: int = 1


@dataclass(slots=True)
class Patch:
    """Patch the Event already written: new ``count`` (and ``message`` for the combined one)."""

    key: LogKey
    name: str
    namespace: str
    count: int
    message: str | None = None


@dataclass(frozen=True)
class Skip:
    """The spam filter dropped it: write nothing."""


SKIP = Skip()
Decision = Create | Patch | Skip


@dataclass(slots=True)
class _Aggregate:
    last: float
    messages: dict[str, None]  # an insertion-ordered set


@dataclass(slots=True)
class _Log:
    """An Event written (or about to be): when last seen, its count, and its name once created."""

    last: float
    count: int
    name: str = ""
    namespace: str = ""


@dataclass(slots=True)
class _Bucket:
    last: float
    tokens: float


def spam_key(component: str, host: str, ref: Obj) -> SpamKey:
    """The source and the involved object's identity (of an ``involvedObject`` reference)."""
    get = ref.get
    return "\0".join((component, host, get("kind", ""), get("namespace", ""), get("name", ""), get("uid", ""),
                      get("apiVersion", "")))


class EventCorrelator:
    """Aggregation, dedup and spam filter of client-go's EventCorrelator (see the module doc).

    Not thread-safe: one recorder's writer task calls it, one Event at a time."""

    def __init__(self, clock: Clock, *, max_entries: int = MAX_ENTRIES, burst: int = SPAM_BURST,
                 qps: float = SPAM_QPS, max_events: int = AGGREGATE_MAX_EVENTS,
                 unthrottled: frozenset[str] = frozenset()) -> None:
        self.clock = clock
        #: reasons the spam filter lets through without a token (joblet's, not client-go's)
        self.unthrottled = unthrottled
        self.max_entries = max_entries
        self.burst = burst
        self.qps = qps
        self.max_events = max_events
        self._aggregates: OrderedDict[AggregateKey, _Aggregate] = OrderedDict()
        self._logs: OrderedDict[LogKey, _Log] = OrderedDict()
        self._buckets: OrderedDict[SpamKey, _Bucket] = OrderedDict()

    def correlate(self, component: str, host: str, ref: Obj, event_type: str, reason: str,
                  message: str) -> Decision:
        now = self.clock.monotonic()
        source_object = spam_key(component, host, ref)
        key, message = self._aggregate((source_object, event_type, reason), message, now)
        decision = self._observe(key, message, now)
        if reason in self.unthrottled or self._accept(source_object, now):
            return decision
        return SKIP

    def created(self, key: LogKey, name: str, namespace: str) -> None:
        """The Event a :class:`Create` decided on was written as ``namespace/name``: repeats patch it."""
        rec = self._logs.get(key)
        if rec is not None:
            rec.name, rec.namespace = name, namespace

    def forget(self, key: LogKey) -> None:
        """The Event of ``key`` is gone (a patch found it deleted) or was never written."""
        self._logs.pop(key, None)

    def sizes(self) -> tuple[int, int, int]:
        """Records held: (aggregates, written Events, spam buckets)."""
        return len(self._aggregates), len(self._logs), len(self._buckets)

    def _aggregate(self, key: AggregateKey, message: str, now: float) -> tuple[LogKey, str]:
        rec = self._aggregates.get(key)
        if rec is None or now - rec.last > AGGREGATE_INTERVAL_SECONDS:
            rec = _Aggregate(now, {})
        rec.messages[message] = None
        rec.last = now
        self._put(self._aggregates, key, rec)
        if len(rec.messages) < self.max_events:
            return (key, message), message
        # the set never grows past the threshold: forget the oldest message (client-go: PopAny)
        del rec.messages[next(iter(rec.messages))]
        return (key, None), COMBINED_PREFIX + message

    def _observe(self, key: LogKey, message: str, now: float) -> Decision:
        rec = self._logs.get(key)
        if rec is not None and rec.name and now - rec.last <= DEDUP_WINDOW_SECONDS:
            rec.count += 1
            rec.last = now
            self._put(self._logs, key, rec)
            return Patch(key, rec.name, rec.namespace, rec.count, message if key[1] is None else None)
        self._put(self._logs, key, _Log(now, 1))
        return Create(key, message)

    def _accept(self, key: SpamKey, now: float) -> bool:
        """Take a token from the bucket of ``key`` (full when new), refilled at ``qps`` up to ``burst``."""
        rec = self._buckets.get(key)
        if rec is None:
            rec = _Bucket(now, float(self.burst))
        else:
            rec.tokens = min(float(self.burst), rec.tokens + (now - rec.last) * self.qps)
            rec.last = now
        self._put(self._buckets, key, rec)
        if rec.tokens >= 1.0:
            rec.tokens -= 1.0
            return True
        return False

    def _put(self, cache: OrderedDict[Any, Any], key: Any, rec: object) -> None:
        """Make ``rec`` the most recently used record of ``key``; beyond ``max_entries``, drop the
        least recently used (client-go's LRU). Stale records need no sweep: each check above
        ignores a record whose window has passed."""
        if key in cache:
            cache.move_to_end(key)
            cache[key] = rec
        else:
            cache[key] = rec
            if len(cache) > self.max_entries:
                cache.popitem(last=False)
