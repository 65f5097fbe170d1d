"""The serviceaccounts controller and the root-CA publisher, as kube-controller-manager runs them.

Why: every pod runs as a ServiceAccount (``default`` unless it names another) and its token
volume projects the ConfigMap ``kube-root-ca.crt`` so in-pod clients can verify the API's
certificate. Upstream keeps both present in every active namespace: the ``serviceaccount``
controller recreates a deleted ``default`` ServiceAccount, the ``root-ca-cert-publisher``
recreates (or repairs) ``kube-root-ca.crt`` with key ``ca.crt`` = the cluster CA. Both are
level-triggered on namespaces and on their own objects; the decisions are the pure
functions :func:`missing_default` and :func:`wanted_root_ca`.

The CA comes from ``D/pki/ca.crt`` (read at each sync, so a renewed CA is republished); with
no CA file (plain-HTTP debugging) nothing is published.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from joblet.api.serviceaccount import DEFAULT_SERVICE_ACCOUNT, ROOT_CA_CONFIGMAP
from joblet.client.interface import Client
from joblet.clock import Clock
from joblet.controllers.result import DONE, Result
from joblet.controllers.runtime import Controller, Informer, InformerFactory, QueueWorker, WorkQueue
from joblet.errors import AlreadyExists, Conflict, Forbidden, NotFound
from joblet.objects import deep_copy, name_of, namespace_of

Obj = dict[str, Any]
ROOT_CA_KEY = "ca.crt"
DESCRIPTION_ANNOTATION = "kubernetes.io/description"
ROOT_CA_DESCRIPTION = (
    "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as "
    "the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of "
    "Kubernetes clusters.")


def active(ns: Obj | None) -> bool:
    return ns is not None and not (ns.get("metadata") or {}).get("deletionTimestamp") \
        and (ns.get("status") or {}).get("phase") != "Terminating"


def missing_default(ns: Obj | None, existing: Obj | None) -> bool:
    """Whether the namespace needs its ``default`` ServiceAccount (created)."""
    return active(ns) and existing is None


def wanted_root_ca(ns: Obj | None, existing: Obj | None, ca_pem: str | None) -> Obj | None:
    """The ConfigMap to write (create when ``existing`` is None, else update), or None when fine."""
    if not active(ns) or not ca_pem:
        return None
    data = {ROOT_CA_KEY: ca_pem}
    if existing is None:
        return {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": ROOT_CA_CONFIGMAP, "namespace": name_of(ns or {}),
                             "annotations": {DESCRIPTION_ANNOTATION: ROOT_CA_DESCRIPTION}},
                "data": data}
    annotations = (existing.get("metadata") or {}).get("annotations") or {}
    if existing.get("data") == data and annotations.get(DESCRIPTION_ANNOTATION) == ROOT_CA_DESCRIPTION:
        return None
    fixed = deep_copy(existing)
    fixed["data"] = data
    fixed.pop("binaryData", None)
    fixed["metadata"].setdefault("annotations", {})[DESCRIPTION_ANNOTATION] = ROOT_CA_DESCRIPTION
    return fixed


class _PerNamespace(Controller):
    """One work queue keyed by namespace name, fed by namespaces and by one object name in each."""

    name = ""
    resource = ""
    object_name = ""

    def __init__(self, client: Client, clock: Clock, informers: InformerFactory) -> None:
        self.client = client
        self.namespaces = informers.get("namespaces")
        self.objects = informers.get(self.resource, field_selector=f"metadata.name={self.object_name}")
        self.queue = WorkQueue(clock, self.name)
        self.namespaces.add_handler(self._ns, lambda _old, new: self._ns(new), self._ns)
        self.objects.add_handler(self._obj, lambda _old, new: self._obj(new), self._obj)

    def informers(self) -> list[Informer]:
        return [self.namespaces, self.objects]

    def queue_workers(self) -> list[QueueWorker]:
        return [QueueWorker(self.queue, self._sync)]

    def _ns(self, ns: Obj) -> None:
        self.queue.add(name_of(ns))

    def _obj(self, obj: Obj) -> None:
        if name_of(obj) == self.object_name:
            self.queue.add(namespace_of(obj))

    async def _sync(self, namespace: str) -> Result:
        try:
            await self.sync(namespace, self.namespaces.get(namespace), self.objects.get(f"{namespace}/{self.object_name}"))
        except (AlreadyExists, Conflict):
            return Result(requeue_after=0.2)  # a stale cache: look again
        except (NotFound, Forbidden):
            pass  # the namespace went away (or is terminating)
        return DONE

    async def sync(self, namespace: str, ns: Obj | None, existing: Obj | None) -> None:
        raise NotImplementedError


class ServiceAccountsController(_PerNamespace):
    """Keeps a ``default`` ServiceAccount in every active namespace."""

    name = "serviceaccount-controller"
    resource = "serviceaccounts"
    object_name = DEFAULT_SERVICE_ACCOUNT

    async def sync(self, namespace: str, ns: Obj | None, existing: Obj | None) -> None:
        if missing_default(ns, existing):
            await self.client.create("serviceaccounts", {
                "apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": DEFAULT_SERVICE_ACCOUNT, "namespace": namespace}})


class RootCACertPublisher(_PerNamespace):
    """Keeps ConfigMap ``kube-root-ca.crt`` (``ca.crt``: the cluster CA) in every active namespace."""

    name = "root-ca-cert-publisher"
    resource = "configmaps"
    object_name = ROOT_CA_CONFIGMAP

    def __init__(self, client: Client, clock: Clock, informers: InformerFactory, ca_pem: Callable[[], str | None]) -> None:
        super().__init__(client, clock, informers)
        self.ca_pem = ca_pem

    async def sync(self, namespace: str, ns: Obj | None, existing: Obj | None) -> None:
        wanted = wanted_root_ca(ns, existing, self.ca_pem())
        if wanted is None:
            return
        if existing is None:
            await self.client.create("configmaps", wanted, namespace)
        else:
            await self.client.update("configmaps", wanted)


def ca_file_reader(path: Path) -> Callable[[], str | None]:
    """Reads the CA bundle at each call; None while the file does not exist."""

    def read() -> str | None:
        try:
            return path.read_text()
        except FileNotFoundError:
            return None

    return read


def service_account_controllers(client: Client, clock: Clock, informers: InformerFactory,
                                data_dir: Path) -> list[Controller]:
    """Both controllers, as the control plane starts them (CA from ``D/pki/ca.crt``)."""
    return [ServiceAccountsController(client, clock, informers),
            RootCACertPublisher(client, clock, informers, ca_file_reader(Path(data_dir) / "pki" / "ca.crt"))]
