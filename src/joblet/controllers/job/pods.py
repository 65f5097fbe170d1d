"""Pod facts the Job controller reasons with: phase, readiness, completion index, ranking.

These mirror ``pkg/controller/controller_utils.go`` and ``pkg/api/v1/pod`` helpers so the
decision code reads like upstream. Pure functions over wire-format pod dicts.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from joblet.clock import parse_time_or_none

Obj = dict[str, Any]

TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
COMPLETION_INDEX_KEY = "batch.kubernetes.io/job-completion-index"
INDEX_FAILURE_COUNT_KEY = "batch.kubernetes.io/job-index-failure-count"
INDEX_IGNORED_FAILURE_COUNT_KEY = "batch.kubernetes.io/job-index-ignored-failure-count"
UNKNOWN_INDEX = -1
MAX_INT32 = 2147483647


def _meta(pod: Obj) -> Obj:
    m: Obj = pod.get("metadata") or {}
    return m


def _status(pod: Obj) -> Obj:
    s: Obj = pod.get("status") or {}
    return s


def phase(pod: Obj) -> str:
    return str(_status(pod).get("phase") or "")


def uid(pod: Obj) -> str:
    return str(_meta(pod).get("uid") or "")


def deleting(obj: Obj) -> bool:
    return bool(_meta(obj).get("deletionTimestamp"))


def is_terminal(pod: Obj) -> bool:
    return phase(pod) in ("Succeeded", "Failed")


def is_active(pod: Obj) -> bool:
    """controller.FilterActivePods: not Succeeded/Failed and no deletionTimestamp."""
    return not is_terminal(pod) and not deleting(pod)


def is_terminating(pod: Obj) -> bool:
    """controller.FilterTerminatingPods: deletionTimestamp set, not Succeeded/Failed."""
    return deleting(pod) and not is_terminal(pod)


def _ready_condition(pod: Obj) -> Obj | None:
    for cond in _status(pod).get("conditions") or []:
        if cond.get("type") == "Ready":
            return dict(cond)
    return None


def is_ready(pod: Obj) -> bool:
    cond = _ready_condition(pod)
    return cond is not None and cond.get("status") == "True"


def ready_time(pod: Obj) -> datetime | None:
    """When the pod became Ready (None when unknown or not ready)."""
    cond = _ready_condition(pod)
    if cond is None or cond.get("status") != "True":
        return None
    return parse_time_or_none(cond.get("lastTransitionTime"))


def has_tracking_finalizer(pod: Obj) -> bool:
    return TRACKING_FINALIZER in (_meta(pod).get("finalizers") or ())


def completion_index(pod: Obj) -> int:
    """The completion-index annotation as a non-negative int, else UNKNOWN_INDEX."""
    value = (_meta(pod).get("annotations") or {}).get(COMPLETION_INDEX_KEY)
    if value is None:
        return UNKNOWN_INDEX
    try:
        ix = int(str(value))
    except ValueError:
        return UNKNOWN_INDEX
    return ix if ix >= 0 else UNKNOWN_INDEX


def _int32_annotation(pod: Obj, key: str) -> int:
    value = (_meta(pod).get("annotations") or {}).get(key)
    if value is None:
        return 0
    try:
        n = int(str(value))
    except ValueError:
        return 0
    return n if 0 <= n <= MAX_INT32 else 0


def index_failure_count(pod: Obj) -> int:
    return _int32_annotation(pod, INDEX_FAILURE_COUNT_KEY)


def index_ignored_failure_count(pod: Obj) -> int:
    return _int32_annotation(pod, INDEX_IGNORED_FAILURE_COUNT_KEY)


def index_absolute_failure_count(pod: Obj) -> int:
    return index_failure_count(pod) + index_ignored_failure_count(pod)


def restart_count_sum(pod: Obj) -> int:
    st = _status(pod)
    total = 0
    for key in ("initContainerStatuses", "containerStatuses"):
        for cs in st.get(key) or []:
            total += int(cs.get("restartCount") or 0)
    return total


def max_container_restarts(pod: Obj) -> int:
    st = _status(pod)
    best = 0
    for key in ("initContainerStatuses", "containerStatuses"):
        for cs in st.get(key) or []:
            best = max(best, int(cs.get("restartCount") or 0))
    return best


def creation_time(pod: Obj) -> datetime | None:
    return parse_time_or_none(_meta(pod).get("creationTimestamp"))


# -- deletion ranking (controller.ActivePods) -----------------------------------------------

_PHASE_ORDINAL = {"Pending": 0, "Unknown": 1, "Running": 2}


def _after_or_zero(t1: datetime | None, t2: datetime | None) -> bool:
    if t1 is None or t2 is None:
        return t1 is None
    return t1 > t2


def _active_pods_less(a: Obj, b: Obj) -> bool:
    node_a = str((a.get("spec") or {}).get("nodeName") or "")
    node_b = str((b.get("spec") or {}).get("nodeName") or "")
    if node_a != node_b and (not node_a or not node_b):
        return not node_a
    pa, pb = _PHASE_ORDINAL.get(phase(a), 0), _PHASE_ORDINAL.get(phase(b), 0)
    if pa != pb:
        return pa < pb
    ra, rb = is_ready(a), is_ready(b)
    if ra != rb:
        return not ra
    if ra and rb:
        ta, tb = ready_time(a), ready_time(b)
        if ta != tb:
            return _after_or_zero(ta, tb)
    ca, cb = max_container_restarts(a), max_container_restarts(b)
    if ca != cb:
        return ca > cb
    cta, ctb = creation_time(a), creation_time(b)
    if cta != ctb:
        return _after_or_zero(cta, ctb)
    return False


def _cmp(a: Obj, b: Obj) -> int:
    if _active_pods_less(a, b):
        return -1
    if _active_pods_less(b, a):
        return 1
    return 0


def sort_for_deletion(pods: list[Obj]) -> list[Obj]:
    """Pods in the order they should be deleted (first = deleted first), stable."""
    return sorted(pods, key=functools.cmp_to_key(_cmp))
