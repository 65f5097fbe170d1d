"""Ray: N pods of ``/bin/true`` run on a Ray cluster by joblet, against N plain Ray tasks
that run the same subprocess, in the same run on the same local Ray cluster (one head with
``--cpus`` CPUs; both sides ask Ray for cpus/parallelism CPUs per pod/task, so both run
``--parallelism`` at once). Prints one JSON line with the rates and the ratios (pods/s ÷
tasks/s): pods under bubblewrap (the default) and pods with ``--no-ray-sandbox`` (plain
processes, like the tasks), each against the same tasks.

    python bench/ray.py [--count 1000] [--cpus 4] [--parallelism 4] [--count-writes]

The pods side is an Indexed Job (that parallelism) submitted to ``joblet server
--ray-address``; its time runs from the create to the Job's Complete condition, after a
warm-up Job of 8 pods (Ray starts the worker processes of a driver on demand; the tasks side
is warmed the same way). The tasks side uses the same driver settings as joblet
(:func:`joblet.node.raynodes.nodes.connect`).

``joblet_cpu_seconds``: CPU time (user + system) of the joblet server process during the
measured Job, from ``/proc`` (what the machine's load does not change much; the supervisor
actor and the containers run in Ray's processes, not in it).

``--count-writes`` watches the measured Job's pods during the run and adds, per side, the pod
status writes per pod (watch events whose ``status`` changed) and the share of pods that were
ever written with a running container (a watch stream costs the server a little CPU).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

# This file is named ray.py, as the issue asks: keep its own directory off the path, so that
# ``import ray`` finds Ray, and put tests/ on it for the shared cluster helper.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent / "tests"))

import httpx  # noqa: E402

import ray  # noqa: E402
from joblet.node.raynodes.nodes import connect  # noqa: E402
from support.raycluster import RayCluster, free_port  # noqa: E402
from support.tls import kubeconfig_http  # noqa: E402


def true_subprocess() -> int:
    return subprocess.run(["/bin/true"], check=False).returncode


def time_tasks(address: str, count: int, cpu: float) -> float:
    connect(address)
    task = ray.remote(num_cpus=cpu, max_retries=0)(true_subprocess)
    ray.get([task.remote() for _ in range(8)])  # warm the worker pool, as the pods side is warm too
    start = time.monotonic()
    codes = ray.get([task.remote() for _ in range(count)])
    took = time.monotonic() - start
    assert codes == [0] * count
    ray.shutdown()
    return took


def manifest(count: int, parallelism: int, cpu: float, name: str = "onray") -> dict[str, object]:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"completionMode": "Indexed", "completions": count, "parallelism": parallelism,
                     "backoffLimit": 0, "template": {"spec": {
                         "restartPolicy": "Never",
                         "tolerations": [{"key": "joblet.dev/engine", "operator": "Exists"}],
                         "nodeSelector": {"joblet.dev/engine": "ray"},
                         "containers": [{"name": "main", "image": "busybox", "command": ["/bin/true"],
                                         "resources": {"requests": {"cpu": f"{int(cpu * 1000)}m"}}}]}}}}


def run_job(http: httpx.Client, job: dict[str, object]) -> float:
    """Seconds from the Job's create to its Complete condition."""
    name = job["metadata"]["name"]  # type: ignore[index]
    start = time.monotonic()
    http.post("/apis/batch/v1/namespaces/default/jobs", json=job).raise_for_status()
    while True:
        time.sleep(0.2)
        try:
            status = http.get(f"/apis/batch/v1/namespaces/default/jobs/{name}").json().get("status") or {}
        except httpx.HTTPError:  # a busy 2-core box: try again, the clock keeps running
            continue
        done = [c["type"] for c in status.get("conditions") or [] if c["status"] == "True"
                and c["type"] in ("Complete", "Failed")]
        if done:
            took = time.monotonic() - start
            if done != ["Complete"]:
                sys.exit(f"the Job failed: {status}")
            return took


class StatusWrites:
    """Counts the status writes of the pods named ``prefix-*`` from a watch, in a daemon thread."""

    def __init__(self, kubeconfig: Path, prefix: str) -> None:
        self.prefix = prefix
        self.last: dict[str, Any] = {}
        self.writes: dict[str, int] = {}
        self.ran: set[str] = set()
        self.ready = threading.Event()
        threading.Thread(target=self._watch, args=(kubeconfig,), daemon=True).start()
        self.ready.wait(30)

    def _watch(self, kubeconfig: Path) -> None:
        try:
            self._stream(kubeconfig)
        except httpx.HTTPError:  # the server stops at the end of its side
            pass

    def _stream(self, kubeconfig: Path) -> None:
        with kubeconfig_http(kubeconfig, timeout=None) as http, \
                http.stream("GET", "/api/v1/namespaces/default/pods", params={"watch": "1"}) as stream:
            self.ready.set()
            for line in stream.iter_lines():
                if not line:
                    continue
                event = json.loads(line)
                pod = event.get("object") or {}
                name = str((pod.get("metadata") or {}).get("name", ""))
                if not name.startswith(self.prefix + "-") or event.get("type") not in ("ADDED", "MODIFIED"):
                    continue
                status = pod.get("status") or {}
                if name in self.last and status != self.last[name]:
                    self.writes[name] = self.writes.get(name, 0) + 1
                self.last[name] = status
                if any("running" in (c.get("state") or {}) for c in status.get("containerStatuses") or []):
                    self.ran.add(name)

    def summary(self) -> dict[str, float]:
        pods = max(len(self.last), 1)
        return {"pods_seen": len(self.last), "status_writes_per_pod": round(sum(self.writes.values()) / pods, 3),
                "running_written_share": round(len(self.ran) / pods, 3)}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def time_pods(address: str, count: int, parallelism: int, cpu: float, work: Path, *extra: str,
              writes: dict[str, float] | None = None, cpu_used: list[float] | None = None) -> float:
    work.mkdir(parents=True, exist_ok=True)
    data = work / "data"
    with open(work / "server.log", "wb") as log:
        server = subprocess.Popen([sys.executable, "-m", "joblet", "server", "--data-dir", str(data),
                                   "--port", str(free_port()), "--ray-address", address, *extra],
                                  stdout=log, stderr=subprocess.STDOUT)
    try:
        kubeconfig = data / "kubeconfig"
        deadline = time.monotonic() + 120
        while True:
            try:
                with kubeconfig_http(kubeconfig, timeout=2) as http:
                    nodes = http.get("/api/v1/nodes").json().get("items", [])
                    if any(n["metadata"]["name"].startswith("ray-") for n in nodes):
                        break
            except (OSError, ValueError, KeyError, httpx.HTTPError):
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                sys.exit("joblet server with --ray-address did not start; see " + str(work / "server.log"))
            time.sleep(0.2)
        with kubeconfig_http(kubeconfig, timeout=30) as http:
            run_job(http, manifest(8, parallelism, cpu, "warmup"))
            counter = StatusWrites(kubeconfig, "onray") if writes is not None else None
            cpu_before = cpu_seconds(server.pid)
            took = run_job(http, manifest(count, parallelism, cpu))
            if cpu_used is not None:
                cpu_used.append(cpu_seconds(server.pid) - cpu_before)
            if counter is not None and writes is not None:
                time.sleep(1)  # the last events of the stream
                writes.update(counter.summary())
            return took
    finally:
        server.terminate()
        server.wait(60)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--cpus", type=int, default=4)
    parser.add_argument("--parallelism", type=int, default=4)
    parser.add_argument("--count-writes", action="store_true",
                        help="also count the pod status writes per pod (from a watch)")
    args = parser.parse_args()
    writes: dict[str, float] | None = {} if args.count_writes else None
    plain_writes: dict[str, float] | None = {} if args.count_writes else None
    cpu_used: list[float] = []
    cpu = args.cpus / args.parallelism
    work = Path(tempfile.mkdtemp(prefix="jrb", dir="/tmp"))
    cluster = RayCluster(work / "ray")
    try:
        cluster.start_head(num_cpus=args.cpus)
        tasks = time_tasks(cluster.address, args.count, cpu)
        pods = time_pods(cluster.address, args.count, args.parallelism, cpu, work / "sandboxed", writes=writes,
                         cpu_used=cpu_used)
        plain = time_pods(cluster.address, args.count, args.parallelism, cpu, work / "plain", "--no-ray-sandbox",
                          writes=plain_writes, cpu_used=cpu_used)
    finally:
        leaked = cluster.stop_all()
        shutil.rmtree(work, ignore_errors=True)
    tasks_rate, pods_rate, plain_rate = args.count / tasks, args.count / pods, args.count / plain
    print(json.dumps({"bench": "ray", "count": args.count, "cpus": args.cpus, "parallelism": args.parallelism,
                      "ray_tasks_seconds": round(tasks, 2), "ray_tasks_per_second": round(tasks_rate, 1),
                      "joblet_pods_seconds": round(pods, 2), "joblet_pods_per_second": round(pods_rate, 1),
                      "ratio": round(pods_rate / tasks_rate, 3),
                      "joblet_pods_no_sandbox_seconds": round(plain, 2),
                      "joblet_pods_no_sandbox_per_second": round(plain_rate, 1),
                      "ratio_no_sandbox": round(plain_rate / tasks_rate, 3), "leaked_processes": len(leaked),
                      "joblet_cpu_seconds": round(cpu_used[0], 2), "joblet_cpu_seconds_no_sandbox": round(cpu_used[1], 2),
                      "load_average_1m": os.getloadavg()[0], "host_cpus": os.cpu_count(),
                      **({"writes": writes, "writes_no_sandbox": plain_writes} if args.count_writes else {})}))


if __name__ == "__main__":
    main()
