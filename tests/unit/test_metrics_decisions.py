"""joblet.metrics: upstream names/labels, the pure helpers, the work-queue collector, the
request classifier, and per-plane registries that do not clash."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from joblet.api.resources import RESOURCES
from joblet.clock import FakeClock
from joblet.controllers.runtime import WorkQueue
from joblet.metrics import (
    JobletMetrics,
    RequestClass,
    bind,
    classify_request,
    creation_reason,
    job_sync_action,
    job_sync_mode,
    metrics_for,
    pods_finished_delta,
    tracking_finalizer_events,
)

Obj = dict[str, Any]
UPSTREAM = [
    "job_controller_job_sync_duration_seconds", "job_controller_job_syncs", "job_controller_jobs_finished",
    "job_controller_job_pods_finished", "job_controller_pod_failures_handled_by_failure_policy",
    "job_controller_terminated_pods_tracking_finalizer", "job_controller_job_pods_creation",
    "cronjob_controller_job_creation_skew_duration_seconds",
    "ttl_after_finished_controller_job_deletion_duration_seconds",
]


def samples(m: JobletMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(m.exposition().decode()):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(m: JobletMetrics, metric: str, **labels: str) -> float:
    return samples(m).get((metric, tuple(sorted(labels.items()))), 0.0)


def test_every_upstream_family_is_registered() -> None:
    m = JobletMetrics(FakeClock())
    names = {fam.name for fam in m.registry.collect()}
    assert set(UPSTREAM) <= names
    assert not any(n.endswith("_created") for n, _ in samples(m))


def test_two_planes_do_not_clash() -> None:
    a, b = JobletMetrics(FakeClock()), JobletMetrics(FakeClock())
    a.pod_started("n1")
    assert value(a, "joblet_pods_started_total", node="n1") == 1
    assert value(b, "joblet_pods_started_total", node="n1") == 0


def test_job_sync_observed_only_when_marked() -> None:
    clock = FakeClock()
    m = JobletMetrics(clock)
    with m.job_sync():
        pass  # a finished / missing Job: not observed
    with m.job_sync():
        job_sync_mode({"spec": {"completionMode": "Indexed"}})
        job_sync_action("pods_created")
        clock.advance(0.01)
    with pytest.raises(RuntimeError), m.job_sync():
        job_sync_mode({"spec": {}})
        raise RuntimeError("boom")
    assert value(m, "job_controller_job_syncs_total", completion_mode="Indexed", result="success",
                 action="pods_created") == 1
    assert value(m, "job_controller_job_syncs_total", completion_mode="NonIndexed", result="error",
                 action="reconciling") == 1
    assert value(m, "job_controller_job_sync_duration_seconds_bucket", completion_mode="Indexed", result="success",
                 action="pods_created", le="0.016") == 1


@pytest.mark.parametrize(("before", "after", "expected"), [
    pytest.param(None, {"status": {"succeeded": 2, "failed": 1}}, (2, 1), id="first-write"),
    pytest.param({"status": {"succeeded": 2}}, {"status": {"succeeded": 3, "failed": 1}}, (1, 1), id="delta"),
    pytest.param({"status": {"succeeded": 3}}, {"status": {"succeeded": 3}}, (0, 0), id="unchanged"),
    pytest.param({"metadata": {"uid": "old"}, "status": {"succeeded": 5}},
                 {"metadata": {"uid": "new"}, "status": {"succeeded": 1}}, (1, 0), id="same-name-new-job"),
])
def test_pods_finished_delta(before: Obj | None, after: Obj, expected: tuple[int, int]) -> None:
    assert pods_finished_delta(before, after) == expected


@pytest.mark.parametrize(("job", "terminating", "expected"), [
    pytest.param({"status": {}}, 0, "new", id="first-pods"),
    pytest.param({"status": {"failed": 1}}, 0, "recreate_terminating_or_failed", id="default-policy"),
    pytest.param({"spec": {"podReplacementPolicy": "Failed"}, "status": {"failed": 1}}, 0, "recreate_failed",
                 id="failed-policy"),
    pytest.param({"status": {}}, 1, "recreate_terminating_or_failed", id="terminating"),
])
def test_creation_reason(job: Obj, terminating: int, expected: str) -> None:
    assert creation_reason(job, terminating) == expected


FIN = {"metadata": {"finalizers": ["batch.kubernetes.io/job-tracking"]}}


@pytest.mark.parametrize(("old", "new", "expected"), [
    pytest.param(None, {**FIN, "status": {"phase": "Failed"}}, ["add"], id="added-finished"),
    pytest.param({**FIN, "status": {"phase": "Running"}}, {**FIN, "status": {"phase": "Succeeded"}}, ["add"],
                 id="became-finished"),
    pytest.param({**FIN, "status": {"phase": "Failed"}}, {"metadata": {}, "status": {"phase": "Failed"}}, ["delete"],
                 id="finalizer-removed"),
    pytest.param({**FIN, "status": {"phase": "Failed"}}, None, ["delete"], id="deleted"),
    pytest.param({**FIN, "status": {"phase": "Running"}}, {**FIN, "status": {"phase": "Running"}}, [], id="running"),
])
def test_tracking_finalizer_events(old: Obj | None, new: Obj | None, expected: list[str]) -> None:
    assert tracking_finalizer_events(old, new) == expected


@pytest.mark.parametrize(("method", "path", "query", "expected"), [
    pytest.param("GET", "/apis/batch/v1/namespaces/d/jobs", "", RequestClass("LIST", "jobs", ""), id="list"),
    pytest.param("GET", "/apis/batch/v1/jobs", "watch=1", RequestClass("WATCH", "jobs", ""), id="watch"),
    pytest.param("GET", "/api/v1/namespaces/d/pods/p/log", "follow=true", RequestClass("GET", "pods", "log"),
                 id="log"),
    pytest.param("POST", "/api/v1/namespaces/d/pods", "", RequestClass("CREATE", "pods", ""), id="create"),
    pytest.param("PUT", "/apis/batch/v1/namespaces/d/jobs/j/status", "", RequestClass("PUT", "jobs", "status"),
                 id="status"),
    pytest.param("DELETE", "/api/v1/namespaces/d/pods", "", RequestClass("DELETECOLLECTION", "pods", ""),
                 id="deletecollection"),
    pytest.param("GET", "/api/v1/nodes/n", "", RequestClass("GET", "nodes", ""), id="cluster-scoped"),
    pytest.param("GET", "/version", "", RequestClass("GET", "version", ""), id="version"),
    pytest.param("GET", "/ui/jobs/d/j", "", RequestClass("GET", "ui", ""), id="dashboard"),
    pytest.param("GET", "/wp-admin/x", "", RequestClass("GET", "other", ""), id="bounded-cardinality"),
])
def test_classify_request(method: str, path: str, query: str, expected: RequestClass) -> None:
    served = {r.plural: r.subresources for r in RESOURCES.values()}
    assert classify_request(method, path, query, served) == expected


def test_workqueue_depth_is_collected_at_scrape_time() -> None:
    clock = FakeClock()
    m = JobletMetrics(clock)
    q = WorkQueue(clock, "job")
    m.add_queue_source(lambda: [q])
    assert value(m, "workqueue_depth", name="job") == 0
    q.add("a/b")
    q.add("a/c")
    q.add_after("a/d", 10)
    assert value(m, "workqueue_depth", name="job") == 2
    assert value(m, "joblet_workqueue_delayed", name="job") == 1


def test_metrics_for_unbound_client_is_safe_and_bound_client_is_found() -> None:
    class Client:
        pass

    c = Client()
    fallback = metrics_for(c)
    fallback.pod_started()  # never raises
    m = JobletMetrics(FakeClock())
    bind(c, m)
    assert metrics_for(c) is m


def test_helper_functions_for_other_controllers_and_node() -> None:
    m = JobletMetrics(FakeClock())
    m.cronjob_creation_skew(3.0)
    m.ttl_deletion_duration(0.3)
    m.pod_finished({"status": {"phase": "Failed", "containerStatuses": [
        {"state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]}}, "n")
    m.failure_policy_actions({"Ignore": 2, "FailJob": 0})
    assert value(m, "cronjob_controller_job_creation_skew_duration_seconds_count") == 1
    assert value(m, "ttl_after_finished_controller_job_deletion_duration_seconds_count") == 1
    assert value(m, "joblet_pods_finished_total", node="n", phase="Failed", reason="OOMKilled") == 1
    assert value(m, "job_controller_pod_failures_handled_by_failure_policy_total", action="Ignore") == 2
