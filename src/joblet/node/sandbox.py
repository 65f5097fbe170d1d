"""The bubblewrap command line that gives one container its private mount namespace.

Why: volumes must appear at their ``mountPath`` without touching the host's filesystem tree
and without a container image. bubblewrap (Debian's ``bwrap``, ~5 ms per start, measured in
research/runtime-experiments.md §2) builds a mount namespace from the host's root plus the
pod's binds. Only the mount namespace is private: the network (pods reach the API on
127.0.0.1), PIDs (kill by cgroup, ``/proc`` as on the host) and the rest of the host's root
(read-write, like an unsandboxed joblet pod) stay shared.

The catch is mount points that do not exist on the host: bwrap would ``mkdir`` them in the
bound host root. So for each such target the deepest existing ancestor is *shadowed*: a
tmpfs goes over it inside the sandbox and its host entries are bound back one by one (for the
root itself the entries are bound onto bwrap's own tmpfs root; for ``/dev`` bwrap's minimal
``--dev`` is used instead). The missing directories are then created in the tmpfs.

How it runs (see shim.c): the shim starts ``bwrap ... -- <shim> -E [-u UID] [-g GID] -- CMD``
with ``-I``: bwrap's monitor ignores SIGTERM, so a forwarded SIGTERM reaches the container
command, and ``-E`` resets the signals, drops to ``runAsUser``/``runAsGroup`` and execs the
command. bwrap is the container's main process; its exit status is the command's (a signal
becomes 128+n). The shim, the status file and the CRI log stay outside the sandbox.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from joblet.node.volumes import Mount

BWRAP = "bwrap"


@dataclass(frozen=True)
class HostEntry:
    name: str
    kind: str  # "dir" | "file" | "symlink"
    link: str = ""


Lister = Callable[[str], list[HostEntry]]


def list_host_dir(path: str) -> list[HostEntry]:
    out: list[HostEntry] = []
    try:
        entries = list(os.scandir(path))
    except OSError:
        return out
    for e in sorted(entries, key=lambda e: e.name):
        if e.is_symlink():
            out.append(HostEntry(e.name, "symlink", os.readlink(e.path)))
        elif e.is_dir(follow_symlinks=False):
            out.append(HostEntry(e.name, "dir"))
        else:
            out.append(HostEntry(e.name, "file"))
    return out


def deepest_existing(path: str, exists: Callable[[str], bool]) -> str:
    current = path
    while current != "/" and not exists(current):
        current = os.path.dirname(current)
    return current


def _under(path: str, parent: str) -> bool:
    return parent == "/" or path == parent or path.startswith(parent.rstrip("/") + "/")


def shadows(targets: list[str], exists: Callable[[str], bool]) -> list[str]:
    """Host directories that must be shadowed so that every target can be created in a tmpfs."""
    out: set[str] = set()
    for target in targets:
        if exists(target):
            continue
        # a target inside another mount is created inside that mount, not on the host
        if any(other != target and _under(target, other) and other != "/" for other in targets):
            continue
        out.add(deepest_existing(target, exists))
    return sorted(out, key=lambda p: (p.count("/") if p != "/" else 0, p))


def bwrap_argv(mounts: list[Mount], command: list[str], exec_helper: list[str], working_dir: str | None = None,
               termination_log: tuple[Path, str] | None = None, bwrap: str = BWRAP,
               resolve: Callable[[str], str] = os.path.realpath,
               exists: Callable[[str], bool] = os.path.lexists, lister: Lister = list_host_dir) -> list[str]:
    """``bwrap`` argv running ``exec_helper + ['--'] + command`` with the binds of ``mounts``."""
    binds = [(str(m.source), resolve(m.target), m.read_only) for m in mounts]
    if termination_log is not None:
        binds.append((str(termination_log[0]), resolve(termination_log[1]), False))
    binds.sort(key=lambda b: b[1].count("/"))
    targets = [b[1] for b in binds]
    shadowed = shadows(targets, exists)
    argv = [bwrap]
    if "/" in shadowed:
        argv += _rebind("/", lister("/"))
    else:
        argv += ["--bind", "/", "/"]
    for directory in shadowed:
        if directory == "/":
            continue
        if directory == "/dev":
            if "/" not in shadowed:  # else the root's rebinding already made a fresh /dev
                argv += ["--dev", "/dev"]
            continue
        argv += ["--tmpfs", directory, *_rebind(directory, lister(directory))]
    argv += missing_parents(targets, exists)
    for source, target, read_only in binds:
        argv += ["--ro-bind" if read_only else "--bind", source, target]
    if working_dir:
        argv += ["--chdir", working_dir]
    return [*argv, "--", *exec_helper, "--", *command]


def missing_parents(targets: list[str], exists: Callable[[str], bool]) -> list[str]:
    """``--perms 0755 --dir D`` for the missing ancestors of each target: bwrap would create
    them 0700, so a non-root container could not reach e.g. the service-account token mount."""
    wanted: set[str] = set()
    for target in targets:
        if any(other != target and _under(target, other) and other != "/" for other in targets):
            continue
        parent = os.path.dirname(target)
        while parent != "/" and not exists(parent):
            wanted.add(parent)
            parent = os.path.dirname(parent)
    argv: list[str] = []
    for directory in sorted(wanted, key=lambda p: p.count("/")):
        argv += ["--perms", "0755", "--dir", directory]
    return argv


def _rebind(directory: str, entries: list[HostEntry]) -> list[str]:
    argv: list[str] = []
    for e in entries:
        path = os.path.join(directory, e.name)
        if directory == "/" and e.name == "dev":
            argv += ["--dev", "/dev"]
        elif directory == "/" and e.name == "proc":
            argv += ["--bind", "/proc", "/proc"]
        elif e.kind == "symlink":
            argv += ["--symlink", e.link, path]
        else:
            argv += ["--bind", path, path]
    return argv


def bwrap_path() -> str | None:
    return shutil.which(BWRAP)
