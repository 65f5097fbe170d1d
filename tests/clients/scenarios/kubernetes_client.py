"""The official ``kubernetes`` client: create_from_yaml, Watch (with resume), DynamicClient, logs, patch, delete."""

from __future__ import annotations

import sys
import tempfile
from typing import Any

import yaml
from common import NS, complete, cronjob, indexed_job, report, suspended_job
from kubernetes import client, config, utils, watch
from kubernetes.dynamic import DynamicClient

prefix = sys.argv[1]
config.load_kube_config()
api = client.ApiClient()
batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
dyn = DynamicClient(api)
out: dict[str, Any] = {}


def wait_complete(name: str) -> str:
    """Watch the Job until Complete; returns the resourceVersion of that event."""
    w = watch.Watch()
    for event in w.stream(batch.list_namespaced_job, NS, field_selector=f"metadata.name={name}", timeout_seconds=90):
        obj = api.sanitize_for_serialization(event["object"])
        if complete(obj):
            w.stop()
            return str(obj["metadata"]["resourceVersion"])
    raise SystemExit(f"job {name} did not complete")


def wait_deleted(name: str, rv: str) -> None:
    w = watch.Watch()
    for event in w.stream(batch.list_namespaced_job, NS, field_selector=f"metadata.name={name}",
                          resource_version=rv, timeout_seconds=60):
        if event["type"] == "DELETED":
            w.stop()
            return
    raise SystemExit(f"job {name} was not deleted")


def pods_of(name: str) -> list[Any]:
    return list(core.list_namespaced_pod(NS, label_selector=f"batch.kubernetes.io/job-name={name}").items)


# 1. an Indexed Job from YAML, waited for with a watch
idx = indexed_job(prefix)
with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
    yaml.safe_dump(idx, f)
    f.flush()
    utils.create_from_yaml(api, f.name, namespace=NS)
rv = wait_complete(idx["metadata"]["name"])
# watch resume: a label patch seen by a watch resumed from the Complete event's resourceVersion
batch.patch_namespaced_job(idx["metadata"]["name"], NS, {"metadata": {"labels": {"seen": "yes"}}})
w = watch.Watch()
for event in w.stream(batch.list_namespaced_job, NS, resource_version=rv, timeout_seconds=30,
                      field_selector=f"metadata.name={idx['metadata']['name']}"):
    if (event["object"].metadata.labels or {}).get("seen") == "yes":
        out["resumed_event"] = event["type"]
        w.stop()
pods = pods_of(idx["metadata"]["name"])
out["pods"] = len(pods)
out["logs"] = sorted(core.read_namespaced_pod_log(p.metadata.name, NS).strip() for p in pods)
out["listed"] = sorted(j.metadata.name for j in batch.list_namespaced_job(NS, label_selector=f"suite={prefix}").items)

# 2. suspend / resume through the DynamicClient
jobs = dyn.resources.get(api_version="batch/v1", kind="Job")
susp = suspended_job(prefix)
jobs.create(body=susp, namespace=NS)
name = susp["metadata"]["name"]
out["suspended_pods"] = len(pods_of(name))
jobs.patch(name=name, namespace=NS, body={"spec": {"suspend": False}},
           content_type="application/merge-patch+json")
susp_rv = wait_complete(name)
out["resumed_complete"] = True

# 3. CronJob create / list
batch.create_namespaced_cron_job(NS, cronjob(prefix))
out["cronjobs"] = [c.metadata.name for c in batch.list_namespaced_cron_job(NS, label_selector=f"suite={prefix}").items]

# 4. delete with each propagation policy
batch.delete_namespaced_job(idx["metadata"]["name"], NS, propagation_policy="Orphan")
wait_deleted(idx["metadata"]["name"], rv)
out["orphaned_pods"] = len(pods_of(idx["metadata"]["name"]))
batch.delete_namespaced_job(name, NS, propagation_policy="Foreground")
wait_deleted(name, susp_rv)
out["foreground_pods_left"] = len(pods_of(name))
batch.delete_namespaced_cron_job(f"{prefix}-cron", NS, propagation_policy="Background")
out["cronjobs_after"] = [c.metadata.name for c in batch.list_namespaced_cron_job(NS, label_selector=f"suite={prefix}").items]
report(out)
