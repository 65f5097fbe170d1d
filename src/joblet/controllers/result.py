"""What a controller's sync returns to the controller runtime (controller-runtime's
``reconcile.Result`` and ``TerminalError``).

Why a module of its own: every controller imports these three names, and the runtime
(:mod:`joblet.controllers.runtime`) honours them: ``requeue_after`` looks at the key again
later, ``terminal`` is a failure retrying cannot fix (logged and recorded once per object
version, then left until the object changes); an exception is a transient failure, requeued
with rate limiting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]


@dataclass(frozen=True)
class Terminal:
    """A failure retrying cannot fix: ``reason`` and ``message`` of the Warning Event recorded
    on ``obj`` (the object the key names, when there is one)."""

    reason: str
    message: str
    obj: Obj | None = None


class TerminalError(Exception):
    """Raised from deep inside a sync: handled as ``Result(terminal=...)``."""

    def __init__(self, reason: str, message: str, obj: Obj | None = None) -> None:
        super().__init__(message)
        self.terminal = Terminal(reason, message, obj)


@dataclass(frozen=True)
class Result:
    """What a sync returns; ``Result()`` (or None): done until the next event."""

    #: look at the key again after this many seconds (also after a terminal failure)
    requeue_after: float | None = None
    terminal: Terminal | None = None


DONE = Result()
