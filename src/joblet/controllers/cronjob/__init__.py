"""The CronJob controller: schedule math (``schedule``), pure sync decisions
(``decisions``) and the reconciler (``controller``). The pure entry points are re-exported
here for the conformance table runner."""

from joblet.controllers.cronjob.decisions import SyncPlan, sync_decision
from joblet.controllers.cronjob.schedule import (
    job_from_template,
    most_recent_schedule_time,
    next_schedule_time,
    next_schedule_time_duration,
)

__all__ = [
    "SyncPlan", "job_from_template", "most_recent_schedule_time", "next_schedule_time",
    "next_schedule_time_duration", "sync_decision",
]
