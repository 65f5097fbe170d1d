"""``joblet describe``: Job, Pod and CronJob in kubectl's layout (never raw YAML for these),
with pod templates in kubectl's structured form, a Job's pods sorted by index with reasons,
a CronJob's next schedule, and events. Other kinds fall back to YAML."""

from __future__ import annotations

from typing import Any

import yaml

from joblet.client.interface import Client
from joblet.clock import RealClock, parse_time_or_none
from joblet.objects import count_of

Obj = dict[str, Any]
INDEX_KEY = "batch.kubernetes.io/job-completion-index"


def _kv(label: str, value: Any, width: int = 24) -> str:
    return f"{label + ':':<{width}}{'' if value is None else value}"


def _map(d: dict[str, str] | None, width: int = 24) -> str:
    if not d:
        return "<none>"
    return ("\n" + " " * width).join(f"{k}={v}" for k, v in sorted(d.items()))


def _age(ts: str | None) -> str:
    from joblet.api.tables import human_duration

    when = parse_time_or_none(ts)
    if when is None:
        return "<unknown>"
    return human_duration((RealClock().now() - when).total_seconds())


def _block(label: str, text: str, indent: str) -> list[str]:
    """A multi-line value under its label, as kubectl prints commands and args."""
    lines = [f"{indent}{label}:"]
    for item in text.splitlines() or [""]:
        lines.append(f"{indent}  {item}")
    return lines


def describe_containers(containers: list[Obj] | None, statuses: list[Obj] | None, indent: str,
                        title: str = "Containers") -> list[str]:
    """kubectl's container section: image, command, args, state, env, mounts."""
    lines = [f"{indent}{title}:"]
    if not containers:
        lines[0] += " <none>"
        return lines
    by_name = {s.get("name"): s for s in statuses or []}
    pad = indent + "    "
    for c in containers:
        if not isinstance(c, dict):
            continue
        lines.append(f"{indent}  {c.get('name', '')}:")
        lines.append(_kv(f"{pad}Image", c.get("image", ""), 20 + len(pad)))
        for key, label in (("command", "Command"), ("args", "Args")):
            values = c.get(key)
            if isinstance(values, list) and values:
                lines.append(f"{pad}{label}:")
                for v in values:
                    for item in str(v).splitlines() or [""]:
                        lines.append(f"{pad}  {item}")
        status = by_name.get(c.get("name"))
        if status is not None:
            lines.extend(_state(status.get("state") or {}, "State", pad))
            if status.get("lastState"):
                lines.extend(_state(status["lastState"], "Last State", pad))
            lines.append(_kv(f"{pad}Ready", str(bool(status.get("ready"))), 20 + len(pad)))
            lines.append(_kv(f"{pad}Restart Count", count_of(status.get("restartCount")), 20 + len(pad)))
        resources = c.get("resources") or {}
        for kind in ("limits", "requests"):
            if resources.get(kind):
                lines.append(f"{pad}{kind.capitalize()}:")
                lines.extend(f"{pad}  {k}:  {v}" for k, v in sorted(resources[kind].items()))
        env = c.get("env") or []
        if env:
            lines.append(f"{pad}Environment:")
            for e in env:
                if not isinstance(e, dict):
                    continue
                if "value" in e:
                    value = str(e.get("value"))
                elif e.get("valueFrom"):
                    src = e["valueFrom"]
                    ref = next(iter(src), "valueFrom")
                    value = f"<set to the key '{(src.get(ref) or {}).get('key', '')}' of '{(src.get(ref) or {}).get('name', '')}'>" \
                        if ref in ("secretKeyRef", "configMapKeyRef") else f"({ref})"
                else:
                    value = ""
                lines.append(f"{pad}  {e.get('name', '')}:  {value}")
        else:
            lines.append(_kv(f"{pad}Environment", "<none>", 20 + len(pad)))
        mounts = c.get("volumeMounts") or []
        if mounts:
            lines.append(f"{pad}Mounts:")
            for m in mounts:
                if isinstance(m, dict):
                    ro = "ro" if m.get("readOnly") else "rw"
                    lines.append(f"{pad}  {m.get('mountPath', '')} from {m.get('name', '')} ({ro})")
        else:
            lines.append(_kv(f"{pad}Mounts", "<none>", 20 + len(pad)))
    return lines


def _state(state: Obj, label: str, pad: str) -> list[str]:
    w = 20 + len(pad)
    if "running" in state:
        return [_kv(f"{pad}{label}", "Running", w), _kv(f"{pad}  Started", (state["running"] or {}).get("startedAt"), w)]
    if "terminated" in state:
        t = state["terminated"] or {}
        lines = [_kv(f"{pad}{label}", "Terminated", w), _kv(f"{pad}  Reason", t.get("reason", ""), w)]
        if t.get("message"):
            msg = str(t["message"]).strip().splitlines()
            lines.append(_kv(f"{pad}  Message", msg[0] if msg else "", w))
            lines.extend(" " * w + m for m in msg[1:])
        lines.append(_kv(f"{pad}  Exit Code", t.get("exitCode"), w))
        if t.get("signal"):
            lines.append(_kv(f"{pad}  Signal", t.get("signal"), w))
        lines.append(_kv(f"{pad}  Started", t.get("startedAt", ""), w))
        lines.append(_kv(f"{pad}  Finished", t.get("finishedAt", ""), w))
        return lines
    if "waiting" in state:
        wt = state["waiting"] or {}
        lines = [_kv(f"{pad}{label}", "Waiting", w), _kv(f"{pad}  Reason", wt.get("reason", ""), w)]
        if wt.get("message"):
            lines.append(_kv(f"{pad}  Message", wt["message"], w))
        return lines
    return [_kv(f"{pad}{label}", "<unknown>", w)]


def describe_template(template: Obj, indent: str = "  ") -> list[str]:
    """A pod template as kubectl prints it: labels, containers, volumes; no defaulted noise."""
    meta, spec = template.get("metadata") or {}, template.get("spec") or {}
    lines = [_kv(f"{indent}Labels", _map(meta.get("labels"), 24), 24)]
    if meta.get("annotations"):
        lines.append(_kv(f"{indent}Annotations", _map(meta.get("annotations"), 24), 24))
    if spec.get("serviceAccountName"):
        lines.append(_kv(f"{indent}Service Account", spec["serviceAccountName"], 24))
    if spec.get("initContainers"):
        lines.extend(describe_containers(spec.get("initContainers"), None, indent, "Init Containers"))
    lines.extend(describe_containers(spec.get("containers"), None, indent))
    lines.extend(_volumes(spec.get("volumes"), indent))
    return lines


def _volumes(volumes: list[Obj] | None, indent: str) -> list[str]:
    if not volumes:
        return [f"{indent}Volumes:  <none>"]
    lines = [f"{indent}Volumes:"]
    for v in volumes:
        if not isinstance(v, dict):
            continue
        kind = next((k for k in v if k != "name"), "")
        lines.append(f"{indent}  {v.get('name', '')}:")
        lines.append(f"{indent}    Type:  {kind}")
        source = v.get(kind)
        if isinstance(source, dict):
            for k, val in source.items():
                if isinstance(val, (str, int, bool)):
                    lines.append(f"{indent}    {k}:  {val}")
    return lines


def _pod_sort_key(p: Obj) -> tuple[int, str]:
    index = ((p.get("metadata") or {}).get("labels") or {}).get(INDEX_KEY)
    return (count_of(index) if index is not None else -1, str((p.get("metadata") or {}).get("creationTimestamp", "")))


def _pod_outcome(p: Obj) -> str:
    st = p.get("status") or {}
    for cs in [*(st.get("initContainerStatuses") or []), *(st.get("containerStatuses") or [])]:
        t = (cs.get("state") or {}).get("terminated") or {}
        if t and count_of(t.get("exitCode")) != 0:
            message = str(t.get("message") or "").strip().splitlines()
            return f"{t.get('reason') or 'Error'} (exit {t.get('exitCode')})" + (f": {message[0]}" if message else "")
    if st.get("phase") == "Failed" and st.get("reason"):
        return f"{st['reason']}: {st.get('message', '')}".rstrip(": ")
    codes = [str(((cs.get("state") or {}).get("terminated") or {}).get("exitCode", ""))
             for cs in st.get("containerStatuses") or []]
    codes = [c for c in codes if c]
    return f"exit {','.join(codes)}" if codes else ""


def describe_job(job: Obj, pods: list[Obj], events: list[Obj]) -> str:
    meta, spec, status = job["metadata"], job.get("spec") or {}, job.get("status") or {}
    lines = [
        _kv("Name", meta["name"]),
        _kv("Namespace", meta.get("namespace")),
        _kv("Selector", ",".join(f"{k}={v}" for k, v in ((spec.get("selector") or {}).get("matchLabels") or {}).items())),
        _kv("Labels", _map(meta.get("labels"))),
        _kv("Annotations", _map(meta.get("annotations"))),
        _kv("Parallelism", spec.get("parallelism")),
        _kv("Completions", spec.get("completions", "<unset>")),
        _kv("Completion Mode", spec.get("completionMode")),
        _kv("Suspend", str(spec.get("suspend", False)).lower()),
        _kv("Backoff Limit", spec.get("backoffLimit")),
    ]
    if spec.get("backoffLimitPerIndex") is not None:
        lines.append(_kv("Backoff Limit Per Index", spec["backoffLimitPerIndex"]))
    if spec.get("maxFailedIndexes") is not None:
        lines.append(_kv("Max Failed Indexes", spec["maxFailedIndexes"]))
    if spec.get("activeDeadlineSeconds") is not None:
        lines.append(_kv("Active Deadline Seconds", f"{spec['activeDeadlineSeconds']}s"))
    if status.get("startTime"):
        lines.append(_kv("Start Time", status["startTime"]))
    if status.get("completionTime"):
        lines.append(_kv("Completed At", status["completionTime"]))
        start, end = parse_time_or_none(status.get("startTime")), parse_time_or_none(status["completionTime"])
        if start and end:
            from joblet.api.tables import human_duration

            lines.append(_kv("Duration", human_duration((end - start).total_seconds())))
    lines.append(_kv("Pods Statuses", f"{status.get('active', 0)} Active ({status.get('ready', 0)} Ready) / "
                                      f"{status.get('succeeded', 0)} Succeeded / {status.get('failed', 0)} Failed"))
    if spec.get("completionMode") == "Indexed":
        lines.append(_kv("Completed Indexes", status.get("completedIndexes") or "<none>"))
        if "failedIndexes" in status:
            lines.append(_kv("Failed Indexes", status.get("failedIndexes") or "<none>"))
    lines.append("Pod Template:")
    lines.extend(describe_template(spec.get("template") or {}))
    lines.append("Conditions:")
    conds = status.get("conditions") or []
    if conds:
        lines.append(f"  {'Type':<20}{'Status':<8}{'Reason':<24}Message")
        for c in conds:
            lines.append(f"  {c.get('type', ''):<20}{c.get('status', ''):<8}{c.get('reason', ''):<24}{c.get('message', '')}")
    else:
        lines.append("  <none>")
    lines.append("Pods:")
    if pods:
        for p in sorted(pods, key=_pod_sort_key):
            st = p.get("status") or {}
            index = ((p.get("metadata") or {}).get("labels") or {}).get(INDEX_KEY)
            label = f"[{index}] " if index is not None else ""
            lines.append(f"  {label}{p['metadata']['name']:<40}{st.get('phase', ''):<10}{_pod_outcome(p)}".rstrip())
    else:
        lines.append("  <none>")
    lines.append(describe_events(events))
    return "\n".join(lines)


def describe_pod(pod: Obj, events: list[Obj]) -> str:
    meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
    owner = next((f"{r.get('kind')}/{r.get('name')}" for r in meta.get("ownerReferences") or [] if r.get("controller")), None)
    lines = [
        _kv("Name", meta["name"], 18),
        _kv("Namespace", meta.get("namespace"), 18),
        _kv("Service Account", spec.get("serviceAccountName", "default"), 18),
        _kv("Node", spec.get("nodeName") or "<none>", 18),
        _kv("Start Time", status.get("startTime") or "<unset>", 18),
        _kv("Labels", _map(meta.get("labels"), 18), 18),
        _kv("Annotations", _map(meta.get("annotations"), 18), 18),
        _kv("Status", "Terminating" if meta.get("deletionTimestamp") else status.get("phase", ""), 18),
    ]
    if status.get("reason"):
        lines.append(_kv("Reason", status["reason"], 18))
    if status.get("message"):
        lines.append(_kv("Message", status["message"], 18))
    if owner:
        lines.append(_kv("Controlled By", owner, 18))
    if spec.get("initContainers"):
        lines.extend(describe_containers(spec.get("initContainers"), status.get("initContainerStatuses"), "",
                                         "Init Containers"))
    lines.extend(describe_containers(spec.get("containers"), status.get("containerStatuses"), ""))
    lines.append("Conditions:")
    conds = status.get("conditions") or []
    if conds:
        lines.append(f"  {'Type':<28}Status")
        lines.extend(f"  {c.get('type', ''):<28}{c.get('status', '')}" for c in conds)
    else:
        lines.append("  <none>")
    lines.extend(_volumes(spec.get("volumes"), ""))
    lines.append(describe_events(events))
    return "\n".join(lines)


def describe_cronjob(cj: Obj, jobs: list[Obj], events: list[Obj]) -> str:
    meta, spec, status = cj["metadata"], cj.get("spec") or {}, cj.get("status") or {}
    template = spec.get("jobTemplate") or {}
    jspec = template.get("spec") or {}
    w = 31
    lines = [
        _kv("Name", meta["name"], w),
        _kv("Namespace", meta.get("namespace"), w),
        _kv("Labels", _map(meta.get("labels"), w), w),
        _kv("Annotations", _map(meta.get("annotations"), w), w),
        _kv("Schedule", spec.get("schedule"), w),
    ]
    if spec.get("timeZone"):
        lines.append(_kv("Time Zone", spec["timeZone"], w))
    lines += [
        _kv("Concurrency Policy", spec.get("concurrencyPolicy", "Allow"), w),
        _kv("Suspend", str(bool(spec.get("suspend", False))), w),
        _kv("Successful Job History Limit", spec.get("successfulJobsHistoryLimit", 3), w),
        _kv("Failed Job History Limit", spec.get("failedJobsHistoryLimit", 1), w),
        _kv("Starting Deadline Seconds", f"{spec['startingDeadlineSeconds']}s"
            if spec.get("startingDeadlineSeconds") is not None else "<unset>", w),
        _kv("Parallelism", jspec.get("parallelism", "<unset>"), w),
        _kv("Completions", jspec.get("completions", "<unset>"), w),
        _kv("Backoff Limit", jspec.get("backoffLimit", "<unset>"), w),
        "Pod Template:",
        *describe_template(jspec.get("template") or {}),
        _kv("Last Schedule Time", status.get("lastScheduleTime") or "<unset>", 23),
        _kv("Last Successful Time", status.get("lastSuccessfulTime") or "<unset>", 23),
        _kv("Next Schedule", _next_schedule(cj), 23),
    ]
    active = [f"{r.get('name')}" for r in status.get("active") or []]
    lines.append(_kv("Active Jobs", ", ".join(active) if active else "<none>", 23))
    if jobs:
        lines.append("Jobs:")
        for j in sorted(jobs, key=lambda j: str(j["metadata"].get("creationTimestamp", ""))):
            conds = [c.get("type") for c in (j.get("status") or {}).get("conditions") or [] if c.get("status") == "True"]
            state = next((c for c in conds if c in ("Complete", "Failed")), "Running")
            lines.append(f"  {j['metadata']['name']:<40}{state}")
    lines.append(describe_events(events))
    return "\n".join(lines)


def _next_schedule(cj: Obj) -> str:
    """When the next Job starts (joblet addition), in the CronJob's time zone."""
    from joblet.controllers.cronjob import schedule as cron

    if (cj.get("spec") or {}).get("suspend"):
        return "<suspended>"
    try:
        sched = cron.cronjob_schedule(cj)
        zone = cron.cronjob_zone(cj, sched)
        now = RealClock().now()
        upcoming = cron.next_times(sched, now, 1, zone)
    except Exception:  # a schedule the controller rejects: describe still works
        return "<invalid schedule>"
    if not upcoming:
        return "<none>"
    from joblet.api.tables import human_duration

    nxt = upcoming[0]
    return f"{cron.format_rfc3339_in(nxt, zone)} (in {human_duration((nxt - now).total_seconds())})"


def describe_events(events: list[Obj]) -> str:
    if not events:
        return "Events:                 <none>"
    rows = ["Events:", f"  {'Type':<9}{'Reason':<22}{'Age':<7}{'From':<22}Message",
            f"  {'----':<9}{'------':<22}{'----':<7}{'----':<22}-------"]
    for e in sorted(events, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or ""):
        count = e.get("count") or 1
        age = _age(e.get("lastTimestamp") or e.get("eventTime"))
        if count > 1:
            age = f"{age} (x{count} over {_age(e.get('firstTimestamp'))})"
        rows.append(f"  {e.get('type', ''):<9}{e.get('reason', ''):<22}{age:<7}"
                    f"{(e.get('source') or {}).get('component', ''):<22}{e.get('message', '')}")
    return "\n".join(rows)


async def describe_object(client: Client, plural: str, name: str, namespace: str) -> str:
    obj = await client.get(plural, name, namespace)
    events = (await client.list("events", namespace,
                                field_selector=f"involvedObject.name={name},involvedObject.uid={obj['metadata']['uid']}")).items
    if plural == "jobs":
        pods = (await client.list("pods", namespace,
                                  label_selector=f"batch.kubernetes.io/controller-uid={obj['metadata']['uid']}")).items
        return describe_job(obj, pods, events)
    if plural == "pods":
        return describe_pod(obj, events)
    if plural == "cronjobs":
        uid = obj["metadata"]["uid"]
        jobs = [j for j in (await client.list("jobs", namespace)).items
                if any(r.get("uid") == uid for r in j["metadata"].get("ownerReferences") or [])]
        return describe_cronjob(obj, jobs, events)
    shown = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
    (shown.get("metadata") or {}).pop("managedFields", None)
    body = yaml.safe_dump(shown, sort_keys=False)
    return f"Name: {name}\nNamespace: {namespace}\nKind: {obj.get('kind')}\n{body}{describe_events(events)}"
