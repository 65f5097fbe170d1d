"""Moved to :mod:`joblet.client.events` (the node agent records Events too, and may not import
controllers). This re-export keeps branches written against the old path importing; new code
imports ``joblet.client.events``."""

from joblet.client.events import (
    ClientEventRecorder,
    EventRecorder,
    FakeRecorder,
    RecordedEvent,
    involved_object,
)

__all__ = ["ClientEventRecorder", "EventRecorder", "FakeRecorder", "RecordedEvent", "involved_object"]
