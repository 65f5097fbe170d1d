"""Decoding Kubernetes protobuf request bodies (``joblet.api.protobuf``).

Bodies are built with a tiny test-only encoder below (hand-placed field numbers, not the
schema, so a wrong schema entry cannot hide behind a matching encoder), plus one body
captured verbatim from ``kubectl create configmap -v=9``.
"""

from __future__ import annotations

import struct
from typing import Any

import pytest

from joblet.api import content
from joblet.api.protobuf import (
    GO_ZERO_TIME_SECONDS,
    MAGIC,
    decode_protobuf_object,
    go_duration,
    load_schema,
    scalar,
    time_text,
)
from joblet.errors import BadRequest, UnsupportedMediaType

# ------------------------------------------------------------------ test-only encoder


def varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def vi(number: int, value: int) -> bytes:
    """A varint field."""
    return varint(number << 3) + varint(value)


def ld(number: int, payload: bytes | str) -> bytes:
    """A length-delimited field."""
    data = payload.encode() if isinstance(payload, str) else payload
    return varint(number << 3 | 2) + varint(len(data)) + data


def entry(number: int, key: str, value: bytes | str) -> bytes:
    """A map<string, V> entry (value already encoded when a message)."""
    return ld(number, ld(1, key) + ld(2, value))


def envelope(api_version: str, kind: str, raw: bytes, encoding: str = "", content_type: str = "") -> bytes:
    return MAGIC + ld(1, ld(1, api_version) + ld(2, kind)) + ld(2, raw) + ld(3, encoding) + ld(4, content_type)


def meta(name: str) -> bytes:
    """ObjectMeta as go-to-protobuf writes it: every non-pointer field, zero or not."""
    return ld(1, ld(1, name) + ld(2, "") + ld(3, "") + ld(4, "") + ld(5, "") + ld(6, "") + vi(7, 0) + ld(8, b""))


def container(*fields: bytes) -> bytes:
    return ld(2, b"".join(fields))  # PodSpec.containers = 2


def job(spec: bytes) -> bytes:
    return envelope("batch/v1", "Job", meta("j") + ld(2, spec) + ld(3, b""))


def template(pod_spec: bytes) -> bytes:
    return ld(6, ld(1, ld(8, b"")) + ld(2, pod_spec))  # JobSpec.template = PodTemplateSpec{metadata, spec}


# kubectl v1.33.1 `create configmap c9 --from-literal=x=y`, from its -v=9 request dump.
CAPTURED_CONFIGMAP = bytes.fromhex(
    "6b3873000a0f0a0276311209436f6e6669674d6170121c0a120a02633912001a"
    "0022002a003200380042001206 0a0178120179 1a002200".replace(" ", "")
)

META_ONLY = {"name": "j", "creationTimestamp": None}

DECODE_CASES: list[tuple[str, bytes, dict[str, Any]]] = [
    ("captured-configmap", CAPTURED_CONFIGMAP,
     {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c9", "creationTimestamp": None},
      "data": {"x": "y"}}),
    ("secret-bytes-are-base64", envelope("v1", "Secret", meta("s") + entry(2, "a", b"b") + entry(2, "bin", b"\x00\xff")
                                          + entry(4, "plain", "text") + ld(3, "Opaque")),
     {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "creationTimestamp": None},
      "data": {"a": "Yg==", "bin": "AP8="}, "stringData": {"plain": "text"}, "type": "Opaque"}),
    ("empty-secret-value-kept", envelope("v1", "Secret", meta("s") + entry(2, "empty", b"")),
     {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "creationTimestamp": None}, "data": {"empty": ""}}),
    ("namespace-empty-spec-status", envelope("v1", "Namespace", meta("n") + ld(2, b"") + ld(3, ld(1, ""))),
     {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n", "creationTimestamp": None},
      "spec": {}, "status": {}}),
    ("serviceaccount-pointer-false-kept", envelope("v1", "ServiceAccount", meta("sa") + vi(4, 0)),
     {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sa", "creationTimestamp": None},
      "automountServiceAccountToken": False}),
    ("job-pointer-zeros-kept", job(vi(7, 0) + vi(10, 0) + vi(8, 0) + vi(1, 2)),
     {"apiVersion": "batch/v1", "kind": "Job", "metadata": META_ONLY,
      "spec": {"backoffLimit": 0, "suspend": False, "ttlSecondsAfterFinished": 0, "parallelism": 2}, "status": {}}),
    ("container-defaults-dropped-values-kept",
     job(template(container(ld(1, "main"), ld(2, "busybox"), ld(3, "sh"), ld(3, "-c"), ld(3, "echo hi"), ld(5, ""),
                            ld(8, b""), vi(16, 0), ld(13, ""))
                  + ld(3, "Never") + vi(4, 30))),
     {"apiVersion": "batch/v1", "kind": "Job", "metadata": META_ONLY, "status": {},
      "spec": {"template": {"metadata": {"creationTimestamp": None},
                            "spec": {"containers": [{"name": "main", "image": "busybox",
                                                     "command": ["sh", "-c", "echo hi"], "resources": {}}],
                                     "restartPolicy": "Never", "terminationGracePeriodSeconds": 30}}}}),
    ("inline-local-object-reference",
     job(template(container(ld(1, "c"), ld(7, ld(1, "TOKEN") + ld(3, ld(4, ld(1, ld(1, "creds")) + ld(2, "tok"))))))),
     {"apiVersion": "batch/v1", "kind": "Job", "metadata": META_ONLY, "status": {},
      "spec": {"template": {"metadata": {"creationTimestamp": None}, "spec": {"containers": [
          {"name": "c", "env": [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "tok"}}}]}]}}}}),
    ("inline-volume-source-and-probe-handler",
     job(template(ld(1, ld(1, "scratch") + ld(2, ld(2, ld(2, ld(1, "64Mi")))))
                  + container(ld(1, "c"), ld(10, ld(1, ld(2, ld(2, vi(1, 0) + vi(2, 8080))))
                                             + vi(2, 0) + vi(3, 1)),
                              ld(11, ld(1, ld(3, ld(1, vi(1, 1) + ld(3, "http")))))))),
     {"apiVersion": "batch/v1", "kind": "Job", "metadata": META_ONLY, "status": {},
      "spec": {"template": {"metadata": {"creationTimestamp": None}, "spec": {
          "volumes": [{"name": "scratch", "emptyDir": {"sizeLimit": "64Mi"}}],
          "containers": [{"name": "c", "livenessProbe": {"httpGet": {"port": 8080}, "timeoutSeconds": 1},
                          "readinessProbe": {"tcpSocket": {"port": "http"}}}]}}}}),
    ("quantity-maps", job(template(container(ld(1, "c"), ld(8, entry(1, "cpu", ld(1, "500m"))
                                                              + entry(2, "memory", ld(1, "1Gi")))))),
     {"apiVersion": "batch/v1", "kind": "Job", "metadata": META_ONLY, "status": {},
      "spec": {"template": {"metadata": {"creationTimestamp": None}, "spec": {"containers": [
          {"name": "c", "resources": {"limits": {"cpu": "500m"}, "requests": {"memory": "1Gi"}}}]}}}}),
    ("packed-and-unpacked-repeated-int32",
     job(ld(11, ld(1, ld(1, "FailJob") + ld(2, ld(2, "In") + ld(3, varint(1) + varint(42)) + vi(3, 7))))),
     {"apiVersion": "batch/v1", "kind": "Job", "metadata": META_ONLY, "status": {},
      "spec": {"podFailurePolicy": {"rules": [{"action": "FailJob",
                                              "onExitCodes": {"operator": "In", "values": [1, 42, 7]}}]}}}),
    ("negative-int64", job(template(ld(14, vi(2, -1)))),
     {"apiVersion": "batch/v1", "kind": "Job", "metadata": META_ONLY, "status": {},
      "spec": {"template": {"metadata": {"creationTimestamp": None}, "spec": {"securityContext": {"runAsUser": -1}}}}}),
    ("owner-reference-and-times",
     envelope("batch/v1", "Job", ld(1, ld(1, "m") + ld(8, vi(1, 1_700_000_000) + vi(2, 5))
                                   + entry(12, "cronjob.kubernetes.io/instantiate", "manual")
                                   + ld(13, ld(1, "CronJob") + ld(3, "cj") + ld(4, "u-1") + ld(5, "batch/v1")
                                        + vi(6, 1))) + ld(2, b"")),
     {"apiVersion": "batch/v1", "kind": "Job", "spec": {},
      "metadata": {"name": "m", "creationTimestamp": "2023-11-14T22:13:20Z",
                   "annotations": {"cronjob.kubernetes.io/instantiate": "manual"},
                   "ownerReferences": [{"kind": "CronJob", "name": "cj", "uid": "u-1", "apiVersion": "batch/v1",
                                        "controller": True}]}}),
    ("cronjob", envelope("batch/v1", "CronJob", meta("cj") + ld(2, ld(1, "*/5 * * * *") + ld(3, "")
                                                                 + ld(5, ld(1, ld(1, "cj") + ld(8, b"")) + ld(2, b"")))
                         + ld(3, b"")),
     {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "cj", "creationTimestamp": None},
      "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"metadata": {"name": "cj", "creationTimestamp": None},
                                                          "spec": {}}},
      "status": {}}),
    ("lease-micro-time-and-pointer-zero", envelope("coordination.k8s.io/v1", "Lease", meta("l") + ld(2, (
        ld(1, "host_1") + vi(2, 15) + ld(4, vi(1, 1767323045) + vi(2, 678901000)) + vi(5, 0)))),
     {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l", "creationTimestamp": None},
      "spec": {"holderIdentity": "host_1", "leaseDurationSeconds": 15, "renewTime": "2026-01-02T03:04:05.678901Z",
               "leaseTransitions": 0}}),
    ("unknown-fields-skipped", envelope("v1", "ConfigMap", meta("c") + ld(99, "future") + vi(98, 1)
                                        + varint(97 << 3 | 5) + b"\x01\x02\x03\x04"),
     {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "creationTimestamp": None}}),
]


@pytest.mark.parametrize(("body", "expected"), [c[1:] for c in DECODE_CASES], ids=[c[0] for c in DECODE_CASES])
def test_decode(body: bytes, expected: dict[str, Any]) -> None:
    assert decode_protobuf_object(body) == expected


ERROR_CASES: list[tuple[str, bytes, type[Exception], str]] = [
    ("no-magic", b'{"kind":"Secret"}', BadRequest, "k8s\\x00 prefix"),
    ("truncated-envelope", MAGIC + b"\x0a", BadRequest, "truncated varint"),
    ("truncated-field", MAGIC + b"\x0a\x05ab", BadRequest, "truncated length-delimited"),
    ("group-wire-type", envelope("v1", "ConfigMap", b"\x0b"), BadRequest, "unsupported wire type 3"),
    ("no-kind", MAGIC + ld(2, b""), BadRequest, "no kind"),
    ("unknown-kind", envelope("v1", "Pod", b""), UnsupportedMediaType, "v1, Kind=Pod"),
    ("gzip-encoding", envelope("v1", "Secret", b"", encoding="gzip"), UnsupportedMediaType, "contentEncoding"),
    ("json-content-type", envelope("v1", "Secret", b"", content_type="application/json"), UnsupportedMediaType,
     "contentType"),
    ("bad-utf8", envelope("v1", "ConfigMap", ld(1, ld(1, b"\xff"))), BadRequest, "UTF-8"),
    ("string-as-varint", envelope("v1", "ConfigMap", ld(1, vi(1, 5))), BadRequest, "wire type 0 for a string"),
]


@pytest.mark.parametrize(("body", "error", "message"), [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES])
def test_decode_errors(body: bytes, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=None) as caught:
        decode_protobuf_object(body)
    assert message in str(caught.value)


@pytest.mark.parametrize(("seconds", "nanos", "micro", "expected"), [
    (0, 0, False, None),
    (GO_ZERO_TIME_SECONDS, 0, False, None),
    (1_700_000_000, 999_999_999, False, "2023-11-14T22:13:20Z"),
    (1_700_000_000, 123_456_789, True, "2023-11-14T22:13:20.123456Z"),
    (1_700_000_000, 0, True, "2023-11-14T22:13:20.000000Z"),
], ids=["empty", "go-zero", "time-drops-nanos", "microtime", "microtime-whole"])
def test_time_text(seconds: int, nanos: int, micro: bool, expected: str | None) -> None:
    buf = (vi(1, seconds) if seconds else b"") + (vi(2, nanos) if nanos else b"")
    assert time_text(buf, micro) == expected


@pytest.mark.parametrize(("nanos", "expected"), [
    (0, "0s"), (1, "1ns"), (1500, "1.5µs"), (1_500_000, "1.5ms"), (1_000_000_000, "1s"), (90_000_000_000, "1m30s"),
    (3_600_000_000_000, "1h0m0s"), (3_723_500_000_000, "1h2m3.5s"), (-2_000_000_000, "-2s"),
], ids=["zero", "ns", "us", "ms", "s", "m", "h", "hms-frac", "negative"])
def test_go_duration(nanos: int, expected: str) -> None:
    assert go_duration(nanos) == expected


@pytest.mark.parametrize(("type_name", "wire_type", "raw", "expected"), [
    ("int32", 0, (1 << 64) - 5, -5),
    ("uint64", 0, (1 << 64) - 1, (1 << 64) - 1),
    ("sint64", 0, 3, -2),
    ("bool", 0, 1, True),
    ("double", 1, int.from_bytes(struct.pack("<d", 1.5), "little"), 1.5),
    ("float", 5, int.from_bytes(struct.pack("<f", 0.25), "little"), 0.25),
    ("sfixed32", 5, 0xFFFFFFFF, -1),
], ids=["int32-negative", "uint64", "sint64-zigzag", "bool", "double", "float", "sfixed32"])
def test_scalars(type_name: str, wire_type: int, raw: int, expected: Any) -> None:
    assert scalar(type_name, wire_type, raw) == expected


def test_schema_is_closed_and_covers_the_create_verbs() -> None:
    schema = load_schema()
    assert set(schema["kinds"]) >= {"v1/Secret", "v1/ConfigMap", "v1/ServiceAccount", "v1/Namespace",
                                    "batch/v1/Job", "batch/v1/CronJob"}
    scalars = {"string", "bytes", "bool", "int32", "int64", "uint32", "uint64", "sint32", "sint64", "fixed32",
               "fixed64", "sfixed32", "sfixed64", "double", "float"}
    for name, fields in schema["messages"].items():
        for number, (json_name, flags, type_name) in fields.items():
            assert int(number) > 0 and json_name, name
            assert set(flags) <= set("rmip"), (name, json_name)
            assert type_name in scalars or type_name in schema["messages"], (name, json_name, type_name)


def test_content_decode_object_accepts_protobuf() -> None:
    assert content.decode_object(CAPTURED_CONFIGMAP, "application/vnd.kubernetes.protobuf")["data"] == {"x": "y"}
    with pytest.raises(BadRequest):
        content.decode_object(b"", "application/vnd.kubernetes.protobuf")


@pytest.mark.parametrize("seconds", [2**62, -(2**62), 2**40, 253402300800])
def test_time_text_out_of_range_is_a_400(seconds: int) -> None:
    with pytest.raises(BadRequest, match="year outside of range"):
        time_text(vi(1, seconds), micro=False)


def test_time_text_pads_early_years() -> None:
    assert time_text(vi(1, -61_000_000_000), micro=False) == "0036-12-26T11:33:20Z"
