"""The node agent: joblet's kubelet (the loop around the pod workers).

Why: pods are API objects; something has to turn a pod bound to this node into processes
and report back what happened, with the kubelet's exact status vocabulary, because the Job
controller (and every Kubernetes user) reads it. The agent registers a ``Node``, heartbeats
it, feeds pods with ``spec.nodeName=<node>`` from a shared
:class:`~joblet.client.informer.Informer` (list, watch, relist on 410 Gone) to one asyncio
task per pod, and watches the disk and the service-account tokens. The pieces it composes:

* :mod:`joblet.node.podworker` - one pod's lifecycle (:class:`PodWorker`), given a
  :class:`WorkerDeps` rather than the agent;
* :mod:`joblet.node.containerenv` - env, argv, run-as user and limits of a container;
* :mod:`joblet.node.podstatus` - the pod's status, a pure function of the worker's records;
* :mod:`joblet.node.volumes`, :mod:`joblet.node.sandbox`, :mod:`joblet.node.tokens`,
  :mod:`joblet.node.diskpressure` - volumes, containment, tokens, eviction.

Every periodic wait (heartbeat, token resync, disk check) is on the injected clock.

Documented choices:
* every container is contained by bubblewrap (:mod:`joblet.node.sandbox`: own PID, IPC and
  mount namespaces, private ``/dev``, data dir hidden, capabilities as a container runtime
  gives them); volumes (:mod:`joblet.node.volumes`) are bound at their ``mountPath``. Without
  ``bwrap`` pods run uncontained (a loud warning at start-up);
* the service-account token volume (``kube-api-access-*`` at
  ``/var/run/secrets/kubernetes.io/serviceaccount``: ``token``, ``ca.crt``, ``namespace``) is
  added by the API's ServiceAccount admission, as upstream; the agent materialises its
  ``serviceAccountToken`` by a TokenRequest bound to the pod (:mod:`joblet.node.tokens`) and
  rewrites it once 80% of its lifetime has passed (checked every ``token_resync_seconds``
  against the injected clock, :meth:`NodeAgent.refresh_tokens`). ``ca.crt`` is the
  ``kube-root-ca.crt`` ConfigMap, else ``api_ca_file``;
* a pod the informer reports deleted while its worker runs is killed without grace; runtime
  state of pods that vanished while the agent was down is killed and forgotten at the first
  sync.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from joblet.client.events import ClientEventRecorder, EventRecorder
from joblet.client.informer import Informer
from joblet.client.interface import Client
from joblet.clock import Clock, rfc3339
from joblet.errors import AlreadyExists, ApiError, Conflict, NotFound
from joblet.node import diskpressure
from joblet.node.containerenv import POD_IP, NodeFacts, container_env, service_env, volume_resource
from joblet.node.logs import LogStore
from joblet.node.podworker import PodWorker, WorkerDeps
from joblet.node.quantity import parse_quantity
from joblet.node.runtimes.base import Runtime
from joblet.node.sandbox import bwrap_path
from joblet.node.tokens import TokenManager
from joblet.node.volumes import (
    PLACEHOLDER_CA,
    TokenContext,
    VolumeError,
    VolumeManager,
    token_volume_names,
    unmount_all,
)
from joblet.objects import deep_copy, deletion_timestamp, name_of, namespace_of, uid_of

log = logging.getLogger(__name__)

Obj = dict[str, Any]
HEARTBEAT_SECONDS = 10.0
#: how often running pods' token volumes are checked for rotation (the kubelet's pod sync period)
TOKEN_RESYNC_SECONDS = 60.0
#: how long the pod informer waits before relisting after a failed list or watch
RELIST_BACKOFF_SECONDS = 1.0
__all__ = ["NodeAgent", "PodWorker"]


def memory_capacity() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1])}Ki"
    except OSError:
        pass
    return "0"


class NodeAgent:
    def __init__(self, client: Client, node_name: str, data_dir: Path, clock: Clock, runtime: Runtime,
                 crash_loop_backoff: float = 10, crash_loop_backoff_max: float = 300,
                 logs: LogStore | None = None, heartbeat_seconds: float = HEARTBEAT_SECONDS, *,
                 api_url: str | None = None, api_ca_file: Path | None = None,
                 recorder: EventRecorder | None = None, capacity_cpu: str | None = None,
                 capacity_memory: str | None = None, max_pods: int = 1000,
                 pod_pids_limit: int | None = None, token_resync_seconds: float = TOKEN_RESYNC_SECONDS,
                 log_endpoint: tuple[str, int, bytes] | None = None,
                 eviction_hard: str = diskpressure.DEFAULT_EVICTION_HARD) -> None:
        """``log_endpoint``: (address, port, certificate PEM) of this node's log endpoint
        (joblet.node.logserver), published on the Node for the API server to proxy ``pods/log``.
        ``api_url``: the API server as pods reach it (``KUBERNETES_SERVICE_HOST``/``PORT`` and
        the service-account volume); ``api_ca_file``: its CA (``ca.crt``) when it serves TLS.
        ``capacity_*``/``max_pods``: the Node's capacity (default: this machine's cores and memory).
        ``pod_pids_limit``: ``pids.max`` of every container (the kubelet's podPidsLimit).
        ``token_resync_seconds``: how often token volumes are checked for rotation."""
        self.client = client
        self.node_name = node_name
        self.data_dir = data_dir
        self.clock = clock
        self.runtime = runtime
        self.crash_loop_backoff = crash_loop_backoff
        self.crash_loop_backoff_max = crash_loop_backoff_max
        self.logs = logs or LogStore(data_dir, clock)
        self.heartbeat_seconds = heartbeat_seconds
        self.workers: dict[str, PodWorker] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._finished_uids: set[str] = set()
        self.api_url = api_url
        self.service_env = service_env(api_url)
        self.recorder: EventRecorder = recorder or ClientEventRecorder(client, clock, "kubelet")
        self.capacity = {"cpu": capacity_cpu or str(os.cpu_count() or 1),
                         "memory": capacity_memory or memory_capacity(), "pods": str(max_pods)}
        self.cpu_capacity = parse_quantity(self.capacity["cpu"])
        self.memory_capacity = parse_quantity(self.capacity["memory"])
        self.pod_pids_limit = pod_pids_limit
        self.log_endpoint = log_endpoint
        self.eviction_hard = diskpressure.parse_threshold(eviction_hard)
        self.disk: diskpressure.DiskState | None = None
        ca = api_ca_file.read_bytes() if api_ca_file is not None else PLACEHOLDER_CA
        self.tokens = TokenManager(client, clock)
        self.token_resync_seconds = token_resync_seconds
        self.facts = NodeFacts(node_name, self.cpu_capacity, self.memory_capacity, self.service_env)
        self.volumes = VolumeManager(self.fetch, node_name, POD_IP, TokenContext(self.tokens.get, ca),
                                     lambda pod, name, ref: volume_resource(pod, name, ref, self.facts))
        self.agent_uid = os.getuid()
        self.sandbox_available = bwrap_path() is not None
        if not self.sandbox_available:
            log.warning("bubblewrap (bwrap) not found: pods are NOT contained (they see the data dir and every "
                        "process) and volumes are not mounted at their mountPath; install bubblewrap")
        self.worker_deps = WorkerDeps(
            client=client, clock=clock, runtime=runtime, recorder=self.recorder, logs=self.logs,
            volumes=self.volumes, node_name=node_name, agent_uid=self.agent_uid, sandbox=self.sandbox_available,
            pod_pids_limit=pod_pids_limit, crash_loop_backoff=crash_loop_backoff,
            crash_loop_backoff_max=crash_loop_backoff_max, container_env=self.container_env,
            volume_root=self.pod_volume_root, remove_pod=self.remove_pod)
        self.pods = self._pod_informer()
        self._chores: set[asyncio.Task[None]] = set()  # deletions the informer's handlers started

    def _pod_informer(self) -> Informer:
        pods = Informer(self.client, "pods", field_selector=f"spec.nodeName={self.node_name}",
                        relist_backoff=RELIST_BACKOFF_SECONDS, clock=self.clock)
        pods.add_handler(on_add=self.on_pod, on_update=lambda _old, new: self.on_pod(new),
                         on_delete=self.on_pod_deleted)
        return pods

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        await self.register()
        loop = asyncio.get_running_loop()
        if self.pods.synced.is_set():  # started again after stop(): every pod is new to its workers
            self.pods = self._pod_informer()
        self._tasks = [self.pods.start(), loop.create_task(self._first_sync()), loop.create_task(self._heartbeat()),
                       loop.create_task(self._token_refresher()), loop.create_task(self._disk_monitor())]

    async def stop(self) -> None:
        """Stop watching and supervising. Containers keep running; a new agent adopts them.

        The volumes of pods that are done are unmounted here: a worker cancelled while it
        concluded (e.g. awaiting its final status write) never reached its own unmount, and no
        later agent would know to do it. A pod force-deleted from the API whose worker was still
        killing it is removed now (its processes would otherwise outlive a plane that stops for
        good). A running pod's processes and mounts stay for the next agent."""
        finished = set(self._finished_uids)  # before the cancelled workers add themselves
        workers = list(self.workers.values())
        tasks = self._tasks + list(self._chores) + [w.task for w in workers if w.task]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        done = finished | {w.uid for w in workers if w.concluded}
        gone = {w.uid for w in workers if w.forced}  # left the API: no later agent would adopt them
        self._tasks = []
        self.workers.clear()
        self._finished_uids = done  # a cancelled worker's pod is not finished: start() adopts it again
        for uid in sorted(done - gone):
            await asyncio.to_thread(unmount_all, self.pod_volume_root(uid))
        for uid in sorted(gone):
            await self.remove_pod(uid)  # kills what still runs at once, unmounts, drops its state
        with contextlib.suppress(ApiError, OSError):  # deleted before our watch told us: same
            await self._forget_unknown((await self.client.list(
                "pods", field_selector=f"spec.nodeName={self.node_name}")).items, unmount_ended=False)

    def pod_volume_root(self, uid: str) -> Path:
        return self.data_dir / "pods" / uid / "volumes"

    async def remove_pod(self, uid: str) -> None:
        """Forget a deleted pod: the agent unmounts the volumes it mounted (whatever the runtime
        does with its own state), then the runtime kills what still runs and drops its state."""
        await asyncio.to_thread(unmount_all, self.pod_volume_root(uid))
        await self.runtime.remove_pod(uid)

    async def run(self) -> None:
        await self.start()
        try:
            await asyncio.gather(*self._tasks)
        finally:
            await self.stop()

    # -- node ----------------------------------------------------------------------------------
    def node_object(self) -> Obj:
        now = rfc3339(self.clock.now())
        resources = dict(self.capacity)
        obj: Obj = {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": self.node_name, "labels": {
                "kubernetes.io/hostname": self.node_name, "kubernetes.io/os": "linux",
                "kubernetes.io/arch": os.uname().machine.replace("x86_64", "amd64").replace("aarch64", "arm64"),
            }},
            "spec": {},
            "status": {
                "capacity": resources, "allocatable": dict(resources),
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                "message": "joblet node agent is posting ready status",
                                "lastHeartbeatTime": now, "lastTransitionTime": now}],
                "addresses": [{"type": "InternalIP", "address": POD_IP},
                              {"type": "Hostname", "address": socket.gethostname()}],
                "nodeInfo": {"operatingSystem": "linux", "architecture": os.uname().machine,
                             "kernelVersion": os.uname().release, "kubeletVersion": "v1.30.0-joblet",
                             "containerRuntimeVersion": "joblet://process", "osImage": "", "machineID": "",
                             "systemUUID": "", "bootID": "", "kubeProxyVersion": ""},
            },
        }
        if self.log_endpoint is not None:
            from joblet.client.nodelogs import CERT_ANNOTATION

            address, port, cert = self.log_endpoint
            obj["metadata"]["annotations"] = {CERT_ANNOTATION: cert.decode()}
            obj["status"]["addresses"][0]["address"] = address
            obj["status"]["daemonEndpoints"] = {"kubeletEndpoint": {"Port": port}}
        return obj

    async def register(self) -> None:
        wanted = self.node_object()
        try:
            node = await self.client.create("nodes", wanted)
        except AlreadyExists:
            node = await self.client.get("nodes", self.node_name)
            body = deep_copy(node)
            body["metadata"].setdefault("labels", {}).update(wanted["metadata"]["labels"])
            body["metadata"].setdefault("annotations", {}).update(wanted["metadata"].get("annotations") or {})
            node = await self.client.update("nodes", body)
        await self._write_node_status(node, wanted["status"])

    async def _write_node_status(self, node: Obj, status: Obj) -> None:
        for _ in range(5):
            body = deep_copy(node)
            body["status"] = status
            try:
                await self.client.update("nodes", body, subresource="status")
                return
            except Conflict:
                node = await self.client.get("nodes", self.node_name)

    async def heartbeat(self) -> None:
        try:
            node = await self.client.get("nodes", self.node_name)
        except NotFound:
            await self.register()
            return
        status = deep_copy(node.get("status") or {})
        now = rfc3339(self.clock.now())
        conditions = status.setdefault("conditions", [])
        ready = next((c for c in conditions if c.get("type") == "Ready"), None)
        if ready is None:
            ready = {"type": "Ready", "lastTransitionTime": now}
            conditions.append(ready)
        if ready.get("status") != "True":
            ready["lastTransitionTime"] = now
        ready.update(status="True", reason="KubeletReady", lastHeartbeatTime=now,
                     message="joblet node agent is posting ready status")
        self._set_disk_condition(conditions, now)
        await self._write_node_status(node, status)

    def _set_disk_condition(self, conditions: list[Obj], now: str) -> None:
        if self.disk is None:
            return
        old = next((c for c in conditions if c.get("type") == "DiskPressure"), None)
        new = diskpressure.condition(self.disk, now, old)
        if old is None:
            conditions.append(new)
        else:
            old.clear()
            old.update(new)

    async def _disk_monitor(self) -> None:
        """Every few seconds: DiskPressure on the Node when it changes, and one eviction under it."""
        while True:
            try:
                state = await asyncio.to_thread(diskpressure.disk_state, self.data_dir, self.eviction_hard)
                was = self.disk.pressure if self.disk is not None else None
                self.disk = state
                if state.pressure != was:
                    if state.pressure or was:
                        log.warning("disk pressure %s: %d of %d bytes available (threshold %s)",
                                    "begins" if state.pressure else "is over", state.available, state.total,
                                    self.eviction_hard.text)
                    await self.heartbeat()
                if state.pressure:
                    await self._evict_one(state)
            except (ApiError, OSError) as exc:
                log.warning("disk pressure check failed: %s", exc)
            await self.clock.sleep_async(diskpressure.CHECK_SECONDS)

    async def _evict_one(self, state: diskpressure.DiskState) -> None:
        """Evict the running pod using the most disk (its logs and volumes), unless one is going."""
        running = [w for w in self.workers.values() if w.phase not in ("Succeeded", "Failed")]
        if not running or any(w.evicted.is_set() for w in running):
            return

        def usage(w: PodWorker) -> int:
            logs = self.logs.root / namespace_of(w.pod) / name_of(w.pod) / w.uid
            return diskpressure.usage_bytes(logs, w.volume_root())
        sizes = await asyncio.to_thread(lambda: [(usage(w), w) for w in running])
        used, worker = max(sizes, key=lambda item: item[0])
        worker.evict(diskpressure.EVICTED_MESSAGE.format(
            threshold=self.eviction_hard.text.split("<")[-1], available=f"{state.available // 1024}Ki")
            + f"Pod {name_of(worker.pod)} was using {used // 1024}Ki of local storage.")

    async def _heartbeat(self) -> None:
        while True:
            await self.clock.sleep_async(self.heartbeat_seconds)
            try:
                await self.heartbeat()
            except ApiError as exc:
                log.warning("node heartbeat failed: %s", exc)

    # -- service-account tokens ----------------------------------------------------------------
    async def _token_refresher(self) -> None:
        while True:
            await self.clock.sleep_async(self.token_resync_seconds)
            try:
                await self.refresh_tokens()
            except Exception:
                log.exception("refreshing service account tokens failed")

    async def refresh_tokens(self) -> int:
        """Rewrite the token volumes of running pods whose token is due (80% of its lifetime on
        the clock); returns how many pods got a new token. A failure keeps the old token (still
        valid) and is retried at the next sync."""
        refreshed = 0
        for worker in list(self.workers.values()):
            names = token_volume_names(worker.pod)
            if not names or not self.tokens.due(worker.uid) or not worker.volume_root().is_dir():
                continue
            if worker.concluded:
                continue
            try:
                await self.volumes.prepare(worker.pod, worker.volume_root(), only=names)
                refreshed += 1
                if worker.concluded:  # it ended while the token was written: do not leave it mounted
                    await asyncio.to_thread(unmount_all, worker.volume_root())
            except VolumeError as err:
                log.warning("refreshing the token of pod %s/%s failed: %s", namespace_of(worker.pod),
                            name_of(worker.pod), err)
        return refreshed

    # -- pods ----------------------------------------------------------------------------------
    async def _first_sync(self) -> None:
        await self.pods.synced.wait()
        await self._forget_unknown()

    async def _forget_unknown(self, pods: list[Obj] | None = None, unmount_ended: bool = True) -> None:
        """Runtime state of pods that vanished while the agent was down: kill and forget. Pods
        that ended meanwhile get no worker: their volumes are unmounted here (as the kubelet's
        orphaned-pod cleanup), a previous agent may have stopped before doing it. ``pods``: the
        API's pods of this node (default: the informer's)."""
        pods = self.pods.list() if pods is None else pods
        known = {uid_of(p) for p in pods} | set(self.workers)
        ended = {uid_of(p) for p in pods if (p.get("status") or {}).get("phase") in ("Succeeded", "Failed")}
        for uid in self.runtime.pods():
            if uid not in known:
                await self.remove_pod(uid)
            elif unmount_ended and uid in ended and uid not in self.workers:
                await asyncio.to_thread(unmount_all, self.pod_volume_root(uid))

    def on_pod(self, pod: Obj) -> None:
        uid = uid_of(pod)
        worker = self.workers.get(uid)
        if worker is not None:
            worker.on_update(pod)
            return
        phase = (pod.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed") or uid in self._finished_uids:
            if deletion_timestamp(pod):
                self._chore(self._delete_finished(pod))
            return
        worker = PodWorker(self.worker_deps, pod)
        worker.on_update(pod)
        self.workers[uid] = worker
        worker.task = asyncio.get_running_loop().create_task(self._run_worker(worker))

    async def _run_worker(self, worker: PodWorker) -> None:
        try:
            await worker.run()
        finally:
            if self.workers.get(worker.uid) is worker:
                del self.workers[worker.uid]
                self._finished_uids.add(worker.uid)
            self.tokens.forget(worker.uid)

    async def _delete_finished(self, pod: Obj) -> None:
        # Kill first: a pod failed from outside (node lifecycle: stale heartbeat) may still run,
        # and once it leaves the API nothing (an offline `delete` exiting) waits for the kill.
        await self.remove_pod(uid_of(pod))
        with contextlib.suppress(NotFound):
            await self.client.delete("pods", name_of(pod), namespace_of(pod), grace_period_seconds=0)

    def on_pod_deleted(self, pod: Obj) -> None:
        uid = uid_of(pod)
        worker = self.workers.get(uid)
        if worker is not None:
            worker.on_force_deleted()
            return
        self._finished_uids.discard(uid)
        self._chore(self.remove_pod(uid))

    def _chore(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` beside the informer (its handlers must not block); stop() cancels it."""
        task = asyncio.get_running_loop().create_task(work)
        self._chores.add(task)
        task.add_done_callback(self._chores.discard)

    # -- env -----------------------------------------------------------------------------------
    async def container_env(self, pod: Obj, container: Obj) -> dict[str, str]:
        return await container_env(pod, container, self.facts, self.fetch)

    async def fetch(self, kind: str, namespace: str, name: str) -> Obj | None:
        try:
            return await self.client.get(kind, name, namespace)
        except NotFound:
            return None

    # -- env -----------------------------------------------------------------------------------
