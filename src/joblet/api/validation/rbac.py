"""Defaulting and validation of ``rbac.authorization.k8s.io/v1`` objects, as upstream's
``pkg/apis/rbac/validation`` and ``pkg/apis/rbac/v1/defaults.go`` (paths and messages verbatim).

Why here: Roles and bindings decide who may do what, so a malformed one must be refused at
write time with the message users find in upstream's documentation, not silently ignored by
the authorizer later.
"""

from __future__ import annotations

from typing import Any

from joblet.api.validation import field
from joblet.api.validation import meta as metav
from joblet.errors import Cause

Obj = dict[str, Any]
GROUP = "rbac.authorization.k8s.io"
SUBJECT_KINDS = ("ServiceAccount", "User", "Group")


def path_segment_name(name: str, prefix: bool) -> list[str]:
    """``ValidateRBACName`` = ``path.IsValidPathSegmentName`` (``system:basic-user`` is valid)."""
    if not prefix and name in (".", ".."):
        return [f"may not be '{name}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in name]


# ---------------------------------------------------------------------------- defaults


def default_subjects(obj: Obj) -> None:
    """``SetDefaults_Subject`` and ``SetDefaults_*RoleBinding`` (roleRef.apiGroup)."""
    ref = obj.get("roleRef")
    if isinstance(ref, dict) and not ref.get("apiGroup"):
        ref["apiGroup"] = GROUP
    for subject in obj.get("subjects") or []:
        if isinstance(subject, dict) and not subject.get("apiGroup") and subject.get("kind") in ("User", "Group"):
            subject["apiGroup"] = GROUP


# --------------------------------------------------------------------------- validation


def validate_policy_rule(rule: Any, namespaced: bool, path: str) -> list[Cause]:
    if not isinstance(rule, dict):
        return [field.invalid(path, rule, "must be an object")]
    errs: list[Cause] = []
    if not rule.get("verbs"):
        errs.append(field.required(f"{path}.verbs", "verbs must contain at least one value"))
    urls = rule.get("nonResourceURLs") or []
    if urls:
        if namespaced:
            errs.append(field.invalid(f"{path}.nonResourceURLs", urls, "namespaced rules cannot apply to non-resource URLs"))
        if rule.get("apiGroups") or rule.get("resources") or rule.get("resourceNames"):
            errs.append(field.invalid(f"{path}.nonResourceURLs", urls,
                                      "rules cannot apply to both regular resources and non-resource URLs"))
        return errs
    if not rule.get("apiGroups"):
        errs.append(field.required(f"{path}.apiGroups", "resource rules must supply at least one api group"))
    if not rule.get("resources"):
        errs.append(field.required(f"{path}.resources", "resource rules must supply at least one resource"))
    return errs


def _rules(obj: Obj, namespaced: bool) -> list[Cause]:
    rules = obj.get("rules")
    if rules is None:
        return []
    if not isinstance(rules, list):
        return [field.invalid("rules", rules, "must be a list")]
    return [c for i, r in enumerate(rules) for c in validate_policy_rule(r, namespaced, f"rules[{i}]")]


def validate_role(role: Obj) -> list[Cause]:
    return [*metav.validate_object_meta(role, True, path_segment_name), *_rules(role, True)]


def validate_cluster_role(role: Obj) -> list[Cause]:
    errs = [*metav.validate_object_meta(role, False, path_segment_name), *_rules(role, False)]
    aggregation = role.get("aggregationRule")
    if aggregation is not None:
        selectors = (aggregation or {}).get("clusterRoleSelectors") if isinstance(aggregation, dict) else None
        if not selectors:
            errs.append(field.required("aggregationRule.clusterRoleSelectors",
                                       "at least one clusterRoleSelector required if aggregationRule is non-nil"))
        else:
            for i, sel in enumerate(selectors):
                errs.extend(metav.validate_label_selector(sel, f"aggregationRule.clusterRoleSelectors[{i}]"))
    return errs


def validate_subject(subject: Any, namespaced: bool, path: str) -> list[Cause]:
    if not isinstance(subject, dict):
        return [field.invalid(path, subject, "must be an object")]
    errs: list[Cause] = []
    name = str(subject.get("name") or "")
    group = str(subject.get("apiGroup") or "")
    kind = subject.get("kind")
    if not name:
        errs.append(field.required(f"{path}.name"))
    if kind == "ServiceAccount":
        if name:
            errs.extend(field.invalid(f"{path}.name", name, m) for m in metav.name_is_dns_subdomain(name, False))
        if group:
            errs.append(field.not_supported(f"{path}.apiGroup", group, [""]))
        if not namespaced and not subject.get("namespace"):
            errs.append(field.required(f"{path}.namespace"))
    elif kind in ("User", "Group"):
        if group != GROUP:
            errs.append(field.not_supported(f"{path}.apiGroup", group, [GROUP]))
    else:
        errs.append(field.not_supported(f"{path}.kind", kind or "", SUBJECT_KINDS))
    return errs


def _validate_binding(binding: Obj, namespaced: bool) -> list[Cause]:
    errs = metav.validate_object_meta(binding, namespaced, path_segment_name)
    ref = binding.get("roleRef")
    if not isinstance(ref, dict):
        ref = {}
    if ref.get("apiGroup") != GROUP:
        errs.append(field.not_supported("roleRef.apiGroup", ref.get("apiGroup") or "", [GROUP]))
    kinds = ["Role", "ClusterRole"] if namespaced else ["ClusterRole"]
    if ref.get("kind") not in kinds:
        errs.append(field.not_supported("roleRef.kind", ref.get("kind") or "", kinds))
    name = str(ref.get("name") or "")
    if not name:
        errs.append(field.required("roleRef.name"))
    else:
        errs.extend(field.invalid("roleRef.name", name, m) for m in path_segment_name(name, False))
    subjects = binding.get("subjects") or []
    if not isinstance(subjects, list):
        return [*errs, field.invalid("subjects", subjects, "must be a list")]
    for i, subject in enumerate(subjects):
        errs.extend(validate_subject(subject, namespaced, f"subjects[{i}]"))
    return errs


def validate_role_binding(binding: Obj) -> list[Cause]:
    return _validate_binding(binding, True)


def validate_cluster_role_binding(binding: Obj) -> list[Cause]:
    return _validate_binding(binding, False)


def validate_binding_update(new: Obj, old: Obj, namespaced: bool) -> list[Cause]:
    """``Validate*RoleBindingUpdate``: roleRef is immutable (delete and recreate to change it)."""
    errs = [*_validate_binding(new, namespaced), *metav.validate_object_meta_update(new, old)]
    ref = new.get("roleRef") or {}
    if ref != (old.get("roleRef") or {}):
        shown = (f'rbac.RoleRef{{APIGroup:{field.format_value(str(ref.get("apiGroup") or ""))}, '
                 f'Kind:{field.format_value(str(ref.get("kind") or ""))}, '
                 f'Name:{field.format_value(str(ref.get("name") or ""))}}}')  # Go's %#v of the struct
        errs.append(Cause("roleRef", f"Invalid value: {shown}: cannot change roleRef", field.INVALID))
    return errs
