"""prefect-kubernetes: ``KubernetesJob`` blocks (trigger, wait for completion, fetch the pods'
logs, delete after completion, which is a Foreground delete) and the job tasks (list by label,
patch to resume a suspended Job, delete with Orphan), called as the blocks call them (``.fn``):
outside a flow, so no Prefect API server is started (its ephemeral server takes longer to
start than this suite's budget on a loaded CI machine)."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from common import NS, indexed_job, report, suspended_job
from kubernetes_asyncio.client import V1DeleteOptions
from prefect_kubernetes.credentials import KubernetesClusterConfig, KubernetesCredentials
from prefect_kubernetes.jobs import (
    KubernetesJob,
    delete_namespaced_job,
    list_namespaced_job,
    patch_namespaced_job,
    read_namespaced_job,
)
from prefect_kubernetes.pods import list_namespaced_pod

prefix = sys.argv[1]


async def complete(creds: KubernetesCredentials, name: str) -> None:
    for _ in range(240):
        job = await read_namespaced_job.fn(creds, name, NS)
        if any(c.type == "Complete" and c.status == "True" for c in job.status.conditions or []):
            return
        await asyncio.sleep(0.5)
    raise SystemExit(f"job {name} did not complete")


async def on_joblet() -> dict[str, Any]:
    out: dict[str, Any] = {}
    creds = KubernetesCredentials(cluster_config=KubernetesClusterConfig.from_file(os.environ["KUBECONFIG"]))

    async def pods_of(name: str) -> int:
        pods = await list_namespaced_pod.fn(creds, NS, label_selector=f"batch.kubernetes.io/job-name={name}")
        return len(pods.items)

    idx = indexed_job(prefix)
    run = await KubernetesJob(v1_job=idx, credentials=creds, namespace=NS, interval_seconds=1,
                              timeout_seconds=120).atrigger()
    listed = await list_namespaced_job.fn(creds, NS, label_selector=f"suite={prefix}")
    out["listed"] = sorted(j.metadata.name for j in listed.items)
    # prefect-kubernetes 0.8 reads a Job with no active pods and a True condition that is not
    # Complete as failed ("failed due to []"): so it reads the interim SuccessCriteriaMet that
    # Kubernetes >= 1.31 (and joblet) write before removing the pods' finalizers, if its 1 s poll
    # lands between that write and Complete. Its race, not the API's: let the Job finish first,
    # then the block sees Complete and captures the logs as it always does.
    await complete(creds, idx["metadata"]["name"])
    await run.await_for_completion()
    logs = await run.afetch_result()
    out["logs"] = sorted(str(v).strip() for v in logs.values())
    # delete_after_completion (the default) deletes with Foreground: the pods go first
    out["foreground_pods_left"] = await pods_of(idx["metadata"]["name"])

    susp = suspended_job(prefix)
    name = susp["metadata"]["name"]
    srun = await KubernetesJob(v1_job=susp, credentials=creds, namespace=NS, interval_seconds=1, timeout_seconds=120,
                               delete_after_completion=False).atrigger()
    out["suspended_pods"] = await pods_of(name)
    await patch_namespaced_job.fn(creds, name, {"spec": {"suspend": False}}, NS)
    await complete(creds, name)  # as above
    await srun.await_for_completion()
    job = await read_namespaced_job.fn(creds, name, NS)
    out["resumed_complete"] = any(c.type == "Complete" and c.status == "True" for c in job.status.conditions or [])
    await delete_namespaced_job.fn(kubernetes_credentials=creds, job_name=name, namespace=NS,
                                   delete_options=V1DeleteOptions(propagation_policy="Orphan"))
    out["orphaned_pods"] = await pods_of(name)
    return out


report(asyncio.run(on_joblet()))
