"""Core (``v1``) object validation: a practical subset of ``pkg/apis/core/validation``.

Covers what joblet actually runs: pods (containers, volumes, mounts, resources, the
update rules), pod templates inside Jobs, and the small objects (Namespace, Secret,
ConfigMap, ServiceAccount, Node). Also the resource ``Quantity`` parser the scheduler and
the cgroup code use, so every layer agrees on what ``"500m"`` or ``"1Gi"`` means.

One module (~600 lines): upstream's core validation is one package too; pods, volumes, Secrets
and ConfigMaps share its field helpers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from joblet.api.validation import field
from joblet.api.validation import meta as metav
from joblet.errors import Cause

MAX_INT32 = 2**31 - 1

# ---------------------------------------------------------------- quantities

QUANTITY_REGEX = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
_QUANTITY_RE = re.compile(QUANTITY_REGEX)
_SUFFIXES: dict[str, Decimal] = {
    "": Decimal(1),
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"),
    "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"),
    "T": Decimal("1e12"), "P": Decimal("1e15"), "E": Decimal("1e18"),
    "Ki": Decimal(2**10), "Mi": Decimal(2**20), "Gi": Decimal(2**30),
    "Ti": Decimal(2**40), "Pi": Decimal(2**50), "Ei": Decimal(2**60),
}
_EXPONENT_RE = re.compile(r"^[eE]([-+]?[0-9]+)$")
_NUMBER_RE = re.compile(r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$")


class QuantityError(ValueError):
    """Not a Kubernetes quantity; ``str(err)`` is upstream's decode message."""


def parse_quantity(value: str | int | float | Decimal) -> Decimal:
    """``resource.ParseQuantity``: ``"500m"`` → 0.5, ``"1Gi"`` → 1073741824, ``"1e3"`` → 1000."""
    if isinstance(value, bool):
        raise QuantityError(f"quantities must match the regular expression '{QUANTITY_REGEX}'")
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    s = str(value).strip()
    m = _QUANTITY_RE.match(s)
    if not m or not _NUMBER_RE.match(m.group(1)):
        raise QuantityError(f"quantities must match the regular expression '{QUANTITY_REGEX}'")
    number, suffix = m.group(1), m.group(2)
    try:
        base = Decimal(number)
    except InvalidOperation as exc:  # pragma: no cover - guarded by the regexes
        raise QuantityError(f"quantities must match the regular expression '{QUANTITY_REGEX}'") from exc
    if suffix in _SUFFIXES:
        return base * _SUFFIXES[suffix]
    exp = _EXPONENT_RE.match(suffix)
    if exp:
        return base.scaleb(int(exp.group(1)))
    raise QuantityError("unable to parse quantity's suffix")


def cpu_millis(value: str | int | float | Decimal) -> int:
    """CPU quantity in millicores, rounded up like ``Quantity.MilliValue``."""
    return int((parse_quantity(value) * 1000).to_integral_value(rounding="ROUND_CEILING"))


def quantity_value(value: str | int | float | Decimal) -> int:
    """A quantity as an integer, rounded up like ``Quantity.Value`` (bytes, pids ...)."""
    return int(parse_quantity(value).to_integral_value(rounding="ROUND_CEILING"))


# ---------------------------------------------------------------- containers

RESTART_POLICIES = ("Always", "OnFailure", "Never")
DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
TERMINATION_MESSAGE_POLICIES = ("File", "FallbackToLogsOnError")
PROTOCOLS = ("SCTP", "TCP", "UDP")
VOLUME_SOURCES = (
    "emptyDir", "hostPath", "configMap", "secret", "downwardAPI", "projected", "persistentVolumeClaim",
    "nfs", "ephemeral", "csi", "image", "iscsi", "glusterfs", "rbd", "cephfs", "flexVolume", "cinder",
    "fc", "azureFile", "azureDisk", "vsphereVolume", "quobyte", "photonPersistentDisk", "portworxVolume",
    "scaleIO", "storageos", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "flocker",
)
TOLERATION_OPERATORS = ("Equal", "Exists")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def validate_resources(resources: Any, path: str) -> list[Cause]:
    """Quantities parse, are non-negative, and requests do not exceed limits."""
    errs: list[Cause] = []
    if not isinstance(resources, dict):
        return errs
    parsed: dict[str, dict[str, Decimal]] = {"limits": {}, "requests": {}}
    for kind in ("limits", "requests"):
        for name, raw in (resources.get(kind) or {}).items():
            p = f"{path}.{kind}[{name}]"
            try:
                q = parse_quantity(raw)
            except QuantityError as exc:
                errs.append(field.invalid(p, raw, str(exc)))
                continue
            if q < 0:
                errs.append(field.invalid(p, raw, "must be greater than or equal to 0"))
                continue
            parsed[kind][name] = q
    for name, req in parsed["requests"].items():
        limit = parsed["limits"].get(name)
        if limit is not None and req > limit:
            raw_req = resources["requests"][name]
            raw_limit = resources["limits"][name]
            errs.append(field.invalid(
                f"{path}.requests[{name}]", str(raw_req),
                f"must be less than or equal to {name} limit of {raw_limit}"))
    return errs


#: the field each volume source cannot do without
VOLUME_SOURCE_REQUIRED = (("hostPath", "path"), ("configMap", "name"), ("secret", "secretName"),
                          ("persistentVolumeClaim", "claimName"))


def _named_items(items: Any, path: str, errs: list[Cause]) -> Iterator[tuple[str, dict[str, Any], str]]:
    """(path, item, its name or "") of each object in a list such as ``env`` or ``volumes``;
    an item that is not an object is reported in ``errs`` and skipped."""
    for i, item in enumerate(items or []):
        p = f"{path}[{i}]"
        if not isinstance(item, dict):
            errs.append(field.invalid(p, item, "must be an object"))
            continue
        yield p, item, item.get("name") or ""


def _validate_env(env: Any, path: str) -> list[Cause]:
    errs: list[Cause] = []
    for p, var, name in _named_items(env, path, errs):
        if not name:
            errs.append(field.required(f"{p}.name"))
        elif "=" in name or not name.isprintable() or not name.isascii():
            errs.append(field.invalid(f"{p}.name", name,
                                      "a valid environment variable name must consist only of printable ASCII "
                                      "characters other than '='"))
        source = var.get("valueFrom")
        if source is not None:
            kinds = [k for k in ("fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef", "fileKeyRef")
                     if source.get(k) is not None]
            if var.get("value"):
                errs.append(field.invalid(f"{p}.valueFrom", "",
                                          "may not be specified when `value` is not empty"))
            if not kinds:
                errs.append(field.invalid(f"{p}.valueFrom", "", "must specify one of: `fieldRef`, "
                                          "`resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"))
            elif len(kinds) > 1:
                errs.append(field.invalid(f"{p}.valueFrom", "",
                                          "may not have more than one field specified at a time"))
            for ref in ("configMapKeyRef", "secretKeyRef"):
                r = source.get(ref)
                if isinstance(r, dict) and not r.get("key"):
                    errs.append(field.required(f"{p}.valueFrom.{ref}.key"))
            fr = source.get("fieldRef")
            if isinstance(fr, dict) and not fr.get("fieldPath"):
                errs.append(field.required(f"{p}.valueFrom.fieldRef.fieldPath"))
    return errs


def _validate_container(ctr: Any, path: str, volumes: set[str]) -> list[Cause]:
    errs: list[Cause] = []
    if not isinstance(ctr, dict):
        return [field.invalid(path, ctr, "must be an object")]
    name = ctr.get("name") or ""
    if not name:
        errs.append(field.required(f"{path}.name"))
    else:
        errs.extend(metav.validate_dns1123_label(name, f"{path}.name"))
    if not ctr.get("image"):
        errs.append(field.required(f"{path}.image"))
    policy = ctr.get("imagePullPolicy")
    if policy is not None and policy not in PULL_POLICIES:
        if policy == "":
            errs.append(field.required(f"{path}.imagePullPolicy"))
        else:
            errs.append(field.not_supported(f"{path}.imagePullPolicy", policy, PULL_POLICIES))
    tmp = ctr.get("terminationMessagePolicy")
    if tmp is not None and tmp not in TERMINATION_MESSAGE_POLICIES:
        if tmp == "":
            errs.append(field.required(f"{path}.terminationMessagePolicy",
                                       "must be 'File' or 'FallbackToLogsOnError'"))
        else:
            errs.append(field.invalid(f"{path}.terminationMessagePolicy", tmp,
                                      "must be 'File' or 'FallbackToLogsOnError'"))
    for i, port in enumerate(ctr.get("ports") or []):
        p = f"{path}.ports[{i}]"
        cp = port.get("containerPort")
        if not _is_int(cp) or not 1 <= cp <= 65535:
            errs.append(field.invalid(f"{p}.containerPort", cp, "must be between 1 and 65535, inclusive"))
        proto = port.get("protocol")
        if proto is not None and proto not in PROTOCOLS:
            errs.append(field.not_supported(f"{p}.protocol", proto, PROTOCOLS))
    errs.extend(_validate_env(ctr.get("env"), f"{path}.env"))
    mount_paths: set[str] = set()
    for i, mount in enumerate(ctr.get("volumeMounts") or []):
        p = f"{path}.volumeMounts[{i}]"
        mname = mount.get("name") or ""
        if not mname:
            errs.append(field.required(f"{p}.name"))
        elif mname not in volumes:
            errs.append(field.not_found(f"{p}.name", mname))
        mpath = mount.get("mountPath") or ""
        if not mpath:
            errs.append(field.required(f"{p}.mountPath"))
        elif mpath in mount_paths:
            errs.append(field.invalid(f"{p}.mountPath", mpath, "must be unique"))
        mount_paths.add(mpath)
        if isinstance(mount.get("subPath"), str) and mount["subPath"]:
            errs.extend(validate_local_descending_path(mount["subPath"], f"{p}.subPath"))
    errs.extend(validate_resources(ctr.get("resources"), f"{path}.resources"))
    return errs


def _validate_volumes(volumes: Any, path: str) -> tuple[set[str], list[Cause]]:
    errs: list[Cause] = []
    names: set[str] = set()
    for p, vol, name in _named_items(volumes, path, errs):
        if not name:
            errs.append(field.required(f"{p}.name"))
        else:
            errs.extend(metav.validate_dns1123_label(name, f"{p}.name"))
            if name in names:
                errs.append(field.duplicate(f"{p}.name", name))
            names.add(name)
        sources = [k for k in VOLUME_SOURCES if vol.get(k) is not None]
        if not sources:
            errs.append(field.required(p, "must specify a volume type"))
        elif len(sources) > 1:
            errs.append(field.forbidden(f"{p}.{sources[1]}", "may not specify more than 1 volume type"))
        for source_name, required in VOLUME_SOURCE_REQUIRED:
            source = vol.get(source_name)
            if isinstance(source, dict) and not source.get(required):
                errs.append(field.required(f"{p}.{source_name}.{required}"))
        errs.extend(_validate_volume_files(vol, p))
    return names, errs


# ------------------------------------------------- paths and modes of volume files (SEC-04)

FILE_MODE_ERROR = "must be a number between 0 and 0777 (octal), both inclusive"


def validate_local_descending_path(target: str, path: str) -> list[Cause]:
    """Upstream ``validateLocalDescendingPath``: relative, no ``..`` element."""
    errs: list[Cause] = []
    if target.startswith("/"):
        errs.append(field.invalid(path, target, "must be a relative path"))
    if ".." in target.split("/"):
        errs.append(field.invalid(path, target, "must not contain '..'"))
    return errs


def validate_local_non_reserved_path(target: str, path: str) -> list[Cause]:
    """Upstream ``ValidateLocalNonReservedPath``: also no leading ``..`` (``..data`` is the writer's)."""
    errs = validate_local_descending_path(target, path)
    if target.startswith("..") and not target.startswith("../"):
        errs.append(field.invalid(path, target, "must not start with '..'"))
    return errs


def _validate_mode(mode: Any, path: str) -> list[Cause]:
    if mode is None or not _is_int(mode):
        return []
    return [field.invalid(path, mode, FILE_MODE_ERROR)] if not 0 <= mode <= 0o777 else []


def _validate_item_path(item: dict[str, Any], path: str) -> list[Cause]:
    target = item.get("path")
    if not target:
        return [field.required(f"{path}.path")]
    return validate_local_non_reserved_path(str(target), f"{path}.path") + _validate_mode(item.get("mode"),
                                                                                         f"{path}.mode")


def _validate_key_to_paths(items: Any, path: str) -> list[Cause]:
    """Upstream ``validateKeyToPath`` for each of ``items``."""
    errs: list[Cause] = []
    for i, item in enumerate(items if isinstance(items, list) else []):
        if isinstance(item, dict):
            if not item.get("key"):
                errs.append(field.required(f"{path}[{i}].key"))
            errs.extend(_validate_item_path(item, f"{path}[{i}]"))
    return errs


def _validate_downward_items(items: Any, path: str) -> list[Cause]:
    return [e for i, item in enumerate(items if isinstance(items, list) else []) if isinstance(item, dict)
            for e in _validate_item_path(item, f"{path}[{i}]")]


def _validate_volume_files(vol: dict[str, Any], p: str) -> list[Cause]:
    """Item paths and modes of configMap/secret/downwardAPI/projected volumes, hostPath ``..``."""
    errs: list[Cause] = []
    hp = vol.get("hostPath")
    if isinstance(hp, dict) and isinstance(hp.get("path"), str) and ".." in hp["path"].split("/"):
        errs.append(field.invalid(f"{p}.hostPath.path", hp["path"], "must not contain '..'"))
    for key in ("configMap", "secret", "downwardAPI", "projected"):
        src = vol.get(key)
        if not isinstance(src, dict):
            continue
        errs.extend(_validate_mode(src.get("defaultMode"), f"{p}.{key}.defaultMode"))
        if key == "downwardAPI":
            errs.extend(_validate_downward_items(src.get("items"), f"{p}.{key}.items"))
        elif key != "projected":
            errs.extend(_validate_key_to_paths(src.get("items"), f"{p}.{key}.items"))
    projected = vol.get("projected")
    sources = projected.get("sources") if isinstance(projected, dict) else None
    for i, source in enumerate(sources if isinstance(sources, list) else []):
        sp = f"{p}.projected.sources[{i}]"
        if not isinstance(source, dict):
            continue
        for key in ("configMap", "secret"):
            if isinstance(source.get(key), dict):
                errs.extend(_validate_key_to_paths(source[key].get("items"), f"{sp}.{key}.items"))
        if isinstance(source.get("downwardAPI"), dict):
            errs.extend(_validate_downward_items(source["downwardAPI"].get("items"), f"{sp}.downwardAPI.items"))
        token = source.get("serviceAccountToken")
        if isinstance(token, dict):
            if not token.get("path"):
                errs.append(field.required(f"{sp}.serviceAccountToken.path"))
            else:
                errs.extend(validate_local_non_reserved_path(str(token["path"]), f"{sp}.serviceAccountToken.path"))
    return errs


def _validate_tolerations(tolerations: Any, path: str) -> list[Cause]:
    errs: list[Cause] = []
    for i, tol in enumerate(tolerations or []):
        p = f"{path}[{i}]"
        op = tol.get("operator")
        if op is not None and op not in TOLERATION_OPERATORS:
            errs.append(field.not_supported(f"{p}.operator", op, TOLERATION_OPERATORS))
        if op == "Exists" and tol.get("value"):
            errs.append(field.invalid(f"{p}.operator", tol, "value must be empty when `operator` is 'Exists'"))
        if not tol.get("key") and op != "Exists":
            errs.append(field.invalid(f"{p}.operator", op, "operator must be Exists when `key` is empty, which "
                                      "means \"match all values and all keys\""))
        if tol.get("key"):
            errs.extend(metav.validate_qualified_name(tol["key"], f"{p}.key"))
        effect = tol.get("effect")
        if effect and effect not in TAINT_EFFECTS:
            errs.append(field.not_supported(f"{p}.effect", effect, TAINT_EFFECTS))
        if tol.get("tolerationSeconds") is not None and effect != "NoExecute":
            errs.append(field.invalid(f"{p}.effect", effect,
                                      "effect must be 'NoExecute' when `tolerationSeconds` is set"))
    return errs


def validate_pod_spec(spec: Any, path: str, *, template: bool = False) -> list[Cause]:
    """``ValidatePodSpec`` subset. ``template`` skips the empty-restartPolicy check (the Job
    rule reports it with its own wording)."""
    if not isinstance(spec, dict):
        return [field.required(path)]
    errs: list[Cause] = []
    volumes, vol_errs = _validate_volumes(spec.get("volumes"), f"{path}.volumes")
    errs.extend(vol_errs)
    containers = spec.get("containers") or []
    if not containers:
        errs.append(field.required(f"{path}.containers"))
    seen: set[str] = set()
    for group in ("initContainers", "containers"):
        for i, ctr in enumerate(spec.get(group) or []):
            p = f"{path}.{group}[{i}]"
            errs.extend(_validate_container(ctr, p, volumes))
            name = ctr.get("name") if isinstance(ctr, dict) else None
            if name:
                if name in seen:
                    errs.append(field.duplicate(f"{p}.name", name))
                seen.add(name)
    restart = spec.get("restartPolicy")
    if restart is None or restart == "":
        if not template:
            errs.append(field.required(f"{path}.restartPolicy"))
    elif restart not in RESTART_POLICIES:
        errs.append(field.not_supported(f"{path}.restartPolicy", restart, RESTART_POLICIES))
    dns = spec.get("dnsPolicy")
    if dns is not None and dns not in DNS_POLICIES:
        errs.append(field.not_supported(f"{path}.dnsPolicy", dns, DNS_POLICIES))
    ads = spec.get("activeDeadlineSeconds")
    if ads is not None and (not _is_int(ads) or not 1 <= ads <= MAX_INT32):
        errs.append(field.invalid(f"{path}.activeDeadlineSeconds", ads,
                                  f"must be between 1 and {MAX_INT32}, inclusive"))
    tgps = spec.get("terminationGracePeriodSeconds")
    if _is_int(tgps):
        errs.extend(field.nonnegative(tgps, f"{path}.terminationGracePeriodSeconds"))
    errs.extend(metav.validate_labels(spec.get("nodeSelector"), f"{path}.nodeSelector"))
    sa = spec.get("serviceAccountName")
    if sa:
        errs.extend(field.invalid(f"{path}.serviceAccountName", sa, m) for m in metav.is_dns1123_subdomain(sa))
    if spec.get("nodeName"):
        errs.extend(field.invalid(f"{path}.nodeName", spec["nodeName"], m)
                    for m in metav.is_dns1123_subdomain(spec["nodeName"]))
    if spec.get("hostname"):
        errs.extend(metav.validate_dns1123_label(spec["hostname"], f"{path}.hostname"))
    if spec.get("subdomain"):
        errs.extend(metav.validate_dns1123_label(spec["subdomain"], f"{path}.subdomain"))
    errs.extend(_validate_tolerations(spec.get("tolerations"), f"{path}.tolerations"))
    sc = spec.get("securityContext") or {}
    for key in ("runAsUser", "runAsGroup", "fsGroup"):
        v = sc.get(key)
        if v is not None and (not _is_int(v) or not 0 <= v <= MAX_INT32):
            errs.append(field.invalid(f"{path}.securityContext.{key}", v,
                                      f"must be between 0 and {MAX_INT32}, inclusive"))
    return errs


def validate_pod_template_spec(template: Any, path: str) -> list[Cause]:
    """``ValidatePodTemplateSpec``: template labels/annotations and the pod spec."""
    if not isinstance(template, dict):
        return [field.required(path)]
    tmeta = template.get("metadata") or {}
    errs = metav.validate_labels(tmeta.get("labels"), f"{path}.metadata.labels")
    errs.extend(metav.validate_annotations(tmeta.get("annotations"), f"{path}.metadata.annotations"))
    errs.extend(validate_pod_spec(template.get("spec"), f"{path}.spec", template=True))
    return errs


# ---------------------------------------------------------------- pods

POD_UPDATE_FORBIDDEN = (
    "pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
    "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
    "(allow it to be set to 1 if it was previously negative)"
)


def validate_pod(pod: dict[str, Any]) -> list[Cause]:
    errs = metav.validate_object_meta(pod, namespaced=True)
    errs.extend(validate_pod_spec(pod.get("spec"), "spec"))
    return errs


def _spec_diff(old: dict[str, Any], new: dict[str, Any]) -> str:
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    lines = [f"  spec.{k}: {field.format_value(old.get(k))} -> {field.format_value(new.get(k))}" for k in keys]
    return "\n".join(lines)


def validate_pod_update(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    """``ValidatePodUpdate``: the spec is frozen except images, a shrinking
    activeDeadlineSeconds, added tolerations, and a first ``nodeName``."""
    errs = metav.validate_object_meta_update(new, old)
    nspec: dict[str, Any] = dict(new.get("spec") or {})
    ospec: dict[str, Any] = old.get("spec") or {}
    if nspec == ospec or (not ospec.get("nodeName") and {**nspec, "nodeName": None} == {**ospec, "nodeName": None}):
        # Most pod writes are status, finalizers or the binding: the stored spec was validated
        # when the pod was created, so only the new metadata needs a look.
        nm, om = new.get("metadata") or {}, old.get("metadata") or {}
        if any(nm.get(k) != om.get(k) for k in ("generateName", "generation")):
            errs.extend(metav.validate_object_meta(new, namespaced=True))  # the rest: the update check above
        return errs
    errs.extend(validate_pod(new))
    for group in ("containers", "initContainers"):
        if len(nspec.get(group) or []) != len(ospec.get(group) or []):
            errs.append(field.forbidden(f"spec.{group}", "pod updates may not add or remove containers"))
            return errs
    new_ads, old_ads = nspec.get("activeDeadlineSeconds"), ospec.get("activeDeadlineSeconds")
    if new_ads is not None:
        if not _is_int(new_ads) or not 0 <= new_ads <= MAX_INT32:
            errs.append(field.invalid("spec.activeDeadlineSeconds", new_ads,
                                      f"must be between 0 and {MAX_INT32}, inclusive"))
            return errs
        if old_ads is not None and old_ads < new_ads:
            errs.append(field.invalid("spec.activeDeadlineSeconds", new_ads,
                                      "must be less than or equal to previous value"))
            return errs
    elif old_ads is not None:
        errs.append(field.invalid("spec.activeDeadlineSeconds", None,
                                  "must not update from a positive integer to nil value"))
    new_tols = nspec.get("tolerations") or []
    for i, tol in enumerate(ospec.get("tolerations") or []):
        if not any({k: v for k, v in t.items() if k != "tolerationSeconds"}
                   == {k: v for k, v in tol.items() if k != "tolerationSeconds"} for t in new_tols):
            errs.append(field.forbidden(f"spec.tolerations[{i}]",
                                        "existing toleration can not be modified except its tolerationSeconds"))
    munged = dict(nspec)
    for group in ("containers", "initContainers"):
        if group in munged:
            munged[group] = [
                {**ctr, "image": old_ctr.get("image")} if "image" in old_ctr else
                {k: v for k, v in ctr.items() if k != "image"}
                for ctr, old_ctr in zip(munged[group], ospec.get(group) or [], strict=False)
            ]
    for key in ("activeDeadlineSeconds", "tolerations", "schedulingGates"):
        if key in ospec:
            munged[key] = ospec[key]
        else:
            munged.pop(key, None)
    if not ospec.get("nodeName"):
        if "nodeName" in ospec:
            munged["nodeName"] = ospec["nodeName"]
        else:
            munged.pop("nodeName", None)
    if munged != ospec:
        errs.append(field.forbidden("spec", POD_UPDATE_FORBIDDEN + "\n" + _spec_diff(ospec, munged)))
    return errs


# ---------------------------------------------------------------- small objects

MAX_SECRET_SIZE = 1024 * 1024


def validate_namespace(ns: dict[str, Any]) -> list[Cause]:
    errs = metav.validate_object_meta(ns, namespaced=False, name_fn=metav.name_is_dns_label)
    for i, fin in enumerate((ns.get("spec") or {}).get("finalizers") or []):
        errs.extend(metav.validate_qualified_name(str(fin), f"spec.finalizers[{i}]"))
    return errs


def validate_namespace_update(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    errs = metav.validate_object_meta_update(new, old)
    errs.extend(validate_namespace(new))
    return errs


def _validate_data_keys(obj: dict[str, Any], keys: tuple[str, ...], check_dup: bool) -> list[Cause]:
    errs: list[Cause] = []
    seen: set[str] = set()
    total = 0
    for section in keys:
        data = obj.get(section) or {}
        if not isinstance(data, dict):
            errs.append(field.invalid(section, data, "must be a map"))
            continue
        for key, value in data.items():
            p = f"{section}[{key}]"
            errs.extend(field.invalid(p, key, m) for m in metav.is_config_map_key(key))
            if check_dup and key in seen:
                errs.append(field.invalid(p, key, "duplicate of key present in " + keys[0]))
            seen.add(key)
            total += len(value) if isinstance(value, str) else len(orjson.dumps(value))
    if total > MAX_SECRET_SIZE:
        errs.append(field.too_long(keys[0], MAX_SECRET_SIZE))
    return errs


def validate_secret(secret: dict[str, Any]) -> list[Cause]:
    return _validate_data_object(secret, ("data", "stringData"), check_dup=False)


def validate_secret_update(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    type_change = field.immutable(new.get("type") or "Opaque", old.get("type") or "Opaque", "type")
    return _validate_data_update(new, old, validate_secret, type_change, ("data",))


def validate_configmap(cm: dict[str, Any]) -> list[Cause]:
    return _validate_data_object(cm, ("data", "binaryData"), check_dup=True)


def validate_configmap_update(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    return _validate_data_update(new, old, validate_configmap, [], ("data", "binaryData"))


def _validate_data_object(obj: dict[str, Any], keys: tuple[str, str], check_dup: bool) -> list[Cause]:
    """A Secret or ConfigMap: metadata and its two data maps."""
    return [*metav.validate_object_meta(obj, namespaced=True), *_validate_data_keys(obj, keys, check_dup=check_dup)]


def _validate_data_update(new: dict[str, Any], old: dict[str, Any],
                          validate: Callable[[dict[str, Any]], list[Cause]], extra: list[Cause],
                          immutable_keys: tuple[str, ...]) -> list[Cause]:
    """A Secret or ConfigMap update: metadata, the new object, ``extra``, and nothing of the
    data changed once ``immutable`` was set."""
    errs = metav.validate_object_meta_update(new, old)
    errs.extend(validate(new))
    errs.extend(extra)
    if old.get("immutable"):
        if not new.get("immutable"):
            errs.append(field.forbidden("immutable", "field is immutable when `immutable` is set"))
        for key in immutable_keys:
            if (new.get(key) or {}) != (old.get(key) or {}):
                errs.append(field.forbidden(key, "field is immutable when `immutable` is set"))
    return errs


def validate_service_account(sa: dict[str, Any]) -> list[Cause]:
    return metav.validate_object_meta(sa, namespaced=True)


def validate_node(node: dict[str, Any]) -> list[Cause]:
    errs = metav.validate_object_meta(node, namespaced=False)
    for kind in ("capacity", "allocatable"):
        for name, raw in ((node.get("status") or {}).get(kind) or {}).items():
            try:
                parse_quantity(raw)
            except QuantityError as exc:
                errs.append(field.invalid(f"status.{kind}[{name}]", raw, str(exc)))
    return errs
