"""pykube-ng: APIObject create, Query.watch (from a resourceVersion), Pod.logs, patch, delete with a policy."""

from __future__ import annotations

import os
import sys
from typing import Any

import pykube
from common import NS, complete, cronjob, indexed_job, report, suspended_job

prefix = sys.argv[1]
api = pykube.HTTPClient(pykube.KubeConfig.from_file(os.environ["KUBECONFIG"]))
out: dict[str, Any] = {}


def jobs_named(name: str) -> Any:
    return pykube.Job.objects(api, namespace=NS).filter(field_selector={"metadata.name": name})


def wait_for(job: Any, since: str, deleted: bool) -> str:
    """Watches the Job from ``since`` until it completes (or is deleted); returns that event's resourceVersion."""
    for event in jobs_named(job.name).watch(since=since):
        if (deleted and event.type == "DELETED") or (not deleted and complete(event.object.obj)):
            return str(event.object.obj["metadata"]["resourceVersion"])
    raise SystemExit(f"job {job.name} never got there")


def pods_of(name: str) -> list[Any]:
    return list(pykube.Pod.objects(api, namespace=NS).filter(selector={"batch.kubernetes.io/job-name": name}))


job = pykube.Job(api, indexed_job(prefix))
job.create()
rv = wait_for(job, job.obj["metadata"]["resourceVersion"], deleted=False)
pods = pods_of(job.name)
out["pods"] = len(pods)
out["logs"] = sorted(p.logs().strip() for p in pods)
out["listed"] = sorted(j.name for j in pykube.Job.objects(api, namespace=NS).filter(selector={"suite": prefix}))

susp = pykube.Job(api, suspended_job(prefix))
susp.create()
out["suspended_pods"] = len(pods_of(susp.name))
susp.patch({"spec": {"suspend": False}})
srv = wait_for(susp, susp.obj["metadata"]["resourceVersion"], deleted=False)
out["resumed_complete"] = True

cron = pykube.CronJob(api, cronjob(prefix))
cron.create()
out["cronjobs"] = [c.name for c in pykube.CronJob.objects(api, namespace=NS).filter(selector={"suite": prefix})]

job.delete(propagation_policy="Orphan")
wait_for(job, rv, deleted=True)
out["orphaned_pods"] = len(pods_of(job.name))
susp.delete(propagation_policy="Foreground")
wait_for(susp, srv, deleted=True)
out["foreground_pods_left"] = len(pods_of(susp.name))
cron.delete(propagation_policy="Background")
out["cronjobs_after"] = [c.name for c in pykube.CronJob.objects(api, namespace=NS).filter(selector={"suite": prefix})]
report(out)
