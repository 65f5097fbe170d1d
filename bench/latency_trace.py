"""Where a one-pod Job's create → Complete latency goes: ``bench/latency.py`` with a per-stage
breakdown, taken inside the server process.

Why: the end-to-end figure alone cannot tell a stage that works (token signing, bwrap's
start) from one that waits (a timer, a poll, a pacing delay). This script starts ``joblet
server`` through a wrapper that times a few joblet functions (store writes, the Job
controller's and scheduler's syncs, the pod worker's steps, the runtime's start/exit) on
CLOCK_MONOTONIC, which the client shares, and prints the median time of each stage after the
create request, plus the median gap between consecutive stages. Nothing in joblet is changed:
the hooks are installed by the wrapper only.

Stages: ``store.*`` a Job/Pod write (with a summary of the object), ``jobsync``/``schedsync``
the controllers' syncs, ``worker``/``containerspec``/``volumes``/``token``/``writestatus``/
``conclude`` the pod worker, ``rtstart`` the runtime's start (ends once the shim is exec'd),
``shim.exited`` the ``finished`` stamp of the shim's status file (the container has exited and
its log is drained), ``pidfd.exit`` when the agent sees the shim exit, ``watch.send`` a Job
event leaving the API server, ``client.*`` the benchmark's own view. ``+``/``-`` are a
function's entry and return. With ``LAT_STRACE_SHIM=DIR`` each shim runs under ``strace -ttt
-T`` (the shim alone, not bwrap) into DIR. On a shared machine, ``chrt -f 1`` in front keeps
other processes from stretching the stages.

    python bench/latency_trace.py [--runs 30] [--events]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
from pathlib import Path

from _server import joblet_server
from latency import CompletionWatch
from latency import run_span as one_run

# Runs in the server process (python -c HOOKS TRACEFILE server ...): wrap functions to log
# "t label id" lines, then run joblet as `python -m joblet` would.
HOOKS = r'''
import functools, inspect, runpy, sys, time
out = open(sys.argv.pop(1), "w", buffering=1)
def emit(label, ident):
    out.write(f"{time.monotonic():.6f} {label} {ident}\n")
def wrap(cls, name, label, ident):
    fn = getattr(cls, name)
    if inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def w(*a, **k):
            i = ident(*a, **k); emit(label + "+", i)
            try: return await fn(*a, **k)
            finally: emit(label + "-", i)
    else:
        @functools.wraps(fn)
        def w(*a, **k):
            i = ident(*a, **k); emit(label + "+", i)
            try: return fn(*a, **k)
            finally: emit(label + "-", i)
    setattr(cls, name, w)

from joblet.store.memory import MemoryStore
from joblet.store import sqlite
def summary(resource, obj):
    md = obj.get("metadata") or {}
    st = obj.get("status") or {}
    if resource == "pods":
        cs = ",".join(next(iter(c.get("state") or {"-": 0})) for c in st.get("containerStatuses") or [])
        return f"pods/{md.get('name')}/{md.get('uid')} node={bool((obj.get('spec') or {}).get('nodeName'))} phase={st.get('phase')} cs={cs} fin={len(md.get('finalizers') or [])}"
    if resource == "jobs":
        conds = ",".join(c["type"] for c in st.get("conditions") or [] if c.get("status") == "True")
        return f"jobs/{md.get('name')} active={st.get('active', 0)} succ={st.get('succeeded', 0)} uncounted={bool((st.get('uncountedTerminatedPods') or {}).get('succeeded'))} conds={conds}"
    return f"{resource}/{md.get('name')}"
orig_record = MemoryStore._record
def record(self, type_, key, obj, rv):
    if key.resource in ("pods", "jobs", "events"):
        emit("store." + type_, summary(key.resource, obj).replace(" ", "|"))
    return orig_record(self, type_, key, obj, rv)
MemoryStore._record = record
orig_persist = sqlite.SqliteStore._persist
def persist(self, rows, rv):
    t0 = time.monotonic()
    try: return orig_persist(self, rows, rv)
    finally:
        if time.monotonic() - t0 > 0.001: out.write(f"{t0:.6f} persist.slow {(time.monotonic() - t0) * 1000:.1f}ms\n")
sqlite.SqliteStore._persist = persist
from joblet.api import server as api_server
orig_event_line = api_server.event_line
def event_line(ev_type, obj):
    if obj.get("kind") == "Job":
        emit("watch.send", summary("jobs", obj).replace(" ", "|"))
    return orig_event_line(ev_type, obj)
api_server.event_line = event_line

from joblet.controllers.job.controller import JobController
from joblet.controllers.scheduler import Scheduler
wrap(JobController, "sync", "jobsync", lambda self, key: key)
wrap(Scheduler, "sync", "schedsync", lambda self, key: key)

from joblet.node import podworker
from joblet.node.podworker import PodWorker
pod_id = lambda self, *a, **k: self.pod["metadata"]["name"]
wrap(PodWorker, "_run", "worker", pod_id)
wrap(PodWorker, "write_status", "writestatus", pod_id)
wrap(PodWorker, "container_spec", "containerspec", pod_id)
wrap(PodWorker, "conclude", "conclude", pod_id)
from joblet.node.volumes import VolumeManager
wrap(VolumeManager, "prepare", "volumes", lambda self, pod, *a, **k: pod["metadata"]["name"])
from joblet.node.tokens import TokenManager
wrap(TokenManager, "get", "token", lambda self, pod, *a, **k: pod["metadata"]["name"])
from joblet.node.runtimes.process import ProcessRuntime
import os
if os.environ.get("LAT_STRACE_SHIM"):  # strace -ttt the shim alone (not bwrap): its own syscalls' times
    orig_spawn = os.posix_spawnp
    def spawn(path, args, env, **k):
        if "joblet-shim" in args[0]:
            args = ["strace", "-ttt", "-T", "-o", os.environ["LAT_STRACE_SHIM"] + f"/shim.{time.monotonic():.6f}", *args]
        return orig_spawn(args[0], args, env, **k)
    os.posix_spawnp = spawn
wrap(ProcessRuntime, "start", "rtstart", lambda self, spec: spec.ref.pod_uid)
wrap(ProcessRuntime, "_wait", "rtwait", lambda self, ref: ref.pod_uid)
orig_finish = ProcessRuntime._finish
def finish(self, ref):
    try:
        fields = dict(l.split(" ", 1) for l in self._status_path(ref).read_text().splitlines() if " " in l)
        mono = int(fields["finished"]) / 1e9 - (time.time() - time.monotonic())
        out.write(f"{mono:.6f} shim.exited {ref.pod_uid}\n")
    except (OSError, KeyError, ValueError):
        pass
    emit("finish+", ref.pod_uid)
    try: return orig_finish(self, ref)
    finally: emit("finish-", ref.pod_uid)
ProcessRuntime._finish = finish
from joblet.node.runtimes import records
orig_wait_pid = records.wait_pid
async def wait_pid(pid):
    await orig_wait_pid(pid)
    emit("pidfd.exit", pid)
records.wait_pid = wait_pid
from joblet.node import agent
wrap(agent.NodeAgent, "on_pod", "agent.on_pod", lambda self, pod: pod["metadata"]["name"])

sys.argv[0] = "joblet"
runpy.run_module("joblet", run_name="__main__", alter_sys=True)
'''


def stages(lines: list[tuple[float, str, str]], name: str, start: float, end: float) -> list[tuple[str, float]]:
    """The run's events as (label, ms after the create request), in time order; an event is
    the run's when its id names the Job, its pod (``name-xxxxx``), the pod's uid or the shim's pid."""
    pod = re.compile(rf"(^|/|\|){re.escape(name)}-[a-z0-9]{{5}}(/|\||$)")
    job_re = re.compile(rf"(^|/){re.escape(name)}(\||$)")
    uids: set[str] = set()
    for _, label, ident in lines:
        m = pod.search(ident)
        if label.startswith("store.") and m:
            uids.add(ident.split("|")[0].split("/")[2])
    out: list[tuple[str, float]] = [("client.create", 0.0)]
    for t, label, ident in lines:
        if not (start - 0.001 <= t <= end + 0.001):
            continue
        if label.startswith("store.events"):
            continue
        # runs are sequential: a shim's exit inside the run's window is the run's
        mine = (job_re.search(ident) or pod.search(ident) or ident in uids or label == "pidfd.exit"
                or label == "persist.slow")
        if label.startswith("store.pods") and not pod.search(ident):
            mine = False
        if mine:
            text = label
            if label.startswith("store."):
                text = f"{label} {ident.split('|', 1)[1] if '|' in ident else ''}"
            out.append((text, (t - start) * 1000))
    out.append(("client.complete", (end - start) * 1000))
    return sorted(out, key=lambda x: x[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--events", action="store_true", help="print every run's events, not only the medians")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        trace = Path(tmp) / "trace"
        runs: list[tuple[str, float, float]] = []
        with (joblet_server(launcher=("-c", HOOKS, str(trace))) as server, server.http() as client,
              server.http() as watching):
            watch = CompletionWatch(watching, server.url)
            one_run(client, watch, server.url, "warmup")
            for i in range(args.runs):
                name = f"lat-{i}"
                runs.append((name, *one_run(client, watch, server.url, name)))
        lines = []
        for raw in trace.read_text().splitlines():
            t, label, ident = [*raw.split(" ", 2), ""][:3]
            lines.append((float(t), label, ident))
    per_run = [stages(lines, name, start, end) for name, start, end in runs]
    if args.events:
        for (name, _, _), evs in zip(runs, per_run, strict=True):
            print(f"--- {name}")
            for label, ms in evs:
                print(f"{ms:8.2f}  {label}")
    # Median of each stage's first occurrence (label + ordinal within the run).
    table: dict[str, list[float]] = {}
    order: dict[str, float] = {}
    for evs in per_run:
        seen: dict[str, int] = {}
        for label, ms in evs:
            n = seen[label] = seen.get(label, 0) + 1
            key = label if n == 1 else f"{label} #{n}"
            table.setdefault(key, []).append(ms)
            order[key] = order.get(key, 0.0) + ms
    print(f"{'median ms':>9}  {'Δ prev':>7}  {'n':>3}  stage")
    prev = 0.0
    rows = sorted(table, key=lambda k: statistics.median(table[k]))
    for key in rows:
        med = statistics.median(table[key])
        print(f"{med:9.2f}  {med - prev:7.2f}  {len(table[key]):3d}  {key}")
        prev = med
    total = sorted(end - start for _, start, end in runs)
    print(json.dumps({"benchmark": "latency_trace", "runs": args.runs,
                      "p50_ms": round(statistics.median(total) * 1000, 1),
                      "p95_ms": round(total[min(len(total) - 1, round(0.95 * len(total)) - 1)] * 1000, 1)}))


if __name__ == "__main__":
    main()
