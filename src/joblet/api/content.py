"""Request body decoding and response content negotiation for the Kubernetes HTTP API.

Why a module of its own: clients disagree about media types (kubectl sends no Content-Type
for some JSON bodies, server-side apply sends JSON as ``apply-patch+yaml``, kubectl ≥1.27
imperative creates send protobuf, ``kubectl get`` asks for ``as=Table``). Every such rule
lives here as a pure function of header strings and bytes, so the server stays a thin
translation and the rules are table-tested.

Hostile bodies: a decoded body is bounded by the bytes sent. YAML anchors and aliases
("billion laughs", CVE-2019-11253) are refused before anything is expanded, containers may
nest at most :data:`MAX_DEPTH` deep (no Kubernetes object comes near it; it keeps every
recursive walk far from Python's stack limit), and a YAML body must be representable as JSON
(string keys, UTF-8 strings, 64-bit integers) and small enough once encoded as JSON.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import Any

import orjson
import yaml

from joblet.api.patch import PatchType
from joblet.api.protobuf import decode_protobuf_object
from joblet.clock import TooDeep, canonicalize_json_patch_times, canonicalize_times
from joblet.errors import BadRequest, RequestEntityTooLarge, UnsupportedMediaType

MAX_BODY_BYTES = 3 * 1024 * 1024
# Deepest nesting of objects and arrays accepted in a request body. kube-apiserver allows
# 10000 for JSON; joblet walks objects recursively in places (patching, pruning, copying),
# and the deepest real object (a CronJob's pod template volumes) is about 15 levels.
MAX_DEPTH = 100
# Bodies at least this big are decoded in a worker thread: a 3 MiB YAML body takes seconds to
# construct in Python, and the event loop also runs the controllers and the node agent.
OFF_LOOP_BYTES = 64 * 1024
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


class _BodyLoader(yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader):  # type: ignore[misc]
    """Safe YAML as sigs.k8s.io/yaml reads it: timestamps stay strings (they become JSON strings
    upstream, and ``canonicalize_times`` normalises them)."""

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


_STANDARD_COLLECTION_TAGS = (None, "!", "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")


def _yaml_value(text: str) -> Any:
    """The single document of ``text``, built straight from the parser's event stream.

    Aliases and nesting deeper than :data:`MAX_DEPTH` are refused as they are met, before any
    node exists. Building here (not in ``yaml.load``) also means no long stretch of C code
    holds the GIL: a big body decoded in a worker thread leaves the event loop responsive.
    Scalars are resolved and constructed by PyYAML's safe rules (minus timestamps).
    """
    loader = _BodyLoader("")
    stack: list[tuple[Any, list[Any]]] = []  # (container, pending mapping key as [key] or [])
    root: list[Any] = []
    documents = 0
    try:
        for event in yaml.parse(text, Loader=_BodyLoader):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise BadRequest("error converting YAML to JSON: YAML aliases and anchors are not allowed "
                                 "in request bodies")
            if isinstance(event, yaml.ScalarEvent):
                tag = event.tag
                if tag is None or tag == "!":
                    tag = loader.resolve(yaml.ScalarNode, event.value, event.implicit)
                if tag == "tag:yaml.org,2002:merge":
                    raise BadRequest("error converting YAML to JSON: merge keys are not supported")
                construct = loader.yaml_constructors.get(tag)
                if construct is None:
                    raise BadRequest(f"error converting YAML to JSON: unsupported YAML tag {tag!r}")
                value: Any = construct(loader, yaml.ScalarNode(tag, event.value, style=event.style))
                if isinstance(value, float) and not math.isfinite(value):
                    raise BadRequest(f"error converting YAML to JSON: unsupported value: {event.value}")
            elif isinstance(event, yaml.CollectionStartEvent):
                if event.tag not in _STANDARD_COLLECTION_TAGS:
                    raise BadRequest(f"error converting YAML to JSON: unsupported YAML tag {event.tag!r}")
                if len(stack) >= MAX_DEPTH:
                    raise BadRequest(f"error converting YAML to JSON: nesting depth exceeds {MAX_DEPTH}")
                stack.append(({} if isinstance(event, yaml.MappingStartEvent) else [], []))
                continue
            elif isinstance(event, yaml.CollectionEndEvent):
                value = stack.pop()[0]
            elif isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise BadRequest("error converting YAML to JSON: a request body holds one document")
                continue
            else:
                continue
            if not stack:
                root.append(value)
                continue
            container, pending = stack[-1]
            if isinstance(container, list):
                container.append(value)
            elif pending:
                container[pending.pop()] = value
            elif isinstance(value, dict | list):
                raise BadRequest("error converting YAML to JSON: a mapping key must be a scalar")
            else:
                pending.append(value)
    except (yaml.YAMLError, ValueError, TypeError) as exc:
        raise BadRequest(f"error converting YAML to JSON: {exc}") from None
    return root[0] if root else None


def _parse_yaml(body: bytes) -> Any:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"error converting YAML to JSON: {exc}") from None
    value = _yaml_value(text)
    try:
        # The JSON a client would have sent: fails on what JSON cannot carry (lone surrogates,
        # integers beyond 64 bits, binary, non-string keys); its size is the decoded size.
        encoded = orjson.dumps(value)
    except TypeError as exc:
        raise BadRequest(f"error converting YAML to JSON: {exc}") from None
    check_size(len(encoded))
    return orjson.loads(encoded)


def _parse(body: bytes, as_yaml: bool) -> Any:
    if as_yaml:
        return _parse_yaml(body)
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"json parse error: {exc}") from None


def _canonicalize(value: Any) -> None:
    """Canonical timestamps, and the depth limit, in one iterative walk."""
    try:
        canonicalize_times(value, max_depth=MAX_DEPTH)
        if isinstance(value, list):
            canonicalize_json_patch_times(value)
    except TooDeep:
        raise BadRequest(f"the request body is nested deeper than {MAX_DEPTH} levels") from None


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
    _canonicalize(value)
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
    _canonicalize(value)
    return value, patch_type


async def decode_object_async(body: bytes, content_type: str | None) -> dict[str, Any]:
    """:func:`decode_object`, off the event loop for big bodies."""
    if len(body) < OFF_LOOP_BYTES:
        return decode_object(body, content_type)
    return await asyncio.to_thread(decode_object, body, content_type)


async def decode_optional_object_async(body: bytes, content_type: str | None) -> dict[str, Any] | None:
    if len(body) < OFF_LOOP_BYTES:
        return decode_optional_object(body, content_type)
    return await asyncio.to_thread(decode_optional_object, body, content_type)


async def decode_patch_async(body: bytes, content_type: str | None) -> tuple[Any, PatchType]:
    if len(body) < OFF_LOOP_BYTES:
        return decode_patch(body, content_type)
    return await asyncio.to_thread(decode_patch, body, content_type)


#: The ``as=`` kinds the server converts responses to, each in these ``meta.k8s.io`` versions.
CONVERSIONS = ("Table", "PartialObjectMetadata", "PartialObjectMetadataList")
CONVERSION_VERSIONS = ("v1", "v1beta1")


@dataclass(frozen=True)
class Accept:
    """What the client asked the response to be: ``as_kind`` "" is the resource itself."""

    as_kind: str = ""
    version: str = "v1"

    @property
    def table(self) -> bool:
        return self.as_kind == "Table"

    @property
    def metadata(self) -> bool:
        """PartialObjectMetadata(List): client-go's metadata client and metadata informers."""
        return self.as_kind.startswith("PartialObjectMetadata")

    @property
    def api_version(self) -> str:
        return f"meta.k8s.io/{self.version}"


def parse_accept(accept: str | None) -> Accept:
    """The first acceptable alternative of an Accept header, as kube-apiserver negotiates it.

    ``application/json;as=Table;v=v1;g=meta.k8s.io`` → Table (``v1beta1`` likewise, answered in
    that version); ``as=PartialObjectMetadata`` / ``as=PartialObjectMetadataList`` → metadata
    only; an ``as=`` kind or version the server does not convert to is skipped, so the next
    alternative (usually plain ``application/json``) wins. Protobuf in Accept is answered with
    JSON (kubectl accepts that), as is ``*/*``; with no acceptable alternative at all the
    answer is plain JSON too.
    """
    if not accept:
        return Accept()
    for part in accept.split(","):
        params = [p.strip() for p in part.split(";")]
        if params[0].lower() not in ("application/json", "*/*"):
            continue
        kv = dict(p.split("=", 1) for p in params[1:] if "=" in p)
        as_kind = kv.get("as")
        if as_kind is None:
            return Accept()
        if (as_kind in CONVERSIONS and kv.get("g") == "meta.k8s.io"
                and kv.get("v", "v1") in CONVERSION_VERSIONS):
            return Accept(as_kind, kv.get("v", "v1"))
    return Accept()


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)
