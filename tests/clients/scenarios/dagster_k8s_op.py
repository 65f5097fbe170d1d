"""dagster-k8s: ``execute_k8s_job`` from an op context, with the kubeconfig joblet server wrote
(load_incluster_config=False): it creates the Job, waits for its pods and the Job through its
own watches, streams the pod's log, and returns once the Job succeeded."""

from __future__ import annotations

import contextlib
import io
import os
import sys
from typing import Any

from common import NS, report
from dagster import job, op
from dagster_k8s import execute_k8s_job
from kubernetes import client, config

prefix = sys.argv[1]
out: dict[str, Any] = {}
streamed = io.StringIO()


@op
def run_on_joblet(context):  # type: ignore[no-untyped-def]  # dagster reads the annotation at runtime
    execute_k8s_job(
        context, image="busybox", namespace=NS, load_incluster_config=False,
        kubeconfig_file=os.environ["KUBECONFIG"], k8s_job_name=f"{prefix}-run", labels={"suite": prefix},
        command=["sh", "-c", "echo hello from dagster index=${JOB_COMPLETION_INDEX:-none}"],
        job_spec_config={"completions": 3, "parallelism": 3, "completion_mode": "Indexed", "backoff_limit": 0},
        timeout=120,
    )


@job
def on_joblet() -> None:
    run_on_joblet()


with contextlib.redirect_stdout(streamed):
    out["dagster_success"] = on_joblet.execute_in_process().success
out["streamed"] = sorted({line.strip() for line in streamed.getvalue().splitlines() if "hello from dagster" in line})
config.load_kube_config(config_file=os.environ["KUBECONFIG"])
job = client.BatchV1Api().read_namespaced_job(f"{prefix}-run", NS)
out["conditions"] = sorted(c.type for c in job.status.conditions or [] if c.status == "True")
out["succeeded"] = job.status.succeeded
report(out)
