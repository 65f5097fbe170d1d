"""Defaulting of API objects, as the Kubernetes API server applies it on write.

Kubernetes fills defaults when it decodes a request (``SetDefaults_*``) and, for Jobs,
generates the selector in ``PrepareForCreate``. joblet does the same in place on the
wire dict, before validation, so stored objects look exactly like a cluster's
(``kubectl get -o yaml`` shows the same fields) and controllers never meet a missing
default.
"""

from __future__ import annotations

from typing import Any

MAX_INT32 = 2**31 - 1

JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"
LEGACY_JOB_NAME_LABEL = "job-name"
LEGACY_CONTROLLER_UID_LABEL = "controller-uid"

Obj = dict[str, Any]


def _dict(parent: Obj, key: str) -> Obj:
    value = parent.get(key)
    if not isinstance(value, dict):
        value = {}
        parent[key] = value
    return value


# ---------------------------------------------------------------- containers and pods


def image_pull_policy_for(image: str) -> str:
    """``Always`` for ``:latest`` or an untagged image, else ``IfNotPresent`` (digests count as tags)."""
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return "Always"
    return "Always" if last.rsplit(":", 1)[1] == "latest" else "IfNotPresent"


def _default_probe(probe: Any) -> None:
    if isinstance(probe, dict):
        probe.setdefault("timeoutSeconds", 1)
        probe.setdefault("periodSeconds", 10)
        probe.setdefault("successThreshold", 1)
        probe.setdefault("failureThreshold", 3)


def default_container(ctr: Obj) -> None:
    ctr.setdefault("terminationMessagePath", "/dev/termination-log")
    ctr.setdefault("terminationMessagePolicy", "File")
    if not ctr.get("imagePullPolicy") and isinstance(ctr.get("image"), str) and ctr["image"]:
        ctr["imagePullPolicy"] = image_pull_policy_for(ctr["image"])
    for port in ctr.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
    for var in ctr.get("env") or []:
        src = var.get("valueFrom") if isinstance(var, dict) else None
        if isinstance(src, dict) and isinstance(src.get("fieldRef"), dict):
            src["fieldRef"].setdefault("apiVersion", "v1")
    if "resources" not in ctr:
        ctr["resources"] = {}
    for key in ("livenessProbe", "readinessProbe", "startupProbe"):
        _default_probe(ctr.get(key))


def _default_volume(vol: Obj) -> None:
    for key in ("configMap", "secret", "downwardAPI", "projected"):
        src = vol.get(key)
        if isinstance(src, dict):
            src.setdefault("defaultMode", 0o644)
    dapi = vol.get("downwardAPI")
    if isinstance(dapi, dict):
        for item in dapi.get("items") or []:
            if isinstance(item.get("fieldRef"), dict):
                item["fieldRef"].setdefault("apiVersion", "v1")
    hp = vol.get("hostPath")
    if isinstance(hp, dict):
        hp.setdefault("type", "")
    ed = vol.get("emptyDir")
    if ed is None and not any(k in vol for k in ("hostPath", "configMap", "secret", "downwardAPI", "projected",
                                                 "persistentVolumeClaim", "nfs", "ephemeral", "csi", "image")):
        vol["emptyDir"] = {}


def default_pod_spec(spec: Obj, *, restart_policy: bool = True) -> None:
    """``SetDefaults_PodSpec`` (+ containers/volumes). ``restart_policy=False`` keeps an empty
    restartPolicy empty (Job templates: their validation reports it with its own words)."""
    spec.setdefault("dnsPolicy", "ClusterFirst")
    if restart_policy:
        spec.setdefault("restartPolicy", "Always")
    spec.setdefault("schedulerName", "default-scheduler")
    if not isinstance(spec.get("securityContext"), dict):
        spec["securityContext"] = {}
    spec.setdefault("terminationGracePeriodSeconds", 30)
    for group in ("initContainers", "containers"):
        for ctr in spec.get(group) or []:
            if isinstance(ctr, dict):
                default_container(ctr)
    for vol in spec.get("volumes") or []:
        if isinstance(vol, dict):
            _default_volume(vol)


def default_pod_template(template: Obj, *, restart_policy: bool = False) -> None:
    spec = _dict(template, "spec")
    default_pod_spec(spec, restart_policy=restart_policy)


def default_pod(pod: Obj) -> None:
    """``SetDefaults_Pod``: pod-spec defaults, ``enableServiceLinks``, requests from limits."""
    spec = _dict(pod, "spec")
    default_pod_spec(spec, restart_policy=True)
    spec.setdefault("enableServiceLinks", True)
    for group in ("initContainers", "containers"):
        for ctr in spec.get(group) or []:
            if not isinstance(ctr, dict):
                continue
            resources = ctr.get("resources") or {}
            limits = resources.get("limits") or {}
            if limits:
                requests = resources.setdefault("requests", {})
                for name, value in limits.items():
                    requests.setdefault(name, value)
                ctr["resources"] = resources


# ---------------------------------------------------------------- Job


def default_job_spec(spec: Obj) -> None:
    """``SetDefaults_Job``'s spec part (runs on every decode, create and update)."""
    if spec.get("completions") is None and spec.get("parallelism") is None:
        # Also for Indexed Jobs, as upstream's SetDefaults_Job: the "completions required"
        # rule only bites when parallelism alone was given.
        spec["completions"] = 1
        spec["parallelism"] = 1
    if spec.get("parallelism") is None:
        spec["parallelism"] = 1
    if spec.get("backoffLimit") is None:
        spec["backoffLimit"] = MAX_INT32 if spec.get("backoffLimitPerIndex") is not None else 6
    if spec.get("completionMode") is None:
        spec["completionMode"] = "NonIndexed"
    if spec.get("suspend") is None:
        spec["suspend"] = False
    pfp = spec.get("podFailurePolicy")
    if isinstance(pfp, dict):
        for rule in pfp.get("rules") or []:
            for pattern in (rule.get("onPodConditions") or []) if isinstance(rule, dict) else []:
                if isinstance(pattern, dict) and not pattern.get("status"):
                    pattern["status"] = "True"
    if spec.get("podReplacementPolicy") is None:
        spec["podReplacementPolicy"] = "Failed" if pfp is not None else "TerminatingOrFailed"
    if spec.get("manualSelector") is None:
        spec["manualSelector"] = False
    template = spec.get("template")
    if isinstance(template, dict):
        default_pod_template(template)


def generate_job_selector(job: Obj, uid: str) -> None:
    """``generateSelector``: the 4 template labels (user values kept) and the uid selector."""
    name = str((job.get("metadata") or {}).get("name") or "")
    spec = _dict(job, "spec")
    template = _dict(spec, "template")
    labels = _dict(_dict(template, "metadata"), "labels")
    for key in (LEGACY_JOB_NAME_LABEL, JOB_NAME_LABEL):
        labels.setdefault(key, name)
    for key in (LEGACY_CONTROLLER_UID_LABEL, CONTROLLER_UID_LABEL):
        labels.setdefault(key, uid)
    selector = _dict(spec, "selector")
    match_labels = _dict(selector, "matchLabels")
    match_labels.setdefault(CONTROLLER_UID_LABEL, uid)


def default_job(job: Obj, uid: str | None = None) -> None:
    """Default a Job in place. With ``uid`` (create) also generate the selector unless
    ``manualSelector`` is true, and set ``metadata.uid`` if missing. Without (update) only
    the decode-time defaults run. Either way a Job without labels takes the template's."""
    spec = _dict(job, "spec")
    default_job_spec(spec)
    meta = _dict(job, "metadata")
    if uid is not None:
        if not meta.get("uid"):
            meta["uid"] = uid
        if spec.get("manualSelector") is not True:
            generate_job_selector(job, str(meta["uid"]))
    template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels")
    if template_labels and not meta.get("labels"):
        meta["labels"] = dict(template_labels)


# ---------------------------------------------------------------- CronJob and small objects


def default_cronjob(cj: Obj) -> None:
    """``SetDefaults_CronJob`` plus pod-template defaults inside ``jobTemplate``."""
    spec = _dict(cj, "spec")
    if not spec.get("concurrencyPolicy"):
        spec["concurrencyPolicy"] = "Allow"
    if spec.get("suspend") is None:
        spec["suspend"] = False
    if spec.get("successfulJobsHistoryLimit") is None:
        spec["successfulJobsHistoryLimit"] = 3
    if spec.get("failedJobsHistoryLimit") is None:
        spec["failedJobsHistoryLimit"] = 1
    job_template = spec.get("jobTemplate")
    if isinstance(job_template, dict):
        jt_spec = job_template.get("spec")
        if isinstance(jt_spec, dict) and isinstance(jt_spec.get("template"), dict):
            default_pod_template(jt_spec["template"])


def default_namespace(ns: Obj) -> None:
    """Finalizer ``kubernetes``, phase ``Active`` and the ``kubernetes.io/metadata.name`` label."""
    meta = _dict(ns, "metadata")
    name = meta.get("name")
    if name:
        _dict(meta, "labels")["kubernetes.io/metadata.name"] = str(name)
    spec = _dict(ns, "spec")
    if spec.get("finalizers") is None:
        spec["finalizers"] = ["kubernetes"]
    status = _dict(ns, "status")
    if not status.get("phase"):
        status["phase"] = "Active"


def default_secret(secret: Obj) -> None:
    """Type ``Opaque``; ``stringData`` folded into base64 ``data`` as the API server does."""
    import base64

    if not secret.get("type"):
        secret["type"] = "Opaque"
    string_data = secret.pop("stringData", None)
    if isinstance(string_data, dict) and string_data:
        data = _dict(secret, "data")
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()


def default_configmap(cm: Obj) -> None:
    """ConfigMaps have no defaults; kept for a uniform registry table."""


def default_service_account(sa: Obj) -> None:
    """ServiceAccounts have no defaults; kept for a uniform registry table."""


def default_node(node: Obj) -> None:
    status = _dict(node, "status")
    capacity = status.get("capacity")
    if isinstance(capacity, dict) and not status.get("allocatable"):
        status["allocatable"] = dict(capacity)


def qos_class(pod: Obj) -> str:
    """``status.qosClass``: Guaranteed when every container's cpu and memory requests equal
    its limits, BestEffort when no container sets any, else Burstable (upstream GetPodQOS)."""
    from joblet.api.validation.core import parse_quantity

    containers = [*(pod["spec"].get("initContainers") or []), *(pod["spec"].get("containers") or [])]
    any_set = False
    guaranteed = True
    for c in containers:
        res = c.get("resources") or {}
        limits, requests = res.get("limits") or {}, res.get("requests") or {}
        if limits or requests:
            any_set = True
        for r in ("cpu", "memory"):
            if r not in limits or parse_quantity(requests.get(r, limits[r])) != parse_quantity(limits[r]):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"
