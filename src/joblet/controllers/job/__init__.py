"""The Kubernetes Job controller, behaviour for behaviour (spec: research/job-semantics.md §2-3).

``decisions`` holds the pure logic of one sync, ``controller`` the reconciler doing the I/O,
``backoff`` the pod-failure backoff, ``policy`` podFailurePolicy/successPolicy matching.
"""

from joblet.controllers.job.config import JobControllerConfig
from joblet.controllers.job.controller import JobController

__all__ = ["JobController", "JobControllerConfig"]
