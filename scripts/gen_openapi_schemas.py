"""Generate ``src/joblet/api/openapi_schemas.json`` from the official ``kubernetes`` client's models.

Why: kubectl ≥1.27 needs OpenAPI v3 component schemas (``kubectl explain``, server-side field
validation) and the server needs the same schemas to find unknown fields. The ``kubernetes``
package is only a dev dependency, so this script runs once and its output is committed; the
server reads the JSON file and never imports ``kubernetes``.

Run: ``python scripts/gen_openapi_schemas.py`` (rewrites the JSON file).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import kubernetes.client.models as models

OUT = Path(__file__).resolve().parent.parent / "src" / "joblet" / "api" / "openapi_schemas.json"

META = "io.k8s.apimachinery.pkg.apis.meta.v1"
META_NAMES = {
    "ObjectMeta", "ListMeta", "LabelSelector", "LabelSelectorRequirement", "OwnerReference",
    "ManagedFieldsEntry", "Condition", "Status", "StatusDetails", "StatusCause", "DeleteOptions",
    "Preconditions", "FieldSelectorRequirement",
}
RBAC_NAMES = {"Role", "RoleList", "ClusterRole", "ClusterRoleList", "RoleBinding", "RoleBindingList",
              "ClusterRoleBinding", "ClusterRoleBindingList", "RoleRef", "PolicyRule", "AggregationRule",
              "RbacV1Subject"}
AUTHORIZATION_NAMES = {"SelfSubjectAccessReview", "SelfSubjectAccessReviewSpec", "SubjectAccessReviewStatus",
                       "SelfSubjectRulesReview", "SelfSubjectRulesReviewSpec", "SubjectRulesReviewStatus",
                       "ResourceAttributes", "NonResourceAttributes", "ResourceRule", "NonResourceRule",
                       "FieldSelectorAttributes", "LabelSelectorAttributes"}
AUTHENTICATION_NAMES = {"SelfSubjectReview", "SelfSubjectReviewStatus", "UserInfo"}
BATCH_PREFIXES = ("Job", "CronJob", "PodFailurePolicy", "SuccessPolicy", "UncountedTerminatedPods")

# Root kinds served by joblet: python class name -> (group, version, kind).
ROOTS: dict[str, tuple[str, str, str]] = {
    "V1Job": ("batch", "v1", "Job"),
    "V1JobList": ("batch", "v1", "JobList"),
    "V1CronJob": ("batch", "v1", "CronJob"),
    "V1CronJobList": ("batch", "v1", "CronJobList"),
    "V1Pod": ("", "v1", "Pod"),
    "V1PodList": ("", "v1", "PodList"),
    "V1Namespace": ("", "v1", "Namespace"),
    "V1NamespaceList": ("", "v1", "NamespaceList"),
    "V1Node": ("", "v1", "Node"),
    "V1NodeList": ("", "v1", "NodeList"),
    "CoreV1Event": ("", "v1", "Event"),
    "CoreV1EventList": ("", "v1", "EventList"),
    "V1Secret": ("", "v1", "Secret"),
    "V1SecretList": ("", "v1", "SecretList"),
    "V1ConfigMap": ("", "v1", "ConfigMap"),
    "V1ConfigMapList": ("", "v1", "ConfigMapList"),
    "V1ServiceAccount": ("", "v1", "ServiceAccount"),
    "V1ServiceAccountList": ("", "v1", "ServiceAccountList"),
    "V1Lease": ("coordination.k8s.io", "v1", "Lease"),
    "V1LeaseList": ("coordination.k8s.io", "v1", "LeaseList"),
    "V1Eviction": ("policy", "v1", "Eviction"),
    "V1Role": ("rbac.authorization.k8s.io", "v1", "Role"),
    "V1RoleList": ("rbac.authorization.k8s.io", "v1", "RoleList"),
    "V1ClusterRole": ("rbac.authorization.k8s.io", "v1", "ClusterRole"),
    "V1ClusterRoleList": ("rbac.authorization.k8s.io", "v1", "ClusterRoleList"),
    "V1RoleBinding": ("rbac.authorization.k8s.io", "v1", "RoleBinding"),
    "V1RoleBindingList": ("rbac.authorization.k8s.io", "v1", "RoleBindingList"),
    "V1ClusterRoleBinding": ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding"),
    "V1ClusterRoleBindingList": ("rbac.authorization.k8s.io", "v1", "ClusterRoleBindingList"),
    "V1SelfSubjectAccessReview": ("authorization.k8s.io", "v1", "SelfSubjectAccessReview"),
    "V1SelfSubjectRulesReview": ("authorization.k8s.io", "v1", "SelfSubjectRulesReview"),
    "V1SelfSubjectReview": ("authentication.k8s.io", "v1", "SelfSubjectReview"),
    "V1Status": ("", "v1", "Status"),
    "V1DeleteOptions": ("", "v1", "DeleteOptions"),
}

# Further group-version-kinds a schema serves (the python client has no v1beta1 SelfSubjectReview;
# its v1beta1 shape is the v1 one, which kubectl 1.27's `auth whoami` posts).
EXTRA_GVKS: dict[str, list[tuple[str, str, str]]] = {
    "V1SelfSubjectReview": [("authentication.k8s.io", "v1beta1", "SelfSubjectReview")],
}

# Strategic-merge-patch directives of list fields (the Go struct tags patchStrategy/patchMergeKey).
# kubectl's client-side apply reads them from the OpenAPI schema; without them it treats these lists
# as atomic and re-sends whole lists on every apply.
PATCH_DIRECTIVES: dict[tuple[str, str], tuple[str, str | None]] = {
    ("PodSpec", "volumes"): ("merge,retainKeys", "name"),
    ("PodSpec", "initContainers"): ("merge", "name"),
    ("PodSpec", "containers"): ("merge", "name"),
    ("PodSpec", "ephemeralContainers"): ("merge", "name"),
    ("PodSpec", "imagePullSecrets"): ("merge", "name"),
    ("PodSpec", "hostAliases"): ("merge", "ip"),
    ("PodSpec", "topologySpreadConstraints"): ("merge", "topologyKey"),
    ("PodSpec", "resourceClaims"): ("merge,retainKeys", "name"),
    ("PodSpec", "schedulingGates"): ("merge", "name"),
    ("Container", "ports"): ("merge", "containerPort"),
    ("Container", "env"): ("merge", "name"),
    ("Container", "volumeMounts"): ("merge", "mountPath"),
    ("Container", "volumeDevices"): ("merge", "devicePath"),
    ("EphemeralContainer", "ports"): ("merge", "containerPort"),
    ("EphemeralContainer", "env"): ("merge", "name"),
    ("EphemeralContainer", "volumeMounts"): ("merge", "mountPath"),
    ("EphemeralContainer", "volumeDevices"): ("merge", "devicePath"),
    ("ObjectMeta", "ownerReferences"): ("merge", "uid"),
    ("ObjectMeta", "finalizers"): ("merge", None),
    ("PodStatus", "conditions"): ("merge", "type"),
    ("JobStatus", "conditions"): ("merge", "type"),
    ("NodeStatus", "conditions"): ("merge", "type"),
    ("NodeStatus", "addresses"): ("merge", "type"),
    ("NamespaceStatus", "conditions"): ("merge", "type"),
    ("ServiceAccount", "secrets"): ("merge", "name"),
}


def short_name(py_name: str) -> str:
    return re.sub(r"^(CoreV1|V1)", "", py_name)


def schema_name(py_name: str) -> str:
    name = short_name(py_name)
    if name in META_NAMES:
        return f"{META}.{name}"
    if name.startswith(BATCH_PREFIXES):
        return f"io.k8s.api.batch.v1.{name}"
    if name in RBAC_NAMES:
        return f"io.k8s.api.rbac.v1.{name.removeprefix('RbacV1')}"
    if name in AUTHORIZATION_NAMES:
        return f"io.k8s.api.authorization.v1.{name}"
    if name in AUTHENTICATION_NAMES:
        return f"io.k8s.api.authentication.v1.{name}"
    if name.startswith("Lease"):
        return f"io.k8s.api.coordination.v1.{name}"
    if name == "Eviction":
        return f"io.k8s.api.policy.v1.{name}"
    return f"io.k8s.api.core.v1.{name}"


def description_of(cls: Any) -> str:
    doc = (cls.__doc__ or "").strip()
    return doc.split("\n\n")[0].strip().replace("\n    ", " ")


def type_schema(type_str: str, pending: list[str]) -> dict[str, Any]:
    t = type_str.strip()
    if t.startswith("List[") and t.endswith("]"):
        return {"type": "array", "items": type_schema(t[5:-1], pending)}
    if t.startswith("Dict[") and t.endswith("]"):
        value = t[5:-1].split(",", 1)[1]
        return {"type": "object", "additionalProperties": type_schema(value, pending)}
    simple = {
        "str": {"type": "string"}, "int": {"type": "integer", "format": "int32"},
        "bool": {"type": "boolean"}, "float": {"type": "number", "format": "double"},
        "datetime": {"type": "string", "format": "date-time"}, "bytes": {"type": "string", "format": "byte"},
        "object": {"x-kubernetes-preserve-unknown-fields": True},
    }
    if t in simple:
        return dict(simple[t])
    if not hasattr(models, t):
        raise SystemExit(f"unknown model type {t}")
    pending.append(t)
    return {"$ref": f"#/components/schemas/{schema_name(t)}"}


def build() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    pending = list(ROOTS)
    seen: set[str] = set()
    while pending:
        py_name = pending.pop()
        if py_name in seen:
            continue
        seen.add(py_name)
        cls = getattr(models, py_name)
        props: dict[str, Any] = {}
        required: list[str] = []
        for attr, type_str in cls.openapi_types.items():
            wire = cls.attribute_map[attr]
            field = cls.model_fields.get(attr)
            prop = type_schema(type_str, pending)
            desc = (field.description if field is not None else None) or ""
            if "$ref" in prop:
                prop = {"allOf": [prop]}
            if desc:
                prop["description"] = desc
            directive = PATCH_DIRECTIVES.get((short_name(py_name), wire))
            if directive is not None:
                prop["x-kubernetes-patch-strategy"] = directive[0]
                if directive[1] is not None:
                    prop["x-kubernetes-patch-merge-key"] = directive[1]
            props[wire] = prop
            if field is not None and field.is_required():
                required.append(wire)
        schema: dict[str, Any] = {"description": description_of(cls), "type": "object", "properties": props}
        if required:
            schema["required"] = sorted(required)
        if py_name in ROOTS:
            group, version, kind = ROOTS[py_name]
            schema["x-kubernetes-group-version-kind"] = [
                {"group": g, "kind": k, "version": v} for g, v, k in [(group, version, kind), *EXTRA_GVKS.get(py_name, [])]]
        schemas[schema_name(py_name)] = schema
    return dict(sorted(schemas.items()))


PROTO = OUT.parent / "proto_schema.json"
QUANTITY = "k8s.io.apimachinery.pkg.api.resource.Quantity"


def proto_fields(messages: dict[str, Any], name: str) -> dict[str, str]:
    """JSON name -> protobuf type of one message, inline (``i``) members flattened in."""
    out: dict[str, str] = {}
    for _num, (json_name, flags, ftype) in messages.get(name, {}).items():
        if "i" in flags:
            out.update(proto_fields(messages, ftype))
        else:
            out[json_name] = ftype
    return out


def apply_proto_types(schemas: dict[str, Any]) -> None:
    """The Python models say ``int`` for int32 and int64 alike, and ``str`` for a Quantity;
    the protobuf descriptors (``proto_schema.json``) know better, and typed decoding of
    request bodies enforces the ranges, so copy ``int64`` and ``quantity`` formats over."""
    messages: dict[str, Any] = json.loads(PROTO.read_text())["messages"]
    for proto_name in messages:
        schema = schemas.get("io." + proto_name.replace("k8s.io.", "k8s.", 1))
        if schema is None:
            continue
        for json_name, ftype in proto_fields(messages, proto_name).items():
            prop = schema["properties"].get(json_name)
            if prop is None:
                continue
            target = prop.get("additionalProperties") or prop.get("items") or prop
            if ftype == "int64" and target.get("type") == "integer":
                target["format"] = "int64"
            elif ftype == QUANTITY and target.get("type") == "string":
                target["format"] = "quantity"


def main() -> None:
    schemas = build()
    apply_proto_types(schemas)
    OUT.write_text(json.dumps(schemas, separators=(",", ":"), sort_keys=True) + "\n")
    print(f"wrote {len(schemas)} schemas, {OUT.stat().st_size} bytes to {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
