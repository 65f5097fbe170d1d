"""One real Ray cluster (head + a worker with the custom resource ``worker``) and one real
``joblet server --ray-address`` for the Ray tests; kubectl talks to it over HTTPS.

Run alone: ``python3 -m pytest -q -m ray tests/ray`` (13 minutes measured on the 2-core VM
under heavy load from other work, about 7 on a quiet one; a third of it the conformance
scenarios on Ray)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.process import wait_until_serving
from support.raycluster import KUBECTL, RAY, RayCluster, RaySetup, free_port


@pytest.fixture(scope="session")
def ray_setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RaySetup]:
    if RAY is None:
        pytest.skip("ray is not installed (pip install 'joblet[ray]')")
    if KUBECTL is None:
        pytest.skip("kubectl is not installed")
    base = tmp_path_factory.mktemp("ray")
    # short: Ray's unix sockets live under the temp dir (path limit 107 bytes)
    cluster = RayCluster(Path(tempfile.mkdtemp(prefix="jr", dir="/tmp")))
    server: subprocess.Popen[bytes] | None = None
    try:
        cluster.start_head()
        (head_id,) = cluster.node_ids()
        worker_id = cluster.add_worker("worker", {"worker": 1})
        data = base / "data"
        log_path = base / "server.log"
        with open(log_path, "wb") as log:
            server = subprocess.Popen(
                [sys.executable, "-m", "joblet", "server", "--data-dir", str(data), "--port", str(free_port()),
                 "--ray-address", cluster.address, "--pod-failure-backoff", "0.5", "--node-heartbeat-timeout", "10"],
                stdout=log, stderr=subprocess.STDOUT)
        wait_until_serving(server, data / "kubeconfig", timeout=90, log=log_path)
        home = base / "home"
        home.mkdir()
        yield RaySetup(cluster, head_id, worker_id, data / "kubeconfig", home, log_path)
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        leaked = cluster.stop_all()
        shutil.rmtree(cluster.temp_dir, ignore_errors=True)
        assert not leaked, f"processes outlived the Ray cluster: {leaked}"
