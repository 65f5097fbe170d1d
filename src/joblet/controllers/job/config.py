"""Tunables of the Job controller, in one place so the CLI flags map onto fields 1:1.

``pod_failure_backoff`` / ``pod_failure_backoff_max`` are ``--pod-failure-backoff`` /
``--pod-failure-backoff-max`` (upstream constants DefaultJobPodFailureBackOff = 10 s and
MaxJobPodFailureBackOff = 10 min). ``sync_batch_delay`` is upstream's 1 s syncJobBatchPeriod;
joblet defaults it to 0 because its watch delivery is in-process and cheap. Instead, pod events
are paced by what a sync costs: ``sync_pacing`` times the Job's last sync duration must pass after
it before the next (a one-pod Job syncs at once; a Job of thousands, whose every sync walks all
its pods, is synced less often, each sync taking in more finished pods).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class JobControllerConfig:
    pod_failure_backoff: float = 10.0
    pod_failure_backoff_max: float = 600.0
    sync_batch_delay: float = 0.0
    sync_pacing: float = 2.0
    workers: int = 5
    max_uncounted_pods: int = 500
    max_pod_create_delete_per_sync: int = 500
    expectations_timeout: float = 300.0
    #: Failed-sync requeue: 1 s doubling to 60 s per key.
    retry_base_delay: float = 1.0
    retry_max_delay: float = 60.0
