"""What a container's ``image`` means to the process runtime.

joblet records the image and does not pull it: a container runs the host's programs. One
exception keeps manifests written for the ubiquitous ``busybox`` image honest: their
scripts use busybox's ``sh`` (which, unlike Debian's dash, accepts ``trap f SIGTERM``) and
applets, so when the host has busybox such a container gets busybox's applets first on its
PATH. Any other image runs with the host's PATH.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import subprocess
from pathlib import Path

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def image_name(image: str) -> str:
    """``busybox`` for ``busybox``, ``busybox:1.36``, ``docker.io/library/busybox@sha256:...``."""
    name = image.rsplit("/", 1)[-1]
    return name.split("@", 1)[0].split(":", 1)[0]


def path_for_image(image: object, cache_dir: Path | None = None) -> str:
    if isinstance(image, str) and image_name(image) == "busybox":
        applets = busybox_applets(cache_dir)
        if applets is not None:
            return f"{applets}:{DEFAULT_PATH}"
    return DEFAULT_PATH


@functools.cache
def busybox_applets(cache_dir: Path | None = None) -> Path | None:
    """A directory of symlinks to the host's busybox, one per applet (made once per process)."""
    busybox = shutil.which("busybox")
    if busybox is None:
        return None
    root = cache_dir or Path(os.environ.get("JOBLET_CACHE_DIR") or Path.home() / ".cache" / "joblet")
    target = root / "busybox-bin"
    try:
        listed = subprocess.run([busybox, "--list"], capture_output=True, text=True, timeout=10, check=True)
        target.mkdir(parents=True, exist_ok=True)
        for applet in listed.stdout.split():
            link = target / applet
            if not link.is_symlink():
                with contextlib.suppress(FileExistsError):
                    link.symlink_to(busybox)
    except (OSError, subprocess.SubprocessError):
        return None
    return target
