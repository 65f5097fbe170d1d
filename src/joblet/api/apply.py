"""Server-side apply (``application/apply-patch+yaml``), pragmatically: ``managedFields``
per field manager, conflicts with other managers' fields (409 unless ``force``), and removal
of fields a manager stops applying.

Why apart from :mod:`joblet.api.patch`: apply builds on the strategic-merge machinery there
(the same per-kind field metadata and list merge keys) but adds its own state, the
``fieldsV1`` sets; the two together were one 775-line module.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import orjson

from joblet.api.patch import (
    SCHEMA,
    FieldMeta,
    _clone,
    _json,
    _json_equal,
    _merge_map,
    root_type,
    strategic_merge_patch,
)
from joblet.clock import rfc3339
from joblet.errors import BadRequest, Conflict

Obj = dict[str, Any]


Path = tuple[str, ...]

# Fields the apiserver never tracks in managedFields (fieldmanager's stripSet).
_UNTRACKED_ROOT = {"apiVersion", "kind"}
_UNTRACKED_META = {
    "name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
    "managedFields", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds",
}


def _element_key(item: Mapping[str, Any], merge_key: str) -> str:
    return "k:" + orjson.dumps({merge_key: item.get(merge_key)}).decode()


def _fields_of(value: Mapping[str, Any], type_name: str, root: bool = False) -> Obj:
    fields = SCHEMA.get(type_name, {})
    out: Obj = {}
    for key, child in value.items():
        if child is None or key.startswith("$"):
            continue
        if root and key in _UNTRACKED_ROOT:
            continue
        if type_name == "ObjectMeta" and key in _UNTRACKED_META:
            continue
        meta = fields.get(key, FieldMeta())
        if isinstance(child, dict):
            sub = _fields_of(child, meta.type)
            if root and not sub and child:
                continue  # e.g. metadata with only name/namespace
            out["f:" + key] = sub
        elif isinstance(child, list) and meta.merges:
            elements: Obj = {}
            for item in child:
                if isinstance(item, dict) and meta.merge_key and meta.merge_key in item:
                    elements[_element_key(item, meta.merge_key)] = {".": {}, **_fields_of(item, meta.type)}
                elif not isinstance(item, dict | list):
                    elements["v:" + orjson.dumps(item).decode()] = {}
            out["f:" + key] = elements
        else:
            out["f:" + key] = {}
    return out


def fields_v1(obj: Mapping[str, Any], kind: str) -> Obj:
    """The ``FieldsV1`` set an applied configuration ``obj`` of ``kind`` manages."""
    return _fields_of(obj, root_type(kind), root=True)


def _leaves(tree: Mapping[str, Any], prefix: Path = ()) -> set[Path]:
    out: set[Path] = set()
    for key, child in tree.items():
        path = (*prefix, key)
        if isinstance(child, Mapping) and child:
            out |= _leaves(child, path)
        else:
            out.add(path)
    return out


def _tree(paths: Iterable[Path]) -> Obj:
    root: Obj = {}
    for path in sorted(paths):
        cur = root
        for part in path:
            cur = cur.setdefault(part, {})
    return root


def _step(container: Any, part: str) -> Any:
    """Follow one FieldsV1 path element in a live object; None if absent."""
    if part.startswith("f:") and isinstance(container, dict):
        return container.get(part[2:])
    if part.startswith("k:") and isinstance(container, list):
        wanted = orjson.loads(part[2:])
        for item in container:
            if isinstance(item, dict) and all(_json_equal(item.get(k), v) for k, v in wanted.items()):
                return item
        return None
    if part.startswith("v:") and isinstance(container, list):
        wanted = orjson.loads(part[2:])
        return next((v for v in container if _json_equal(v, wanted)), None)
    return None


def _lookup(obj: Any, path: Path) -> tuple[bool, Any]:
    cur = obj
    for part in path:
        if part == ".":
            break
        nxt = _step(cur, part)
        if nxt is None:
            return False, None
        cur = nxt
    return True, cur


def _remove_path(obj: Obj, path: Path) -> None:
    if path and path[-1] == ".":
        path = path[:-1]
    if not path:
        return
    found, parent = _lookup(obj, path[:-1])
    if not found:
        return
    last = path[-1]
    if last.startswith("f:") and isinstance(parent, dict):
        parent.pop(last[2:], None)
    elif last.startswith(("k:", "v:")) and isinstance(parent, list):
        target = _step(parent, last)
        if target is not None:
            for i, item in enumerate(parent):
                if item is target:
                    del parent[i]
                    break


def _render_path(path: Path) -> str:
    out = ""
    for part in path:
        if part == ".":
            continue
        if part.startswith("f:"):
            out += "." + part[2:]
        elif part.startswith("k:"):
            keys = orjson.loads(part[2:])
            out += "[" + ",".join(f"{k}={_json(v)}" for k, v in keys.items()) + "]"
        elif part.startswith("v:"):
            out += "[" + part[2:] + "]"
    return out


def _strip_directives_and_nulls(value: Obj, kind: str) -> Obj:
    return _merge_map({}, value, root_type(kind))


def apply_patch(
    target: Obj | None,
    applied: Obj,
    manager: str,
    force: bool,
    *,
    kind: str = "",
    now: datetime | None = None,
) -> Obj:
    """Server-side apply of configuration ``applied`` by ``manager`` onto ``target`` (None: create).

    Returns the new object with ``metadata.managedFields`` updated. Raises ``Conflict`` (409)
    when, without ``force``, the configuration would change a value another manager owns.
    ``now`` stamps the entry's ``time`` (omitted when not given).
    """
    if not isinstance(applied, dict):
        raise BadRequest("error decoding YAML: the applied configuration must be an object")
    kind = kind or str(applied.get("kind") or (target or {}).get("kind") or "")
    config = _clone(applied)
    config_meta = config.get("metadata")
    if isinstance(config_meta, dict):
        config_meta.pop("managedFields", None)
    new_fields = fields_v1(config, kind)
    new_leaves = _leaves(new_fields)
    api_version = str(applied.get("apiVersion") or (target or {}).get("apiVersion") or "")

    entry: Obj = {"manager": manager, "operation": "Apply", "apiVersion": api_version}
    if now is not None:
        entry["time"] = rfc3339(now)
    entry["fieldsType"] = "FieldsV1"
    entry["fieldsV1"] = new_fields

    if target is None:
        result = _strip_directives_and_nulls(config, kind)
        result.setdefault("metadata", {})["managedFields"] = [entry]
        return result

    existing = [dict(e) for e in ((target.get("metadata") or {}).get("managedFields") or []) if isinstance(e, dict)]
    mine_prev: set[Path] = set()
    others: list[tuple[Obj, set[Path]]] = []
    for e in existing:
        leaves = _leaves(e.get("fieldsV1") or {})
        if e.get("manager") == manager and e.get("operation") == "Apply" and not e.get("subresource"):
            mine_prev = leaves
        else:
            others.append((e, leaves))

    conflicts: list[tuple[str, str, Path]] = []
    for other, leaves in others:
        for path in sorted(new_leaves & leaves):
            if path[-1] == ".":
                continue
            had, live = _lookup(target, path)
            _, wanted = _lookup(config, path)
            if had and not _json_equal(live, wanted):
                conflicts.append((str(other.get("manager") or ""), str(other.get("apiVersion") or ""), path))
    if conflicts and not force:
        raise _conflict_error(conflicts)
    taken = {path for _, _, path in conflicts}

    result = strategic_merge_patch(target, config, kind)
    owned_by_others: set[Path] = set()
    for _, leaves in others:
        owned_by_others |= leaves - taken
    for path in sorted(mine_prev - new_leaves - owned_by_others, key=len, reverse=True):
        _remove_path(result, path)

    managed: list[Obj] = []
    for other, leaves in others:
        if taken & leaves:
            remaining = leaves - taken
            if not remaining:
                continue
            other = {**other, "fieldsV1": _tree(remaining)}
        managed.append(other)
    managed.append(entry)
    result.setdefault("metadata", {})["managedFields"] = managed
    return result


def _conflict_error(conflicts: list[tuple[str, str, Path]]) -> Conflict:
    count = len(conflicts)
    noun = "conflict" if count == 1 else "conflicts"
    causes = [
        {"reason": "FieldManagerConflict", "message": f'conflict with "{m}" using {v}', "field": _render_path(p)}
        for m, v, p in conflicts
    ]
    if count == 1:
        m, v, p = conflicts[0]
        message = f'Apply failed with 1 conflict: conflict with "{m}" using {v}: {_render_path(p)}'
    else:
        lines = "\n".join(f'- conflict with "{m}" using {v}: {_render_path(p)}' for m, v, p in conflicts)
        message = f"Apply failed with {count} {noun}:\n{lines}"
    return Conflict(message, {"causes": causes})
