"""kopf: an operator on Jobs (create, field and delete handlers, so kopf's finalizer and its
annotation patches), run in-process beside a kubernetes_asyncio driver that creates, resumes
and deletes the Jobs it watches. Reports what the handlers saw and how many of kopf's own
patches the server refused (409/422), which upstream's batched Job status writes keep rare."""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

import kopf
from common import NS, indexed_job, report, suspended_job
from kubernetes_asyncio import client, config, watch

prefix = sys.argv[1]
LABELS = {"suite": prefix}
seen: dict[str, Any] = {"created": set(), "succeeded": {}, "deleted": set()}
changed = asyncio.Condition()
refused: list[str] = []


class Refusals(logging.Handler):
    """Counts kopf's optimistic JSON patches (``test`` of the resourceVersion) the server refused:
    kopf logs those at DEBUG ("Could not apply the patch in full due to conflicts")."""

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if "Could not apply the patch in full" in text or (
                record.levelno >= logging.WARNING and any(code in text for code in ("409", "422", "Conflict"))):
            refused.append(text[:200])


kopf_log = logging.getLogger("kopf")
kopf_log.setLevel(logging.DEBUG)
kopf_log.addHandler(Refusals())
kopf_log.propagate = False


async def note(key: str, name: str, value: Any = True) -> None:
    async with changed:
        if isinstance(seen[key], set):
            seen[key].add(name)
        else:
            seen[key][name] = value
        changed.notify_all()


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.watching.server_timeout = 60
    settings.networking.request_timeout = 30


@kopf.on.create("batch", "v1", "jobs", labels=LABELS)
async def created(name: str, patch: kopf.Patch, **_: Any) -> None:
    patch.metadata.labels["kopf-handled"] = "yes"
    await note("created", name)


@kopf.on.field("batch", "v1", "jobs", field="status.succeeded", labels=LABELS)
async def succeeded(name: str, new: Any, **_: Any) -> None:
    await note("succeeded", name, new)


@kopf.on.delete("batch", "v1", "jobs", labels=LABELS)
async def deleted(name: str, **_: Any) -> None:
    await note("deleted", name)


async def until(check: Any, what: str) -> None:
    async with changed:
        try:
            await asyncio.wait_for(changed.wait_for(check), 90)
        except TimeoutError:
            raise SystemExit(f"the operator never saw {what}: {seen}") from None


async def main() -> None:
    stop = asyncio.Event()
    operator = asyncio.create_task(kopf.operator(namespaces=[NS], stop_flag=stop, standalone=True))
    await config.load_kube_config()
    out: dict[str, Any] = {}
    async with client.ApiClient() as api:
        batch = client.BatchV1Api(api)

        async def gone(name: str, rv: str) -> None:
            w = watch.Watch()
            async with w.stream(batch.list_namespaced_job, NS, field_selector=f"metadata.name={name}",
                                resource_version=rv, timeout_seconds=60) as stream:
                async for event in stream:
                    if event["type"] == "DELETED":
                        return
            raise SystemExit(f"job {name} was not deleted")

        idx = (await batch.create_namespaced_job(NS, indexed_job(prefix))).metadata.name
        await until(lambda: seen["succeeded"].get(idx) == 3 and idx in seen["created"], f"{idx} succeed")
        job = await batch.read_namespaced_job(idx, NS)
        out["handled_label"] = job.metadata.labels.get("kopf-handled")
        out["finalizers"] = list(job.metadata.finalizers or [])
        susp = (await batch.create_namespaced_job(NS, suspended_job(prefix))).metadata.name
        await until(lambda: susp in seen["created"], f"{susp} created")
        await batch.patch_namespaced_job(susp, NS, {"spec": {"suspend": False}})
        await until(lambda: seen["succeeded"].get(susp) == 1, f"{susp} succeed after resume")
        for name, policy in ((idx, "Orphan"), (susp, "Foreground")):
            rv = (await batch.read_namespaced_job(name, NS)).metadata.resource_version
            await batch.delete_namespaced_job(name, NS, propagation_policy=policy)
            await until(lambda n=name: n in seen["deleted"], f"{name} deleted")  # type: ignore[misc]
            await gone(name, rv)
    stop.set()
    await asyncio.wait_for(operator, 30)
    out["created"] = sorted(seen["created"])
    out["succeeded"] = seen["succeeded"]
    out["deleted"] = sorted(seen["deleted"])
    out["refused_patches"] = len(refused)
    out["refusals"] = refused[:3]
    report(out)


asyncio.run(main())
