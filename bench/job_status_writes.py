"""Job status writes per Job: how many times a running ``joblet server`` bumps a Job's
resourceVersion (MODIFIED events of a watch on it) from create to Complete, for an Indexed
Job of N pods. Each write is a chance for an optimistic writer of the same Job (kopf's
finalizer and annotation patches) to conflict; kube-apiserver's Job controller batches pod
events into about one status write per second per Job (syncJobBatchPeriod).

    python bench/job_status_writes.py [--pods 8]
"""

from __future__ import annotations

import argparse
import json
import time

from _server import joblet_server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pods", type=int, default=8)
    args = parser.parse_args()
    with joblet_server() as server, server.http(60) as http:
        jobs = "/apis/batch/v1/namespaces/default/jobs"
        job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "writes"}, "spec": {
            "completions": args.pods, "parallelism": args.pods, "completionMode": "Indexed",
            "template": {"spec": {"restartPolicy": "Never", "containers": [
                {"name": "c", "image": "none", "command": ["/bin/true"]}]}}}}
        start = time.perf_counter()
        created = http.post(jobs, json=job)
        created.raise_for_status()
        modified = 0
        with http.stream("GET", jobs, params={"watch": "1", "fieldSelector": "metadata.name=writes",
                                              "resourceVersion": created.json()["metadata"]["resourceVersion"],
                                              "timeoutSeconds": "60"}) as stream:
            for line in stream.iter_lines():
                if not line:
                    continue
                event = json.loads(line)
                modified += event["type"] == "MODIFIED"
                conds = (event["object"].get("status") or {}).get("conditions") or []
                if any(c["type"] == "Complete" and c["status"] == "True" for c in conds):
                    break
        seconds = time.perf_counter() - start
    print(json.dumps({"bench": "job_status_writes", "pods": args.pods, "job_writes": modified,
                      "writes_per_pod": round(modified / args.pods, 2), "seconds_to_complete": round(seconds, 2)}))


if __name__ == "__main__":
    main()
