"""``joblet token create|revoke|list``: bearer tokens for more users than the admin.

Why: a cluster with one admin token makes everyone an admin. ``joblet token create alice``
issues a token that authenticates as user ``alice`` (plus ``--group``s and
``system:authenticated``), which RBAC then limits to whatever roles are bound to her
(``kubectl create rolebinding ... --clusterrole=view --user=alice``). The token is printed
alone on stdout, once; the data dir keeps only its hash (:class:`joblet.security.tokens.TokenStore`),
so ``TOKEN=$(joblet token create alice)`` works and nothing secret reaches argv or a log.
These commands edit the data dir's token file directly (run them as the data dir's owner);
a running server sees the change on its next request.
"""

from __future__ import annotations

import re
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from joblet.api.validation.cron import parse_go_duration
from joblet.cli.console import err, out
from joblet.clock import Clock, RealClock, rfc3339
from joblet.datadir import default_data_dir
from joblet.errors import AlreadyExists, NotFound
from joblet.security.tokens import TokenStore

token_app = typer.Typer(help="Issue, list and revoke bearer tokens for API users.", no_args_is_help=True)

DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", help="State directory (default: $JOBLET_DATA_DIR or ~/.local/share/joblet).")]
_DAYS = re.compile(r"(\d+)d(.*)")
_NAME = re.compile(r"[^\s/]{1,253}")


def parse_expiry(text: str) -> timedelta:
    """``24h``, ``30m``, ``90s``, ``7d``, ``1d12h``: Go durations plus a day unit; must be positive."""
    days = 0
    rest = text.strip()
    m = _DAYS.fullmatch(rest)
    if m:
        days, rest = int(m.group(1)), m.group(2)
    seconds = parse_go_duration(rest) if rest else 0.0
    total = timedelta(days=days, seconds=seconds)
    if total <= timedelta(0):
        raise ValueError(f'expiry must be positive, got "{text}"')
    return total


def _store(data_dir: Path | None) -> TokenStore:
    return TokenStore((data_dir or default_data_dir()).expanduser())


def user_kubeconfig(data_dir: Path, name: str, token: str, path: Path) -> Path:
    """A kubeconfig for ``name``: the server and CA of the data dir's admin kubeconfig, this token."""
    import yaml

    from joblet.kubeconfig import server_from_config, write_kubeconfig

    admin = data_dir / "kubeconfig"
    try:
        config = yaml.safe_load(admin.read_text()) or {}
        server, _token, verify = server_from_config(config)
    except (OSError, ValueError, KeyError, yaml.YAMLError) as exc:
        raise typer.BadParameter(f"cannot read the server from {admin} (start `joblet server` once): {exc}") from None
    ca_file = data_dir / "pki" / "ca.crt"
    ca_data = ca_file.read_bytes() if ca_file.exists() else None
    return write_kubeconfig(path, server, token, ca_data=ca_data, insecure=not verify and ca_data is None, name=name)


@token_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="The user name the token authenticates as.")],
    group: Annotated[list[str] | None, typer.Option("--group", help="A group of the user (repeatable).")] = None,
    expires: Annotated[str | None, typer.Option("--expires", help="Lifetime, e.g. 30m, 24h, 7d (default: never).")] = None,
    kubeconfig_out: Annotated[Path | None, typer.Option("--kubeconfig-out", help="Also write a kubeconfig for this user here (0600).")] = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Issue a token for user NAME and print it (alone) on stdout."""
    _create(name, tuple(group or ()), expires, kubeconfig_out, data_dir, RealClock())


def _create(name: str, groups: tuple[str, ...], expires: str | None, kubeconfig_out: Path | None,
            data_dir: Path | None, clock: Clock) -> None:
    if not _NAME.fullmatch(name):
        err.print(f'error: invalid user name "{name}": 1-253 characters, no spaces or "/"')
        raise typer.Exit(2)
    for g in groups:
        if not _NAME.fullmatch(g):
            err.print(f'error: invalid group "{g}": 1-253 characters, no spaces or "/"')
            raise typer.Exit(2)
    until: datetime | None = None
    if expires is not None:
        try:
            until = clock.now() + parse_expiry(expires)
        except ValueError as exc:
            err.print(f"error: --expires: {exc}")
            raise typer.Exit(2) from None
    store = _store(data_dir)
    try:
        token = store.create(name, groups, until)
    except AlreadyExists:
        err.print(f'error: a token for "{name}" exists; revoke it first (joblet token revoke {name})')
        raise typer.Exit(1) from None
    if kubeconfig_out is not None:
        try:
            written = user_kubeconfig(store.path.parent, name, token, kubeconfig_out)
        except typer.BadParameter as exc:
            store.revoke(name)  # no half-made user
            err.print(f"error: {exc}")
            raise typer.Exit(1) from None
        err.print(f"kubeconfig for {name} written to {written}")
    sys.stdout.write(token + "\n")


@token_app.command("revoke")
def revoke(
    name: Annotated[str, typer.Argument(help="The user whose token to revoke.")],
    data_dir: DataDirOpt = None,
) -> None:
    """Revoke user NAME's token (a running server refuses it from the next request on)."""
    try:
        _store(data_dir).revoke(name)
    except NotFound:
        err.print(f'error: no token for "{name}"')
        raise typer.Exit(1) from None
    out.print(f'token for "{name}" revoked')


@token_app.command("list")
def list_tokens(data_dir: DataDirOpt = None) -> None:
    """List token users, their groups and expiry (never the tokens or their hashes)."""
    _list(data_dir, RealClock())


def _list(data_dir: Path | None, clock: Clock) -> None:
    now = clock.now()
    rows = [("NAME", "GROUPS", "EXPIRES")]
    for e in sorted(_store(data_dir).entries(), key=lambda e: e.name):
        if e.expires is None:
            when = "never"
        else:
            when = rfc3339(e.expires) + (" (expired)" if e.expires <= now else "")
        rows.append((e.name, ",".join(e.groups) or "<none>", when))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        out.print("   ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())
