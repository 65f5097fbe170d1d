"""The bubblewrap command line that contains one container.

Why: a pod is untrusted code running on the machine that holds the API server's keys. Every
container therefore runs under bubblewrap (Debian's ``bwrap``, a few ms per start, measured in
research/runtime-experiments.md §2 and bench/isolation.py) with:

* its own PID namespace (``--unshare-pid`` + a fresh ``--proc /proc``): it sees and signals only
  its own processes, not the server, the agent or other pods;
* its own IPC namespace (``--unshare-ipc``) and a private ``/dev`` (bwrap's minimal ``--dev``
  with null, zero, random, tty... and a private 1777 ``/dev/shm``). The host's ``/dev`` is
  never bound: ``--bind / /`` remounts every submount ``nodev``, so the host's ``/dev/null``
  would answer EACCES ("cannot create /dev/null: Permission denied");
* the data dir (and any other ``hidden`` path) covered by an empty tmpfs, so the API server's
  ``pki/``, ``tokens.json``, ``kubeconfig``, ``joblet.db*``, the log store and other pods'
  volumes are out of sight; the pod's own volumes are bound back at their ``mountPath``
  (bwrap takes bind sources from the outer root, so hiding first does not hide the sources);
* capabilities: ``--cap-drop ALL`` and only ``capabilities`` kept (the runtime-default set of
  container runtimes for root, nothing for a non-root user; see :func:`effective_capabilities`).
  bwrap always sets ``no_new_privs``.

What is still shared: the network (pods reach the API on 127.0.0.1), the rest of the host's
root file system (read-write, with the permissions of the container's uid) and the uid itself
unless ``runAsUser`` is set. A root pod can still do what root with the default capabilities
can do to host files; that is what Pod Security admission is for.

Mount points that do not exist on the host: bwrap would ``mkdir`` them in the bound host
root. So for each such target the deepest existing ancestor is *shadowed*: a tmpfs goes over
it inside the sandbox, the host directory is bound once at ``<dir>/.joblet-host`` and each of
its entries is a relative symlink into that bind (``/run/lock -> .joblet-host/lock``: the same
host objects, read-write as before; one bind per entry cost ~0.3 ms each, see
:func:`_link_back`). For the root itself the entries are bound one by one onto bwrap's own
tmpfs root. The missing directories are then created in the tmpfs.

How it runs (see shim.c): the shim starts ``bwrap ... -- <shim> -E [-u UID] [-g GID] -- CMD``
with ``-I``: bwrap's monitor ignores SIGTERM, so a forwarded SIGTERM reaches the container
command, and ``-E`` resets the signals, drops to ``runAsUser``/``runAsGroup`` and execs the
command (a command that cannot be exec'd is reported back over a pipe the shim passes
through bwrap, so it is a ``StartError`` as it is without the sandbox). bwrap is the
container's main process; its exit status is the command's (a signal becomes 128+n); when the
command exits, the PID namespace ends and the kernel kills whatever it left behind. The shim, the status file and the CRI log stay outside the sandbox.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
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


# The capabilities container runtimes (containerd, CRI-O, Docker) give a root container by default.
DEFAULT_CAPABILITIES = ("CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
                        "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE")
KNOWN_CAPABILITIES = frozenset((
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
    "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
    "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
    "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
    "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
    "CHECKPOINT_RESTORE"))


def effective_capabilities(security_context: dict[str, object] | None, uid: int) -> tuple[str, ...]:
    """The capabilities a container keeps: the runtime default set for root, plus
    ``securityContext.capabilities.add``, minus ``drop`` (``ALL`` drops the defaults); none for a
    non-root uid (Kubernetes sets no ambient capabilities, so a non-root process has none)."""
    if uid != 0:
        return ()
    caps = (security_context or {}).get("capabilities")
    caps = caps if isinstance(caps, dict) else {}

    def names(key: str) -> set[str]:
        return {str(c).upper().removeprefix("CAP_") for c in caps.get(key) or []}

    drop, add = names("drop"), names("add")
    keep = set() if "ALL" in drop else set(DEFAULT_CAPABILITIES) - drop
    keep |= KNOWN_CAPABILITIES if "ALL" in add else add & KNOWN_CAPABILITIES
    return tuple(sorted(keep))


def bwrap_argv(mounts: list[Mount], command: list[str], exec_helper: list[str], working_dir: str | None = None,
               termination_log: tuple[Path, str] | None = None, bwrap: str = BWRAP,
               resolve: Callable[[str], str] = os.path.realpath,
               exists: Callable[[str], bool] = os.path.lexists, lister: Lister = list_host_dir,
               hidden: Sequence[str] = (), capabilities: Sequence[str] | None = None) -> list[str]:
    """``bwrap`` argv running ``exec_helper + ['--'] + command`` contained, with the binds of ``mounts``.

    ``hidden``: host directories covered by an empty tmpfs (the data dir); ``capabilities``: the
    only ones kept (``None``: bwrap's default, for an unprivileged agent that cannot set them)."""
    binds = [(str(m.source), resolve(m.target), m.read_only) for m in mounts]
    if termination_log is not None:
        binds.append((str(termination_log[0]), resolve(termination_log[1]), False))
    binds.sort(key=lambda b: b[1].count("/"))
    targets = [b[1] for b in binds]
    shadowed = [d for d in shadows(targets, exists) if not _under(d, "/dev") and not _under(d, "/proc")]
    argv = [bwrap, "--unshare-pid", "--unshare-ipc"]
    if capabilities is not None:
        argv += ["--cap-drop", "ALL"]
        for cap in capabilities:
            argv += ["--cap-add", f"CAP_{cap}"]
    if "/" in shadowed:
        argv += _rebind("/", lister("/"))
    else:
        argv += ["--bind", "/", "/"]
    argv += ["--dev", "/dev", "--perms", "01777", "--tmpfs", "/dev/shm", "--proc", "/proc"]
    for directory in shadowed:
        if directory != "/":
            argv += ["--tmpfs", directory, *_link_back(directory, lister(directory))]
    for directory in hidden:
        argv += ["--tmpfs", resolve(directory)]
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


#: where a shadowed directory (other than ``/``) shows the host's copy of itself, see :func:`_link_back`
HOST_VIEW = ".joblet-host"


def _link_back(directory: str, entries: list[HostEntry]) -> list[str]:
    """The host's entries of a shadowed ``directory`` on its tmpfs: the host directory bound once
    (recursively, with whatever is mounted below it) at ``directory/.joblet-host``, and each entry
    a relative symlink into it (``run/lock -> .joblet-host/lock``; a host symlink stays itself).

    One bind, not one per entry: bubblewrap reads the whole mount table after every bind, and
    the token's ``/run`` took 12 of them, ~3.4 ms of each container's start here (measured with
    the agent's own bwrap command line, 30 runs). The entries reach the same host objects,
    read-write as before; they are symlinks now, and ``rm -r`` of one removes the link, not
    the host's files. Relative links: bwrap follows them inside the new root while it mounts."""
    names = {e.name for e in entries}
    view = HOST_VIEW
    while view in names:
        view += "_"
    argv = ["--bind", directory, os.path.join(directory, view)]
    for e in entries:
        argv += ["--symlink", e.link if e.kind == "symlink" else f"{view}/{e.name}", os.path.join(directory, e.name)]
    return argv


def _rebind(directory: str, entries: list[HostEntry]) -> list[str]:
    argv: list[str] = []
    for e in entries:
        path = os.path.join(directory, e.name)
        if directory == "/" and e.name in ("dev", "proc"):
            continue  # bwrap's own /dev and /proc follow
        if e.kind == "symlink":
            argv += ["--symlink", e.link, path]
        else:
            argv += ["--bind", path, path]
    return argv


def bwrap_path() -> str | None:
    return shutil.which(BWRAP)
