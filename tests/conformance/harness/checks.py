"""Triggers, pod selection and expectations of the catalog, as pure functions of a Timeline.

Why: the README's vocabulary (``when`` triggers, ``select``, every ``expect`` key) is the
contract a held-out catalog in the same format will also use; implementing each word once,
over the recorded history, keeps the runner a thin loop. An expectation key this module does
not know is reported as a problem (never silently passed).

Three sorts of expectations: *eventual* ones must hold together at the end (polled until the
deadline), *never* ones must hold over the whole history (a violation fails at once), and
*historical* ones (``during``, ``status_sequence``, timing) are evaluated over the timeline.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .catalog import Scenario, Timing
from .matching import (
    condition_order_problems,
    conditions_of,
    get_path,
    match_conditions,
    match_value,
    parse_duration,
    parse_rfc3339,
    substitute,
)
from .timeline import (
    TERMINAL_PHASES,
    Moment,
    ObjectRecord,
    Timeline,
    is_active_pod,
    is_terminating,
    job_finished,
    pod_index,
    pod_phase,
    restart_count,
)

Obj = dict[str, Any]

DOC_KEYS = frozenset({"timeout_s", "depends_on_backoff_base", "notes", "cleanup", "condition_timing", "at"})
NEVER_KEYS = frozenset({"conditions_absent", "conditions_absent_reason", "max_active_at_any_time", "never"})
TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
SELECT_KEYS = frozenset({"any", "first", "index", "same_as_previous", "from"})
TRIGGER_KEYS = frozenset({
    "t", "t_after_previous", "after_previous", "created", "pods_running", "pods_succeeded",
    "pods_remaining_active", "status", "condition", "cronjob_status_active", "pod_has_controller_ref",
})
#: Every verb and the keys it takes besides ``when`` and ``do``.
ACTION_KEYS: dict[str, frozenset[str]] = {
    "patch_job": frozenset({"patch", "patch_type"}),
    "update_job": frozenset({"set", "patch"}),
    "patch_status": frozenset({"patch", "patch_type"}),
    "update_status": frozenset({"set", "patch"}),
    "delete_job": frozenset({"name", "propagationPolicy"}),
    "delete_collection": frozenset({"resource", "labelSelector", "propagationPolicy", "wait_for_gc"}),
    "delete_pod": frozenset({"select", "gracePeriodSeconds"}),
    "evict_pod": frozenset({"select"}),
    "update_pod": frozenset({"select", "set", "patch"}),
    "host_touch": frozenset({"path", "file"}),
    "assert": frozenset({"expect"}),
}
SCENARIO_KEYS = frozenset({
    "id", "source", "description", "notes", "kind", "job", "cronjob", "manifest", "update", "pre_create",
    "actions", "expect", "cleanup", "depends_on_backoff_base", "columns", "rows",
})
SCENARIO_KINDS = frozenset({"table", "valid", "update_valid", "update_invalid"})
PODS_KEYS = frozenset({
    "created", "created_by_controller", "phases", "container_restart_count_each", "remaining", "non_terminating",
    "non_terminating_indexes", "deleted_by_controller", "indexes_deleted_by_controller", "all_terminated",
    "finalizers_absent_all", "owner_refs_absent_all", "created_per_index",
})
TIMING_KEYS = frozenset({"min_gap_between_pod_creations_s", "job_exists_at_s_after_finish", "job_gone_by_s_after_finish"})
POD_NAMED_KEYS = frozenset({"finalizers_contain", "ownerReferences"})


class UnsupportedFormat(Exception):
    """The catalog uses a word this harness does not implement (a harness gap, not a system bug)."""


@dataclass
class Context:
    scenario: Scenario
    timing: Timing = field(default_factory=Timing)
    names: dict[str, Any] = field(default_factory=dict)  # placeholder bindings
    responses: dict[str, Any] = field(default_factory=dict)  # create/patch_status/update_status/get_status/...
    events: list[Obj] | None = None  # core Events of the namespace, when listed
    targets: list[tuple[str, str, float]] = field(default_factory=list)  # (verb, pod uid, t) of pod actions
    now: float | None = None  # seconds since creation, set by the runner before each evaluation
    delete_t: float | None = None  # when an action first deleted the Job (delete_job / delete_collection)
    event_reasons: set[str] = field(default_factory=set)  # Event reasons seen for the Job/CronJob so far

    def sub(self, value: Any, **extra: Any) -> Any:
        return substitute(value, {**self.names, **extra})


# ------------------------------------------------------------------ triggers


def count_running(tl: Timeline) -> int:
    return sum(1 for p in tl.current_pods.values() if pod_phase(p) == "Running" and not is_terminating(p))


def count_ever_succeeded(tl: Timeline) -> int:
    return sum(1 for r in tl.pods.values() if any(pod_phase(v) == "Succeeded" for _, v in r.versions))


def _controller_ref(obj: Obj | None) -> Obj | None:
    refs = ((obj or {}).get("metadata") or {}).get("ownerReferences") or []
    return next((r for r in refs if r.get("controller")), None)


def trigger_met(when: Mapping[str, Any], tl: Timeline, t: float, prev_done_t: float | None, ctx: Context) -> bool:
    """All keys of ``when`` hold (AND). ``t`` is seconds since the Job/CronJob was created."""
    for key, value in when.items():
        if key == "t":
            ok = t >= parse_duration(value)
        elif key == "t_after_previous":
            ok = t - (prev_done_t if prev_done_t is not None else 0.0) >= parse_duration(value)
        elif key == "after_previous":
            ok = bool(value)
        elif key == "created":
            ok = (tl.job_record is not None or tl.cronjob is not None) == bool(value)
        elif key == "pods_running":
            ok = count_running(tl) >= int(value)
        elif key == "pods_succeeded":
            ok = count_ever_succeeded(tl) >= int(value)
        elif key == "pods_remaining_active":
            ok = sum(1 for p in tl.current_pods.values() if is_active_pod(p)) == int(value)
        elif key == "status":
            job = tl.job
            ok = job is not None and not match_value(ctx.sub(value), job.get("status") or {}, "status")
        elif key == "condition":
            ok = not match_conditions([value], conditions_of(tl.job))
        elif key == "cronjob_status_active":
            active = len(((tl.cronjob or {}).get("status") or {}).get("active") or [])
            ok = not match_value(value, active) if isinstance(value, dict) else active >= int(value)
        elif key == "pod_has_controller_ref":
            pods = [tl.current_pods[tl.selected_pod]] if tl.selected_pod in tl.current_pods else (
                [] if tl.selected_pod else list(tl.current_pods.values())
            )
            expected = ctx.sub(value)
            ok = any(not match_value(expected, _controller_ref(p) or {}) and _controller_ref(p) for p in pods)
        else:
            raise UnsupportedFormat(f"unknown trigger {key!r}")
        if not ok:
            return False
    return True


def select_pod(select: Mapping[str, Any] | None, tl: Timeline) -> str | None:
    """uid of the pod an action targets, or None when no candidate exists yet."""
    select = select or {"any": True}
    unknown = set(select) - SELECT_KEYS
    if unknown:
        raise UnsupportedFormat(f"unknown select key(s) {sorted(unknown)}")
    if "from" in select:
        name = str(select["from"])
        if name not in tl.ignored_pods:
            raise UnsupportedFormat(f"select from {name!r}: no such pre_create pod")
        pod = tl.current_precreated.get(name)
        return str(pod["metadata"]["uid"]) if pod is not None else None
    if select.get("same_as_previous"):
        return tl.selected_pod if tl.selected_pod in tl.current_pods else None
    recs = {r.uid: r for r in tl.pods.values()}
    active = sorted(
        (p for p in tl.current_pods.values() if is_active_pod(p)),
        key=lambda p: (pod_phase(p) != "Running", recs[str(p["metadata"]["uid"])].added_t if str(p["metadata"]["uid"]) in recs else 0),
    )
    if "index" in select:
        active = [p for p in active if pod_index(p) == int(select["index"])]
    elif not (select.get("any") or select.get("first")):
        raise UnsupportedFormat(f"unknown select {dict(select)!r}")
    if select.get("first"):
        active.sort(key=lambda p: recs[str(p["metadata"]["uid"])].added_t if str(p["metadata"]["uid"]) in recs else 0)
    return str(active[0]["metadata"]["uid"]) if active else None


# ------------------------------------------------------------------ pod-field expectations


def pod_field_problems(spec: Mapping[str, Any], pod: Obj, names: Mapping[str, Any]) -> list[str]:
    """``pod_each``-style keys on one pod: ``X_contain``, ``X_contain_key``, ``X_absent``, ``env``,
    bare metadata names (``ownerReferences``, ``generateName``) and dotted paths from the root."""
    meta = pod.get("metadata") or {}
    name = meta.get("name")
    idx = pod_index(pod)
    bound = {**names, "index": idx if idx is not None else "<index>"}
    problems: list[str] = []
    for key, raw in spec.items():
        expected = substitute(raw, bound)
        if key.endswith("_contain_key"):
            container = _metadata_field(pod, key[: -len("_contain_key")])
            keys = [expected] if isinstance(expected, str) else list(expected)
            missing = [k for k in keys if k not in (container or {})]
            if missing:
                problems.append(f"pod {name}: {key[: -len('_contain_key')]} lacks {missing}")
        elif key.endswith("_contain"):
            container = _metadata_field(pod, key[: -len("_contain")])
            if isinstance(expected, dict):
                problems += [f"pod {name}: {p}" for p in match_value(expected, dict(container or {}), key[: -len("_contain")])]
            else:
                missing = [x for x in expected if x not in (container or [])]
                if missing:
                    problems.append(f"pod {name}: {key[: -len('_contain')]} lacks {missing} (has {container})")
        elif key.endswith("_absent"):
            container = _metadata_field(pod, key[: -len("_absent")]) or []
            present = [x for x in expected if x in container]
            if present:
                problems.append(f"pod {name}: {key[: -len('_absent')]} still has {present}")
        elif key == "env":
            problems += [f"pod {name}: {p}" for p in env_problems(dict(expected), pod)]
        elif "." in key or key in ("metadata", "spec", "status"):
            problems += [f"pod {name}: {p}" for p in match_value(expected, get_path(pod, key), key)]
        else:
            problems += [f"pod {name}: {p}" for p in match_value(expected, meta.get(key), key)]
    return problems


def _metadata_field(obj: Obj, name: str) -> Any:
    if "." in name:
        return get_path(obj, name)
    return (obj.get("metadata") or {}).get(name)


def env_problems(expected: Mapping[str, Any], pod: Obj) -> list[str]:
    """Each variable is set in some container, by value or by a fieldRef to the pod's metadata."""
    problems: list[str] = []
    containers = ((pod.get("spec") or {}).get("containers") or []) + ((pod.get("spec") or {}).get("initContainers") or [])
    for var, want in expected.items():
        values: list[Any] = []
        for c in containers:
            for e in c.get("env") or []:
                if e.get("name") != var:
                    continue
                if "value" in e:
                    values.append(e.get("value"))
                ref = ((e.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath")
                if ref:
                    values.append(_field_ref_value(pod, str(ref)))
        if not any(str(v) == str(want) for v in values):
            problems.append(f"env {var}: expected {want!r}, found {values}")
    return problems


def _field_ref_value(pod: Obj, path: str) -> Any:
    meta = pod.get("metadata") or {}
    for prefix, container in (("metadata.annotations['", "annotations"), ("metadata.labels['", "labels")):
        if path.startswith(prefix) and path.endswith("']"):
            return (meta.get(container) or {}).get(path[len(prefix) : -2])
    return get_path(pod, path)


# ------------------------------------------------------------------ pods: {...}


def _deleted_by_controller(tl: Timeline, until: float | None = None) -> list[ObjectRecord]:
    out = []
    for rec in tl.pods_ever(until):
        if rec.uid in tl.harness_deleted_pods:
            continue
        if rec.deleted_t is not None or any(is_terminating(v) for _, v in rec.versions):
            out.append(rec)
    return out


def pods_problems(spec: Mapping[str, Any], tl: Timeline, moment: Moment, ctx: Context) -> list[str]:
    current = list(moment.pods.values())
    ever = tl.pods_ever(until=moment.t)
    problems: list[str] = []
    for key, raw in spec.items():
        expected = ctx.sub(raw)
        if key == "created":
            problems += match_value(expected, len(ever), "pods.created")
        elif key == "phases":
            counts: dict[str, int] = {}
            for rec in ever:
                last = tl.last_version_at(rec, moment.t) or rec.last
                counts[pod_phase(last)] = counts.get(pod_phase(last), 0) + 1
            for phase, want in expected.items():
                problems += match_value(want, counts.get(phase, 0), f"pods.phases.{phase}")
        elif key == "container_restart_count_each":
            for rec in ever:
                got = restart_count(tl.last_version_at(rec, moment.t) or rec.last)
                problems += match_value(expected, got, f"pods.{rec.name}.restartCount")
        elif key == "remaining":
            problems += match_value(expected, len(current), "pods.remaining")
        elif key == "non_terminating":
            problems += match_value(expected, sum(1 for p in current if is_active_pod(p)), "pods.non_terminating")
        elif key == "non_terminating_indexes":
            live = sorted(i for p in current if is_active_pod(p) and (i := pod_index(p)) is not None)
            problems += match_value(sorted(expected), live, "pods.non_terminating_indexes")
        elif key == "deleted_by_controller":
            problems += match_value(expected, len(_deleted_by_controller(tl, moment.t)), "pods.deleted_by_controller")
        elif key == "indexes_deleted_by_controller":
            gone = sorted({i for r in _deleted_by_controller(tl, moment.t) if (i := pod_index(r.last)) is not None})
            problems += match_value(sorted(expected), gone, "pods.indexes_deleted_by_controller")
        elif key == "all_terminated":
            running = [str(p["metadata"].get("name")) for p in current if pod_phase(p) not in TERMINAL_PHASES]
            if bool(expected) and running:
                problems.append(f"pods.all_terminated: still not terminal: {running}")
        elif key == "finalizers_absent_all":
            for p in current:
                held = [f for f in expected if f in ((p.get("metadata") or {}).get("finalizers") or [])]
                if held:
                    problems.append(f"pods.finalizers_absent_all: {p['metadata'].get('name')} has {held}")
        elif key == "owner_refs_absent_all":
            for p in current:
                if bool(expected) and (p.get("metadata") or {}).get("ownerReferences"):
                    problems.append(f"pods.owner_refs_absent_all: {p['metadata'].get('name')} has ownerReferences")
        elif key == "created_by_controller":
            # pre_create pods never enter ``ever``; the harness itself creates no other pods.
            problems += match_value(expected, len(ever), "pods.created_by_controller")
        elif key == "created_per_index":
            per: dict[int, int] = {}
            for rec in ever:
                i = pod_index(rec.versions[0][1])
                if i is not None:
                    per[i] = per.get(i, 0) + 1
            wanted = dict(enumerate(expected)) if isinstance(expected, list) else expected
            for idx, want in wanted.items():
                problems += match_value(want, per.get(int(idx), 0), f"pods.created_per_index.{idx}")
        else:
            raise UnsupportedFormat(f"unknown pods expectation {key!r}")
    return problems


# ------------------------------------------------------------------ the expectation table


Check = Callable[[Any, Timeline, Moment, Context], list[str]]


def _job_conditions(moment: Moment) -> list[Obj]:
    return conditions_of(moment.job)


def _check_conditions(value: Any, tl: Timeline, m: Moment, ctx: Context) -> list[str]:
    return match_conditions(ctx.sub(value), _job_conditions(m))


def _check_condition_order(value: Any, tl: Timeline, m: Moment, ctx: Context) -> list[str]:
    return condition_order_problems(list(value), _job_conditions(m))


def _check_conditions_count(value: Any, tl: Timeline, m: Moment, ctx: Context) -> list[str]:
    return match_value(value, len(_job_conditions(m)), "conditions_count")


def _check_conditions_exact_types(value: Any, tl: Timeline, m: Moment, ctx: Context) -> list[str]:
    got = sorted(str(c.get("type")) for c in _job_conditions(m))
    return [] if got == sorted(value) else [f"conditions types: expected exactly {sorted(value)}, got {got}"]


def _versions_until(tl: Timeline, m: Moment) -> list[Obj]:
    return [j for t, j in tl.job_versions if t <= m.t]


def _check_conditions_absent(value: Any, tl: Timeline, m: Moment, ctx: Context) -> list[str]:
    for job in _versions_until(tl, m) + ([m.job] if m.job else []):
        present = [c.get("type") for c in conditions_of(job) if c.get("type") in value]
        if present:
            return [f"conditions_absent: {present} appeared (conditions {conditions_of(job)})"]
    return []


def _check_conditions_absent_reason(value: Any, tl: Timeline, m: Moment, ctx: Context) -> list[str]:
    for job in _versions_until(tl, m):
        hit = [c for c in conditions_of(job) if c.get("reason") in value]
        if hit:
            return [f"conditions_absent_reason: {hit} appeared"]
    return []


def _check_status(value: Any, tl: Timeline, m: Moment, ctx: Context) -> list[str]:
    if m.job is None:
        return ["status: the Job does not exist"]
    return match_value(ctx.sub(value), m.job.get("status") or {}, "status")


def _check_pods(value: Any, tl: Timeline, m: Moment, ctx: Context) -> list[str]:
    return pods_problems(value, tl, m, ctx)


def _check_during(value: Any, tl: Timeline, m: Moment, ctx: Context) -> list[str]:
    problems: list[str] = []
    for item in value:
        checks = {k: v for k, v in item.items() if k != "at"}
        hit = any(not evaluate_at(checks, tl, moment, ctx) for moment in tl.moments if moment.t <= m.t)
        if not hit:
            problems.append(f"during ({item.get('at')}): never observed {checks}")
    return problems


def _check_status_sequence(value: Any, tl: Timeline, m: Moment, ctx: Context) -> list[str]:
    wanted = [ctx.sub(s) for s in value]
    i = 0
    for _, job in tl.job_versions:
        if i < len(wanted) and not match_value(wanted[i], job.get("status") or {}):
            i += 1
    if i == len(wanted):
        return []
    return [f"status_sequence: observed up to step {i}, never saw {wanted[i]} afterwards"]


def _indexes(pods: list[Obj]) -> list[int]:
    return sorted({i for p in pods if (i := pod_index(p)) is not None})


def _check_pods_succeeded_indexes(value: Any, tl: Timeline, m: Moment, ctx: Context) -> list[str]:
    succeeded = [v for r in tl.pods_ever(m.t) for _, v in r.versions if pod_phase(v) == "Succeeded"]
    return match_value(sorted(value), _indexes(succeeded), "pods_succeeded_indexes")


def _check_pods_active_indexes(value: Any, tl: Timeline, m: Moment, ctx: Context) -> list[str]:
    active = [p for p in m.pods.values() if is_active_pod(p)]
    return match_value(sorted(value), sorted(i for p in active if (i := pod_index(p)) is not None), "pods_active_indexes")


def _check_pod_each(value: Any, tl: Timeline, m: Moment, ctx: Context) -> list[str]:
    recs = tl.pods_ever(m.t)
    if not recs:
        return ["pod_each: no pods"]
    problems: list[str] = []
    for rec in recs:
        problems += pod_field_problems(value, tl.last_version_at(rec, m.t) or rec.last, ctx.names)
    return problems


def _check_pod_while_running(value: Any, tl: Timeline, m: Moment, ctx: Context) -> list[str]:
    problems: list[str] = []
    seen = 0
    for rec in tl.pods_ever(m.t):
        running = [v for t, v in rec.versions if t <= m.t and pod_phase(v) == "Running" and not is_terminating(v)]
        if running:
            seen += 1
            problems += pod_field_problems(value, running[-1], ctx.names)
    return problems if seen else ["pod_while_running: no pod was observed Running"]


def _check_pod_after_finish(value: Any, tl: Timeline, m: Moment, ctx: Context) -> list[str]:
    problems: list[str] = []
    seen = 0
    for rec in tl.pods_ever(m.t):
        last = tl.last_version_at(rec, m.t)
        if last is not None and pod_phase(last) in TERMINAL_PHASES:
            seen += 1
            problems += pod_field_problems(value, last, ctx.names)
    return problems if seen else ["pod_after_finish: no finished pod"]


def _check_job_after_create(value: Any, tl: Timeline, m: Moment, ctx: Context) -> list[str]:
    created = ctx.responses.get("create")
    if not isinstance(created, dict):
        return ["job_after_create: no create response"]
    problems: list[str] = []
    for path, want in ctx.sub(value).items():
        problems += match_value(want, get_path(created, path), path)
    return problems


def _check_job_get(value: Any, tl: Timeline, m: Moment, ctx: Context) -> list[str]:
    want = int(value.get("http_status", 200))
    got = 200 if m.job is not None else (404 if tl.job_record is not None else 0)
    return [] if got == want else [f"job_get: expected HTTP {want}, job is {'present' if got == 200 else 'absent'}"]


def _check_max_active(value: Any, tl: Timeline, m: Moment, ctx: Context) -> list[str]:
    limit = int(value)
    for _, job in tl.job_versions:
        active = int((job.get("status") or {}).get("active") or 0)
        if active > limit:
            return [f"max_active_at_any_time: status.active reached {active} > {limit}"]
    for moment in tl.moments:
        running = sum(1 for p in moment.pods.values() if is_active_pod(p))
        if running > limit:
            return [f"max_active_at_any_time: {running} active pods at t={moment.t:.1f}s > {limit}"]
    return []


def _check_timing(value: Any, tl: Timeline, m: Moment, ctx: Context) -> list[str]:
    problems: list[str] = []
    scenario = ctx.scenario
    for key, raw in value.items():
        if key == "min_gap_between_pod_creations_s":
            times = [r.added_t for r in tl.pods_ever(m.t)]
            gaps = [b - a for a, b in itertools.pairwise(times)]
            bounds = list(raw) if isinstance(raw, list) else [raw] * len(gaps)
            for i, (gap, bound) in enumerate(zip(gaps, bounds, strict=False)):
                # metav1.Time has second precision: the controller measures backoff from a
                # truncated finish time, upstream too, so allow one second less.
                floor = max(ctx.timing.bound(scenario, float(bound)) - 1.0, 0.0)
                if gap < floor:
                    problems.append(f"timing: gap {i + 1} between pod creations {gap:.2f}s < {floor:.2f}s")
        elif key.endswith("_condition_within_s_of_creation"):
            ctype = key[: -len("_condition_within_s_of_creation")].capitalize()
            first = next(
                (t for t, job in tl.job_versions if any(c.get("type") == ctype and c.get("status") == "True" for c in conditions_of(job))),
                None,
            )
            limit = ctx.timing.bound(scenario, float(raw))
            if first is None:
                problems.append(f"timing: {ctype} condition not observed")
            elif first > limit:
                problems.append(f"timing: {ctype} at {first:.1f}s after creation > {limit:.1f}s")
        elif key in ("job_exists_at_s_after_finish", "job_gone_by_s_after_finish"):
            problems += _ttl_timing(key, float(raw), tl, m, ctx)
        else:
            raise UnsupportedFormat(f"unknown timing key {key!r}")
    return problems


def _check_replacement_pod_annotation(value: Any, tl: Timeline, m: Moment, ctx: Context) -> list[str]:
    for rec in tl.pods_ever(m.t):
        for _, v in rec.versions:
            if not match_value(value, (v.get("metadata") or {}).get("annotations") or {}):
                return []
    return [f"replacement_pod_annotation: no pod with annotations {value}"]


def _targets(ctx: Context, verb: str) -> list[tuple[str, float]]:
    return [(uid, t) for v, uid, t in ctx.targets if v == verb]


def _check_readopted(value: Any, tl: Timeline, m: Moment, ctx: Context) -> list[str]:
    first = _targets(ctx, "update_pod")[:1]
    if not first:
        return ["readopted_controller_ref: no update_pod action ran yet"]
    uid, since = first[0]
    rec = tl.pod_record(uid)
    expected = ctx.sub(value)
    if rec and any(t >= since and (ref := _controller_ref(v)) and not match_value(expected, ref) for t, v in rec.versions):
        return []
    return [f"readopted_controller_ref: pod never re-gained controller ref {expected}"]


def _check_released(value: Any, tl: Timeline, m: Moment, ctx: Context) -> list[str]:
    last = _targets(ctx, "update_pod")[-1:]
    if not last:
        return ["released_pod_controller_ref: no update_pod action ran yet"]
    rec = tl.pod_record(last[0][0])
    if rec is None:
        return ["released_pod_controller_ref: pod never observed"]
    if len(_targets(ctx, "update_pod")) < len([a for a in ctx.scenario.raw.get("actions") or [] if a.get("do") == "update_pod"]):
        return ["released_pod_controller_ref: waiting for the last update_pod action"]
    return match_value(ctx.sub(value), _controller_ref(tl.last_version_at(rec, m.t) or rec.last), "controllerRef")


def _check_evicted_conditions(value: Any, tl: Timeline, m: Moment, ctx: Context) -> list[str]:
    if not tl.evicted_pods:
        return ["evicted_pod_conditions_contain: no pod was evicted"]
    problems: list[str] = []
    for uid in tl.evicted_pods:
        rec = tl.pod_record(uid)
        versions = [v for _, v in rec.versions] if rec else []
        if not any(not match_conditions(value, conditions_of(v)) for v in versions):
            problems.append(f"evicted pod {rec.name if rec else uid}: never had conditions {value}")
    return problems


def _response_problems(value: Any, obj: Any, label: str, ctx: Context) -> list[str]:
    if not isinstance(obj, dict):
        return [f"{label}: no response recorded"]
    problems: list[str] = []
    for key, want in ctx.sub(value).items():
        if key == "annotations":
            problems += match_value(want, (obj.get("metadata") or {}).get("annotations") or {}, f"{label}.annotations")
        elif key == "condition":
            problems += [f"{label}: {p}" for p in _condition_full_match(want, conditions_of(obj))]
        else:
            problems += match_value(want, get_path(obj, key), f"{label}.{key}")
    return problems


def _condition_full_match(want: Mapping[str, Any], conds: list[Obj]) -> list[str]:
    if any(not match_value(dict(want), c) for c in conds):
        return []
    return [f"no condition matching {dict(want)} in {conds}"]


def _response_check(name: str) -> Check:
    def check(value: Any, tl: Timeline, m: Moment, ctx: Context) -> list[str]:
        return _response_problems(value, ctx.responses.get(name), name, ctx)

    return check


# ---- CronJob e2e words


def _job_records(tl: Timeline, until: float) -> list[ObjectRecord]:
    return sorted((r for r in tl.jobs.values() if r.added_t <= until), key=lambda r: r.added_t)


def _cron_active(moment: Moment) -> int:
    return len(((moment.cronjob or {}).get("status") or {}).get("active") or [])


def _jobs_active_listed(moment: Moment) -> int:
    return sum(1 for j in moment.jobs.values() if not job_finished(j))


METRICS: dict[str, Callable[[Moment], int]] = {
    "cronjob_status_active": _cron_active,
    "jobs_active_listed": _jobs_active_listed,
    "jobs_finished_listed": lambda mo: sum(1 for j in mo.jobs.values() if job_finished(j)),
}


def _metric_check(name: str) -> Check:
    def check(value: Any, tl: Timeline, m: Moment, ctx: Context) -> list[str]:
        return match_value(value, METRICS[name](m), name)

    return check


def _check_never(value: Any, tl: Timeline, m: Moment, ctx: Context) -> list[str]:
    problems: list[str] = []
    for key, bound in value.items():
        comparisons: list[tuple[str, Callable[[int, int], bool]]] = [
            ("_gte", lambda a, b: a >= b), ("_lte", lambda a, b: a <= b), ("_gt", lambda a, b: a > b)]
        for suffix, op in comparisons:
            if key.endswith(suffix) and key[: -len(suffix)] in METRICS:
                metric = METRICS[key[: -len(suffix)]]
                bad = next((mo for mo in tl.moments if mo.t <= m.t and op(metric(mo), bound)), None)
                if bad is not None:
                    problems.append(f"never {key} {bound}: violated at t={bad.t:.1f}s ({metric(bad)})")
                break
        else:
            raise UnsupportedFormat(f"unknown never-metric {key!r}")
    return problems


def _check_first_job_replaced(value: Any, tl: Timeline, m: Moment, ctx: Context) -> list[str]:
    recs = _job_records(tl, m.t)
    if not recs:
        return ["first_job_replaced: no job created"]
    first = recs[0]
    gone = first.deleted_t is not None or any(is_terminating(v) for _, v in first.versions)
    later = [r for r in recs[1:] if r.deleted_t is None]
    if bool(value) != (gone and bool(later)):
        return [f"first_job_replaced: first job deleted={gone}, newer jobs={[r.name for r in later]}"]
    return []


def _check_jobs_total(value: Any, tl: Timeline, m: Moment, ctx: Context) -> list[str]:
    return match_value(value, len(_job_records(tl, m.t)), "jobs_total")


def _check_jobs_finished(value: Any, tl: Timeline, m: Moment, ctx: Context) -> list[str]:
    n = sum(1 for r in _job_records(tl, m.t) if any(job_finished(v) for _, v in r.versions))
    return match_value(value, n, "jobs_finished")


def _check_events_absent(value: Any, tl: Timeline, m: Moment, ctx: Context) -> list[str]:
    if ctx.events is None:
        return ["events_absent_reasons: events not listed yet"]
    hits = [e.get("reason") for e in ctx.events if e.get("reason") in value]
    return [f"events_absent_reasons: found {hits}"] if hits else []


def _each_job(tl: Timeline, m: Moment) -> list[Obj]:
    return [r.last for r in _job_records(tl, m.t)]


def _check_job_annotations(value: Any, tl: Timeline, m: Moment, ctx: Context) -> list[str]:
    jobs = _each_job(tl, m)
    if not jobs:
        return ["job_annotations: no job created"]
    problems: list[str] = []
    for job in jobs:
        ann = (job.get("metadata") or {}).get("annotations") or {}
        for key, want in value.items():
            got = ann.get(key)
            if isinstance(want, dict) and set(want) <= {"rfc3339", "is_minute_boundary"}:
                when = parse_rfc3339(got)
                if want.get("rfc3339") and when is None:
                    problems.append(f"job {job['metadata'].get('name')}: {key}={got!r} is not RFC 3339")
                elif want.get("is_minute_boundary") and when is not None and (when.second or when.microsecond):
                    problems.append(f"job {job['metadata'].get('name')}: {key}={got!r} is not on a minute boundary")
            else:
                problems += match_value(want, got, key)
    return problems


def _check_job_name_prefix(value: Any, tl: Timeline, m: Moment, ctx: Context) -> list[str]:
    jobs = _each_job(tl, m)
    bad = [j["metadata"].get("name") for j in jobs if not str(j["metadata"].get("name")).startswith(value)]
    return ["job_name_prefix: no job created"] if not jobs else ([f"job_name_prefix: {bad}"] if bad else [])


def _check_job_owner_ref(value: Any, tl: Timeline, m: Moment, ctx: Context) -> list[str]:
    jobs = _each_job(tl, m)
    if not jobs:
        return ["job_owner_ref: no job created"]
    problems: list[str] = []
    for job in jobs:
        refs = (job.get("metadata") or {}).get("ownerReferences") or []
        if not any(not match_value(ctx.sub(value), r) for r in refs):
            problems.append(f"job {job['metadata'].get('name')}: no ownerReference matching {value} in {refs}")
    return problems


def _finished_records(tl: Timeline, m: Moment) -> list[tuple[float, ObjectRecord]]:
    out = []
    for r in _job_records(tl, m.t):
        t = next((t for t, v in r.versions if job_finished(v)), None)
        if t is not None:
            out.append((t, r))
    return sorted(out, key=lambda x: x[0])


def _finished_after(nth: int) -> Check:
    def check(value: Any, tl: Timeline, m: Moment, ctx: Context) -> list[str]:
        fin = _finished_records(tl, m)
        if len(fin) < nth:
            return [f"finished jobs: {len(fin)} so far, waiting for #{nth}"]
        since = fin[nth - 1][0]
        if nth == 1:
            if any(mo.t >= since and not match_value(value, METRICS["jobs_finished_listed"](mo)) for mo in tl.moments):
                return []
            return [f"finished_jobs_after_first: never {value} finished jobs listed"]
        return match_value(value, METRICS["jobs_finished_listed"](m), "finished_jobs_after_second")

    return check


def _check_first_finished_deleted(value: Any, tl: Timeline, m: Moment, ctx: Context) -> list[str]:
    fin = _finished_records(tl, m)
    if not fin:
        return ["first_finished_job_and_pods_deleted: no finished job yet"]
    rec = fin[0][1]
    job_gone = rec.deleted_t is not None
    pods_left = [
        p["metadata"].get("name")
        for p in m.pods.values()
        if any(o.get("uid") == rec.uid for o in (p.get("metadata") or {}).get("ownerReferences") or [])
    ]
    ok = job_gone and not pods_left
    return [] if ok == bool(value) else [f"first finished job deleted={job_gone}, its pods left={pods_left}"]


# ---- the rest of the full vocabulary (README "Full vocabulary")

#: metav1.Time has second precision: a TTL measured from a truncated lastTransitionTime may end
#: up to a second before the finish the harness observed.
TIME_PRECISION_S = 1.0
#: Latency between the server deleting a Job and the harness observing it (watch + poll).
OBSERVE_SLACK_S = 2.0


def _finish_t(tl: Timeline) -> float | None:
    return next((t for t, job in tl.job_versions if job_finished(job)), None)


def _ttl_timing(key: str, seconds: float, tl: Timeline, m: Moment, ctx: Context) -> list[str]:
    finished = _finish_t(tl)
    if finished is None:
        return [f"timing.{key}: the Job never finished"]
    gone = tl.job_deleted_t
    if key == "job_exists_at_s_after_finish":
        if gone is not None:
            lived = gone - finished
            return [] if lived >= seconds - TIME_PRECISION_S else [
                f"timing.{key}: the Job was gone {lived:.1f}s after finishing (< {seconds:g}s)"]
        now = ctx.now if ctx.now is not None else m.t
        return [] if now - finished >= seconds else [f"timing.{key}: only {now - finished:.1f}s since finish so far"]
    limit = seconds * ctx.timing.timeout_scale + OBSERVE_SLACK_S
    if gone is None:
        return [f"timing.{key}: the Job still exists"]
    return [] if gone - finished <= limit else [
        f"timing.{key}: the Job was gone only {gone - finished:.1f}s after finishing (> {limit:g}s)"]


def _check_conditions_before_delete(value: Any, tl: Timeline, m: Moment, ctx: Context) -> list[str]:
    until = ctx.delete_t if ctx.delete_t is not None else m.t
    versions = [job for t, job in tl.job_versions if t <= until]
    problems: list[str] = []
    for want in ctx.sub(value):
        if not any(not match_conditions([want], conditions_of(job)) for job in versions):
            problems.append(f"conditions_before_delete: the Job never showed {dict(want)} before it was deleted")
    return problems


def _check_watch_events(value: Any, tl: Timeline, m: Moment, ctx: Context) -> list[str]:
    """The expected Job watch events, in order, as a subsequence of what the watch delivered."""
    wanted = [dict(w) for w in ctx.sub(value)]
    for w in wanted:
        unknown = set(w) - {"type", "label", "annotation"}
        if unknown:
            raise UnsupportedFormat(f"watch_events: unknown key(s) {sorted(unknown)}")
    i = 0
    for t, kind, etype, obj in tl.watch_log:
        if i == len(wanted) or t > m.t:
            break
        if kind != "Job":
            continue
        w = wanted[i]
        meta = obj.get("metadata") or {}
        if (etype == w.get("type")
                and ("label" not in w or not match_value(w["label"], meta.get("labels") or {}))
                and ("annotation" not in w or not match_value(w["annotation"], meta.get("annotations") or {}))):
            i += 1
    if i == len(wanted):
        return []
    return [f"watch_events: got the first {i} of {len(wanted)}; never {wanted[i]} after them"]


def _check_pod_named(name: str) -> Check:
    """``pod <name>``: a pre_create pod's finalizers and ownerReferences."""

    def check(value: Any, tl: Timeline, m: Moment, ctx: Context) -> list[str]:
        rec = tl.precreated.get(name)
        if rec is None:
            return [f"pod {name}: never observed (is it in pre_create?)"]
        pod = tl.last_version_at(rec, m.t) or rec.last
        meta = pod.get("metadata") or {}
        problems: list[str] = []
        for key, want in ctx.sub(value).items():
            if key == "finalizers_contain":
                missing = [f for f in want if f not in (meta.get("finalizers") or [])]
                if missing:
                    problems.append(f"pod {name}: finalizers {meta.get('finalizers')} lack {missing}")
            elif key == "ownerReferences":
                refs = meta.get("ownerReferences") or []
                for ref in want:
                    if not any(not match_value(dict(ref), r) for r in refs):
                        problems.append(f"pod {name}: no ownerReference matching {dict(ref)} in {refs}")
            else:
                raise UnsupportedFormat(f"unknown pod expectation {key!r}")
        return problems

    return check


def _check_events_reasons_contain(value: Any, tl: Timeline, m: Moment, ctx: Context) -> list[str]:
    missing = [r for r in value if r not in ctx.event_reasons]
    return [f"events_reasons_contain: {missing} not seen (seen {sorted(ctx.event_reasons)})"] if missing else []


def _check_deleted_job_not_in_active(value: Any, tl: Timeline, m: Moment, ctx: Context) -> list[str]:
    deleted = {r.uid for r in tl.jobs.values() if r.deleted_t is not None and r.deleted_t <= m.t}
    if bool(value) and not deleted:
        return ["deleted_job_not_in_status_active: no Job was deleted yet"]
    active = ((m.cronjob or {}).get("status") or {}).get("active") or []
    kept = [ref.get("name") for ref in active if ref.get("uid") in deleted]
    if bool(value) == bool(kept):
        return [f"deleted_job_not_in_status_active: status.active still lists deleted {kept}"] if kept else [
            "deleted_job_not_in_status_active: expected false, but no deleted Job is listed"]
    return []


def _count_check(name: str) -> Check:
    """A count the runner recorded (a list around a delete_collection); absent until it ran."""

    def check(value: Any, tl: Timeline, m: Moment, ctx: Context) -> list[str]:
        if name not in ctx.responses:
            return [f"{name}: not listed yet (no delete_collection of Jobs ran)"]
        return match_value(value, ctx.responses[name], name)

    return check


def _flag_check(name: str) -> Check:
    def check(value: Any, tl: Timeline, m: Moment, ctx: Context) -> list[str]:
        return match_value(value, ctx.responses.get(name), name)

    return check


CHECKS: dict[str, Check] = {
    "conditions": _check_conditions,
    "condition_order": _check_condition_order,
    "conditions_count": _check_conditions_count,
    "conditions_exact_types": _check_conditions_exact_types,
    "conditions_absent": _check_conditions_absent,
    "conditions_absent_reason": _check_conditions_absent_reason,
    "status": _check_status,
    "pods": _check_pods,
    "pods_after_terminal": _check_pods,
    "during": _check_during,
    "status_sequence": _check_status_sequence,
    "pods_succeeded_indexes": _check_pods_succeeded_indexes,
    "pods_active_indexes": _check_pods_active_indexes,
    "pod_each": _check_pod_each,
    "pod_while_running": _check_pod_while_running,
    "pod_after_finish": _check_pod_after_finish,
    "job_after_create": _check_job_after_create,
    "job_get": _check_job_get,
    "max_active_at_any_time": _check_max_active,
    "timing": _check_timing,
    "replacement_pod_annotation": _check_replacement_pod_annotation,
    "readopted_controller_ref": _check_readopted,
    "released_pod_controller_ref": _check_released,
    "evicted_pod_conditions_contain": _check_evicted_conditions,
    "patch_response": _response_check("patch_status"),
    "update_response": _response_check("update_status"),
    "get_status": _response_check("get_status"),
    "cronjob_status_active": _metric_check("cronjob_status_active"),
    "jobs_active_listed": _metric_check("jobs_active_listed"),
    "never": _check_never,
    "first_job_replaced": _check_first_job_replaced,
    "jobs_total": _check_jobs_total,
    "jobs_finished": _check_jobs_finished,
    "events_absent_reasons": _check_events_absent,
    "job_annotations": _check_job_annotations,
    "job_name_prefix": _check_job_name_prefix,
    "job_owner_ref": _check_job_owner_ref,
    "finished_jobs_after_first": _finished_after(1),
    "finished_jobs_after_second": _finished_after(2),
    "first_finished_job_and_pods_deleted": _check_first_finished_deleted,
    "steps_all_succeed": _flag_check("steps_all_succeed"),
    "list_by_label": _flag_check("list_by_label"),
    "status_patch_roundtrip": _response_check("status_patch_roundtrip"),
    "status_update_roundtrip": _response_check("status_update_roundtrip"),
    "conditions_before_delete": _check_conditions_before_delete,
    "watch_events": _check_watch_events,
    "events_reasons_contain": _check_events_reasons_contain,
    "deleted_job_not_in_status_active": _check_deleted_job_not_in_active,
    "list_all_namespaces_by_label_before_delete": _count_check("list_all_namespaces_by_label_before_delete"),
    "list_after_delete": _count_check("list_after_delete"),
}
POD_PREFIX = "pod "

# Handled by the runner itself (a waiting rule, or the create-must-fail path).
RUNNER_KEYS = frozenset({"consistently_for_s", "http_status", "reason", "field_paths", "message_contains", "causes", "defaults"})


def _check_for(key: str) -> Check | None:
    if key.startswith(POD_PREFIX):
        return _check_pod_named(key[len(POD_PREFIX):].strip())
    return CHECKS.get(key)


def unsupported_keys(expect: Mapping[str, Any]) -> list[str]:
    return sorted(k for k in expect if _check_for(k) is None and k not in DOC_KEYS and k not in RUNNER_KEYS)


def _expect_gaps(expect: Mapping[str, Any], where: str) -> list[str]:
    gaps = [f"{where}: unknown expectation {k!r}" for k in unsupported_keys(expect)]
    for key in ("pods", "pods_after_terminal"):
        gaps += [f"{where}.{key}: unknown key {k!r}" for k in expect.get(key) or {} if k not in PODS_KEYS]
    gaps += [f"{where}.timing: unknown key {k!r}" for k in expect.get("timing") or {}
             if k not in TIMING_KEYS and not k.endswith("_condition_within_s_of_creation")]
    for key, value in expect.items():
        if key.startswith(POD_PREFIX) and isinstance(value, dict):
            gaps += [f"{where}.{key}: unknown key {k!r}" for k in value if k not in POD_NAMED_KEYS]
    for i, item in enumerate(expect.get("during") or []):
        gaps += _expect_gaps({k: v for k, v in item.items() if k != "at"}, f"{where}.during[{i}]")
    return gaps


def scenario_gaps(scenario: Scenario) -> list[str]:
    """Every word of a scenario this harness does not implement (checked before it runs, so a
    held-out scenario using an unknown key fails loudly instead of passing vacuously)."""
    raw = scenario.raw
    gaps = [f"unknown scenario key {k!r}" for k in raw if k not in SCENARIO_KEYS]
    if "kind" in raw and raw["kind"] not in SCENARIO_KINDS:
        gaps.append(f"unknown scenario kind {raw['kind']!r}")
    if scenario.kind == "table":
        return gaps
    gaps += _expect_gaps(scenario.expect, "expect")
    for i, action in enumerate(raw.get("actions") or []):
        verb = action.get("do")
        if verb not in ACTION_KEYS:
            gaps.append(f"actions[{i}]: unknown verb {verb!r}")
            continue
        extra = set(action) - ACTION_KEYS[verb] - {"when", "do"}
        gaps += [f"actions[{i}] ({verb}): unknown key {k!r}" for k in sorted(extra)]
        gaps += [f"actions[{i}].when: unknown trigger {k!r}" for k in action.get("when") or {} if k not in TRIGGER_KEYS]
        gaps += [f"actions[{i}].select: unknown key {k!r}" for k in action.get("select") or {} if k not in SELECT_KEYS]
        gaps += _expect_gaps(action.get("expect") or {}, f"actions[{i}].expect")
    for i, obj in enumerate(raw.get("pre_create") or []):
        if not isinstance(obj, dict) or not obj.get("kind") or not (obj.get("metadata") or {}).get("name"):
            gaps.append(f"pre_create[{i}]: not a complete manifest with kind and metadata.name")
    return gaps


def evaluate_at(expect: Mapping[str, Any], tl: Timeline, moment: Moment, ctx: Context) -> list[str]:
    """Problems with ``expect`` at ``moment`` (history up to it included)."""
    problems: list[str] = []
    for key, value in expect.items():
        if key in DOC_KEYS or key in RUNNER_KEYS:
            continue
        check = _check_for(key)
        if check is None:
            raise UnsupportedFormat(f"unknown expectation {key!r}")
        problems += check(value, tl, moment, ctx)
    return problems


def never_violations(expect: Mapping[str, Any], tl: Timeline, ctx: Context) -> list[str]:
    """Violations of the must-never-happen expectations so far (permanent once found)."""
    return evaluate_at({k: v for k, v in expect.items() if k in NEVER_KEYS}, tl, tl.now_moment, ctx)


def evaluate(expect: Mapping[str, Any], tl: Timeline, ctx: Context) -> list[str]:
    return evaluate_at(expect, tl, tl.now_moment, ctx)
