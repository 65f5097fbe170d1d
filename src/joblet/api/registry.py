"""The registry: Kubernetes API semantics over a plain store.

Everything that makes an object write a Kubernetes write lives here, once, for both
transports (the HTTP server and the in-process client call the same methods): uid and
timestamps, generateName, generation, defaulting and validation (via the per-resource
strategy), the status subresource split, patches, finalizers and graceful deletion,
propagation policy, namespace existence, and ``fieldValidation`` of a caller's body
(:mod:`joblet.api.fieldvalidation`). What differs per resource is a hook of its strategy
(:mod:`joblet.api.strategy`), never a branch on its name here. Calls are synchronous: the store is in memory
with write-behind durability, so a call never waits on I/O.

One module (~500 lines): the write path of every resource, once; per-resource rules are
strategy hooks (api/strategy.py), field validation and apply are their own modules.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Callable
from typing import Any

from joblet.api import apply as applying
from joblet.api import fieldvalidation, tokenrequest, validation
from joblet.api import patch as patches
from joblet.api.fieldvalidation import FieldValidation
from joblet.api.resources import RESOURCES, Resource
from joblet.api.strategy import Strategy, strategy_for
from joblet.api.warning import warn
from joblet.clock import Clock, rfc3339
from joblet.errors import (
    ApiError,
    BadRequest,
    Cause,
    Conflict,
    Forbidden,
    Invalid,
    MethodNotAllowed,
    NotFound,
    conflict,
    invalid,
    not_found,
)
from joblet.objects import FOREGROUND_FINALIZER, ORPHAN_FINALIZER, deep_copy, random_suffix
from joblet.security.satokens import BoundObject, TokenSigner
from joblet.store.interface import Key, Store, Watch
from joblet.store.paging import Page

Obj = dict[str, Any]

_MAX_GENERATE_ATTEMPTS = 8


def resource_or_404(resource: str) -> Resource:
    r = RESOURCES.get(resource)
    if r is None:
        raise NotFound("the server could not find the requested resource")
    if not r.stored:  # the reviews are answered per request (joblet.auth.reviews), never stored
        raise MethodNotAllowed("the server does not allow this method on the requested resource")
    return r


class Registry:
    def __init__(self, store: Store, clock: Clock, uid_factory: Callable[[], str] | None = None, *,
                 token_signer: TokenSigner | None = None) -> None:
        """``token_signer`` signs ``serviceaccounts/token`` answers (the control plane passes one
        over ``D/pki/sa.key``); without it the first TokenRequest makes a throwaway key."""
        self.store = store
        self.clock = clock
        self._new_uid = uid_factory or (lambda: str(uuid.uuid4()))
        self._token_signer = token_signer

    @property
    def token_signer(self) -> TokenSigner:
        if self._token_signer is None:
            from cryptography.hazmat.primitives.asymmetric import ec

            self._token_signer = TokenSigner(ec.generate_private_key(ec.SECP256R1()))
        return self._token_signer

    # ------------------------------------------------------------------ reads

    def get(self, resource: str, namespace: str, name: str) -> Obj:
        r = resource_or_404(resource)
        return self.store.get(self._key(r, namespace, name))

    def list(
        self,
        resource: str,
        namespace: str | None = None,
        predicate: Callable[[Obj], bool] | None = None,
        written_through: int | None = None,
        kept_value: str | None = None,
    ) -> tuple[builtins.list[Obj], int]:
        r = resource_or_404(resource)
        return self.store.list(r.plural, namespace if r.namespaced else None, predicate, written_through, kept_value)

    def list_page(self, resource: str, namespace: str | None, predicate: Callable[[Obj], bool] | None,
                  limit: int, continue_token: str | None = None, kept_value: str | None = None) -> Page:
        r = resource_or_404(resource)
        return self.store.list_page(r.plural, namespace if r.namespaced else None, predicate, limit, continue_token,
                                    kept_value)

    def watch(self, resource: str, namespace: str | None = None, since_rv: int | None = None) -> Watch:
        r = resource_or_404(resource)
        return self.store.watch(r.plural, namespace if r.namespaced else None, since_rv)

    # ----------------------------------------------------------------- create

    def create(
        self,
        resource: str,
        obj: Obj,
        namespace: str | None = None,
        dry_run: bool = False,
        field_validation: FieldValidation | None = None,
    ) -> Obj:
        """``field_validation``: how to treat fields the schema does not know (None: a body
        built by joblet code, taken as it is)."""
        r = resource_or_404(resource)
        if not isinstance(obj, dict):
            raise BadRequest("the body of the request was not a JSON object")
        obj = deep_copy(fieldvalidation.decode(r, obj, field_validation))
        self._check_kind(r, obj)
        meta: Obj = obj.get("metadata") or {}
        if not isinstance(meta, dict):
            raise BadRequest("metadata must be an object")
        obj["metadata"] = meta
        ns = self._namespace_for_create(r, meta, namespace)
        strategy = strategy_for(r.plural)

        for server_owned in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
            meta.pop(server_owned, None)
        if meta.get("creationTimestamp") is None:
            meta.pop("creationTimestamp", None)
        generate = bool(not meta.get("name") and meta.get("generateName"))
        if not meta.get("name") and not generate:
            raise invalid(r.kind, r.group, "", [Cause(
                "metadata.name", "Required value: name or generateName is required", "FieldValueRequired")])
        meta["uid"] = self._new_uid()
        meta["creationTimestamp"] = rfc3339(self.clock.now())
        if strategy.tracks_generation:
            meta["generation"] = 1
        strategy.canonicalize(obj)

        for attempt in range(_MAX_GENERATE_ATTEMPTS):
            if generate:
                meta["name"] = str(meta["generateName"]) + random_suffix()
            if attempt == 0:
                # Defaults and validation once: a generated name never changes their outcome.
                strategy.prepare_for_create(obj)
                strategy.admit_create(obj, ns, self.store)
                causes = [*self._validate_meta(r, obj, strategy), *strategy.validate(obj)]
                if causes:
                    raise invalid(r.kind, r.group, str(meta.get("name") or ""), causes)
                strategy.admit(obj, None, self._namespace_object(ns))
            key = Key(r.plural, ns, str(meta["name"]), r.group)
            if dry_run:
                try:
                    self.store.get(key)
                except NotFound:
                    return obj
                if not generate:
                    raise self._already_exists(r, key.name)
                continue
            try:
                return self.store.create(key, obj)
            except ApiError as err:
                if generate and err.reason == "AlreadyExists":
                    continue
                raise
        raise self._already_exists(r, str(meta.get("name")))

    # ----------------------------------------------------------------- update

    def update(
        self,
        resource: str,
        obj: Obj,
        namespace: str | None = None,
        subresource: str | None = None,
        dry_run: bool = False,
        field_validation: FieldValidation | None = None,
    ) -> Obj:
        r = resource_or_404(resource)
        if not isinstance(obj, dict):
            raise BadRequest("the body of the request was not a JSON object")
        decoded = fieldvalidation.decode(r, obj, field_validation)
        if subresource == "status" and isinstance(decoded, dict):
            # Only metadata and status of a status update are kept (the spec stays as stored):
            # copy just those, not the spec (most of a pod), on the write every pod makes most.
            new = {k: v for k, v in decoded.items() if k not in ("metadata", "status", "spec")}
            for part in ("metadata", "status"):
                if isinstance(decoded.get(part), dict):
                    new[part] = deep_copy(decoded[part])
                elif part in decoded:
                    new[part] = decoded[part]
        else:
            new = deep_copy(decoded)
        self._check_kind(r, new)
        meta = new.setdefault("metadata", {})
        ns = (namespace or meta.get("namespace") or "") if r.namespaced else ""
        if r.namespaced and meta.get("namespace") and namespace and meta["namespace"] != namespace:
            raise BadRequest("the namespace of the provided object does not match the namespace sent on the request")
        name = str(meta.get("name") or "")
        if not name:
            raise BadRequest("name is required")
        key = Key(r.plural, ns, name, r.group)
        old = self.store.get(key)
        rv = meta.get("resourceVersion")
        if rv not in (None, "") and str(rv) != old["metadata"]["resourceVersion"]:
            raise conflict(r.plural, r.group, name,
                           "the object has been modified; please apply your changes to the latest version and try again")
        return self._write_update(r, key, new, old, subresource, dry_run)

    def patch(
        self,
        resource: str,
        namespace: str,
        name: str,
        patch: Any,
        patch_type: str,
        subresource: str | None = None,
        field_manager: str | None = None,
        force: bool = False,
        dry_run: bool = False,
        field_validation: FieldValidation | None = None,
    ) -> Obj:
        r = resource_or_404(resource)
        patch = fieldvalidation.decode(r, patch, field_validation)
        ns = namespace if r.namespaced else ""
        key = Key(r.plural, ns, name, r.group)
        try:
            old: Obj | None = self.store.get(key)
        except NotFound:
            if patch_type != "apply":
                raise
            old = None
        if patch_type == "apply":
            if not isinstance(patch, dict):
                raise BadRequest("apply patch must be an object")
            created = applying.apply_patch(None if old is None else old, patch, field_manager or "", force)
            if old is None:
                created.setdefault("metadata", {})["name"] = name
                return self.create(r.plural, created, ns or None, dry_run=dry_run)
            new = created
        else:
            assert old is not None
            try:
                if patch_type == "merge":
                    if not isinstance(patch, dict):
                        raise BadRequest("merge patch must be a JSON object")
                    new = patches.json_merge_patch(old, patch)
                elif patch_type == "strategic":
                    if not isinstance(patch, dict):
                        raise BadRequest("strategic merge patch must be a JSON object")
                    new = patches.strategic_merge_patch(old, patch, r.kind)
                elif patch_type == "json":
                    if not isinstance(patch, list):
                        raise BadRequest("json patch must be a JSON array")
                    new = patches.json_patch(old, patch)
                else:
                    raise BadRequest(f"unsupported patch type {patch_type!r}")
            except patches.PatchError as err:
                raise Invalid(str(err), {"name": name, "group": r.group, "kind": r.kind,
                                         "causes": err.details.get("causes", [])}) from err
        if not isinstance(new, dict):
            raise BadRequest("patch result is not an object")
        new_meta = new.setdefault("metadata", {})
        if new_meta.get("name", name) != name:
            raise BadRequest("the name of the object does not match the name on the URL")
        rv = new_meta.get("resourceVersion")
        if rv not in (None, "") and str(rv) != old["metadata"]["resourceVersion"]:
            raise conflict(r.plural, r.group, name,
                           "the object has been modified; please apply your changes to the latest version and try again")
        new_meta["name"] = name
        if ns:
            new_meta["namespace"] = ns
        self._check_kind(r, new)
        return self._write_update(r, key, new, old, subresource, dry_run)

    def _write_update(
        self, r: Resource, key: Key, new: Obj, old: Obj, subresource: str | None, dry_run: bool
    ) -> Obj:
        strategy = strategy_for(r.plural)
        new_meta = new["metadata"]
        old_meta = old["metadata"]
        # Fields the server owns.
        for field in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                      "namespace", "name", "generation"):
            if field in old_meta:
                new_meta[field] = old_meta[field]
            else:
                new_meta.pop(field, None)
        new_meta["resourceVersion"] = old_meta["resourceVersion"]
        strategy.canonicalize(new)

        if subresource == "status":
            # As upstream's status strategies: the spec stays as stored; metadata may change
            # (annotations, labels), except a pod's ownerReferences.
            status = new.get("status")
            new = {**{k: v for k, v in old.items() if k not in ("status", "metadata")}, "metadata": new_meta}
            if status is not None:
                new["status"] = status
            strategy.prepare_for_status_update(new, old)
            causes = strategy.validate_status_update(new, old)
        elif subresource not in (None, ""):
            new = strategy.subresource_update(subresource, new, old)
            causes = []
        else:
            if strategy.has_status:
                if "status" in old:
                    new["status"] = old["status"]
                else:
                    new.pop("status", None)
            strategy.prepare_for_update(new, old, rfc3339(self.clock.now()))
            if strategy.tracks_generation and new.get("spec") != old.get("spec"):
                new_meta["generation"] = int(old_meta.get("generation") or 1) + 1
            if old_meta.get("deletionTimestamp"):
                # Finalizers may only shrink once deletion started.
                added = set(new_meta.get("finalizers") or []) - set(old_meta.get("finalizers") or [])
                if added:
                    raise Forbidden(
                        f"no new finalizers can be added if the object is being deleted, found new finalizers {sorted(added)!r}")
            causes = [*self._validate_meta(r, new, strategy), *strategy.validate_update(new, old)]
        if causes:
            raise invalid(r.kind, r.group, key.name, causes)
        if subresource in (None, ""):
            strategy.admit(new, old, self._namespace_object(key.namespace))
        if new == old:
            return old  # a no-op write is not a write: no new resourceVersion, no watch event
        if dry_run:
            return new
        if self._ready_to_remove(r, new):
            return self.store.delete(key)
        return self.store.update(key, new, int(old_meta["resourceVersion"]))

    def _namespace_object(self, namespace: str) -> Obj | None:
        """The namespace an object lives in (admission reads its labels); None if cluster-scoped."""
        if not namespace:
            return None
        try:
            return self.store.get(Key("namespaces", "", namespace))
        except NotFound:
            return None

    # ----------------------------------------------------------------- delete

    def delete(
        self,
        resource: str,
        namespace: str,
        name: str,
        propagation_policy: str | None = None,
        grace_period_seconds: int | None = None,
        preconditions: dict[str, str] | None = None,
        dry_run: bool = False,
    ) -> Obj:
        r = resource_or_404(resource)
        ns = namespace if r.namespaced else ""
        key = Key(r.plural, ns, name, r.group)
        old = self.store.get(key)
        old_meta = old["metadata"]
        if preconditions:
            want_uid = preconditions.get("uid")
            if want_uid and want_uid != old_meta.get("uid"):
                raise conflict(r.plural, r.group, name,
                               f"Precondition failed: UID in precondition: {want_uid}, UID in object meta: {old_meta.get('uid')}")
            want_rv = preconditions.get("resourceVersion")
            if want_rv and want_rv != old_meta.get("resourceVersion"):
                raise conflict(r.plural, r.group, name,
                               f"Precondition failed: ResourceVersion in precondition: {want_rv}, "
                               f"ResourceVersion in meta: {old_meta.get('resourceVersion')}")
        strategy = strategy_for(r.plural)
        policy = propagation_policy or strategy.default_propagation
        if propagation_policy is None and strategy.default_propagation_warning:
            warn(strategy.default_propagation_warning)
        if policy not in ("Orphan", "Background", "Foreground"):
            raise invalid("DeleteOptions", "", "", [Cause(
                "propagationPolicy",
                f'Unsupported value: "{policy}": supported values: "Foreground", "Background", "Orphan", "nil"',
                "FieldValueNotSupported")])

        new = deep_copy(old)
        meta = new["metadata"]
        finalizers: list[str] = list(meta.get("finalizers") or [])
        if policy == "Orphan" and ORPHAN_FINALIZER not in finalizers and not meta.get("deletionTimestamp"):
            finalizers.append(ORPHAN_FINALIZER)
        elif policy == "Foreground" and FOREGROUND_FINALIZER not in finalizers and not meta.get("deletionTimestamp"):
            finalizers.append(FOREGROUND_FINALIZER)
        if finalizers:
            meta["finalizers"] = finalizers
        now = self.clock.now()
        grace = strategy.grace_period(old, grace_period_seconds)
        if grace is not None:
            current = meta.get("deletionGracePeriodSeconds")
            if current is None or grace < int(current):
                meta["deletionGracePeriodSeconds"] = grace
            if not meta.get("deletionTimestamp") or grace < int(current or 0):
                from datetime import timedelta

                meta["deletionTimestamp"] = rfc3339(now + timedelta(seconds=grace))
        elif not meta.get("deletionTimestamp"):
            meta["deletionTimestamp"] = rfc3339(now)
            if finalizers:
                meta["deletionGracePeriodSeconds"] = 0
        strategy.prepare_for_delete(new)
        if dry_run:
            return new
        if self._ready_to_remove(r, new):
            return self.store.delete(key)
        if new == old:
            return old
        return self.store.update(key, new, int(old_meta["resourceVersion"]))

    def delete_collection(
        self,
        resource: str,
        namespace: str | None,
        predicate: Callable[[Obj], bool] | None = None,
        propagation_policy: str | None = None,
        grace_period_seconds: int | None = None,
        dry_run: bool = False,
    ) -> builtins.list[Obj]:
        items, _ = self.list(resource, namespace, predicate)
        out = []
        for item in items:
            try:
                out.append(self.delete(resource, item["metadata"].get("namespace", ""), item["metadata"]["name"],
                                       propagation_policy, grace_period_seconds, dry_run=dry_run))
            except NotFound:
                continue
        return out

    # ------------------------------------------------------ serviceaccounts/token

    def create_token(self, namespace: str, name: str, request: Any) -> Obj:
        """TokenRequest (``POST .../serviceaccounts/NAME/token``): a signed, expiring token for
        the ServiceAccount, bound to a Pod when ``spec.boundObjectRef`` names one (upstream's
        TokenREST: the pod must exist, run as this ServiceAccount and match a given uid)."""
        spec = tokenrequest.parse_token_request(name, request)
        sa = self.get("serviceaccounts", namespace, name)
        pod: BoundObject | None = None
        ref = spec.get("boundObjectRef")
        if ref is not None:
            tokenrequest.bound_kind(ref)
            obj = self.get("pods", namespace, ref["name"])
            pod_sa = str((obj.get("spec") or {}).get("serviceAccountName") or "")
            if pod_sa != name:
                raise BadRequest(f'cannot bind token for serviceaccount "{name}" to pod running with '
                                 f'serviceaccount "{pod_sa}"')
            uid = str(obj["metadata"].get("uid") or "")
            if ref.get("uid") and ref["uid"] != uid:
                raise conflict("Pod", "", ref["name"],
                               f"the UID in the bound object reference ({ref['uid']}) does not match the UID in "
                               f"record ({uid}). The object might have been deleted and then recreated")
            pod = BoundObject("Pod", ref["name"], uid)
        signer = self.token_signer
        if not spec["audiences"]:
            spec["audiences"] = [signer.issuer]
        token, expires = signer.sign(namespace, name, str(sa["metadata"].get("uid") or ""), spec["audiences"],
                                     self.clock.now(), int(spec["expirationSeconds"]), pod)
        return tokenrequest.token_request_response(namespace, name, spec, token, rfc3339(expires))

    # ---------------------------------------------------------------- helpers

    @staticmethod
    def _ready_to_remove(r: Resource, obj: Obj) -> bool:
        meta = obj["metadata"]
        if not meta.get("deletionTimestamp") or meta.get("finalizers"):
            return False
        return strategy_for(r.plural).ready_to_remove(obj)

    def _namespace_for_create(self, r: Resource, meta: Obj, namespace: str | None) -> str:
        if not r.namespaced:
            meta.pop("namespace", None)
            return ""
        body_ns = meta.get("namespace")
        if namespace and body_ns and body_ns != namespace:
            raise BadRequest("the namespace of the provided object does not match the namespace sent on the request")
        ns = str(namespace or body_ns or "default")
        meta["namespace"] = ns
        try:
            ns_obj = self.store.get(Key("namespaces", "", ns))
        except NotFound:
            raise not_found("namespaces", "", ns) from None
        if ns_obj["metadata"].get("deletionTimestamp"):
            raise Forbidden(
                f"{r.plural} \"{meta.get('name') or meta.get('generateName') or ''}\" is forbidden: unable to create new "
                f"content in namespace {ns} because it is being terminated",
                {"name": str(meta.get("name") or ""), "group": r.group, "kind": r.plural,
                 "causes": [{"reason": "NamespaceTerminating", "message": f"namespace {ns} is being terminated",
                             "field": "metadata.namespace"}]})
        return ns

    @staticmethod
    def _check_kind(r: Resource, obj: Obj) -> None:
        kind = obj.get("kind")
        api_version = obj.get("apiVersion")
        if kind and kind != r.kind:
            raise BadRequest(f"the API version in the data ({api_version}) does not match the expected API version ({r.api_version})"
                             if api_version and api_version != r.api_version else
                             f"Kind {kind!r} in the body does not match the resource {r.plural!r}")
        if api_version and api_version != r.api_version:
            raise BadRequest(
                f"the API version in the data ({api_version}) does not match the expected API version ({r.api_version})")
        obj["kind"] = r.kind
        obj["apiVersion"] = r.api_version

    @staticmethod
    def _validate_meta(r: Resource, obj: Obj, strategy: Strategy) -> builtins.list[Cause]:
        if strategy.validates_meta:
            return []
        return validation.validate_object_meta(obj, r.namespaced)

    @staticmethod
    def _already_exists(r: Resource, name: str) -> ApiError:
        from joblet.errors import already_exists

        return already_exists(r.plural, r.group, name)

    @staticmethod
    def _key(r: Resource, namespace: str, name: str) -> Key:
        return Key(r.plural, namespace if r.namespaced else "", name, r.group)


__all__ = ["FOREGROUND_FINALIZER", "ORPHAN_FINALIZER", "Conflict", "Registry"]
