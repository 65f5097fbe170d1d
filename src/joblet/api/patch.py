"""PATCH semantics: JSON merge patch, JSON patch, strategic merge patch and server-side apply.

kubectl's default ``kubectl apply``/``patch`` sends a *strategic* merge patch whose lists are
merged by key (containers by name, env by name, ...) and which carries directives
(``$setElementOrder``, ``$patch``, ``$retainKeys``, ``$deleteFromPrimitiveList``); a server that
treated it as a plain merge patch would wipe containers. So this module ports the relevant
parts of ``k8s.io/apimachinery/pkg/util/strategicpatch`` with a small schema table instead of
Go struct tags. Everything is dict in, dict out; inputs are never mutated.

Errors, as kube-apiserver (staging/src/k8s.io/apiserver/pkg/endpoints/handlers/patch.go):

* a JSON patch body that is not a list of operations → ``BadRequest`` (400);
* an operation that does not apply (``replace``/``remove`` of a missing path, failed ``test``,
  unknown op) → :class:`PatchError`, a 422 ``Invalid`` built like upstream's
  ``NewGenericServerResponse(422, ...)``: message ``the server rejected our request due to an
  error in our request`` and the json-patch library's message as the one cause
  (reason ``UnexpectedServerResponse``), which kubectl prints;
* malformed strategic-merge directives → ``BadRequest`` (upstream's
  ``interpretStrategicMergePatchError``).

Server-side apply (:func:`apply_patch`) is pragmatic, not structured-merge-diff:

* the applied configuration is merged over the live object with strategic-merge semantics;
* ``metadata.managedFields`` gets one ``Apply`` entry per manager with a real ``FieldsV1`` set
  (``f:``/``k:``/``v:``/``.`` keys as upstream) computed from the applied configuration;
* fields the same manager applied before but omits now are removed, unless another manager
  also owns them;
* conflicts are detected only against fields recorded in other managers' ``managedFields``
  entries (whatever operation), only for leaf values that would change; ``force=True`` takes
  ownership instead of failing. Defaulted fields nobody owns never conflict.
* no per-version conversion, no ``Update`` entries are written here (the registry may add them).

Server-side apply lives in :mod:`joblet.api.apply`.

One module (~540 lines): the three patch types share the schema table and the list-merge
helpers, and a port of one upstream package reads best beside it as one file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from joblet.errors import BadRequest, Invalid

Obj = dict[str, Any]

REJECTED_MESSAGE = "the server rejected our request due to an error in our request"
MAX_POINTER_TOKENS = 100

#: The four PATCH flavours (content types in :mod:`joblet.api.content`); clients re-export it.
PatchType = Literal["strategic", "merge", "json", "apply"]


class PatchError(Invalid):
    """A patch that does not apply to the object: HTTP 422, shaped like kube-apiserver's."""

    def __init__(self, detail: str) -> None:
        super().__init__(
            REJECTED_MESSAGE,
            {"causes": [{"reason": "UnexpectedServerResponse", "message": detail}]},
        )
        self.detail = detail


def _clone(value: Any) -> Any:
    """A private copy of a JSON value. orjson round-trips a whole pod several times faster
    than a recursive Python copy; a patch clones its target on every write."""
    if isinstance(value, dict | list):
        return orjson.loads(orjson.dumps(value))
    return value


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _json_equal(a: Any, b: Any) -> bool:
    """JSON equality (``True != 1``, ``1 == 1.0``)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and bool(a == b)


# ======================================================================================
# RFC 7386 JSON merge patch
# ======================================================================================


def _merge_into(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return _clone(patch)
    result = target if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_into(result.get(key), value)
    return result


def json_merge_patch(target: Obj | None, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, ``null`` deletes, anything else replaces."""
    return _merge_into(_clone(target) if target is not None else None, patch)


# ======================================================================================
# RFC 6902 JSON patch
# ======================================================================================


def _pointer(path: Any, op: str) -> list[str]:
    if not isinstance(path, str):
        raise PatchError(f"{op} operation missing path field") if path is None else PatchError(
            f"{op} operation has invalid path: {path!r}"
        )
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"{op} operation does not apply: invalid JSON pointer: {path!r}")
    tokens = [t.replace("~1", "/").replace("~0", "~") for t in path[1:].split("/")]
    if len(tokens) > MAX_POINTER_TOKENS:
        # Bodies nest at most 100 deep; pointers as long keep every patched object well
        # inside what the recursive copies and encoders can take.
        raise PatchError(f"{op} operation does not apply: path has more than {MAX_POINTER_TOKENS} segments")
    return tokens


def _index(token: str, size: int, allow_end: bool) -> int | None:
    if token == "-" and allow_end:
        return size
    if not (token.isascii() and token.isdigit()) or len(token) > 18 or (len(token) > 1 and token.startswith("0")):
        return None
    idx = int(token)
    limit = size if allow_end else size - 1
    return idx if idx <= limit else None


def _resolve_parent(doc: Any, tokens: list[str]) -> Any:
    """The container holding the last token, or None when the path is missing."""
    cur = doc
    for token in tokens[:-1]:
        if isinstance(cur, dict):
            if token not in cur:
                return None
            cur = cur[token]
        elif isinstance(cur, list):
            idx = _index(token, len(cur), allow_end=False)
            if idx is None:
                return None
            cur = cur[idx]
        else:
            return None
    return cur if isinstance(cur, dict | list) else None


def _get(doc: Any, tokens: list[str]) -> tuple[bool, Any]:
    if not tokens:
        return True, doc
    parent = _resolve_parent(doc, tokens)
    last = tokens[-1]
    if isinstance(parent, dict):
        return (True, parent[last]) if last in parent else (False, None)
    if isinstance(parent, list):
        idx = _index(last, len(parent), allow_end=False)
        return (True, parent[idx]) if idx is not None else (False, None)
    return False, None


def _add(doc: Any, tokens: list[str], value: Any, path: str) -> Any:
    if not tokens:
        return value
    parent = _resolve_parent(doc, tokens)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
        return doc
    if isinstance(parent, list):
        idx = _index(last, len(parent), allow_end=True)
        if idx is None:
            raise PatchError(f"add operation does not apply: doc is missing path: \"{path}\": invalid index referenced")
        parent.insert(idx, value)
        return doc
    raise PatchError(f'add operation does not apply: doc is missing path: "{path}": missing value')


def _remove(doc: Any, tokens: list[str], path: str, op: str = "remove") -> Any:
    if not tokens:
        raise PatchError(f'{op} operation does not apply: doc is missing path: "{path}": missing value')
    parent = _resolve_parent(doc, tokens)
    last = tokens[-1]
    if isinstance(parent, dict) and last in parent:
        return parent.pop(last)
    if isinstance(parent, list):
        idx = _index(last, len(parent), allow_end=False)
        if idx is not None:
            return parent.pop(idx)
    if isinstance(parent, dict):
        raise PatchError(
            f"error in remove for path: '{path}': Unable to remove nonexistent key: {last}: missing value"
        )
    raise PatchError(f'{op} operation does not apply: doc is missing path: "{path}": missing value')


def json_patch(target: Obj, ops: Any) -> Any:
    """Apply an RFC 6902 operation list to a copy of ``target``."""
    if not isinstance(ops, list):
        raise BadRequest("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    doc: Any = _clone(target)
    for raw in ops:
        if not isinstance(raw, dict):
            raise BadRequest("json: cannot unmarshal value into Go value of type jsonpatch.Operation")
        op = raw.get("op")
        path = raw.get("path")
        if op == "add":
            if "value" not in raw:
                raise PatchError("add operation missing value")
            doc = _add(doc, _pointer(path, op), _clone(raw["value"]), str(path))
        elif op == "remove":
            _remove(doc, _pointer(path, op), str(path))
        elif op == "replace":
            tokens = _pointer(path, op)
            if "value" not in raw:
                raise PatchError("replace operation missing value")
            found, _ = _get(doc, tokens)
            if not found:
                raise PatchError(f"replace operation does not apply: doc is missing key: {path}: missing value")
            if not tokens:
                doc = _clone(raw["value"])
            else:
                parent = _resolve_parent(doc, tokens)
                if isinstance(parent, dict):
                    parent[tokens[-1]] = _clone(raw["value"])
                else:
                    parent[int(tokens[-1])] = _clone(raw["value"])
        elif op in ("move", "copy"):
            source = raw.get("from")
            from_tokens = _pointer(source, op)
            to_tokens = _pointer(path, op)
            found, value = _get(doc, from_tokens)
            if not found:
                raise PatchError(f"{op} operation does not apply: doc is missing from path: {source}: missing value")
            if op == "move":
                if to_tokens[: len(from_tokens)] == from_tokens and to_tokens != from_tokens:
                    raise PatchError(f"move operation does not apply: cannot move {source} into its child {path}")
                _remove(doc, from_tokens, str(source), op)
            else:
                value = _clone(value)
            doc = _add(doc, to_tokens, value, str(path))
        elif op == "test":
            tokens = _pointer(path, op)
            found, value = _get(doc, tokens)
            if not found or not _json_equal(value, raw.get("value")):
                raise PatchError(f"testing value {path} failed: test failed")
        else:
            raise PatchError(f"Unexpected kind: {op}")
    return doc


# ======================================================================================
# Strategic merge patch
# ======================================================================================


@dataclass(frozen=True)
class FieldMeta:
    """What the Go struct tags say about one field: element/value type, merge key, strategy."""

    type: str = ""
    merge_key: str = ""
    strategy: str = ""  # "" (replace lists / merge maps), "merge", "merge,retainKeys", "retainKeys"

    @property
    def merges(self) -> bool:
        return "merge" in self.strategy.split(",")


def _f(type_: str = "", merge_key: str = "", strategy: str = "") -> FieldMeta:
    return FieldMeta(type_, merge_key, strategy)


_META = _f("ObjectMeta")
_MERGE_BY_NAME = "merge"

# type name → field → meta. Lists not listed here (or without "merge") are replaced whole.
SCHEMA: dict[str, dict[str, FieldMeta]] = {
    "Object": {"metadata": _META},
    "Pod": {"metadata": _META, "spec": _f("PodSpec"), "status": _f("PodStatus")},
    "PodTemplate": {"metadata": _META, "template": _f("PodTemplateSpec")},
    "Job": {"metadata": _META, "spec": _f("JobSpec"), "status": _f("JobStatus")},
    "CronJob": {"metadata": _META, "spec": _f("CronJobSpec"), "status": _f("CronJobStatus")},
    "Node": {"metadata": _META, "spec": _f("NodeSpec"), "status": _f("NodeStatus")},
    "Namespace": {"metadata": _META, "spec": _f("NamespaceSpec"), "status": _f("NamespaceStatus")},
    "ServiceAccount": {
        "metadata": _META,
        "secrets": _f("ObjectReference", "name", "merge"),
        "imagePullSecrets": _f("LocalObjectReference"),
    },
    "ObjectMeta": {
        "finalizers": _f(strategy="merge"),
        "ownerReferences": _f("OwnerReference", "uid", "merge"),
    },
    "PodTemplateSpec": {"metadata": _META, "spec": _f("PodSpec")},
    "JobTemplateSpec": {"metadata": _META, "spec": _f("JobSpec")},
    "JobSpec": {"template": _f("PodTemplateSpec"), "selector": _f("LabelSelector")},
    "CronJobSpec": {"jobTemplate": _f("JobTemplateSpec")},
    "PodSpec": {
        "volumes": _f("Volume", "name", "merge,retainKeys"),
        "initContainers": _f("Container", "name", "merge"),
        "containers": _f("Container", "name", "merge"),
        "ephemeralContainers": _f("Container", "name", "merge"),
        "imagePullSecrets": _f("LocalObjectReference", "name", "merge"),
        "hostAliases": _f("HostAlias", "ip", "merge"),
        "topologySpreadConstraints": _f("TopologySpreadConstraint", "topologyKey", "merge"),
        "resourceClaims": _f("PodResourceClaim", "name", "merge,retainKeys"),
        "schedulingGates": _f("PodSchedulingGate", "name", "merge"),
        "tolerations": _f("Toleration"),  # atomic
        "readinessGates": _f("PodReadinessGate"),  # atomic
    },
    "Container": {
        "ports": _f("ContainerPort", "containerPort", "merge"),
        "env": _f("EnvVar", "name", "merge"),
        "volumeMounts": _f("VolumeMount", "mountPath", "merge"),
        "volumeDevices": _f("VolumeDevice", "devicePath", "merge"),
    },
    "PodStatus": {
        "conditions": _f("PodCondition", "type", "merge"),
        "podIPs": _f("PodIP", "ip", "merge"),
        "hostIPs": _f("HostIP", "ip", "merge"),
        "resourceClaimStatuses": _f("PodResourceClaimStatus", "name", "merge,retainKeys"),
    },
    "JobStatus": {"conditions": _f("JobCondition", "type", "merge")},
    "CronJobStatus": {},  # active: atomic
    "NodeSpec": {"podCIDRs": _f(strategy="merge")},
    "NodeStatus": {
        "conditions": _f("NodeCondition", "type", "merge"),
        "addresses": _f("NodeAddress", "type", "merge"),
    },
}

_ROOT_TYPES = {"Pod", "PodTemplate", "Job", "CronJob", "Node", "Namespace", "ServiceAccount"}


def root_type(kind: str) -> str:
    return kind if kind in _ROOT_TYPES else "Object"


_PATCH = "$patch"
_RETAIN_KEYS = "$retainKeys"
_SET_ORDER = "$setElementOrder/"
_DELETE_PRIMITIVES = "$deleteFromPrimitiveList/"


def _item_id(item: Any, merge_key: str) -> str:
    if merge_key and isinstance(item, dict):
        return "k" + _json(item.get(merge_key))
    return "v" + _json(item)


def _merge_sorted(left: list[Any], right: list[Any], server_order: list[Any], merge_key: str) -> list[Any]:
    """strategicpatch.mergeSortedSlice: interleave server-only items (left) into patch items."""
    positions = {_item_id(x, merge_key): i for i, x in enumerate(server_order)}
    out: list[Any] = []
    i = j = 0
    while i < len(left) or j < len(right):
        if i >= len(left):
            out.append(right[j])
            j += 1
        elif j >= len(right):
            out.append(left[i])
            i += 1
        else:
            li = positions.get(_item_id(left[i], merge_key))
            ri = positions.get(_item_id(right[j], merge_key))
            if li is not None and ri is not None and li < ri:
                out.append(left[i])
                i += 1
            else:
                out.append(right[j])
                j += 1
    return out


def _normalize_order(merged: list[Any], order: list[Any], original: list[Any], merge_key: str) -> list[Any]:
    """strategicpatch.normalizeElementOrder: items named in ``order`` follow it, the rest keep
    their original relative order, interleaved by their original positions."""
    order_pos = {_item_id(x, merge_key): i for i, x in enumerate(order)}
    original_pos = {_item_id(x, merge_key): i for i, x in enumerate(original)}
    patch_items = [m for m in merged if _item_id(m, merge_key) in order_pos]
    server_only = [m for m in merged if _item_id(m, merge_key) not in order_pos]
    patch_items.sort(key=lambda m: order_pos[_item_id(m, merge_key)])
    server_only.sort(key=lambda m: original_pos.get(_item_id(m, merge_key), len(original_pos)))
    return _merge_sorted(server_only, patch_items, original, merge_key)


def _clean(value: Any, type_name: str) -> Any:
    """A new value from a patch: nulls and directives stripped (merging into nothing)."""
    if isinstance(value, dict):
        return _merge_map({}, value, type_name)
    if isinstance(value, list):
        return [_clean(v, type_name) for v in value]
    return value


def _merge_list(original: list[Any], patch: list[Any], meta: FieldMeta, field: str) -> list[Any]:
    if not meta.merges:
        return [_clean(v, meta.type) for v in patch]
    if not original and not patch:
        return []
    if not any(isinstance(v, dict) for v in [*original, *patch]):
        merged: list[Any] = []
        seen: set[str] = set()
        for item in [*original, *patch]:
            ident = _item_id(item, "")
            if ident not in seen:
                seen.add(ident)
                merged.append(item)
        return _normalize_order(merged, patch, original, "")
    key = meta.merge_key
    if not key:
        return [_clean(v, meta.type) for v in patch]
    # special elements: {"$patch": "replace"} replaces the list, {"$patch": "delete", key: v} deletes
    if any(isinstance(v, dict) and v.get(_PATCH) == "replace" for v in patch):
        return [_clean(v, meta.type) for v in patch if not (isinstance(v, dict) and _PATCH in v)]
    deleted: set[str] = set()
    items: list[dict[str, Any]] = []
    for v in patch:
        if not isinstance(v, dict):
            raise BadRequest(f"unable to find api field in struct {meta.type or field} for the json field {field!r}")
        directive = v.get(_PATCH)
        if directive == "delete":
            if key not in v:
                raise BadRequest(f"map: {v} does not contain declared merge key: {key}")
            deleted.add(_item_id(v, key))
            continue
        if directive not in (None, "merge"):
            raise BadRequest(f"Unknown patch type: {directive} in map: {v}")
        if key not in v:
            raise BadRequest(f"map: {v} does not contain declared merge key: {key}")
        items.append({k: x for k, x in v.items() if k != _PATCH})
    result = [o for o in original if _item_id(o, key) not in deleted]
    index = {_item_id(o, key): i for i, o in enumerate(result)}
    for item in items:
        ident = _item_id(item, key)
        if ident in index:
            current = result[index[ident]]
            result[index[ident]] = _merge_map(current if isinstance(current, dict) else {}, item, meta.type)
        else:
            index[ident] = len(result)
            result.append(_merge_map({}, item, meta.type))
    return _normalize_order(result, items, original, key)


def _merge_map(original: Obj, patch: Mapping[str, Any], type_name: str) -> Obj:
    """strategicpatch.mergeMap over a private ``original`` (mutated and returned)."""
    patch = dict(patch)
    directive = patch.pop(_PATCH, None)
    if directive == "replace":
        return _merge_map({}, patch, type_name)
    if directive == "delete":
        return {}
    if directive not in (None, "merge"):
        raise BadRequest(f"Unknown patch type: {directive} in map: {patch}")
    fields = SCHEMA.get(type_name, {})

    if _RETAIN_KEYS in patch:
        retain = patch.pop(_RETAIN_KEYS)
        if not isinstance(retain, list):
            raise BadRequest("invalid patch format of retainKeys")
        keep = set(retain)
        for key, value in patch.items():
            if value is None or key.startswith((_SET_ORDER, _DELETE_PRIMITIVES)):
                continue
            if key not in keep:
                raise BadRequest("invalid patch format of retainKeys")
        for key in list(original):
            if key not in keep:
                del original[key]

    for order_key in [k for k in patch if k.startswith(_SET_ORDER)]:
        order = patch.pop(order_key)
        name = order_key[len(_SET_ORDER):]
        if not isinstance(order, list):
            raise BadRequest("invalid patch format of setElementOrder list")
        meta = fields.get(name, FieldMeta())
        current = original.get(name)
        current_list = current if isinstance(current, list) else None
        patch_list = patch.pop(name, None)
        if current_list is None and patch_list is None:
            continue
        if patch_list is not None and not isinstance(patch_list, list):
            raise BadRequest(f"invalid patch format of setElementOrder list for {name}")
        if patch_list is None:
            merged = list(current_list or [])
        else:
            merged = _merge_list(current_list or [], patch_list, meta, name)
        original[name] = _normalize_order(merged, order, current_list or [], meta.merge_key if meta.merges else "")

    for delete_key in [k for k in patch if k.startswith(_DELETE_PRIMITIVES)]:
        values = patch.pop(delete_key)
        name = delete_key[len(_DELETE_PRIMITIVES):]
        if not isinstance(values, list):
            raise BadRequest("invalid patch format of primitive list")
        current = original.get(name)
        if isinstance(current, list):
            doomed = {_item_id(v, "") for v in values}
            original[name] = [v for v in current if _item_id(v, "") not in doomed]

    for key, value in patch.items():
        if key.startswith("$"):
            continue  # unknown directive: ignore rather than store it in the object
        if value is None:
            original.pop(key, None)
            continue
        meta = fields.get(key, FieldMeta())
        current = original.get(key)
        if isinstance(value, dict):
            if key not in original and value.get(_PATCH) == "delete":
                continue
            base = current if isinstance(current, dict) and meta.strategy != "replace" else {}
            original[key] = _merge_map(base, value, meta.type)
        elif isinstance(value, list):
            base_list = current if isinstance(current, list) else []
            original[key] = _merge_list(base_list, value, meta, key)
        else:
            original[key] = value
    return original


def strategic_merge_patch(target: Obj | None, patch: Any, kind: str) -> Obj:
    """Kubernetes strategic merge patch of ``target`` (an object of ``kind``) with ``patch``."""
    if not isinstance(patch, dict):
        raise BadRequest("json: cannot unmarshal array into Go value of type map[string]interface {}")
    return _merge_map(_clone(target) if target else {}, patch, root_type(kind))
