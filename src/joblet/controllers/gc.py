"""The garbage collector: ownerReferences and deletion propagation.

* An owner deleted with ``Orphan`` carries the ``orphan`` finalizer: its dependents lose
  their ownerReference to it, then the finalizer goes and the owner with it.
* An owner deleted with ``Foreground`` carries ``foregroundDeletion``: its dependents are
  deleted first; once none is left, the finalizer goes.
* A dependent none of whose owners exists any more is deleted (``Background``: the owner
  went at once, its dependents follow).

Dependents are found through an owner-uid index on the informers of the resources that
have owners here (pods owned by Jobs, Jobs owned by CronJobs). Decisions are pure
(:func:`plan_for_owner`, :func:`orphaned`); the reconciler only applies them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any

from joblet.client.interface import Client
from joblet.clock import Clock
from joblet.controllers.result import DONE, Result
from joblet.controllers.runtime import Controller, Informer, InformerFactory, QueueWorker, WorkQueue
from joblet.errors import Conflict, NotFound
from joblet.objects import FOREGROUND_FINALIZER, ORPHAN_FINALIZER

Obj = dict[str, Any]
#: (owner resource, dependent resource) pairs this collector manages.
OWNERSHIP = (("jobs", "pods"), ("cronjobs", "jobs"))
BY_OWNER = "owner-uid"


def owner_uids(obj: Obj) -> Iterable[str]:
    return [ref["uid"] for ref in (obj.get("metadata") or {}).get("ownerReferences") or [] if ref.get("uid")]


@dataclass(frozen=True)
class OwnerPlan:
    orphan: list[Obj]
    delete: list[Obj]
    remove_finalizer: str | None


def plan_for_owner(owner: Obj, dependents: list[Obj]) -> OwnerPlan:
    """What to do for an owner that is being deleted (pure)."""
    meta = owner.get("metadata") or {}
    finalizers = meta.get("finalizers") or []
    if not meta.get("deletionTimestamp"):
        return OwnerPlan([], [], None)
    if ORPHAN_FINALIZER in finalizers:
        return OwnerPlan(dependents, [], ORPHAN_FINALIZER)
    if FOREGROUND_FINALIZER in finalizers:
        live = [d for d in dependents if not (d.get("metadata") or {}).get("deletionTimestamp")]
        return OwnerPlan([], live, FOREGROUND_FINALIZER if not dependents else None)
    return OwnerPlan([], [], None)


def orphaned(dependent: Obj, owner_exists: dict[str, bool]) -> bool:
    """A dependent whose every owner is gone (pure; owner_exists maps uid -> exists)."""
    uids = list(owner_uids(dependent))
    return bool(uids) and not any(owner_exists.get(u, True) for u in uids)


class GarbageCollector(Controller):
    name = "garbage-collector"

    def __init__(self, client: Client, clock: Clock, informers: InformerFactory) -> None:
        self.client = client
        self.owner_informers: dict[str, Informer] = {}
        self.dependent_informers: dict[str, Informer] = {}
        self.owners_by_uid: dict[str, tuple[str, Obj]] = {}
        self.owner_queue = WorkQueue(clock, "gc-owners")
        self.dependent_queue = WorkQueue(clock, "gc-dependents")
        for owner_res, dep_res in OWNERSHIP:
            owners = informers.get(owner_res)
            deps = informers.get(dep_res)
            self.owner_informers[owner_res] = owners
            self.dependent_informers[dep_res] = deps
            deps.add_index(BY_OWNER, owner_uids)
            owners.add_handler(partial(self._owner_changed, resource=owner_res),
                               partial(self._owner_updated, resource=owner_res),
                               partial(self._owner_deleted, resource=owner_res))
            deps.add_handler(partial(self._dependent_seen, resource=dep_res),
                             partial(self._dependent_updated, resource=dep_res),
                             self._dependent_deleted)

    def informers(self) -> list[Informer]:
        return [*self.owner_informers.values(), *self.dependent_informers.values()]

    def queue_workers(self) -> list[QueueWorker]:
        return [QueueWorker(self.owner_queue, self.sync_owner), QueueWorker(self.dependent_queue, self.sync_dependent)]

    # -- event handlers -----------------------------------------------------------------

    def _owner_changed(self, owner: Obj, resource: str = "") -> None:
        resource = resource or self._resource_of(owner)
        self.owners_by_uid[owner["metadata"]["uid"]] = (resource, owner)
        if owner["metadata"].get("deletionTimestamp"):
            self.owner_queue.add(f"{resource}|{owner['metadata']['namespace']}/{owner['metadata']['name']}")

    def _owner_updated(self, _old: Obj, owner: Obj, resource: str) -> None:
        self._owner_changed(owner, resource)

    def _dependent_updated(self, _old: Obj, dep: Obj, resource: str) -> None:
        self._dependent_seen(dep, resource)

    def _dependent_deleted(self, dep: Obj) -> None:
        # A Foreground-deleting owner waits for its last dependent to go: look at it again.
        for uid in owner_uids(dep):
            entry = self.owners_by_uid.get(uid)
            if entry is not None and entry[1]["metadata"].get("deletionTimestamp"):
                self._owner_changed(entry[1], entry[0])

    def _owner_deleted(self, owner: Obj, resource: str) -> None:
        uid = owner["metadata"].get("uid", "")
        self.owners_by_uid.pop(uid, None)
        for dep_res, informer in self._dependents_of(resource):
            for key in informer.index_keys(BY_OWNER, uid):
                self.dependent_queue.add(f"{dep_res}|{key}")

    def _dependent_seen(self, dep: Obj, resource: str) -> None:
        for uid in owner_uids(dep):
            entry = self.owners_by_uid.get(uid)
            if entry is None or entry[1]["metadata"].get("deletionTimestamp"):
                self.dependent_queue.add(f"{resource}|{dep['metadata']['namespace']}/{dep['metadata']['name']}")
                if entry is not None:
                    self._owner_changed(entry[1], entry[0])
                return

    def _resource_of(self, owner: Obj) -> str:
        return "cronjobs" if owner.get("kind") == "CronJob" else "jobs"

    def _dependents_of(self, owner_resource: str) -> list[tuple[str, Informer]]:
        return [(d, self.dependent_informers[d]) for o, d in OWNERSHIP if o == owner_resource]

    # -- syncs ------------------------------------------------------------------------------

    async def sync_owner(self, item: str) -> Result:
        resource, key = item.split("|", 1)
        owner = self.owner_informers[resource].get(key)
        if owner is None:
            return DONE
        uid = owner["metadata"]["uid"]
        dependents = [d for dep_res, inf in self._dependents_of(resource) for d in inf.by_index(BY_OWNER, uid)]
        plan = plan_for_owner(owner, dependents)
        for dep in plan.orphan:
            await self._drop_owner_ref(dep, uid)
        for dep in plan.delete:
            await self._delete(self._kind_resource(dep), dep, "Background")
        if plan.remove_finalizer and not plan.delete:
            finalizers = [f for f in owner["metadata"].get("finalizers") or [] if f != plan.remove_finalizer]
            try:
                await self.client.patch(resource, owner["metadata"]["name"],
                                        {"metadata": {"finalizers": finalizers or None,
                                                      "resourceVersion": owner["metadata"]["resourceVersion"]}},
                                        owner["metadata"]["namespace"])
            except Conflict:
                # Rate-limited: the local transport never yields, so an immediate retry would
                # spin before the informer sees the owner's newer version.
                self.owner_queue.add_rate_limited(item)
            except NotFound:
                pass
        return DONE

    async def sync_dependent(self, item: str) -> Result:
        resource, key = item.split("|", 1)
        dep = self.dependent_informers[resource].get(key)
        if dep is None or dep["metadata"].get("deletionTimestamp"):
            return DONE
        exists: dict[str, bool] = {}
        for ref in dep["metadata"].get("ownerReferences") or []:
            uid = ref.get("uid", "")
            if uid in self.owners_by_uid:
                exists[uid] = True
                continue
            exists[uid] = await self._owner_exists_live(ref, dep["metadata"]["namespace"])
        if orphaned(dep, exists):
            await self._delete(resource, dep, "Background")
        return DONE

    async def _owner_exists_live(self, ref: Obj, namespace: str) -> bool:
        """The cache may lag a just-created owner: ask the API before deleting anything."""
        resource = {"Job": "jobs", "CronJob": "cronjobs"}.get(ref.get("kind", ""))
        if resource is None:
            return True  # an owner kind we do not manage: never collect on its behalf
        try:
            owner = await self.client.get(resource, ref.get("name", ""), namespace)
        except NotFound:
            return False
        return bool(owner["metadata"].get("uid") == ref.get("uid"))

    async def _drop_owner_ref(self, dep: Obj, uid: str) -> None:
        refs = [r for r in dep["metadata"].get("ownerReferences") or [] if r.get("uid") != uid]
        try:
            await self.client.patch(self._kind_resource(dep), dep["metadata"]["name"],
                                    {"metadata": {"ownerReferences": refs or None}}, dep["metadata"]["namespace"])
        except NotFound:
            pass

    async def _delete(self, resource: str, dep: Obj, policy: str) -> None:
        try:
            await self.client.delete(resource, dep["metadata"]["name"], dep["metadata"]["namespace"],
                                     propagation_policy=policy,  # type: ignore[arg-type]
                                     preconditions={"uid": dep["metadata"]["uid"]})
        except (NotFound, Conflict):
            pass

    @staticmethod
    def _kind_resource(obj: Obj) -> str:
        return {"Pod": "pods", "Job": "jobs", "CronJob": "cronjobs"}.get(obj.get("kind", ""), "pods")
