"""kr8s: ``Job.wait("condition=Complete")``, ``kr8s.get`` by name (the field selector it builds), logs, patch, delete."""

from __future__ import annotations

import sys
from typing import Any

import kr8s
from common import NS, cronjob, indexed_job, report, suspended_job
from kr8s.objects import CronJob, Job

prefix = sys.argv[1]
out: dict[str, Any] = {}


def pods_of(name: str) -> list[Any]:
    return list(kr8s.get("pods", namespace=NS, label_selector={"batch.kubernetes.io/job-name": name}))


def wait_deleted(job: Any) -> None:
    job.wait("delete", timeout=90)


job = Job(indexed_job(prefix))
job.create()
job.wait("condition=Complete", timeout=90)
name = job.name
# kr8s.get by name: sends fieldSelector=metadata.name=<name>, (with a trailing empty term)
[fetched] = kr8s.get("job.batch", name, namespace=NS)
out["got_by_name"] = fetched.name
pods = pods_of(name)
out["pods"] = len(pods)
out["logs"] = sorted("\n".join(p.logs()).strip() for p in pods)
out["listed"] = sorted(j.name for j in kr8s.get("jobs", namespace=NS, label_selector={"suite": prefix}))

susp = Job(suspended_job(prefix))
susp.create()
out["suspended_pods"] = len(pods_of(susp.name))
susp.patch({"spec": {"suspend": False}})
susp.wait("condition=Complete", timeout=90)
out["resumed_complete"] = True

cron = CronJob(cronjob(prefix))
cron.create()
out["cronjobs"] = [c.name for c in kr8s.get("cronjobs", namespace=NS, label_selector={"suite": prefix})]

job.delete(propagation_policy="Orphan")
wait_deleted(job)
out["orphaned_pods"] = len(pods_of(name))
susp.delete(propagation_policy="Foreground")
wait_deleted(susp)
out["foreground_pods_left"] = len(pods_of(susp.name))
cron.delete(propagation_policy="Background")
wait_deleted(cron)
out["cronjobs_after"] = [c.name for c in kr8s.get("cronjobs", namespace=NS, label_selector={"suite": prefix})]
report(out)
