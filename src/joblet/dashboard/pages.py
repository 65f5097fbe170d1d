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


def job_state(job: Obj, retry: datetime | None = None) -> str:
    """Complete, Failed, Failing, Suspended, Running, Backoff or Pending (badge text and CSS class).

    ``retry`` is when a Job waiting out its pod-failure backoff creates its next pod (see
    :func:`joblet.controllers.job.backoff.retry_at`); without the pods (the list page) a Job
    with failures and nothing active counts as in backoff too."""
    if _cond(job, "Complete"):
        return "Complete"
    if _cond(job, "Failed"):
        return "Failed"
    if _cond(job, "FailureTarget"):
        return "Failing"
    if (job.get("spec") or {}).get("suspend"):
        return "Suspended"
    status = job.get("status") or {}
    if int(status.get("active") or 0) > 0:
        return "Running"
    if retry is not None or int(status.get("failed") or 0) > 0:
        return "Backoff"
    return "Pending"


def badge(state: str) -> str:
    return f'<span class="badge {esc(state.lower())}">{esc(state)}</span>'


def progress(job: Obj) -> str:
    """A bar of succeeded and active against the completions; failed attempts are counted
    beside it, not in it, so a Job that succeeded after retries reads as a success."""
    spec, status = job.get("spec") or {}, job.get("status") or {}
    succeeded, failed, active = (int(status.get(k) or 0) for k in ("succeeded", "failed", "active"))
    completions = spec.get("completions")
    want = int(completions) if completions is not None else max(1, int(spec.get("parallelism") or 1))
    total = max(want, succeeded + active, 1)
    parts = []
    for cls, n in (("succeeded", succeeded), ("active", active)):
        if n:
            parts.append(f'<span class="seg {cls}" data-width="{n / total * 100:.2f}"></span>')
    label = f"{succeeded}/{completions if completions is not None else '-'}"
    extra = f", {active} active" if active else ""
    failures = f'<span class="failed-count">{failed} failed</span>' if failed else ""
    title = label + extra + (f", {failed} failed" if failed else "")
    return (f'<div class="progress" title="{esc(title)}">{"".join(parts)}</div>'
            f'<span class="progress-label">{esc(label)}{esc(extra)}</span>{failures}')


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


def cronjob_link(cj: Obj) -> str:
    meta = cj.get("metadata") or {}
    return f"/ui/cronjobs/{q(str(meta.get('namespace') or ''))}/{q(str(meta.get('name') or ''))}"


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
            f'<tr class="cronjob-row"><td>{esc(meta.get("namespace"))}</td>'
            f'<td><a class="cronjob-link" href="{esc(cronjob_link(cj))}">{esc(meta.get("name"))}</a></td>'
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


def layout(title: str, body: str, *, csrf: str | None = None, user: str | None = None) -> str:
    """The page around ``body``. No inline script or style (the CSP forbids both); ``csrf``
    is the session's CSRF token, which ``app.js`` sends in ``X-CSRF-Token`` on actions."""
    meta_csrf = f'<meta name="joblet-csrf" content="{esc(csrf)}">' if csrf else ""
    who = ""
    if user is not None and csrf:
        who = (f'<span class="user">{esc(user)}</span><form class="logout" method="post" action="/ui/logout">'
               f'<input type="hidden" name="csrf" value="{esc(csrf)}"><button type="submit">Log out</button></form>')
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"{meta_csrf}<title>{esc(title)} · joblet</title>"
            '<link rel="stylesheet" href="/ui/static/app.css"></head><body>'
            '<header><a class="brand" href="/ui">joblet</a><span class="live" id="live-dot" title="live updates">'
            f"</span>{who}</header>"
            f'<main>{body}</main><script src="/ui/static/app.js"></script></body></html>')


def login_page(form_csrf: str, next_path: str, error: str = "") -> str:
    """The sign-in form: the token is posted once, in the body, never in a URL."""
    problem = f'<p class="error" id="login-error">{esc(error)}</p>' if error else ""
    body = ('<section class="login"><h1>Sign in</h1>'
            "<p>Paste a bearer token for this server: the admin token (the <code>token</code> in the data"
            " dir's <code>kubeconfig</code>) or one from"
            " <code>joblet token create NAME</code>. It is checked once; the browser keeps only a session"
            " cookie.</p>"
            f'{problem}<form method="post" action="/ui/login" id="login-form">'
            '<input type="password" name="token" id="token" autocomplete="off" required autofocus'
            ' placeholder="token" aria-label="token">'
            f'<input type="hidden" name="csrf" value="{esc(form_csrf)}">'
            f'<input type="hidden" name="next" value="{esc(next_path)}">'
            '<button type="submit">Sign in</button></form></section>')
    return layout("Sign in", body)


def message_page(title: str, text: str, *, csrf: str | None = None, user: str | None = None) -> str:
    return layout(title, f'<h1>{esc(title)}</h1><p class="message">{esc(text)}</p>', csrf=csrf, user=user)


def list_page(jobs: list[Obj], cronjobs: list[Obj], now: datetime, *, csrf: str | None = None,
              user: str | None = None) -> str:
    body = (f'<section id="live" data-partial="/ui/partials/jobs" '
            f'data-watch="/ui/watch/jobs">{jobs_fragment(jobs, cronjobs, now)}</section>')
    return layout("Jobs", body, csrf=csrf, user=user)


def timeline_html(tl: Timeline, namespace: str) -> str:
    if not tl.rows:
        return '<div class="timeline empty">No pods yet.</div>'
    out = ['<div class="timeline" id="timeline">']
    for row in tl.rows:
        bars = []
        for bar in row.bars:
            left, width = tl.position(bar)
            bars.append(
                f'<span class="bar {esc(bar.outcome)}" data-left="{left}" data-width="{width}" '
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


#: Normal events shown before the rest fold away (Warnings always show)
NORMAL_EVENTS_SHOWN = 10


def events_html(events: list[Obj], now: datetime) -> str:
    """Newest first; every Warning, the newest Normal events, the rest folded."""
    if not events:
        return '<p class="empty">No events.</p>'
    events = sorted(events, key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""), reverse=True)
    events = events[:100]
    shown, folded, normal = [], [], 0
    for e in events:
        if e.get("type") == "Warning" or normal < NORMAL_EVENTS_SHOWN:
            shown.append(e)
            normal += e.get("type") != "Warning"
        else:
            folded.append(e)

    def table(rows: list[Obj], extra: str = "") -> str:
        body = "".join(
            f'<tr class="{esc(str(e.get("type") or "").lower())}"><td>{esc(e.get("type"))}</td>'
            f"<td>{esc(e.get('reason'))}</td><td>{esc((e.get('involvedObject') or {}).get('kind'))}/"
            f"{esc((e.get('involvedObject') or {}).get('name'))}</td><td>{esc(age(e.get('lastTimestamp'), now))}"
            f"{' (x' + esc(e.get('count')) + ')' if int(e.get('count') or 1) > 1 else ''}</td>"
            f"<td>{esc(e.get('message'))}</td></tr>"
            for e in rows)
        return (f'<table class="list events{extra}"><thead><tr><th>Type</th><th>Reason</th><th>Object</th>'
                f"<th>Age</th><th>Message</th></tr></thead><tbody>{body}</tbody></table>")

    more = (f'<details class="older-events"><summary>{len(folded)} older events</summary>'
            f'{table(folded, " older")}</details>') if folded else ""
    return table(shown) + more


def when(t: datetime, now: datetime) -> str:
    """``in 3s (12:00:03Z)``: a coming moment, relative and absolute."""
    return f"in {duration((t - now).total_seconds())} ({t.strftime('%H:%M:%SZ')})"


def failures_html(namespace: str, failures: list[Obj], retried: bool = False) -> str:
    """The failed pods of a Job (newest first): index, pod, reason, exit code, message, last lines.

    ``failures`` are :func:`joblet.controllers.alerts.pod_entry` documents, the same ones an
    alert carries."""
    if not failures:
        return ""
    items = []
    for f in failures:
        index = f.get("index")
        who = (f"index {index} · " if index is not None else "") + str(f.get("name") or "")
        containers = f.get("containers") or []
        codes = ", ".join(f"{c['name']}: exit {c['exitCode']}" + (f" ({c['reason']})" if c.get("reason") else "")
                          for c in containers)
        reason = " · ".join(str(x) for x in (f.get("reason"), f.get("message")) if x)
        tails = []
        for c in containers:
            lines = c.get("logTail") or []
            if lines:
                link = (f"/ui/logs/{q(namespace)}/{q(str(f.get('name') or ''))}?uid={q(str(f.get('uid') or ''))}"
                        f"&container={q(str(c['name']))}")
                tails.append(f'<pre class="tail">{esc(chr(10).join(lines))}</pre>'
                             f'<a class="full-log" href="{esc(link)}">full log of {esc(c["name"])}</a>')
        items.append(f'<li class="failure" data-pod="{esc(f.get("name"))}"><div class="failure-head">'
                     f'<b>{esc(who)}</b> <span class="exit">{esc(codes)}</span></div>'
                     + (f'<div class="failure-reason">{esc(reason)}</div>' if reason else "")
                     + "".join(tails) + "</li>")
    if retried:  # the Job succeeded anyway: keep them at hand, folded
        return (f'<details class="failures retried" id="failures"><summary>{len(failures)} failed attempt'
                f'{"s" if len(failures) != 1 else ""}, retried</summary><ul>{"".join(items)}</ul></details>')
    return f'<section class="failures" id="failures"><h2>Failures</h2><ul>{"".join(items)}</ul></section>'


def job_buttons(namespace: str, name: str, job: Obj | None) -> str:
    if job is None:
        return ""
    suspended = bool((job.get("spec") or {}).get("suspend"))
    finished = job_state(job) in ("Complete", "Failed")
    return action_buttons("jobs", namespace, name, [
        ("suspend", "Suspend", not suspended and not finished, ""),
        ("resume", "Resume", suspended and not finished, ""),
        ("delete", "Delete", True, "danger")])


def job_fragment(namespace: str, name: str, job: Obj | None, tl: Timeline, events: list[Obj], now: datetime,
                 retry: datetime | None = None, failures: list[Obj] | None = None) -> str:
    """The live parts of a Job page: ``#part-main`` (buttons, summary, failures, timeline) and
    ``#part-events``; ``app.js`` swaps each into the element of the same id."""
    return "".join(job_parts(namespace, name, job, tl, events, now, retry, failures))


def job_parts(namespace: str, name: str, job: Obj | None, tl: Timeline, events: list[Obj], now: datetime,
              retry: datetime | None = None, failures: list[Obj] | None = None) -> tuple[str, str]:
    if job is None:
        head = (f'<div class="summary"><span class="badge deleted">Deleted</span> The Job {esc(namespace)}/{esc(name)}'
                " no longer exists; joblet kept its logs.</div>")
    else:
        status = job.get("status") or {}
        state = job_state(job, retry)
        conds = [c for c in status.get("conditions") or [] if c.get("status") == "True"]
        msg = "".join(f'<div class="cond {esc(str(c.get("type") or "").lower())}"><b>{esc(c.get("type"))}</b> {esc(c.get("reason"))}: '
                      f'{esc(c.get("message"))}</div>' for c in conds if c.get("message"))
        backoff = (f'<span class="retry" id="next-retry">next retry {esc(when(retry, now))}</span>'
                   if retry is not None and state == "Backoff" else "")
        head = (f'<div class="summary" data-state="{esc(state.lower())}">{badge(state)}'
                f'<span class="progress-cell">{progress(job)}</span>'
                f"<span>duration {esc(job_duration(job, now))}</span>{backoff}"
                f"{('<span>failed indexes ' + esc(status.get('failedIndexes')) + '</span>') if status.get('failedIndexes') else ''}"
                f"</div>{msg}")
    retried = job is not None and job_state(job) == "Complete"
    main = (f'<div id="part-main">{job_buttons(namespace, name, job)}{head}'
            f"{failures_html(namespace, failures or [], retried)}<h2>Timeline</h2>{timeline_html(tl, namespace)}</div>")
    return main, f'<div id="part-events"><h2>Events</h2>{events_html(events, now)}</div>'


def action_buttons(kind: str, namespace: str, name: str, buttons: list[tuple[str, str, bool, str]]) -> str:
    """Buttons ``(action, label, enabled, css class)`` that ``app.js`` POSTs to
    ``/ui/actions/{kind}/{ns}/{name}/{action}`` with the session's CSRF token."""
    out = "".join(f'<button type="button" id="{esc(action)}" data-action="{esc(action)}" class="{esc(cls)}"'
                  f'{"" if enabled else " disabled"}>{esc(label)}</button>' for action, label, enabled, cls in buttons)
    return (f'<div class="actions" data-kind="{esc(kind)}" data-ns="{esc(namespace)}" data-name="{esc(name)}">'
            f'{out}<span class="action-error" id="action-error"></span></div>')


def job_page(namespace: str, name: str, job: Obj | None, tl: Timeline, events: list[Obj], now: datetime, *,
             retry: datetime | None = None, failures: list[Obj] | None = None, csrf: str | None = None,
             user: str | None = None) -> str:
    ns_q, name_q = q(namespace), q(name)
    partial = f"/ui/partials/jobs/{ns_q}/{name_q}"
    watch = f"/ui/watch/jobs/{ns_q}/{name_q}"
    main, events_part = job_parts(namespace, name, job, tl, events, now, retry, failures)
    latest = latest_bar(tl)
    default_log = ""
    if latest is not None:
        default_log = (f' data-ns="{esc(namespace)}" data-pod="{esc(latest.pod)}" data-uid="{esc(latest.uid)}" '
                       f'data-container="{esc(latest.container)}" data-attempt="{latest.attempt}" '
                       f'data-outcome="{esc(latest.outcome)}"')
    doc = yaml.safe_dump(job, sort_keys=False) if job is not None else ""
    owner = next((r for r in ((job or {}).get("metadata") or {}).get("ownerReferences") or []
                  if r.get("kind") == "CronJob"), None)
    crumb = (f' / <a href="/ui/cronjobs/{ns_q}/{q(str(owner.get("name") or ""))}">{esc(owner.get("name"))}</a>'
             if owner else "")
    body = (f'<nav class="crumbs"><a href="/ui">Jobs</a> / {esc(namespace)}{crumb} / <b>{esc(name)}</b></nav>'
            f'<h1>{esc(name)}</h1>'
            f'<section id="live" data-partial="{esc(partial)}" data-watch="{esc(watch)}">{main}</section>'
            f'<h2>Logs <span id="log-title" class="muted"></span></h2>'
            f'<pre id="log" class="log"{default_log}>Click a bar in the timeline to see its logs.</pre>'
            f"{events_part}"
            + (f'<details><summary>YAML</summary><pre class="yaml" id="yaml">{esc(doc)}</pre></details>' if doc else ""))
    return layout(f"Job {name}", body, csrf=csrf, user=user)


def cronjob_state(cj: Obj) -> str:
    spec, status = cj.get("spec") or {}, cj.get("status") or {}
    return "Suspended" if spec.get("suspend") else ("Running" if status.get("active") else "Scheduled")


def cronjob_fragment(cj: Obj, jobs: list[Obj], events: list[Obj], next_runs: list[str], schedule_error: str,
                     now: datetime) -> str:
    """Schedule, next runs, last runs and the CronJob's Jobs (newest first), events."""
    spec, status = cj.get("spec") or {}, cj.get("status") or {}
    meta = cj.get("metadata") or {}
    suspended = bool(spec.get("suspend"))
    buttons = action_buttons("cronjobs", str(meta.get("namespace") or ""), str(meta.get("name") or ""), [
        ("run", "Run now", True, "primary"),
        ("suspend", "Suspend", not suspended, ""),
        ("resume", "Resume", suspended, "")])
    state = cronjob_state(cj)
    zone = f" ({esc(spec.get('timeZone'))})" if spec.get("timeZone") else " (UTC)"
    if spec.get("suspend"):
        upcoming = '<p class="empty">Suspended: no runs until resumed.</p>'
    elif schedule_error:
        upcoming = f'<p class="error">{esc(schedule_error)}</p>'
    else:
        upcoming = ('<ol class="next-runs" id="next-runs">' + "".join(f"<li>{esc(t)}</li>" for t in next_runs)
                    + "</ol>") if next_runs else '<p class="empty">The schedule never fires again.</p>'
    active = {str(r.get("name") or "") for r in status.get("active") or []}
    head = (f'{buttons}<div class="summary" data-state="{esc(state.lower())}">{badge(state)}'
            f'<span>schedule <code id="schedule">{esc(spec.get("schedule"))}</code>{zone}</span>'
            f"<span>last schedule {esc(age(status.get('lastScheduleTime'), now))} ago</span>"
            f"<span>last success {esc(age(status.get('lastSuccessfulTime'), now))} ago</span>"
            f"<span>{len(active)} active</span></div>")
    rows = []
    jobs = sorted(jobs, key=lambda j: str((j.get("metadata") or {}).get("creationTimestamp") or ""), reverse=True)
    for j in jobs:
        meta = j.get("metadata") or {}
        jstate = job_state(j)
        manual = (meta.get("annotations") or {}).get("cronjob.kubernetes.io/instantiate") == "manual"
        rows.append(
            f'<tr class="job-row" data-state="{esc(jstate.lower())}">'
            f'<td><a class="job-link" href="{esc(job_link(j))}">{esc(meta.get("name"))}</a>'
            + (' <span class="muted">(manual)</span>' if manual else "")
            + (' <span class="muted">(active)</span>' if meta.get("name") in active else "")
            + f"</td><td>{badge(jstate)}</td><td class=\"progress-cell\">{progress(j)}</td>"
            f"<td>{esc(job_duration(j, now))}</td><td>{esc(age(meta.get('creationTimestamp'), now))}</td></tr>")
    table = ('<table class="list" id="cronjob-jobs"><thead><tr><th>Job</th><th>Status</th><th>Progress</th>'
             '<th>Duration</th><th>Age</th></tr></thead><tbody>'
             + ("".join(rows) or '<tr><td colspan="5" class="empty">No Jobs yet.</td></tr>') + "</tbody></table>")
    return (f"{head}<h2>Next runs</h2>{upcoming}<h2>Jobs</h2>{table}"
            f"<h2>Events</h2>{events_html(events, now)}")


def cronjob_page(cj: Obj, jobs: list[Obj], events: list[Obj], next_runs: list[str], schedule_error: str,
                 now: datetime, *, csrf: str | None = None, user: str | None = None) -> str:
    meta = cj.get("metadata") or {}
    namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
    ns_q, name_q = q(namespace), q(name)
    doc = yaml.safe_dump(cj, sort_keys=False)
    body = (f'<nav class="crumbs"><a href="/ui">CronJobs</a> / {esc(namespace)} / <b>{esc(name)}</b></nav>'
            f"<h1>{esc(name)}</h1>"
            f'<section id="live" data-partial="/ui/partials/cronjobs/{ns_q}/{name_q}" '
            f'data-watch="/ui/watch/cronjobs/{ns_q}/{name_q}">'
            f"{cronjob_fragment(cj, jobs, events, next_runs, schedule_error, now)}</section>"
            f'<details><summary>YAML</summary><pre class="yaml" id="yaml">{esc(doc)}</pre></details>')
    return layout(f"CronJob {name}", body, csrf=csrf, user=user)
