"""GET /metrics on a real server: upstream series present, values move after Jobs run."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from joblet.config import ControlPlaneConfig
from joblet.controlplane import ControlPlane
from support import builders
from support.tls import kubeconfig_async_http

Obj = dict[str, Any]
UPSTREAM = [
    "job_controller_job_sync_duration_seconds", "job_controller_job_syncs", "job_controller_jobs_finished",
    "job_controller_job_pods_finished", "job_controller_pod_failures_handled_by_failure_policy",
    "job_controller_terminated_pods_tracking_finalizer", "job_controller_job_pods_creation",
    "cronjob_controller_job_creation_skew_duration_seconds",
    "ttl_after_finished_controller_job_deletion_duration_seconds",
    "workqueue_depth", "joblet_store_write_duration_seconds", "apiserver_request_duration_seconds",
]


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


def job(name: str, command: str, **spec: Any) -> Obj:
    return builders.job(name, command, **{"backoffLimit": 0, **spec})


def scrape(text: str) -> tuple[set[str], dict[tuple[str, frozenset[tuple[str, str]]], float]]:
    families, values = set(), {}
    for fam in text_string_to_metric_families(text):
        families.add(fam.name)
        for s in fam.samples:
            values[(s.name, frozenset(s.labels.items()))] = s.value
    return families, values


def total(values: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    want = set(labels.items())
    return sum(v for (n, ls), v in values.items() if n == name and want <= ls)


def test_metrics_move_after_jobs_run(tmp_path: Path) -> None:
    async def main() -> None:
        port = free_port()
        plane = ControlPlane(ControlPlaneConfig(data_dir=tmp_path / "data", port=port))
        await plane.start()
        try:
            async with kubeconfig_async_http(tmp_path / "data" / "kubeconfig") as http:
                before = await http.get("/metrics")
                assert before.status_code == 200 and before.headers["content-type"].startswith("text/plain")
                families, _ = scrape(before.text)
                assert set(UPSTREAM) <= families
                for manifest in (job("ok", "true", completions=2, parallelism=2), job("bad", "exit 2")):
                    r = await http.post("/apis/batch/v1/namespaces/default/jobs", json=manifest)
                    assert r.status_code == 201, r.text
                loop = asyncio.get_running_loop()
                deadline = loop.time() + 20
                while True:
                    _, values = scrape((await http.get("/metrics")).text)
                    if total(values, "job_controller_jobs_finished_total") >= 2:
                        break
                    assert loop.time() < deadline, "jobs did not finish"
                    await asyncio.sleep(0.1)
                assert total(values, "job_controller_jobs_finished_total", completion_mode="NonIndexed",
                             result="succeeded", reason="CompletionsReached") == 1
                assert total(values, "job_controller_jobs_finished_total", result="failed",
                             reason="BackoffLimitExceeded") == 1
                assert total(values, "job_controller_job_pods_finished_total", result="succeeded") == 2
                assert total(values, "job_controller_job_pods_finished_total", result="failed") == 1
                assert total(values, "job_controller_job_pods_creation_total", reason="new", status="succeeded") == 3
                assert total(values, "job_controller_job_syncs_total", action="pods_created") >= 2
                assert total(values, "job_controller_terminated_pods_tracking_finalizer_total", event="add") >= 3
                assert total(values, "joblet_store_write_duration_seconds_count", operation="create") > 0
                assert total(values, "apiserver_request_total", verb="CREATE", resource="jobs", code="201") == 2
                assert ("workqueue_depth", frozenset({("name", "job")})) in values
        finally:
            await plane.stop()

    asyncio.run(main())


def test_finished_indexes_move_as_indexes_finish(tmp_path: Path) -> None:
    """job_controller_job_finished_indexes_total: one per completed index, and per failed index
    under backoffLimitPerIndex (upstream's recordJobPodFinished)."""
    async def main() -> None:
        port = free_port()
        plane = ControlPlane(ControlPlaneConfig(data_dir=tmp_path / "data", port=port))
        await plane.start()
        try:
            async with kubeconfig_async_http(tmp_path / "data" / "kubeconfig") as http:
                manifests = (
                    job("per-index", 'test "$JOB_COMPLETION_INDEX" != 1', completionMode="Indexed", completions=3,
                        parallelism=3, backoffLimit=10, backoffLimitPerIndex=0),
                    job("global", "true", completionMode="Indexed", completions=2, parallelism=2),
                )
                for manifest in manifests:
                    r = await http.post("/apis/batch/v1/namespaces/default/jobs", json=manifest)
                    assert r.status_code == 201, r.text
                loop = asyncio.get_running_loop()
                deadline = loop.time() + 30
                while True:
                    _, values = scrape((await http.get("/metrics")).text)
                    if total(values, "job_controller_jobs_finished_total") >= 2:
                        break
                    assert loop.time() < deadline, "jobs did not finish"
                    await asyncio.sleep(0.1)
                name = "job_controller_job_finished_indexes_total"
                assert total(values, name, status="succeeded", backoffLimit="perIndex") == 2
                assert total(values, name, status="failed", backoffLimit="perIndex") == 1
                assert total(values, name, status="succeeded", backoffLimit="global") == 2
                assert total(values, name, status="failed", backoffLimit="global") == 0
        finally:
            await plane.stop()

    asyncio.run(main())
