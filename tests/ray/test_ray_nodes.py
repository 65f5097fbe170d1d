"""Pods on a real Ray cluster (head + worker, both on this machine) through a real
``joblet server --ray-address`` and the real kubectl: Nodes mirror Ray's nodes, Jobs run
their pods as Ray tasks pinned to the node the scheduler chose, with env/volumes, live logs,
graceful deletion, podFailurePolicy, and the loss of a Ray node."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

from support.raycluster import RaySetup as RaySetupT
from support.raycluster import leftovers

pytestmark = [pytest.mark.ray, pytest.mark.timeout(600)]

Obj = dict[str, Any]
RAY_POD = {"tolerations": [{"key": "joblet.dev/engine", "operator": "Equal", "value": "ray",
                            "effect": "NoSchedule"}],
           "nodeSelector": {"joblet.dev/engine": "ray"}}


def until(check: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{SETUP[0].diagnostics() if SETUP else ''}")
        time.sleep(0.2)


SETUP: list[RaySetupT] = []


@pytest.fixture(autouse=True)
def _remember(ray_setup: RaySetupT) -> None:
    SETUP[:] = [ray_setup]


def get(setup: RaySetupT, *args: str) -> Obj:
    return dict(json.loads(setup.kubectl("get", *args, "-o", "json").stdout))


def apply(setup: RaySetupT, obj: Obj) -> None:
    setup.kubectl("apply", "-f", "-", stdin=json.dumps(obj))


def job(name: str, command: str, **spec: Any) -> Obj:
    pod_spec = spec.pop("pod", {})
    container = {"name": "main", "image": "busybox", "command": ["sh", "-c", command],
                 **spec.pop("container", {})}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"backoffLimit": 0, **spec, "template": {"spec": {
                "restartPolicy": "Never", **RAY_POD, **pod_spec, "containers": [container]}}}}


def job_condition(setup: RaySetupT, name: str) -> str | None:
    conds = (get(setup, "job", name).get("status") or {}).get("conditions") or []
    done = [c["type"] for c in conds if c["type"] in ("Complete", "Failed") and c["status"] == "True"]
    return done[0] if done else None


def pods_of(setup: RaySetupT, job_name: str) -> list[Obj]:
    return list(get(setup, "pods", "-l", f"batch.kubernetes.io/job-name={job_name}")["items"])


def node(setup: RaySetupT, ray_id: str) -> str:
    return f"ray-{ray_id[:12]}"


def test_every_ray_node_is_a_node_with_labels_capacity_and_taint(ray_setup: RaySetupT) -> None:
    for ray_id in (ray_setup.head_id, ray_setup.worker_id):
        n = until(lambda rid=ray_id: ray_setup.kubectl("get", "node", node(ray_setup, rid), "-o", "json",
                                                        check=False).stdout, what="Node")
        obj = json.loads(n)
        labels = obj["metadata"]["labels"]
        assert labels["joblet.dev/engine"] == "ray"
        assert labels["ray.io/node-id"] == ray_id
        assert labels["kubernetes.io/hostname"]
        assert obj["spec"]["taints"] == [{"key": "joblet.dev/engine", "value": "ray", "effect": "NoSchedule"}]
        capacity = obj["status"]["capacity"]
        assert capacity["cpu"] == "1"
        assert int(capacity["memory"]) > 0
        assert obj["status"]["allocatable"] == capacity
        assert ("ray.io/worker" in capacity) == (ray_id == ray_setup.worker_id)
        ready = next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")
        assert ready["status"] == "True"


def test_indexed_job_runs_across_both_ray_nodes(ray_setup: RaySetupT) -> None:
    # one CPU per pod, one CPU per Ray node: two pods at a time can only run on two nodes
    apply(ray_setup, job("indexed", "echo index=$JOB_COMPLETION_INDEX; sleep 1", completions=4, parallelism=2,
                         completionMode="Indexed",
                         container={"resources": {"requests": {"cpu": "1"}}}))
    until(lambda: job_condition(ray_setup, "indexed"), timeout=120, what="Job finished")
    assert job_condition(ray_setup, "indexed") == "Complete"
    pods = pods_of(ray_setup, "indexed")
    nodes = {p["spec"]["nodeName"] for p in pods}
    assert nodes == {node(ray_setup, ray_setup.head_id), node(ray_setup, ray_setup.worker_id)}
    for p in pods:
        index = p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
        out = ray_setup.kubectl("logs", p["metadata"]["name"]).stdout
        assert out == f"index={index}\n"


def test_secrets_and_configmaps_in_env_and_volumes(ray_setup: RaySetupT) -> None:
    apply(ray_setup, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
                      "stringData": {"password": "s3cret"}})
    apply(ray_setup, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"},
                      "data": {"mode": "fast", "file.txt": "from-configmap\n"}})
    command = ("echo env=$PASSWORD/$MODE; cat /etc/creds/password; echo; cat /etc/settings/file.txt; "
               "cat /scratch/init; echo scratch > /scratch/x; cat /scratch/x; pwd")
    apply(ray_setup, job("config", command, pod={
        "nodeSelector": {"ray.io/node-id": ray_setup.worker_id},
        # the init container's emptyDir writes are what the main container finds, on the Ray node
        "initContainers": [{"name": "init", "image": "busybox", "command": ["sh", "-c", "echo init > /scratch/init"],
                            "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]}],
        "volumes": [{"name": "creds", "secret": {"secretName": "creds"}},
                    {"name": "settings", "configMap": {"name": "settings"}},
                    {"name": "scratch", "emptyDir": {}}]},
        container={"workingDir": "/etc/settings",
                   "env": [{"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
                           {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "mode"}}}],
                   "volumeMounts": [{"name": "creds", "mountPath": "/etc/creds", "readOnly": True},
                                    {"name": "settings", "mountPath": "/etc/settings"},
                                    {"name": "scratch", "mountPath": "/scratch"}]}))
    until(lambda: job_condition(ray_setup, "config"), timeout=90, what="Job finished")
    (pod,) = pods_of(ray_setup, "config")
    out = ray_setup.kubectl("logs", pod["metadata"]["name"]).stdout
    assert job_condition(ray_setup, "config") == "Complete", out
    assert pod["spec"]["nodeName"] == node(ray_setup, ray_setup.worker_id)
    assert out == "env=s3cret/fast\ns3cret\nfrom-configmap\ninit\nscratch\n/etc/settings\n"


def test_logs_follow_a_running_ray_pod(ray_setup: RaySetupT) -> None:
    apply(ray_setup, job("chatty", "for i in 1 2 3 4 5 6 7 8; do echo line $i; sleep 0.5; done"))
    pod = until(lambda: [p for p in pods_of(ray_setup, "chatty") if p["status"].get("phase") == "Running"],
                timeout=60, what="pod Running")[0]
    follow = subprocess.Popen(["kubectl", "--kubeconfig", str(ray_setup.kubeconfig), "logs", "-f",
                               pod["metadata"]["name"]], stdout=subprocess.PIPE, text=True,
                              env={"HOME": str(ray_setup.home), "PATH": "/usr/bin:/bin"})
    try:
        assert follow.stdout is not None
        first = follow.stdout.readline()
        # the first line arrived while the pod still runs on Ray
        assert first == "line 1\n"
        assert get(ray_setup, "pod", pod["metadata"]["name"])["status"]["phase"] == "Running"
        rest = follow.stdout.read()
        assert follow.wait(timeout=60) == 0
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.wait()
    assert first + rest == "".join(f"line {i}\n" for i in range(1, 9))
    until(lambda: job_condition(ray_setup, "chatty"), what="Job finished")
    # the logs outlive the pod's run
    assert ray_setup.kubectl("logs", pod["metadata"]["name"]).stdout.endswith("line 8\n")


def KUBECTL_READY(setup: RaySetupT) -> bool:
    return setup.kubeconfig.exists()


def bare_pod(name: str, command: str, host_dir: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {
        "restartPolicy": "Never", **RAY_POD,
        "volumes": [{"name": "out", "hostPath": {"path": host_dir}}],
        "containers": [{"name": "main", "image": "busybox", "command": ["sh", "-c", command],
                        "volumeMounts": [{"name": "out", "mountPath": "/out"}]}]}}


def test_deletion_sends_sigterm_then_sigkill_after_the_grace_period(ray_setup: RaySetupT, tmp_path: Any) -> None:
    host = tmp_path / "out"
    host.mkdir()
    host.chmod(0o777)
    polite = "trap 'echo TERM > /out/polite; exit 3' TERM; echo up > /out/polite-up; while true; do sleep 0.1; done"
    stubborn = "trap 'echo TERM > /out/stubborn' TERM; echo up > /out/stubborn-up; while true; do sleep 0.1; done"
    apply(ray_setup, bare_pod("polite", polite, str(host)))
    apply(ray_setup, bare_pod("stubborn", stubborn, str(host)))
    until(lambda: (host / "polite-up").exists() and (host / "stubborn-up").exists(), what="pods up")
    started = time.monotonic()
    ray_setup.kubectl("delete", "pod", "polite", "--grace-period=30", "--wait=true", timeout=60)
    polite_took = time.monotonic() - started
    assert (host / "polite").read_text() == "TERM\n"
    assert polite_took < 20  # ended on SIGTERM, long before the 30 s grace period
    started = time.monotonic()
    ray_setup.kubectl("delete", "pod", "stubborn", "--grace-period=3", "--wait=true", timeout=60)
    stubborn_took = time.monotonic() - started
    assert (host / "stubborn").read_text() == "TERM\n"  # got SIGTERM, ignored it
    assert stubborn_took >= 3  # and was SIGKILLed only after the grace period


def test_pod_failure_policy_on_exit_codes(ray_setup: RaySetupT) -> None:
    apply(ray_setup, job("exit42", "echo failing; exit 42", backoffLimit=6, podFailurePolicy={"rules": [
        {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}}]}))
    until(lambda: job_condition(ray_setup, "exit42"), timeout=90, what="Job finished")
    status = get(ray_setup, "job", "exit42")["status"]
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "PodFailurePolicy"
    assert status.get("failed") == 1  # one pod, not retried
    (pod,) = pods_of(ray_setup, "exit42")
    term = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (term["exitCode"], term["reason"]) == (42, "Error")


def test_losing_a_ray_node_fails_its_pod_with_disruption_target_and_the_job_completes(
        ray_setup: RaySetupT) -> None:
    # a third Ray node with the most free CPU: the scheduler puts the first pod there
    doomed = ray_setup.cluster.add_worker("doomed", {"doomed": 1}, num_cpus=2)
    doomed_node = node(ray_setup, doomed)
    until(lambda: ray_setup.kubectl("get", "node", doomed_node, check=False).returncode == 0, what="doomed Node")
    command = f'if [ "$NODE" = {doomed_node} ]; then sleep 611; fi; echo done on $NODE'
    apply(ray_setup, job("survivor", command, podFailurePolicy={"rules": [
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]},
        container={"resources": {"requests": {"cpu": "1"}},
                   "env": [{"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]}))
    first = until(lambda: [p for p in pods_of(ray_setup, "survivor") if p["status"].get("phase") == "Running"],
                  timeout=90, what="pod Running")[0]
    assert first["spec"]["nodeName"] == doomed_node
    ray_setup.cluster.stop("doomed")
    until(lambda: job_condition(ray_setup, "survivor"), timeout=150, what="Job finished")
    status = get(ray_setup, "job", "survivor")["status"]
    assert job_condition(ray_setup, "survivor") == "Complete"
    # backoffLimit 0: without DisruptionTarget on the lost pod the Job would have failed; with it
    # the Ignore rule applies and the failure is not counted (the pod itself is then garbage
    # collected with its Node, so the condition is checked through its effect)
    assert status.get("failed", 0) == 0
    winner = next(p for p in pods_of(ray_setup, "survivor") if p["status"].get("phase") == "Succeeded")
    assert winner["spec"]["nodeName"] in (node(ray_setup, ray_setup.head_id), node(ray_setup, ray_setup.worker_id))
    assert ray_setup.kubectl("logs", winner["metadata"]["name"]).stdout == f"done on {winner['spec']['nodeName']}\n"
    until(lambda: ray_setup.kubectl("get", "node", doomed_node, check=False).returncode != 0, what="Node removed")
    assert not leftovers("sleep 611")


def test_split_mode_joblet_node_with_ray_address(ray_setup: RaySetupT, tmp_path: Any) -> None:
    """``joblet server --components api,controllers`` + ``joblet node --ray-address``: the Ray
    nodes register with the remote server and run its Job."""

    from support.process import wait_until_serving
    from support.raycluster import free_port

    procs: list[subprocess.Popen[bytes]] = []
    log = open(tmp_path / "split.log", "ab")  # noqa: SIM115 - closed below
    try:
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "joblet", "server", "--data-dir", str(tmp_path / "server"), "--port",
             str(free_port()), "--components", "api,controllers"], stdout=log, stderr=subprocess.STDOUT))
        kubeconfig = tmp_path / "server" / "kubeconfig"
        wait_until_serving(procs[0], kubeconfig, log=tmp_path / "split.log")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "joblet", "node", "--kubeconfig", str(kubeconfig), "--data-dir",
             str(tmp_path / "node"), "--ray-address", ray_setup.cluster.address], stdout=log,
            stderr=subprocess.STDOUT))

        def kubectl(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
            return subprocess.run(["kubectl", "--kubeconfig", str(kubeconfig), *args], input=stdin,
                                  capture_output=True, text=True, timeout=60,
                                  env={"HOME": str(ray_setup.home), "PATH": "/usr/bin:/bin"})

        head = node(ray_setup, ray_setup.head_id)
        until(lambda: kubectl("get", "node", head).returncode == 0, timeout=90, what="Ray Node on the split server")
        assert kubectl("apply", "-f", "-", stdin=json.dumps(job("split", "echo split"))).returncode == 0

        def complete() -> bool:
            out = kubectl("get", "job", "split", "-o", "json")
            conds = (json.loads(out.stdout).get("status") or {}).get("conditions") or [] if out.returncode == 0 else []
            return any(c["type"] == "Complete" and c["status"] == "True" for c in conds)

        until(complete, timeout=90, what="split Job Complete")
        pods = json.loads(kubectl("get", "pods", "-l", "batch.kubernetes.io/job-name=split", "-o", "json").stdout)
        assert pods["items"][0]["spec"]["nodeName"].startswith("ray-")
    finally:
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


def test_a_server_killed_mid_job_re_adopts_its_running_ray_pods(ray_setup: RaySetupT, tmp_path: Any) -> None:
    """``kill -9`` of the server while an Indexed Job's pods run on Ray: their containers keep
    running under the Ray nodes' supervisors; the restarted server re-adopts them, their logs
    continue where they stopped, and the Job completes with each index run once, nothing failed."""
    from support.process import wait_until_serving
    from support.raycluster import free_port

    data = tmp_path / "server"
    args = [sys.executable, "-m", "joblet", "server", "--data-dir", str(data), "--port", str(free_port()),
            "--ray-address", ray_setup.cluster.address, "--ray-only", "--pod-failure-backoff", "0.5"]
    log = open(tmp_path / "restart.log", "ab")  # noqa: SIM115 - closed below
    procs: list[subprocess.Popen[bytes]] = []
    kubeconfig = data / "kubeconfig"

    def kubectl(*a: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["kubectl", "--kubeconfig", str(kubeconfig), *a], input=None, capture_output=True,
                              text=True, timeout=60, env={"HOME": str(ray_setup.home), "PATH": "/usr/bin:/bin"})

    def pods() -> list[Obj]:
        out = kubectl("get", "pods", "-l", "batch.kubernetes.io/job-name=readopt", "-o", "json")
        return list(json.loads(out.stdout)["items"]) if out.returncode == 0 else []

    def logs(pod: Obj) -> str:
        return kubectl("logs", pod["metadata"]["name"]).stdout

    lines = 16
    try:
        procs.append(subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT))
        wait_until_serving(procs[-1], kubeconfig, timeout=90, log=tmp_path / "restart.log")
        command = f'for i in $(seq 1 {lines}); do echo "$JOB_COMPLETION_INDEX line $i"; sleep 0.5; done'
        manifest = job("readopt", command, completions=3, parallelism=3, completionMode="Indexed",
                       pod={"tolerations": []})
        (data / "job.json").write_text(json.dumps(manifest))
        assert kubectl("apply", "-f", str(data / "job.json")).returncode == 0
        until(lambda: len(pods()) == 3 and all(" line 2\n" in logs(p) for p in pods()), timeout=120,
              what="every pod running and logging")
        procs[-1].kill()  # kill -9, mid-run
        procs[-1].wait()
        procs.append(subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT))
        wait_until_serving(procs[-1], kubeconfig, timeout=90, log=tmp_path / "restart.log")

        def finished() -> str | None:
            out = kubectl("get", "job", "readopt", "-o", "json")
            conds = (json.loads(out.stdout).get("status") or {}).get("conditions") or [] if out.returncode == 0 else []
            done = [c["type"] for c in conds if c["status"] == "True" and c["type"] in ("Complete", "Failed")]
            return done[0] if done else None

        assert until(finished, timeout=180, what="Job finished") == "Complete", \
            (tmp_path / "restart.log").read_text()[-4000:]
        status = json.loads(kubectl("get", "job", "readopt", "-o", "json").stdout)["status"]
        assert (status.get("succeeded"), status.get("failed", 0)) == (3, 0)
        finished_pods = pods()
        indexes = sorted(p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
                         for p in finished_pods)
        assert indexes == ["0", "1", "2"]  # each index ran once: no replacement pod
        for p in finished_pods:
            assert p["status"]["phase"] == "Succeeded"
            index = p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
            assert logs(p) == "".join(f"{index} line {i}\n" for i in range(1, lines + 1))  # continuous
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(30)
        log.close()
