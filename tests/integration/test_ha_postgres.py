"""Issue 16's done-when test: three ``joblet server --components api,controllers`` replicas on
one real PostgreSQL, one ``joblet node --server URL1,URL2,URL3``, a 500-pod Indexed Job and a
kill -9 of the leader mid-run.

Checked: another replica holds Lease kube-system/joblet-controller-manager within the lease
duration (plus one retry period); the Job ends Complete with exact counts (succeeded 500, one
Succeeded pod per index, no index twice); kubectl against each live replica sees the same
objects at the same resourceVersions (with the dead replica's kubeconfig: one identity); a
watch opened on one replica and the same watch opened on another from the same
resourceVersion deliver the same events; ``kubectl logs`` through either live replica reaches
the node's log endpoint. Real processes, real PostgreSQL, real kubectl.
Takes about 2 minutes on a quiet 2-core machine, 6 under a load average of 20 (``-m postgres``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_crash_recovery import Server, complete, poll

from joblet.clock import RealClock, parse_time
from support.tls import kubeconfig_http

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(1500)]

PODS = 500
LEASE = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/joblet-controller-manager"
JOB = "/apis/batch/v1/namespaces/default/jobs/ha"
LEASE_DURATION = 15.0
RETRY_PERIOD = 2.0


def kubectl(kubeconfig: Path, server: str, *args: str) -> str:
    out = subprocess.run(["/usr/bin/kubectl", "--kubeconfig", str(kubeconfig), "--server", server, *args],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def get(kubeconfig: Path, server: str, path: str) -> Any:
    with kubeconfig_http(kubeconfig, timeout=10) as http:
        r = http.get(server + path)
    r.raise_for_status()
    return r.json()


def watch_events(kubeconfig: Path, server: str, rv: str) -> list[tuple[str, str, str]]:
    """(type, name, resourceVersion) of the pod events after ``rv``, until the server ends the watch."""
    with kubeconfig_http(kubeconfig, timeout=60) as http, http.stream(
            "GET", server + "/api/v1/namespaces/default/pods",
            params={"watch": "true", "resourceVersion": rv, "timeoutSeconds": "3"}) as r:
        assert r.status_code == 200
        out = []
        for line in r.iter_lines():
            if line.strip():
                ev = json.loads(line)
                meta = ev["object"]["metadata"]
                out.append((ev["type"], meta.get("name", ""), meta["resourceVersion"]))
    return out


def test_three_replicas_survive_kill9_of_the_leader_mid_job(pg_url: str, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBLET_STORE", pg_url)
    cache = tmp_path / "shim-cache"
    replicas = []
    for i in range(3):
        data = tmp_path / f"r{i}" / "data"
        data.mkdir(parents=True)
        replicas.append(Server(data, cache, ("--components", "api,controllers")))
    node: subprocess.Popen[bytes] | None = None
    clock = RealClock()
    try:
        for r in replicas:
            r.start()
        leader, *others = replicas
        kubeconfig = leader.data_dir / "kubeconfig"  # the leader's: it must outlive the leader
        lease = get(kubeconfig, leader.url, LEASE)
        first_holder = lease["spec"]["holderIdentity"]
        assert first_holder  # the first replica took the free lease at once
        for r in others:  # followers answer with the same lease (one store)
            assert get(kubeconfig, r.url, LEASE)["spec"]["holderIdentity"] == first_holder

        env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "JOBLET_DATA_DIR", "JOBLET_STORE")}
        env["JOBLET_CACHE_DIR"] = str(cache)
        with open(tmp_path / "node.log", "ab") as out:
            node = subprocess.Popen(
                [sys.executable, "-m", "joblet", "node", "--kubeconfig", str(kubeconfig),
                 "--server", ",".join(r.url for r in replicas), "--node-name", "ha-node",
                 "--data-dir", str(tmp_path / "node"), "--log-port", "0", "--heartbeat-seconds", "2"],
                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        poll(lambda: any(n["metadata"]["name"] == "ha-node"
                         for n in get(kubeconfig, others[0].url, "/api/v1/nodes")["items"]), 60, "no node")

        created = leader.post("/apis/batch/v1/namespaces/default/jobs", {
            "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "ha"},
            "spec": {"completions": PODS, "parallelism": 40, "completionMode": "Indexed", "backoffLimit": 0,
                     "template": {"spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                                           "containers": [{"name": "c", "image": "busybox",
                                                           "command": ["sh", "-c", "echo index $JOB_COMPLETION_INDEX"]}]}}}})
        rv_at_create = created["metadata"]["resourceVersion"]

        def succeeded() -> int:
            return int((get(kubeconfig, others[0].url, JOB).get("status") or {}).get("succeeded") or 0)

        poll(lambda: succeeded() >= PODS // 5, 300, "the Job made no progress before the kill")
        killed_at = clock.monotonic()
        assert leader.proc is not None
        leader.proc.send_signal(signal.SIGKILL)
        leader.proc.wait(10)
        assert succeeded() < PODS, "the Job finished before the leader was killed: raise PODS"
        last_renew = parse_time(get(kubeconfig, others[0].url, LEASE)["spec"]["renewTime"])

        def new_holder() -> bool:
            try:
                spec = get(kubeconfig, others[0].url, LEASE)["spec"]
            except httpx.HTTPError:
                return False
            return bool(spec.get("holderIdentity")) and spec["holderIdentity"] != first_holder

        poll(new_holder, LEASE_DURATION + 3 * RETRY_PERIOD + 10, "no replica took the lease over")
        took_over = clock.monotonic() - killed_at
        print(f"lease taken over {took_over:.1f} s after kill -9 of the leader")
        assert took_over <= LEASE_DURATION + RETRY_PERIOD + 3, took_over  # within its duration (+ one retry, + load)
        lease = get(kubeconfig, others[0].url, LEASE)
        assert lease["spec"]["leaseTransitions"] >= 1
        # measured on the Lease itself: the new holder acquired it within the duration of the
        # dead leader's last renewal (+ one retry period, + scheduling slack on a loaded machine)
        gap = (parse_time(lease["spec"]["acquireTime"]) - last_renew).total_seconds()
        print(f"new holder acquired the lease {gap:.1f} s after the dead leader's last renewTime")
        assert gap <= LEASE_DURATION + RETRY_PERIOD + 3, gap

        poll(lambda: complete(get(kubeconfig, others[1].url, JOB)), 600, "the Job did not complete after failover")
        job = get(kubeconfig, others[1].url, JOB)
        assert job["status"]["succeeded"] == PODS
        assert not job["status"].get("failed")
        assert job["status"]["completedIndexes"] == f"0-{PODS - 1}"
        pods = get(kubeconfig, others[0].url, "/api/v1/namespaces/default/pods?labelSelector=job-name%3Dha")["items"]
        done = [int(p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"])
                for p in pods if p["status"].get("phase") == "Succeeded"]
        assert sorted(done) == list(range(PODS))  # one success per index, none twice
        assert all(p["spec"]["nodeName"] == "ha-node" for p in pods)

        # kubectl against each live replica (with the dead leader's kubeconfig) sees the same objects
        views = []
        for r in others:
            listed = json.loads(kubectl(kubeconfig, r.url, "get", "pods,jobs,leases", "-A", "-o", "json"))
            views.append(sorted((o["kind"], o["metadata"]["name"], o["metadata"]["resourceVersion"])
                                for o in listed["items"] if o["kind"] != "Lease"))
        assert views[0] == views[1] and len(views[0]) == len(pods) + 1

        # logs stay on the node; any replica serves them through the log proxy (shared CA)
        seventh = next(p for p in pods if p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] == "7")
        for r in others:
            assert kubectl(kubeconfig, r.url, "logs", seventh["metadata"]["name"]).strip() == "index 7"

        # a watch from one resourceVersion gives the same events on either replica
        on_first = watch_events(kubeconfig, others[0].url, rv_at_create)
        on_second = watch_events(kubeconfig, others[1].url, rv_at_create)
        assert len(on_first) >= PODS and on_first == on_second
        node_log = (tmp_path / "node.log").read_text()
        assert "failing over" in node_log  # the node moved off the dead replica's URL
    finally:
        if node is not None and node.poll() is None:
            node.send_signal(signal.SIGTERM)
            try:
                node.wait(15)
            except subprocess.TimeoutExpired:
                node.kill()
                node.wait(5)
        for r in replicas:
            r.stop()
