"""Real kubectl imperative creates, which send ``application/vnd.kubernetes.protobuf``, against a
real ``joblet server`` process.

Measured here: kubectl 1.32 and 1.33 send protobuf for ``create secret|configmap|serviceaccount|
namespace|job|cronjob`` and ``create job --from=cronjob/x``; 1.27-1.31 send JSON for the same
verbs. ``/usr/bin/kubectl`` (the dispatcher) runs 1.33 against joblet's ``/version``; 1.32 and 1.27
are run directly. The strongest check decodes the exact bytes kubectl sent (its ``-v=9`` hex
dump) and compares them with the JSON the same command prints under ``--dry-run=client -o json``.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from joblet.api.protobuf import decode_protobuf_object
from support.process import joblet_server

DISPATCHER = Path("/usr/bin/kubectl")
SDK_BIN = Path("/usr/lib/google-cloud-sdk/bin")
pytestmark = pytest.mark.skipif(not DISPATCHER.exists(), reason="kubectl is not installed")


@dataclass
class Server:
    url: str
    kubeconfig: Path
    home: Path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("kubectl-protobuf")
    with joblet_server(tmp / "data", log=tmp / "server.log") as server:
        yield Server(server.url, server.kubeconfig, tmp / "home")


def run(server: Server, *args: str, binary: Path = DISPATCHER, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(binary), "--kubeconfig", str(server.kubeconfig), *args], capture_output=True,
                            text=True, timeout=60, env={"HOME": str(server.home), "PATH": "/usr/bin:/bin"})
    if check:
        assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr[-2000:]}"
    return result


def get_json(server: Server, *args: str) -> dict[str, Any]:
    value: dict[str, Any] = orjson.loads(run(server, "get", *args, "-o", "json").stdout)
    return value


def wait_complete(server: Server, name: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = get_json(server, "job", name)
        if any(c["type"] == "Complete" and c["status"] == "True" for c in job.get("status", {}).get("conditions", [])):
            return job
        assert time.monotonic() < deadline, f"job {name} did not complete: {job.get('status')}"
        time.sleep(0.1)


def request_bodies(stderr: str) -> list[bytes]:
    """The request bodies kubectl ``-v=9`` logged as hex dumps (binary bodies only)."""
    bodies: list[bytes] = []
    current: bytearray | None = None
    for line in stderr.splitlines():
        if '"Request Body" body=<' in line:
            current = bytearray()
            continue
        if current is None:
            continue
        if line.strip() == ">":
            bodies.append(bytes(current))
            current = None
            continue
        for token in line.split()[1:]:
            if token.startswith("|"):
                break
            current.append(int(token, 16))
    return bodies


def client_version(server: Server, binary: Path) -> str:
    out = orjson.loads(run(server, "version", "-o", "json", binary=binary).stdout)
    return str(out["clientVersion"]["gitVersion"])


def test_dispatcher_imperative_creates_work(server: Server) -> None:
    assert client_version(server, DISPATCHER).startswith("v1.33.")
    created = [
        (["create", "secret", "generic", "s1", "--from-literal=a=b"], "secret/s1 created"),
        (["create", "configmap", "c1", "--from-literal=x=y"], "configmap/c1 created"),
        (["create", "serviceaccount", "sa1"], "serviceaccount/sa1 created"),
        (["create", "namespace", "n1"], "namespace/n1 created"),
        (["create", "job", "j1", "--image=busybox", "--", "sh", "-c", "echo hi"], "job.batch/j1 created"),
        (["create", "cronjob", "cj1", "--image=busybox", "--schedule=*/5 * * * *", "--", "true"],
         "cronjob.batch/cj1 created"),
        (["create", "job", "manual", "--from=cronjob/cj1"], "job.batch/manual created"),
    ]
    for args, printed in created:
        assert run(server, *args).stdout.strip() == printed

    assert get_json(server, "secret", "s1")["data"] == {"a": "Yg=="}
    assert get_json(server, "configmap", "c1")["data"] == {"x": "y"}
    assert get_json(server, "serviceaccount", "sa1")["metadata"]["name"] == "sa1"
    assert get_json(server, "namespace", "n1")["status"]["phase"] == "Active"

    j1 = wait_complete(server, "j1")
    (main,) = j1["spec"]["template"]["spec"]["containers"]
    assert (main["name"], main["image"], main["command"]) == ("j1", "busybox", ["sh", "-c", "echo hi"])
    assert j1["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert run(server, "logs", "job/j1").stdout == "hi\n"

    cj1 = get_json(server, "cronjob", "cj1")
    assert cj1["spec"]["schedule"] == "*/5 * * * *"
    assert cj1["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"] == ["true"]

    manual = wait_complete(server, "manual")
    assert manual["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    (owner,) = manual["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "CronJob", "cj1", cj1["metadata"]["uid"], True)


BODY_CASES = [
    ("secret", ["create", "secret", "generic", "{n}", "--from-literal=a=b", "--from-literal=empty=",
                "--type=example.com/t"]),
    ("configmap", ["create", "configmap", "{n}", "--from-literal=x=y", "--from-literal=z=1"]),
    ("serviceaccount", ["create", "serviceaccount", "{n}"]),
    ("namespace", ["create", "namespace", "{n}"]),
    ("job-image", ["create", "job", "{n}", "--image=busybox", "--", "sh", "-c", "echo hi"]),
    ("cronjob", ["create", "cronjob", "{n}", "--image=busybox", "--schedule=0 3 * * *", "--restart=Never",
                 "--", "date"]),
    ("job-from-cronjob", ["create", "job", "{n}", "--from=cronjob/source"]),
]


@pytest.fixture(scope="module")
def source_cronjob(server: Server) -> None:
    run(server, "create", "cronjob", "source", "--image=busybox", "--schedule=*/5 * * * *", "--", "true",
        "--validate=false")


@pytest.mark.parametrize(("binary_name", "args"), [
    (binary, args) for _, args in BODY_CASES for binary in ("kubectl.1.33", "kubectl.1.32")
], ids=[f"{case}-{binary[-4:]}" for case, _ in BODY_CASES for binary in ("kubectl.1.33", "kubectl.1.32")])
def test_decoded_body_equals_kubectl_json(server: Server, source_cronjob: None, binary_name: str,
                                          args: list[str]) -> None:
    binary = SDK_BIN / binary_name
    if not binary.exists():
        pytest.skip(f"{binary} is not installed")
    name = f"b{binary_name[-2:]}-{args[1][:6]}-{len(args)}"
    concrete = [a.replace("{n}", name) for a in args]
    split = concrete.index("--") if "--" in concrete else len(concrete)
    flags, command = concrete[:split], concrete[split:]
    expected = orjson.loads(run(server, *flags, "--dry-run=client", "-o", "json", *command, binary=binary).stdout)
    result = run(server, *flags, "-v=9", *command, binary=binary)
    assert "Content-Type: application/vnd.kubernetes.protobuf" in result.stderr
    (body,) = request_bodies(result.stderr)
    assert decode_protobuf_object(body) == expected


def test_kubectl_1_27_still_sends_json_and_works(server: Server) -> None:
    binary = SDK_BIN / "kubectl.1.27"
    if not binary.exists():
        pytest.skip(f"{binary} is not installed")
    assert client_version(server, binary).startswith("v1.27.")
    result = run(server, "create", "secret", "generic", "s27", "--from-literal=k=v", "-v=8", binary=binary)
    assert "Content-Type: application/json" in result.stderr
    run(server, "create", "job", "j27", "--image=busybox", "--", "true", binary=binary)
    assert get_json(server, "secret", "s27")["data"] == {"k": "dg=="}
    wait_complete(server, "j27")
