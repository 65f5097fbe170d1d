"""Chaos: kill -9 of the control plane in the middle of big and destructive work, and of a
pod's shim. Every outcome is exact: no pod lost or counted twice, one success per index, and
everything a deletion was asked to remove is gone, with no process left behind.

Why: the crash-recovery test kills once during 6 pods; the promise ("a restart neither loses nor
repeats work") has to hold at the scale and in the phases where state is most in flight — 1,000
pods being created and finishing, the TTL controller deleting a finished Job and the garbage
collector its pods, a Foreground cascade half done. These run the real ``joblet server`` (helpers
from test_crash_recovery) and take about a minute together: ``pytest -m chaos``.
"""

from __future__ import annotations

import os
import signal
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_crash_recovery import INDEX_ANNOTATION, Server, complete, poll, server, shims_of

pytestmark = [pytest.mark.chaos, pytest.mark.slow]
__all__ = ["server"]  # the fixture, re-exported for pytest

JOBS = "/apis/batch/v1/namespaces/default/jobs"


def indexed_job(name: str, completions: int, parallelism: int, script: str, markers: Path,
                **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"completions": completions, "parallelism": parallelism, "completionMode": "Indexed",
                     "backoffLimit": 0, **spec,
                     "template": {"spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                         "volumes": [{"name": "m", "hostPath": {"path": str(markers), "type": "DirectoryOrCreate"}}],
                         "containers": [{"name": "main", "image": "busybox", "command": ["sh", "-c", script],
                                         "volumeMounts": [{"name": "m", "mountPath": "/markers"}],
                                         "env": [{"name": "IDX", "valueFrom": {"fieldRef": {
                                             "fieldPath": f"metadata.annotations['{INDEX_ANNOTATION}']"}}}]}]}}}}


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def runs(markers: Path) -> Counter[str]:
    path = markers / "runs"
    return Counter(path.read_text().split()) if path.exists() else Counter()


def exact(server: Server, name: str, completions: int, markers: Path) -> None:
    """The Job completed with every index succeeded once, run once, and nothing failed."""
    status = server.job(name)["status"]
    assert (status.get("succeeded"), status.get("failed", 0)) == (completions, 0), status
    succeeded = Counter(p["metadata"]["annotations"][INDEX_ANNOTATION] for p in server.pods(name)
                        if p["status"]["phase"] == "Succeeded")
    want = Counter({str(i): 1 for i in range(completions)})
    assert succeeded == want, f"indexes succeeded other than once: {succeeded - want} / {want - succeeded}"
    ran = runs(markers)
    assert ran == want, f"containers ran other than once: {ran - want} / {want - ran}"


def test_kill9_three_times_during_a_1000_pod_job(server: Server, tmp_path: Path) -> None:
    markers, completions = tmp_path / "markers", 1000
    server.post(JOBS, indexed_job("big", completions, 40, 'echo "$IDX" >> /markers/runs', markers))
    for share in (0.2, 0.5, 0.8):
        poll(lambda share=share: sum(runs(markers).values()) >= completions * share, 300,  # type: ignore[misc]
             f"the Job never got {share:.0%} done")
        server.kill9()
        server.start()
    poll(lambda: complete(server.job("big")), 300, "the 1,000-pod Job did not complete after three kills")
    exact(server, "big", completions, markers)
    poll(lambda: not shims_of(server.data_dir), 20, "shim processes outlived their containers")


def test_kill9_during_ttl_deletion(server: Server, tmp_path: Path) -> None:
    markers, completions = tmp_path / "markers", 30
    server.post(JOBS, indexed_job("ttl", completions, 30, 'echo "$IDX" >> /markers/runs', markers,
                                  ttlSecondsAfterFinished=0))
    # the TTL controller deletes the Job the moment it finishes, the GC then its 30 pods: kill in between
    poll(lambda: sum(runs(markers).values()) >= completions, 60, "the Job's pods did not all run")
    poll(lambda: len(server.pods("ttl")) < completions, 60, "the TTL deletion never started")
    server.kill9()
    server.start()
    with server.http() as http:
        poll(lambda: http.get(f"{JOBS}/ttl").status_code == 404, 30, "the finished Job outlived its TTL")
    poll(lambda: not server.pods("ttl"), 30, "pods of the TTL-deleted Job were left behind")
    assert runs(markers) == Counter({str(i): 1 for i in range(completions)})
    poll(lambda: not shims_of(server.data_dir), 20, "shim processes outlived their pods")


def test_kill9_during_a_foreground_cascade(server: Server, tmp_path: Path) -> None:
    markers = tmp_path / "markers"
    server.post(JOBS, indexed_job("fg", 20, 20, 'echo "$IDX" >> /markers/runs; exec sleep 300', markers))
    poll(lambda: sum(runs(markers).values()) >= 20, 60, "the pods did not all start")
    with server.http() as http:
        r = http.delete(f"{JOBS}/fg", params={"propagationPolicy": "Foreground"})
        assert r.status_code == 200, r.text
        # Foreground: the Job stays (deletionTimestamp, foregroundDeletion finalizer) until its pods are gone
        assert "foregroundDeletion" in r.json()["metadata"].get("finalizers", [])
    server.kill9()
    server.start()
    with server.http() as http:
        poll(lambda: http.get(f"{JOBS}/fg").status_code == 404, 60, "the Foreground-deleted Job never went")
    assert not server.pods("fg"), "the Job went before its pods"
    assert runs(markers) == Counter({str(i): 1 for i in range(20)}), "a pod ran again after the restart"
    poll(lambda: not shims_of(server.data_dir), 20, "a killed Job's containers kept running")


def test_kill9_of_a_pods_shim(server: Server, tmp_path: Path) -> None:
    """The shim is the container's supervisor; with it gone the agent cannot learn the exit status,
    so, as the kubelet does for a container it lost, it records exit 137 ``ContainerStatusUnknown``,
    ends what is left of the container, and the Job replaces the pod exactly once."""
    markers = tmp_path / "markers"
    server.post(JOBS, indexed_job("shim", 1, 1, 'echo "$IDX" >> /markers/runs; '
                                  '[ "$(wc -l < /markers/runs)" -gt 1 ] || exec sleep 300', markers,
                                  backoffLimit=1))
    poll(lambda: bool(runs(markers)) and bool(shims_of(server.data_dir)), 30, "the pod did not start")
    found = shims_of(server.data_dir)
    (shim,) = [pid for pid in found if parent_of(pid) not in found]  # the shim, not its forked helpers
    os.kill(shim, signal.SIGKILL)
    poll(lambda: complete(server.job("shim")), 60, "the Job did not replace the pod whose shim was killed")
    status = server.job("shim")["status"]
    assert (status.get("succeeded"), status.get("failed")) == (1, 1), status
    # both pods may be created within one second (creationTimestamp's resolution): tell them by phase
    pods = sorted(server.pods("shim"), key=lambda p: p["status"]["phase"])
    assert [p["status"]["phase"] for p in pods] == ["Failed", "Succeeded"]
    terminated = pods[0]["status"]["containerStatuses"][0]["state"]["terminated"]
    assert runs(markers) == Counter({"0": 2})
    assert (terminated["exitCode"], terminated["reason"]) == (137, "ContainerStatusUnknown")
    poll(lambda: not shims_of(server.data_dir), 20, "shim processes outlived their containers")
    poll(lambda: not processes_naming(markers), 20, "the first container kept running without its shim")


def processes_naming(path: Path) -> list[int]:
    """Live processes whose command line names ``path`` (a container's bwrap binds its volumes)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and str(path).encode() in (proc / "cmdline").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def test_sigstop_of_the_server_longer_than_the_node_heartbeat(tmp_path: Path) -> None:
    """Split mode: the API server and controllers frozen (SIGSTOP) for three heartbeat timeouts
    while pods run on a remote node. On SIGCONT the node lifecycle controller must not mistake its
    own pause for the node's death: it measures heartbeat age from when it last *observed* a
    heartbeat change (upstream's probeTimestamp), so the running pods are kept and finish once."""
    from test_split_mode import free_port, joblet, stop

    from support.process import wait_until_serving

    markers = tmp_path / "markers"
    port = free_port()
    srv = joblet("server", "--data-dir", str(tmp_path / "server"), "--port", str(port), "--components",
                 "api,controllers", "--node-heartbeat-timeout", "3", "--pod-failure-backoff", "0.1",
                 log=tmp_path / "server.log")
    kubeconfig = tmp_path / "server" / "kubeconfig"
    node = None
    try:
        wait_until_serving(srv, kubeconfig, log=tmp_path / "server.log")
        node = joblet("node", "--kubeconfig", str(kubeconfig), "--node-name", "worker-1", "--data-dir",
                      str(tmp_path / "node"), "--heartbeat-seconds", "0.5", log=tmp_path / "node.log")
        plane = Server(tmp_path / "server", tmp_path / "cache")
        plane.post(JOBS, indexed_job("paused", 4, 4, 'echo "$IDX" >> /markers/runs; sleep 8', markers))
        poll(lambda: sum(runs(markers).values()) >= 4, 60, "the pods did not start on the node")
        srv.send_signal(signal.SIGSTOP)
        try:
            import time
            time.sleep(9)  # the wall time the server is frozen: 3x --node-heartbeat-timeout
        finally:
            srv.send_signal(signal.SIGCONT)
        try:
            poll(lambda: complete(plane.job("paused")), 60, "the Job did not complete after the pause")
        except AssertionError:
            state = [(p["metadata"]["name"], p["status"].get("phase"), p["status"].get("conditions"))
                     for p in plane.pods("paused")]
            raise AssertionError(f"not complete: job {plane.job('paused')['status']}, pods {state}, "
                                 f"node {plane.get('/api/v1/nodes/worker-1')['status']['conditions']}") from None
        exact(plane, "paused", 4, markers)
        assert not any(c["type"] == "DisruptionTarget" for p in plane.pods("paused")
                       for c in p["status"].get("conditions") or [])
    finally:
        if node is not None:
            stop(node)
        srv.send_signal(signal.SIGCONT)
        stop(srv)
