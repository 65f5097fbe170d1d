"""Generate ``src/joblet/api/proto_schema.json`` from the upstream ``generated.proto`` files.

Why: kubectl ≥1.27 sends ``application/vnd.kubernetes.protobuf`` bodies for its imperative
create verbs (``create secret|configmap|serviceaccount|namespace|job|cronjob|role|rolebinding``...)
and for ``auth can-i``/``auth whoami``. Decoding
them needs, per message, field number → (JSON name, type, repeated/map/inline). That table
is derived here once from the Kubernetes ``generated.proto`` files saved under
``scripts/proto/`` (trimmed copies: comments dropped, fields verbatim) and committed as
JSON, so the server needs neither ``protoc`` nor a protobuf runtime.

Two facts the ``.proto`` files do not say are added here:

* **inline**: a Go struct embedded with ``json:",inline"`` (``LocalObjectReference`` in
  ``SecretKeySelector``, ``VolumeSource`` in ``Volume``, ``ProbeHandler`` in ``Probe`` …) is a
  named proto field whose members appear directly in the JSON object. Detected by comparing
  with the OpenAPI property names in ``src/joblet/api/openapi_schemas.json``.
* **pointer**: go-to-protobuf always writes non-pointer scalars, so a zero string/int/bool on
  the wire usually means "unset" (Go's ``omitempty`` would drop it from JSON). For pointer
  fields (``backoffLimit: 0``, ``suspend: false``, ``ttlSecondsAfterFinished: 0``) zero is a
  real value. ``POINTER_FIELDS`` lists them (from ``k8s.io/api`` ``types.go``).

Run: ``python scripts/gen_proto_schema.py`` (rewrites the JSON file; prints a report).
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "scripts" / "proto"
OPENAPI = ROOT / "src" / "joblet" / "api" / "openapi_schemas.json"
OUT = ROOT / "src" / "joblet" / "api" / "proto_schema.json"

CORE = "k8s.io.api.core.v1"
BATCH = "k8s.io.api.batch.v1"
META = "k8s.io.apimachinery.pkg.apis.meta.v1"
RBAC = "k8s.io.api.rbac.v1"
AUTHZ = "k8s.io.api.authorization.v1"
AUTHN = "k8s.io.api.authentication.v1"
COORDINATION = "k8s.io.api.coordination.v1"

# apiVersion/kind → message, for the kinds a protobuf body may carry.
KINDS: dict[str, str] = {
    "v1/Secret": f"{CORE}.Secret",
    "v1/ConfigMap": f"{CORE}.ConfigMap",
    "v1/ServiceAccount": f"{CORE}.ServiceAccount",
    "v1/Namespace": f"{CORE}.Namespace",
    "batch/v1/Job": f"{BATCH}.Job",
    "batch/v1/CronJob": f"{BATCH}.CronJob",
    "coordination.k8s.io/v1/Lease": f"{COORDINATION}.Lease",  # client-go's leader election writes protobuf
    "rbac.authorization.k8s.io/v1/Role": f"{RBAC}.Role",
    "rbac.authorization.k8s.io/v1/ClusterRole": f"{RBAC}.ClusterRole",
    "rbac.authorization.k8s.io/v1/RoleBinding": f"{RBAC}.RoleBinding",
    "rbac.authorization.k8s.io/v1/ClusterRoleBinding": f"{RBAC}.ClusterRoleBinding",
    "authorization.k8s.io/v1/SelfSubjectAccessReview": f"{AUTHZ}.SelfSubjectAccessReview",
    "authorization.k8s.io/v1/SelfSubjectRulesReview": f"{AUTHZ}.SelfSubjectRulesReview",
    "authentication.k8s.io/v1/SelfSubjectReview": f"{AUTHN}.SelfSubjectReview",
    "authentication.k8s.io/v1beta1/SelfSubjectReview": f"{AUTHN}.SelfSubjectReview",  # same fields
    # kubectl create token (the serviceaccounts/token subresource)
    "authentication.k8s.io/v1/TokenRequest": "k8s.io.api.authentication.v1.TokenRequest",
}

# Messages decoded by hand (well-known k8s wrappers); their own fields are still emitted.
SPECIAL = {
    f"{META}.Time", f"{META}.MicroTime", f"{META}.Duration", f"{META}.FieldsV1",
    "k8s.io.apimachinery.pkg.api.resource.Quantity", "k8s.io.apimachinery.pkg.util.intstr.IntOrString",
    "k8s.io.apimachinery.pkg.runtime.RawExtension",
}

# Pointer-typed scalar fields (zero is a value, not "unset"), short message name → fields.
POINTER_FIELDS: dict[str, set[str]] = {
    f"{BATCH}.JobSpec": {"parallelism", "completions", "activeDeadlineSeconds", "backoffLimit",
                         "backoffLimitPerIndex", "maxFailedIndexes", "manualSelector",
                         "ttlSecondsAfterFinished", "completionMode", "suspend", "podReplacementPolicy",
                         "managedBy"},
    f"{BATCH}.CronJobSpec": {"timeZone", "startingDeadlineSeconds", "suspend", "successfulJobsHistoryLimit",
                             "failedJobsHistoryLimit"},
    f"{BATCH}.JobStatus": {"terminating", "ready"},
    f"{COORDINATION}.LeaseSpec": {"holderIdentity", "leaseDurationSeconds", "leaseTransitions"},
    f"{BATCH}.SuccessPolicyRule": {"succeededIndexes", "succeededCount"},
    f"{BATCH}.PodFailurePolicyOnExitCodesRequirement": {"containerName"},
    f"{BATCH}.PodFailurePolicyOnPodConditionsPattern": set(),
    f"{META}.ObjectMeta": {"deletionGracePeriodSeconds"},
    "k8s.io.api.authentication.v1.TokenRequestSpec": {"expirationSeconds"},
    f"{META}.OwnerReference": {"controller", "blockOwnerDeletion"},
    f"{CORE}.Secret": {"immutable"},
    f"{CORE}.ConfigMap": {"immutable"},
    f"{CORE}.ServiceAccount": {"automountServiceAccountToken"},
    f"{CORE}.PodSpec": {"terminationGracePeriodSeconds", "activeDeadlineSeconds", "automountServiceAccountToken",
                        "shareProcessNamespace", "priority", "enableServiceLinks", "preemptionPolicy",
                        "setHostnameAsFQDN", "hostUsers", "hostnameOverride"},
    f"{CORE}.Container": {"restartPolicy"},
    f"{CORE}.EphemeralContainerCommon": {"restartPolicy"},
    f"{CORE}.SecurityContext": {"privileged", "runAsUser", "runAsGroup", "runAsNonRoot", "readOnlyRootFilesystem",
                                "allowPrivilegeEscalation", "procMount"},
    f"{CORE}.PodSecurityContext": {"runAsUser", "runAsGroup", "runAsNonRoot", "fsGroup", "fsGroupChangePolicy",
                                   "supplementalGroupsPolicy", "seLinuxChangePolicy"},
    f"{CORE}.WindowsSecurityContextOptions": {"gmsaCredentialSpecName", "gmsaCredentialSpec", "runAsUserName",
                                              "hostProcess"},
    f"{CORE}.AppArmorProfile": {"localhostProfile"},
    f"{CORE}.SeccompProfile": {"localhostProfile"},
    f"{CORE}.Probe": {"terminationGracePeriodSeconds"},
    f"{CORE}.GRPCAction": {"service"},
    f"{CORE}.Lifecycle": {"stopSignal"},
    f"{CORE}.Toleration": {"tolerationSeconds"},
    f"{CORE}.TopologySpreadConstraint": {"minDomains", "nodeAffinityPolicy", "nodeTaintsPolicy"},
    f"{CORE}.VolumeMount": {"mountPropagation", "recursiveReadOnly"},
    f"{CORE}.KeyToPath": {"mode"},
    f"{CORE}.ConfigMapVolumeSource": {"defaultMode", "optional"},
    f"{CORE}.SecretVolumeSource": {"defaultMode", "optional"},
    f"{CORE}.DownwardAPIVolumeSource": {"defaultMode"},
    f"{CORE}.DownwardAPIVolumeFile": {"mode"},
    f"{CORE}.ProjectedVolumeSource": {"defaultMode"},
    f"{CORE}.ConfigMapProjection": {"optional"},
    f"{CORE}.SecretProjection": {"optional"},
    f"{CORE}.ConfigMapKeySelector": {"optional"},
    f"{CORE}.SecretKeySelector": {"optional"},
    f"{CORE}.ConfigMapEnvSource": {"optional"},
    f"{CORE}.SecretEnvSource": {"optional"},
    f"{CORE}.FileKeySelector": {"optional"},
    f"{CORE}.CSIVolumeSource": {"readOnly", "fsType"},
    f"{CORE}.ServiceAccountTokenProjection": {"expirationSeconds"},
    f"{CORE}.ClusterTrustBundleProjection": {"name", "signerName", "optional"},
    f"{CORE}.PodCertificateProjection": {"maxExpirationSeconds"},
    f"{CORE}.PersistentVolumeClaimSpec": {"storageClassName", "volumeMode", "volumeAttributesClassName"},
    f"{CORE}.HostPathVolumeSource": {"type"},
    f"{CORE}.ISCSIVolumeSource": {"initiatorName"},
    f"{CORE}.AzureDiskVolumeSource": {"cachingMode", "fsType", "readOnly", "kind"},
    f"{CORE}.TypedLocalObjectReference": {"apiGroup"},
    f"{CORE}.TypedObjectReference": {"apiGroup", "namespace"},
}

SCALARS = {"string", "bytes", "bool", "int32", "int64", "uint32", "uint64", "sint32", "sint64",
           "fixed32", "fixed64", "sfixed32", "sfixed64", "double", "float"}

PACKAGE_RE = re.compile(r"^\s*package\s+([\w.]+)\s*;", re.M)
MESSAGE_RE = re.compile(r"^message\s+(\w+)\s*\{(.*?)^\}", re.M | re.S)
FIELD_RE = re.compile(r"^\s*(optional|repeated|required)\s+([\w.]+)\s+(\w+)\s*=\s*(\d+)\s*;", re.M)
MAP_RE = re.compile(r"^\s*map<\s*(\w+)\s*,\s*([\w.]+)\s*>\s+(\w+)\s*=\s*(\d+)\s*;", re.M)


@dataclass(frozen=True)
class Field:
    number: int
    name: str
    type: str  # scalar name or fully qualified message name
    label: str  # "optional" | "repeated" | "map"
    key_type: str = ""


def resolve(type_name: str, package: str) -> str:
    if type_name in SCALARS:
        return type_name
    if type_name.startswith("."):
        return type_name[1:]
    if "." in type_name:
        return type_name
    return f"{package}.{type_name}"


def parse_proto(text: str) -> dict[str, list[Field]]:
    """All top-level messages of one generated.proto (k8s files have no nested messages)."""
    text = re.sub(r"//[^\n]*", "", text)
    pkg_match = PACKAGE_RE.search(text)
    if pkg_match is None:
        raise ValueError("no package statement")
    package = pkg_match.group(1)
    messages: dict[str, list[Field]] = {}
    for m in MESSAGE_RE.finditer(text):
        body = m.group(2)
        fields = [Field(int(n), name, resolve(t, package), label if label != "required" else "optional")
                  for label, t, name, n in FIELD_RE.findall(body)]
        fields += [Field(int(n), name, resolve(v, package), "map", resolve(k, package))
                   for k, v, name, n in MAP_RE.findall(body)]
        messages[f"{package}.{m.group(1)}"] = sorted(fields, key=lambda f: f.number)
    return messages


def openapi_name(message: str) -> str:
    return "io.k8s." + message.removeprefix("k8s.io.")  # k8s.io.api.core.v1.Pod → io.k8s.api.core.v1.Pod


def closure(messages: dict[str, list[Field]], roots: list[str]) -> list[str]:
    seen: list[str] = []
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        if name not in messages:
            raise SystemExit(f"message {name} is referenced but not in scripts/proto/*.proto")
        seen.append(name)
        if name in SPECIAL:
            continue
        todo.extend(f.type for f in messages[name] if f.type not in SCALARS)
    return sorted(seen)


def build(messages: dict[str, list[Field]], openapi: dict[str, dict[str, object]]) -> tuple[dict[str, object], list[str]]:
    report: list[str] = []
    names = closure(messages, list(KINDS.values()))
    out: dict[str, dict[str, list[str]]] = {}
    for name in names:
        props_obj = openapi.get(openapi_name(name), {}).get("properties")
        props = set(props_obj) if isinstance(props_obj, dict) else None
        pointers = POINTER_FIELDS.get(name, set())
        unknown_pointers = pointers - {f.name for f in messages[name]}
        if unknown_pointers:
            raise SystemExit(f"POINTER_FIELDS[{name}] names unknown fields {sorted(unknown_pointers)}")
        entries: dict[str, list[str]] = {}
        for f in messages[name]:
            flags = ""
            if f.label == "repeated":
                flags += "r"
            elif f.label == "map":
                if f.key_type != "string":
                    raise SystemExit(f"{name}.{f.name}: map key {f.key_type} is not string")
                flags += "m"
            if f.name in pointers:
                flags += "p"
            if (props is not None and name not in SPECIAL and f.label == "optional" and f.type not in SCALARS
                    and f.name not in props):
                inner = {g.name for g in messages.get(f.type, [])}
                if inner and inner <= props:
                    flags += "i"
                    report.append(f"inline: {name}.{f.name} ({f.type})")
            if props is not None and name not in SPECIAL and "i" not in flags and f.name not in props:
                report.append(f"WARNING: {name}.{f.name} is not an OpenAPI property")
            entries[str(f.number)] = [f.name, flags, f.type]
        if props is None and name not in SPECIAL:
            report.append(f"note: no OpenAPI schema for {name}; no inline detection")
        out[name] = entries
    schema: dict[str, object] = {
        "_about": "generated by scripts/gen_proto_schema.py from scripts/proto/*.proto; field number -> "
                  "[json name, flags (r=repeated, m=map<string,V>, i=inline, p=pointer), type]",
        "kinds": KINDS,
        "messages": out,
    }
    return schema, report


def main() -> int:
    messages: dict[str, list[Field]] = {}
    for path in sorted(PROTO_DIR.glob("*.proto")):
        messages.update(parse_proto(path.read_text()))
    openapi = json.loads(OPENAPI.read_text())
    schema, report = build(messages, openapi)
    OUT.write_text(json.dumps(schema, separators=(",", ":"), sort_keys=True) + "\n")
    for line in report:
        print(line)
    count = len(schema["messages"])  # type: ignore[arg-type]
    print(f"wrote {OUT.relative_to(ROOT)}: {count} messages, {OUT.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
