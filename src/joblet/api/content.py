"""Request body decoding and response content negotiation for the Kubernetes HTTP API.

Why a module of its own: clients disagree about media types (kubectl sends no Content-Type
for some JSON bodies, server-side apply sends JSON as ``apply-patch+yaml``, kubectl ≥1.27
imperative creates send protobuf, ``kubectl get`` asks for ``as=Table``). Every such rule
lives here as a pure function of header strings and bytes, so the server stays a thin
translation and the rules are table-tested.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
import yaml

from joblet.api.patch import PatchType
from joblet.api.protobuf import decode_protobuf_object
from joblet.clock import canonicalize_json_patch_times, canonicalize_times
from joblet.errors import BadRequest, RequestEntityTooLarge, UnsupportedMediaType

MAX_BODY_BYTES = 3 * 1024 * 1024
PROTOBUF = "application/vnd.kubernetes.protobuf"
JSON = "application/json"

PATCH_TYPES: dict[str, PatchType] = {
    "application/strategic-merge-patch+json": "strategic",
    "application/merge-patch+json": "merge",
    "application/json-patch+json": "json",
    "application/apply-patch+yaml": "apply",
}
BODY_TYPES = ("application/json", "application/yaml", PROTOBUF)


def media_type(content_type: str | None) -> str:
    """``application/json; charset=utf-8`` → ``application/json``; missing → JSON (kubectl 1.20, Py)."""
    if not content_type:
        return JSON
    return content_type.split(";", 1)[0].strip().lower() or JSON


def check_size(length: int) -> None:
    if length > MAX_BODY_BYTES:
        raise RequestEntityTooLarge(f"Request entity too large: limit is {MAX_BODY_BYTES}")


def _parse(body: bytes, as_yaml: bool) -> Any:
    if as_yaml:
        try:
            return yaml.safe_load(body.decode("utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise BadRequest(f"error converting YAML to JSON: {exc}") from None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"json parse error: {exc}") from None


def decode_object(body: bytes, content_type: str | None) -> dict[str, Any]:
    """The object of a POST/PUT body (JSON, YAML or Kubernetes protobuf); not an object → 400."""
    check_size(len(body))
    mt = media_type(content_type)
    if mt == PROTOBUF:
        if not body:
            raise BadRequest("the request body is empty: an object is required")
        return decode_protobuf_object(body)
    if mt not in ("application/json", "application/yaml", "text/yaml", "application/x-yaml", "*/*", "text/plain"):
        raise UnsupportedMediaType(
            "the body of the request was in an unknown format - accepted media types include: "
            + ", ".join(BODY_TYPES)
        )
    if not body.strip():
        raise BadRequest("the request body is empty: an object is required")
    value = _parse(body, as_yaml=mt != "application/json")
    if not isinstance(value, dict):
        raise BadRequest("the body of the request must be a JSON object")
    canonicalize_times(value)
    return value


def decode_optional_object(body: bytes, content_type: str | None) -> dict[str, Any] | None:
    """A body that may be absent (DELETE options, eviction)."""
    if not body.strip():
        return None
    return decode_object(body, content_type)


def decode_patch(body: bytes, content_type: str | None) -> tuple[Any, PatchType]:
    """A PATCH body and its patch type, from the four Kubernetes patch media types."""
    check_size(len(body))
    mt = media_type(content_type)
    patch_type = PATCH_TYPES.get(mt)
    if patch_type is None:
        raise UnsupportedMediaType(
            f'the body of the request was in an unknown format - accepted media types include: {", ".join(PATCH_TYPES)}'
        )
    if not body.strip():
        raise BadRequest("the request body is empty: a patch is required")
    value = _parse(body, as_yaml=patch_type == "apply")
    if patch_type == "json" and not isinstance(value, list):
        raise BadRequest("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    if patch_type != "json" and not isinstance(value, dict):
        raise BadRequest("the body of the request must be a JSON object")
    if isinstance(value, list):
        canonicalize_json_patch_times(value)
    else:
        canonicalize_times(value)
    return value, patch_type


@dataclass(frozen=True)
class Accept:
    """What the client asked the response to be."""

    table: bool = False


def parse_accept(accept: str | None) -> Accept:
    """``application/json;as=Table;v=v1;g=meta.k8s.io,...`` → Table; anything else → JSON.

    Protobuf in Accept is answered with JSON (kubectl accepts that), as is ``*/*``.
    """
    if not accept:
        return Accept()
    for part in accept.split(","):
        params = [p.strip() for p in part.split(";")]
        if params[0].lower() not in ("application/json", "*/*"):
            continue
        kv = dict(p.split("=", 1) for p in params[1:] if "=" in p)
        if kv.get("as") == "Table" and kv.get("g") == "meta.k8s.io":
            return Accept(table=True)
        if "as" not in kv:
            return Accept()
    return Accept()


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)
