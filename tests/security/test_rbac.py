"""Authorization end to end: a real ``joblet server`` process (HTTPS, token authentication, RBAC),
users made with ``joblet token create``, and the real kubectl (1.27 and 1.33) as they use it.

What a user must see: bound to ``view`` they read but get upstream's 403 on create and
``kubectl auth can-i create jobs`` says ``no`` (exit 1); ``auth whoami`` names them and their
groups; a RoleBinding to ``edit`` in one namespace lets them create there, at once (the very
next request after ``kubectl create rolebinding``), and nowhere else.

The server writes ``D/kubeconfig`` with ``certificate-authority-data`` and the admin token.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from support.process import clean_env, joblet_server

SDK_BIN = Path("/usr/lib/google-cloud-sdk/bin")
KUBECTL = shutil.which("kubectl")
VERSIONS = {v: SDK_BIN / f"kubectl.{v}" for v in ("1.27", "1.33")}
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")


@dataclass
class Server:
    data_dir: Path
    home: Path
    proc: subprocess.Popen[bytes]

    @property
    def admin(self) -> Path:
        return self.data_dir / "kubeconfig"

    def joblet(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "joblet", *args, "--data-dir", str(self.data_dir)],
                              capture_output=True, text=True, timeout=60)

    def kubectl(self, kubeconfig: Path, *args: str, version: str | None = None,
                check: bool = True) -> subprocess.CompletedProcess[str]:
        binary = str(VERSIONS[version]) if version else str(KUBECTL)
        result = subprocess.run([binary, "--kubeconfig", str(kubeconfig), *args], capture_output=True, text=True,
                                timeout=60, env={"HOME": str(self.home), "PATH": "/usr/bin:/bin"})
        if check:
            assert result.returncode == 0, f"kubectl {' '.join(args)}: {result.stderr}"
        return result

    def user(self, name: str, *groups: str) -> Path:
        """A token user with a kubeconfig of their own (``joblet token create --kubeconfig-out``)."""
        path = self.data_dir.parent / f"{name}.kubeconfig"
        made = self.joblet("token", "create", name, *(a for g in groups for a in ("--group", g)),
                           "--kubeconfig-out", str(path))
        assert made.returncode == 0, made.stderr
        return path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("rbac")
    with joblet_server(tmp / "data", "--components", "api,controllers", env=clean_env(HOME=str(tmp)),
                       log=tmp / "server.log", timeout=60) as server:
        srv = Server(server.data_dir, tmp / "home", server.proc)
        cluster = yaml.safe_load(srv.admin.read_text())
        user = cluster["users"][0]["user"]
        assert user.get("token") and cluster["clusters"][0]["cluster"].get("certificate-authority-data")
        for ns in ("dev", "prod"):
            srv.kubectl(srv.admin, "create", "namespace", ns)
        yield srv


def test_a_viewer_reads_but_may_not_create(server: Server) -> None:
    viewer = server.user("viewer", "auditors")
    server.kubectl(server.admin, "create", "rolebinding", "viewer-view", "--clusterrole=view", "--user=viewer")
    assert server.kubectl(viewer, "get", "jobs").returncode == 0
    created = server.kubectl(viewer, "create", "job", "nope", "--image=busybox", "--", "true", check=False)
    assert created.returncode == 1
    # kubectl create job words it "error: failed to create job: <the server's message>"
    assert ('jobs.batch is forbidden: User "viewer" cannot create resource "jobs" '
            'in API group "batch" in the namespace "default"\n') in created.stderr
    secret = server.kubectl(viewer, "get", "secrets", check=False)
    assert secret.returncode == 1 and 'cannot list resource "secrets"' in secret.stderr
    assert server.kubectl(viewer, "get", "jobs", "-n", "dev", check=False).returncode == 1  # bound in default only


@pytest.mark.parametrize("version", ["1.27", "1.33"])
def test_can_i_and_whoami(server: Server, version: str) -> None:
    user = f"reader-{version.replace('.', '')}"
    kubeconfig = server.user(user, "auditors")
    server.kubectl(server.admin, "create", "rolebinding", f"{user}-view", "--clusterrole=view", f"--user={user}")
    no = server.kubectl(kubeconfig, "auth", "can-i", "create", "jobs", version=version, check=False)
    assert (no.returncode, no.stdout.strip()) == (1, "no")
    yes = server.kubectl(kubeconfig, "auth", "can-i", "get", "jobs", version=version, check=False)
    assert (yes.returncode, yes.stdout.strip()) == (0, "yes")
    who = server.kubectl(kubeconfig, "auth", "whoami", "-o", "yaml", version=version)
    info = yaml.safe_load(who.stdout)["status"]["userInfo"]
    assert info["username"] == user
    assert set(info["groups"]) >= {"auditors", "system:authenticated"}
    listed = server.kubectl(kubeconfig, "auth", "can-i", "--list", version=version)
    lines = {line.split()[0]: line for line in listed.stdout.splitlines()[1:] if line and not line.startswith(" ")}
    assert "[get list watch]" in lines["jobs.batch"]
    assert "selfsubjectaccessreviews.authorization.k8s.io" in lines


def test_edit_in_one_namespace_applies_at_once_and_only_there(server: Server) -> None:
    editor = server.user("editor")
    before = server.kubectl(editor, "auth", "can-i", "create", "jobs", "-n", "dev", check=False)
    assert before.stdout.strip() == "no"
    server.kubectl(server.admin, "create", "rolebinding", "editor-edit", "--clusterrole=edit", "--user=editor",
                   "-n", "dev")
    # the very next request after the binding was created sees it
    made = server.kubectl(editor, "create", "job", "j1", "-n", "dev", "--image=busybox", "--", "true")
    assert "job.batch/j1 created" in made.stdout
    elsewhere = server.kubectl(editor, "create", "job", "j1", "-n", "prod", "--image=busybox", "--", "true",
                               check=False)
    assert elsewhere.returncode == 1
    assert 'User "editor" cannot create resource "jobs" in API group "batch" in the namespace "prod"' in elsewhere.stderr
    # edit may not grant itself more: no RBAC writes
    escalate = server.kubectl(editor, "create", "rolebinding", "more", "--clusterrole=admin", "--user=editor",
                              "-n", "dev", check=False)
    assert escalate.returncode == 1 and "rolebindings.rbac.authorization.k8s.io is forbidden" in escalate.stderr
    # revoking the token ends the user at once
    assert server.joblet("token", "revoke", "editor").returncode == 0
    gone = server.kubectl(editor, "get", "jobs", "-n", "dev", check=False)
    assert gone.returncode == 1 and "Unauthorized" in gone.stderr


def test_a_namespace_admin_cannot_bind_more_than_they_hold(server: Server) -> None:
    owner = server.user("owner")
    server.kubectl(server.admin, "create", "rolebinding", "owner-admin", "--clusterrole=admin", "--user=owner",
                   "-n", "dev")
    made = server.kubectl(owner, "create", "rolebinding", "helper-edit", "--clusterrole=edit", "--user=helper",
                          "-n", "dev")
    assert "rolebinding.rbac.authorization.k8s.io/helper-edit created" in made.stdout
    root = server.kubectl(owner, "create", "rolebinding", "owner-root", "--clusterrole=cluster-admin",
                          "--user=owner", "-n", "dev", check=False)
    assert root.returncode == 1
    assert ('rolebindings.rbac.authorization.k8s.io "owner-root" is forbidden: user "owner" '
            '(groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently held:\n'
            '{APIGroups:["*"], Resources:["*"], Verbs:["*"]}') in root.stderr
