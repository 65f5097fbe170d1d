"""Per-resource rules the registry applies on every write: defaulting, validation,
which part of the object a write may change, and how a delete propagates by default.

Kubernetes keeps these in one ``strategy.go`` per resource; here they are one small class
per resource over the pure functions in :mod:`joblet.api.defaults` and
:mod:`joblet.api.validation`, and one row of :data:`STRATEGIES`. Whatever is special about a
resource is a hook here (a pod's graceful deletion, a namespace's ``finalize`` subresource,
the Job delete warning), so the registry and the HTTP server never branch on a resource name.
"""

from __future__ import annotations

from typing import Any

from joblet.api import admission, defaults, serviceaccount, validation
from joblet.api.validation import coordination, rbac
from joblet.api.validation import meta as metav
from joblet.errors import Cause, NotFound
from joblet.objects import deep_copy
from joblet.store.interface import Store

Obj = dict[str, Any]
JOB_DELETE_WARNING = ("child pods are preserved by default when jobs are deleted; set propagationPolicy=Background "
                      "to remove them or set propagationPolicy=Orphan to suppress this warning")


class Strategy:
    """Defaults for resources without special rules."""

    has_status = False
    #: validate() already checks metadata (names, labels); else the registry checks it.
    validates_meta = False
    #: propagationPolicy when a DELETE gives none.
    default_propagation = "Background"
    #: spec changes raise metadata.generation.
    tracks_generation = False
    #: a warning for a DELETE that names no propagationPolicy (None: none).
    default_propagation_warning: str | None = None
    #: a DELETE answers the object even once it is gone (upstream's ReturnDeletedObject),
    #: not a Status.
    return_deleted_object = False

    def prepare_for_create(self, obj: Obj) -> None:
        """Reset fields users may not set and fill defaults (in place)."""
        if self.has_status:
            obj["status"] = {}

    def validate(self, obj: Obj) -> list[Cause]:
        return []

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        return self.validate(new)

    def validate_status_update(self, new: Obj, old: Obj) -> list[Cause]:
        return []

    def canonicalize(self, obj: Obj) -> None:
        """Normalise a stored shape (e.g. Secret.stringData folded into data)."""

    def prepare_for_update(self, new: Obj, old: Obj, now: str) -> None:
        """Server-side consequences of a main-resource update (in place, after status was restored)."""

    def admit(self, obj: Obj, old: Obj | None, namespace: Obj | None) -> None:
        """Admission after validation (create, or main-resource update): raise to reject, and
        :func:`joblet.api.warning.warn` to add a ``Warning``. ``namespace``: the object's namespace."""

    def admit_create(self, obj: Obj, namespace: str, store: Store) -> None:
        """Mutating admission on create that reads other objects (after defaults, before validation)."""

    def prepare_for_status_update(self, new: Obj, old: Obj) -> None:
        """A ``status`` write: metadata it may not change is restored from ``old`` (in place)."""

    def subresource_update(self, subresource: str, new: Obj, old: Obj) -> Obj:
        """The object a write to another subresource stores (404 unless the resource has one)."""
        raise NotFound("the server could not find the requested resource")

    def grace_period(self, obj: Obj, requested: int | None) -> int | None:
        """Seconds a DELETE waits before the object goes (None: not graceful, marked now)."""
        return None

    def prepare_for_delete(self, obj: Obj) -> None:
        """Consequences of a DELETE on the object it marks (in place)."""

    def ready_to_remove(self, obj: Obj) -> bool:
        """A deleted object without finalizers may go now (else it waits, marked)."""
        return True


class NamespaceStrategy(Strategy):
    has_status = True
    validates_meta = True

    def prepare_for_create(self, obj: Obj) -> None:
        defaults.default_namespace(obj)
        obj["status"] = {"phase": "Active"}

    def validate(self, obj: Obj) -> list[Cause]:
        return validation.validate_namespace(obj)

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        return validation.validate_namespace_update(new, old)

    def admit(self, obj: Obj, old: Obj | None, namespace: Obj | None) -> None:
        admission.admit_namespace(obj, old)

    def subresource_update(self, subresource: str, new: Obj, old: Obj) -> Obj:
        if subresource != "finalize":
            return super().subresource_update(subresource, new, old)
        # Only spec.finalizers changes: the namespace controller's last word.
        finalizers = (new.get("spec") or {}).get("finalizers") or []
        out = deep_copy(old)
        out.setdefault("spec", {})["finalizers"] = finalizers
        return out

    def prepare_for_delete(self, obj: Obj) -> None:
        obj.setdefault("status", {})["phase"] = "Terminating"

    def ready_to_remove(self, obj: Obj) -> bool:
        return not (obj.get("spec") or {}).get("finalizers")


class JobStrategy(Strategy):
    has_status = True
    validates_meta = True
    default_propagation = "Orphan"  # batch/v1 kept the old default for compatibility
    default_propagation_warning = JOB_DELETE_WARNING
    tracks_generation = True

    def prepare_for_create(self, obj: Obj) -> None:
        obj["status"] = {}
        defaults.default_job(obj, str(obj["metadata"]["uid"]))

    def validate(self, obj: Obj) -> list[Cause]:
        return validation.validate_job(obj)

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        # A PUT body may omit defaulted fields; default them before comparing with the old spec.
        defaults.default_job(new)
        return validation.validate_job_update(new, old)

    def validate_status_update(self, new: Obj, old: Obj) -> list[Cause]:
        return validation.validate_job_status_update(new, old)

    def admit(self, obj: Obj, old: Obj | None, namespace: Obj | None) -> None:
        admission.admit_template((obj.get("spec") or {}).get("template"), namespace)


class CronJobStrategy(Strategy):
    has_status = True
    validates_meta = True
    tracks_generation = True

    def prepare_for_create(self, obj: Obj) -> None:
        obj["status"] = {}
        defaults.default_cronjob(obj)

    def validate(self, obj: Obj) -> list[Cause]:
        return validation.validate_cronjob(obj)

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        defaults.default_cronjob(new)
        return validation.validate_cronjob_update(new, old)

    def validate_status_update(self, new: Obj, old: Obj) -> list[Cause]:
        return validation.validate_cronjob_status_update(new, old)

    def admit(self, obj: Obj, old: Obj | None, namespace: Obj | None) -> None:
        job = ((obj.get("spec") or {}).get("jobTemplate") or {}).get("spec") or {}
        admission.admit_template(job.get("template"), namespace)


class PodStrategy(Strategy):
    has_status = True
    validates_meta = True
    return_deleted_object = True

    def admit_create(self, obj: Obj, namespace: str, store: Store) -> None:
        serviceaccount.admit_from_store(obj, namespace, store)

    def prepare_for_status_update(self, new: Obj, old: Obj) -> None:
        # A pod's owner cannot be changed through its status (upstream's podStatusStrategy).
        meta, old_meta = new["metadata"], old["metadata"]
        if "ownerReferences" in old_meta:
            meta["ownerReferences"] = old_meta["ownerReferences"]
        else:
            meta.pop("ownerReferences", None)

    def grace_period(self, obj: Obj, requested: int | None) -> int | None:
        spec = obj.get("spec") or {}
        phase = (obj.get("status") or {}).get("phase")
        if not spec.get("nodeName") or phase in ("Succeeded", "Failed"):
            return 0  # nothing runs it: nothing to wait for
        if requested is not None:
            return max(0, int(requested))
        return int(spec.get("terminationGracePeriodSeconds", 30))

    def ready_to_remove(self, obj: Obj) -> bool:
        # Gone once the node agent confirmed its containers stopped (grace set to 0).
        return int(obj["metadata"].get("deletionGracePeriodSeconds") or 0) == 0

    def prepare_for_create(self, obj: Obj) -> None:
        defaults.default_pod(obj)
        obj["status"] = {"phase": "Pending", "qosClass": defaults.qos_class(obj)}

    def validate(self, obj: Obj) -> list[Cause]:
        return validation.validate_pod(obj)

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        return validation.validate_pod_update(new, old)

    def admit(self, obj: Obj, old: Obj | None, namespace: Obj | None) -> None:
        admission.admit_pod(obj, old, namespace)

    def prepare_for_update(self, new: Obj, old: Obj, now: str) -> None:
        # Setting spec.nodeName is a binding: it also records PodScheduled, in the same write.
        if (new.get("spec") or {}).get("nodeName") and not (old.get("spec") or {}).get("nodeName"):
            status = dict(new.get("status") or {})
            conds = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
            status["conditions"] = [{"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                                     "lastTransitionTime": now}, *conds]
            new["status"] = status


class SecretStrategy(Strategy):
    validates_meta = True

    def prepare_for_create(self, obj: Obj) -> None:
        defaults.default_secret(obj)

    def validate(self, obj: Obj) -> list[Cause]:
        return validation.validate_secret(obj)

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        return validation.validate_secret_update(new, old)

    def canonicalize(self, obj: Obj) -> None:
        import base64

        string_data = obj.pop("stringData", None)
        if string_data:
            data = obj.setdefault("data", {})
            for k, v in string_data.items():
                data[k] = base64.b64encode(str(v).encode()).decode()
        obj.setdefault("type", "Opaque")


class NodeStrategy(Strategy):
    has_status = True
    validates_meta = True

    def prepare_for_create(self, obj: Obj) -> None:
        # A node agent registers its Node with status already filled, as a kubelet does.
        defaults.default_node(obj)
        obj.setdefault("status", {})

    def validate(self, obj: Obj) -> list[Cause]:
        return validation.validate_node(obj)


class ConfigMapStrategy(Strategy):
    validates_meta = True

    def prepare_for_create(self, obj: Obj) -> None:
        defaults.default_configmap(obj)

    def validate(self, obj: Obj) -> list[Cause]:
        return validation.validate_configmap(obj)

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        return validation.validate_configmap_update(new, old)


class ServiceAccountStrategy(Strategy):
    validates_meta = True

    def prepare_for_create(self, obj: Obj) -> None:
        defaults.default_service_account(obj)

    def validate(self, obj: Obj) -> list[Cause]:
        return validation.validate_service_account(obj)


class LeaseStrategy(Strategy):
    validates_meta = True

    def validate(self, obj: Obj) -> list[Cause]:
        return coordination.validate_lease(obj)

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        return coordination.validate_lease_update(new, old)


class RoleStrategy(Strategy):
    """Role and ClusterRole: rules only, names are path segments (``system:basic-user``)."""

    validates_meta = True

    def __init__(self, namespaced: bool) -> None:
        self.namespaced = namespaced

    def validate(self, obj: Obj) -> list[Cause]:
        return rbac.validate_role(obj) if self.namespaced else rbac.validate_cluster_role(obj)

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        return [*self.validate(new), *metav.validate_object_meta_update(new, old)]


class RoleBindingStrategy(Strategy):
    """RoleBinding and ClusterRoleBinding: subjects defaulted, roleRef immutable."""

    validates_meta = True

    def __init__(self, namespaced: bool) -> None:
        self.namespaced = namespaced

    def prepare_for_create(self, obj: Obj) -> None:
        rbac.default_subjects(obj)

    def validate(self, obj: Obj) -> list[Cause]:
        return rbac.validate_role_binding(obj) if self.namespaced else rbac.validate_cluster_role_binding(obj)

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        rbac.default_subjects(new)
        return rbac.validate_binding_update(new, old, self.namespaced)


STRATEGIES: dict[str, Strategy] = {
    "roles": RoleStrategy(namespaced=True),
    "clusterroles": RoleStrategy(namespaced=False),
    "rolebindings": RoleBindingStrategy(namespaced=True),
    "clusterrolebindings": RoleBindingStrategy(namespaced=False),
    "namespaces": NamespaceStrategy(),
    "jobs": JobStrategy(),
    "cronjobs": CronJobStrategy(),
    "pods": PodStrategy(),
    "secrets": SecretStrategy(),
    "nodes": NodeStrategy(),
    "configmaps": ConfigMapStrategy(),
    "serviceaccounts": ServiceAccountStrategy(),
    "leases": LeaseStrategy(),
}


def strategy_for(resource: str) -> Strategy:
    return STRATEGIES.get(resource, _DEFAULT)


_DEFAULT = Strategy()
