"""Request body decoding against hostile input: parser bombs, depth, non-JSON YAML."""

from __future__ import annotations

import orjson
import pytest

from joblet.api import content
from joblet.clock import RealClock
from joblet.errors import BadRequest, RequestEntityTooLarge


def alias_bomb(levels: int) -> bytes:
    """The audit's billion-laughs ConfigMap: 10**levels leaves in a few hundred bytes."""
    lines = ["apiVersion: v1", "kind: ConfigMap", "metadata: {name: bomb}", "anchors:",
             "  l0: &l0 [" + ", ".join(["ab"] * 10) + "]"]
    lines += [f"  l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, levels)]
    lines.append(f"data:\n  a: *l{levels - 1}")
    return "\n".join(lines).encode()


@pytest.mark.parametrize("levels", [7, 8])
def test_alias_bombs_are_refused_in_milliseconds(levels: int) -> None:
    body = alias_bomb(levels)
    assert len(body) < 600
    start = RealClock().monotonic()
    with pytest.raises(BadRequest, match="aliases"):
        content.decode_object(body, "application/yaml")
    assert RealClock().monotonic() - start < 0.05


def test_yaml_patch_with_alias_is_refused() -> None:
    with pytest.raises(BadRequest, match="aliases"):
        content.decode_patch(b"a: &x {b: 1}\nc: *x\n", "application/apply-patch+yaml")


def nested(depth: int) -> bytes:
    return b'{"metadata":{"name":"x"},"d":' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"


def test_depth_limit_json() -> None:
    ok = nested(content.MAX_DEPTH)
    assert content.decode_object(ok, "application/json")["metadata"] == {"name": "x"}
    for depth in (content.MAX_DEPTH + 1, 600, 1000):
        with pytest.raises(BadRequest, match="nested deeper"):
            content.decode_object(nested(depth), "application/json")


def test_depth_limit_yaml_and_patches() -> None:
    deep_yaml = b"a: " + b"[" * 400 + b"]" * 400
    with pytest.raises(BadRequest, match="nesting depth"):
        content.decode_object(deep_yaml, "application/yaml")
    with pytest.raises(BadRequest, match="nested deeper"):
        content.decode_patch(nested(500), "application/merge-patch+json")
    ops = b'[{"op":"add","path":"/x","value":' + b"[" * 300 + b"]" * 300 + b"}]"
    with pytest.raises(BadRequest, match="nested deeper"):
        content.decode_patch(ops, "application/json-patch+json")


@pytest.mark.parametrize("body", [
    b'a: "\\ud800"',                 # lone surrogate
    b"a: 18446744073709551616",      # beyond 64 bits
    b"a: !!binary aGVsbG8=",         # bytes are not JSON
    b"{1: a}",                       # non-string key
    b"a: [b",                        # syntax
    b"\xff\xfe",                     # not UTF-8
])
def test_yaml_that_is_not_json_is_a_400(body: bytes) -> None:
    with pytest.raises(BadRequest):
        content.decode_object(body, "application/yaml")


def test_yaml_timestamps_stay_strings_and_are_canonical() -> None:
    got = content.decode_object(b"metadata:\n  creationTimestamp: 2024-01-02T03:04:05+00:00\n", "application/yaml")
    assert got == {"metadata": {"creationTimestamp": "2024-01-02T03:04:05Z"}}
    orjson.dumps(got)


def test_yaml_size_is_measured_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(content, "MAX_BODY_BYTES", 64 * 1024)
    # Each 2-byte ``x,`` becomes the 4-byte ``"x",`` in JSON.
    body = b"a: [" + b",".join([b"x"] * (content.MAX_BODY_BYTES // 2 - 10)) + b"]"
    assert len(body) < content.MAX_BODY_BYTES
    with pytest.raises(RequestEntityTooLarge):
        content.decode_object(body, "application/yaml")


@pytest.mark.parametrize("body", [
    b"a: .inf", b"a: .nan", b"a: !!set {x}", b"a: !custom x", b"? [a]\n: b", b"<<: {a: 1}",
    b"a: 1\n---\nb: 2", b"a: &anchor 1",
])
def test_yaml_outside_the_json_subset_is_a_400(body: bytes) -> None:
    with pytest.raises(BadRequest):
        content.decode_object(body, "application/yaml")


def test_yaml_scalars_resolve_like_safe_load() -> None:
    body = b"a: '1'\nb: yes\nc: 0x10\nd: ~\ne: [1.5, -2, x]\nf: |\n  l1\n  l2\n"
    assert content.decode_object(body, "application/yaml") == {
        "a": "1", "b": True, "c": 16, "d": None, "e": [1.5, -2, "x"], "f": "l1\nl2\n"}


@pytest.mark.parametrize(("accept", "as_kind", "version"), [
    ("application/json;as=Table;v=v1;g=meta.k8s.io,application/json", "Table", "v1"),
    ("application/json;as=Table;v=v1beta1;g=meta.k8s.io", "Table", "v1beta1"),
    ("application/json;as=Table;v=v2;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io",
     "Table", "v1beta1"),
    ("application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,"
     "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json",
     "PartialObjectMetadataList", "v1"),
    ("application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1", "PartialObjectMetadata", "v1"),
    ("application/json;as=Table;v=v1;g=other.io,application/json", "", "v1"),
    ("application/json", "", "v1"),
    (None, "", "v1"),
])
def test_parse_accept_negotiates_conversions(accept: str | None, as_kind: str, version: str) -> None:
    got = content.parse_accept(accept)
    assert (got.as_kind, got.version) == (as_kind, version)
    assert got.table == (as_kind == "Table") and got.metadata == as_kind.startswith("PartialObjectMetadata")
