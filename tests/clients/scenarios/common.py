"""What every client scenario creates, shared by the Python scenarios (run in the client's own venv).

Why: the suite checks each client against the same manifests and the same expectations; this
module has no dependency but the standard library so that it imports in any client's venv.
"""

from __future__ import annotations

import json
import sys
from typing import Any

NS = "default"


def indexed_job(prefix: str) -> dict[str, Any]:
    return job(f"{prefix}-idx", prefix, completions=3, parallelism=3, completionMode="Indexed")


def suspended_job(prefix: str) -> dict[str, Any]:
    return job(f"{prefix}-susp", prefix, suspend=True)


def job(name: str, prefix: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "labels": {"suite": prefix}},
            "spec": {"backoffLimit": 0, **spec, "template": {"spec": {
                "restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                "containers": [{"name": "main", "image": "busybox",
                                "command": ["sh", "-c", "echo index=${JOB_COMPLETION_INDEX:-none}"]}]}}}}


def cronjob(prefix: str) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": f"{prefix}-cron", "labels": {"suite": prefix}},
            "spec": {"schedule": "0 0 1 1 *", "jobTemplate": {"spec": {"template": {"spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "main", "image": "busybox", "command": ["true"]}]}}}}}}


def complete(job: dict[str, Any]) -> bool:
    conditions = (job.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Complete" and c.get("status") == "True" for c in conditions)


def report(result: dict[str, Any]) -> None:
    """The one JSON line the test reads."""
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
