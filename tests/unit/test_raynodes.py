"""The pure parts of the Ray engine: CRI chunking on the worker, Node capacity from Ray
resources, Ray task options from requests, the Node object of a Ray node."""

from __future__ import annotations

import pytest

from joblet.logformat import render
from joblet.node.raynodes.worker import MAX_PARTIAL, cri_chunk

ray = pytest.importorskip("ray", reason="the Ray engine needs `pip install 'joblet[ray]'`")

from joblet.node.raynodes.nodes import node_capacity, node_name  # noqa: E402
from joblet.node.raynodes.runtime import ray_resources  # noqa: E402

STAMP = b"2026-01-01T00:00:00.000000Z"


def test_cri_chunk_prefixes_every_complete_line_and_keeps_the_partial_one() -> None:
    lines, rest = cri_chunk(STAMP, b"stdout", b"a\nbb\nccc", final=False)
    assert lines == STAMP + b" stdout F a\n" + STAMP + b" stdout F bb\n"
    assert rest == b"ccc"
    assert b"".join(render(line, False) for line in lines.splitlines()) == b"a\nbb\n"


def test_cri_chunk_writes_the_tail_as_partial_at_the_end_of_the_stream() -> None:
    lines, rest = cri_chunk(STAMP, b"stderr", b"no newline", final=True)
    assert (lines, rest) == (STAMP + b" stderr P no newline\n", b"")
    assert render(lines.rstrip(b"\n"), False) == b"no newline"


def test_cri_chunk_splits_a_very_long_line() -> None:
    lines, rest = cri_chunk(STAMP, b"stdout", b"x" * (MAX_PARTIAL + 1), final=False)
    assert rest == b"" and lines.startswith(STAMP + b" stdout P x")


def test_node_capacity_maps_ray_resources() -> None:
    capacity = node_capacity({"CPU": 2.0, "memory": 1e9, "GPU": 1.0, "object_store_memory": 1e8,
                              "node:10.0.0.1": 1.0, "node:__internal_head__": 1.0, "worker": 1.0,
                              "half": 0.5, "accelerator_type:A100": 1.0})
    assert capacity == {"cpu": "2", "memory": "1000000000", "pods": "16", "nvidia.com/gpu": "1",
                        "ray.io/worker": "1", "ray.io/half": "500m"}
    assert node_name("0e7fe00dd252aaaabbbbcccc") == "ray-0e7fe00dd252"


def test_requests_become_ray_resources() -> None:
    assert ray_resources({}) == {"num_cpus": 0}
    assert ray_resources({"cpu": "500m", "memory": "64Mi", "nvidia.com/gpu": "1", "ray.io/worker": "1"}) == {
        "num_cpus": 0.5, "memory": 64 * 1024 * 1024, "num_gpus": 1.0, "resources": {"worker": 1.0}}


def test_an_unreachable_ray_address_fails_fast_with_one_clear_error() -> None:
    import socket

    from joblet.node.raynodes.nodes import RayUnreachable, check_reachable

    with socket.socket() as s:  # a port nobody listens on: bound, never listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        with pytest.raises(RayUnreachable, match=f"no Ray cluster at 127.0.0.1:{port}"):
            check_reachable(f"127.0.0.1:{port}")
    with pytest.raises(RayUnreachable, match="expected HOST:PORT"):
        check_reachable("nonsense")
    check_reachable("auto")  # left to Ray


@pytest.mark.parametrize("sandbox", [True, False])
def test_the_ray_sandbox_setting_reaches_the_pod_workers(tmp_path: object, sandbox: bool) -> None:
    # --no-ray-sandbox was only stored on the agent, while the pod workers read the agent's
    # WorkerDeps, built from this machine's bwrap: Ray pods ran under bubblewrap all the same
    from pathlib import Path

    from joblet.api.registry import Registry
    from joblet.client.local import LocalClient
    from joblet.clock import FakeClock
    from joblet.node.logs import LogStore
    from joblet.node.raynodes.nodes import RayNodeAgent
    from joblet.node.runtimes.registry import RUNTIMES, RuntimeOptions
    from joblet.store.memory import MemoryStore

    assert isinstance(tmp_path, Path)
    clock = FakeClock()
    logs = LogStore(tmp_path, clock)
    client = LocalClient(Registry(MemoryStore(), clock), logs)
    runtime = RUNTIMES["fake"].factory(RuntimeOptions(tmp_path, clock))
    agent = RayNodeAgent(client, "ray-0e7fe00dd252", tmp_path, clock, runtime, logs=logs,
                         ray_node={"NodeID": "0e7fe00dd252aaaabbbbcccc"}, sandbox=sandbox)
    assert agent.worker_deps.sandbox is sandbox
    assert agent.sandbox_available is sandbox
