"""The namespace controller: deleting a namespace deletes everything in it.

A DELETE of a namespace only marks it (deletionTimestamp, phase Terminating) because its
``kubernetes`` finalizer holds it; this controller then deletes every namespaced object in
it (Jobs with Background propagation, so their pods follow) and, once nothing is left,
drops the finalizer so the registry removes the namespace, as upstream's namespace
lifecycle controller does.
"""

from __future__ import annotations

from typing import Any

from joblet.api.resources import RESOURCES
from joblet.client.interface import Client
from joblet.clock import Clock
from joblet.controllers.result import DONE, Result
from joblet.controllers.runtime import Controller, Informer, InformerFactory, QueueWorker, WorkQueue
from joblet.errors import Conflict, NotFound

Obj = dict[str, Any]
NAMESPACE_FINALIZER = "kubernetes"
#: Deleted first so that pods are removed by their owners' propagation, not one by one.
DELETION_ORDER = ("cronjobs", "jobs", "pods")


def namespaced_resources() -> list[str]:
    rest = sorted(r.plural for r in RESOURCES.values() if r.namespaced and r.plural not in DELETION_ORDER)
    return [*DELETION_ORDER, *rest]


class NamespaceController(Controller):
    name = "namespace-controller"

    def __init__(self, client: Client, clock: Clock, informers: InformerFactory) -> None:
        self.client = client
        self.namespaces = informers.get("namespaces")
        self.queue = WorkQueue(clock, "namespace")
        self.namespaces.add_handler(self._changed, lambda _old, new: self._changed(new))

    def informers(self) -> list[Informer]:
        return [self.namespaces]

    def queue_workers(self) -> list[QueueWorker]:
        return [QueueWorker(self.queue, self.sync)]

    def _changed(self, ns: Obj) -> None:
        if ns["metadata"].get("deletionTimestamp"):
            self.queue.add(ns["metadata"]["name"])

    async def sync(self, name: str) -> Result:
        ns = self.namespaces.get(name)
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return DONE
        remaining = 0
        for resource in namespaced_resources():
            items = (await self.client.list(resource, name)).items
            remaining += len(items)
            for item in items:
                if item["metadata"].get("deletionTimestamp"):
                    continue
                try:
                    await self.client.delete(resource, item["metadata"]["name"], name,
                                             propagation_policy="Background")
                except (NotFound, Conflict):
                    continue
        if remaining:
            return Result(requeue_after=0.5)  # objects are still terminating: look again soon
        finalizers = [f for f in (ns.get("spec") or {}).get("finalizers") or [] if f != NAMESPACE_FINALIZER]
        try:
            await self.client.update("namespaces", {**ns, "spec": {**(ns.get("spec") or {}), "finalizers": finalizers}},
                                     subresource="finalize")
        except NotFound:
            pass
        return DONE
