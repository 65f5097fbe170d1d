"""``joblet run``: submit a Job and follow it to the end.

Streams each pod's log prefixed by its completion index (``[3]``, ``[3#2]`` for a retry) or
pod name as soon as the pod starts, prints one line per failed attempt (reason, exit code,
message, when it is retried), keeps a pinned status line on a terminal (plain progress lines
otherwise, at most 4 a second; both count the pods as they finish, :mod:`joblet.cli.progress`),
drains the logs before a summary that names what failed and where to look next, and returns
the exit status the CLI reports: 0 Complete, 1 Failed (or the failed pod's exit code with
``--exit-code=pod``), 2 when the controller cannot process the Job.
Ctrl-C/SIGTERM are handled by :func:`follow_interruptible`.

One module (~660 lines): `joblet run`'s follower is one loop (status, logs, events, summary)
whose pure renderers sit at the top.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.text import Text

from joblet.cli.manifests import Manifest
from joblet.cli.progress import Pacer, PodTally, line_to_print, merged_counts
from joblet.client.interface import Client, FieldValidation
from joblet.clock import Clock, RealClock, parse_time_or_none, poll_pause
from joblet.errors import AlreadyExists, ApiError, Gone, NotFound
from joblet.objects import (
    condition_true,
    count_of,
    find_condition,
    job_finished,
    name_of,
    namespace_of,
    uid_of,
)

Obj = dict[str, Any]
INDEX_KEY = "batch.kubernetes.io/job-completion-index"
INVALID_OBJECT_REASON = "InvalidObject"  # joblet.controllers.events.INVALID_OBJECT_REASON
_COLORS = ("cyan", "magenta", "green", "yellow", "blue", "bright_cyan", "bright_magenta", "bright_green")


@dataclass
class RunContext:
    """What the follower knows about where the Job runs (for hints and retry times)."""

    embedded: bool = True
    url: str | None = None  # the API server, when one serves HTTP
    backoff_base: float | None = None  # the Job pod-failure backoff, when known (embedded)
    backoff_max: float = 600.0
    exit_code: str = "job"  # "job": 0/1; "pod": the failed pod's exit code
    cli_args: str = ""  # e.g. " --data-dir D" appended to hint commands


class InvalidJob(Exception):
    """The controller cannot process the submitted Job (a field it cannot decode)."""


def _seconds(seconds: float) -> str:
    if seconds < 1:
        return "<1s" if seconds <= 0 else f"{seconds:.1f}s"
    return f"{seconds:.1f}s" if seconds < 10 else f"{seconds:.0f}s"


def summary(job: Obj, outcome: str) -> str:
    status = job.get("status") or {}
    cond = find_condition(job, outcome) or {}
    text = f"job/{name_of(job)} {outcome}"
    if outcome == "Failed":
        text += f" ({cond.get('reason', '')}: {cond.get('message', '')})"
    text += f": {count_of(status.get('succeeded'))} succeeded, {count_of(status.get('failed'))} failed"
    start = parse_time_or_none(status.get("startTime"))
    end = parse_time_or_none(status.get("completionTime") or cond.get("lastTransitionTime"))
    if start is not None and end is not None:
        text += f" in {_seconds((end - start).total_seconds())}"
    return text


@dataclass
class Attempt:
    """A failed pod, as the failure line and the summary report it."""

    pod: str
    index: str | None
    number: int
    reason: str
    exit_code: int | None
    message: str


def pod_failure(pod: Obj) -> tuple[str, int | None, str]:
    """(reason, exit code, message) of a failed pod: its failed container's, else the pod's."""
    status = pod.get("status") or {}
    for cs in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]:
        term = (cs.get("state") or {}).get("terminated") or {}
        if term and count_of(term.get("exitCode")) != 0:
            return (str(term.get("reason") or "Error"), count_of(term.get("exitCode")),
                    str(term.get("message") or "").strip())
    return str(status.get("reason") or "Failed"), None, str(status.get("message") or "").strip()


def failure_text(reason: str, exit_code: int | None, message: str) -> str:
    """``StartError (exit 128): exec: "x": executable file not found in $PATH``."""
    text = reason + (f" (exit {exit_code})" if exit_code is not None else "")
    first = message.splitlines()[0] if message else ""
    return text + (f": {first}" if first else "")


@dataclass
class Follower:
    client: Client
    console: Console
    namespace: str
    job_name: str
    indexed: bool
    context: RunContext = field(default_factory=RunContext)
    job: Obj = field(default_factory=dict)
    failures: list[Attempt] = field(default_factory=list)
    _log_tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    _colors: dict[str, str] = field(default_factory=dict)
    _tags: dict[str, str] = field(default_factory=dict)
    _attempts: dict[str, int] = field(default_factory=dict)
    _failed_uids: set[str] = field(default_factory=set)
    _last_line: dict[str, str] = field(default_factory=dict)
    _last_progress: str = ""
    _printed_total: int = 0
    _retry_at: float | None = None
    _pod_name_by_uid: dict[str, str] = field(default_factory=dict)
    _reports: list[asyncio.Future[None]] = field(default_factory=list)
    live: Live | None = None
    clock: Clock = field(default_factory=RealClock)
    pacer: Pacer = field(default_factory=Pacer)
    changed: asyncio.Event = field(default_factory=asyncio.Event)  # counts moved since the last line

    def __post_init__(self) -> None:
        self._started = self.clock.monotonic()
        self.tally = PodTally(self.indexed)  # the pods' own counts, fresher than the Job's status

    def _key(self, pod: Obj) -> str:
        index = (pod.get("metadata") or {}).get("labels", {}).get(INDEX_KEY) if self.indexed else None
        return str(index) if index is not None else name_of(pod)

    def _tag(self, pod: Obj) -> str:
        uid = uid_of(pod)
        tag = self._tags.get(uid)
        if tag is None:
            key = self._key(pod)
            n = self._attempts[key] = self._attempts.get(key, 0) + 1
            tag = f"[{key}#{n}]" if n > 1 else f"[{key}]"
            self._tags[uid] = tag
        return tag

    def _prefix(self, pod: Obj) -> Text:
        color = self._colors.setdefault(uid_of(pod), _COLORS[len(self._colors) % len(_COLORS)])
        return Text(self._tag(pod) + " ", style=color)

    def on_pod(self, pod: Obj) -> None:
        uid = uid_of(pod)
        if self.tally.observe(pod):
            self.changed.set()
        self._pod_name_by_uid[uid] = name_of(pod)
        self._tag(pod)  # number attempts in creation order
        status = pod.get("status") or {}
        if uid not in self._log_tasks:
            started = any(
                "running" in (cs.get("state") or {}) or "terminated" in (cs.get("state") or {})
                for cs in status.get("containerStatuses") or []
            )
            if started:
                self._log_tasks[uid] = asyncio.ensure_future(self._stream_logs(pod))
        if status.get("phase") == "Failed" and uid not in self._failed_uids:
            self._failed_uids.add(uid)
            reason, code, message = pod_failure(pod)
            key = self._key(pod)
            self.failures.append(Attempt(name_of(pod), key if self.indexed else None, self._attempts.get(key, 1),
                                         reason, code, message))
            retry = self._retry_note()  # decided now: the Job may have moved on by the time it prints
            self._reports.append(asyncio.ensure_future(self._report_failure(pod, retry)))

    def on_pod_deleted(self, pod: Obj) -> None:
        if self.tally.deleted(pod):
            self.changed.set()

    def on_pods_listed(self, pods: list[Obj]) -> None:
        """A (re)list: pods that were running and are no longer there are gone."""
        if self.tally.relisted({uid_of(p) for p in pods}):
            self.changed.set()
        for pod in sorted(pods, key=lambda p: p["metadata"].get("creationTimestamp", "")):
            self.on_pod(pod)

    async def _report_failure(self, pod: Obj, retry: str) -> None:
        task = self._log_tasks.get(uid_of(pod))
        if task is not None:  # its last log lines first, then why it failed
            with contextlib.suppress(Exception):
                await asyncio.wait({task}, timeout=2.0)
        reason, code, message = pod_failure(pod)
        who = f"{self._tag(pod)} {name_of(pod)}" if self.indexed else self._tag(pod)
        line = f"{who} {failure_text(reason, code, message)}"
        self.console.print(Text(line + retry, style="red"), highlight=False)

    def _retry_note(self) -> str:
        """``, retry in 10s`` when the attempt just recorded is retried (within the backoff
        limit, per index with backoffLimitPerIndex) and the backoff base is known."""
        spec = self.job.get("spec") or {}
        if not self.failures:
            return ""
        last = self.failures[-1]
        per_index = spec.get("backoffLimitPerIndex")
        if per_index is not None and last.index is not None:
            count = sum(1 for a in self.failures if a.index == last.index)
            retried = count <= count_of(per_index)
        else:
            count = len(self.failures)
            retried = count <= count_of(spec.get("backoffLimit", 6))
        if not retried or condition_true(self.job, "Suspended"):
            return ""
        if self.context.backoff_base is None:
            return ", will be retried"
        from joblet.controllers.job.backoff import backoff_delay

        delay = backoff_delay(count, self.context.backoff_base, self.context.backoff_max)
        self._retry_at = self.clock.monotonic() + delay
        return f", retry in {_seconds(delay)}"

    async def _stream_logs(self, pod: Obj) -> None:
        prefix = self._prefix(pod)
        uid = uid_of(pod)
        containers = [c["name"] for c in (pod.get("spec") or {}).get("containers") or []]
        for container in containers:
            pending = b""
            try:
                async for chunk in self.client.read_log(namespace_of(pod), name_of(pod), container, follow=True):
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    for line in lines:
                        text = line.decode(errors="replace")
                        self._last_line[uid] = text
                        self.console.print(prefix + Text(text), highlight=False)
            except ApiError:
                pass
            if pending:
                text = pending.decode(errors="replace")
                self._last_line[uid] = text
                self.console.print(prefix + Text(text), highlight=False)

    def on_job(self, job: Obj) -> None:
        self.job = job
        if self.live is not None:
            self.live.update(self.status_line(), refresh=True)
            return
        self.changed.set()

    def print_progress(self) -> bool:
        """Off a terminal: print the progress line if it changed (see :func:`line_to_print`);
        the caller paces the calls with :attr:`pacer`. Whether a line was printed."""
        self.changed.clear()
        line = line_to_print(self.job, self.tally, self._last_progress, self._printed_total)
        if line is None:
            return False
        self._last_progress = line
        self._printed_total = merged_counts(self.job, self.tally).total
        self.pacer.printed(self.clock.monotonic())
        self.console.print(Text(line, style="bold"), highlight=False)
        return True

    async def render_progress(self) -> None:
        """Off a terminal, until cancelled: a progress line when the counts changed, at most
        one per pacer period (waits on :attr:`clock`)."""
        while True:
            await self.changed.wait()
            wait = self.pacer.delay(self.clock.monotonic())
            if wait > 0:
                await self.clock.sleep_async(wait)
            self.print_progress()

    def status_line(self) -> Text:
        """The pinned footer on a terminal: bar, counts, retry countdown, elapsed time."""
        job = self.job
        counts = merged_counts(job, self.tally)
        succeeded, active, failed = counts.succeeded, counts.active, counts.failed
        completions = (job.get("spec") or {}).get("completions")
        text = Text(f"job/{self.job_name} ", style="bold")
        if isinstance(completions, int) and completions > 0:
            width = 20
            filled = min(width, succeeded * width // completions)
            text.append("▕" + "█" * filled, style="green")
            text.append("░" * (width - filled) + "▏ ")
            text.append(f"{succeeded}/{completions} ✓", style="green")
        else:
            text.append(f"{succeeded} ✓", style="green")
        text.append(f"  {active} running")
        if failed:
            text.append(f"  {failed} failed", style="red")
        if self._retry_at is not None and not job_finished(job):
            left = self._retry_at - self.clock.monotonic()
            if left > 0:
                text.append(f"  next retry in {left:.0f}s", style="yellow")
        if condition_true(job, "Suspended"):
            text.append("  suspended", style="yellow")
        text.append(f"  {_seconds(self.clock.monotonic() - self._started)}", style="dim")
        return text

    async def drain_logs(self, timeout: float = 10.0) -> None:
        tasks = list(self._log_tasks.values())
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=timeout)
        for t in pending:
            t.cancel()

    def report(self, outcome: str) -> list[str]:
        """The lines under a Failed summary: what failed, what was retried, where to look."""
        job = self.job
        lines: list[str] = []
        if self.indexed:
            final: dict[str, Attempt] = {}
            for a in self.failures:
                final[str(a.index)] = a
            failed_ix = str((job.get("status") or {}).get("failedIndexes") or "")
            failed_set = _expand(failed_ix)
            gave_up = [a for ix, a in sorted(final.items(), key=lambda kv: count_of(kv[0])) if count_of(ix) in failed_set]
            if gave_up:
                lines.append("failed indexes: " + ", ".join(self._describe(a) for a in gave_up[:10])
                             + (f" (+{len(gave_up) - 10} more)" if len(gave_up) > 10 else ""))
            retried = sorted({count_of(a.index) for a in self.failures} - failed_set)
            if retried:
                lines.append("retried: " + ", ".join(str(i) for i in retried[:20]))
        elif outcome == "Failed" and self.failures:
            a = self.failures[-1]
            lines.append(f"last failure: {a.pod} ({self._describe(a, with_key=False)})")
        if outcome == "Failed":
            hints = [f"joblet logs job/{self.job_name} --all-attempts{self._ns()}{self.context.cli_args}",
                     f"joblet describe job {self.job_name}{self._ns()}{self.context.cli_args}"]
            if self.context.url and not self.context.embedded:
                from urllib.parse import quote

                hints.append(f"{self.context.url.rstrip('/')}/ui/jobs/{quote(self.namespace)}/{quote(self.job_name)}")
            lines.append("next: " + " · ".join(hints))
        return lines

    def _ns(self) -> str:
        return f" -n {self.namespace}" if self.namespace != "default" else ""

    def _describe(self, a: Attempt, with_key: bool = True) -> str:
        what = failure_text(a.reason, a.exit_code, "")
        if a.exit_code is not None:
            what = f"exit {a.exit_code}" if a.reason == "Error" else f"{a.reason}, exit {a.exit_code}"
        detail = a.message or self._last_line_of(a.pod)
        detail = detail.splitlines()[0][:120] if detail else ""
        inner = f"{what}: {detail!r}" if detail else what
        return f"{a.index} ({inner})" if with_key and a.index is not None else inner

    def _last_line_of(self, pod_name: str) -> str:
        for uid, name in self._pod_name_by_uid.items():
            if name == pod_name:
                return self._last_line.get(uid, "")
        return ""

    def pod_exit_code(self) -> int:
        """``--exit-code=pod``: the exit code of the last failed attempt (1 without one)."""
        for a in reversed(self.failures):
            if a.exit_code is not None:
                return a.exit_code
        return 1


def _expand(intervals: str) -> set[int]:
    """``1,3-5`` → {1, 3, 4, 5}."""
    out: set[int] = set()
    for part in intervals.split(","):
        part = part.strip()
        if not part:
            continue
        lo, _, hi = part.partition("-")
        try:
            out.update(range(int(lo), int(hi or lo) + 1))
        except ValueError:
            continue
    return out


async def submit(client: Client, manifests: list[Manifest], namespace: str | None,
                 console: Console | None = None, field_validation: FieldValidation | None = "Strict") -> Obj:
    """Create the manifests' objects (supporting ones first) and return the Job to follow.

    ``field_validation``: what the API does with fields the schema does not know (``--validate``)."""
    job_docs = [m for m in manifests if m.resource.plural == "jobs"]
    if len(job_docs) != 1:
        raise ValueError(_not_one_job(manifests, len(job_docs)))
    for m in manifests:
        if m.resource.plural == "jobs":
            continue
        try:
            created = await client.create(m.resource.plural, m.obj, namespace, field_validation=field_validation)
            verb, name = "created", name_of(created)
        except AlreadyExists:
            verb, name = "unchanged (exists)", m.name
        if console is not None:
            console.print(f"{_kind_ref(m.resource.plural)}/{name} {verb}", highlight=False)
    job_doc = job_docs[0].obj
    try:
        return await client.create("jobs", job_doc, namespace, field_validation=field_validation)
    except AlreadyExists:
        name = (job_doc.get("metadata") or {}).get("name", "")
        ns = namespace or (job_doc.get("metadata") or {}).get("namespace") or "default"
        existing = await client.get("jobs", name, ns)
        if not job_finished(existing):
            raise
        # A finished Job of the same name is replaced, its pods with it (logs are kept).
        await client.delete("jobs", name, ns, propagation_policy="Foreground")
        for _ in range(600):
            try:
                await client.get("jobs", name, ns)
            except NotFound:
                break
            await poll_pause(0.05)
        return await client.create("jobs", job_doc, namespace, field_validation=field_validation)


def _kind_ref(plural: str) -> str:
    from joblet.api.resources import lookup

    r = lookup(plural)
    if r is None:
        return plural
    return f"{r.kind.lower()}.{r.group}" if r.group else r.kind.lower()


def _not_one_job(manifests: list[Manifest], jobs: int) -> str:
    if jobs > 1:
        return f"expected exactly one Job in the manifest, found {jobs}: `joblet run` follows one Job; " \
               "use `joblet apply -f` for several"
    kinds = [m for m in manifests if m.resource.plural in ("cronjobs", "pods")]
    if kinds and kinds[0].resource.plural == "cronjobs":
        name = kinds[0].name
        return (f'found a CronJob "{name}", not a Job: `joblet run` runs a Job once. To schedule it: '
                f"`joblet server` and `joblet apply -f FILE`; to run it now: "
                f"`joblet create job NAME --from=cronjob/{name}` against that server")
    if kinds:
        return (f'found a Pod "{kinds[0].name}", not a Job: wrap it in a Job (apiVersion: batch/v1, kind: Job, '
                "spec.template: the pod's metadata and spec, restartPolicy: Never)")
    return "expected exactly one Job in the manifest, found 0"


async def follow_job(client: Client, job: Obj, console: Console, context: RunContext | None = None,
                     clock: Clock | None = None) -> int:
    ns, name = namespace_of(job), name_of(job)
    ctx = context or RunContext()
    clock = clock or RealClock()
    indexed = (job.get("spec") or {}).get("completionMode") == "Indexed"
    follower = Follower(client, console, ns, name, indexed, ctx, job=job, clock=clock)
    selector = f"batch.kubernetes.io/controller-uid={uid_of(job)}"
    done = asyncio.Event()
    final: dict[str, Obj] = {}

    on_pod = follower.on_pod

    async def watch_pods() -> None:
        rv: str | None = None
        while not done.is_set():
            try:
                if rv is None:
                    listed = await client.list("pods", ns, label_selector=selector)
                    follower.on_pods_listed(listed.items)
                    rv = listed.resource_version
                async for batch in client.watch("pods", ns, rv, label_selector=selector, timeout_seconds=30):
                    for ev in batch:
                        rv = ev.object.get("metadata", {}).get("resourceVersion", rv)
                        if ev.type in ("ADDED", "MODIFIED"):
                            on_pod(ev.object)
                        elif ev.type == "DELETED":
                            follower.on_pod_deleted(ev.object)
            except Gone:
                rv = None

    async def watch_events() -> None:
        """Warning events about the Job as lines; an InvalidObject one ends the run (exit 2)."""
        seen: set[str] = set()
        fields = f"involvedObject.uid={uid_of(job)}"
        rv: str | None = None
        while not done.is_set():
            try:
                if rv is None:
                    listed = await client.list("events", ns, field_selector=fields)
                    batch_objs = listed.items
                    rv = listed.resource_version
                    for e in batch_objs:
                        on_event(e, seen)
                async for batch in client.watch("events", ns, rv, field_selector=fields, timeout_seconds=30):
                    for ev in batch:
                        rv = ev.object.get("metadata", {}).get("resourceVersion", rv)
                        if ev.type in ("ADDED", "MODIFIED"):
                            on_event(ev.object, seen)
            except Gone:
                rv = None

    def on_event(e: Obj, seen: set[str]) -> None:
        if e.get("type") != "Warning":
            return
        key = f"{e.get('reason')}\0{e.get('message')}"
        if key in seen:
            return
        seen.add(key)
        if e.get("reason") == INVALID_OBJECT_REASON:
            final["invalid"] = {"message": str(e.get("message", ""))}
            done.set()
            return
        if e.get("reason") in ("BackoffLimitExceeded", "FailedIndexes", "DeadlineExceeded"):
            return  # the summary says it
        console.print(Text(f"warning: {e.get('reason')}: {e.get('message')}", style="yellow"), highlight=False)

    async def watch_job() -> None:
        rv: str | None = None
        current = job
        while True:
            try:
                if rv is None:
                    current = await client.get("jobs", name, ns)
                    rv = current["metadata"]["resourceVersion"]
                    follower.on_job(current)
                    if job_finished(current):
                        break
                async for batch in client.watch("jobs", ns, rv, field_selector=f"metadata.name={name}",
                                                timeout_seconds=30):
                    for ev in batch:
                        rv = ev.object.get("metadata", {}).get("resourceVersion", rv)
                        if ev.type == "DELETED":
                            raise NotFound(f'jobs.batch "{name}" was deleted while running')
                        current = ev.object
                        follower.on_job(current)
                    if job_finished(current):
                        break
                if job_finished(current):
                    break
            except Gone:
                rv = None
        final["job"] = current
        done.set()

    live: Live | None = None
    if console.is_terminal:
        live = Live(follower.status_line(), console=console, refresh_per_second=4, transient=True,
                    get_renderable=follower.status_line)
        follower.live = live
        live.start()
    pods_task = asyncio.ensure_future(watch_pods())
    events_task = asyncio.ensure_future(watch_events())
    job_task = asyncio.ensure_future(watch_job())
    tasks = [pods_task, events_task, job_task]
    if live is None:  # a terminal's Live redraws the footer itself, 4 times a second
        tasks.append(asyncio.ensure_future(follower.render_progress()))
    try:
        await asyncio.wait({job_task, asyncio.ensure_future(done.wait())}, return_when=asyncio.FIRST_COMPLETED)
        if job_task.done():
            job_task.result()
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, ApiError):
                await t
        if "job" not in final:
            await follower.drain_logs(timeout=0.5)
        if live is not None:
            live.stop()
            follower.live = None
    if "invalid" in final:
        raise InvalidJob(final["invalid"]["message"])
    await follower.drain_logs()
    if follower._reports:  # every failure line before the summary
        await asyncio.wait(follower._reports, timeout=3.0)
    job_final = final["job"]
    follower.job = job_final
    outcome = job_finished(job_final) or "Unknown"
    style = "bold green" if outcome == "Complete" else "bold red"
    console.print(Text(summary(job_final, outcome), style=style), highlight=False)
    for line in follower.report(outcome):
        console.print(Text("  " + line, style="red" if line.startswith("failed") else ""), highlight=False)
    if outcome == "Complete":
        return 0
    return follower.pod_exit_code() if ctx.exit_code == "pod" else 1


@dataclass
class Interrupts:
    """SIGINT/SIGTERM during ``joblet run``: the first cancels the follow, a second one
    (embedded) asks to kill at once."""

    signals: list[int] = field(default_factory=list)
    kill: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[Any] | None = None

    def install(self) -> None:
        self.task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_signal, int(sig))

    def uninstall(self) -> None:
        if self.task is None:
            return
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)

    def _on_signal(self, signum: int) -> None:
        self.signals.append(signum)
        if len(self.signals) == 1:
            if self.task is not None:
                self.task.cancel()
        else:
            self.kill.set()

    @property
    def exit_code(self) -> int:
        return 128 + self.signals[0] if self.signals else 130


async def stop_job(client: Client, job: Obj, console: Console, kill: asyncio.Event) -> None:
    """An interrupted embedded run: delete the Job with foreground cascade and wait until its
    pods are gone (nothing would manage them after this process exits)."""
    ns, name = namespace_of(job), name_of(job)
    selector = f"batch.kubernetes.io/controller-uid={uid_of(job)}"
    try:
        pods = (await client.list("pods", ns, label_selector=selector)).items
    except ApiError:
        pods = []
    running = [p for p in pods if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
    grace = (((job.get("spec") or {}).get("template") or {}).get("spec") or {}).get("terminationGracePeriodSeconds")
    grace = 30 if grace is None else grace
    console.print(Text(f"interrupted: stopping job/{name} ({len(running)} pod{'s' if len(running) != 1 else ''}, "
                       f"grace {grace}s; Ctrl-C again to kill)", style="yellow"), highlight=False)
    with contextlib.suppress(NotFound):
        await client.delete("jobs", name, ns, propagation_policy="Foreground")
    killed = False
    while True:
        try:
            await client.get("jobs", name, ns)
            left = (await client.list("pods", ns, label_selector=selector)).items
        except NotFound:
            left = (await client.list("pods", ns, label_selector=selector)).items
            if not left:
                break
        if kill.is_set() and not killed:
            killed = True
            console.print(Text(f"killing {len(left)} pod{'s' if len(left) != 1 else ''} of job/{name}",
                               style="yellow"), highlight=False)
            for p in left:
                with contextlib.suppress(NotFound):
                    await client.delete("pods", name_of(p), ns, grace_period_seconds=0)
        if killed:
            await poll_pause(0.1)
        else:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(kill.wait(), timeout=0.1)
    console.print(Text(f"job/{name} stopped", style="yellow"), highlight=False)


async def follow_interruptible(client: Client, job: Obj, console: Console, errors: Console,
                               context: RunContext, interrupts: Interrupts) -> int:
    """:func:`follow_job` with Ctrl-C handling: embedded, stop the Job and exit 130/143;
    attached to a server, detach and say how to follow or stop it."""
    try:
        return await follow_job(client, job, console, context)
    except asyncio.CancelledError:
        if not interrupts.signals:
            raise
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
    name = name_of(job)
    ns = f" -n {namespace_of(job)}" if namespace_of(job) != "default" else ""
    if not context.embedded:
        errors.print(f"detached: job/{name} keeps running on {context.url} "
                     f"(joblet logs -f job/{name}{ns}; joblet delete job {name}{ns})", highlight=False)
        return interrupts.exit_code
    await stop_job(client, job, errors, interrupts.kill)
    return interrupts.exit_code
