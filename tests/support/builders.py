"""Object builders shared by the tests: the smallest valid Job, Pod and CronJob, with the few
knobs tests turn (a shell command, a grace period, extra spec fields).

Why: each test file used to spell its own ``job()``/``pod()``; a field Kubernetes adds (or a
default joblet changes) then meant editing twenty copies. A test that needs an unusual shape
builds on these (``job(...)["spec"][...] = ...``) instead of writing another.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


def container(command: str | None = None, *, name: str = "c", image: str = "busybox", **fields: Any) -> Obj:
    """A container; ``command`` runs under ``sh -c``."""
    c: Obj = {"name": name, "image": image, **fields}
    if command is not None:
        c["command"] = ["sh", "-c", command]
    return c


def pod_spec(command: str | None = None, *, container_name: str = "c", restart_policy: str = "Never",
             grace: int | None = None, volumes: list[Obj] | None = None, mounts: list[Obj] | None = None,
             node: str | None = None, **fields: Any) -> Obj:
    """A pod spec with one container (``fields`` are more pod-spec fields)."""
    c = container(command, name=container_name, **({"volumeMounts": mounts} if mounts else {}))
    spec: Obj = {"restartPolicy": restart_policy, "containers": [c], **fields}
    if grace is not None:
        spec["terminationGracePeriodSeconds"] = grace
    if volumes:
        spec["volumes"] = volumes
    if node:
        spec["nodeName"] = node
    return spec


def meta(name: str, namespace: str | None = None, labels: dict[str, str] | None = None,
         annotations: dict[str, str] | None = None) -> Obj:
    m: Obj = {"name": name}
    if namespace is not None:
        m["namespace"] = namespace
    if labels:
        m["labels"] = dict(labels)
    if annotations:
        m["annotations"] = dict(annotations)
    return m


def job(name: str = "j", command: str | None = None, *, namespace: str | None = None,
        labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None,
        template: Obj | None = None, **spec: Any) -> Obj:
    """A batch/v1 Job; ``spec`` are more Job spec fields (``backoffLimit=0``, ``completions=3``),
    ``template`` a pod spec to run instead of :func:`pod_spec` (``command``)."""
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta(name, namespace, labels, annotations),
            "spec": {"template": {"spec": template if template is not None else pod_spec(command)}, **spec}}


def pod(name: str = "p", command: str | None = None, *, namespace: str | None = None,
        labels: dict[str, str] | None = None, finalizers: list[str] | None = None, **spec: Any) -> Obj:
    """A v1 Pod; ``spec`` are :func:`pod_spec` keywords (``node=``, ``grace=``, ``restart_policy=``)."""
    obj: Obj = {"apiVersion": "v1", "kind": "Pod", "metadata": meta(name, namespace, labels),
                "spec": pod_spec(command, **spec)}
    if finalizers:
        obj["metadata"]["finalizers"] = list(finalizers)
    return obj


def cronjob(name: str = "cj", command: str | None = None, schedule: str = "0 3 * * *", *,
            namespace: str | None = None, job_spec: Obj | None = None, **spec: Any) -> Obj:
    """A batch/v1 CronJob whose jobs run :func:`job`'s spec (or ``job_spec``)."""
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta(name, namespace),
            "spec": {"schedule": schedule, **spec,
                     "jobTemplate": {"spec": job_spec if job_spec is not None else job(name, command)["spec"]}}}
