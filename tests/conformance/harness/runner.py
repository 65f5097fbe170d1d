"""Running one catalog scenario against a live server: namespace, watches, actions, checks.

Why: the loop is the only place with side effects and wall time. It creates the scenario's
namespace, starts Pod/Job(/CronJob) watches *before* the workload exists (so ``pods.created``
counts every ADDED event), creates ``pre_create`` objects and the manifest, then every
~0.2 s feeds the watch events into the Timeline, fires due actions in order, and stops as soon
as the expectations hold (for a short settle period) or the deadline passes.
"""

from __future__ import annotations

import contextlib
import queue
import shutil
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .catalog import Scenario, Timing, host_paths, prepare_manifest, substitute_run_id
from .checks import (
    Context,
    UnsupportedFormat,
    evaluate,
    never_violations,
    scenario_gaps,
    select_pod,
    trigger_met,
)
from .kube import MERGE, STRATEGIC, ApiFailure, Event, Kube, Response, Tracker, call, must
from .matching import (
    cause_problems,
    deep_merge,
    get_path,
    match_value,
    parse_rfc3339,
    placeholders_in,
    rfc3339,
    set_path,
)
from .timeline import Timeline

Obj = dict[str, Any]

POLL_S = 0.2
SETTLE_S = 1.0
CONFLICT_RETRIES = 10


class ScenarioFailed(AssertionError):
    pass


@dataclass
class Env:
    kube: Kube
    timing: Timing
    run_prefix: str
    log: list[str] = field(default_factory=list)
    server_log_tail: Any = None  # callable -> str, when the harness started the server


def namespace_for(scenario: Scenario, run_id: str) -> str:
    base = "".join(ch if ch.isalnum() else "-" for ch in scenario.id.lower()).strip("-")
    return f"{base[:40].rstrip('-')}-{run_id[-6:]}".lower()


def bind_now_placeholders(value: Any, names: dict[str, Any]) -> None:
    """Bind ``<now>``/``<nowN ...>`` once each, strictly increasing (so now2 != now1)."""
    for key in sorted(placeholders_in(value)):
        if not key.startswith("now") or key in names:
            continue
        now = datetime.now(UTC).replace(microsecond=0)
        bound = [parse_rfc3339(v) for k, v in names.items() if k.startswith("now")]
        latest = max((b for b in bound if b is not None), default=None)
        if latest is not None and now <= latest:
            now = latest + timedelta(seconds=1)
        names[key] = rfc3339(now)


class ScenarioRun:
    def __init__(self, env: Env, scenario: Scenario, run_id: str) -> None:
        self.env, self.kube, self.scenario, self.run_id = env, env.kube, scenario, run_id
        self.ns = namespace_for(scenario, run_id)
        self.ctx = Context(scenario=scenario, timing=env.timing, names={"unique": run_id})
        manifest = scenario.manifest
        self.manifest = prepare_manifest(manifest, run_id) if manifest else None
        name = ((self.manifest or {}).get("metadata") or {}).get("name")
        self.tl = Timeline(
            job_name=name if not scenario.is_cron else None,
            cronjob_name=name if scenario.is_cron else None,
        )
        self.events: queue.Queue[Event] = queue.Queue()
        self.trackers: list[Tracker] = []
        self.t0 = time.monotonic()
        self.prev_done_t: float | None = None
        self.cleanup_paths = [p for p in host_paths(self.manifest) if "/" in p]
        self.collection_selector: str | None = None  # labelSelector of the last delete_collection

    # ------------------------------------------------------------ entry

    def run(self) -> None:
        gaps = scenario_gaps(self.scenario)
        if gaps:
            raise UnsupportedFormat("; ".join(gaps))
        kind = self.scenario.kind
        self.kube.ensure_namespace(self.ns)
        try:
            if kind == "create_invalid":
                self._run_create_invalid()
            elif kind == "valid":
                self._run_valid()
            elif kind in ("update_valid", "update_invalid"):
                self._run_update()
            elif "steps_all_succeed" in self.scenario.expect:
                self._run_api_steps()
            else:
                self._run_workload()
        finally:
            self._teardown()

    # ------------------------------------------------------------ validation kinds

    def _run_create_invalid(self) -> None:
        assert self.manifest is not None
        exp = self.scenario.expect
        resp = self.kube.create(self.ns, self.manifest)
        problems = self._status_problems(resp, int(exp.get("http_status", 422)))
        if problems:
            raise ScenarioFailed("; ".join(problems))

    def _status_problems(self, resp: Response, want_status: int) -> list[str]:
        exp = self.scenario.expect
        body = resp.body if isinstance(resp.body, dict) else {}
        problems: list[str] = []
        if resp.status != want_status:
            problems.append(f"HTTP {resp.status} (expected {want_status}): {body.get('message') or body.get('kind')}")
            return problems
        if "reason" in exp and body.get("reason") != exp["reason"]:
            problems.append(f"status.reason {body.get('reason')!r} != {exp['reason']!r}")
        problems += cause_problems(list(exp.get("causes") or []), body)
        problems += cause_problems([{"field": f} for f in exp.get("field_paths") or []], body)
        causes = ((body.get("details") or {}).get("causes")) or []
        texts = [str(body.get("message") or "")] + [str(c.get("message") or "") for c in causes]
        for fragment in exp.get("message_contains") or []:
            if not any(fragment in t for t in texts):
                problems.append(f"no message contains {fragment!r}: {texts}")
        return problems

    def _run_valid(self) -> None:
        assert self.manifest is not None
        exp = self.scenario.expect
        resp = self.kube.create(self.ns, self.manifest)
        problems = self._status_problems(resp, int(exp.get("http_status", 201)))
        for path, want in (exp.get("defaults") or {}).items():
            problems += match_value(want, get_path(resp.body, path), path)
        if problems:
            raise ScenarioFailed("; ".join(problems))

    def _run_update(self) -> None:
        assert self.manifest is not None
        created = must("create", self.kube.create(self.ns, self.manifest))
        kind, name = str(created.get("kind") or self.manifest["kind"]), str(created["metadata"]["name"])
        resp = self._get_modify_put(kind, name, lambda obj: deep_merge(obj, self.scenario.raw.get("update") or {}))
        want = int(self.scenario.expect.get("http_status", 200 if self.scenario.kind == "update_valid" else 422))
        problems = self._status_problems(resp, want)
        if problems:
            raise ScenarioFailed("; ".join(problems))

    def _get_modify_put(self, kind: str, name: str, modify: Any, status: bool = False) -> Response:
        for _ in range(CONFLICT_RETRIES):
            if status:
                got = must(f"get {kind} status", call(self.kube.batch.read_namespaced_job_status, name, self.ns))
            else:
                got = must(f"get {kind}", self.kube.read(kind, self.ns, name))
            body = modify(got)
            if status:
                resp = call(self.kube.batch.replace_namespaced_job_status, name, self.ns, body)
            else:
                resp = self.kube.replace(kind, self.ns, name, body)
            if resp.status != 409:
                return resp
        return resp

    # ------------------------------------------------------------ workloads

    def _start_watches(self) -> None:
        core, batch = self.kube.core, self.kube.batch
        specs = [("Pod", core.list_namespaced_pod), ("Job", batch.list_namespaced_job)]
        if self.scenario.is_cron:
            specs.append(("CronJob", batch.list_namespaced_cron_job))
        for kind, fn in specs:
            tracker = Tracker(kind, fn, self.ns, self.events)
            tracker.start()
            self.trackers.append(tracker)
        deadline = time.monotonic() + 15
        for tracker in self.trackers:
            if not tracker.ready.wait(max(deadline - time.monotonic(), 0.1)):
                raise ScenarioFailed(f"watch of {tracker.kind} not established: {tracker.error}")

    def _drain(self, wait: float) -> None:
        try:
            ev = self.events.get(timeout=wait) if wait > 0 else self.events.get_nowait()
        except queue.Empty:
            return
        while True:
            self.tl.apply(ev.kind, ev.type, ev.obj, ev.at - self.t0)
            try:
                ev = self.events.get_nowait()
            except queue.Empty:
                return

    def _create_workload(self) -> None:
        for obj in self.scenario.raw.get("pre_create") or []:
            pre = prepare_manifest(obj, self.run_id)
            if pre.get("kind") == "Pod":
                self.tl.ignored_pods.add(str(pre["metadata"].get("name")))
            must(f"pre_create {pre.get('kind')}", self.kube.create(self.ns, pre))
        assert self.manifest is not None
        resp = self.kube.create(self.ns, self.manifest)
        self.t0 = time.monotonic()
        created = must(f"create {self.manifest.get('kind')}", resp)
        self.ctx.responses["create"] = created
        uid = (created.get("metadata") or {}).get("uid")
        self.ctx.names["job uid" if not self.scenario.is_cron else "cronjob uid"] = uid
        self.ctx.names["uid"] = uid

    def _run_workload(self) -> None:
        self._start_watches()
        self._create_workload()
        expect = self.scenario.expect
        actions = list(self.scenario.raw.get("actions") or [])
        deadline = self.env.timing.deadline(self.scenario)
        consistently = float(expect.get("consistently_for_s") or 0)
        ok_since: float | None = None
        last_probe = -10.0
        problems: list[str] = ["not evaluated yet"]
        while True:
            self._drain(POLL_S)
            t = time.monotonic() - self.t0
            self.ctx.now = t
            violations = never_violations(expect, self.tl, self.ctx)
            if violations:
                raise ScenarioFailed(f"at t={t:.1f}s: " + "; ".join(violations) + self._pending(actions))
            while actions and self._try_action(actions[0], t):
                actions.pop(0)
                self.prev_done_t = time.monotonic() - self.t0
                self._drain(0)
                t = time.monotonic() - self.t0
            if not actions:
                if t - last_probe >= 1.0:
                    self._probe(expect)
                    last_probe = t
                self.ctx.now = time.monotonic() - self.t0
                problems = evaluate(expect, self.tl, self.ctx)
                if problems:
                    ok_since = None
                else:
                    ok_since = t if ok_since is None else ok_since
                    if t - ok_since >= max(SETTLE_S, consistently):
                        self._probe(expect)
                        final = evaluate(expect, self.tl, self.ctx)
                        if not final:
                            return
                        ok_since, problems = None, final
            if t > deadline:
                raise ScenarioFailed(
                    f"not met within {deadline:.0f}s: " + "; ".join(problems) + self._pending(actions) + self._watch_errors()
                )

    def _pending(self, actions: list[Obj]) -> str:
        return f" | pending action: {actions[0]}" if actions else ""

    def _watch_errors(self) -> str:
        errs = [f"{t.kind}: {t.error}" for t in self.trackers if t.error]
        return f" | watch errors: {errs}" if errs else ""

    def _probe(self, expect: Obj) -> None:
        """Live reads some expectations need (GET /status, Events, lists after a deletion)."""
        name = ((self.manifest or {}).get("metadata") or {}).get("name")
        if "get_status" in expect and name and not self.scenario.is_cron:
            resp = call(self.kube.batch.read_namespaced_job_status, name, self.ns)
            self.ctx.responses["get_status"] = resp.body if resp.ok else None
        if "events_absent_reasons" in expect or "events_reasons_contain" in expect:
            resp = call(self.kube.core.list_namespaced_event, self.ns)
            self.ctx.events = list((resp.body or {}).get("items") or []) if resp.ok else None
            for ev in self.ctx.events or []:
                involved = ev.get("involvedObject") or {}
                mine = involved.get("name") == name or (self.scenario.is_cron and involved.get("kind") == "Job")
                if mine and involved.get("kind") in ("Job", "CronJob") and ev.get("reason"):
                    self.ctx.event_reasons.add(str(ev["reason"]))
        if "list_after_delete" in expect and self.collection_selector is not None:
            self.ctx.responses["list_after_delete"] = self._count_jobs(self.collection_selector)

    def _count_jobs(self, selector: str, all_namespaces: bool = False) -> int:
        if all_namespaces:
            resp = call(self.kube.batch.list_job_for_all_namespaces, label_selector=selector)
        else:
            resp = call(self.kube.batch.list_namespaced_job, self.ns, label_selector=selector)
        return len(must("list jobs", resp).get("items") or [])

    def _wait_for_gc(self, job_uids: set[str], selector: str | None) -> None:
        """Until the deleted Jobs and every pod they owned are gone (``wait_for_gc: true``)."""
        deadline = self.t0 + self.env.timing.deadline(self.scenario)
        while True:
            jobs = must("list jobs", call(self.kube.batch.list_namespaced_job, self.ns,
                                          **({"label_selector": selector} if selector else {})))
            left = [j for j in jobs.get("items") or [] if j["metadata"].get("uid") in job_uids]
            pods = must("list pods", call(self.kube.core.list_namespaced_pod, self.ns))
            owned = [p for p in pods.get("items") or []
                     if any(o.get("uid") in job_uids for o in p["metadata"].get("ownerReferences") or [])]
            if not left and not owned:
                return
            if time.monotonic() > deadline:
                raise ScenarioFailed(f"wait_for_gc: {len(left)} Jobs and {len(owned)} pods still there")
            self._drain(POLL_S)

    # ------------------------------------------------------------ actions

    def _try_action(self, action: Obj, t: float) -> bool:
        """Perform the action if its trigger holds (and its pod exists); True when done."""
        when = action.get("when") or {"after_previous": True}
        if not trigger_met(when, self.tl, t, self.prev_done_t, self.ctx):
            return False
        verb = str(action.get("do"))
        bind_now_placeholders(action, self.ctx.names)
        act = self.ctx.sub(substitute_run_id(action, self.run_id))
        name = ((self.manifest or {}).get("metadata") or {}).get("name")
        batch, core = self.kube.batch, self.kube.core
        if verb == "assert":
            self._probe(act.get("expect") or {})
            self.ctx.now = time.monotonic() - self.t0
            problems = evaluate(act.get("expect") or {}, self.tl, self.ctx)
            if problems:
                raise ScenarioFailed(f"assert at t={t:.1f}s ({when}): " + "; ".join(problems))
        elif verb == "patch_job":
            ctype = STRATEGIC if act.get("patch_type") == "strategic" else MERGE
            must("patch_job", call(batch.patch_namespaced_job, name, self.ns, act.get("patch") or {}, _content_type=ctype))
        elif verb == "update_job":
            must("update_job", self._get_modify_put("Job", str(name), lambda o: self._modified(o, act)))
        elif verb == "patch_status":
            ctype = STRATEGIC if act.get("patch_type") == "strategic" else MERGE
            resp = must("patch_status", call(batch.patch_namespaced_job_status, name, self.ns, act.get("patch") or {},
                                             _content_type=ctype))
            self.ctx.responses["patch_status"] = resp
        elif verb == "update_status":
            resp = must("update_status", self._get_modify_put("Job", str(name), lambda o: self._modified(o, act), status=True))
            self.ctx.responses["update_status"] = resp
        elif verb == "delete_job":
            target = act.get("name") or name
            kwargs: Obj = {}
            if act.get("propagationPolicy"):
                kwargs["propagation_policy"] = act["propagationPolicy"]
            must("delete_job", call(batch.delete_namespaced_job, target, self.ns, **kwargs))
            if target == name and self.ctx.delete_t is None:
                self.ctx.delete_t = time.monotonic() - self.t0
        elif verb == "delete_collection":
            resource = str(act.get("resource") or "jobs")
            fn = {"jobs": batch.delete_collection_namespaced_job, "pods": core.delete_collection_namespaced_pod,
                  "cronjobs": batch.delete_collection_namespaced_cron_job}[resource]
            kwargs = {}
            selector = str(act["labelSelector"]) if act.get("labelSelector") else None
            if selector:
                kwargs["label_selector"] = selector
                if resource == "jobs":
                    self.ctx.responses["list_all_namespaces_by_label_before_delete"] = self._count_jobs(
                        selector, all_namespaces=True)
            if act.get("propagationPolicy"):
                kwargs["propagation_policy"] = act["propagationPolicy"]
            doomed: set[str] = set()
            if act.get("wait_for_gc") and resource != "jobs":
                raise UnsupportedFormat(f"delete_collection of {resource}: wait_for_gc is defined for jobs only")
            if resource == "jobs" and act.get("wait_for_gc"):
                listed = must("list jobs", call(batch.list_namespaced_job, self.ns,
                                                **({"label_selector": selector} if selector else {})))
                doomed = {str(j["metadata"]["uid"]) for j in listed.get("items") or []}
            must("delete_collection", call(fn, self.ns, **kwargs))
            if resource == "jobs":
                if self.ctx.delete_t is None:
                    self.ctx.delete_t = time.monotonic() - self.t0
                self.collection_selector = selector or ""
                if act.get("wait_for_gc"):
                    self._wait_for_gc(doomed, selector)
                self.ctx.responses["list_after_delete"] = self._count_jobs(selector or "")
        elif verb in ("delete_pod", "evict_pod", "update_pod"):
            uid = select_pod(act.get("select"), self.tl)
            if uid is None:
                return False
            pod = self.tl.current_pods.get(uid) or next(
                p for p in self.tl.current_precreated.values() if str(p["metadata"]["uid"]) == uid)
            pod_name = str(pod["metadata"]["name"])
            if verb == "delete_pod":
                kwargs = {}
                if act.get("gracePeriodSeconds") is not None:
                    kwargs["grace_period_seconds"] = int(act["gracePeriodSeconds"])
                self.tl.harness_deleted_pods.add(uid)
                must("delete_pod", call(core.delete_namespaced_pod, pod_name, self.ns, **kwargs))
            elif verb == "evict_pod":
                self.tl.harness_deleted_pods.add(uid)
                self.tl.evicted_pods.add(uid)
                body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": pod_name, "namespace": self.ns}}
                must("evict_pod", call(core.create_namespaced_pod_eviction, pod_name, self.ns, body))
            else:
                must("update_pod", self._get_modify_put("Pod", pod_name, lambda o: self._modified(o, act)))
            self.tl.selected_pod = uid
            self.ctx.targets.append((verb, uid, time.monotonic() - self.t0))
        elif verb == "host_touch":
            path = Path(str(act.get("path") or act.get("file")))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
        else:
            raise UnsupportedFormat(f"unknown verb {verb!r}")
        return True

    @staticmethod
    def _modified(obj: Obj, act: Obj) -> Obj:
        out = deep_merge(obj, act.get("patch") or {})
        for path, value in (act.get("set") or {}).items():
            set_path(out, path, value)
        return out

    # ------------------------------------------------------------ the CronJob API-operations walk

    def _run_api_steps(self) -> None:
        assert self.manifest is not None
        batch = self.kube.batch
        failures: list[str] = []
        labels = (self.manifest.get("metadata") or {}).get("labels") or {}
        selector = ",".join(f"{k}={v}" for k, v in self.ctx.sub(labels).items())
        manifest = self.ctx.sub(self.manifest)
        name = str(manifest["metadata"]["name"])

        def step(what: str, resp: Response, check: Any = None) -> Obj:
            body = resp.body if isinstance(resp.body, dict) else {}
            if not resp.ok:
                failures.append(f"{what}: HTTP {resp.status} {body.get('message')}")
            elif check is not None and not check(body):
                failures.append(f"{what}: unexpected response {body}")
            return body

        created = step("create", self.kube.create(self.ns, manifest))
        uid = (created.get("metadata") or {}).get("uid")
        step("get", call(batch.read_namespaced_cron_job, name, self.ns), lambda b: b["metadata"]["uid"] == uid)
        listed = step("list by label", call(batch.list_namespaced_cron_job, self.ns, label_selector=selector))
        self.ctx.responses["list_by_label"] = len(listed.get("items") or [])
        step("cluster-wide list", call(batch.list_cron_job_for_all_namespaces, label_selector=selector),
             lambda b: len(b.get("items") or []) >= 1)
        step("patch annotation", call(batch.patch_namespaced_cron_job, name, self.ns,
                                      {"metadata": {"annotations": {"patched": "true"}}}, _content_type=MERGE),
             lambda b: (b["metadata"].get("annotations") or {}).get("patched") == "true")

        def annotate(o: Obj) -> Obj:
            set_path(o, "metadata.annotations.updated", "true")
            return o

        for _ in range(CONFLICT_RETRIES):
            got = step("get for update", call(batch.read_namespaced_cron_job, name, self.ns))
            resp = call(batch.replace_namespaced_cron_job, name, self.ns, annotate(got))
            if resp.status != 409:
                break
        step("update annotation", resp, lambda b: (b["metadata"].get("annotations") or {}).get("updated") == "true")
        bind_now_placeholders(["<now1>", "<now2>"], self.ctx.names)
        patched = step("patch status", call(batch.patch_namespaced_cron_job_status, name, self.ns,
                                            {"status": {"lastScheduleTime": self.ctx.names["now1"]}}, _content_type=MERGE))
        self.ctx.responses["status_patch_roundtrip"] = patched.get("status")
        for _ in range(CONFLICT_RETRIES):
            got = step("get status", call(batch.read_namespaced_cron_job_status, name, self.ns))
            got.setdefault("status", {})["lastScheduleTime"] = self.ctx.names["now2"]
            resp = call(batch.replace_namespaced_cron_job_status, name, self.ns, got)
            if resp.status != 409:
                break
        updated = step("update status", resp)
        self.ctx.responses["status_update_roundtrip"] = updated.get("status")
        step("get status uid", call(batch.read_namespaced_cron_job_status, name, self.ns),
             lambda b: b["metadata"]["uid"] == uid)
        step("delete", call(batch.delete_namespaced_cron_job, name, self.ns))
        step("delete collection", call(batch.delete_collection_namespaced_cron_job, self.ns, label_selector=selector))
        remaining = step("list after delete", call(batch.list_namespaced_cron_job, self.ns, label_selector=selector))
        left = [i for i in remaining.get("items") or [] if not (i.get("metadata") or {}).get("deletionTimestamp")]
        if left:
            failures.append(f"after delete: {len(left)} CronJobs remain without deletionTimestamp")
        self.ctx.responses["steps_all_succeed"] = not failures
        problems = evaluate(self.scenario.expect, self.tl, self.ctx)
        if problems or failures:
            raise ScenarioFailed("; ".join(failures + problems))

    # ------------------------------------------------------------ teardown

    def _teardown(self) -> None:
        name = ((self.manifest or {}).get("metadata") or {}).get("name")
        cleanup = self.scenario.expect.get("cleanup") or self.scenario.raw.get("cleanup")
        with contextlib.suppress(Exception):
            if cleanup == "delete_job" and name:
                call(self.kube.batch.delete_namespaced_job, name, self.ns, propagation_policy="Background")
            elif cleanup == "delete_cronjob_background" and name:
                call(self.kube.batch.delete_namespaced_cron_job, name, self.ns, propagation_policy="Background")
        for tracker in self.trackers:
            tracker.stop()
        self.kube.delete_namespace_contents(self.ns)
        for p in self.cleanup_paths:
            if self.run_id in p:
                shutil.rmtree(p[: p.index(self.run_id) + len(self.run_id)], ignore_errors=True)


def run_scenario(env: Env, scenario: Scenario, run_id: str) -> None:
    try:
        ScenarioRun(env, scenario, run_id).run()
    except ApiFailure as e:
        raise ScenarioFailed(str(e)) from None
