"""What a request asks for, in authorizer terms, and upstream's 403 when it may not.

Why: the authorizer decides on :class:`joblet.auth.Attributes` (verb, namespace, group,
resource, subresource, name, or a non-resource path), which upstream derives from the URL
with its ``RequestInfoFactory``; :func:`request_attributes` is that derivation, and
:func:`forbidden` builds the exact ``Forbidden`` Status kube-apiserver answers
(``responsewriters.Forbidden`` + ``apierrors.NewForbidden``), so ``kubectl`` prints the
message users know.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs

from joblet.auth import Attributes, UserInfo
from joblet.errors import Forbidden

#: upstream's namespaceSubresources: /namespaces/NAME/status is the namespace's status
NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})
METHOD_VERBS = {"POST": "create", "GET": "get", "HEAD": "get", "PUT": "update", "PATCH": "patch",
                "DELETE": "delete"}
#: every verb a resource request can carry (a fixed set: metrics label it too)
RESOURCE_VERBS = frozenset({"get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"})


def _truthy(value: str) -> bool:
    return value.lower() in ("1", "true", "yes")


def request_attributes(user: UserInfo, method: str, path: str, query: str = "") -> Attributes:
    """Upstream's ``RequestInfoFactory.NewRequestInfo`` for ``/api`` and ``/apis`` paths."""
    parts = [p for p in path.split("/") if p]
    method = method.upper()
    non_resource = Attributes(user, method.lower(), False, path=path)
    if len(parts) < 3 or parts[0] not in ("api", "apis"):
        return non_resource
    prefix, rest = parts[0], parts[1:]
    group = ""
    if prefix == "apis":
        if len(rest) < 3:
            return non_resource
        group, rest = rest[0], rest[1:]
    version, rest = rest[0], rest[1:]
    verb = METHOD_VERBS.get(method, method.lower())
    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) >= 2 else ""
    subresource = rest[2] if len(rest) >= 3 else ""
    if not name and verb == "get":
        params = parse_qs(query)
        verb = "watch" if _truthy((params.get("watch") or [""])[-1]) else "list"
        for selector in params.get("fieldSelector") or []:
            for term in selector.split(","):
                key, op, value = term.partition("=")
                if op and key.strip() == "metadata.name" and value.lstrip("="):
                    name = value.lstrip("=").strip()
    if not name and verb == "delete":
        verb = "deletecollection"
    return Attributes(user, verb, True, namespace=namespace, api_group=group, api_version=version,
                      resource=resource, subresource=subresource, name=name, path=path)


def _q(value: str) -> str:
    """Go's ``%q`` for the strings that appear here."""
    return json.dumps(value, ensure_ascii=False)


def forbidden_message(a: Attributes) -> str:
    """Upstream ``responsewriters.forbiddenMessage``."""
    if not a.resource_request:
        return f"User {_q(a.user.name)} cannot {a.verb} path {_q(a.path)}"
    resource = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
    if a.namespace:
        return (f"User {_q(a.user.name)} cannot {a.verb} resource {_q(resource)} in API group "
                f"{_q(a.api_group)} in the namespace {_q(a.namespace)}")
    return (f"User {_q(a.user.name)} cannot {a.verb} resource {_q(resource)} in API group "
            f"{_q(a.api_group)} at the cluster scope")


def forbidden(a: Attributes, reason: str = "") -> Forbidden:
    """The 403 kube-apiserver answers for a denied request (``apierrors.NewForbidden``)."""
    why = forbidden_message(a) + (f": {reason}" if reason else "")
    qualified = f"{a.resource}.{a.api_group}" if a.api_group else a.resource
    if not a.resource_request or not a.resource:
        message = f"forbidden: {why}"
    elif not a.name:
        message = f"{qualified} is forbidden: {why}"
    else:
        message = f"{qualified} {_q(a.name)} is forbidden: {why}"
    details: dict[str, str] = {}
    if a.name:
        details["name"] = a.name
    if a.api_group:
        details["group"] = a.api_group
    if a.resource_request and a.resource:
        details["kind"] = a.resource
    return Forbidden(message, details)
