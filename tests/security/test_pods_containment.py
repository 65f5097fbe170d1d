"""Pods are contained (SEC-08, SEC-06, the /dev bug, runAsNonRoot, capabilities), with real pods.

Each test fails on the code before containment: pods shared the server's PID namespace and
saw its data dir, the host /dev was remounted nodev, secret files sat on disk readable by any
local user, and the termination log was 0666.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pods_plane import Plane, needs_bwrap, needs_root, pod, run

pytestmark = [needs_bwrap]


def test_pod_cannot_see_or_signal_the_server_nor_read_its_credentials(tmp_path: Path) -> None:
    """SEC-08 (A8): own PID namespace, data dir hidden."""
    # a stand-in for the server that a pod would kill (same uid as the server): killing the
    # real test process would only show up as a crash
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])

    async def body(p: Plane) -> None:
        (p.data / "pki").mkdir(exist_ok=True)
        (p.data / "kubeconfig").write_text("token: the-admin-token\n")
        (p.data / "pki" / "ca.key").write_text("KEY\n")
        script = (f"kill -9 {victim.pid} && echo killed-victim; "
                  f"[ -e /proc/{os.getpid()} ] && echo sees-server; "
                  f"cat {p.data}/kubeconfig {p.data}/pki/ca.key 2>/dev/null; "
                  f"ls {p.data} | wc -l | sed 's/^/entries=/'; "
                  "echo procs=$(ls -d /proc/[0-9]* | wc -l); echo x > /dev/null && echo devnull-ok")
        await p.client.create("pods", pod("peek", script))
        await p.finished("peek")
        out = await p.output("peek")
        assert "killed-victim" not in out and "sees-server" not in out
        assert "the-admin-token" not in out and "KEY" not in out
        assert "entries=0" in out  # the data dir is an empty tmpfs (joblet.db, logs, pods hidden)
        assert "devnull-ok" in out
        assert int(out.split("procs=")[1].split()[0]) <= 8  # bwrap's init, sh and its pipeline only

    try:
        run(tmp_path, body)
        assert victim.poll() is None, "the pod killed a process outside its PID namespace"
    finally:
        victim.kill()
        victim.wait()


def test_secret_at_a_new_path_keeps_dev_null_usable(tmp_path: Path) -> None:
    """The portable-sandbox bug: `--bind / /` remounts the host /dev nodev → /dev/null EACCES."""
    async def body(p: Plane) -> None:
        await p.client.create("secrets", {"apiVersion": "v1", "kind": "Secret",
                                          "metadata": {"name": "creds", "namespace": "default"},
                                          "stringData": {"password": "hunter2"}})
        spec = pod("dev", "cat /etc/joblet-test-creds/password 2>/dev/null; echo; echo x >/dev/null && echo ok")
        spec["spec"]["volumes"] = [{"name": "s", "secret": {"secretName": "creds"}}]
        spec["spec"]["containers"][0]["volumeMounts"] = [{"name": "s", "mountPath": "/etc/joblet-test-creds"}]
        # a termination log outside /dev: /dev is not rebuilt for it, the host's would be bound
        spec["spec"]["containers"][0]["terminationMessagePath"] = "/tmp/joblet-test-termination-log"
        await p.client.create("pods", spec)
        done = await p.finished("dev")
        assert done["status"]["phase"] == "Succeeded", await p.output("dev")
        assert await p.output("dev") == "hunter2\nok\n"

    run(tmp_path, body)


@needs_root
def test_secret_volume_is_on_tmpfs_and_private_and_termlog_is_0600(tmp_path: Path) -> None:
    """SEC-06 (A6): secret files on a per-pod tmpfs under a 0700 dir; termination log 0600."""
    async def body(p: Plane) -> None:
        await p.client.create("secrets", {"apiVersion": "v1", "kind": "Secret",
                                          "metadata": {"name": "db", "namespace": "default"},
                                          "data": {"password": base64.b64encode(b"Sup3rS3cret").decode()}})
        spec = pod("uses-secret", "cat /s/password; echo; echo bye > /dev/termination-log; sleep 30",
                   securityContext={"runAsUser": 1234, "runAsGroup": 1234})
        spec["spec"]["volumes"] = [{"name": "s", "secret": {"secretName": "db"}}]
        spec["spec"]["containers"][0]["volumeMounts"] = [{"name": "s", "mountPath": "/s"}]
        created = await p.client.create("pods", spec)
        uid = created["metadata"]["uid"]
        vol = p.pod_dir(uid) / "volumes" / "s"
        await p.until_output("uses-secret", "Sup3rS3cret")
        mounts = Path("/proc/self/mountinfo").read_text()
        assert any(line.split()[4] == str(vol) and " - tmpfs " in line for line in mounts.splitlines())
        assert (vol / "password").read_bytes() == b"Sup3rS3cret"
        assert os.stat(vol / "..data" / "password").st_uid == 1234
        volumes = p.pod_dir(uid) / "volumes"
        assert volumes.stat().st_mode & 0o777 == 0o700 and volumes.stat().st_uid == 0
        nobody = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "cat",
                                 str(vol / "password")], capture_output=True, text=True)
        assert nobody.returncode != 0 and "Sup3rS3cret" not in nobody.stdout
        [termlog] = list(p.pod_dir(uid).glob("c.c.*.termlog"))
        st = termlog.stat()
        assert (st.st_mode & 0o777, st.st_uid) == (0o600, 1234)
        await p.client.delete("pods", "uses-secret", "default", grace_period_seconds=0)
        await p.eventually(lambda: str(vol) not in Path("/proc/self/mountinfo").read_text(), "tmpfs left behind")

    run(tmp_path, body)


@needs_root
def test_run_as_non_root_and_capabilities(tmp_path: Path) -> None:
    async def body(p: Plane) -> None:
        caps = "grep CapEff /proc/self/status"
        await p.client.create("pods", pod("root-default", caps))
        drop = pod("root-drop-all", caps)
        drop["spec"]["containers"][0]["securityContext"] = {"capabilities": {"drop": ["ALL"]}}
        await p.client.create("pods", drop)
        await p.client.create("pods", pod("user", caps, securityContext={"runAsUser": 1000}))
        nonroot = pod("nonroot", "echo ran", securityContext={"runAsNonRoot": True})
        await p.client.create("pods", nonroot)
        explicit = pod("nonroot-zero", "echo ran", securityContext={"runAsNonRoot": True, "runAsUser": 0})
        await p.client.create("pods", explicit)
        for name in ("root-default", "root-drop-all", "user"):
            await p.finished(name)
        # CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE NET_RAW
        # SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP: what container runtimes give root, not 0x1ffffffffff
        assert "CapEff:\t00000000a80425fb" in await p.output("root-default")
        assert "CapEff:\t0000000000000000" in await p.output("root-drop-all")
        assert "CapEff:\t0000000000000000" in await p.output("user")
        w = await p.waiting("nonroot", "CreateContainerConfigError")
        uid = w["metadata"]["uid"]
        message = w["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
        assert message == f'container has runAsNonRoot and image will run as root (pod: "nonroot_default({uid})", container: c)'
        w = await p.waiting("nonroot-zero", "CreateContainerConfigError")
        assert w["status"]["containerStatuses"][0]["state"]["waiting"]["message"].startswith(
            "container's runAsUser breaks non-root policy")
        assert p.plane.log_store.containers("default", "nonroot") == []  # never started

    run(tmp_path, body)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__]))
