"""The self-review resources: "may I?", "what may I?" and "who am I?".

Why: ``kubectl auth can-i`` POSTs a SelfSubjectAccessReview, ``kubectl auth can-i --list`` a
SelfSubjectRulesReview and ``kubectl auth whoami`` a SelfSubjectReview; each is computed for
the requesting user from the authorizer and never stored (upstream
``pkg/registry/authorization/*`` and ``pkg/registry/authentication/selfsubjectreview``).
The answers are pure functions of (request body, user, authorizer decisions); the HTTP
server only decodes the body and hands over the authenticated user.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from joblet.api.validation import field
from joblet.auth import AlwaysAllow, Attributes, Authorizer, UserInfo
from joblet.errors import BadRequest, invalid

Obj = dict[str, Any]
AUTHORIZATION_GROUP = "authorization.k8s.io"
ALL_RULES: list[Mapping[str, Any]] = [
    {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]},
    {"verbs": ["*"], "nonResourceURLs": ["*"]},
]


# ------------------------------------------------------------------------- reviews


class RuleResolver(Protocol):
    """An authorizer that can also list a user's rules (RBAC can; a webhook could not)."""

    async def rules_for(self, user: UserInfo, namespace: str) -> tuple[list[Mapping[str, Any]], list[str]]: ...


def _spec(body: Obj) -> Obj:
    spec = body.get("spec")
    if spec is None:
        return {}
    if not isinstance(spec, dict):
        raise BadRequest("spec must be an object")
    return spec


def _string(attrs: Mapping[str, Any], key: str) -> str:
    value = attrs.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadRequest(f"{key} must be a string")
    return value


def _echo(body: Obj, api_version: str, kind: str) -> Obj:
    """The request as the response's base: type meta set, metadata kept (a review has no identity)."""
    out = copy.deepcopy(body)
    out["apiVersion"], out["kind"] = api_version, kind
    meta = out.get("metadata")
    out["metadata"] = dict(meta) if isinstance(meta, dict) else {}
    out["metadata"].setdefault("creationTimestamp", None)
    return out


def access_attributes(spec: Obj, user: UserInfo) -> Attributes:
    """The attributes a SelfSubjectAccessReview spec asks about, validated as upstream."""
    res, nonres = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    kind = "SelfSubjectAccessReview"
    if res is not None and nonres is not None:
        raise invalid(kind, AUTHORIZATION_GROUP, "", [field.invalid(
            "spec.nonResourceAttributes", nonres, "cannot be specified in combination with resourceAttributes")])
    if res is None and nonres is None:
        raise invalid(kind, AUTHORIZATION_GROUP, "", [field.invalid(
            "spec.resourceAttributes", None,
            "exactly one of nonResourceAttributes or resourceAttributes must be specified")])
    if res is not None:
        if not isinstance(res, dict):
            raise BadRequest("spec.resourceAttributes must be an object")
        return Attributes(user, _string(res, "verb"), True, _string(res, "namespace"), _string(res, "group"),
                          _string(res, "version"), _string(res, "resource"), _string(res, "subresource"),
                          _string(res, "name"))
    if not isinstance(nonres, dict):
        raise BadRequest("spec.nonResourceAttributes must be an object")
    return Attributes(user, _string(nonres, "verb"), False, path=_string(nonres, "path"))


async def self_subject_access_review(body: Obj, api_version: str, user: UserInfo, authorizer: Authorizer) -> Obj:
    attrs = access_attributes(_spec(body), user)
    decision = await authorizer.authorize(attrs)
    out = _echo(body, api_version, "SelfSubjectAccessReview")
    status: Obj = {"allowed": decision.allowed}
    if decision.reason:
        status["reason"] = decision.reason
    out["status"] = status
    return out


def rules_status(rules: list[Mapping[str, Any]], errors: list[str], incomplete: bool = False) -> Obj:
    """``SubjectRulesReviewStatus`` from policy rules, split as upstream's ``RulesFor``."""
    resource_rules: list[Obj] = []
    non_resource_rules: list[Obj] = []
    for rule in rules:
        if rule.get("resources"):
            entry: Obj = {"verbs": list(rule.get("verbs") or [])}
            for key in ("apiGroups", "resources", "resourceNames"):
                if rule.get(key):
                    entry[key] = list(rule[key])
            resource_rules.append(entry)
        if rule.get("nonResourceURLs"):
            non_resource_rules.append({"verbs": list(rule.get("verbs") or []),
                                       "nonResourceURLs": list(rule["nonResourceURLs"])})
    status: Obj = {"resourceRules": resource_rules, "nonResourceRules": non_resource_rules,
                   "incomplete": incomplete}
    if errors:
        status["evaluationError"] = errors[0] if len(errors) == 1 else f"[{', '.join(errors)}]"
    return status


async def self_subject_rules_review(body: Obj, api_version: str, user: UserInfo, authorizer: Authorizer) -> Obj:
    namespace = _string(_spec(body), "namespace")
    if not namespace:
        raise BadRequest("no namespace on request")
    if isinstance(authorizer, AlwaysAllow):
        status = rules_status(ALL_RULES, [])
    else:
        resolve: Callable[[UserInfo, str], Awaitable[tuple[list[Mapping[str, Any]], list[str]]]] | None = \
            getattr(authorizer, "rules_for", None)
        if resolve is None:
            status = rules_status([], [], incomplete=True)
        else:
            rules, errors = await resolve(user, namespace)
            status = rules_status(rules, errors)
    out = _echo(body, api_version, "SelfSubjectRulesReview")
    out["status"] = status
    return out


def user_info(user: UserInfo) -> Obj:
    """``authentication.k8s.io`` ``UserInfo`` (empty fields omitted)."""
    out: Obj = {"username": user.name}
    if user.uid:
        out["uid"] = user.uid
    if user.groups:
        out["groups"] = list(user.groups)
    if user.extra:
        out["extra"] = {k: list(v) for k, v in user.extra.items()}
    return out


async def self_subject_review(body: Obj, api_version: str, user: UserInfo, authorizer: Authorizer) -> Obj:
    out = _echo(body, api_version, "SelfSubjectReview")
    out["status"] = {"userInfo": user_info(user)}
    return out


Review = Callable[[Obj, str, UserInfo, Authorizer], Awaitable[Obj]]

#: kind → its answer; the HTTP server routes a POST of a create-only resource here.
REVIEWS: dict[str, Review] = {
    "SelfSubjectAccessReview": self_subject_access_review,
    "SelfSubjectRulesReview": self_subject_rules_review,
    "SelfSubjectReview": self_subject_review,
}


async def review(kind: str, api_version: str, body: Obj, user: UserInfo, authorizer: Authorizer) -> Obj:
    """Answer a review of ``kind`` posted at ``api_version`` for ``user``."""
    answer = REVIEWS.get(kind)
    if answer is None:
        raise BadRequest(f"{kind} cannot be created")
    if body.get("kind") not in (None, "", kind):
        raise BadRequest(f"Kind {body.get('kind')!r} in the body does not match the resource {kind!r}")
    if body.get("apiVersion") not in (None, "", api_version):
        raise BadRequest(f"the API version in the data ({body.get('apiVersion')}) does not match the "
                         f"expected API version ({api_version})")
    return await answer(body, api_version, user, authorizer)
