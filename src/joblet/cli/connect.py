"""How a CLI command finds its API, by one rule that ``joblet run`` prints on its first line.

1. An explicit ``--kubeconfig`` wins: that server, whatever it is (it was named).
2. An explicit ``--data-dir`` wins over the environment: that data dir's running joblet
   (server or embedded run) if there is one, else the data dir opened in-process.
3. From the environment, ``$KUBECONFIG`` is used only when its server says it is a joblet
   server (``/version`` carries the ``joblet`` marker); a real cluster is never used unless
   named with ``--kubeconfig``. Otherwise the default data dir, as in 2.

Why: joblet's users have ``KUBECONFIG`` exported at a real cluster; a test Job must not
silently land on staging.
"""

from __future__ import annotations

import contextlib
import json
import os
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from joblet import gcpacing
from joblet.client.interface import Client
from joblet.clock import Clock, RealClock
from joblet.config import ControlPlaneConfig
from joblet.datadir import DataDirBusy, is_in_use


@dataclass
class Target:
    """A reachable API server, as read from a kubeconfig."""

    url: str
    token: str | None
    #: the kubeconfig's CA (and client certificate), as an SSL context
    verify: bool | ssl.SSLContext
    source: str = ""  # how it was chosen, for the target line: "--kubeconfig", "$KUBECONFIG", "data dir"


class NoData(Exception):
    """A read found no data dir to read (exit 1, one line)."""


class Unreachable(Exception):
    """The server the user named does not answer (an environment problem: exit 3)."""


@dataclass
class Choice:
    """The rule's answer: a server to talk to, or the data dir to open in this process."""

    target: Target | None
    data_dir: Path
    note: str = ""  # e.g. why $KUBECONFIG was not used

    def describe(self) -> str:
        """The target line ``joblet run`` prints first."""
        if self.target is not None:
            return f"using joblet server {self.target.url} (from {self.target.source})"
        return f"embedded control plane in {self.data_dir}"


def _version(url: str, token: str | None, verify: bool | ssl.SSLContext) -> dict[str, Any] | None:
    """The server's /version document, or None when it does not answer with one."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        answer = httpx.get(url.rstrip("/") + "/version", timeout=1.0, verify=verify, headers=headers)
        answer.raise_for_status()
        doc = answer.json()
    except (httpx.HTTPError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def is_joblet_version(doc: dict[str, Any] | None) -> bool:
    """Whether a /version document comes from joblet (see joblet.api.discovery.version_info)."""
    return doc is not None and ("joblet" in doc or str(doc.get("gitVersion", "")).endswith("-joblet"))


def _load(path: str) -> tuple[str, str | None, ssl.SSLContext] | None:
    """(server, token, TLS context with the kubeconfig's CA and client certificate)."""
    from joblet.kubeconfig import load_access

    try:
        access = load_access(path)
        return access.server, access.token, access.ssl_context()
    except (OSError, ValueError, KeyError, TypeError, AttributeError, ssl.SSLError):
        return None


def _lock_info(data_dir: Path) -> dict[str, Any]:
    try:
        info = json.loads((data_dir / "lock").read_text() or "{}")
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def data_dir_server(data_dir: Path, wait_seconds: float = 15.0, clock: Clock | None = None) -> Target | None:
    """The joblet that holds ``data_dir`` now (a server or an embedded run), if it serves HTTP.

    A holder that is still starting (or only reading) is waited for, so two ``joblet run``
    started together share the first one's control plane instead of failing on the lock.
    """
    clock = clock or RealClock()
    deadline = clock.monotonic() + wait_seconds
    while is_in_use(data_dir):
        info = _lock_info(data_dir)
        if info.get("state") == "running" and info.get("url"):
            candidate = data_dir / "kubeconfig"
            loaded = _load(str(candidate)) if candidate.exists() else None
            if loaded is None or info["url"] != loaded[0]:
                return None
            url, token, verify = loaded
            if _version(url, token, verify) is None:
                return None
            return Target(url, token, verify, f"data dir {data_dir}")
        # Starting, or a holder without an API (an offline `get` reading history): it is
        # about to serve or to let go.
        if clock.monotonic() > deadline:
            return None
        clock.sleep(0.1)  # the holder is starting; its lock says "running" in a moment
    return None


def choose(kubeconfig: str | None, data_dir: Path | None, default_data_dir: Path) -> Choice:
    """Apply the rule (module docstring). Raises :class:`Unreachable` for a named server that
    does not answer."""
    if kubeconfig:
        loaded = _load(kubeconfig)
        if loaded is None:
            raise Unreachable(f"cannot read a server from --kubeconfig {kubeconfig}")
        url, token, verify = loaded
        if _version(url, token, verify) is None:
            raise Unreachable(f"the server in --kubeconfig {kubeconfig} ({url}) does not answer")
        return Choice(Target(url, token, verify, f"--kubeconfig {kubeconfig}"), data_dir or default_data_dir)
    if data_dir is not None:
        return Choice(data_dir_server(data_dir), data_dir)
    note = ""
    env = os.environ.get("KUBECONFIG")
    if env:
        loaded = _load(env.split(os.pathsep)[0] if os.pathsep in env else env)
        if loaded is not None:
            url, token, verify = loaded
            # Anonymous: a token for some other cluster is never sent to find out.
            if is_joblet_version(_version(url, None, verify)):
                return Choice(Target(url, token, verify, "$KUBECONFIG"), default_data_dir)
            note = f"ignoring $KUBECONFIG: {url} is not a joblet server (name it with --kubeconfig to use it)"
    return Choice(data_dir_server(default_data_dir), default_data_dir, note)


def data_dir_explicit(data_dir: Path) -> bool:
    """Whether the user chose this data dir (``--data-dir`` or ``$JOBLET_DATA_DIR``): then it
    wins over ``$KUBECONFIG``."""
    from joblet.datadir import default_data_dir

    return "JOBLET_DATA_DIR" in os.environ or data_dir.expanduser() != default_data_dir().expanduser()


def find_server(kubeconfig: str | None, data_dir: Path) -> Target | None:
    """The server a command would use (see :func:`choose`); None for the in-process data dir."""
    try:
        return choose(kubeconfig, data_dir, data_dir).target
    except Unreachable:
        return None


def busy_hint(data_dir: Path) -> str:
    """What to tell a user whose data dir is held by a joblet that serves no API."""
    info = _lock_info(data_dir)
    pid = f" (pid {info['pid']})" if "pid" in info else ""
    return (f"data dir {data_dir} is in use by another joblet process{pid}: start `joblet server` "
            f"to run several Jobs at once, or pass another --data-dir")


async def _start_or_attach(config: ControlPlaneConfig, controllers: bool, choice: Choice) -> Any:
    """Open the data dir in this process, or, when another joblet took it since the choice
    (two runs started together, a read in progress), use that one's API once it serves one;
    ``choice`` is updated for the caller's target line."""
    from joblet.controlplane import ControlPlane

    for _ in range(3):
        plane = ControlPlane(config, run_controllers=controllers, serve_http=controllers, http_optional=True)
        try:
            await plane.start()
            return plane
        except DataDirBusy:
            choice.target = data_dir_server(config.data_dir)
            if choice.target is not None:
                return None
            if is_in_use(config.data_dir):
                break
    raise DataDirBusy(busy_hint(config.data_dir))


@contextlib.asynccontextmanager
async def connect(
    kubeconfig: str | None,
    config: ControlPlaneConfig,
    *,
    controllers: bool = False,
    choice: Choice | None = None,
    read_only: bool = False,
) -> AsyncIterator[Client]:
    """A client for a CLI command.

    With a server chosen: HTTP to it. Otherwise the data dir in this process: the whole
    control plane when ``controllers`` (``joblet run``, offline ``delete``), else just the
    API over the store (``get``, ``logs``, ``describe`` on a stopped joblet). ``read_only``:
    a missing data dir is an error, not created.
    """
    if choice is None:
        choice = choose(kubeconfig, config.data_dir if data_dir_explicit(config.data_dir) else None,
                        config.data_dir)
    if choice.target is None and read_only and not (config.data_dir / "joblet.db").exists():
        # A read (get, logs, describe) never creates a data dir: a typo must not look empty.
        raise NoData(f"no joblet data in {config.data_dir} (nothing has run there; "
                     f"check --data-dir, or start with `joblet run` or `joblet server`)")
    if choice.target is None:
        plane = await _start_or_attach(config, controllers, choice)
        if plane is not None:
            try:
                # the whole control plane's heap grows with the Job, as a server's: paced the same way
                async with gcpacing.pacing(plane.clock) if controllers else contextlib.nullcontext():
                    yield plane.client
            finally:
                await plane.stop()
            return
    target = choice.target
    assert target is not None  # _start_or_attach returns no plane only with a target
    from joblet.client.http import HttpClient

    client = HttpClient(target.url, token=target.token, verify=target.verify)
    try:
        yield client
    finally:
        await client.close()
