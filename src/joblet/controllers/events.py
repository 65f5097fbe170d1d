"""Controllers and stored objects they cannot digest: one bad object must not break a controller.

Why here: the Event recorder itself lives in :mod:`joblet.client.events` (the node agent
records Events too); what only controllers need — the guard that turns an undecodable object
into one ``Warning InvalidObject`` Event instead of a retry loop — stays with them.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any

from joblet.client.events import MAX_SEEN, EventRecorder

Obj = dict[str, Any]
log = logging.getLogger(__name__)

#: the Event reason a controller records for a stored object it cannot process (the
#: ``joblet run`` follower stops on it with exit 2).
INVALID_OBJECT_REASON = "InvalidObject"
#: what an object no decision function can digest raises: a field of the wrong type or shape.
DECODE_ERRORS = (TypeError, ValueError, KeyError, AttributeError, IndexError)


class UndecodableGuard:
    """One bad stored object must not break a controller: when syncing a key raises a decode
    error (``completions: "three"``), record one ``Warning InvalidObject`` Event per
    resourceVersion, log one line (no traceback) and move on instead of requeueing forever."""

    def __init__(self, recorder: EventRecorder, component: str) -> None:
        self.recorder = recorder
        self.component = component
        self._reported: OrderedDict[str, str] = OrderedDict()

    def report(self, key: str, obj: Obj | None, err: Exception) -> None:
        rv = str(((obj or {}).get("metadata") or {}).get("resourceVersion", ""))
        if self._reported.get(key) == rv:
            return
        self._reported[key] = rv
        while len(self._reported) > MAX_SEEN:
            self._reported.popitem(last=False)
        detail = f"{type(err).__name__}: {err}"
        log.warning("%s: cannot process %s (%s); skipping it until it changes", self.component, key, detail)
        if obj is not None:
            self.recorder.event(obj, "Warning", INVALID_OBJECT_REASON,
                                f"cannot process this object ({detail}); fix or delete it",
                                component=self.component)
