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
