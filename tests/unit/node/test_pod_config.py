"""Table tests of the pure parts of pod configuration: volumes' contents, mounts, the bwrap
command line, env sources, runAsUser checks and termination messages."""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path
from typing import Any

import pytest

from joblet.node.containerenv import ConfigError, resource_field, run_as, service_env
from joblet.node.runtimes.process import hidden_dirs
from joblet.node.runtimes.records import log_tail
from joblet.node.sandbox import DEFAULT_CAPABILITIES, HostEntry, bwrap_argv, effective_capabilities, shadows
from joblet.node.volumes import (
    Mount,
    VolumeError,
    check_host_path,
    container_mounts,
    downward_field,
    format_map,
    keyed_files,
    write_atomic,
)

POD: dict[str, Any] = {"metadata": {"name": "p", "namespace": "ns", "uid": "u1", "labels": {"b": "2", "a": "1"},
                                    "annotations": {"note": 'say "hi"'}},
                       "spec": {"nodeName": "n1"}}


@pytest.mark.parametrize(("path", "want"), [
    ("metadata.name", "p"), ("metadata.namespace", "ns"), ("metadata.uid", "u1"),
    ("metadata.labels['a']", "1"), ("metadata.labels['missing']", ""),
    ("metadata.labels", 'a="1"\nb="2"'), ("metadata.annotations", 'note="say \\"hi\\""'),
    ("spec.nodeName", "n1"), ("spec.serviceAccountName", "default"), ("status.podIP", "127.0.0.1"),
], ids=["name", "namespace", "uid", "label", "missing-label", "all-labels", "annotations-quoted", "node",
        "service-account", "pod-ip"])
def test_downward_field(path: str, want: str) -> None:
    assert downward_field(POD, path, "n1", "127.0.0.1") == want


def test_format_map_sorted() -> None:
    assert format_map({"z": 1, "a": "x"}) == 'a="x"\nz="1"'


SECRET = {"data": {"k": base64.b64encode(b"v").decode()}, "stringData": {"s": "t"}}


@pytest.mark.parametrize(("obj", "items", "optional", "want"), [
    (SECRET, None, False, {"k": (b"v", 0o644), "s": (b"t", 0o644)}),
    (SECRET, [{"key": "k", "path": "dir/file", "mode": 0o400}], False, {"dir/file": (b"v", 0o400)}),
    (None, None, True, {}),
    (SECRET, [{"key": "nope", "path": "x"}], True, {}),
], ids=["all-keys", "items-with-mode", "missing-optional", "missing-key-optional"])
def test_keyed_files(obj: Any, items: Any, optional: bool, want: Any) -> None:
    assert keyed_files("secrets", "s", obj, items, optional, 0o644) == want


@pytest.mark.parametrize(("kind", "obj", "items", "message"), [
    ("secrets", None, None, 'secret "s" not found'),
    ("configmaps", None, None, 'configmap "s" not found'),
    ("configmaps", {"data": {}}, [{"key": "k", "path": "k"}], "configmap references non-existent config key: k"),
], ids=["secret-missing", "configmap-missing", "key-missing"])
def test_keyed_files_errors(kind: str, obj: Any, items: Any, message: str) -> None:
    with pytest.raises(VolumeError, match=message):
        keyed_files(kind, "s", obj, items, False, 0o644)


def test_atomic_writer_layout_and_update(tmp_path: Path) -> None:
    vol = tmp_path / "v"
    write_atomic(vol, {"a": (b"1", 0o600), "d/b": (b"2", 0o644)})
    assert (vol / "a").read_bytes() == b"1" and (vol / "d" / "b").read_bytes() == b"2"
    assert (vol / "..data").is_symlink() and oct((vol / "a").stat().st_mode & 0o777) == "0o600"
    write_atomic(vol, {"a": (b"3", 0o644)})
    assert (vol / "a").read_bytes() == b"3" and not (vol / "d").exists()


@pytest.mark.parametrize(("kind", "make", "ok"), [
    ("DirectoryOrCreate", None, True), ("FileOrCreate", None, True), ("Directory", None, False),
    ("Directory", "dir", True), ("File", "dir", False), ("File", "file", True), ("", None, True),
], ids=["dir-or-create", "file-or-create", "dir-missing", "dir", "file-is-dir", "file", "untyped"])
def test_host_path_types(tmp_path: Path, kind: str, make: str | None, ok: bool) -> None:
    path = tmp_path / "x"
    if make == "dir":
        path.mkdir()
    elif make == "file":
        path.write_text("")
    if ok:
        assert check_host_path({"path": str(path), "type": kind}) == path
    else:
        with pytest.raises(VolumeError, match="hostPath type check failed"):
            check_host_path({"path": str(path), "type": kind})


def test_container_mounts_sub_path_and_read_only(tmp_path: Path) -> None:
    paths = {"data": tmp_path / "data", "cfg": tmp_path / "cfg"}
    paths["data"].mkdir()
    mounts = container_mounts([{"name": "data", "mountPath": "/d", "subPathExpr": "$(POD)"},
                               {"name": "cfg", "mountPath": "/c"}], paths, {"cfg"}, {"POD": "p1"})
    assert mounts == [Mount((tmp_path / "data" / "p1").resolve(), "/d", False), Mount(paths["cfg"], "/c", True)]
    assert (tmp_path / "data" / "p1").is_dir()
    with pytest.raises(VolumeError, match='unable to find volume "x"'):
        container_mounts([{"name": "x", "mountPath": "/x"}], paths, set(), {})


def test_sub_path_never_follows_a_symlink_out_of_the_volume(tmp_path: Path) -> None:
    """CVE-2017-1002101 (SEC-13): a symlink planted in an emptyDir must not become the bind."""
    vol = tmp_path / "vol"
    (vol / "in").mkdir(parents=True)
    (vol / "link").symlink_to("/etc")
    (vol / "inner").symlink_to("in")  # a symlink that stays inside is fine (configMap keys are)
    (vol / "in" / "deep").symlink_to("../../..")
    for sub in ("link", "link/ssh", "in/deep", "in/deep/etc"):
        with pytest.raises(VolumeError, match='failed to prepare subPath for volumeMount "v" of container "c"'):
            container_mounts([{"name": "v", "mountPath": "/m", "subPath": sub}], {"v": vol}, set(), {},
                             container="c")
    assert not (tmp_path.parent / "etc").exists()
    [mount] = container_mounts([{"name": "v", "mountPath": "/m", "subPath": "inner"}], {"v": vol}, set(), {})
    assert mount.source == (vol / "in").resolve()
    opened: list[int] = []
    [mount] = container_mounts([{"name": "v", "mountPath": "/m", "subPath": "in"}], {"v": vol}, set(), {},
                               pin=lambda fd: opened.append(fd) or Path(f"/proc/self/fd/{fd}"))
    assert os.path.samefile(mount.source, vol / "in")
    os.close(opened[0])


@pytest.mark.parametrize("rel", ["../x", "/etc/passwd", "a/../../x", "..data", "..", ""])
def test_atomic_writer_rechecks_paths(tmp_path: Path, rel: str) -> None:
    with pytest.raises(VolumeError, match=re.escape("must be a relative path without '..'")):
        write_atomic(tmp_path / "v", {"ok": (b"1", 0o644), rel: (b"x", 0o644)})
    assert not (tmp_path / "x").exists() and not (tmp_path / "v" / "ok").exists()


def test_atomic_writer_does_not_follow_a_planted_directory_symlink(tmp_path: Path) -> None:
    vol = tmp_path / "v"
    write_atomic(vol, {"d/a": (b"1", 0o644)})
    write_atomic(vol, {"d/a": (b"2", 0o644), "d/b": (b"3", 0o644)})  # a fresh stamp dir each time
    assert (vol / "d" / "b").read_bytes() == b"3"


HOST = {"/", "/etc", "/usr", "/dev", "/run", "/var", "/var/run"}


@pytest.mark.parametrize(("targets", "want"), [
    (["/etc"], []), (["/data"], ["/"]), (["/run/secrets/sa"], ["/run"]), (["/data", "/data/sub"], ["/"]),
    (["/dev/termination-log"], ["/dev"]),
], ids=["exists", "new-top-level", "nested-new", "inside-other-mount", "termination-log"])
def test_shadows(targets: list[str], want: list[str]) -> None:
    assert shadows(targets, lambda p: p in HOST) == want


CONTAINED = ["--unshare-pid", "--unshare-ipc"]
FRESH = ["--dev", "/dev", "--perms", "01777", "--tmpfs", "/dev/shm", "--proc", "/proc"]


def test_bwrap_argv_rebinds_shadowed_root() -> None:
    entries = {"/": [HostEntry("bin", "symlink", "usr/bin"), HostEntry("dev", "dir"), HostEntry("proc", "dir"),
                     HostEntry("usr", "dir")]}
    argv = bwrap_argv([Mount(Path("/v/cfg"), "/config", read_only=True)], ["sh", "-c", "x"], ["shim", "-E"],
                      working_dir="/config", termination_log=(Path("/p/t"), "/dev/termination-log"),
                      resolve=lambda p: p, exists=lambda p: p in HOST, lister=lambda d: entries.get(d, []))
    assert argv == ["bwrap", *CONTAINED, "--symlink", "usr/bin", "/bin", "--bind", "/usr", "/usr", *FRESH,
                    "--ro-bind", "/v/cfg", "/config", "--bind", "/p/t", "/dev/termination-log",
                    "--chdir", "/config", "--", "shim", "-E", "--", "sh", "-c", "x"]


def test_bwrap_argv_links_a_shadowed_directorys_entries_to_one_bind_of_it() -> None:
    """The token's /run is shadowed: one bind of the host's /run, its entries symlinks into it
    (one bind per entry made bwrap read the mount table once per entry)."""
    entries = {"/run": [HostEntry(".joblet-host", "dir"), HostEntry("adduser", "file"), HostEntry("lock", "dir"),
                        HostEntry("shm", "symlink", "/dev/shm")]}
    argv = bwrap_argv([Mount(Path("/v/sa"), "/run/secrets/sa", read_only=True)], ["true"], ["shim", "-E"],
                      resolve=lambda p: p, exists=lambda p: p in HOST, lister=lambda d: entries.get(d, []))
    view = "/run/.joblet-host_"  # the name is free on the host: a host entry keeps its own
    assert argv == ["bwrap", *CONTAINED, "--bind", "/", "/", *FRESH,
                    "--tmpfs", "/run", "--bind", "/run", view,
                    "--symlink", ".joblet-host_/.joblet-host", "/run/.joblet-host",
                    "--symlink", ".joblet-host_/adduser", "/run/adduser", "--symlink", ".joblet-host_/lock", "/run/lock",
                    "--symlink", "/dev/shm", "/run/shm",
                    "--perms", "0755", "--dir", "/run/secrets", "--ro-bind", "/v/sa", "/run/secrets/sa",
                    "--", "shim", "-E", "--", "true"]


def test_bwrap_argv_binds_whole_root_when_targets_exist() -> None:
    argv = bwrap_argv([Mount(Path("/v"), "/etc")], ["true"], ["shim", "-E"], resolve=lambda p: p,
                      exists=lambda p: p in HOST, lister=lambda d: [])
    assert argv == ["bwrap", *CONTAINED, "--bind", "/", "/", *FRESH, "--bind", "/v", "/etc",
                    "--", "shim", "-E", "--", "true"]


def test_bwrap_argv_never_binds_the_host_dev_hides_the_data_dir_and_drops_capabilities() -> None:
    # the host's /dev under `--bind / /` is remounted nodev: /dev/null would be EACCES
    argv = bwrap_argv([Mount(Path("/d/pods/u/volumes/s"), "/etc/creds")], ["true"], ["shim", "-E"],
                      resolve=lambda p: p, exists=lambda p: p in HOST, lister=lambda d: [],
                      hidden=["/d"], capabilities=["CHOWN", "KILL"])
    assert argv[:8] == ["bwrap", *CONTAINED, "--cap-drop", "ALL", "--cap-add", "CAP_CHOWN", "--cap-add"]
    assert argv.index("--dev") < argv.index("/etc/creds")
    assert "/dev" not in [argv[i + 1] for i, a in enumerate(argv) if a == "--bind"]
    assert argv[argv.index("/d") - 1] == "--tmpfs" and argv.index("/d") < argv.index("/etc/creds")


@pytest.mark.parametrize(("sc", "uid", "want"), [
    (None, 0, DEFAULT_CAPABILITIES),
    ({"capabilities": {"drop": ["ALL"]}}, 0, ()),
    ({"capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE", "CAP_NET_ADMIN", "BOGUS"]}}, 0,
     ("NET_ADMIN", "NET_BIND_SERVICE")),
    ({"capabilities": {"drop": ["KILL", "chown"]}}, 0, tuple(c for c in DEFAULT_CAPABILITIES if c not in ("KILL", "CHOWN"))),
    ({"capabilities": {"add": ["SYS_ADMIN"]}}, 1000, ()),
], ids=["root-default", "drop-all", "drop-all-add", "drop-some", "non-root"])
def test_effective_capabilities(sc: Any, uid: int, want: tuple[str, ...]) -> None:
    assert effective_capabilities(sc, uid) == tuple(sorted(want))


@pytest.mark.parametrize(("resources", "ref", "want"), [
    ({"limits": {"memory": "64Mi"}}, {"resource": "limits.memory", "divisor": "1Mi"}, "64"),
    ({"limits": {"cpu": "250m"}}, {"resource": "limits.cpu"}, "1"),
    ({"limits": {"cpu": "250m"}}, {"resource": "limits.cpu", "divisor": "1m"}, "250"),
    ({}, {"resource": "limits.cpu"}, "2"),
    ({}, {"resource": "requests.memory"}, "0"),
    ({"limits": {"memory": "1Gi"}}, {"resource": "requests.memory"}, "1073741824"),
], ids=["memory-mi", "cpu-rounds-up", "cpu-millis", "unset-limit-is-node", "unset-request", "request-from-limit"])
def test_resource_field(resources: Any, ref: Any, want: str) -> None:
    assert resource_field({"resources": resources}, ref, 2.0, 8 * 2**30) == want


@pytest.mark.parametrize(("pod_sc", "ctr_sc", "agent_uid", "want"), [
    ({}, {}, 0, (None, None)),
    ({"runAsUser": 1000, "runAsGroup": 10}, {}, 0, (1000, 10)),
    ({"runAsUser": 1000}, {"runAsUser": 7}, 0, (7, None)),
    ({"runAsNonRoot": True}, {"runAsUser": 5}, 0, (5, None)),
    ({"runAsNonRoot": True}, {}, 1000, (None, None)),
], ids=["none", "pod-level", "container-wins", "non-root-ok", "agent-not-root"])
def test_run_as(pod_sc: Any, ctr_sc: Any, agent_uid: int, want: tuple[int | None, int | None]) -> None:
    got = run_as({"spec": {"securityContext": pod_sc}}, {"name": "c", "securityContext": ctr_sc}, "p_ns(u)", agent_uid)
    assert (got.user, got.group) == want


@pytest.mark.parametrize(("sc", "message"), [
    ({"runAsNonRoot": True}, 'container has runAsNonRoot and image will run as root (pod: "p_ns(u)", container: c)'),
    ({"runAsNonRoot": True, "runAsUser": 0}, "container's runAsUser breaks non-root policy"),
], ids=["image-root", "explicit-root"])
def test_run_as_non_root_errors(sc: Any, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        run_as({"spec": {}}, {"name": "c", "securityContext": sc}, "p_ns(u)", 0)
    assert str(err.value).startswith(message)


def test_service_env() -> None:
    env = service_env("http://127.0.0.1:6443")
    assert (env["KUBERNETES_SERVICE_HOST"], env["KUBERNETES_SERVICE_PORT"]) == ("127.0.0.1", "6443")
    assert service_env(None) == {}


def test_log_tail_limits() -> None:
    lines = b"".join(b"2024-01-01T00:00:00Z stdout F line%d\n" % i for i in range(100))
    assert log_tail(lines).splitlines()[0] == "line20" and len(log_tail(lines).splitlines()) == 80
    assert len(log_tail(b"2024-01-01T00:00:00Z stdout F " + b"x" * 5000 + b"\n")) == 2048


def test_hidden_dirs_are_existing_and_distinct(tmp_path: Path) -> None:
    (tmp_path / "server").mkdir()
    assert hidden_dirs(tmp_path, tmp_path / "missing", tmp_path / "server", Path(str(tmp_path) + "/.")) == [
        tmp_path, tmp_path / "server"]
