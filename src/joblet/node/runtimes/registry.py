"""Every container runtime the node agent can use, as one table: name → how to check and build it.

Why: the control plane, ``joblet node`` and the CLI's ``--runtime`` choices all read this
table, so a new runtime is one module plus one row here (docs/architecture.md "Add a runtime").
Factories import their module lazily: a runtime's dependencies cost nothing until it is chosen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from joblet.clock import Clock
from joblet.node.logs import DEFAULT_MAX_FILES, DEFAULT_MAX_SIZE
from joblet.node.runtimes.base import Runtime


@dataclass(frozen=True)
class RuntimeOptions:
    """What any runtime may need from the process that hosts the agent."""

    data_dir: Path
    clock: Clock
    log_max_bytes: int = DEFAULT_MAX_SIZE
    log_max_files: int = DEFAULT_MAX_FILES
    #: directories a sandboxed container must not see (None: the runtime's default, the data dir)
    hidden: list[Path] | None = None
    #: the ray runtime: the cluster (``--ray-address``) and the Ray node the containers run on
    #: (None: the node this process's Ray driver runs on)
    ray_address: str | None = None
    ray_node_id: str | None = None


@dataclass(frozen=True)
class RuntimeKind:
    name: str
    help: str
    factory: Callable[[RuntimeOptions], Runtime]
    #: (True, "") when the runtime can run here; else (False, why and how to fix it)
    usable: Callable[[], tuple[bool, str]]
    #: can be the runtime of joblet's own node (``--runtime``); ray runs on Ray's nodes instead
    local: bool = True


class UnknownRuntime(ValueError):
    pass


def _process(o: RuntimeOptions) -> Runtime:
    from joblet.node.runtimes.process import ProcessRuntime

    return ProcessRuntime(o.data_dir, o.clock, log_max_bytes=o.log_max_bytes, log_max_files=o.log_max_files,
                          hidden=o.hidden)


def _podman(o: RuntimeOptions) -> Runtime:
    from joblet.node.runtimes.podman import PodmanRuntime

    return PodmanRuntime(o.data_dir, o.clock)


def _podman_usable() -> tuple[bool, str]:
    from joblet.node.runtimes.podman import podman_usable

    why = podman_usable()
    return (why is None, why or "")


def _fake(o: RuntimeOptions) -> Runtime:
    from joblet.node.runtimes.fake import FakeRuntime

    return FakeRuntime(o.clock)


def _ray(o: RuntimeOptions) -> Runtime:
    if not o.ray_address:
        raise RuntimeError("runtime ray: no --ray-address (pods reach Ray through joblet server/node --ray-address)")
    import ray
    from joblet.node.raynodes.nodes import connect
    from joblet.node.raynodes.runtime import RayRuntime

    connect(o.ray_address)
    node_id = o.ray_node_id or ray.get_runtime_context().get_node_id()
    data_dir = o.data_dir
    return RayRuntime(data_dir, o.clock, node_id, volume_root=lambda uid: data_dir / "pods" / uid / "volumes")


def _ray_usable() -> tuple[bool, str]:
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        return (False, "ray not installed (pip install 'joblet[ray]')")
    return (True, "")


def _always() -> tuple[bool, str]:
    return (True, "")


RUNTIMES: dict[str, RuntimeKind] = {kind.name: kind for kind in (
    RuntimeKind("process", "each container a real process tree under the C shim (bubblewrap sandbox when "
                "installed); images are not pulled", _process, _always),
    RuntimeKind("podman", "OCI containers from local images (build localhost/busybox with "
                "scripts/make-busybox-image.sh --data-dir DIR)", _podman, _podman_usable),
    RuntimeKind("fake", "in memory, no process: sh -c scripts of echo/printf/exit/sleep (for tests)", _fake, _always),
    RuntimeKind("ray", "each container a process on a Ray node, under that node's detached supervisor actor; "
                "used through --ray-address (one Node per Ray node), not as --runtime", _ray, _ray_usable,
                local=False),
)}


def runtime_kind(name: str) -> RuntimeKind:
    try:
        return RUNTIMES[name]
    except KeyError:
        raise UnknownRuntime(f"unknown runtime {name!r} (one of: {', '.join(RUNTIMES)})") from None


def open_runtime(name: str, options: RuntimeOptions) -> Runtime:
    """The runtime called ``name``, or UnknownRuntime / RuntimeError(why) when it cannot run here."""
    kind = runtime_kind(name)
    ok, why = kind.usable()
    if not ok:
        raise RuntimeError(f"runtime {name}: {why}")
    return kind.factory(options)


def runtimes_help() -> str:
    return "; ".join(f"{kind.name}: {kind.help}" for kind in RUNTIMES.values())
