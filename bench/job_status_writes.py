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
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from _server import bench_root, free_port

from joblet.kubeconfig import load_access


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pods", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="joblet-bench-", dir=bench_root()) as tmp:
        data = Path(tmp) / "data"
        env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "JOBLET_DATA_DIR")}
        proc = subprocess.Popen([sys.executable, "-m", "joblet", "server", "--data-dir", str(data),
                                 "--port", str(free_port())], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=env)
        try:
            kubeconfig = data / "kubeconfig"
            deadline = time.monotonic() + 30
            while not kubeconfig.exists():
                if time.monotonic() > deadline or proc.poll() is not None:
                    sys.exit("joblet server did not start")
                time.sleep(0.05)
            access = load_access(kubeconfig)
            with httpx.Client(base_url=access.server, verify=access.ssl_context(), timeout=60,
                              headers={"Authorization": f"Bearer {access.token}"}) as http:
                while True:
                    try:
                        http.get("/version").raise_for_status()
                        break
                    except httpx.HTTPError:
                        if time.monotonic() > deadline:
                            sys.exit("joblet server did not answer")
                        time.sleep(0.05)
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
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(15)
    print(json.dumps({"bench": "job_status_writes", "pods": args.pods, "job_writes": modified,
                      "writes_per_pod": round(modified / args.pods, 2), "seconds_to_complete": round(seconds, 2)}))


if __name__ == "__main__":
    main()
