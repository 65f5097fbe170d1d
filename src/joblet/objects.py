"""Small helpers over Kubernetes wire-format dicts, shared by every layer.

Objects travel as plain dicts (the exact JSON Kubernetes sends); these helpers keep the
dict-walking in one place so the rest of the code reads like the Kubernetes source.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from joblet.clock import rfc3339

Obj = dict[str, Any]


def deep_copy(obj: Obj) -> Obj:
    """A private copy of a JSON-like object (faster than copy.deepcopy for these shapes)."""
    copied: Obj = orjson.loads(orjson.dumps(obj))
    return copied


def field_text(obj: Any, *keys: str) -> str:
    """The value at ``keys`` as a field selector compares it: "" where a level is missing or the
    value is null, ``true``/``false`` for a bool, else its text."""
    cur: Any = obj
    for key in keys:
        if not isinstance(cur, Mapping):
            return ""
        cur = cur.get(key)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def meta(obj: Obj) -> Obj:
    m: Obj = obj.setdefault("metadata", {})
    return m


def name_of(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def namespace_of(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or "")


def uid_of(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("uid") or "")


def key_of(obj: Obj) -> str:
    """``namespace/name`` (or ``name`` for cluster-scoped objects): the work-queue key."""
    ns = namespace_of(obj)
    return f"{ns}/{name_of(obj)}" if ns else name_of(obj)


def split_key(key: str) -> tuple[str, str]:
    ns, _, name = key.rpartition("/")
    return ns, name


def labels_of(obj: Obj) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("labels") or {})


def annotations_of(obj: Obj) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("annotations") or {})


def finalizers_of(obj: Obj) -> list[str]:
    return list((obj.get("metadata") or {}).get("finalizers") or [])


def deletion_timestamp(obj: Obj) -> str | None:
    value = (obj.get("metadata") or {}).get("deletionTimestamp")
    return str(value) if value else None


def controller_ref(obj: Obj) -> Obj | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return dict(ref)
    return None


def owner_ref(owner: Obj, api_version: str, kind: str, controller: bool = True, block: bool = True) -> Obj:
    """The ownerReference a dependent carries (``metav1.NewControllerRef``). The group/version
    and kind are passed, as upstream does, because objects from a cache may lack TypeMeta."""
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": name_of(owner),
        "uid": uid_of(owner),
        "controller": controller,
        "blockOwnerDeletion": block,
    }


def find_condition(obj: Obj, ctype: str) -> Obj | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == ctype:
            return dict(cond)
    return None


def condition_true(obj: Obj, ctype: str) -> bool:
    cond = find_condition(obj, ctype)
    return cond is not None and cond.get("status") == "True"


def count_of(value: Any) -> int:
    """A count read from a stored object (``status.succeeded``, an exit code…): 0 when it is
    absent or not a number, so a display never fails on a malformed object."""
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def rv_of(obj: Obj | None) -> int:
    """An object's resourceVersion as an int; 0 when it has none or it is not a number (an
    object that was never stored). The one resourceVersion parser."""
    try:
        return int(((obj or {}).get("metadata") or {}).get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0


def job_finished(job: Obj) -> str | None:
    """``Complete`` or ``Failed`` when the Job has that condition True, else None: upstream's
    ``IsJobFinished`` (the first such condition in list order). The one "is this Job finished"."""
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
            return str(cond["type"])
    return None


# Characters Kubernetes uses for generateName suffixes (no vowels, no look-alikes).
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def random_suffix(n: int = 5) -> str:
    """A generateName-style suffix (``x7fkq``)."""
    return "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(n))


def stable_suffix(seed: str, n: int = 5) -> str:
    """A suffix in :func:`random_suffix`'s alphabet that is always the same for ``seed``."""
    digest = int.from_bytes(hashlib.blake2b(seed.encode(), digest_size=8).digest(), "big")
    out = []
    for _ in range(n):
        digest, i = divmod(digest, len(_SUFFIX_ALPHABET))
        out.append(_SUFFIX_ALPHABET[i])
    return "".join(out)


#: Finalizers the registry adds for a DELETE with propagationPolicy Orphan / Foreground.
ORPHAN_FINALIZER = "orphan"
FOREGROUND_FINALIZER = "foregroundDeletion"


def failed_pod_status(pod: Obj, now: datetime, reason: str, message: str) -> Obj:
    """The status patch that fails a pod whose node is gone: phase Failed, Ready and
    ContainersReady False, DisruptionTarget True (merge patch: whole conditions list)."""
    stamp = rfc3339(now)
    conditions = [deep_copy(c) for c in (pod.get("status") or {}).get("conditions") or []
                  if c.get("type") != "DisruptionTarget"]
    for cond in conditions:
        if cond.get("type") in ("Ready", "ContainersReady") and cond.get("status") != "False":
            cond.update(status="False", lastTransitionTime=stamp)
    conditions.append({"type": "DisruptionTarget", "status": "True", "reason": reason, "message": message,
                       "lastProbeTime": None, "lastTransitionTime": stamp})
    return {"phase": "Failed", "conditions": conditions}
