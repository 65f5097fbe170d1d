"""The real kubectl (``/usr/bin/kubectl``, the dispatcher picking 1.27-1.33 from ``/version``)
against joblet's API server over the in-process stack.

Each test runs kubectl commands with a kubeconfig written by :mod:`joblet.kubeconfig` and
checks what a user sees: exit codes and printed lines. Controllers do not run here, so Job
status is whatever the test writes through the API.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from test_api_http import RunningServer, running_server, write_log

from joblet.store.paging import MAX_SNAPSHOTS
from support.tls import write_test_kubeconfig

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")

JOB_YAML = """\
apiVersion: batch/v1
kind: Job
metadata:
  name: {name}
  labels: {{app: {name}}}
spec:
  backoffLimit: {backoff}
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: busybox
        env: [{{name: A, value: "{env}"}}]
        command: ["sh", "-c", "echo hi"]
"""


class Kubectl:
    def __init__(self, kubeconfig: Path, home: Path, server: RunningServer) -> None:
        self.kubeconfig = kubeconfig
        self.home = home
        self.server = server

    def __call__(self, *args: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        assert KUBECTL is not None
        result = subprocess.run(
            [KUBECTL, "--kubeconfig", str(self.kubeconfig), *args], input=stdin, capture_output=True, text=True,
            timeout=60, env={"HOME": str(self.home), "PATH": "/usr/bin:/bin"},
        )
        if check:
            assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}"
        return result

    def api(self) -> httpx.Client:
        return self.server.http()


def make_kubectl(tmp: Path, server: RunningServer) -> Kubectl:
    kubeconfig = write_test_kubeconfig(tmp / "kubeconfig", server.url, server.creds)
    return Kubectl(kubeconfig, tmp / "home", server)


@pytest.fixture(scope="module")
def kubectl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kubectl]:
    tmp = tmp_path_factory.mktemp("kubectl")
    with running_server(tmp) as server:
        yield make_kubectl(tmp, server)


def write_job(tmp_path: Path, name: str, backoff: int = 2, env: str = "1") -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(JOB_YAML.format(name=name, backoff=backoff, env=env))
    return str(path)


def test_version_and_api_resources(kubectl: Kubectl) -> None:
    version = orjson.loads(kubectl("version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"] == "v1.33.0-joblet"
    lines = kubectl("api-resources").stdout.splitlines()
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["jobs"][1:] == ["batch/v1", "true", "Job"]
    assert rows["cronjobs"][1:] == ["cj", "batch/v1", "true", "CronJob"]
    assert rows["pods"][1] == "po"


def test_apply_twice_then_immutable_template(kubectl: Kubectl, tmp_path: Path) -> None:
    assert kubectl("apply", "-f", write_job(tmp_path, "ap")).stdout.strip() == "job.batch/ap created"
    assert kubectl("apply", "-f", write_job(tmp_path, "ap", backoff=3)).stdout.strip() == "job.batch/ap configured"
    assert kubectl("get", "job", "ap", "-o", "jsonpath={.spec.backoffLimit}").stdout == "3"
    assert kubectl("apply", "-f", write_job(tmp_path, "ap", backoff=3)).stdout.strip() == "job.batch/ap unchanged"
    changed = kubectl("apply", "-f", write_job(tmp_path, "ap", backoff=3, env="2"), check=False)
    assert changed.returncode == 1
    assert changed.stderr.startswith('The Job "ap" is invalid: spec.template: Invalid value: ')
    assert changed.stderr.rstrip().endswith("field is immutable")


def test_server_side_apply(kubectl: Kubectl, tmp_path: Path) -> None:
    path = write_job(tmp_path, "ssa")
    assert kubectl("apply", "--server-side", "-f", path).stdout.strip() == "job.batch/ssa serverside-applied"
    assert kubectl("apply", "--server-side", "-f", path).stdout.strip() == "job.batch/ssa serverside-applied"


def test_create_and_already_exists(kubectl: Kubectl, tmp_path: Path) -> None:
    path = write_job(tmp_path, "cr")
    assert kubectl("create", "-f", path).stdout.strip() == "job.batch/cr created"
    again = kubectl("create", "-f", path, check=False)
    assert again.returncode == 1
    assert 'Error from server (AlreadyExists): error when creating' in again.stderr
    assert 'jobs.batch "cr" already exists' in again.stderr


def test_create_invalid_prints_causes(kubectl: Kubectl, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: batch/v1\nkind: Job\nmetadata: {name: bad}\nspec:\n  template:\n    spec:\n"
                   "      restartPolicy: Never\n      containers: []\n")
    result = kubectl("create", "-f", str(bad), check=False)
    assert result.returncode == 1
    assert 'The Job "bad" is invalid: ' in result.stderr
    assert "spec.template.spec.containers: Required value" in result.stderr


def test_unknown_field_is_rejected_by_strict_validation(kubectl: Kubectl, tmp_path: Path) -> None:
    path = tmp_path / "unknown.yaml"
    path.write_text(JOB_YAML.format(name="unk", backoff=1, env="1").replace("  backoffLimit", "  bogus: 1\n  backoffLimit"))
    result = kubectl("create", "-f", str(path), check=False)
    assert result.returncode == 1
    assert 'strict decoding error: unknown field "spec.bogus"' in result.stderr
    assert kubectl("create", "--validate=false", "-f", str(path)).stdout.strip() == "job.batch/unk created"


def test_get_tables_and_outputs(kubectl: Kubectl, tmp_path: Path) -> None:
    kubectl("create", "-f", write_job(tmp_path, "tb"))
    kubectl("create", "namespace", "team-b", "--validate=false", stdin=None, check=False)  # protobuf on ≥1.27
    with kubectl.api() as api:
        api.post("/api/v1/namespaces", json={"metadata": {"name": "team-b"}})
        api.post("/apis/batch/v1/namespaces/team-b/jobs", content=orjson.dumps(
            {"metadata": {"name": "tb-other", "labels": {"app": "tb"}}, "spec": {"template": {"spec": {
                "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}))
    table = kubectl("get", "jobs", "-l", "app=tb").stdout.splitlines()
    assert table[0].split() == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    assert table[1].split()[:3] == ["tb", "Running", "0/1"]
    wide = kubectl("get", "jobs", "tb", "-o", "wide").stdout.splitlines()
    assert wide[0].split()[-3:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
    everywhere = kubectl("get", "jobs", "-A", "-l", "app=tb").stdout.splitlines()
    assert everywhere[0].split()[0] == "NAMESPACE"
    assert sorted(line.split()[0] for line in everywhere[1:]) == ["default", "team-b"]
    as_json = orjson.loads(kubectl("get", "jobs", "-l", "app=tb", "-o", "json").stdout)
    assert as_json["kind"] == "List" and as_json["items"][0]["kind"] == "Job"
    assert "kind: Job" in kubectl("get", "job", "tb", "-o", "yaml").stdout
    assert kubectl("get", "jobs", "-l", "app=tb", "-o", "name").stdout.split() == ["job.batch/tb"]


def test_get_pods_by_label(kubectl: Kubectl) -> None:
    with kubectl.api() as api:
        for name in ("lp-1", "lp-2"):
            api.post("/api/v1/namespaces/default/pods", json={
                "metadata": {"name": name, "labels": {"job-name": "lp"}},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]}})
    out = kubectl("get", "po", "-l", "job-name=lp").stdout.splitlines()
    assert out[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert [line.split()[0] for line in out[1:]] == ["lp-1", "lp-2"]


@pytest.mark.parametrize(("args", "expected"), [
    (["-p", '{"spec":{"suspend":true}}'], True),
    (["--type=merge", "-p", '{"spec":{"suspend":true}}'], True),
    (["--type=json", "-p", '[{"op":"replace","path":"/spec/suspend","value":true}]'], True),
], ids=["strategic", "merge", "json"])
def test_patch(kubectl: Kubectl, tmp_path: Path, args: list[str], expected: bool) -> None:
    name = f"pt-{args[0].strip('-').split('=')[-1][:4]}"
    kubectl("create", "-f", write_job(tmp_path, name))
    assert kubectl("patch", "job", name, *args).stdout.strip() == f"job.batch/{name} patched"
    assert kubectl("get", "job", name, "-o", "jsonpath={.spec.suspend}").stdout == str(expected).lower()


@pytest.mark.parametrize(("cascade", "finalizer"), [
    ("background", None), ("foreground", "foregroundDeletion"), ("orphan", "orphan"),
], ids=["background", "foreground", "orphan"])
def test_delete_cascade(kubectl: Kubectl, tmp_path: Path, cascade: str, finalizer: str | None) -> None:
    name = f"del-{cascade}"
    kubectl("create", "-f", write_job(tmp_path, name))
    result = kubectl("delete", "job", name, f"--cascade={cascade}", "--wait=false")
    assert result.stdout.strip() == f'job.batch "{name}" deleted'
    remaining = kubectl("get", "job", name, "-o", "json", check=False)
    if finalizer is None:
        assert remaining.returncode == 1 and "NotFound" in remaining.stderr
    else:
        obj: dict[str, Any] = orjson.loads(remaining.stdout)
        assert finalizer in obj["metadata"]["finalizers"] and obj["metadata"]["deletionTimestamp"]


def test_delete_missing_prints_not_found(kubectl: Kubectl) -> None:
    result = kubectl("delete", "job", "nope", check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == 'Error from server (NotFound): jobs.batch "nope" not found'


def test_explain(kubectl: Kubectl) -> None:
    out = kubectl("explain", "job.spec.backoffLimit").stdout
    assert "FIELD: backoffLimit <integer>" in out
    assert "Specifies the number of retries before marking this job failed." in " ".join(out.split())


def test_wait_for_condition(kubectl: Kubectl, tmp_path: Path) -> None:
    kubectl("create", "-f", write_job(tmp_path, "wt"))
    assert KUBECTL is not None
    waiter = subprocess.Popen(
        [KUBECTL, "--kubeconfig", str(kubectl.kubeconfig), "wait", "--for=condition=complete", "job/wt",
         "--timeout=20s"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={"HOME": str(kubectl.home), "PATH": "/usr/bin:/bin"})
    with kubectl.api() as api:
        job = api.get("/apis/batch/v1/namespaces/default/jobs/wt").json()
        t = "2024-01-01T00:00:01Z"
        job["status"] = {"conditions": [
            {"type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": t, "lastProbeTime": t},
            {"type": "Complete", "status": "True", "lastTransitionTime": t, "lastProbeTime": t}],
            "succeeded": 1, "startTime": "2024-01-01T00:00:00Z", "completionTime": t}
        response = api.put("/apis/batch/v1/namespaces/default/jobs/wt/status", json=job)
        assert response.status_code == 200, response.text
    out, err = waiter.communicate(timeout=30)
    assert waiter.returncode == 0, err
    assert out.strip() == "job.batch/wt condition met"


def test_logs_of_pod(kubectl: Kubectl) -> None:
    with kubectl.api() as api:
        pod = api.post("/api/v1/namespaces/default/pods", json={
            "metadata": {"name": "lg"}, "spec": {"restartPolicy": "Never",
                                                 "containers": [{"name": "main", "image": "busybox"}]}}).json()
    write_log(kubectl.server.log_store, pod, ["hello", "world"])
    assert kubectl("logs", "lg").stdout == "hello\nworld\n"
    assert kubectl("logs", "lg", "--tail=1").stdout == "world\n"
    assert kubectl("logs", "-f", "lg").stdout == "hello\nworld\n"


def test_describe_pod_shows_its_events_only(kubectl: Kubectl) -> None:
    # describe lists Events with a field selector on involvedObject (name, namespace, uid); the
    # store tests the name before unpacking an Event. One Event here does not follow the
    # "<object>.<suffix>" naming, and the other pod's Events must not show.
    with kubectl.api() as api:
        pods = {name: api.post("/api/v1/namespaces/default/pods", json={
            "metadata": {"name": name}, "spec": {"restartPolicy": "Never",
                                                 "containers": [{"name": "main", "image": "busybox"}]}}).json()
                for name in ("ds-1", "ds-10")}
        for event_name, pod, reason in [("ds-1.a", "ds-1", "Pulled"), ("unrelated-name", "ds-1", "Started"),
                                        ("ds-10.b", "ds-10", "BackOff"), ("ds-1.c", "ds-10", "Killing")]:
            api.post("/api/v1/namespaces/default/events", json={
                "metadata": {"name": event_name}, "reason": reason, "message": f"{reason} {pod}", "type": "Normal",
                "involvedObject": {"kind": "Pod", "apiVersion": "v1", "name": pod, "namespace": "default",
                                   "uid": pods[pod]["metadata"]["uid"]}}).raise_for_status()
    events = kubectl("describe", "pod", "ds-1").stdout.split("Events:")[1]
    assert "Pulled" in events and "Started" in events
    assert "BackOff" not in events and "Killing" not in events


def test_get_reads_a_long_list_in_chunks(kubectl: Kubectl) -> None:
    # kubectl asks for --chunk-size objects at a time (500 by default) and follows metadata.continue.
    with kubectl.api() as api:
        api.post("/api/v1/namespaces", json={"metadata": {"name": "chunks"}}).raise_for_status()
        for i in range(7):
            api.post("/api/v1/namespaces/chunks/pods", json={
                "metadata": {"name": f"ck-{i}", "labels": {"app": "ck"}},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]}})
        first = api.get("/api/v1/namespaces/chunks/pods", params={"limit": "3"}).json()
        assert [p["metadata"]["name"] for p in first["items"]] == ["ck-0", "ck-1", "ck-2"]
        assert first["metadata"]["remainingItemCount"] == 4 and first["metadata"]["continue"]
        whole = api.get("/api/v1/namespaces/chunks/pods", params={"limit": "3", "resourceVersion": "0"}).json()
        assert len(whole["items"]) == 7 and "continue" not in whole["metadata"]  # as upstream's watch cache
    got = kubectl("get", "pods", "-n", "chunks", "-l", "app=ck", "--chunk-size=3", "-o", "name", "-v=6")
    assert got.stdout.split() == [f"pod/ck-{i}" for i in range(7)]
    assert got.stderr.count("continue=") == 2  # three requests
    table = kubectl("get", "pods", "-n", "chunks", "--chunk-size=2").stdout.splitlines()
    assert table[0].split()[0] == "NAME" and [line.split()[0] for line in table[1:]] == [f"ck-{i}" for i in range(7)]


def test_an_expired_continue_token_is_a_410_that_carries_a_token_to_go_on(kubectl: Kubectl) -> None:
    with kubectl.api() as api:
        api.post("/api/v1/namespaces", json={"metadata": {"name": "expiry"}}).raise_for_status()
        for i in range(3):
            api.post("/api/v1/namespaces/expiry/configmaps", json={"metadata": {"name": f"cm-{i}"}}).raise_for_status()
        url = "/api/v1/namespaces/expiry/configmaps"
        token = api.get(url, params={"limit": "1"}).json()["metadata"]["continue"]
        for _ in range(MAX_SNAPSHOTS):
            api.get(url, params={"limit": "1"})
        gone = api.get(url, params={"limit": "1", "continue": token})
        status = gone.json()
        assert gone.status_code == 410 and status["reason"] == "Expired" and "too old" in status["message"]
        rest = api.get(url, params={"limit": "5", "continue": status["metadata"]["continue"]}).json()
        assert [c["metadata"]["name"] for c in rest["items"]] == ["cm-1", "cm-2"]
        bad = api.get(url, params={"limit": "1", "continue": "garbage"})
        assert bad.status_code == 400 and "continue key is not valid" in bad.json()["message"]


def test_protobuf_imperative_create_is_explained(kubectl: Kubectl) -> None:
    result = kubectl("create", "configmap", "pb", "--from-literal=a=b", check=False)
    if result.returncode == 0:  # the server learned protobuf
        return
    assert "unknown format" in result.stderr and "apply -f" in result.stderr


@pytest.mark.parametrize("minor", ["27", "30"])
def test_older_kubectl_versions(tmp_path: Path, minor: str) -> None:
    with running_server(tmp_path, version_minor=minor) as server:
        kubectl = make_kubectl(tmp_path, server)
        assert f"v1.{minor}." in orjson.loads(kubectl("version", "-o", "json").stdout)["clientVersion"]["gitVersion"]
        assert kubectl("apply", "-f", write_job(tmp_path, "old")).stdout.strip() == "job.batch/old created"
        assert kubectl("get", "jobs").stdout.splitlines()[1].split()[0] == "old"
        assert kubectl("delete", "job", "old").stdout.strip() == 'job.batch "old" deleted'
