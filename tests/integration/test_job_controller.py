"""The Job controller against the real in-process stack (Registry + MemoryStore + LocalClient).

No node agent runs here: the tests play the kubelet by writing pod status, and drive time
with a FakeClock. ``Harness.settle`` lets watch events reach the informers, fires due queue
timers and processes queued keys until nothing is left to do (no sleeping for semantics).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from joblet.api.registry import Registry
from joblet.client.events import FakeRecorder
from joblet.client.local import LocalClient
from joblet.clock import FakeClock, rfc3339
from joblet.controllers.job import JobController, JobControllerConfig
from joblet.controllers.job.pods import COMPLETION_INDEX_KEY, TRACKING_FINALIZER
from joblet.controllers.runtime import drain
from joblet.errors import ApiError, NotFound, UnsupportedMediaType
from joblet.objects import deep_copy
from joblet.store.memory import MemoryStore

Obj = dict[str, Any]
NS = "default"


class FlakyClient:
    """Wraps a client; ``fail`` maps a call name to a predicate that makes that call raise."""

    def __init__(self, inner: LocalClient) -> None:
        self.inner = inner
        self.fail: dict[str, Callable[..., bool]] = {}

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if name not in ("create", "update", "patch", "delete"):
            return attr

        async def call(*args: Any, **kwargs: Any) -> Any:
            pred = self.fail.get(name)
            if pred is not None and pred(*args, **kwargs):
                raise ApiError(f"injected {name} failure")
            return await attr(*args, **kwargs)

        return call


class Harness:
    def __init__(self, config: JobControllerConfig | None = None) -> None:
        self.clock = FakeClock()
        self.registry = Registry(MemoryStore(), self.clock)
        self.local = LocalClient(self.registry)
        self.client = FlakyClient(self.local)
        self.config = config or JobControllerConfig()
        self.recorder = FakeRecorder()
        self.ctrl = self.new_controller()

    def new_controller(self) -> JobController:
        return JobController(self.client, self.clock, self.config, self.recorder)

    async def start(self) -> None:
        await self.local.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        await self.start_informers()

    async def start_informers(self) -> None:
        for inf in self.ctrl.informers():
            inf.start()
        for inf in self.ctrl.informers():
            await asyncio.wait_for(inf.synced.wait(), 5)

    async def restart(self) -> None:
        """A new controller process: fresh caches, expectations and backoff records."""
        for inf in self.ctrl.informers():
            await inf.stop()
        self.ctrl = self.new_controller()
        await self.start_informers()

    async def stop(self) -> None:
        for inf in self.ctrl.informers():
            await inf.stop()

    async def settle(self, max_rounds: int = 200) -> None:
        idle = 0
        for _ in range(max_rounds):
            await asyncio.sleep(0.001)
            self.ctrl.queue.fire_due()
            self.ctrl.orphan_queue.fire_due()
            n = await drain(self.ctrl.queue, self.ctrl.sync)
            n += await drain(self.ctrl.orphan_queue, self.ctrl.sync_orphan_pod)
            idle = idle + 1 if n == 0 else 0
            if idle >= 3:
                return
        raise AssertionError("controller did not settle")

    async def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        await self.settle()

    # -- objects ---------------------------------------------------------------------------

    async def create_job(self, name: str, **spec: Any) -> Obj:
        template_spec = spec.pop("template_spec", None) or {
            "restartPolicy": spec.pop("restart_policy", "Never"),
            "nodeName": "node-1",  # bound pods: DELETE is graceful until the "kubelet" finishes them
            "containers": [{"name": "c", "image": "busybox", "command": ["sh", "-c", "exit 0"]}],
        }
        job = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": name, "namespace": NS},
            "spec": {**spec, "template": {"spec": template_spec}},
        }
        created: Obj = await self.local.create("jobs", job)
        await self.settle()
        return created

    async def job(self, name: str) -> Obj:
        return await self.local.get("jobs", name, NS)

    async def pods(self, job_name: str) -> list[Obj]:
        result = await self.local.list("pods", NS, label_selector=f"batch.kubernetes.io/job-name={job_name}")
        return sorted(result.items, key=lambda p: (p["metadata"]["creationTimestamp"], p["metadata"]["name"]))

    async def active_pods(self, job_name: str) -> list[Obj]:
        return [
            p
            for p in await self.pods(job_name)
            if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
            and not p["metadata"].get("deletionTimestamp")
        ]

    async def set_status(self, pod: Obj, status: Obj) -> None:
        fresh = deep_copy(await self.local.get("pods", pod["metadata"]["name"], NS))
        fresh["status"] = status
        await self.local.update("pods", fresh, subresource="status")

    async def run(self, pod: Obj, ready: bool = True) -> None:
        ts = rfc3339(self.clock.now())
        await self.set_status(
            pod,
            {
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": ts}],
                "containerStatuses": [{"name": "c", "restartCount": 0, "state": {"running": {"startedAt": ts}}}],
            },
        )

    async def finish(self, pod: Obj, exit_code: int = 0, container: str = "c", conditions: list[Obj] | None = None) -> None:
        ts = rfc3339(self.clock.now())
        await self.set_status(
            pod,
            {
                "phase": "Succeeded" if exit_code == 0 else "Failed",
                "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": ts}, *(conditions or [])],
                "containerStatuses": [
                    {
                        "name": container,
                        "restartCount": 0,
                        "state": {"terminated": {"exitCode": exit_code, "finishedAt": ts, "reason": "Completed" if exit_code == 0 else "Error"}},
                    }
                ],
            },
        )

    async def kubelet_finish_deleted(self, job_name: str, exit_code: int = 143) -> None:
        """Terminate every pod that has a deletionTimestamp but is still running."""
        for p in await self.pods(job_name):
            if p["metadata"].get("deletionTimestamp") and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
                await self.finish(p, exit_code)
                try:
                    await self.local.delete("pods", p["metadata"]["name"], NS, grace_period_seconds=0)
                except NotFound:
                    pass


def run(test: Callable[[Harness], Awaitable[None]], config: JobControllerConfig | None = None) -> None:
    async def main() -> None:
        harness = Harness(config)
        await harness.start()
        try:
            await test(harness)
        finally:
            await harness.stop()

    asyncio.run(main())


def conds(job: Obj) -> list[tuple[str, str, str]]:
    return [(c["type"], c["status"], c.get("reason", "")) for c in (job.get("status") or {}).get("conditions") or []]


# -- scenarios -------------------------------------------------------------------------------


def test_completions_and_parallelism_run_to_complete() -> None:
    async def t(h: Harness) -> None:
        await h.create_job("all", completions=3, parallelism=2)
        pods = await h.pods("all")
        assert len(pods) == 2
        pod = pods[0]
        assert pod["metadata"]["generateName"] == "all-"
        assert TRACKING_FINALIZER in pod["metadata"]["finalizers"]
        ref = pod["metadata"]["ownerReferences"][0]
        assert ref["kind"] == "Job" and ref["controller"] is True and ref["blockOwnerDeletion"] is True
        assert "hostname" not in pod["spec"]
        job = await h.job("all")
        assert job["status"]["active"] == 2 and job["status"]["startTime"]
        for p in pods:
            await h.run(p)
        await h.settle()
        assert (await h.job("all"))["status"]["ready"] == 2
        for p in pods:
            await h.finish(p)
        await h.settle()
        assert len(await h.pods("all")) == 3
        job = await h.job("all")
        assert job["status"]["succeeded"] == 2 and job["status"]["active"] == 1
        await h.finish((await h.active_pods("all"))[0])
        await h.settle()
        job = await h.job("all")
        assert conds(job) == [
            ("SuccessCriteriaMet", "True", "CompletionsReached"),
            ("Complete", "True", "CompletionsReached"),
        ]
        assert job["status"]["completionTime"]
        assert job["status"]["succeeded"] == 3 and job["status"]["active"] == 0
        assert job["status"]["uncountedTerminatedPods"] == {}
        assert all(TRACKING_FINALIZER not in (p["metadata"].get("finalizers") or []) for p in await h.pods("all"))
        assert h.recorder.reasons().count("SuccessfulCreate") == 3
        assert "Completed" in h.recorder.reasons()

    run(t)


def test_backoff_limit_with_exponential_backoff() -> None:
    async def t(h: Harness) -> None:
        await h.create_job("bl", backoffLimit=2)
        await h.finish((await h.pods("bl"))[0], exit_code=1)
        await h.settle()
        job = await h.job("bl")
        assert job["status"]["failed"] == 1 and len(await h.pods("bl")) == 1
        assert job["status"]["active"] == 0
        await h.advance(9)
        assert len(await h.pods("bl")) == 1
        await h.advance(1.5)
        assert len(await h.pods("bl")) == 2
        await h.finish((await h.active_pods("bl"))[0], exit_code=1)
        await h.advance(19)
        assert len(await h.pods("bl")) == 2
        await h.advance(1.5)
        assert len(await h.pods("bl")) == 3
        await h.finish((await h.active_pods("bl"))[0], exit_code=1)
        await h.settle()
        job = await h.job("bl")
        assert conds(job) == [
            ("FailureTarget", "True", "BackoffLimitExceeded"),
            ("Failed", "True", "BackoffLimitExceeded"),
        ]
        assert job["status"]["failed"] == 3
        assert "completionTime" not in job["status"]
        assert ("Warning", "BackoffLimitExceeded") in [(e.type, e.reason) for e in h.recorder.events]

    run(t)


def test_active_stays_real_while_backoff_holds_creation() -> None:
    async def t(h: Harness) -> None:
        await h.create_job("wq", parallelism=2)
        a, b = await h.pods("wq")
        await h.run(a)
        await h.finish(b, exit_code=1)
        await h.settle()
        st = (await h.job("wq"))["status"]
        assert (st["active"], st["ready"], st["failed"]) == (1, 1, 1)
        await h.finish(a)
        await h.settle()
        job = await h.job("wq")
        assert ("Complete", "True", "CompletionsReached") in conds(job)
        assert len(await h.pods("wq")) == 2

    run(t)


def test_deadline_deletes_pods_and_fails_after_they_terminate() -> None:
    async def t(h: Harness) -> None:
        await h.create_job("dl", parallelism=2, completions=4, activeDeadlineSeconds=30)
        for p in await h.pods("dl"):
            await h.run(p)
        await h.advance(29)
        assert conds(await h.job("dl")) == []
        await h.advance(1)
        job = await h.job("dl")
        assert conds(job) == [("FailureTarget", "True", "DeadlineExceeded")]
        assert job["status"]["failed"] == 2
        await h.kubelet_finish_deleted("dl")
        await h.settle()
        job = await h.job("dl")
        assert conds(job)[-1] == ("Failed", "True", "DeadlineExceeded")
        assert job["status"]["active"] == 0 and job["status"]["terminating"] == 0

    run(t)


def test_suspend_at_create_then_resume() -> None:
    async def t(h: Harness) -> None:
        await h.create_job("sus", suspend=True, parallelism=2, completions=2)
        job = await h.job("sus")
        assert await h.pods("sus") == []
        assert conds(job) == [("Suspended", "True", "JobSuspended")]
        assert "startTime" not in job["status"]
        await h.local.patch("jobs", "sus", {"spec": {"suspend": False}}, NS)
        await h.settle()
        job = await h.job("sus")
        assert conds(job) == [("Suspended", "False", "JobResumed")]
        assert job["status"]["startTime"]
        assert len(await h.pods("sus")) == 2
        reasons = h.recorder.reasons()
        assert reasons.index("Suspended") < reasons.index("Resumed")

    run(t)


def test_suspend_running_job_deletes_pods_without_counting() -> None:
    async def t(h: Harness) -> None:
        await h.create_job("sr", parallelism=3, completions=3)
        for p in await h.pods("sr"):
            await h.run(p)
        await h.settle()
        await h.local.patch("jobs", "sr", {"spec": {"suspend": True}}, NS)
        await h.settle()
        job = await h.job("sr")
        assert job["status"].get("failed", 0) == 0
        assert job["status"]["active"] == 0
        assert conds(job) == [("Suspended", "True", "JobSuspended")]

    run(t)


def test_indexed_pods_and_completed_indexes() -> None:
    async def t(h: Harness) -> None:
        await h.create_job("ix", completionMode="Indexed", completions=3, parallelism=3)
        pods = await h.pods("ix")
        by_index = {int(p["metadata"]["annotations"][COMPLETION_INDEX_KEY]): p for p in pods}
        assert sorted(by_index) == [0, 1, 2]
        p1 = by_index[1]
        assert p1["metadata"]["labels"][COMPLETION_INDEX_KEY] == "1"
        assert p1["metadata"]["generateName"] == "ix-1-"
        assert p1["spec"]["hostname"] == "ix-1"
        env = p1["spec"]["containers"][0]["env"]
        assert env[0]["name"] == "JOB_COMPLETION_INDEX"
        assert env[0]["valueFrom"]["fieldRef"]["fieldPath"] == f"metadata.labels['{COMPLETION_INDEX_KEY}']"
        await h.finish(by_index[0])
        await h.finish(by_index[2])
        await h.settle()
        job = await h.job("ix")
        assert job["status"]["completedIndexes"] == "0,2" and job["status"]["succeeded"] == 2
        await h.finish(by_index[1])
        await h.settle()
        job = await h.job("ix")
        assert job["status"]["completedIndexes"] == "0-2"
        assert conds(job)[-1] == ("Complete", "True", "CompletionsReached")

    run(t)


def test_backoff_limit_per_index_and_failed_indexes() -> None:
    async def t(h: Harness) -> None:
        await h.create_job("bpi", completionMode="Indexed", completions=3, parallelism=3, backoffLimitPerIndex=1)
        pods = {int(p["metadata"]["annotations"][COMPLETION_INDEX_KEY]): p for p in await h.pods("bpi")}
        assert pods[1]["metadata"]["annotations"]["batch.kubernetes.io/job-index-failure-count"] == "0"
        await h.finish(pods[1], exit_code=1)
        await h.settle()
        assert len(await h.pods("bpi")) == 3  # per-index backoff holds the replacement
        await h.advance(10.5)
        replacement = [p for p in await h.active_pods("bpi") if p["metadata"]["annotations"][COMPLETION_INDEX_KEY] == "1"]
        assert len(replacement) == 1
        assert replacement[0]["metadata"]["annotations"]["batch.kubernetes.io/job-index-failure-count"] == "1"
        await h.finish(replacement[0], exit_code=1)
        await h.settle()
        job = await h.job("bpi")
        assert job["status"]["failedIndexes"] == "1"
        await h.finish(pods[0])
        await h.finish(pods[2])
        await h.settle()
        job = await h.job("bpi")
        assert conds(job) == [("FailureTarget", "True", "FailedIndexes"), ("Failed", "True", "FailedIndexes")]
        st = job["status"]
        assert (st["failed"], st["succeeded"], st["completedIndexes"]) == (2, 2, "0,2")

    run(t)


def test_pod_failure_policy_fail_job_message() -> None:
    async def t(h: Harness) -> None:
        policy = {"rules": [{"action": "FailJob", "onExitCodes": {"containerName": "c", "operator": "In", "values": [42]}}]}
        await h.create_job("pfp", parallelism=2, completions=2, podFailurePolicy=policy)
        a, b = await h.pods("pfp")
        await h.run(b)
        await h.finish(a, exit_code=42)
        await h.settle()
        job = await h.job("pfp")
        msg = f"Container c for pod {NS}/{a['metadata']['name']} failed with exit code 42 matching FailJob rule at index 0"
        target = job["status"]["conditions"][0]
        assert (target["type"], target["reason"], target["message"]) == ("FailureTarget", "PodFailurePolicy", msg)
        await h.kubelet_finish_deleted("pfp")
        await h.settle()
        job = await h.job("pfp")
        assert conds(job)[-1] == ("Failed", "True", "PodFailurePolicy")
        assert job["status"]["failed"] == 2

    run(t)


def test_pod_failure_policy_ignore_is_not_counted() -> None:
    async def t(h: Harness) -> None:
        policy = {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}]}
        await h.create_job("ign", backoffLimit=0, podFailurePolicy=policy)
        (pod,) = await h.pods("ign")
        await h.finish(pod, exit_code=137, conditions=[{"type": "DisruptionTarget", "status": "True"}])
        await h.advance(11)
        job = await h.job("ign")
        assert job["status"].get("failed", 0) == 0
        assert conds(job) == []
        assert len(await h.active_pods("ign")) == 1

    run(t)


def test_success_policy_then_complete_after_pods_gone() -> None:
    async def t(h: Harness) -> None:
        await h.create_job(
            "sp", completionMode="Indexed", completions=3, parallelism=3,
            successPolicy={"rules": [{"succeededIndexes": "0,1", "succeededCount": 1}]},
        )
        pods = {int(p["metadata"]["annotations"][COMPLETION_INDEX_KEY]): p for p in await h.pods("sp")}
        await h.finish(pods[1])
        await h.settle()
        job = await h.job("sp")
        assert conds(job) == [("SuccessCriteriaMet", "True", "SuccessPolicy")]
        assert job["status"]["terminating"] >= 1
        await h.kubelet_finish_deleted("sp")
        await h.settle()
        job = await h.job("sp")
        assert conds(job)[-1] == ("Complete", "True", "SuccessPolicy")
        assert job["status"]["conditions"][-1]["message"] == "Matched rules at index 0"
        assert job["status"].get("failed", 0) == 0 and job["status"]["succeeded"] == 1

    run(t)


def test_managed_by_external_controller_is_ignored() -> None:
    async def t(h: Harness) -> None:
        await h.create_job("ext", managedBy="example.com/ctrl")
        assert await h.pods("ext") == []
        assert (await h.job("ext")).get("status") in ({}, None)

    run(t)


def test_orphan_delete_clears_tracking_finalizers() -> None:
    async def t(h: Harness) -> None:
        await h.create_job("orph", parallelism=2, completions=2)
        for p in await h.pods("orph"):
            await h.run(p)
        await h.local.delete("jobs", "orph", NS, propagation_policy="Orphan")
        # No garbage collector runs here: play its part by dropping the ownerReferences.
        for p in await h.pods("orph"):
            fresh = deep_copy(p)
            fresh["metadata"]["ownerReferences"] = []
            await h.local.update("pods", fresh)
        await h.settle()
        pods = await h.pods("orph")
        assert len(pods) == 2
        assert all(TRACKING_FINALIZER not in (p["metadata"].get("finalizers") or []) for p in pods)

    run(t)


def test_adopts_matching_orphan_and_releases_unlabelled() -> None:
    async def t(h: Harness) -> None:
        job = await h.create_job("ad", parallelism=2, completions=4)
        pods = await h.pods("ad")
        first = deep_copy(pods[0])
        first["metadata"]["ownerReferences"] = []
        await h.local.update("pods", first)
        await h.settle()
        adopted = await h.local.get("pods", first["metadata"]["name"], NS)
        ref = adopted["metadata"]["ownerReferences"][0]
        assert ref["uid"] == job["metadata"]["uid"] and ref["controller"] is True
        released = deep_copy(adopted)
        released["metadata"]["labels"] = {}
        await h.local.update("pods", released)
        await h.settle()
        after = await h.local.get("pods", first["metadata"]["name"], NS)
        assert not after["metadata"].get("ownerReferences")
        assert TRACKING_FINALIZER not in (after["metadata"].get("finalizers") or [])
        labelled = await h.active_pods("ad")  # the released pod lost its labels and was replaced
        assert len(labelled) == 2 and first["metadata"]["name"] not in {p["metadata"]["name"] for p in labelled}
        assert (await h.job("ad"))["status"]["active"] == 2

    run(t)


def test_crash_after_uncounted_write_counts_exactly_once() -> None:
    """Finalizer removal fails after the status recorded the UID: a new controller counts it once."""

    async def t(h: Harness) -> None:
        await h.create_job("cr", completions=2, parallelism=2)
        a, _b = await h.pods("cr")
        h.client.fail["patch"] = lambda resource, *a, **k: resource == "pods"
        await h.finish(a)
        await h.settle()
        job = await h.job("cr")
        assert job["status"]["uncountedTerminatedPods"]["succeeded"] == [a["metadata"]["uid"]]
        assert job["status"].get("succeeded", 0) == 0
        h.client.fail.clear()
        await h.restart()
        await h.settle()
        job = await h.job("cr")
        assert job["status"]["succeeded"] == 1 and job["status"]["uncountedTerminatedPods"] == {}
        await h.restart()
        await h.settle()
        assert (await h.job("cr"))["status"]["succeeded"] == 1

    run(t)


def test_crash_after_finalizer_removed_before_count_write() -> None:
    """The last status write is lost: the restarted controller moves the UID into the counter."""

    async def t(h: Harness) -> None:
        await h.create_job("cr2", completions=2, parallelism=2)
        a, _ = await h.pods("cr2")
        writes: list[int] = []

        def second_status_write(resource: str, obj: Obj, subresource: str | None = None) -> bool:
            if resource == "jobs" and subresource == "status":
                writes.append(1)
                return len(writes) == 2
            return False

        h.client.fail["update"] = second_status_write
        await h.finish(a)
        await h.settle()
        h.client.fail.clear()
        await h.restart()
        await h.settle()
        job = await h.job("cr2")
        assert job["status"]["succeeded"] == 1
        assert job["status"]["uncountedTerminatedPods"] == {}
        assert len(await h.pods("cr2")) == 2

    run(t)


def test_scale_down_deletes_surplus_without_counting() -> None:
    async def t(h: Harness) -> None:
        await h.create_job("sd", parallelism=4, completions=8)
        pods = await h.pods("sd")
        for p in pods[:2]:
            await h.run(p, ready=True)
        await h.settle()
        await h.local.patch("jobs", "sd", {"spec": {"parallelism": 2}}, NS)
        await h.settle()
        job = await h.job("sd")
        assert job["status"]["active"] == 2 and job["status"].get("failed", 0) == 0
        remaining = {p["metadata"]["name"] for p in await h.active_pods("sd")}
        assert remaining == {p["metadata"]["name"] for p in pods[:2]}  # unready ones go first

    run(t)


def test_terminating_or_failed_counts_deleted_pod_and_replaces_at_once() -> None:
    async def t(h: Harness) -> None:
        await h.create_job("tof", completions=1)
        (pod,) = await h.pods("tof")
        await h.run(pod)
        await h.local.delete("pods", pod["metadata"]["name"], NS)
        await h.settle()
        job = await h.job("tof")
        assert job["status"]["failed"] == 1 and job["status"]["terminating"] == 1
        await h.advance(10.5)  # the deleted pod still starts the pod-failure backoff
        assert len(await h.active_pods("tof")) == 1

    run(t)


def test_finalizer_removal_falls_back_to_merge_patch() -> None:
    """An API without strategic-merge support still gets finalizers removed (rv-guarded merge patch)."""

    async def t(h: Harness) -> None:
        inner_patch = h.local.patch

        async def no_strategic(resource: str, name: str, patch: Any, namespace: str = "", patch_type: str = "merge", **kw: Any) -> Obj:
            if patch_type == "strategic":
                raise UnsupportedMediaType("strategic merge patch not supported")
            return await inner_patch(resource, name, patch, namespace, patch_type, **kw)  # type: ignore[arg-type]

        h.local.patch = no_strategic  # type: ignore[method-assign,assignment]
        await h.create_job("fb", completions=1)
        await h.finish((await h.pods("fb"))[0])
        await h.settle()
        job = await h.job("fb")
        assert conds(job)[-1] == ("Complete", "True", "CompletionsReached")
        assert all(TRACKING_FINALIZER not in (p["metadata"].get("finalizers") or []) for p in await h.pods("fb"))
        assert not h.ctrl.pod_control.strategic_ok

    run(t)
