"""lightkube: typed resources, ``Client.wait`` for conditions, ``Client.watch``, logs, patch, cascade."""

from __future__ import annotations

import sys
from typing import Any

from common import NS, cronjob, indexed_job, report, suspended_job
from lightkube import Client, codecs
from lightkube.resources.batch_v1 import CronJob, Job
from lightkube.resources.core_v1 import Pod
from lightkube.types import CascadeType, PatchType

prefix = sys.argv[1]
kube = Client()
out: dict[str, Any] = {}


def pods_of(name: str) -> list[Any]:
    return list(kube.list(Pod, namespace=NS, labels={"batch.kubernetes.io/job-name": name}))


def delete_and_wait(name: str, cascade: CascadeType) -> None:
    """Deletes, then watches from the resourceVersion before the delete until the DELETED event."""
    rv = kube.get(Job, name, namespace=NS).metadata.resourceVersion
    kube.delete(Job, name, namespace=NS, cascade=cascade)
    for op, _ in kube.watch(Job, namespace=NS, fields={"metadata.name": name}, resource_version=rv):
        if op == "DELETED":
            return


name = f"{prefix}-idx"
kube.create(codecs.from_dict(indexed_job(prefix)))
kube.wait(Job, name, for_conditions=["Complete"], namespace=NS)
pods = pods_of(name)
out["pods"] = len(pods)
out["logs"] = sorted("".join(kube.log(p.metadata.name, namespace=NS)).strip() for p in pods)
out["listed"] = sorted(j.metadata.name for j in kube.list(Job, namespace=NS, labels={"suite": prefix}))

sname = f"{prefix}-susp"
kube.create(codecs.from_dict(suspended_job(prefix)))
out["suspended_pods"] = len(pods_of(sname))
kube.patch(Job, sname, {"spec": {"suspend": False}}, namespace=NS, patch_type=PatchType.MERGE)
kube.wait(Job, sname, for_conditions=["Complete"], namespace=NS)
out["resumed_complete"] = True

kube.create(codecs.from_dict(cronjob(prefix)))
out["cronjobs"] = [c.metadata.name for c in kube.list(CronJob, namespace=NS, labels={"suite": prefix})]

delete_and_wait(name, CascadeType.ORPHAN)
out["orphaned_pods"] = len(pods_of(name))
delete_and_wait(sname, CascadeType.FOREGROUND)
out["foreground_pods_left"] = len(pods_of(sname))
kube.delete(CronJob, f"{prefix}-cron", namespace=NS, cascade=CascadeType.BACKGROUND)
out["cronjobs_after"] = [c.metadata.name for c in kube.list(CronJob, namespace=NS, labels={"suite": prefix})]
report(out)
