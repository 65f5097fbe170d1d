"""A real local Ray cluster for tests and benchmarks: a head and worker nodes on this machine.

Why: the Ray runtime must be tested against real raylets (scheduling, node death, streaming
generators), not a mock. Each node is a ``ray start --block`` process of our own, so stopping
it (SIGTERM) stops exactly that node's daemons, nothing else on the machine; ``stop_all``
then sweeps any process still running from the cluster's temp dir and reports it as a leak.
Memory is kept small (1 CPU per node, 100 MB object store, no dashboard).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

RAY = shutil.which("ray")
KUBECTL = shutil.which("kubectl")
START_TIMEOUT = 90.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RayCluster:
    temp_dir: Path
    port: int = field(default_factory=free_port)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _start(self, name: str, args: list[str], resources: dict[str, float] | None = None) -> None:
        assert RAY is not None
        log = open(self.temp_dir / f"node-{name}.log", "wb")  # noqa: SIM115 - the child keeps it
        argv = [RAY, "start", "--block", "--disable-usage-stats", "--object-store-memory", "100000000",
                "--dashboard-agent-listen-port", str(free_port()), "--metrics-export-port", str(free_port()),
                "--runtime-env-agent-port", str(free_port()), *args]
        if resources:
            argv += ["--resources", json.dumps(resources)]
        env = {**os.environ, "RAY_memory_monitor_refresh_ms": "0"}
        self.procs[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                                            start_new_session=True)

    def start_head(self, num_cpus: int = 1) -> None:
        self.temp_dir.mkdir(parents=True, exist_ok=True)
        self._start("head", ["--head", "--port", str(self.port), "--num-cpus", str(num_cpus),
                             "--include-dashboard=false",
                             "--temp-dir", str(self.temp_dir)])
        self.wait_nodes(1)

    def add_worker(self, name: str, resources: dict[str, float], num_cpus: int = 1) -> str:
        """Start a worker node (after the previous one is up: racing starts collide on ports);
        returns its Ray node id."""
        before = set(self.node_ids())
        self._start(name, ["--address", self.address, "--num-cpus", str(num_cpus)], resources)
        self.wait_nodes(len(before) + 1)
        (new,) = set(self.node_ids()) - before
        return new

    def nodes(self) -> list[dict[str, object]]:
        """Alive nodes as ``ray list nodes`` would say, read through a short-lived driver."""
        code = (f"import json, ray; ray.init(address={self.address!r}, log_to_driver=False, logging_level=40); "
                "print(json.dumps([{'id': n['NodeID'], 'resources': n['Resources']} for n in ray.nodes() "
                "if n['Alive']]))")
        out = subprocess.run(["python3", "-c", code], capture_output=True, text=True, timeout=30, check=True)
        return list(json.loads(out.stdout.strip().splitlines()[-1]))

    def node_ids(self) -> list[str]:
        return [str(n["id"]) for n in self.nodes()]

    def wait_nodes(self, count: int) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise AssertionError(f"ray node {name} exited: {proc.returncode}")
            try:
                if gcs_listening(self.port) and len(self.nodes()) >= count:
                    return
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"Ray cluster did not reach {count} nodes")
            time.sleep(0.5)

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def stop_all(self) -> list[str]:
        """Stop every node; returns the command lines of processes that outlived their node."""
        for name in reversed(list(self.procs)):
            self.stop(name)
        leaked: list[str] = []
        deadline = time.monotonic() + 15
        while True:
            leaked = leftovers(str(self.temp_dir))
            if not leaked or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        for line in leaked:
            pid = int(line.split(" ", 1)[0])
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return leaked


def gcs_listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def leftovers(marker: str) -> list[str]:
    """``pid cmdline`` of processes whose command line mentions ``marker``."""
    out: list[str] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmd:
            out.append(f"{entry} {cmd.strip()}")
    return out


@dataclass
class RaySetup:
    cluster: RayCluster
    head_id: str
    worker_id: str
    kubeconfig: Path
    home: Path

    server_log: Path

    def diagnostics(self) -> str:
        """What a failing test prints: pods with status, and the server log's tail."""
        pods = self.kubectl("get", "pods", "-o", "yaml", check=False).stdout[-6000:]
        return f"pods:\n{pods}\nserver log:\n{self.server_log.read_text(errors='replace')[-4000:]}"

    def kubectl(self, *args: str, check: bool = True, stdin: str | None = None,
                timeout: float = 60) -> subprocess.CompletedProcess[str]:
        assert KUBECTL is not None
        result = subprocess.run([KUBECTL, "--kubeconfig", str(self.kubeconfig), *args], input=stdin,
                                capture_output=True, text=True, timeout=timeout,
                                env={"HOME": str(self.home), "PATH": "/usr/bin:/bin"})
        if check:
            assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}"
        return result
