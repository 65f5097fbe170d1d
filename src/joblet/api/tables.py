"""``meta.k8s.io/v1`` Tables for ``kubectl get``: the server side of human-readable output.

kubectl asks for ``Accept: application/json;as=Table;...`` and prints whatever columns the
server sends, so the columns, cell values and their formatting (AGE, pod STATUS, RESTARTS
``2 (5s ago)``, job STATUS/COMPLETIONS/DURATION ...) are ported here from kube-apiserver's
``pkg/printers/internalversion/printers.go`` and ``apimachinery/pkg/util/duration``.
Pure functions of (objects, now): the server decides when ``now`` is.

Like kube-apiserver (which always prints with ``Wide: true`` and lets kubectl hide
``priority: 1`` columns), :func:`to_table` includes the wide columns by default.

One module (~650 lines): every resource's printer columns and row builders side by side, as
upstream's printers.go.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from joblet.api.selectors import selector_from_label_selector_dict
from joblet.clock import parse_time_or_none
from joblet.errors import BadRequest

Obj = Mapping[str, Any]
Cell = str | int | bool | float | None

# --------------------------------------------------------------------------------------
# duration.HumanDuration
# --------------------------------------------------------------------------------------


def human_duration(seconds: float) -> str:
    """k8s.io/apimachinery/pkg/util/duration.HumanDuration for a duration in seconds."""
    whole = int(seconds)  # Go's int(d.Seconds()) truncates toward zero
    if whole < -1:
        return "<invalid>"
    if whole < 0:
        return "0s"
    if whole < 60 * 2:
        return f"{whole}s"
    minutes = whole // 60
    if minutes < 10:
        s = whole % 60
        return f"{minutes}m" if s == 0 else f"{minutes}m{s}s"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = whole // 3600
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if dy == 0 else f"{hours // 24 // 365}y{dy}d"
    return f"{hours // 24 // 365}y"


def since(timestamp: Any, now: datetime) -> str:
    """``translateTimestampSince``: ``<unknown>`` for a missing time."""
    when = parse_time_or_none(timestamp)
    if when is None:
        return "<unknown>"
    return human_duration((now - when).total_seconds())


# --------------------------------------------------------------------------------------
# Column definitions
# --------------------------------------------------------------------------------------

_NAME_DOC = (
    "Name must be unique within a namespace. Is required when creating resources, although some "
    "resources may allow a client to request the generation of an appropriate name automatically. "
    "Name is primarily intended for creation idempotence and configuration definition. Cannot be "
    "updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
)
_AGE_DOC = (
    "CreationTimestamp is a timestamp representing the server time when this object was created. "
    "It is not guaranteed to be set in happens-before order across separate operations. Clients "
    "may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the "
    "system. Read-only. Null for lists. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
)


def _col(name: str, description: str, type_: str = "string", priority: int = 0, fmt: str = "") -> dict[str, Any]:
    return {"name": name, "type": type_, "format": fmt, "description": description, "priority": priority}


_NAME = _col("Name", _NAME_DOC, fmt="name")
_AGE = _col("Age", _AGE_DOC)

_TEMPLATE_COLUMNS = [
    _col("Containers", "Names of each container in the template.", priority=1),
    _col("Images", "Images referenced by each container in the template.", priority=1),
    _col("Selector", "A label query over pods that should match the pod count.", priority=1),
]


def _binding_columns(kind: str, role_doc: str) -> list[dict[str, Any]]:
    """RoleBinding and ClusterRoleBinding: the same columns, documented with their own kind."""
    return [_NAME, _col("Role", role_doc), _AGE,
            *(_col(what, f"{what} in the {kind}", priority=1) for what in ("Users", "Groups", "ServiceAccounts"))]


COLUMNS: dict[str, list[dict[str, Any]]] = {
    "pods": [
        _NAME,
        _col("Ready", "The aggregate readiness state of this pod for accepting traffic."),
        _col("Status", "The aggregate status of the containers in this pod."),
        _col("Restarts", "The number of times the containers in this pod have been restarted and when "
             "the last container in this pod has restarted."),
        _AGE,
        _col("IP", "podIP address allocated to the pod. Routable at least within the cluster. Empty if "
             "not yet allocated.", priority=1),
        _col("Node", "NodeName indicates in which node this pod is scheduled.", priority=1),
        _col("Nominated Node", "nominatedNodeName is set only when this pod preempts other pods on the "
             "node, but it cannot be scheduled right away as preemption victims receive their graceful "
             "termination periods.", priority=1),
        _col("Readiness Gates", "If specified, all readiness gates will be evaluated for pod readiness.",
             priority=1),
    ],
    "jobs": [
        _NAME,
        _col("Status", "Status of the job."),
        _col("Completions", "The number of pods which reached phase Succeeded."),
        _col("Duration", "Time required to complete the job."),
        _AGE,
        *_TEMPLATE_COLUMNS,
    ],
    "cronjobs": [
        _NAME,
        _col("Schedule", "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron."),
        _col("Timezone", "The time zone name for the given schedule, see "
             "https://en.wikipedia.org/wiki/List_of_tz_database_time_zones."),
        _col("Suspend", "This flag tells the controller to suspend subsequent executions, it does not "
             "apply to already started executions.", type_="boolean"),
        _col("Active", "A list of pointers to currently running jobs.", type_="integer"),
        _col("Last Schedule", "Information when was the last time the job was successfully scheduled."),
        _AGE,
        *_TEMPLATE_COLUMNS,
    ],
    "events": [
        _col("Last Seen", "The time at which the most recent occurrence of this event was recorded."),
        _col("Type", "Type of this event (Normal, Warning), new types could be added in the future"),
        _col("Reason", "This should be a short, machine understandable string that gives the reason "
             "for the transition into the object's current status."),
        _col("Object", "The object that this event is about."),
        _col("Subobject", "If referring to a piece of an object instead of an entire object, this "
             "string should contain a valid JSON/Go field access statement.", priority=1),
        _col("Source", "The component reporting this event.", priority=1),
        _col("Message", "A human-readable description of the status of this operation."),
        _col("First Seen", "The time at which the event was first recorded.", priority=1),
        _col("Count", "The number of times this event has occurred.", priority=1),
        _col("Name", _NAME_DOC, priority=1, fmt="name"),
    ],
    "namespaces": [_NAME, _col("Status", "The status of the namespace"), _AGE],
    "nodes": [
        _NAME,
        _col("Status", "The status of the node"),
        _col("Roles", "The roles of the node"),
        _AGE,
        _col("Version", "Kubelet Version reported by the node."),
        _col("Internal-IP", "List of addresses reachable to the node.", priority=1),
        _col("External-IP", "List of addresses reachable to the node.", priority=1),
        _col("OS-Image", "OS Image reported by the node from /etc/os-release.", priority=1),
        _col("Kernel-Version", "Kernel Version reported by the node from 'uname -r'.", priority=1),
        _col("Container-Runtime", "ContainerRuntime Version reported by the node through runtime "
             "remote API.", priority=1),
    ],
    "secrets": [
        _NAME,
        _col("Type", "Used to facilitate programmatic handling of secret data."),
        _col("Data", "Data contains the secret data."),
        _AGE,
    ],
    "configmaps": [_NAME, _col("Data", "Data contains the configuration data."), _AGE],
    "serviceaccounts": [
        _NAME,
        _col("Secrets", "Secrets is a list of the secrets in the same namespace that pods running "
             "using this ServiceAccount are allowed to use."),
        _AGE,
    ],
    "leases": [_NAME, _col("Holder", "holderIdentity contains the identity of the holder of a current lease. If "
                           "Coordinated Leader Election is used, the holder identity must be equal to the elected "
                           "LeaseCandidate.metadata.name field."), _AGE],
    "roles": [_NAME, _col("Created At", _AGE_DOC, "date")],
    "clusterroles": [_NAME, _col("Created At", _AGE_DOC, "date")],
    "rolebindings": _binding_columns("roleBinding", "Role refers to the Role or ClusterRole being bound."),
    "clusterrolebindings": _binding_columns("clusterRoleBinding", "ClusterRole refers to the ClusterRole being bound."),
}
DEFAULT_COLUMNS = [_NAME, _AGE]


def column_definitions(resource: str, wide: bool = True) -> list[dict[str, Any]]:
    columns = COLUMNS.get(resource, DEFAULT_COLUMNS)
    return [dict(c) for c in columns if wide or c["priority"] == 0]


# --------------------------------------------------------------------------------------
# Row printers: each returns the wide cells (all columns) and optional row conditions
# --------------------------------------------------------------------------------------


def _meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def _name(obj: Obj) -> str:
    return str(_meta(obj).get("name") or "")


def _age(obj: Obj, now: datetime) -> str:
    return since(_meta(obj).get("creationTimestamp"), now)


def _has_condition(conditions: Any, type_: str) -> bool:
    return any(
        isinstance(c, Mapping) and c.get("type") == type_ and c.get("status") == "True"
        for c in conditions or []
    )


def _containers_cells(containers: Any) -> tuple[str, str]:
    containers = [c for c in containers or [] if isinstance(c, Mapping)]
    return (
        ",".join(str(c.get("name") or "") for c in containers),
        ",".join(str(c.get("image") or "") for c in containers),
    )


def _selector_string(selector: Any) -> str:
    try:
        return selector_from_label_selector_dict(selector).to_string()
    except BadRequest:
        return "<error>"


def job_status(job: Obj) -> str:
    """The STATUS column of ``kubectl get jobs`` (printJob, Kubernetes 1.31+)."""
    conditions = (job.get("status") or {}).get("conditions")
    if _has_condition(conditions, "Complete"):
        return "Complete"
    if _has_condition(conditions, "Failed"):
        return "Failed"
    if _meta(job).get("deletionTimestamp"):
        return "Terminating"
    if _has_condition(conditions, "Suspended"):
        return "Suspended"
    if _has_condition(conditions, "FailureTarget"):
        return "FailureTarget"
    if _has_condition(conditions, "SuccessCriteriaMet"):
        return "SuccessCriteriaMet"
    return "Running"


def job_completions(job: Obj) -> str:
    spec = job.get("spec") or {}
    succeeded = int((job.get("status") or {}).get("succeeded") or 0)
    if spec.get("completions") is not None:
        return f"{succeeded}/{int(spec['completions'])}"
    parallelism = int(spec.get("parallelism") or 0)
    if parallelism > 1:
        return f"{succeeded}/1 of {parallelism}"
    return f"{succeeded}/1"


def job_duration(job: Obj, now: datetime) -> str:
    status = job.get("status") or {}
    start = parse_time_or_none(status.get("startTime"))
    if start is None:
        return ""
    end = parse_time_or_none(status.get("completionTime"))
    return human_duration(((end or now) - start).total_seconds())


def _print_job(job: Obj, now: datetime) -> tuple[list[Cell], list[dict[str, Any]]]:
    spec = job.get("spec") or {}
    names, images = _containers_cells(((spec.get("template") or {}).get("spec") or {}).get("containers"))
    cells: list[Cell] = [
        _name(job), job_status(job), job_completions(job), job_duration(job, now), _age(job, now),
        names, images, _selector_string(spec.get("selector")),
    ]
    return cells, []


def _print_cronjob(cj: Obj, now: datetime) -> tuple[list[Cell], list[dict[str, Any]]]:
    spec = cj.get("spec") or {}
    status = cj.get("status") or {}
    last = status.get("lastScheduleTime")
    suspend = spec.get("suspend")
    job_spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    names, images = _containers_cells(((job_spec.get("template") or {}).get("spec") or {}).get("containers"))
    cells: list[Cell] = [
        _name(cj),
        str(spec.get("schedule") or ""),
        str(spec["timeZone"]) if spec.get("timeZone") is not None else "<none>",
        "<unset>" if suspend is None else ("True" if suspend else "False"),
        len(status.get("active") or []),
        since(last, now) if last else "<none>",
        _age(cj, now),
        names, images, _selector_string(job_spec.get("selector")),
    ]
    return cells, []


_POD_SUCCEEDED_CONDITIONS = [
    {"type": "Completed", "status": "True", "reason": "Succeeded", "message": "The pod has completed successfully."}
]
_POD_FAILED_CONDITIONS = [
    {"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}
]


def _terminated_at(status: Obj) -> datetime | None:
    terminated = (status.get("lastState") or {}).get("terminated") or {}
    return parse_time_or_none(terminated.get("finishedAt"))


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def pod_status_summary(pod: Obj) -> tuple[str, int, int, int, datetime | None]:
    """printPod's core: (STATUS reason, ready containers, total containers, restarts, last restart)."""
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    containers = spec.get("containers") or []
    init_specs = {str(c.get("name")): c for c in spec.get("initContainers") or [] if isinstance(c, Mapping)}
    total = len(containers)
    ready = 0
    restarts = 0
    restartable_restarts = 0
    last_restart: datetime | None = None
    last_restartable_restart: datetime | None = None

    phase = str(status.get("phase") or "")
    reason = str(status.get("reason") or phase)
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"

    def restartable(name: Any) -> bool:
        c = init_specs.get(str(name))
        return bool(c and c.get("restartPolicy") == "Always")

    total += sum(1 for c in init_specs.values() if c.get("restartPolicy") == "Always")

    initializing = False
    init_statuses = status.get("initContainerStatuses") or []
    for i, cs in enumerate(init_statuses):
        count = int(cs.get("restartCount") or 0)
        restarts += count
        last_restart = _later(last_restart, _terminated_at(cs))
        if restartable(cs.get("name")):
            restartable_restarts += count
            last_restartable_restart = _later(last_restartable_restart, _terminated_at(cs))
        state = cs.get("state") or {}
        terminated = state.get("terminated")
        waiting = state.get("waiting")
        if terminated is not None and int(terminated.get("exitCode") or 0) == 0:
            continue
        if restartable(cs.get("name")) and cs.get("started"):
            if cs.get("ready"):
                ready += 1
            continue
        if terminated is not None:
            if not terminated.get("reason"):
                if terminated.get("signal"):
                    reason = f"Init:Signal:{int(terminated['signal'])}"
                else:
                    reason = f"Init:ExitCode:{int(terminated.get('exitCode') or 0)}"
            else:
                reason = "Init:" + str(terminated["reason"])
            initializing = True
        elif waiting is not None and waiting.get("reason") and waiting.get("reason") != "PodInitializing":
            reason = "Init:" + str(waiting["reason"])
            initializing = True
        else:
            reason = f"Init:{i}/{len(init_specs)}"
            initializing = True
        break

    initialized = _has_condition(status.get("conditions"), "Initialized")
    if not initializing or initialized:
        restarts = restartable_restarts
        last_restart = last_restartable_restart
        has_running = False
        for cs in reversed(status.get("containerStatuses") or []):
            restarts += int(cs.get("restartCount") or 0)
            last_restart = _later(last_restart, _terminated_at(cs))
            state = cs.get("state") or {}
            waiting = state.get("waiting")
            terminated = state.get("terminated")
            if waiting is not None and waiting.get("reason"):
                reason = str(waiting["reason"])
            elif terminated is not None and terminated.get("reason"):
                reason = str(terminated["reason"])
            elif terminated is not None:
                if terminated.get("signal"):
                    reason = f"Signal:{int(terminated['signal'])}"
                else:
                    reason = f"ExitCode:{int(terminated.get('exitCode') or 0)}"
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if _has_condition(status.get("conditions"), "Ready") else "NotReady"

    if _meta(pod).get("deletionTimestamp"):
        if status.get("reason") == "NodeLost":
            reason = "Unknown"
        elif phase not in ("Succeeded", "Failed"):
            reason = "Terminating"
    return reason, ready, total, restarts, last_restart


def _print_pod(pod: Obj, now: datetime) -> tuple[list[Cell], list[dict[str, Any]]]:
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    reason, ready, total, restarts, last_restart = pod_status_summary(pod)
    restarts_cell = str(restarts)
    if restarts != 0 and last_restart is not None:
        restarts_cell = f"{restarts} ({human_duration((now - last_restart).total_seconds())} ago)"

    ips = status.get("podIPs") or []
    pod_ip = str((ips[0] or {}).get("ip") or "") if ips else ""
    gates = spec.get("readinessGates") or []
    gates_cell = "<none>"
    if gates:
        conditions = status.get("conditions") or []
        true_count = 0
        for gate in gates:
            for cond in conditions:
                if cond.get("type") == gate.get("conditionType"):
                    true_count += cond.get("status") == "True"
                    break
        gates_cell = f"{true_count}/{len(gates)}"
    cells: list[Cell] = [
        _name(pod), f"{ready}/{total}", reason, restarts_cell, _age(pod, now),
        pod_ip or "<none>",
        str(spec.get("nodeName") or "") or "<none>",
        str(status.get("nominatedNodeName") or "") or "<none>",
        gates_cell,
    ]
    phase = status.get("phase")
    conditions = _POD_SUCCEEDED_CONDITIONS if phase == "Succeeded" else (
        _POD_FAILED_CONDITIONS if phase == "Failed" else [])
    return cells, [dict(c) for c in conditions]


def _event_source(event: Obj) -> str:
    source = event.get("source") or {}
    component = source.get("component") or event.get("reportingComponent") or ""
    instance = source.get("host") or event.get("reportingInstance") or ""
    return f"{component}, {instance}" if instance else str(component)


def _print_event(event: Obj, now: datetime) -> tuple[list[Cell], list[dict[str, Any]]]:
    first = since(event.get("firstTimestamp"), now)
    if not event.get("firstTimestamp"):
        first = since(event.get("eventTime"), now)
    last = since(event.get("lastTimestamp"), now) if event.get("lastTimestamp") else first
    count = int(event.get("count") or 0)
    series = event.get("series")
    if series:
        last = since(series.get("lastObservedTime"), now)
        count = int(series.get("count") or 0)
    elif count == 0:
        count = 1
    involved = event.get("involvedObject") or {}
    kind = str(involved.get("kind") or "").lower()
    target = f"{kind}/{involved['name']}" if involved.get("name") else kind
    cells: list[Cell] = [
        last, str(event.get("type") or ""), str(event.get("reason") or ""), target,
        str(involved.get("fieldPath") or ""), _event_source(event),
        str(event.get("message") or "").strip(), first, count, _name(event),
    ]
    return cells, []


def _print_namespace(ns: Obj, now: datetime) -> tuple[list[Cell], list[dict[str, Any]]]:
    return [_name(ns), str((ns.get("status") or {}).get("phase") or ""), _age(ns, now)], []


def _node_roles(node: Obj) -> str:
    roles: set[str] = set()
    for key, value in (_meta(node).get("labels") or {}).items():
        if key.startswith("node-role.kubernetes.io/"):
            role = key[len("node-role.kubernetes.io/"):]
            if role:
                roles.add(role)
        elif key == "kubernetes.io/role" and value:
            roles.add(str(value))
    return ",".join(sorted(roles)) or "<none>"


def _node_address(node: Obj, type_: str) -> str:
    for address in (node.get("status") or {}).get("addresses") or []:
        if address.get("type") == type_:
            return str(address.get("address") or "")
    return "<none>"


def _print_node(node: Obj, now: datetime) -> tuple[list[Cell], list[dict[str, Any]]]:
    status = node.get("status") or {}
    states: list[str] = []
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Ready":
            states = ["Ready" if cond.get("status") == "True" else "NotReady"]
    if not states:
        states = ["Unknown"]
    if (node.get("spec") or {}).get("unschedulable"):
        states.append("SchedulingDisabled")
    info = status.get("nodeInfo") or {}
    cells: list[Cell] = [
        _name(node), ",".join(states), _node_roles(node), _age(node, now), str(info.get("kubeletVersion") or ""),
        _node_address(node, "InternalIP"), _node_address(node, "ExternalIP"),
        str(info.get("osImage") or "") or "<unknown>",
        str(info.get("kernelVersion") or "") or "<unknown>",
        str(info.get("containerRuntimeVersion") or "") or "<unknown>",
    ]
    return cells, []


def _print_secret(secret: Obj, now: datetime) -> tuple[list[Cell], list[dict[str, Any]]]:
    return [_name(secret), str(secret.get("type") or ""), len(secret.get("data") or {}), _age(secret, now)], []


def _print_configmap(cm: Obj, now: datetime) -> tuple[list[Cell], list[dict[str, Any]]]:
    data = len(cm.get("data") or {}) + len(cm.get("binaryData") or {})
    return [_name(cm), data, _age(cm, now)], []


def _print_serviceaccount(sa: Obj, now: datetime) -> tuple[list[Cell], list[dict[str, Any]]]:
    return [_name(sa), len(sa.get("secrets") or []), _age(sa, now)], []


def _print_lease(lease: Obj, now: datetime) -> tuple[list[Cell], list[dict[str, Any]]]:
    """printLease: HOLDER is spec.holderIdentity (empty when nobody holds it)."""
    return [_name(lease), str((lease.get("spec") or {}).get("holderIdentity") or ""), _age(lease, now)], []


def _print_role(role: Obj, now: datetime) -> tuple[list[Cell], list[dict[str, Any]]]:
    """printRole/printClusterRole: CREATED AT is the RFC 3339 creation time, not an age."""
    return [_name(role), str(_meta(role).get("creationTimestamp") or "")], []


def _print_binding(binding: Obj, now: datetime) -> tuple[list[Cell], list[dict[str, Any]]]:
    """printRoleBinding/printClusterRoleBinding: ROLE is ``Kind/name``; wide lists the subjects."""
    ref = binding.get("roleRef") or {}
    users: list[str] = []
    groups: list[str] = []
    accounts: list[str] = []
    for s in binding.get("subjects") or []:
        kind, name = s.get("kind"), str(s.get("name") or "")
        if kind == "User":
            users.append(name)
        elif kind == "Group":
            groups.append(name)
        elif kind == "ServiceAccount":
            accounts.append(f"{s.get('namespace') or ''}/{name}")
    return [_name(binding), f"{ref.get('kind', '')}/{ref.get('name', '')}", _age(binding, now),
            ", ".join(users), ", ".join(groups), ", ".join(accounts)], []


def _print_default(obj: Obj, now: datetime) -> tuple[list[Cell], list[dict[str, Any]]]:
    return [_name(obj), _age(obj, now)], []


Printer = Callable[[Obj, datetime], tuple[list[Cell], list[dict[str, Any]]]]


def _print_safely(printer: Printer, obj: Obj, now: datetime, width: int) -> tuple[list[Cell], list[dict[str, Any]]]:
    """One stored object with a field of the wrong type must not break the whole listing:
    its row shows its name and ``<invalid>`` in every other cell."""
    try:
        return printer(obj, now)
    except (TypeError, ValueError, KeyError, AttributeError, IndexError):
        name = str(((obj.get("metadata") if isinstance(obj, dict) else None) or {}).get("name", "<invalid>"))
        return [name, *(["<invalid>"] * (width - 1))], []

PRINTERS: dict[str, Printer] = {
    "pods": _print_pod,
    "jobs": _print_job,
    "cronjobs": _print_cronjob,
    "events": _print_event,
    "namespaces": _print_namespace,
    "nodes": _print_node,
    "secrets": _print_secret,
    "configmaps": _print_configmap,
    "serviceaccounts": _print_serviceaccount,
    "leases": _print_lease,
    "roles": _print_role,
    "clusterroles": _print_role,
    "rolebindings": _print_binding,
    "clusterrolebindings": _print_binding,
}


# --------------------------------------------------------------------------------------
# The Table
# --------------------------------------------------------------------------------------


def partial_object_metadata(obj: Obj, api_version: str = "meta.k8s.io/v1", *,
                            managed_fields: bool = False) -> dict[str, Any]:
    """``obj`` as a PartialObjectMetadata: its metadata only.

    Table rows (``includeObject=Metadata``) drop managedFields to keep rows small; the
    ``as=PartialObjectMetadata`` answers of the metadata client keep them, as upstream."""
    metadata = {k: v for k, v in _meta(obj).items() if managed_fields or k != "managedFields"}
    return {"kind": "PartialObjectMetadata", "apiVersion": api_version, "metadata": metadata}


def _event_sort_key(event: Obj) -> str:
    # printEventList sorts by lastTimestamp (SortableEvents); RFC 3339 UTC strings sort as times
    return str(event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp") or "")


def to_table(
    resource: str,
    objects: list[dict[str, Any]],
    now: datetime,
    wide: bool = True,
    *,
    list_rv: str = "",
    include_object: str = "Metadata",
    continue_token: str = "",
    include_column_definitions: bool = True,
    api_version: str = "meta.k8s.io/v1",
) -> dict[str, Any]:
    """A ``meta.k8s.io/v1`` (or ``api_version``) Table of ``objects`` (all of the one resource ``resource``, plural).

    ``wide=True`` (the default, as kube-apiserver) emits every column; ``wide=False`` only the
    ``priority: 0`` ones. ``include_object`` is the ``includeObject`` query parameter:
    ``Metadata`` (default) → PartialObjectMetadata, ``Object`` → the full object, ``None`` → omitted.
    ``include_column_definitions=False`` gives the rows-only tables of later watch events.
    """
    printer = PRINTERS.get(resource, _print_default)
    columns = COLUMNS.get(resource, DEFAULT_COLUMNS)
    keep = [i for i, c in enumerate(columns) if wide or c["priority"] == 0]
    items = sorted(objects, key=_event_sort_key) if resource == "events" else objects
    rows: list[dict[str, Any]] = []
    for obj in items:
        cells, conditions = _print_safely(printer, obj, now, len(columns))
        row: dict[str, Any] = {"cells": cells if wide else [cells[i] for i in keep]}
        if conditions:
            row["conditions"] = conditions
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = partial_object_metadata(obj, api_version)
        rows.append(row)
    metadata: dict[str, Any] = {"resourceVersion": list_rv}
    if continue_token:
        metadata["continue"] = continue_token
    table: dict[str, Any] = {"kind": "Table", "apiVersion": api_version, "metadata": metadata}
    table["columnDefinitions"] = (
        [dict(columns[i]) for i in keep] if include_column_definitions else []
    )
    table["rows"] = rows
    return table
