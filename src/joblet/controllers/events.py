"""Terminal failures of controllers: one bad object must not break a controller.

Why here: the Event recorder itself lives in :mod:`joblet.client.events` (the node agent
records Events too); what only controllers need — turning a failure retrying cannot fix (an
undecodable object, a Job that cannot be replaced) into one ``Warning`` Event instead of a
retry loop — stays with them, used by the controller runtime for every sync's ``Result``.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from joblet.client.events import MAX_SEEN, EventRecorder
from joblet.controllers.result import Result, Terminal

Obj = dict[str, Any]
log = logging.getLogger(__name__)

#: the Event reason a controller records for a stored object it cannot process (the
#: ``joblet run`` follower stops on it with exit 2).
INVALID_OBJECT_REASON = "InvalidObject"
#: what an object no decision function can digest raises: a field of the wrong type or shape.
DECODE_ERRORS = (TypeError, ValueError, KeyError, AttributeError, IndexError)


class TerminalReporter:
    """A sync's terminal failure (:class:`joblet.controllers.runtime.Terminal`): one log line
    and one ``Warning`` Event per object version and message, never a retry loop; the key is
    left until its object changes."""

    def __init__(self, recorder: EventRecorder | None, component: str) -> None:
        self.recorder = recorder
        self.component = component
        self._reported: OrderedDict[str, tuple[str, str]] = OrderedDict()

    def report(self, key: str, reason: str, message: str, obj: Obj | None) -> None:
        rv = str(((obj or {}).get("metadata") or {}).get("resourceVersion", ""))
        if self._reported.get(key) == (rv, message):
            return
        self._reported[key] = (rv, message)
        while len(self._reported) > MAX_SEEN:
            self._reported.popitem(last=False)
        log.warning("%s: %s: %s (%s); not retried until it changes", self.component, key, message, reason)
        if obj is not None and self.recorder is not None:
            self.recorder.event(obj, "Warning", reason, message, component=self.component)


def undecodable(obj: Obj | None, err: Exception) -> tuple[str, str, Obj | None]:
    """The terminal failure for a stored object no decision function can digest
    (``completions: "three"``): reason, message and the object."""
    return INVALID_OBJECT_REASON, f"cannot process this object ({type(err).__name__}: {err}); fix or delete it", obj


async def sync_decoding(key: str, sync: Callable[[str], Awaitable[Result]],
                        cached: Callable[[str], Obj | None]) -> Result:
    """``sync(key)``, with a decode error (a stored field of the wrong type) made a terminal
    failure about the cached object instead of a retry loop."""
    try:
        return await sync(key)
    except DECODE_ERRORS as err:
        return Result(terminal=Terminal(*undecodable(cached(key), err)))
