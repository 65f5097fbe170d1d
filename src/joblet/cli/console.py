"""The CLI's two consoles and its one way of refusing bad input.

Why: ``joblet``'s command modules (main, cron, tokens) each print results on stdout and
errors on stderr the same way, and refuse bad input with one ``error:`` line and exit status
2; one definition here, imported by each (main.py itself is imported lazily by the others).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import typer
from rich.console import Console

out = Console(highlight=False, soft_wrap=True, markup=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, markup=False)


@contextlib.contextmanager
def bad_input(errors: type[Exception] | tuple[type[Exception], ...], prefix: str = "") -> Iterator[None]:
    """Bad input met inside the block: ``error: PREFIX<message>`` on stderr, exit status 2."""
    try:
        yield
    except errors as e:
        err.print(f"error: {prefix}{e}")
        raise typer.Exit(2) from None
