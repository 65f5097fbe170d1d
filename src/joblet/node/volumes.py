"""Pod volumes on the host: what each volume holds, where it lives, and what each container mounts.

Why: Kubernetes users put configuration, credentials and scratch space into pods through
volumes; joblet has no container image, so each volume is a host directory (or file) under
the pod's runtime dir ``<data_dir>/pods/<uid>/volumes/<name>`` that the process runtime binds
at the container's ``mountPath`` in a private mount namespace (bubblewrap, see
:mod:`joblet.node.sandbox`). The contents are decided by pure functions (``*_files``: relative
path → bytes and mode) and written by one small atomic writer, the kubelet's layout
(``..<stamp>/`` holding the files, ``..data`` → it, and one symlink per top-level name), so a
rewrite at a container restart is atomic for readers.

Supported: ``emptyDir`` (a directory that survives container restarts; ``medium: Memory`` is a
tmpfs mounted on the host with ``size=sizeLimit``; a disk ``sizeLimit`` is not enforced),
``hostPath`` (type checks and ``DirectoryOrCreate``/``FileOrCreate``), ``configMap``, ``secret``,
``downwardAPI``, ``projected`` (secret, configMap, downwardAPI, serviceAccountToken sources).
The ``kube-api-access-*`` volume is added by the API's ServiceAccount admission; its
``serviceAccountToken`` source is a real bound token from the node agent's token manager
(:mod:`joblet.node.tokens`), owned by the pod's user (mode 0600) when every container runs as
the same ``runAsUser``, as the kubelet does; ``kube-root-ca.crt`` falls back to the agent's own
CA bundle while the ConfigMap does not exist (yet).

Errors are :class:`VolumeError` with the kubelet's messages (reported as a ``FailedMount``
event while the container waits in ``ContainerCreating``); the agent retries with backoff.

One module (~590 lines): every volume type's host side (what it holds, where it lives, how a
container mounts it) in one table-like place.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import errno
import functools
import os
import re
import secrets
import shutil
import stat
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joblet.api.serviceaccount import ROOT_CA_CONFIGMAP
from joblet.node.quantity import parse_quantity
from joblet.node.tokens import TokenError

Obj = dict[str, Any]
Files = dict[str, tuple[bytes, int]]
Fetch = Callable[[str, str, str], Awaitable[Obj | None]]  # (resource, namespace, name) → object or None
Owner = tuple[int, int]  # (uid, gid) owning a pod's volume files
TokenSource = Callable[[Obj, Obj], Awaitable[str]]  # (pod, serviceAccountToken projection) → token
Owners = dict[str, tuple[int, int]]  # relative path → (uid, gid), -1 keeps

DEFAULT_MODE = 0o644
PLACEHOLDER_CA = b"# joblet: the API server speaks plain HTTP on loopback; there is no CA certificate.\n"


class VolumeError(Exception):
    """A volume cannot be set up (yet): the container waits, the agent retries."""


@dataclass(frozen=True)
class Mount:
    """One bind of a host path into a container."""

    source: Path
    target: str
    read_only: bool = False


@dataclass(frozen=True)
class TokenContext:
    """Where service-account tokens come from, and the CA bundle used while the
    ``kube-root-ca.crt`` ConfigMap is missing."""

    request: TokenSource | None = None
    ca_cert: bytes = PLACEHOLDER_CA


# -- pure: what a projected volume holds ------------------------------------------------------------


def _mode(item: Obj, default: int) -> int:
    value = item.get("mode")
    return int(value) if value is not None else default


def object_data(kind: str, obj: Obj) -> dict[str, bytes]:
    """The key → bytes of a Secret (``data`` base64, ``stringData``) or ConfigMap (``data``, ``binaryData``)."""
    out: dict[str, bytes] = {}
    if kind == "secrets":
        out.update({k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()})
        out.update({k: str(v).encode() for k, v in (obj.get("stringData") or {}).items()})
    else:
        out.update({k: str(v).encode() for k, v in (obj.get("data") or {}).items()})
        out.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    return out


def keyed_files(kind: str, name: str, obj: Obj | None, items: list[Obj] | None, optional: bool,
                default_mode: int) -> Files:
    """Files of a configMap/secret volume (or projection); ``obj`` None means it does not exist."""
    singular = "configmap" if kind == "configmaps" else "secret"
    if obj is None:
        if optional:
            return {}
        raise VolumeError(f'{singular} "{name}" not found')
    data = object_data(kind, obj)
    if not items:
        return {key: (value, default_mode) for key, value in data.items()}
    files: Files = {}
    for item in items:
        key = str(item.get("key"))
        if key not in data:
            if optional:
                continue
            raise VolumeError(f"{singular} references non-existent config key: {key}")
        files[str(item.get("path") or key)] = (data[key], _mode(item, default_mode))
    return files


def format_map(values: dict[str, Any]) -> str:
    """labels/annotations as the downward API writes them: ``key="value"`` lines, sorted."""
    return "\n".join(f'{k}="{_go_quote_body(str(v))}"' for k, v in sorted(values.items()))


def _go_quote_body(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def downward_field(pod: Obj, path: str, node_name: str, pod_ip: str) -> str:
    """A pod field as ``fieldRef`` reads it (env and downwardAPI volumes)."""
    md = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    m = re.match(r"^metadata\.(labels|annotations)\['(.*)'\]$", path)
    if m:
        return str((md.get(m.group(1)) or {}).get(m.group(2), ""))
    if path in ("metadata.labels", "metadata.annotations"):
        return format_map(md.get(path.split(".")[1]) or {})
    simple = {
        "metadata.name": md.get("name"), "metadata.namespace": md.get("namespace"),
        "metadata.uid": md.get("uid"), "spec.nodeName": spec.get("nodeName") or node_name,
        "spec.serviceAccountName": spec.get("serviceAccountName") or "default",
        "status.podIP": pod_ip, "status.podIPs": pod_ip, "status.hostIP": pod_ip, "status.hostIPs": pod_ip,
    }
    value = simple.get(path)
    return "" if value is None else str(value)


def downward_files(pod: Obj, items: list[Obj], node_name: str, pod_ip: str, default_mode: int,
                   resource_value: Callable[[str, Obj], str]) -> Files:
    files: Files = {}
    for item in items:
        if "fieldRef" in item:
            value = downward_field(pod, str(item["fieldRef"].get("fieldPath")), node_name, pod_ip)
        elif "resourceFieldRef" in item:
            ref = item["resourceFieldRef"]
            value = resource_value(str(ref.get("containerName") or ""), ref)
        else:
            continue
        files[str(item["path"])] = (value.encode(), _mode(item, default_mode))
    return files


def fs_user(pod: Obj) -> int | None:
    """The kubelet's ``FsUserFrom``: the one effective ``runAsUser`` of every container, else None."""
    spec = pod.get("spec") or {}
    pod_user = (spec.get("securityContext") or {}).get("runAsUser")
    users = set()
    for ctr in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        user = (ctr.get("securityContext") or {}).get("runAsUser")
        user = pod_user if user is None else user
        if user is None:
            return None
        users.add(int(user))
    return users.pop() if len(users) == 1 else None


def token_owner(pod: Obj) -> tuple[int, int] | None:
    """Owner (uid, gid; -1 keeps) of projected token files: the fs user and ``fsGroup``, if any."""
    user = fs_user(pod)
    group = ((pod.get("spec") or {}).get("securityContext") or {}).get("fsGroup")
    if user is None and group is None:
        return None
    return (-1 if user is None else user, -1 if group is None else int(group))


def token_volume_names(pod: Obj) -> set[str]:
    """The projected volumes that hold a ``serviceAccountToken`` (rewritten when it rotates)."""
    return {str(v.get("name")) for v in (pod.get("spec") or {}).get("volumes") or []
            if any("serviceAccountToken" in src for src in (v.get("projected") or {}).get("sources") or [])}


# -- pure: which host path each container mounts -----------------------------------------------------


def pod_volumes(pod: Obj) -> list[Obj]:
    return list((pod.get("spec") or {}).get("volumes") or [])


def container_volume_mounts(pod: Obj, container: Obj) -> list[Obj]:
    return list(container.get("volumeMounts") or [])


def expand_subpath(text: str, env: dict[str, str]) -> str:
    """``subPathExpr``: ``$(VAR)`` from the container's env; undefined names expand to ''."""
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)", lambda m: env.get(m.group(1), ""), text)


class SubPathError(VolumeError):
    """A subPath that escapes its volume (the kubelet reports it as CreateContainerConfigError)."""


Pin = Callable[[int], Path]  # an open O_PATH fd → a path that names exactly that object


def _close_and_name(fd: int, resolved: Path) -> Path:
    os.close(fd)
    return resolved


def container_mounts(volume_mounts: list[Obj], volume_paths: dict[str, Path], read_only_volumes: set[str],
                     env: dict[str, str], pin: Pin | None = None, container: str = "") -> list[Mount]:
    """The binds of one container, from its ``volumeMounts`` and the prepared volume paths.

    A ``subPath`` is opened with :func:`open_sub_path` (never following a symlink out of the
    volume, CVE-2017-1002101); ``pin`` turns the open fd into the bind source (the agent's
    ``/proc/<pid>/fd/N``, so a symlink swapped in after the check cannot redirect the bind).
    Without ``pin`` the checked real path is used."""
    out: list[Mount] = []
    for vm in volume_mounts:
        name = str(vm.get("name"))
        if name not in volume_paths:
            raise VolumeError(f'unable to find volume "{name}"')
        source = volume_paths[name]
        sub = str(vm.get("subPath") or "") or expand_subpath(str(vm.get("subPathExpr") or ""), env)
        if sub:
            try:
                fd, resolved = open_sub_path(source, sub, create=name not in read_only_volumes)
            except OSError as exc:
                raise SubPathError(f'failed to prepare subPath for volumeMount "{name}" of container '
                                   f'"{container}": {exc.strerror or exc}') from exc
            source = pin(fd) if pin is not None else _close_and_name(fd, resolved)
        read_only = bool(vm.get("readOnly")) or name in read_only_volumes
        out.append(Mount(source, str(vm["mountPath"]), read_only))
    return out


def open_sub_path(volume: Path, sub: str, create: bool) -> tuple[int, Path]:
    """An ``O_PATH`` fd of ``volume/sub`` and its real path, refusing anything outside the volume.

    Symlinks inside the volume are resolved first (a configMap key is a symlink into ``..data``)
    and the result must stay under the volume; then every component of the resolved path is
    opened with ``O_NOFOLLOW`` from the volume's fd, so a symlink planted meanwhile fails with
    ELOOP/ENOTDIR instead of being followed. Missing directories are created (0777, like the
    kubelet) when the volume is writable."""
    parts = [p for p in sub.split("/") if p not in ("", ".")]
    if sub.startswith("/") or ".." in parts:
        raise OSError(errno.EINVAL, f"subPath {sub!r} must be a relative path without '..'")
    root = os.path.realpath(volume)
    if create:
        _make_dirs_beneath(root, parts)
    resolved = os.path.realpath(os.path.join(root, *parts))
    if resolved != root and not resolved.startswith(root.rstrip("/") + "/"):
        raise OSError(errno.EACCES, f"subpath {str(volume / sub)!r} not within volume path {str(volume)!r}")
    rel = [p for p in resolved[len(root):].split("/") if p]
    fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for i, part in enumerate(rel):
            last = i == len(rel) - 1
            flags = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC | (0 if last else os.O_DIRECTORY)
            nxt = os.open(part, flags, dir_fd=fd)
            os.close(fd)
            fd = nxt
        if stat.S_ISLNK(os.fstat(fd).st_mode):
            raise OSError(errno.ELOOP, "subPath is a symlink")
    except BaseException:
        os.close(fd)
        raise
    return fd, Path(resolved)


def _make_dirs_beneath(root: str, parts: list[str]) -> None:
    """mkdir -p of ``parts`` under ``root`` without following symlinks (an existing symlink stops it)."""
    fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts:
            created = True
            try:
                os.mkdir(part, 0o777, dir_fd=fd)
            except FileExistsError:
                created = False
            try:
                nxt = os.open(part, os.O_RDONLY | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=fd)
            except OSError:
                return  # a file or a symlink: leave it to the resolution check
            if created:
                os.fchmod(nxt, 0o777)  # not the umask's 0755: any container user may write there
            os.close(fd)
            fd = nxt
    finally:
        os.close(fd)


# -- I/O: preparing volumes on the host ---------------------------------------------------------------


class VolumeManager:
    """Prepares one pod's volumes under ``root`` (``<pod dir>/volumes``)."""

    def __init__(self, fetch: Fetch, node_name: str, pod_ip: str, token: TokenContext,
                 resource_value: Callable[[Obj, str, Obj], str]) -> None:
        self.fetch = fetch
        self.node_name = node_name
        self.pod_ip = pod_ip
        self.token = token
        self.resource_value = resource_value

    async def prepare(self, pod: Obj, root: Path, only: set[str] | None = None
                      ) -> tuple[dict[str, Path], set[str]]:
        """Create/refresh every volume (or those in ``only``); returns name → host path and the
        names that are read-only.

        ``root`` is 0700 and the agent's: other host users cannot reach the pod's volumes
        (emptyDirs are 0777 inside, as upstream; secret/projected files are the pod user's). Any
        OSError becomes a VolumeError (a ``FailedMount`` event, retried with backoff)."""
        paths: dict[str, Path] = {}
        read_only: set[str] = set()
        owner = volume_owner(pod, os.getuid())
        for volume in pod_volumes(pod):
            name = str(volume["name"])
            if only is not None and name not in only:
                continue
            try:
                if "hostPath" in volume:
                    paths[name] = check_host_path(volume["hostPath"])
                    continue
                _private_dir(root)
                target = root / name
                if "emptyDir" in volume:
                    prepare_empty_dir(target, volume["emptyDir"] or {})
                else:
                    owners: Owners = {}
                    files = await self.files(pod, volume, owners)
                    if files is None:
                        target.mkdir(parents=True, exist_ok=True, mode=0o777)
                        continue
                    if "secret" in volume or "projected" in volume:
                        prepare_memory_dir(target, owner)
                    write_atomic(target, files, owner, owners)
                    read_only.add(name)
                paths[name] = target
            except OSError as exc:
                raise VolumeError(f'for volume "{name}" : {exc}') from exc
        return paths, read_only

    async def files(self, pod: Obj, volume: Obj, owners: Owners | None = None) -> Files | None:
        ns = str((pod.get("metadata") or {}).get("namespace") or "default")
        if "configMap" in volume or "secret" in volume:
            kind, src = ("configmaps", volume["configMap"]) if "configMap" in volume else ("secrets", volume["secret"])
            name = str(src.get("name") or src.get("secretName") or "")
            obj = await self.fetch(kind, ns, name)
            return keyed_files(kind, name, obj, src.get("items"), bool(src.get("optional")),
                               int(src.get("defaultMode", DEFAULT_MODE)))
        if "downwardAPI" in volume:
            src = volume["downwardAPI"]
            return downward_files(pod, src.get("items") or [], self.node_name, self.pod_ip,
                                  int(src.get("defaultMode", DEFAULT_MODE)), self._resource(pod))
        if "projected" in volume:
            src = volume["projected"]
            mode = int(src.get("defaultMode", DEFAULT_MODE))
            files: Files = {}
            for source in src.get("sources") or []:
                files.update(await self._projection(pod, ns, source, mode, owners))
            return files
        return None  # an unsupported type (e.g. persistentVolumeClaim): an empty directory

    async def _projection(self, pod: Obj, ns: str, source: Obj, mode: int, owners: Owners | None = None) -> Files:
        for key, kind in (("configMap", "configmaps"), ("secret", "secrets")):
            if key in source:
                src = source[key]
                name = str(src.get("name") or "")
                obj = await self.fetch(kind, ns, name)
                if obj is None and kind == "configmaps" and name == ROOT_CA_CONFIGMAP:
                    obj = {"data": {"ca.crt": self.token.ca_cert.decode()}}  # not published (yet)
                return keyed_files(kind, name, obj, src.get("items"), bool(src.get("optional")), mode)
        if "downwardAPI" in source:
            return downward_files(pod, source["downwardAPI"].get("items") or [], self.node_name, self.pod_ip,
                                  mode, self._resource(pod))
        if "serviceAccountToken" in source:
            src = source["serviceAccountToken"]
            if self.token.request is None:
                raise VolumeError("failed to fetch token: this node agent cannot request service account tokens")
            try:
                token = await self.token.request(pod, src)
            except TokenError as err:
                raise VolumeError(str(err)) from None
            path = str(src.get("path") or "token")
            owner = token_owner(pod)
            if owner is not None:
                mode = 0o600 if owner[0] != -1 else 0o640
                if owners is not None:
                    owners[path] = owner
            return {path: (token.encode(), mode)}
        return {}

    def _resource(self, pod: Obj) -> Callable[[str, Obj], str]:
        return lambda container, ref: self.resource_value(pod, container, ref)


def _private_dir(path: Path) -> None:
    """The pod's volumes dir: 0700 and the agent's. bwrap binds each volume as root, so nobody
    else (not even the pod's uid, which could swap a volume for a symlink) needs to enter it."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)


def check_host_path(src: Obj) -> Path:
    """Apply the hostPath ``type`` check (creating for the ``*OrCreate`` types); the kubelet's messages."""
    path = Path(str(src.get("path")))
    kind = str(src.get("type") or "")
    exists = os.path.lexists(path)
    if kind == "DirectoryOrCreate":
        if not exists:
            path.mkdir(parents=True, mode=0o755)
        elif not path.is_dir():
            raise VolumeError(f"hostPath type check failed: {path} is not a directory")
    elif kind == "FileOrCreate":
        if not exists:
            if not path.parent.is_dir():
                path.parent.mkdir(parents=True, mode=0o755)
            fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o644)
            os.close(fd)
        elif not path.is_file():
            raise VolumeError(f"hostPath type check failed: {path} is not a file")
    elif kind:
        checks: dict[str, tuple[Callable[[int], bool], str]] = {
            "Directory": (stat.S_ISDIR, "directory"), "File": (stat.S_ISREG, "file"),
            "Socket": (stat.S_ISSOCK, "socket"), "CharDevice": (stat.S_ISCHR, "character device"),
            "BlockDevice": (stat.S_ISBLK, "block device"),
        }
        test, what = checks.get(kind, (lambda _: True, kind))
        if not exists:
            raise VolumeError(f"hostPath type check failed: {path} is not a {what}")
        if not test(os.stat(path).st_mode):
            raise VolumeError(f"hostPath type check failed: {path} is not a {what}")
    return path


def prepare_empty_dir(target: Path, src: Obj) -> None:
    if target.is_dir() and (src.get("medium") != "Memory" or is_mount_point(target)):
        return
    target.mkdir(parents=True, exist_ok=True)
    os.chmod(target, 0o777)
    if src.get("medium") == "Memory":
        options = "mode=0777"
        if src.get("sizeLimit"):
            options += f",size={int(parse_quantity(src['sizeLimit']))}"
        mount_tmpfs(target, options, "emptyDir")


_MS_NOSUID, _MS_NODEV, _MNT_DETACH = 0x2, 0x4, 0x2
_MOUNT_FLAGS = {"nosuid": _MS_NOSUID, "nodev": _MS_NODEV}


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def tmpfs_flags(options: str) -> tuple[int, str]:
    """``mount -o`` options split as mount(2) takes them: flag bits and the tmpfs data string."""
    flags, data = 0, []
    for option in options.split(","):
        if option in _MOUNT_FLAGS:
            flags |= _MOUNT_FLAGS[option]
        elif option:
            data.append(option)
    return flags, ",".join(data)


def mount_tmpfs(target: Path, options: str, what: str) -> None:
    """mount(2) directly: forking ``mount(8)`` cost ~3 ms of the agent's CPU per pod."""
    flags, data = tmpfs_flags(options)
    if _libc().mount(b"tmpfs", os.fsencode(target), b"tmpfs", ctypes.c_ulong(flags), data.encode()) != 0:
        err = ctypes.get_errno()
        raise VolumeError(f"mount of tmpfs {what} failed: {os.strerror(err)}")


def prepare_memory_dir(target: Path, owner: Owner) -> None:
    """A per-pod tmpfs for credentials (secret and projected volumes), as the kubelet does: the
    files never reach the disk and disappear with the pod. Only root can mount; otherwise a
    plain directory under the pod's 0700 volume dir."""
    try:
        target.mkdir(parents=True)
        fresh = True  # a directory made just now is no mount point: skip reading mountinfo
    except FileExistsError:
        fresh = False
    if os.getuid() == 0 and (fresh or not is_mount_point(target)):
        mount_tmpfs(target, f"mode=0755,uid={owner[0]},gid={owner[1]},nodev,nosuid", "secret volume")


def volume_owner(pod: Obj, agent_uid: int) -> Owner:
    """Who owns a pod's volume files: the pod's ``runAsUser`` (else every container's common
    one, else the agent's uid) and ``fsGroup``/``runAsGroup`` (else the uid's own group 0 / agent gid)."""
    spec = pod.get("spec") or {}
    psc = spec.get("securityContext") or {}
    uid = psc.get("runAsUser")
    if uid is None:
        users = {(c.get("securityContext") or {}).get("runAsUser")
                 for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]}
        uid = users.pop() if len(users) == 1 else None
    gid = psc.get("fsGroup") if psc.get("fsGroup") is not None else psc.get("runAsGroup")
    if uid is None:
        return agent_uid, os.getgid() if gid is None else int(gid)
    return int(uid), 0 if gid is None else int(gid)


def is_mount_point(path: Path) -> bool:
    return str(path.resolve()) in mounts_under(path)


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below ``path`` (deepest first), from /proc/self/mountinfo."""
    base = str(path.resolve())
    found: list[str] = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = line.split()[4].replace("\\040", " ")
            if point == base or point.startswith(base + "/"):
                found.append(point)
    return sorted(found, key=len, reverse=True)


def unmount_all(path: Path) -> None:
    """Unmount (lazily) every mount below ``path``: memory emptyDirs before their dir is removed."""
    for point in mounts_under(path):
        _libc().umount2(os.fsencode(point), _MNT_DETACH)  # umount(2): no fork of umount(8) per pod


def file_parts(rel: str) -> list[str]:
    """The components of a volume item path, re-checked on the node as the API server checks them
    (``ValidateLocalNonReservedPath``): relative, no ``..`` element, not starting with ``..``."""
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if not parts or rel.startswith("/") or ".." in parts or parts[0].startswith(".."):
        raise VolumeError(f"invalid file path {rel!r}: must be a relative path without '..'")
    return parts


def _chown(fd: int, owner: Owner | None) -> None:
    if owner is not None and os.getuid() == 0:
        os.fchown(fd, owner[0], owner[1])


def _write_beneath(dir_fd: int, parts: list[str], data: bytes, mode: int, owner: Owner | None) -> None:
    """Create ``parts`` under ``dir_fd`` (a fresh stamp dir) without following any symlink."""
    fd = os.dup(dir_fd)
    try:
        for part in parts[:-1]:
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, 0o755, dir_fd=fd)
            nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            os.close(fd)
            fd = nxt
            _chown(fd, owner)
        out = os.open(parts[-1], os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                      dir_fd=fd)
        try:
            _chown(out, owner)
            os.fchmod(out, mode & 0o7777)
            os.write(out, data)  # one write: tmpfs and regular files take it whole
        finally:
            os.close(out)
    finally:
        os.close(fd)


def write_atomic(target: Path, files: Files, owner: Owner | None = None, owners: Owners | None = None) -> None:
    """The kubelet's atomic writer: files in a fresh ``..<stamp>`` dir, then swap ``..data``.

    Every item path is re-checked (:func:`file_parts`) and written beneath the stamp dir with
    ``O_NOFOLLOW``, so nothing lands outside the volume whatever the API let through.
    ``owner`` (uid, gid) owns the files (the pod's user); ``owners`` overrides it per file
    (a non-root pod's token, owned by its fsGroup user)."""
    checked = {rel: file_parts(rel) for rel in files}
    target.mkdir(parents=True, exist_ok=True)
    os.chmod(target, 0o755)
    # The kubelet names these by time; any unique name works (and reads no wall clock).
    stamp = target / f"..{secrets.token_hex(8)}"
    stamp.mkdir()
    stamp_fd = os.open(stamp, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        os.fchmod(stamp_fd, 0o755)
        _chown(stamp_fd, owner)
        for rel, (data, mode) in files.items():
            _write_beneath(stamp_fd, checked[rel], data, mode, (owners or {}).get(rel, owner))
    finally:
        os.close(stamp_fd)
    link = target / "..data"
    tmp_link = target / "..data_tmp"
    with contextlib.suppress(FileNotFoundError):
        tmp_link.unlink()
    tmp_link.symlink_to(stamp.name)
    old = os.readlink(link) if link.is_symlink() else None
    os.replace(tmp_link, link)
    tops = {parts[0] for parts in checked.values()}
    for top in tops:
        entry = target / top
        if not entry.is_symlink():
            entry.symlink_to(f"..data/{top}")
    for entry in target.iterdir():
        if entry.name.startswith(".."):
            if entry.name not in ("..data", stamp.name) and entry.name == old:
                shutil.rmtree(entry, ignore_errors=True)
        elif entry.is_symlink() and entry.name not in tops:
            entry.unlink()
