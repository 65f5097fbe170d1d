"""The dashboard's HTML, rendered on the server from API objects (pure functions, no I/O).

Why server-rendered: no build step, no framework, nothing fetched from a CDN; the page
works without JavaScript and the small ``static/app.js`` only re-fetches these fragments
when the watch API reports a change, streams logs and sends suspend/resume/delete.
"""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any
from urllib.parse import quote

import yaml

from joblet.clock import parse_time_or_none
from joblet.dashboard.timeline import Bar, Timeline

Obj = dict[str, Any]


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def q(value: str) -> str:
    return quote(value, safe="")


def duration(seconds: float) -> str:
    s = int(max(0, seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60}s"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60}m"
    return f"{s // 86400}d{(s % 86400) // 3600}h"


def age(ts: Any, now: datetime) -> str:
    t = parse_time_or_none(ts) if isinstance(ts, str) else None
    return duration((now - t).total_seconds()) if t else "-"


def _cond(obj: Obj, ctype: str) -> bool:
    return any(c.get("type") == ctype and c.get("status") == "True"
               for c in (obj.get("status") or {}).get("conditions") or [])


def job_state(job: Obj) -> str:
    """Complete, Failed, Suspended, Running or Pending (badge text and CSS class)."""
    if _cond(job, "Complete"):
        return "Complete"
    if _cond(job, "Failed"):
        return "Failed"
    if _cond(job, "FailureTarget"):
        return "Failing"
    if (job.get("spec") or {}).get("suspend"):
        return "Suspended"
    if int((job.get("status") or {}).get("active") or 0) > 0:
        return "Running"
    return "Pending"


def badge(state: str) -> str:
    return f'<span class="badge {esc(state.lower())}">{esc(state)}</span>'


def progress(job: Obj) -> str:
    """A stacked bar of succeeded / failed / active against the completions."""
    spec, status = job.get("spec") or {}, job.get("status") or {}
    succeeded, failed, active = (int(status.get(k) or 0) for k in ("succeeded", "failed", "active"))
    completions = spec.get("completions")
    want = int(completions) if completions is not None else max(1, int(spec.get("parallelism") or 1))
    total = max(want, succeeded + failed + active, 1)
    parts = []
    for cls, n in (("succeeded", succeeded), ("failed", failed), ("active", active)):
        if n:
            parts.append(f'<span class="seg {cls}" style="width:{n / total * 100:.2f}%"></span>')
    label = f"{succeeded}/{completions if completions is not None else '-'}"
    extra = f", {failed} failed" if failed else ""
    extra += f", {active} active" if active else ""
    return (f'<div class="progress" title="{esc(label + extra)}">{"".join(parts)}</div>'
            f'<span class="progress-label">{esc(label)}{esc(extra)}</span>')


def job_duration(job: Obj, now: datetime) -> str:
    status = job.get("status") or {}
    start = parse_time_or_none(status.get("startTime") or "") if status.get("startTime") else None
    if start is None:
        return "-"
    end_raw = status.get("completionTime") or next(
        (c.get("lastTransitionTime") for c in status.get("conditions") or []
         if c.get("type") == "Failed" and c.get("status") == "True"), None)
    end = parse_time_or_none(end_raw) if isinstance(end_raw, str) else None
    return duration(((end or now) - start).total_seconds())


def job_link(job: Obj) -> str:
    meta = job.get("metadata") or {}
    return f"/ui/jobs/{q(str(meta.get('namespace') or ''))}/{q(str(meta.get('name') or ''))}"


def jobs_fragment(jobs: list[Obj], cronjobs: list[Obj], now: datetime) -> str:
    jobs = sorted(jobs, key=lambda j: str((j.get("metadata") or {}).get("creationTimestamp") or ""), reverse=True)
    rows = []
    for j in jobs:
        meta = j.get("metadata") or {}
        state = job_state(j)
        rows.append(
            f'<tr class="job-row" data-state="{esc(state.lower())}">'
            f'<td>{esc(meta.get("namespace"))}</td>'
            f'<td><a class="job-link" href="{esc(job_link(j))}">{esc(meta.get("name"))}</a></td>'
            f"<td>{badge(state)}</td><td class=\"progress-cell\">{progress(j)}</td>"
            f"<td>{esc(job_duration(j, now))}</td><td>{esc(age(meta.get('creationTimestamp'), now))}</td></tr>")
    job_table = ('<table class="list" id="jobs-table"><thead><tr><th>Namespace</th><th>Job</th><th>Status</th>'
                 '<th>Progress</th><th>Duration</th><th>Age</th></tr></thead><tbody>'
                 + ("".join(rows) or '<tr><td colspan="6" class="empty">No Jobs yet.</td></tr>')
                 + "</tbody></table>")
    cj_rows = []
    for cj in sorted(cronjobs, key=lambda c: str((c.get("metadata") or {}).get("name") or "")):
        meta, spec, status = cj.get("metadata") or {}, cj.get("spec") or {}, cj.get("status") or {}
        state = "Suspended" if spec.get("suspend") else ("Running" if status.get("active") else "Scheduled")
        cj_rows.append(
            f'<tr><td>{esc(meta.get("namespace"))}</td><td>{esc(meta.get("name"))}</td>'
            f'<td><code>{esc(spec.get("schedule"))}</code>{" " + esc(spec.get("timeZone")) if spec.get("timeZone") else ""}</td>'
            f"<td>{badge(state)}</td><td>{len(status.get('active') or [])}</td>"
            f"<td>{esc(age(status.get('lastScheduleTime'), now))}</td>"
            f"<td>{esc(age(status.get('lastSuccessfulTime'), now))}</td></tr>")
    cj_table = ('<table class="list" id="cronjobs-table"><thead><tr><th>Namespace</th><th>CronJob</th>'
                '<th>Schedule</th><th>Status</th><th>Active</th><th>Last schedule</th><th>Last success</th>'
                "</tr></thead><tbody>"
                + ("".join(cj_rows) or '<tr><td colspan="7" class="empty">No CronJobs.</td></tr>')
                + "</tbody></table>")
    return f"<h2>Jobs</h2>{job_table}<h2>CronJobs</h2>{cj_table}"


def layout(title: str, body: str, token: str | None = None) -> str:
    meta_token = f'<meta name="joblet-token" content="{esc(token)}">' if token else ""
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"{meta_token}<title>{esc(title)} · joblet</title>"
            '<link rel="stylesheet" href="/ui/static/app.css"></head><body>'
            '<header><a class="brand" href="/ui">joblet</a><span class="live" id="live-dot" title="live updates">'
            "</span></header>"
            f'<main>{body}</main><script src="/ui/static/app.js"></script></body></html>')


def list_page(jobs: list[Obj], cronjobs: list[Obj], now: datetime, token: str | None) -> str:
    body = (f'<section id="live" data-partial="/ui/partials/jobs" '
            f'data-watch="/apis/batch/v1/jobs|/apis/batch/v1/cronjobs">{jobs_fragment(jobs, cronjobs, now)}</section>')
    return layout("Jobs", body, token)


def timeline_html(tl: Timeline, namespace: str) -> str:
    if not tl.rows:
        return '<div class="timeline empty">No pods yet.</div>'
    out = ['<div class="timeline" id="timeline">']
    for row in tl.rows:
        bars = []
        for bar in row.bars:
            left, width = tl.position(bar)
            bars.append(
                f'<span class="bar {esc(bar.outcome)}" style="left:{left}%;width:{width}%" '
                f'title="{esc(bar.title)}" data-ns="{esc(namespace)}" data-pod="{esc(bar.pod)}" '
                f'data-uid="{esc(bar.uid)}" data-container="{esc(bar.container)}" data-attempt="{bar.attempt}" '
                f'data-outcome="{esc(bar.outcome)}"></span>')
        out.append(f'<div class="tl-row"><span class="tl-label">{esc(row.label)}</span>'
                   f'<span class="tl-track">{"".join(bars)}</span></div>')
    out.append('<div class="legend"><span class="bar succeeded"></span>succeeded <span class="bar failed"></span>'
               'failed <span class="bar running"></span>running <span class="bar pending"></span>pending '
               '<span class="bar unknown"></span>pod deleted (logs kept)</div></div>')
    return "".join(out)


def latest_bar(tl: Timeline) -> Bar | None:
    bars = [b for r in tl.rows for b in r.bars if b.container or b.outcome != "pending"]
    return max(bars, key=lambda b: b.start) if bars else None


def events_html(events: list[Obj], now: datetime) -> str:
    if not events:
        return '<p class="empty">No events.</p>'
    events = sorted(events, key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))
    rows = "".join(
        f'<tr class="{esc(str(e.get("type") or "").lower())}"><td>{esc(e.get("type"))}</td>'
        f"<td>{esc(e.get('reason'))}</td><td>{esc((e.get('involvedObject') or {}).get('kind'))}/"
        f"{esc((e.get('involvedObject') or {}).get('name'))}</td><td>{esc(age(e.get('lastTimestamp'), now))}"
        f"{' (x' + esc(e.get('count')) + ')' if int(e.get('count') or 1) > 1 else ''}</td>"
        f"<td>{esc(e.get('message'))}</td></tr>"
        for e in events[-100:])
    return ('<table class="list events"><thead><tr><th>Type</th><th>Reason</th><th>Object</th><th>Age</th>'
            f"<th>Message</th></tr></thead><tbody>{rows}</tbody></table>")


def job_fragment(namespace: str, name: str, job: Obj | None, tl: Timeline, events: list[Obj], now: datetime) -> str:
    if job is None:
        head = (f'<div class="summary"><span class="badge deleted">Deleted</span> The Job {esc(namespace)}/{esc(name)}'
                " no longer exists; joblet kept its logs.</div>")
    else:
        status = job.get("status") or {}
        state = job_state(job)
        conds = [c for c in status.get("conditions") or [] if c.get("status") == "True"]
        msg = "".join(f'<div class="cond {esc(str(c.get("type") or "").lower())}"><b>{esc(c.get("type"))}</b> {esc(c.get("reason"))}: '
                      f'{esc(c.get("message"))}</div>' for c in conds if c.get("message"))
        head = (f'<div class="summary" data-state="{esc(state.lower())}">{badge(state)}'
                f'<span class="progress-cell">{progress(job)}</span>'
                f"<span>duration {esc(job_duration(job, now))}</span>"
                f"{('<span>failed indexes ' + esc(status.get('failedIndexes')) + '</span>') if status.get('failedIndexes') else ''}"
                f"</div>{msg}")
    return (f"{head}<h2>Timeline</h2>{timeline_html(tl, namespace)}"
            f"<h2>Events</h2>{events_html(events, now)}")


def job_page(namespace: str, name: str, job: Obj | None, tl: Timeline, events: list[Obj], now: datetime,
             token: str | None) -> str:
    ns_q, name_q = q(namespace), q(name)
    partial = f"/ui/partials/jobs/{ns_q}/{name_q}"
    watch = "|".join([
        f"/apis/batch/v1/namespaces/{ns_q}/jobs?fieldSelector=metadata.name%3D{name_q}",
        f"/api/v1/namespaces/{ns_q}/pods?labelSelector=batch.kubernetes.io%2Fjob-name%3D{name_q}",
        f"/api/v1/namespaces/{ns_q}/events",
    ])
    buttons = ""
    if job is not None:
        suspended = bool((job.get("spec") or {}).get("suspend"))
        finished = job_state(job) in ("Complete", "Failed")
        buttons = (f'<div class="actions" data-ns="{esc(namespace)}" data-name="{esc(name)}">'
                   f'<button id="suspend" data-suspend="true"{" disabled" if suspended or finished else ""}>Suspend'
                   f'</button><button id="resume" data-suspend="false"{"" if suspended and not finished else " disabled"}>'
                   'Resume</button><button id="delete" class="danger">Delete</button></div>')
    latest = latest_bar(tl)
    default_log = ""
    if latest is not None:
        default_log = (f' data-ns="{esc(namespace)}" data-pod="{esc(latest.pod)}" data-uid="{esc(latest.uid)}" '
                       f'data-container="{esc(latest.container)}" data-attempt="{latest.attempt}" '
                       f'data-outcome="{esc(latest.outcome)}"')
    doc = yaml.safe_dump(job, sort_keys=False) if job is not None else ""
    body = (f'<nav class="crumbs"><a href="/ui">Jobs</a> / {esc(namespace)} / <b>{esc(name)}</b></nav>'
            f'<h1>{esc(name)}</h1>{buttons}'
            f'<section id="live" data-partial="{esc(partial)}" data-watch="{esc(watch)}">'
            f"{job_fragment(namespace, name, job, tl, events, now)}</section>"
            f'<h2>Logs <span id="log-title" class="muted"></span></h2>'
            f'<pre id="log" class="log"{default_log}>Click a bar in the timeline to see its logs.</pre>'
            + (f'<details><summary>YAML</summary><pre class="yaml" id="yaml">{esc(doc)}</pre></details>' if doc else ""))
    return layout(f"Job {name}", body, token)
