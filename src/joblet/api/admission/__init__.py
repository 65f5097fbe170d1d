"""Admission: policy the registry applies to a write after validation, before it is stored.

Why: upstream runs admission plugins between validation and storage; joblet has one that
matters for a machine that runs pods as local processes, Pod Security admission
(:mod:`joblet.api.admission.pod_security`). A namespace's labels
``pod-security.kubernetes.io/{enforce,warn,audit}`` (+ ``-version``) pick a level:

* ``enforce`` rejects a Pod that violates it (403, ``pods "x" is forbidden: violates
  PodSecurity "baseline:latest": hostPath volumes (volume "h")``); Jobs and CronJobs are not
  rejected (their pods are, when the controller creates them), as upstream;
* ``warn`` adds ``would violate PodSecurity "restricted:latest": ...`` as a ``Warning``
  header, for Pods and for the pod templates of Jobs and CronJobs;
* ``audit`` is accepted; joblet has no audit annotations yet, so it is evaluated nowhere;
* a namespace whose labels name an unknown level or version is Invalid (422), as upstream.

An unknown level is treated as ``restricted`` (upstream's choice for a bad label). Warnings
go to :func:`joblet.api.warning.warn`, which both transports hand to their caller.
"""

from __future__ import annotations

import re
from typing import Any

from joblet.api.admission import pod_security
from joblet.api.warning import warn
from joblet.errors import Cause, Forbidden, invalid

Obj = dict[str, Any]
LABEL_PREFIX = "pod-security.kubernetes.io/"

def policy(namespace: Obj | None, mode: str) -> tuple[str, str]:
    """(level, version) of ``mode`` from the namespace's labels; ("privileged", "latest") if unset."""
    labels = ((namespace or {}).get("metadata") or {}).get("labels") or {}
    level = labels.get(LABEL_PREFIX + mode)
    version = str(labels.get(f"{LABEL_PREFIX}{mode}-version") or "latest")
    if level is None:
        return "privileged", version
    return (level if level in pod_security.LEVELS else "restricted"), version


_VERSION = re.compile(r"^v1\.(0|[1-9][0-9]*)$")


def _valid_level(value: str) -> bool:
    return value in pod_security.LEVELS


def _valid_version(value: str) -> bool:
    return value == "latest" or bool(_VERSION.match(value))


def admit_namespace(namespace: Obj, old: Obj | None) -> None:
    """Pod Security labels must name a level and a version (422 as upstream) when they change."""
    labels = (namespace.get("metadata") or {}).get("labels") or {}
    old_labels = ((old or {}).get("metadata") or {}).get("labels") or {}
    causes: list[Cause] = []
    for mode in ("enforce", "audit", "warn"):
        for key, valid, why in ((f"{LABEL_PREFIX}{mode}", _valid_level,
                                 "must be one of privileged, baseline, restricted"),
                                (f"{LABEL_PREFIX}{mode}-version", _valid_version, 'must be "latest" or "v1.x"')):
            value = labels.get(key)
            if value is not None and value != old_labels.get(key) and not valid(str(value)):
                causes.append(Cause(f"metadata.labels[{key}]", f'Invalid value: "{value}": {why}',
                                    "FieldValueInvalid"))
    if causes:
        raise invalid("Namespace", "", str((namespace.get("metadata") or {}).get("name") or ""), causes)


def _violations(level: str, pod_meta: Obj, pod_spec: Obj) -> list[tuple[str, str]]:
    return pod_security.evaluate(level, pod_meta if isinstance(pod_meta, dict) else {},
                                 pod_spec if isinstance(pod_spec, dict) else {})


def admit_pod(pod: Obj, old: Obj | None, namespace: Obj | None) -> None:
    """Enforce (raise 403) and warn for a Pod create, or an update that changes the spec."""
    if old is not None and not _significant_update(pod, old):
        return  # upstream ignores updates that change no image (labels, binding, tolerations...)
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    level, version = policy(namespace, "enforce")
    found = _violations(level, meta, spec)
    if found:
        name = str(meta.get("name") or meta.get("generateName") or "")
        raise Forbidden(f'pods "{name}" is forbidden: violates PodSecurity "{level}:{version}": '
                        f"{pod_security.render(found)}", {"name": name, "kind": "pods"})
    _warn(namespace, meta, spec)


def _significant_update(pod: Obj, old: Obj) -> bool:
    """As upstream's ``isSignificantPodUpdate``: the rest of a pod spec is immutable."""
    def images(obj: Obj) -> list[tuple[str, Any]]:
        spec = obj.get("spec") or {}
        return [(key, [c.get("image") for c in spec.get(key) or [] if isinstance(c, dict)])
                for key in ("initContainers", "containers", "ephemeralContainers")]
    return images(pod) != images(old)


def admit_template(template: Any, namespace: Obj | None) -> None:
    """Warn for the pod template of a Job or CronJob (never enforced on controllers)."""
    if isinstance(template, dict):
        _warn(namespace, template.get("metadata") or {}, template.get("spec") or {})


def _warn(namespace: Obj | None, meta: Obj, spec: Obj) -> None:
    level, version = policy(namespace, "warn")
    found = _violations(level, meta, spec)
    if found:
        warn(f'would violate PodSecurity "{level}:{version}": {pod_security.render(found)}')
