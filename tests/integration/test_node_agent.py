"""The node agent end to end: registry + LocalClient + real processes through the process runtime."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from joblet.client.interface import Event, ObjectList
from joblet.clock import RealClock, rfc3339
from joblet.errors import AlreadyExists, Conflict, NotFound
from joblet.node.agent import NodeAgent
from joblet.node.logs import LogStore
from joblet.node.runtimes.process import ProcessRuntime
from joblet.objects import find_condition

try:  # the real in-process stack, once the registry is importable
    from joblet.api.registry import Registry
    from joblet.client.local import LocalClient
    from joblet.store.memory import MemoryStore

    REAL_STACK = True
except ImportError:  # pragma: no cover - while the registry is being written
    REAL_STACK = False

Obj = dict[str, Any]


def pod(name: str, script: str, policy: str = "Never", **spec: Any) -> Obj:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default",
                     "labels": {"batch.kubernetes.io/job-completion-index": "4"}},
        "spec": {
            "nodeName": "n1", "restartPolicy": policy, "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": "main", "image": "busybox", "command": ["sh", "-c", script],
                "env": [
                    {"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
                        "fieldPath": "metadata.labels['batch.kubernetes.io/job-completion-index']"}}},
                    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "GREETING", "value": "hi-$(POD_NAME)"},
                ],
            }],
            **spec,
        },
    }


class TinyClient:
    """The few Client methods the agent uses, over a dict (used until the registry imports)."""

    def __init__(self, clock: RealClock) -> None:
        self.clock = clock
        self.objects: dict[tuple[str, str, str], Obj] = {}
        self.rv = 0
        self.changed = asyncio.Condition()
        self.events: list[tuple[int, Event]] = []

    async def _emit(self, kind: str, obj: Obj) -> None:
        self.events.append((self.rv, Event(kind, obj)))
        async with self.changed:
            self.changed.notify_all()

    async def get(self, resource: str, name: str, namespace: str = "") -> Obj:
        try:
            return self.objects[(resource, namespace, name)]
        except KeyError:
            raise NotFound(f'{resource} "{name}" not found') from None

    async def list(self, resource: str, namespace: str | None = None, label_selector: str | None = None,
                   field_selector: str | None = None) -> ObjectList:
        return ObjectList([o for (r, _, _), o in self.objects.items() if r == resource], str(self.rv))

    async def create(self, resource: str, obj: Obj, namespace: str | None = None, dry_run: bool = False) -> Obj:
        md = obj["metadata"]
        key = (resource, md.get("namespace", ""), md["name"])
        if key in self.objects:
            raise AlreadyExists(f'{resource} "{md["name"]}" already exists')
        self.rv += 1
        new = {**obj, "metadata": {**md, "uid": f"uid-{md['name']}-{self.rv}",
                                   "resourceVersion": str(self.rv)}}
        self.objects[key] = new
        await self._emit("ADDED", new)
        return new

    async def update(self, resource: str, obj: Obj, subresource: str | None = None) -> Obj:
        md = obj["metadata"]
        key = (resource, md.get("namespace", ""), md["name"])
        old = await self.get(resource, md["name"], md.get("namespace", ""))
        if md.get("resourceVersion") not in (None, old["metadata"]["resourceVersion"]):
            raise Conflict("the object has been modified")
        self.rv += 1
        new = {**old, "status": obj.get("status")} if subresource == "status" else {**obj, "status": old.get("status")}
        new["metadata"] = {**old["metadata"], "resourceVersion": str(self.rv)}
        self.objects[key] = new
        await self._emit("MODIFIED", new)
        return new

    async def delete(self, resource: str, name: str, namespace: str = "", propagation_policy: Any = None,
                     grace_period_seconds: int | None = None, preconditions: Any = None) -> Obj:
        obj = await self.get(resource, name, namespace)
        self.rv += 1
        if grace_period_seconds == 0:
            del self.objects[(resource, namespace, name)]
            await self._emit("DELETED", obj)
            return obj
        new = {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(self.rv),
                                   "deletionTimestamp": rfc3339(self.clock.now()),
                                   "deletionGracePeriodSeconds": grace_period_seconds or 30}}
        self.objects[(resource, namespace, name)] = new
        await self._emit("MODIFIED", new)
        return new

    async def watch(self, resource: str, namespace: str | None = None, resource_version: str | None = None,
                    label_selector: str | None = None, field_selector: str | None = None,
                    timeout_seconds: float | None = None) -> Any:
        seen = int(resource_version or self.rv)
        while True:
            batch = [e for rv, e in self.events if rv > seen]
            if batch:
                seen = self.events[-1][0]
                yield batch
                continue
            async with self.changed:
                await self.changed.wait()


class Env:
    def __init__(self, tmp_path: Path) -> None:
        self.clock = RealClock()
        self.logs = LogStore(tmp_path, self.clock)
        self.client: Any
        if REAL_STACK:
            self.client = LocalClient(Registry(MemoryStore(), self.clock), self.logs)
        else:
            self.client = TinyClient(self.clock)
        self.data = tmp_path
        # pods cannot see the data dir: files they share with the test live beside it
        self.scratch = tmp_path.parent / f"{tmp_path.name}.scratch"
        self.scratch.mkdir(exist_ok=True)
        self.agent = self.new_agent()

    async def setup(self) -> None:
        if REAL_STACK:
            await self.client.create("namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                    "metadata": {"name": "default"}})
            # what the serviceaccounts controller does in a full control plane
            await self.client.create("serviceaccounts", {"metadata": {"name": "default", "namespace": "default"}})

    def new_agent(self, api_url: str | None = None, api_ca_file: Path | None = None) -> NodeAgent:
        runtime = ProcessRuntime(self.data, self.clock, cache_dir=self.data.parent / "shim-cache")
        return NodeAgent(self.client, "n1", self.data, self.clock, runtime, crash_loop_backoff=0.2,
                         crash_loop_backoff_max=0.4, logs=self.logs, api_url=api_url, api_ca_file=api_ca_file)

    async def serve_http(self) -> str:
        """Serve the API over real HTTPS (the data dir's CA, the control plane's authn/authz) in
        this loop; restart the agent knowing its URL and CA."""
        import socket

        import uvicorn

        from joblet.api.server import create_app
        from joblet.auth.bootstrap import ensure_default_policy
        from joblet.config import ControlPlaneConfig
        from joblet.controlplane import build_authenticator, build_authorizer
        from support.tls import make_credentials

        creds = make_credentials(self.data)
        ensure_default_policy(self.client.registry)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        url = f"https://127.0.0.1:{sock.getsockname()[1]}"
        app = create_app(self.client, authenticator=build_authenticator(ControlPlaneConfig(data_dir=self.data), self.clock),
                         authorizer=build_authorizer(self.client), log_store=self.logs, clock=self.clock)
        server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False,
                                               timeout_graceful_shutdown=1, ssl_certfile=creds.cert_file,
                                               ssl_keyfile=creds.key_file))
        self.http_task = asyncio.create_task(server.serve(sockets=[sock]))
        self.http_server = server
        while not server.started:
            await asyncio.sleep(0.01)
        await self.agent.stop()
        self.agent = self.new_agent(api_url=url, api_ca_file=Path(creds.ca_file))
        await self.agent.start()
        return url

    async def stop_http(self) -> None:
        if getattr(self, "http_server", None) is not None:
            self.http_server.should_exit = True
            await self.http_task

    async def events(self, name: str) -> list[tuple[str, str, str]]:
        items = (await self.client.list("events", "default")).items
        return [(e["type"], e["reason"], e["message"]) for e in items
                if e["involvedObject"]["name"] == name]

    async def until(self, name: str, check: Callable[[Obj], bool], timeout: float = 15) -> Obj:
        end = time.monotonic() + timeout
        while True:
            try:
                obj: Obj = await self.client.get("pods", name, "default")
                if check(obj):
                    return obj
            except NotFound:
                pass
            if time.monotonic() > end:
                raise AssertionError(f"pod {name} never satisfied the check")
            await asyncio.sleep(0.02)

    async def until_log(self, name: str, text: bytes, timeout: float = 15) -> None:
        end = time.monotonic() + timeout
        while True:
            with contextlib.suppress(NotFound):
                if text in b"".join([c async for c in self.logs.read("default", name)]):
                    return
            if time.monotonic() > end:
                raise AssertionError(f"pod {name} never logged {text!r}")
            await asyncio.sleep(0.02)

    async def gone(self, name: str, timeout: float = 15) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                await self.client.get("pods", name, "default")
            except NotFound:
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"pod {name} was not deleted")


def phase(p: str) -> Callable[[Obj], bool]:
    return lambda o: (o.get("status") or {}).get("phase") == p


def scenario(fn: Callable[[Env], Awaitable[None]]) -> Callable[[Path], None]:
    def test(tmp_path: Path) -> None:
        async def go() -> None:
            env = Env(tmp_path)
            await env.setup()
            await env.agent.start()
            try:
                await fn(env)
            finally:
                await env.agent.stop()
                await env.stop_http()
                for uid in env.agent.runtime.pods():
                    await env.agent.runtime.remove_pod(uid)
        asyncio.run(asyncio.wait_for(go(), 40))
    test.__name__ = fn.__name__
    return test


@scenario
async def test_registers_node(env: Env) -> None:
    node = await env.client.get("nodes", "n1")
    assert node["metadata"]["labels"]["kubernetes.io/hostname"] == "n1"
    assert node["status"]["capacity"]["pods"] == "1000"
    assert node["status"]["capacity"]["cpu"] == str(os.cpu_count())
    assert find_condition(node, "Ready")["status"] == "True"  # type: ignore[index]


@scenario
async def test_pod_succeeds_with_env_and_logs(env: Env) -> None:
    await env.client.create("pods", pod("ok", 'echo "$JOB_COMPLETION_INDEX $GREETING $HOSTNAME"'))
    done = await env.until("ok", phase("Succeeded"))
    cs = done["status"]["containerStatuses"][0]
    assert cs["state"]["terminated"]["exitCode"] == 0
    assert cs["state"]["terminated"]["reason"] == "Completed"
    assert find_condition(done, "Ready")["status"] == "False"  # type: ignore[index]
    assert done["status"]["podIP"] == "127.0.0.1"
    chunks = [c async for c in env.logs.read("default", "ok")]
    assert b"".join(chunks) == b"4 hi-ok ok\n"


@scenario
async def test_failed_pod_with_never(env: Env) -> None:
    await env.client.create("pods", pod("bad", "exit 3"))
    done = await env.until("bad", phase("Failed"))
    term = done["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (term["exitCode"], term["reason"]) == (3, "Error")


@scenario
async def test_on_failure_restarts_in_place(env: Env) -> None:
    marker = env.scratch / "count"
    script = f'echo x >> {marker}; [ $(wc -l < {marker}) -ge 3 ]'
    await env.client.create("pods", pod("retry", script, policy="OnFailure"))
    done = await env.until("retry", phase("Succeeded"))
    cs = done["status"]["containerStatuses"][0]
    assert cs["restartCount"] == 2
    assert cs["lastState"]["terminated"]["exitCode"] == 1
    assert env.logs.attempts("default", "retry", "main") == [0, 1, 2]
    if REAL_STACK:
        await env.agent.recorder.flush()  # type: ignore[attr-defined]
        reasons = [reason for _, reason, _ in await env.events("retry")]
        assert reasons.count("Started") == 1 and reasons.count("BackOff") == 1  # repeats are counted, not new


@scenario
async def test_init_containers_run_first(env: Env) -> None:
    p = pod("init", "cat $HOME/../x 2>/dev/null; echo main")
    p["spec"]["initContainers"] = [{"name": "setup", "image": "busybox", "command": ["sh", "-c", "echo init"]}]
    await env.client.create("pods", p)
    done = await env.until("init", phase("Succeeded"))
    assert done["status"]["initContainerStatuses"][0]["state"]["terminated"]["exitCode"] == 0
    assert find_condition(done, "Initialized")["status"] == "True"  # type: ignore[index]


@scenario
async def test_active_deadline(env: Env) -> None:
    await env.client.create("pods", pod("slow", "sleep 30", activeDeadlineSeconds=1))
    done = await env.until("slow", phase("Failed"))
    assert done["status"]["reason"] == "DeadlineExceeded"
    assert done["status"]["message"] == "Pod was active on the node longer than the specified deadline"


@scenario
async def test_graceful_deletion_kills_and_removes(env: Env) -> None:
    await env.client.create("pods", pod("victim", "trap '' TERM; echo up; sleep 30"))
    await env.until("victim", phase("Running"))
    await env.until_log("victim", b"up\n")  # the TERM trap is set: SIGTERM alone cannot stop it
    await env.client.delete("pods", "victim", "default", grace_period_seconds=1)
    await env.gone("victim")
    # logs outlive the pod
    assert b"".join([c async for c in env.logs.read("default", "victim")]) == b"up\n"
    if REAL_STACK:
        await env.agent.recorder.flush()  # type: ignore[attr-defined]
        assert ("Normal", "Killing", "Stopping container main") in await env.events("victim")


@scenario
async def test_restarted_agent_adopts_and_never_reruns(env: Env) -> None:
    marker = env.scratch / "runs"
    await env.client.create("pods", pod("long", f"echo run >> {marker}; sleep 1; exit 4"))
    await env.until("long", phase("Running"))
    await env.agent.stop()  # "kill -9": the shim keeps running
    env.agent = env.new_agent()
    await env.agent.start()
    done = await env.until("long", phase("Failed"))
    assert done["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 4
    assert marker.read_text() == "run\n"
    await env.agent.stop()
    env.agent = env.new_agent()
    await env.agent.start()
    await asyncio.sleep(0)  # a third agent sees a finished pod and leaves it alone
    await env.until("long", phase("Failed"))
    assert marker.read_text() == "run\n"


# -- pods like Kubernetes pods: config, volumes, limits, containers ------------------------------------

CGROUPS = __import__("joblet.node.cgroups", fromlist=["detect"]).detect()
needs_real_stack = pytest.mark.skipif(not REAL_STACK, reason="the registry is not importable")
needs_cgroups = pytest.mark.skipif(not CGROUPS.available, reason="cgroup v1 hierarchies not writable here")
needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap (bwrap) is not installed")


def secret(name: str, **data: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "default"},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


def config_map(name: str, **data: str) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"},
            "data": data}


def terminated(p: Obj, index: int = 0, key: str = "containerStatuses") -> Obj:
    return p["status"][key][index]["state"]["terminated"]  # type: ignore[no-any-return]


async def output(env: Env, name: str, container: str | None = None) -> bytes:
    return b"".join([c async for c in env.logs.read("default", name, container)])


@needs_cgroups
@scenario
async def test_memory_limit_ends_oomkilled(env: Env) -> None:
    p = pod("hog", "python3 -c 'b = bytearray(200 * 1024 * 1024); print(len(b))'")
    p["spec"]["containers"][0]["resources"] = {"limits": {"memory": "50Mi"}}
    await env.client.create("pods", p)
    done = await env.until("hog", phase("Failed"))
    term = terminated(done)
    assert (term["exitCode"], term["reason"]) == (137, "OOMKilled")
    assert done["status"]["qosClass"] == "Burstable"


@needs_real_stack
@needs_bwrap
@scenario
async def test_secret_in_env_and_as_file(env: Env) -> None:
    await env.client.create("secrets", secret("creds", password="s3cret"))
    p = pod("sec", 'echo "env=$PASSWORD file=$(cat /etc/creds/pw) mode=$(stat -L -c %a /etc/creds/pw)"; '
                   "touch /etc/creds/x 2>/dev/null || echo read-only")
    c = p["spec"]["containers"][0]
    c["env"].append({"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}})
    c["volumeMounts"] = [{"name": "c", "mountPath": "/etc/creds"}]
    p["spec"]["volumes"] = [{"name": "c", "secret": {"secretName": "creds", "defaultMode": 0o400,
                                                     "items": [{"key": "password", "path": "pw"}]}}]
    await env.client.create("pods", p)
    await env.until("sec", phase("Succeeded"))
    assert await output(env, "sec") == b"env=s3cret file=s3cret mode=400\nread-only\n"
    assert not Path("/etc/creds").exists()  # the mount point lives only in the pod's namespace


@needs_real_stack
@needs_bwrap
@scenario
async def test_config_map_volume_downward_api_and_empty_dir(env: Env) -> None:
    await env.client.create("configmaps", config_map("cfg", **{"app.conf": "debug=1", "other": "x"}))
    p = pod("cfgpod", "cat /config/app.conf; echo; ls /config; cat /info/labels; echo; cat /scratch/from-init")
    p["metadata"]["labels"]["team"] = "a"
    p["spec"]["initContainers"] = [{"name": "prep", "image": "busybox", "command": ["sh", "-c", "echo hello > /scratch/from-init"],
                                    "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]}]
    p["spec"]["containers"][0]["volumeMounts"] = [
        {"name": "cfg", "mountPath": "/config"}, {"name": "info", "mountPath": "/info"},
        {"name": "scratch", "mountPath": "/scratch"}]
    p["spec"]["volumes"] = [
        {"name": "cfg", "configMap": {"name": "cfg"}},
        {"name": "info", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
        {"name": "scratch", "emptyDir": {}}]
    await env.client.create("pods", p)
    await env.until("cfgpod", phase("Succeeded"))
    assert await output(env, "cfgpod", "main") == (
        b'debug=1\napp.conf\nother\nbatch.kubernetes.io/job-completion-index="4"\nteam="a"\nhello\n')


@needs_real_stack
@scenario
async def test_missing_secret_waits_then_starts(env: Env) -> None:
    p = pod("late", 'echo "$TOKEN"')
    p["spec"]["containers"][0]["env"].append(
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "later", "key": "t"}}})
    await env.client.create("pods", p)

    def config_error(o: Obj) -> bool:
        waiting = ((o.get("status") or {}).get("containerStatuses") or [{}])[0].get("state", {}).get("waiting")
        return bool(waiting) and waiting.get("reason") == "CreateContainerConfigError"
    waiting = await env.until("late", config_error)
    assert waiting["status"]["containerStatuses"][0]["state"]["waiting"]["message"] == 'secret "later" not found'
    await env.client.create("secrets", secret("later", t="ok"))
    await env.until("late", phase("Succeeded"))
    assert await output(env, "late") == b"ok\n"
    await env.agent.recorder.flush()  # type: ignore[attr-defined]
    assert ("Warning", "Failed", 'Error: secret "later" not found') in await env.events("late")
    assert ("Normal", "Started", "Started container main") in await env.events("late")


@scenario
async def test_sidecar_does_not_block_completion(env: Env) -> None:
    p = pod("side", "sleep 0.2; echo main-done")
    p["spec"]["initContainers"] = [
        {"name": "proxy", "image": "busybox", "restartPolicy": "Always",
         "command": ["sh", "-c", "trap 'echo bye; exit 0' TERM; echo up; while true; do sleep 0.05; done"]},
        {"name": "after", "image": "busybox", "command": ["sh", "-c", "echo init-after-sidecar"]}]
    await env.client.create("pods", p)
    done = await env.until("side", phase("Succeeded"))
    sidecar = done["status"]["initContainerStatuses"][0]
    assert sidecar["state"]["terminated"]["exitCode"] == 0  # stopped with SIGTERM after main finished
    assert terminated(done)["reason"] == "Completed"


@needs_bwrap
@scenario
async def test_termination_message_file_and_fallback_to_logs(env: Env) -> None:
    p = pod("msg", "echo -n 'all good' > /tmp/done-msg")
    p["spec"]["containers"][0]["terminationMessagePath"] = "/tmp/done-msg"
    await env.client.create("pods", p)
    p2 = pod("msg2", "echo line1; echo boom; exit 2")
    p2["spec"]["containers"][0]["terminationMessagePolicy"] = "FallbackToLogsOnError"
    await env.client.create("pods", p2)
    assert terminated(await env.until("msg", phase("Succeeded")))["message"] == "all good"
    assert not Path("/tmp/done-msg").exists()  # written to the per-container file, not the host's /tmp
    assert terminated(await env.until("msg2", phase("Failed")))["message"] == "line1\nboom\n"


@scenario
async def test_run_as_user_and_non_root_check(env: Env) -> None:
    await env.client.create("pods", pod("user", "id -u; id -g", securityContext={"runAsUser": 1234, "runAsGroup": 567}))
    await env.client.create("pods", pod("nonroot", "true", securityContext={"runAsNonRoot": True}))
    await env.until("user", phase("Succeeded"))
    assert await output(env, "user") == b"1234\n567\n"

    def config_error(o: Obj) -> bool:
        waiting = ((o.get("status") or {}).get("containerStatuses") or [{}])[0].get("state", {}).get("waiting")
        return bool(waiting) and waiting.get("reason") == "CreateContainerConfigError"
    stuck = await env.until("nonroot", config_error)
    assert stuck["status"]["containerStatuses"][0]["state"]["waiting"]["message"].startswith(
        "container has runAsNonRoot and image will run as root")


@needs_cgroups
@scenario
async def test_deletion_kills_setsid_escapee(env: Env) -> None:
    # the pod has its own PID namespace, so the escapee is found by its unique argv on the host
    mark = f"{61 + (hash(str(env.data)) % 1000) / 1000:.3f}"
    await env.client.create("pods", pod("esc", f"setsid sh -c 'exec sleep {mark}' & sleep 60"))
    await env.until("esc", phase("Running"))
    end = time.monotonic() + 10
    while not (found := _pids_with_argv(["sleep", mark])):
        assert time.monotonic() < end
        await asyncio.sleep(0.02)
    escapee = found[0]
    await env.client.delete("pods", "esc", "default", grace_period_seconds=1)
    await env.gone("esc")
    end = time.monotonic() + 5
    while Path(f"/proc/{escapee}").exists() and "Z" not in Path(f"/proc/{escapee}/stat").read_text().split(")")[-1][:3]:
        assert time.monotonic() < end, "the setsid escapee survived its pod"
        await asyncio.sleep(0.02)


def _pids_with_argv(argv: list[str]) -> list[int]:
    want = "\0".join(argv).encode() + b"\0"
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes() == want:
                    out.append(int(entry.name))
            except OSError:
                pass
    return out


@needs_bwrap
@scenario
async def test_sandboxed_container_gets_sigterm_and_memory_empty_dir(env: Env) -> None:
    p = pod("sandboxed", "trap 'echo term; exit 0' TERM; df -P /cache | tail -1 | cut -d' ' -f1; "
                         "dd if=/dev/zero of=/cache/big bs=1M count=4 2>/dev/null || echo full; echo up; "
                         "while :; do sleep 0.05; done")
    p["spec"]["containers"][0]["volumeMounts"] = [{"name": "cache", "mountPath": "/cache"}]
    p["spec"]["volumes"] = [{"name": "cache", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}}]
    await env.client.create("pods", p)
    await env.until_log("sandboxed", b"up\n")
    await env.client.delete("pods", "sandboxed", "default", grace_period_seconds=5)
    await env.gone("sandboxed")
    # the tmpfs is full at 1Mi; SIGTERM reached the trap through bwrap (the shell may add "Terminated")
    lines = (await output(env, "sandboxed")).splitlines()
    assert lines[:3] == [b"tmpfs", b"full", b"up"] and b"term" in lines


@scenario
async def test_a_container_whose_start_waits_is_creating_and_a_deletion_kills_it(env: Env) -> None:
    """A runtime may return from ``start`` only when the process exists (a Ray node queues the
    attempt for its resources first): meanwhile the container is waiting ContainerCreating, not
    running, and a deletion still kills it (so the start returns and the pod goes away)."""
    runtime: Any = env.agent.runtime
    real_start, real_kill = runtime.start, runtime.kill
    gate = asyncio.Event()
    killed: list[str] = []

    async def start(spec: Any) -> Any:
        if spec.ref.name == "queued":
            await gate.wait()  # the runtime's start returns when the container's process exists
        return await real_start(spec)

    async def kill(ref: Any, grace: float) -> None:
        killed.append(ref.name)
        if ref.name == "queued":
            gate.set()  # as the Ray runtime: a kill ends an attempt still waiting for its start
        await real_kill(ref, grace)

    runtime.start, runtime.kill = start, kill
    p = pod("creating", "echo up; sleep 30")
    p["spec"]["containers"].append({"name": "queued", "image": "busybox", "command": ["sh", "-c", "echo queued"]})
    await env.client.create("pods", p)

    def main_running(o: Obj) -> bool:
        return any("running" in (c.get("state") or {}) for c in (o.get("status") or {}).get("containerStatuses") or [])

    status = (await env.until("creating", main_running))["status"]
    queued = next(c for c in status["containerStatuses"] if c["name"] == "queued")
    assert queued["state"] == {"waiting": {"reason": "ContainerCreating"}}
    assert (queued["ready"], queued["started"]) == (False, False)
    await env.client.delete("pods", "creating", "default", grace_period_seconds=1)
    await env.gone("creating")
    assert "queued" in killed
