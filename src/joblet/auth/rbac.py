"""Role-based access control: upstream's RBAC authorizer over Roles and bindings.

Why: every real cluster answers "may this user do this?" from ``rbac.authorization.k8s.io/v1``
objects, and users, kubectl (``auth can-i``) and tools expect exactly upstream's rules
(``plugin/pkg/auth/authorizer/rbac``): a rule matches when its verbs, apiGroups, resources
(``*``, ``pods/log``, ``*/status``), resourceNames, or nonResourceURLs (a trailing ``*`` is a
prefix) match; ClusterRoleBindings apply everywhere, RoleBindings (to a Role or a ClusterRole)
only in their namespace; subjects are Users, Groups and ServiceAccounts.

The decision functions (:func:`rule_allows`, :func:`applies_to`, :func:`authorize`,
:func:`rules_for`) are pure: objects in, answer out. :class:`RBACAuthorizer` feeds them from
watch-fed caches (the controllers' informer, injected, because ``auth`` sits below
``controllers`` in the layers) and never lets a stale cache deny: a request the cache would
deny is decided again from a fresh read through the client, so a binding created a moment
ago is honoured by the very next request. A deleted binding stops granting once its watch
event arrived (in-process: the next event-loop turn; after a broken watch, the informer's
relist backoff, 1 s).
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from joblet.auth import SYSTEM_MASTERS as SYSTEM_MASTERS_GROUP
from joblet.auth import Attributes, Decision, UserInfo
from joblet.client.interface import Client
from joblet.errors import Forbidden

Obj = Mapping[str, Any]

RBAC_GROUP = "rbac.authorization.k8s.io"
ALL = "*"
SA_PREFIX = "system:serviceaccount:"
RBAC_RESOURCES = ("roles", "rolebindings", "clusterroles", "clusterrolebindings")


# ---------------------------------------------------------------------------------- rules


def verb_matches(rule: Obj, verb: str) -> bool:
    return any(v in (ALL, verb) for v in rule.get("verbs") or ())


def api_group_matches(rule: Obj, group: str) -> bool:
    return any(g in (ALL, group) for g in rule.get("apiGroups") or ())


def resource_matches(rule: Obj, combined: str, subresource: str) -> bool:
    """``combined`` is ``pods`` or ``pods/log``; ``*/log`` matches any resource's log."""
    for want in rule.get("resources") or ():
        if want in (ALL, combined):
            return True
        if subresource and len(want) == len(subresource) + 2 and want.startswith("*/") and want.endswith(subresource):
            return True
    return False


def resource_name_matches(rule: Obj, name: str) -> bool:
    names = rule.get("resourceNames") or ()
    return not names or name in names


def non_resource_url_matches(rule: Obj, path: str) -> bool:
    for want in rule.get("nonResourceURLs") or ():
        if want in (ALL, path):
            return True
        if want.endswith("*") and path.startswith(want.rstrip("*")):
            return True
    return False


def rule_allows(attrs: Attributes, rule: Obj) -> bool:
    """upstream ``RuleAllows``."""
    if attrs.resource_request:
        combined = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
        return (verb_matches(rule, attrs.verb) and api_group_matches(rule, attrs.api_group)
                and resource_matches(rule, combined, attrs.subresource)
                and resource_name_matches(rule, attrs.name))
    return verb_matches(rule, attrs.verb) and non_resource_url_matches(rule, attrs.path)


# ------------------------------------------------------------------------------- subjects


def service_account_username(namespace: str, name: str) -> str:
    return f"{SA_PREFIX}{namespace}:{name}"


def applies_to(user: UserInfo, subject: Obj, namespace: str) -> bool:
    """upstream ``appliesToUser``; a ServiceAccount subject without a namespace means the binding's."""
    kind = subject.get("kind")
    name = str(subject.get("name") or "")
    if kind == "User":
        return user.name == name
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        sa_namespace = str(subject.get("namespace") or namespace)
        return bool(sa_namespace) and user.name == service_account_username(sa_namespace, name)
    return False


def describe_subject(subject: Obj, binding_namespace: str) -> str:
    kind, name = subject.get("kind"), str(subject.get("name") or "")
    if kind == "ServiceAccount":
        return f'{kind} "{name}/{subject.get("namespace") or binding_namespace}"'
    return f'{kind} "{name}"'


# --------------------------------------------------------------------------- the decision


class RBACState(Protocol):
    """What the decision functions read: the four RBAC resources."""

    def cluster_role_bindings(self) -> Iterable[Obj]: ...

    def role_bindings(self, namespace: str) -> Iterable[Obj]: ...

    def cluster_role(self, name: str) -> Obj | None: ...

    def role(self, namespace: str, name: str) -> Obj | None: ...


@dataclass
class Snapshot:
    """An :class:`RBACState` over plain lists (fresh reads, tests)."""

    roles: Sequence[Obj] = ()
    cluster_roles: Sequence[Obj] = ()
    bindings: Sequence[Obj] = ()
    cluster_bindings: Sequence[Obj] = ()

    def cluster_role_bindings(self) -> Iterable[Obj]:
        return self.cluster_bindings

    def role_bindings(self, namespace: str) -> Iterable[Obj]:
        return [b for b in self.bindings if _meta(b).get("namespace") == namespace]

    def cluster_role(self, name: str) -> Obj | None:
        return next((r for r in self.cluster_roles if _meta(r).get("name") == name), None)

    def role(self, namespace: str, name: str) -> Obj | None:
        return next((r for r in self.roles if _meta(r).get("name") == name
                     and _meta(r).get("namespace") == namespace), None)


def _meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def _not_found(kind: str, name: str) -> str:
    return f'{kind}.{RBAC_GROUP} "{name}" not found'


def role_rules(state: RBACState, role_ref: Obj, binding_namespace: str) -> tuple[list[Obj], str | None]:
    """The rules a roleRef grants, or an error (upstream's ``GetRoleReferenceRules``)."""
    kind, name = role_ref.get("kind"), str(role_ref.get("name") or "")
    if kind == "Role":
        role = state.role(binding_namespace, name)
        if role is None:
            return [], _not_found("role", name)
    elif kind == "ClusterRole":
        role = state.cluster_role(name)
        if role is None:
            return [], _not_found("clusterrole", name)
    else:
        return [], f"unsupported role reference kind: {kind!r}"
    return list(role.get("rules") or ()), None


@dataclass(frozen=True)
class Grant:
    """One rule reached through one binding subject; ``source`` as upstream's describers print it."""

    rule: Obj
    source: str


def visit_rules(state: RBACState, user: UserInfo, namespace: str,
                errors: list[str]) -> Iterator[Grant]:
    """Every rule that applies to ``user`` in ``namespace`` ("" = cluster scope), bindings first to
    last as upstream's ``VisitRulesFor``: ClusterRoleBindings, then the namespace's RoleBindings.
    Unresolvable role references are appended to ``errors``."""
    yield from _binding_grants(state, user, state.cluster_role_bindings(), "", errors)
    if namespace:
        yield from _binding_grants(state, user, state.role_bindings(namespace), namespace, errors)


def _binding_grants(state: RBACState, user: UserInfo, bindings: Iterable[Obj], namespace: str,
                    errors: list[str]) -> Iterator[Grant]:
    """The rules ``bindings`` (ClusterRoleBindings when ``namespace`` is "") grant ``user``."""
    for binding in bindings:
        subject = next((s for s in binding.get("subjects") or () if applies_to(user, s, namespace)), None)
        if subject is None:
            continue
        ref = binding.get("roleRef") or {}
        rules, err = role_rules(state, ref, namespace)
        if err:
            errors.append(err)
            continue
        name = _meta(binding).get("name", "")
        what = f'RoleBinding "{name}/{namespace}"' if namespace else f'ClusterRoleBinding "{name}"'
        source = f'{what} of {ref.get("kind")} "{ref.get("name")}" to {describe_subject(subject, namespace)}'
        for rule in rules:
            yield Grant(rule, source)


def authorize(state: RBACState, attrs: Attributes) -> Decision:
    """upstream ``RBACAuthorizer.Authorize``: allowed with the granting binding as the reason, or
    no opinion (denied) with the resolution errors, if any, as the reason."""
    errors: list[str] = []
    for grant in visit_rules(state, attrs.user, attrs.namespace, errors):
        if rule_allows(attrs, grant.rule):
            return Decision(True, f"RBAC: allowed by {grant.source}")
    return Decision(False, f"RBAC: [{', '.join(errors)}]" if len(errors) > 1 else
                    f"RBAC: {errors[0]}" if errors else "")


def rules_for(state: RBACState, user: UserInfo, namespace: str) -> tuple[list[Obj], list[str]]:
    """Every rule that applies to ``user`` in ``namespace`` and the errors met (``RulesFor``)."""
    errors: list[str] = []
    return [g.rule for g in visit_rules(state, user, namespace, errors)], errors


# ------------------------------------------------------------------------- the authorizer


class Cache(Protocol):
    """A watch-fed cache of one resource (:class:`joblet.controllers.runtime.Informer` is one)."""

    synced: asyncio.Event

    def list(self) -> list[dict[str, Any]]: ...

    def get(self, key: str) -> dict[str, Any] | None: ...

    def add_index(self, name: str, func: Callable[[dict[str, Any]], Iterable[str]]) -> None: ...

    def by_index(self, name: str, value: str) -> builtins.list[dict[str, Any]]: ...

    def start(self) -> asyncio.Task[None]: ...

    async def stop(self) -> None: ...


CacheFactory = Callable[[Client, str], Cache]
NAMESPACE_INDEX = "namespace"


class CachedState:
    """An :class:`RBACState` over four caches keyed ``namespace/name`` (``name`` when cluster-scoped)."""

    def __init__(self, caches: Mapping[str, Cache]) -> None:
        self.caches = caches

    def cluster_role_bindings(self) -> Iterable[Obj]:
        return self.caches["clusterrolebindings"].list()

    def role_bindings(self, namespace: str) -> Iterable[Obj]:
        return self.caches["rolebindings"].by_index(NAMESPACE_INDEX, namespace)

    def cluster_role(self, name: str) -> Obj | None:
        return self.caches["clusterroles"].get(name)

    def role(self, namespace: str, name: str) -> Obj | None:
        return self.caches["roles"].get(f"{namespace}/{name}")


class RBACAuthorizer:
    """:class:`joblet.auth.Authorizer` over the cluster's RBAC objects, read through ``client``.

    ``cache_factory(client, plural)`` makes the watch-fed caches (the control plane passes the
    controllers' ``Informer``); they start on the first request, which like every request
    before they have synced (or without a factory) is decided from a fresh read.
    """

    def __init__(self, client: Client, cache_factory: CacheFactory | None = None) -> None:
        self.client = client
        self._factory = cache_factory
        self._caches: dict[str, Cache] | None = None

    def _cached_state(self) -> CachedState | None:
        """The caches once they have synced (started by the first call); None until then."""
        if self._factory is None:
            return None
        if self._caches is None:
            caches = {plural: self._factory(self.client, plural) for plural in RBAC_RESOURCES}
            caches["rolebindings"].add_index(NAMESPACE_INDEX, lambda o: (str(_meta(o).get("namespace") or ""),))
            for cache in caches.values():
                cache.start()
            self._caches = caches
        if not all(c.synced.is_set() for c in self._caches.values()):
            return None
        return CachedState(self._caches)

    async def fresh_state(self) -> Snapshot:
        """The RBAC objects as stored now (one list per resource)."""
        roles, bindings, cluster_roles, cluster_bindings = await asyncio.gather(
            *(self.client.list(plural) for plural in RBAC_RESOURCES))
        return Snapshot(roles.items, cluster_roles.items, bindings.items, cluster_bindings.items)

    async def authorize(self, attributes: Attributes) -> Decision:
        cached = self._cached_state()
        if cached is not None:
            decision = authorize(cached, attributes)
            if decision.allowed:
                return decision
        # Never deny from a cache that may lag a write that just returned.
        return authorize(await self.fresh_state(), attributes)

    async def rules_for(self, user: UserInfo, namespace: str) -> tuple[list[Obj], list[str]]:
        return rules_for(await self.fresh_state(), user, namespace)

    async def close(self) -> None:
        caches, self._caches = self._caches, None
        for cache in (caches or {}).values():
            await cache.stop()


# ------------------------------------------------------------------ escalation prevention
# upstream pkg/registry/rbac: a user may only write a Role, or bind a role, whose permissions
# they already hold (in that namespace), unless they may "escalate" (roles) or "bind" (bindings)
# or are in system:masters. Without this, namespace "admin" could bind itself to cluster-admin.


def breakdown_rule(rule: Obj) -> list[Obj]:
    """upstream ``BreakdownRule``: one verb x group x resource (x name), or verb x URL, per rule."""
    out: list[Obj] = []
    verbs = list(rule.get("verbs") or ())
    names = list(rule.get("resourceNames") or ())
    for group in rule.get("apiGroups") or ():
        for resource in rule.get("resources") or ():
            for verb in verbs:
                base = {"apiGroups": [group], "resources": [resource], "verbs": [verb]}
                out.extend([{**base, "resourceNames": [n]} for n in names] if names else [base])
    for path in rule.get("nonResourceURLs") or ():
        out.extend({"nonResourceURLs": [path], "verbs": [verb]} for verb in verbs)
    return out


def _covers_all(owned: Sequence[str], wanted: Sequence[str]) -> bool:
    return ALL in owned or all(w in owned for w in wanted)


def _resources_cover(owned: Sequence[str], wanted: Sequence[str]) -> bool:
    if _covers_all(owned, wanted):
        return True
    for path in wanted:
        if path in owned:
            continue
        if "/" not in path or f"*/{path.split('/', 1)[1]}" not in owned:
            return False
    return True


def _url_covers(owner: str, sub: str) -> bool:
    return owner == sub or (owner.endswith("*") and sub.startswith(owner.rstrip("*")))


def rule_covers(owner: Obj, sub: Obj) -> bool:
    """upstream ``ruleCovers``: does ``owner`` grant everything ``sub`` grants?"""
    o_names, s_names = list(owner.get("resourceNames") or ()), list(sub.get("resourceNames") or ())
    names_ok = not o_names if not s_names else (not o_names or all(n in o_names for n in s_names))
    return (_covers_all(list(owner.get("verbs") or ()), list(sub.get("verbs") or ()))
            and _covers_all(list(owner.get("apiGroups") or ()), list(sub.get("apiGroups") or ()))
            and _resources_cover(list(owner.get("resources") or ()), list(sub.get("resources") or ()))
            and all(any(_url_covers(o, s) for o in owner.get("nonResourceURLs") or ())
                    for s in sub.get("nonResourceURLs") or ())
            and names_ok)


def uncovered(owner_rules: Sequence[Obj], rules: Sequence[Obj]) -> list[Obj]:
    """upstream ``Covers``: the atoms of ``rules`` that no owner rule covers."""
    return [atom for rule in rules for atom in breakdown_rule(rule)
            if not any(rule_covers(o, atom) for o in owner_rules)]


def _go_strings(values: Sequence[str]) -> str:
    return "[" + " ".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values) + "]"


def compact_string(rule: Obj) -> str:
    """upstream ``CompactString``: ``{APIGroups:["batch"], Resources:["jobs"], Verbs:["create"]}``."""
    parts = [f"{label}:{_go_strings(rule[key])}" for label, key in (
        ("APIGroups", "apiGroups"), ("Resources", "resources"), ("NonResourceURLs", "nonResourceURLs"),
        ("ResourceNames", "resourceNames"), ("Verbs", "verbs")) if rule.get(key)]
    return "{" + ", ".join(parts) + "}"


def compact_rules(atoms: Sequence[Obj]) -> list[Obj]:
    """upstream ``CompactRules``: atoms differing only in their verb become one rule."""
    merged: dict[tuple[tuple[str, ...], ...], Obj] = {}
    for atom in atoms:
        key = tuple(tuple(atom.get(k) or ()) for k in ("apiGroups", "resources", "resourceNames", "nonResourceURLs"))
        if key in merged:
            if atom["verbs"][0] not in merged[key]["verbs"]:
                merged[key]["verbs"].append(atom["verbs"][0])
        else:
            merged[key] = {k: list(v) for k, v in atom.items()}
    return list(merged.values())


def escalation_message(user: UserInfo, missing: Sequence[Obj], errors: Sequence[str]) -> str:
    """upstream ``ConfirmNoEscalation``'s error."""
    lines = sorted({compact_string(r) for r in compact_rules(missing)})
    msg = (f'user "{user.name}" (groups={_go_strings(user.groups)}) is attempting to grant RBAC permissions '
           f"not currently held:\n" + "\n".join(lines))
    if errors:
        msg += f"; resolution errors: [{', '.join(errors)}]"
    return msg


class EscalationCheck:
    """The write admission of the four RBAC resources (upstream's ``policybased`` storages).

    ``await check(user, plural, obj)`` before ``obj`` (the object as it would be stored) is
    written; raises :class:`joblet.errors.Forbidden` worded as upstream.
    """

    RESOURCES = RBAC_RESOURCES

    def __init__(self, authorizer: RBACAuthorizer) -> None:
        self.authorizer = authorizer

    async def __call__(self, user: UserInfo, plural: str, obj: Obj) -> None:
        if SYSTEM_MASTERS_GROUP in user.groups:
            return
        meta = _meta(obj)
        name, namespace = str(meta.get("name") or ""), str(meta.get("namespace") or "")
        state = await self.authorizer.fresh_state()
        if plural in ("roles", "clusterroles"):
            verb, rules, err = "escalate", list(obj.get("rules") or ()), None
            target, target_name = plural, name
        else:
            ref = obj.get("roleRef") or {}
            target = "roles" if ref.get("kind") == "Role" else "clusterroles"
            verb, target_name = "bind", str(ref.get("name") or "")
            rules, err = role_rules(state, ref, namespace)
        if authorize(state, Attributes(user, verb, True, namespace, RBAC_GROUP, "v1", target, "",
                                       target_name)).allowed:
            return
        qualified = f"{plural}.{RBAC_GROUP}"
        details: dict[str, Any] = {"name": name, "group": RBAC_GROUP, "kind": plural}
        if err is not None:
            raise Forbidden(f'{qualified} "{name}" is forbidden: {err}', details)
        owner_rules, errors = rules_for(state, user, namespace)
        missing = uncovered(owner_rules, rules)
        if missing:
            raise Forbidden(f'{qualified} "{name}" is forbidden: {escalation_message(user, missing, errors)}',
                            details)
