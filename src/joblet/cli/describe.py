"""``joblet describe``: an object in detail, in kubectl's layout, with its pods and events."""

from __future__ import annotations

from typing import Any

import yaml

from joblet.client.interface import Client
from joblet.clock import RealClock, parse_time_or_none

Obj = dict[str, Any]


def _kv(label: str, value: Any, width: int = 24) -> str:
    return f"{label + ':':<{width}}{'' if value is None else value}"


def _map(d: dict[str, str] | None) -> str:
    if not d:
        return "<none>"
    return ("\n" + " " * 24).join(f"{k}={v}" for k, v in sorted(d.items()))


def _age(ts: str | None) -> str:
    from joblet.api.tables import human_duration

    when = parse_time_or_none(ts)
    if when is None:
        return "<unknown>"
    return human_duration((RealClock().now() - when).total_seconds())


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
    lines.extend("  " + line for line in yaml.safe_dump(spec.get("template") or {}, sort_keys=False).splitlines())
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
        for p in sorted(pods, key=lambda p: p["metadata"].get("creationTimestamp", "")):
            st = p.get("status") or {}
            codes = [str(((cs.get("state") or {}).get("terminated") or {}).get("exitCode", ""))
                     for cs in st.get("containerStatuses") or []]
            exit_codes = ",".join(c for c in codes if c)
            lines.append(f"  {p['metadata']['name']:<40}{st.get('phase', ''):<10}"
                         + (f"exit {exit_codes}" if exit_codes else ""))
    else:
        lines.append("  <none>")
    lines.append(describe_events(events))
    return "\n".join(lines)


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
    body = yaml.safe_dump({k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}, sort_keys=False)
    return f"Name: {name}\nNamespace: {namespace}\nKind: {obj.get('kind')}\n{body}{describe_events(events)}"
