"""Images are recorded, not pulled; busybox manifests get busybox's applets when the host has them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from joblet.node.images import DEFAULT_PATH, image_name, path_for_image


@pytest.mark.parametrize(("image", "name"), [
    pytest.param("busybox", "busybox", id="bare"),
    pytest.param("busybox:1.36", "busybox", id="tag"),
    pytest.param("docker.io/library/busybox@sha256:abc", "busybox", id="digest"),
    pytest.param("registry.local:5000/team/busybox:latest", "busybox", id="registry-port"),
    pytest.param("python:3.11", "python", id="other"),
])
def test_image_name(image: str, name: str) -> None:
    assert image_name(image) == name


def test_other_images_use_the_host_path() -> None:
    assert path_for_image("python:3.11") == DEFAULT_PATH
    assert path_for_image(None) == DEFAULT_PATH


@pytest.mark.skipif(shutil.which("busybox") is None, reason="busybox is not installed on this host")
def test_busybox_image_runs_busybox_sh(tmp_path: Path) -> None:
    path = path_for_image("busybox:1.36", tmp_path)
    assert path.endswith(DEFAULT_PATH) and path != DEFAULT_PATH
    # busybox sh accepts signal names with the SIG prefix in trap; Debian's dash does not.
    result = subprocess.run(["sh", "-c", "trap 'echo bye' SIGTERM; echo ok"], env={"PATH": path},
                            capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "ok"
