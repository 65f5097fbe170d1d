"""Replica flags fail fast with one line and exit 2: ``--components`` names, the leader-election
timings' order, ``joblet node --server`` URLs (the process exits before touching any data dir)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from joblet.cli.main import app


@pytest.mark.parametrize(("argv", "message"), [
    (["server", "--components", "api,foo"], "--components takes a comma-separated subset"),
    (["server", "--components", ","], "--components takes a comma-separated subset"),
    (["server", "--leader-elect-renew-deadline", "20"], "lease-duration > --leader-elect-renew-deadline"),
    (["server", "--leader-elect-retry-period", "0"], "lease-duration > --leader-elect-renew-deadline"),
    (["node", "--server", "https://a:1,ftp://b"], "--server takes URLs"),
    (["node", "--server", ","], "--server takes URLs"),
], ids=["unknown-component", "no-component", "deadline-over-duration", "zero-retry", "bad-url", "no-url"])
def test_bad_replica_flags_exit_2_with_one_line(argv: list[str], message: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, [*argv, "--data-dir", str(tmp_path / "d")], terminal_width=400)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.output
    assert not (tmp_path / "d").exists()
