"""Name, label and ObjectMeta rules (apimachinery ``util/validation`` + ``ValidateObjectMeta``).

The messages are upstream's word for word (including the double space in their
``(e.g. 'my-name',  or '123-abc', ...)`` examples) because kubectl users and our
conformance scenarios compare them as text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from joblet.api.validation import field
from joblet.errors import Cause

DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
QUALIFIED_NAME_MAX = 63
LABEL_VALUE_MAX = 63
TOTAL_ANNOTATION_SIZE = 256 * 1024

_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE_FMT = "(" + _QUALIFIED_NAME_FMT + ")?"
_CONFIG_KEY_FMT = "[-._a-zA-Z0-9]+"

_DNS1123_LABEL_RE = re.compile("^" + _DNS1123_LABEL_FMT + "$")
_DNS1123_SUBDOMAIN_RE = re.compile("^" + _DNS1123_SUBDOMAIN_FMT + "$")
_QUALIFIED_NAME_RE = re.compile("^" + _QUALIFIED_NAME_FMT + "$")
_LABEL_VALUE_RE = re.compile("^" + _LABEL_VALUE_FMT + "$")
_CONFIG_KEY_RE = re.compile("^" + _CONFIG_KEY_FMT + "$")
_HTTP_PATH_FMT = "[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+"
_HTTP_PATH_RE = re.compile("^" + _HTTP_PATH_FMT + "$")


def regex_error(msg: str, fmt: str, *examples: str) -> str:
    """``validation.RegexError``."""
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    out = msg + " (e.g. "
    for i, ex in enumerate(examples):
        if i > 0:
            out += " or "
        out += f"'{ex}', "
    return out + f"regex used for validation is '{fmt}')"


def max_len_error(length: int) -> str:
    return f"must be no more than {length} characters"


def is_dns1123_label(value: str) -> list[str]:
    errs: list[str] = []
    if len(value) > DNS1123_LABEL_MAX:
        errs.append(max_len_error(DNS1123_LABEL_MAX))
    if not _DNS1123_LABEL_RE.match(value):
        errs.append(regex_error(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
            "and must start and end with an alphanumeric character", _DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errs


def is_dns1123_subdomain(value: str) -> list[str]:
    errs: list[str] = []
    if len(value) > DNS1123_SUBDOMAIN_MAX:
        errs.append(max_len_error(DNS1123_SUBDOMAIN_MAX))
    if not _DNS1123_SUBDOMAIN_RE.match(value):
        errs.append(regex_error(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
            "and must start and end with an alphanumeric character", _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def is_qualified_name(value: str) -> list[str]:
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + m for m in is_dns1123_subdomain(prefix))
    else:
        return [regex_error(
            "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and "
            "end with an alphanumeric character", _QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > QUALIFIED_NAME_MAX:
        errs.append("name part " + max_len_error(QUALIFIED_NAME_MAX))
    if not _QUALIFIED_NAME_RE.match(name):
        errs.append("name part " + regex_error(
            "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
            "alphanumeric character", _QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc"))
    return errs


def is_valid_label_value(value: str) -> list[str]:
    errs: list[str] = []
    if len(value) > LABEL_VALUE_MAX:
        errs.append(max_len_error(LABEL_VALUE_MAX))
    if not _LABEL_VALUE_RE.match(value):
        errs.append(regex_error(
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
            "and must start and end with an alphanumeric character", _LABEL_VALUE_FMT,
            "MyValue", "my_value", "12345"))
    return errs


def is_config_map_key(value: str) -> list[str]:
    errs: list[str] = []
    if len(value) > DNS1123_SUBDOMAIN_MAX:
        errs.append(max_len_error(DNS1123_SUBDOMAIN_MAX))
    if not _CONFIG_KEY_RE.match(value):
        errs.append(regex_error("a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
                                _CONFIG_KEY_FMT, "key.name", "KEY_NAME", "key-name"))
    if value == ".":
        errs.append("must not be '.'")
    elif value == "..":
        errs.append("must not be '..'")
    elif value.startswith(".."):
        errs.append("must not start with '..'")
    return errs


def _mask_trailing_dash(name: str) -> str:
    return name[:-1] + "a" if len(name) > 1 and name.endswith("-") else name


NameValidator = Callable[[str, bool], list[str]]


def name_is_dns_subdomain(name: str, prefix: bool) -> list[str]:
    return is_dns1123_subdomain(_mask_trailing_dash(name) if prefix else name)


def name_is_dns_label(name: str, prefix: bool) -> list[str]:
    return is_dns1123_label(_mask_trailing_dash(name) if prefix else name)


def validate_qualified_name(value: str, path: str) -> list[Cause]:
    return [field.invalid(path, value, m) for m in is_qualified_name(value)]


def validate_dns1123_label(value: str, path: str) -> list[Cause]:
    return [field.invalid(path, value, m) for m in is_dns1123_label(value)]


def validate_domain_prefixed_path(value: str, path: str) -> list[Cause]:
    """``IsDomainPrefixedPath`` (used by ``spec.managedBy``)."""
    if not value:
        return [field.required(path)]
    segments = value.split("/", 1)
    if len(segments) != 2 or not segments[0] or not segments[1]:
        return [field.invalid(path, value, 'must be a domain-prefixed path (such as "acme.io/foo")')]
    host, rest = segments
    errs = [field.invalid(path, host, m) for m in is_dns1123_subdomain(host)]
    if not _HTTP_PATH_RE.match(rest):
        errs.append(field.invalid(path, rest, regex_error("Invalid path", _HTTP_PATH_FMT)))
    return errs


def validate_labels(labels: Any, path: str) -> list[Cause]:
    errs: list[Cause] = []
    if labels is None:
        return errs
    if not isinstance(labels, dict):
        return [field.invalid(path, labels, "must be a map of string keys to string values")]
    for key, value in labels.items():
        errs.extend(validate_qualified_name(str(key), path))
        if not isinstance(value, str):
            errs.append(field.invalid(f"{path}[{key}]", value, "must be a string"))
            continue
        errs.extend(field.invalid(path, value, m) for m in is_valid_label_value(value))
    return errs


def validate_annotations(annotations: Any, path: str) -> list[Cause]:
    errs: list[Cause] = []
    if annotations is None:
        return errs
    if not isinstance(annotations, dict):
        return [field.invalid(path, annotations, "must be a map of string keys to string values")]
    total = 0
    for key, value in annotations.items():
        errs.extend(validate_qualified_name(str(key).lower(), path))
        total += len(str(key)) + len(str(value))
    if total > TOTAL_ANNOTATION_SIZE:
        errs.append(field.too_long(path, TOTAL_ANNOTATION_SIZE))
    return errs


def validate_owner_references(refs: Any, path: str) -> list[Cause]:
    errs: list[Cause] = []
    if refs is None:
        return errs
    controllers = []
    for i, ref in enumerate(refs if isinstance(refs, list) else []):
        p = f"{path}[{i}]"
        if not isinstance(ref, dict):
            errs.append(field.invalid(p, ref, "must be an object"))
            continue
        if not ref.get("apiVersion"):
            errs.append(field.invalid(f"{p}.apiVersion", ref.get("apiVersion", ""), "version must not be empty"))
        if not ref.get("kind"):
            errs.append(field.invalid(f"{p}.kind", ref.get("kind", ""), "kind must not be empty"))
        if not ref.get("name"):
            errs.append(field.invalid(f"{p}.name", ref.get("name", ""), "name must not be empty"))
        if not ref.get("uid"):
            errs.append(field.invalid(f"{p}.uid", ref.get("uid", ""), "uid must not be empty"))
        if ref.get("controller"):
            controllers.append(f"{ref.get('kind')}/{ref.get('name')}")
    if len(controllers) > 1:
        errs.append(field.invalid(path, refs, "Only one reference can have Controller set to true. Found \"true\" in "
                                  "references for " + " and ".join(controllers)))
    return errs


def validate_finalizers(finalizers: Any, path: str) -> list[Cause]:
    errs: list[Cause] = []
    seen: set[str] = set()
    for item in finalizers or []:
        errs.extend(validate_qualified_name(str(item), path))
        if "/" not in str(item) and str(item) not in {"orphan", "foregroundDeletion", "kubernetes"}:
            errs.append(field.invalid(path, item, "name is neither a standard finalizer name nor is it fully qualified"))
        if item in seen:
            errs.append(field.duplicate(path, item))
        seen.add(str(item))
    return errs


def validate_object_meta(obj: dict[str, Any], namespaced: bool,
                         name_fn: NameValidator = name_is_dns_subdomain) -> list[Cause]:
    """``ValidateObjectMeta``: name/generateName, namespace, labels, annotations, owners, finalizers."""
    meta = obj.get("metadata") or {}
    errs: list[Cause] = []
    name = meta.get("name") or ""
    generate_name = meta.get("generateName") or ""
    if generate_name:
        errs.extend(field.invalid("metadata.generateName", generate_name, m) for m in name_fn(generate_name, True))
    if not name:
        errs.append(field.required("metadata.name", "name or generateName is required"))
    else:
        errs.extend(field.invalid("metadata.name", name, m) for m in name_fn(name, False))
    namespace = meta.get("namespace") or ""
    if namespaced:
        if not namespace:
            errs.append(field.required("metadata.namespace"))
        else:
            errs.extend(field.invalid("metadata.namespace", namespace, m) for m in is_dns1123_label(namespace))
    elif namespace:
        errs.append(field.forbidden("metadata.namespace", "not allowed on this type"))
    generation = meta.get("generation")
    if isinstance(generation, int):
        errs.extend(field.nonnegative(generation, "metadata.generation"))
    errs.extend(validate_labels(meta.get("labels"), "metadata.labels"))
    errs.extend(validate_annotations(meta.get("annotations"), "metadata.annotations"))
    errs.extend(validate_owner_references(meta.get("ownerReferences"), "metadata.ownerReferences"))
    errs.extend(validate_finalizers(meta.get("finalizers"), "metadata.finalizers"))
    return errs


def validate_object_meta_update(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    """``ValidateObjectMetaUpdate``: identity is immutable; no new finalizers while deleting."""
    nm = new.get("metadata") or {}
    om = old.get("metadata") or {}
    errs: list[Cause] = []
    for key in ("name", "namespace"):
        errs.extend(field.immutable(nm.get(key) or "", om.get(key) or "", f"metadata.{key}"))
    # An update without uid/creationTimestamp keeps the stored ones (upstream's BeforeUpdate
    # copies them over before validating), so only a different non-empty value is an error.
    for key in ("uid", "creationTimestamp"):
        if nm.get(key):
            errs.extend(field.immutable(nm.get(key), om.get(key) or "", f"metadata.{key}"))
    if om.get("deletionTimestamp"):
        old_fin = set(om.get("finalizers") or [])
        added = [f for f in nm.get("finalizers") or [] if f not in old_fin]
        if added:
            errs.append(field.forbidden(
                "metadata.finalizers",
                "no new finalizers can be added if the object is being deleted, found new finalizers "
                + field.format_value(added)))
    # The stored object passed these checks when it was written; a part the update leaves as it
    # was cannot fail them now (they are pure), so only changed parts are validated again.
    for key, check in _META_PARTS:
        if nm.get(key) != om.get(key):
            errs.extend(check(nm.get(key), f"metadata.{key}"))
    return errs


_META_PARTS: tuple[tuple[str, Callable[[Any, str], list[Cause]]], ...] = (
    ("labels", lambda v, p: validate_labels(v, p)),
    ("annotations", lambda v, p: validate_annotations(v, p)),
    ("ownerReferences", lambda v, p: validate_owner_references(v, p)),
    ("finalizers", lambda v, p: validate_finalizers(v, p)),
)


def validate_label_selector(selector: Any, path: str) -> list[Cause]:
    """``ValidateLabelSelector`` (matchLabels + matchExpressions)."""
    errs: list[Cause] = []
    if not isinstance(selector, dict):
        return [field.invalid(path, selector, "must be a label selector")]
    errs.extend(validate_labels(selector.get("matchLabels"), f"{path}.matchLabels"))
    for i, req in enumerate(selector.get("matchExpressions") or []):
        p = f"{path}.matchExpressions[{i}]"
        op = req.get("operator")
        values = req.get("values") or []
        if op in ("In", "NotIn"):
            if not values:
                errs.append(field.required(f"{p}.values", "must be specified when `operator` is 'In' or 'NotIn'"))
        elif op in ("Exists", "DoesNotExist"):
            if values:
                errs.append(field.forbidden(f"{p}.values",
                                            "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
        else:
            errs.append(field.invalid(f"{p}.operator", op, "not a valid selector operator"))
        errs.extend(validate_qualified_name(str(req.get("key") or ""), f"{p}.key"))
        for j, v in enumerate(values):
            errs.extend(field.invalid(f"{p}.values[{j}]", v, m) for m in is_valid_label_value(str(v)))
    return errs
