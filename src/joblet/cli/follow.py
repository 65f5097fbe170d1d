"""``joblet run``: submit a Job and follow it to the end.

Shows live progress (succeeded / failed / active against completions), streams each
pod's log prefixed by its completion index or pod name as soon as the pod starts, and
returns the exit status the CLI reports: 0 for Complete, 1 for Failed.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.text import Text

from joblet.cli.manifests import Manifest
from joblet.client.interface import Client
from joblet.errors import AlreadyExists, ApiError, Gone, NotFound
from joblet.objects import condition_true, find_condition, name_of, namespace_of, uid_of

Obj = dict[str, Any]
INDEX_KEY = "batch.kubernetes.io/job-completion-index"
_COLORS = ("cyan", "magenta", "green", "yellow", "blue", "bright_cyan", "bright_magenta", "bright_green")


def progress_line(job: Obj) -> str:
    spec, status = job.get("spec") or {}, job.get("status") or {}
    completions = spec.get("completions")
    target = f"/{completions}" if completions is not None else ""
    parts = [f"{status.get('succeeded', 0)}{target} succeeded", f"{status.get('active', 0)} active",
             f"{status.get('failed', 0)} failed"]
    if status.get("terminating"):
        parts.append(f"{status['terminating']} terminating")
    if condition_true(job, "Suspended"):
        parts.append("suspended")
    return f"job/{name_of(job)}: " + ", ".join(parts)


def finished(job: Obj) -> str | None:
    for ctype in ("Complete", "Failed"):
        if condition_true(job, ctype):
            return ctype
    return None


def summary(job: Obj, outcome: str) -> str:
    status = job.get("status") or {}
    cond = find_condition(job, outcome) or {}
    text = f"job/{name_of(job)} {outcome}"
    if outcome == "Failed":
        text += f" ({cond.get('reason', '')}: {cond.get('message', '')})"
    text += f": {status.get('succeeded', 0)} succeeded, {status.get('failed', 0)} failed"
    if status.get("startTime") and (status.get("completionTime") or cond.get("lastTransitionTime")):
        from joblet.clock import parse_time

        end = status.get("completionTime") or cond["lastTransitionTime"]
        seconds = (parse_time(end) - parse_time(status["startTime"])).total_seconds()
        text += f" in {seconds:.0f}s"
    return text


@dataclass
class Follower:
    client: Client
    console: Console
    namespace: str
    job_name: str
    indexed: bool
    _log_tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    _colors: dict[str, str] = field(default_factory=dict)
    _last_progress: str = ""

    def _prefix(self, pod: Obj) -> Text:
        label = (pod.get("metadata") or {}).get("labels", {}).get(INDEX_KEY) if self.indexed else None
        tag = f"[{label}]" if label is not None else f"[{name_of(pod)}]"
        color = self._colors.setdefault(uid_of(pod), _COLORS[len(self._colors) % len(_COLORS)])
        return Text(tag + " ", style=color)

    def on_pod(self, pod: Obj) -> None:
        uid = uid_of(pod)
        if uid in self._log_tasks:
            return
        status = pod.get("status") or {}
        started = any(
            "running" in (cs.get("state") or {}) or "terminated" in (cs.get("state") or {})
            for cs in status.get("containerStatuses") or []
        )
        if not started:
            return
        self._log_tasks[uid] = asyncio.ensure_future(self._stream_logs(pod))

    async def _stream_logs(self, pod: Obj) -> None:
        prefix = self._prefix(pod)
        containers = [c["name"] for c in (pod.get("spec") or {}).get("containers") or []]
        for container in containers:
            pending = b""
            try:
                async for chunk in self.client.read_log(namespace_of(pod), name_of(pod), container, follow=True):
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    for line in lines:
                        self.console.print(prefix + Text(line.decode(errors="replace")), highlight=False)
            except ApiError:
                pass
            if pending:
                self.console.print(prefix + Text(pending.decode(errors="replace")), highlight=False)

    def on_job(self, job: Obj) -> None:
        line = progress_line(job)
        if line != self._last_progress:
            self._last_progress = line
            self.console.print(Text(line, style="bold"), highlight=False)

    async def drain_logs(self, timeout: float = 10.0) -> None:
        tasks = list(self._log_tasks.values())
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        for t in pending:
            t.cancel()


async def submit(client: Client, manifests: list[Manifest], namespace: str | None) -> Obj:
    """Create the manifests' objects (supporting ones first) and return the Job to follow."""
    job_docs = [m for m in manifests if m.resource.plural == "jobs"]
    if len(job_docs) != 1:
        raise ValueError(f"expected exactly one Job in the manifest, found {len(job_docs)}")
    for m in manifests:
        if m.resource.plural == "jobs":
            continue
        with contextlib.suppress(AlreadyExists):
            await client.create(m.resource.plural, m.obj, namespace)
    job_doc = job_docs[0].obj
    try:
        return await client.create("jobs", job_doc, namespace)
    except AlreadyExists:
        name = (job_doc.get("metadata") or {}).get("name", "")
        ns = namespace or (job_doc.get("metadata") or {}).get("namespace") or "default"
        existing = await client.get("jobs", name, ns)
        if not finished(existing):
            raise
        # A finished Job of the same name is replaced, its pods with it (logs are kept).
        await client.delete("jobs", name, ns, propagation_policy="Foreground")
        for _ in range(600):
            try:
                await client.get("jobs", name, ns)
            except NotFound:
                break
            await asyncio.sleep(0.05)
        return await client.create("jobs", job_doc, namespace)


async def follow_job(client: Client, job: Obj, console: Console) -> int:
    ns, name = namespace_of(job), name_of(job)
    indexed = (job.get("spec") or {}).get("completionMode") == "Indexed"
    follower = Follower(client, console, ns, name, indexed)
    selector = f"batch.kubernetes.io/controller-uid={uid_of(job)}"
    done = asyncio.Event()
    final: dict[str, Obj] = {}

    async def watch_pods() -> None:
        rv: str | None = None
        while not done.is_set():
            try:
                if rv is None:
                    listed = await client.list("pods", ns, label_selector=selector)
                    for pod in listed.items:
                        follower.on_pod(pod)
                    rv = listed.resource_version
                async for batch in client.watch("pods", ns, rv, label_selector=selector, timeout_seconds=30):
                    for ev in batch:
                        rv = ev.object.get("metadata", {}).get("resourceVersion", rv)
                        if ev.type in ("ADDED", "MODIFIED"):
                            follower.on_pod(ev.object)
            except Gone:
                rv = None

    async def watch_job() -> None:
        rv: str | None = None
        current = job
        while True:
            try:
                if rv is None:
                    current = await client.get("jobs", name, ns)
                    rv = current["metadata"]["resourceVersion"]
                    follower.on_job(current)
                    if finished(current):
                        break
                async for batch in client.watch("jobs", ns, rv, field_selector=f"metadata.name={name}",
                                                timeout_seconds=30):
                    for ev in batch:
                        rv = ev.object.get("metadata", {}).get("resourceVersion", rv)
                        if ev.type == "DELETED":
                            raise NotFound(f'jobs.batch "{name}" was deleted while running')
                        current = ev.object
                        follower.on_job(current)
                    if finished(current):
                        break
                if finished(current):
                    break
            except Gone:
                rv = None
        final["job"] = current
        done.set()

    pods_task = asyncio.ensure_future(watch_pods())
    try:
        await watch_job()
    finally:
        pods_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, ApiError):
            await pods_task
    await follower.drain_logs()
    outcome = finished(final["job"]) or "Unknown"
    style = "bold green" if outcome == "Complete" else "bold red"
    console.print(Text(summary(final["job"], outcome), style=style), highlight=False)
    return 0 if outcome == "Complete" else 1
