"""A Job's timeline: one row per index (Indexed) or per pod, one bar per attempt.

Why: retries and backoff are where Job semantics surprise people (anchors.md §2, items
6-12): a row per index with a bar per attempt, coloured by outcome, shows at a glance which
index failed how often and how long the controller waited between attempts. Pure: inputs
are the Job, its pods, the log store's attempts (for pods already deleted, and for restarts
in place that pod status no longer describes) and ``now``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from joblet.clock import parse_time_or_none
from joblet.dashboard.history import Attempt, index_from_name

Obj = dict[str, Any]
INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"


@dataclass
class Bar:
    pod: str
    uid: str
    container: str
    attempt: int
    start: datetime
    end: datetime
    outcome: str  # succeeded, failed, running, pending, unknown
    exit_code: int | None = None
    reason: str = ""

    @property
    def title(self) -> str:
        code = f" exit {self.exit_code}" if self.exit_code is not None else ""
        why = f" {self.reason}" if self.reason else ""
        return f"{self.pod} attempt {self.attempt + 1}: {self.outcome}{code}{why}"


@dataclass
class Row:
    label: str
    sort_key: tuple[int, str]
    bars: list[Bar] = field(default_factory=list)


@dataclass
class Timeline:
    rows: list[Row]
    start: datetime | None
    end: datetime | None

    def position(self, bar: Bar) -> tuple[float, float]:
        """``(left %, width %)`` of a bar on the timeline (width at least 0.5 %)."""
        if self.start is None or self.end is None:
            return 0.0, 100.0
        total = max((self.end - self.start).total_seconds(), 1e-3)
        left = (bar.start - self.start).total_seconds() / total * 100
        width = (bar.end - bar.start).total_seconds() / total * 100
        left = min(max(left, 0.0), 99.5)
        return round(left, 3), round(min(max(width, 0.5), 100 - left), 3)


def _t(value: Any) -> datetime | None:
    return parse_time_or_none(value) if isinstance(value, str) and value else None


def pod_index(job_name: str, pod: Obj) -> int | None:
    meta = pod.get("metadata") or {}
    raw = (meta.get("annotations") or {}).get(INDEX_ANNOTATION) or (meta.get("labels") or {}).get(INDEX_ANNOTATION)
    if isinstance(raw, str) and raw.isdigit():
        return int(raw)
    return index_from_name(job_name, str(meta.get("name") or ""))


def _outcome(exit_code: int) -> str:
    return "succeeded" if exit_code == 0 else "failed"


def pod_bars(pod: Obj, now: datetime, logged: list[Attempt]) -> list[Bar]:
    """Bars of one live pod: earlier attempts from the log store, the last two from status."""
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    name, uid = str(meta.get("name") or ""), str(meta.get("uid") or "")
    created = _t(meta.get("creationTimestamp")) or now
    statuses = status.get("containerStatuses") or []
    bars: list[Bar] = []
    if not statuses:
        phase = status.get("phase") or "Pending"
        if phase in ("Pending", "Unknown"):
            bars.append(Bar(name, uid, "", 0, created, now, "pending"))
        else:
            end = _t(meta.get("deletionTimestamp")) or now
            bars.append(Bar(name, uid, "", 0, created, end, "failed" if phase == "Failed" else "succeeded"))
        return bars
    cs = statuses[0]
    cname = str(cs.get("name") or "")
    restarts = int(cs.get("restartCount") or 0)
    from_status: dict[int, Bar] = {}
    last = (cs.get("lastState") or {}).get("terminated")
    if last and restarts > 0:
        start, end = _t(last.get("startedAt")) or created, _t(last.get("finishedAt")) or now
        code = int(last.get("exitCode") or 0)
        from_status[restarts - 1] = Bar(name, uid, cname, restarts - 1, start, end, _outcome(code), code,
                                        str(last.get("reason") or ""))
    state = cs.get("state") or {}
    if state.get("terminated"):
        term = state["terminated"]
        code = int(term.get("exitCode") or 0)
        from_status[restarts] = Bar(name, uid, cname, restarts, _t(term.get("startedAt")) or created,
                                    _t(term.get("finishedAt")) or now, _outcome(code), code,
                                    str(term.get("reason") or ""))
    elif state.get("running"):
        from_status[restarts] = Bar(name, uid, cname, restarts, _t(state["running"].get("startedAt")) or created,
                                    now, "running")
    for a in logged:  # status times have 1 s precision; log timestamps are finer
        bar = from_status.get(a.number)
        if bar is not None and a.uid == uid and a.container == cname and a.start is not None:
            if bar.start - timedelta(seconds=1) <= a.start <= bar.start + timedelta(seconds=2):
                bar.start = a.start
            if bar.outcome != "running" and a.end is not None and bar.start <= a.end <= bar.end + timedelta(seconds=2):
                bar.end = a.end
    for a in logged:
        if a.uid == uid and a.container == cname and a.number not in from_status and a.start is not None:
            from_status[a.number] = Bar(name, uid, cname, a.number, a.start, a.end or a.start,
                                        "failed" if a.number < restarts else "unknown")
    bars.extend(from_status[k] for k in sorted(from_status))
    if not bars:
        bars.append(Bar(name, uid, cname, 0, created, now, "pending"))
    return bars


def logged_bars(attempts: list[Attempt]) -> list[Bar]:
    """Bars of a pod that is gone: only what the log store knows (outcome unknown)."""
    return [Bar(a.pod, a.uid, a.container, a.number, a.start, a.end or a.start, "unknown")
            for a in attempts if a.start is not None]


def job_timeline(job: Obj, pods: list[Obj], attempts: list[Attempt], now: datetime) -> Timeline:
    meta = job.get("metadata") or {}
    job_name = str(meta.get("name") or "")
    indexed = ((job.get("spec") or {}).get("completionMode") or "NonIndexed") == "Indexed"
    by_pod: dict[str, list[Attempt]] = {}
    for a in attempts:
        by_pod.setdefault(a.pod, []).append(a)
    rows: dict[str, Row] = {}

    def row_for(pod_name: str, index: int | None) -> Row:
        if indexed and index is not None:
            key = f"index {index}"
            return rows.setdefault(key, Row(key, (index, "")))
        return rows.setdefault(pod_name, Row(pod_name, (1 << 30, pod_name)))

    live = set()
    for pod in pods:
        name = str((pod.get("metadata") or {}).get("name") or "")
        live.add(name)
        row_for(name, pod_index(job_name, pod)).bars.extend(pod_bars(pod, now, by_pod.get(name, [])))
    for name, pod_attempts in by_pod.items():
        if name in live:
            continue
        row_for(name, index_from_name(job_name, name)).bars.extend(logged_bars(pod_attempts))
    ordered = sorted(rows.values(), key=lambda r: r.sort_key)
    for r in ordered:
        r.bars.sort(key=lambda b: b.start)
        if not indexed and r.bars:
            r.sort_key = (0, r.bars[0].start.isoformat())
    if not indexed:
        ordered.sort(key=lambda r: r.sort_key)
    starts = [b.start for r in ordered for b in r.bars]
    ends = [b.end for r in ordered for b in r.bars]
    status = job.get("status") or {}
    t0 = min(starts) if starts else _t(status.get("startTime"))  # bars are finer than startTime's seconds
    finished = _t(status.get("completionTime"))
    t1 = max([*ends, *([finished] if finished else [])]) if ends or finished else None
    if t1 is None and t0 is not None:
        t1 = now
    return Timeline(ordered, t0, t1)
