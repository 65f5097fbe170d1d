"""kubernetes_asyncio: the asyncio twin of the official client (Watch, logs, patch, delete)."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from common import NS, complete, cronjob, indexed_job, report, suspended_job
from kubernetes_asyncio import client, config, watch

prefix = sys.argv[1]


async def main() -> None:
    await config.load_kube_config()
    async with client.ApiClient() as api:
        batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
        out: dict[str, Any] = {}

        async def wait_for(name: str, rv: str | None, done: str) -> str:
            w = watch.Watch()
            kwargs = {"resource_version": rv} if rv else {}
            async with w.stream(batch.list_namespaced_job, NS, field_selector=f"metadata.name={name}",
                                timeout_seconds=90, **kwargs) as stream:
                async for event in stream:
                    obj = api.sanitize_for_serialization(event["object"])
                    if (done == "complete" and complete(obj)) or (done == "deleted" and event["type"] == "DELETED"):
                        return str(obj["metadata"]["resourceVersion"])
            raise SystemExit(f"job {name} never became {done}")

        async def pods_of(name: str) -> list[Any]:
            listed = await core.list_namespaced_pod(NS, label_selector=f"batch.kubernetes.io/job-name={name}")
            return list(listed.items)

        idx = indexed_job(prefix)
        name = idx["metadata"]["name"]
        await batch.create_namespaced_job(NS, idx)
        rv = await wait_for(name, None, "complete")
        pods = await pods_of(name)
        out["pods"] = len(pods)
        out["logs"] = sorted([(await core.read_namespaced_pod_log(p.metadata.name, NS)).strip() for p in pods])
        listed = await batch.list_namespaced_job(NS, label_selector=f"suite={prefix}")
        out["listed"] = sorted(j.metadata.name for j in listed.items)

        susp = suspended_job(prefix)
        sname = susp["metadata"]["name"]
        await batch.create_namespaced_job(NS, susp)
        out["suspended_pods"] = len(await pods_of(sname))
        await batch.patch_namespaced_job(sname, NS, {"spec": {"suspend": False}})
        srv = await wait_for(sname, None, "complete")
        out["resumed_complete"] = True

        await batch.create_namespaced_cron_job(NS, cronjob(prefix))
        crons = await batch.list_namespaced_cron_job(NS, label_selector=f"suite={prefix}")
        out["cronjobs"] = [c.metadata.name for c in crons.items]

        await batch.delete_namespaced_job(name, NS, propagation_policy="Orphan")
        await wait_for(name, rv, "deleted")
        out["orphaned_pods"] = len(await pods_of(name))
        await batch.delete_namespaced_job(sname, NS, propagation_policy="Foreground")
        await wait_for(sname, srv, "deleted")
        out["foreground_pods_left"] = len(await pods_of(sname))
        await batch.delete_namespaced_cron_job(f"{prefix}-cron", NS, propagation_policy="Background")
        crons = await batch.list_namespaced_cron_job(NS, label_selector=f"suite={prefix}")
        out["cronjobs_after"] = [c.metadata.name for c in crons.items]
        report(out)


asyncio.run(main())
