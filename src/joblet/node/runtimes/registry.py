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


@dataclass(frozen=True)
class RuntimeKind:
    name: str
    help: str
    factory: Callable[[RuntimeOptions], Runtime]
    #: (True, "") when the runtime can run here; else (False, why and how to fix it)
    usable: Callable[[], tuple[bool, str]]


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


def _always() -> tuple[bool, str]:
    return (True, "")


RUNTIMES: dict[str, RuntimeKind] = {kind.name: kind for kind in (
    RuntimeKind("process", "each container a real process tree under the C shim (bubblewrap sandbox when "
                "installed); images are not pulled", _process, _always),
    RuntimeKind("podman", "OCI containers from local images (build localhost/busybox with "
                "scripts/make-busybox-image.sh --data-dir DIR)", _podman, _podman_usable),
    RuntimeKind("fake", "in memory, no process: sh -c scripts of echo/printf/exit/sleep (for tests)", _fake, _always),
    # the Ray runtime joins here: RuntimeKind("ray", ..., _ray, _ray_usable)
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
