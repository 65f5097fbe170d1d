"""Every ``joblet`` command's ``--help`` renders (help text is rich markup: a stray ``[/X]`` in
an option's help once made ``joblet run --help`` and ``joblet server --help`` crash)."""

from __future__ import annotations

from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from joblet.cli.main import app


def _paths(command: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix]
    for name, sub in getattr(command, "commands", {}).items():  # a group (typer vendors click)
        found += _paths(sub, (*prefix, name))
    return found


COMMANDS = _paths(typer.main.get_command(app))


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "joblet")
def test_help_renders(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "Usage:" in result.output


def test_run_help_states_exit_statuses_and_the_target_rule() -> None:
    text = CliRunner().invoke(app, ["run", "--help"], terminal_width=200).output
    assert "Exit status" in text and "130/143" in text and "$KUBECONFIG" in text


def test_every_command_is_covered() -> None:
    assert ("run",) in COMMANDS and ("server",) in COMMANDS and len(COMMANDS) > 5
