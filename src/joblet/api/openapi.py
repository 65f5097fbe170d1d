"""OpenAPI documents (v2 placeholder, v3 per group-version) and unknown-field detection.

Why: kubectl ≥1.27 fetches ``/openapi/v3`` to decide whether the server validates fields
(then it sends ``fieldValidation=Strict`` and skips client-side validation) and to power
``kubectl explain``. ``/openapi/v2`` must answer 200 with an empty protobuf document so
older validation paths pass. The component schemas are generated once from the official
``kubernetes`` client models by ``scripts/gen_openapi_schemas.py`` into
``openapi_schemas.json``; the same schemas tell which fields of a request body are unknown.
"""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import resources as importlib_resources
from typing import Any

import orjson

from joblet.api.discovery import group_versions
from joblet.api.resources import Resource
from joblet.clock import parse_time_or_none
from joblet.errors import BadRequest, Cause

Schemas = dict[str, Any]
REF_PREFIX = "#/components/schemas/"
STATUS_SCHEMA = "io.k8s.apimachinery.pkg.apis.meta.v1.Status"
DELETE_OPTIONS_SCHEMA = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"
PATCH_MEDIA_TYPES = (
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)


@cache
def schemas() -> Schemas:
    """All component schemas, keyed ``io.k8s.api.batch.v1.Job`` etc."""
    text = importlib_resources.files("joblet.api").joinpath("openapi_schemas.json").read_bytes()
    loaded: Schemas = orjson.loads(text)
    return loaded


@cache
def _by_gvk() -> dict[tuple[str, str], str]:
    """(apiVersion, kind) → schema name."""
    out: dict[tuple[str, str], str] = {}
    for name, schema in schemas().items():
        for gvk in schema.get("x-kubernetes-group-version-kind", []):
            api_version = f"{gvk['group']}/{gvk['version']}" if gvk["group"] else gvk["version"]
            out[(api_version, gvk["kind"])] = name
    return out


def schema_name_for(api_version: str, kind: str) -> str | None:
    return _by_gvk().get((api_version, kind))


def _ref_of(prop: dict[str, Any]) -> str | None:
    if "$ref" in prop:
        return str(prop["$ref"])[len(REF_PREFIX):]
    for sub in prop.get("allOf", []):
        if "$ref" in sub:
            return str(sub["$ref"])[len(REF_PREFIX):]
    return None


def _reachable(roots: list[str]) -> list[str]:
    seen: set[str] = set()
    stack = list(roots)
    all_schemas = schemas()
    while stack:
        name = stack.pop()
        if name in seen or name not in all_schemas:
            continue
        seen.add(name)

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                ref = node.get("$ref")
                if isinstance(ref, str):
                    stack.append(ref[len(REF_PREFIX):])
                for value in node.values():
                    walk(value)
            elif isinstance(node, list):
                for value in node:
                    walk(value)

        walk(all_schemas[name])
    return sorted(seen)


def openapi_v2() -> bytes:
    """An empty protobuf ``Document``: valid, and it makes kubectl skip client-side validation."""
    return b""


def _doc_path(group_version: str) -> str:
    return f"api/{group_version}" if "/" not in group_version else f"apis/{group_version}"


@cache
def openapi_v3_document_bytes(group_version: str) -> bytes:
    """The serialised v3 document (static for a process, so computed once)."""
    return orjson.dumps(openapi_v3_document(group_version))


@cache
def openapi_v3_index_bytes() -> bytes:
    return orjson.dumps(openapi_v3_index())


def openapi_v3_index() -> dict[str, Any]:
    paths = {}
    for gv in group_versions():
        doc_hash = hashlib.sha256(openapi_v3_document_bytes(gv)).hexdigest()[:32].upper()
        paths[_doc_path(gv)] = {"serverRelativeURL": f"/openapi/v3/{_doc_path(gv)}?hash={doc_hash}"}
    return {"paths": paths}


def _param(name: str, where: str, description: str, schema_type: str = "string") -> dict[str, Any]:
    return {"name": name, "in": where, "description": description, "schema": {"type": schema_type,
                                                                                "uniqueItems": True}}


_FIELD_VALIDATION = _param(
    "fieldValidation", "query",
    "fieldValidation instructs the server on how to handle objects in the request containing unknown or "
    "duplicate fields. Valid values are: Ignore, Warn (default), Strict.",
)
_DRY_RUN = _param("dryRun", "query", "When present, indicates that modifications should not be persisted.")
_FIELD_MANAGER = _param("fieldManager", "query", "fieldManager is a name associated with the actor making changes.")


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": REF_PREFIX + name}


def _json_response(schema: str) -> dict[str, Any]:
    return {"description": "OK", "content": {"application/json": {"schema": _ref(schema)}}}


def _operations(r: Resource, item: bool) -> dict[str, Any]:
    gvk = {"group": r.group, "version": r.version, "kind": r.kind}
    obj_schema = schema_name_for(r.api_version, r.kind) or STATUS_SCHEMA
    list_schema = schema_name_for(r.api_version, r.list_kind) or STATUS_SCHEMA
    kind = r.kind

    def op(action: str, verb_desc: str, response: str, **extra: Any) -> dict[str, Any]:
        return {
            "description": f"{verb_desc} {kind}",
            "operationId": f"{action}{kind}",
            "responses": {"200": _json_response(response), "401": {"description": "Unauthorized"}},
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": gvk,
            **extra,
        }

    body = {"content": {"*/*": {"schema": _ref(obj_schema)}}, "required": True}
    if item:
        return {
            "get": op("get", "read the specified", obj_schema),
            "put": op("put", "replace the specified", obj_schema, requestBody=body,
                      parameters=[_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION]),
            "patch": op("patch", "partially update the specified", obj_schema,
                        requestBody={"content": {mt: {"schema": {"type": "object"}} for mt in PATCH_MEDIA_TYPES},
                                     "required": True},
                        parameters=[_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION,
                                    _param("force", "query", "Force is going to force Apply requests.", "boolean")]),
            "delete": op("delete", "delete", STATUS_SCHEMA, parameters=[_DRY_RUN]),
        }
    return {
        "get": op("list", "list or watch objects of kind", list_schema),
        "post": op("post", "create", obj_schema, requestBody=body,
                   parameters=[_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION]),
        "delete": op("deletecollection", "delete collection of", STATUS_SCHEMA),
    }


def openapi_v3_document(group_version: str) -> dict[str, Any]:
    resources = group_versions().get(group_version, [])
    paths: dict[str, Any] = {}
    roots = [STATUS_SCHEMA, DELETE_OPTIONS_SCHEMA]
    ns_param = _param("namespace", "path", "object name and auth scope, such as for teams and projects")
    name_param = _param("name", "path", "name of the object")
    for r in resources:
        for kind in (r.kind, r.list_kind):
            name = schema_name_for(r.api_version, kind)
            if name:
                roots.append(name)
        prefix = f"/{_doc_path(group_version)}"
        base = f"{prefix}/namespaces/{{namespace}}/{r.plural}" if r.namespaced else f"{prefix}/{r.plural}"
        coll_params = [ns_param] if r.namespaced else []
        if not r.stored:  # create-only (the reviews)
            paths[base] = {"post": _operations(r, item=False)["post"], "parameters": coll_params}
            continue
        paths[base] = {**_operations(r, item=False), "parameters": coll_params}
        paths[f"{base}/{{name}}"] = {**_operations(r, item=True), "parameters": [*coll_params, name_param]}
        if "status" in r.subresources:
            paths[f"{base}/{{name}}/status"] = {**_operations(r, item=True),
                                                 "parameters": [*coll_params, name_param]}
    all_schemas = schemas()
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "unversioned"},
        "paths": paths,
        "components": {"schemas": {name: all_schemas[name] for name in _reachable(roots)}},
    }


# --- unknown fields ----------------------------------------------------------------------------

def _is_directive(key: str) -> bool:
    """Strategic-merge-patch directives are not fields."""
    return key.startswith("$")


def _prune(node: Any, schema: dict[str, Any], path: str, unknown: list[str]) -> Any:
    all_schemas = schemas()
    ref = _ref_of(schema)
    if ref is not None:
        schema = all_schemas.get(ref, {})
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return node
    if isinstance(node, dict):
        props = schema.get("properties")
        additional = schema.get("additionalProperties")
        if props is None:
            if isinstance(additional, dict):
                return {k: _prune(v, additional, f"{path}.{k}" if path else k, unknown) for k, v in node.items()}
            return node
        out: dict[str, Any] = {}
        for key, value in node.items():
            child_path = f"{path}.{key}" if path else key
            if _is_directive(key):
                out[key] = value
            elif key in props:
                out[key] = _prune(value, props[key], child_path, unknown)
            else:
                unknown.append(child_path)
        return out
    if isinstance(node, list) and isinstance(schema.get("items"), dict):
        return [_prune(v, schema["items"], f"{path}[{i}]", unknown) for i, v in enumerate(node)]
    return node


def prune_unknown_fields(api_version: str, kind: str, obj: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A copy of ``obj`` without the fields its schema does not know, and their paths.

    Paths read like Kubernetes' ``strict decoding error``: ``spec.foo``,
    ``spec.template.spec.containers[0].imagee``. Kinds without a schema are returned as is.
    """
    name = schema_name_for(api_version, kind)
    if name is None:
        return obj, []
    unknown: list[str] = []
    pruned = _prune(obj, {"$ref": REF_PREFIX + name}, "", unknown)
    return pruned, unknown


def find_unknown_fields(kind: str, obj: dict[str, Any], api_version: str | None = None) -> list[str]:
    """Paths of the fields of ``obj`` unknown to the schema of ``kind`` (apiVersion from obj when omitted)."""
    av = api_version or str(obj.get("apiVersion") or "")
    return prune_unknown_fields(av, kind, obj)[1]


# --- types and ranges (typed decoding) -----------------------------------------------------------

_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return f"number {value}"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _base64_error(value: str) -> str | None:
    """Go's ``base64.StdEncoding`` verdict (it ignores CR and LF), or None when valid."""
    text = value.replace("\r", "").replace("\n", "")
    for i, ch in enumerate(text):
        if not (ch.isascii() and (ch.isalnum() or ch in "+/=")):
            return f"illegal base64 data at input byte {i}"
    if len(text) % 4:
        return f"illegal base64 data at input byte {len(text) - len(text) % 4}"
    stripped = text.rstrip("=")
    if "=" in stripped or len(text) - len(stripped) > 2:
        return f"illegal base64 data at input byte {stripped.find('=') if '=' in stripped else len(stripped)}"
    return None


def _scalar_error(value: Any, schema: dict[str, Any]) -> str | None:
    """Why ``value`` cannot be decoded into a field of ``schema`` (None: it can)."""
    kind, fmt = schema.get("type"), schema.get("format")
    if kind == "integer":
        want = fmt or "int64"
        lo, hi = _INT_RANGES.get(want, _INT_RANGES["int64"])
        if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
            return f"cannot unmarshal {_json_kind(value)} into a field of type {want}"
    elif kind == "number":
        if not isinstance(value, int | float) or isinstance(value, bool):
            return f"cannot unmarshal {_json_kind(value)} into a field of type float64"
    elif kind == "boolean":
        if not isinstance(value, bool):
            return f"cannot unmarshal {_json_kind(value)} into a field of type bool"
    elif kind == "string":
        if fmt == "quantity":
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                return f"cannot unmarshal {_json_kind(value)} into a field of type resource.Quantity"
        elif not isinstance(value, str):
            return f"cannot unmarshal {_json_kind(value)} into a field of type string"
        elif fmt == "byte":
            return _base64_error(value)
        elif fmt == "date-time" and value and parse_time_or_none(value) is None:
            return f'parsing time "{value}" as RFC 3339: cannot parse'
    elif kind == "object" and not isinstance(value, dict):
        return f"cannot unmarshal {_json_kind(value)} into a field of type object"
    elif kind == "array" and not isinstance(value, list):
        return f"cannot unmarshal {_json_kind(value)} into a field of type array"
    return None


def type_errors(api_version: str, kind: str, obj: dict[str, Any]) -> list[Cause]:
    """Fields of ``obj`` whose JSON type or range does not fit the schema, as typed decoding
    into Go structs reports them: strings for integers, floats for integers, int32/int64
    overflow, non-booleans, invalid base64 for ``format: byte``, unparsable timestamps.
    ``null`` fits every field (it decodes to the zero value). Unknown fields are not looked at
    (:func:`prune_unknown_fields` reports them). Iterative: bodies are depth-limited, but
    stored objects built by patches need not be."""
    name = schema_name_for(api_version, kind)
    if name is None:
        return []
    return _walk_types(obj, {"$ref": REF_PREFIX + name})


def _walk_types(obj: Any, root: dict[str, Any]) -> list[Cause]:
    all_schemas = schemas()
    errors: list[Cause] = []
    stack: list[tuple[Any, dict[str, Any], str]] = [(obj, root, "")]
    while stack:
        node, schema, path = stack.pop()
        ref = _ref_of(schema)
        if ref is not None:
            schema = all_schemas.get(ref, {})
        if node is None or schema.get("x-kubernetes-preserve-unknown-fields"):
            continue
        problem = _scalar_error(node, schema)
        if problem is not None:
            errors.append(Cause(path, problem, "FieldValueTypeInvalid"))
            continue
        if isinstance(node, dict):
            props = schema.get("properties")
            if props is not None:
                for key, value in node.items():
                    child = props.get(key)
                    if child is not None and value is not None:
                        stack.append((value, child, f"{path}.{key}" if path else key))
            elif isinstance(schema.get("additionalProperties"), dict):
                child = schema["additionalProperties"]
                for key, value in node.items():
                    if value is not None:
                        stack.append((value, child, f"{path}[{key}]"))
        elif isinstance(node, list) and isinstance(schema.get("items"), dict):
            child = schema["items"]
            for i, value in enumerate(node):
                stack.append((value, child, f"{path}[{i}]"))
    errors.sort(key=lambda c: c.field)
    return errors


def check_types(api_version: str, kind: str, obj: dict[str, Any]) -> None:
    """Raise the 400 kube-apiserver answers when a body does not decode into its type."""
    errors = type_errors(api_version, kind, obj)
    if errors:
        _raise_type_errors(api_version, kind, errors)


def _raise_type_errors(api_version: str, kind: str, errors: list[Cause]) -> None:
    if errors:
        version = api_version.rsplit("/", 1)[-1]
        raise BadRequest(f'{kind} in version "{version}" cannot be handled as a {kind}: '
                         + "; ".join(c.render() for c in errors[:10]),
                         {"kind": kind, "causes": [c.to_dict() for c in errors[:100]]})


def _schema_at(schema: dict[str, Any], pointer: str) -> dict[str, Any] | None:
    """The schema of the field a JSON pointer names (None: unknown or free-form)."""
    all_schemas = schemas()
    for raw in pointer.split("/")[1:]:
        segment = raw.replace("~1", "/").replace("~0", "~")
        ref = _ref_of(schema)
        if ref is not None:
            schema = all_schemas.get(ref, {})
        if schema.get("x-kubernetes-preserve-unknown-fields"):
            return None
        if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
            schema = schema["items"]
        elif isinstance(schema.get("properties"), dict):
            nxt = schema["properties"].get(segment)
            if nxt is None:
                return None
            schema = nxt
        elif isinstance(schema.get("additionalProperties"), dict):
            schema = schema["additionalProperties"]
        else:
            return None
    return schema


def check_json_patch_types(api_version: str, kind: str, ops: list[Any]) -> None:
    """:func:`check_types` for the values of ``add``/``replace``/``test`` operations."""
    name = schema_name_for(api_version, kind)
    if name is None:
        return
    errors: list[Cause] = []
    for op in ops:
        if not isinstance(op, dict) or op.get("op") not in ("add", "replace") or op.get("value") is None:
            continue
        path = op.get("path")
        schema = _schema_at({"$ref": REF_PREFIX + name}, path) if isinstance(path, str) else None
        if schema is None:
            continue
        probe = {"x": op["value"]}
        errors.extend(Cause(str(path) + c.field[1:], c.message, c.reason)
                      for c in _walk_types(probe, {"properties": {"x": schema}}))
    if errors:
        _raise_type_errors(api_version, kind, errors)


def check_schema_types(schema_name: str, kind: str, obj: dict[str, Any]) -> None:
    """:func:`check_types` for a body typed by schema name (options such as DeleteOptions)."""
    errors = _walk_types(obj, {"$ref": REF_PREFIX + schema_name})
    if errors:
        _raise_type_errors("v1", kind, errors)
