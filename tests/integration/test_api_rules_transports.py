"""Every API rule answers the same on both transports: a table of named cases, each run once
through the in-process client (LocalClient → Registry) and once through the HTTP client
(HttpClient → HTTPS + token → api.server → the same registry), against one control plane.

What each case checks is the caller's view: the object written (or the error's class and
message) and the warnings collected with :func:`joblet.api.warning.collect` — the HTTP client
reads them back from ``Warning`` headers, the local one gets them directly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from joblet.api import warning
from joblet.api.strategy import JOB_DELETE_WARNING
from joblet.client.http import HttpClient
from joblet.client.interface import Client
from joblet.config import ControlPlaneConfig
from joblet.controlplane import ControlPlane
from joblet.errors import ApiError, BadRequest
from joblet.kubeconfig import load_access
from support.builders import job, pod

Obj = dict[str, Any]
TYPO_STRICT = ('Job in version "v1" cannot be handled as a Job: strict decoding error: '
               'unknown field "spec.backofLimit"')


def typo_job(name: str) -> Obj:
    j = job(name)
    j["spec"]["backofLimit"] = 0
    return j


@dataclass(frozen=True)
class Case:
    name: str
    #: (client, a name unique to this run) → the object the API answered
    call: Callable[[Client, str], Awaitable[Obj]]
    #: what the answer must show (None: nothing beyond no error)
    check: Callable[[Obj], bool] | None = None
    error: type[ApiError] | None = None
    message: str | None = None
    warnings: tuple[str, ...] = ()


async def create_typo(c: Client, n: str, mode: Any) -> Obj:
    return await c.create("jobs", typo_job(n), "default", field_validation=mode)


async def update_with(c: Client, n: str, mode: Any, change: Callable[[Obj], None]) -> Obj:
    await c.create("jobs", job(n), "default")
    current = dict(await c.get("jobs", n, "default"))
    current["spec"] = {**current["spec"]}
    change(current)
    return await c.update("jobs", current, field_validation=mode)


async def patch_with(c: Client, n: str, body: Any, patch_type: Any, mode: Any) -> Obj:
    await c.create("jobs", job(n), "default")
    return await c.patch("jobs", n, body, "default", patch_type=patch_type, field_validation=mode)


async def delete_job(c: Client, n: str, policy: Any) -> Obj:
    await c.create("jobs", job(n), "default")
    return await c.delete("jobs", n, "default", propagation_policy=policy)


async def pod_status_owner(c: Client, n: str) -> Obj:
    created = await c.create("pods", pod(n), "default")
    changed = {**created, "metadata": {**created["metadata"], "ownerReferences": [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "u"}]}, "status": {"phase": "Pending"}}
    return await c.update("pods", changed, "status")


async def namespace_finalize(c: Client, n: str) -> Obj:
    ns = await c.create("namespaces", {"metadata": {"name": n}})
    changed = {**ns, "metadata": {**ns["metadata"], "labels": {"changed": "yes"}},
               "spec": {"finalizers": ["example.com/x"]}}
    return await c.update("namespaces", changed, "finalize")


async def chunked_list(c: Client, n: str, **selectors: str) -> Obj:
    """Five ConfigMaps in a namespace of their own, read two at a time: names and counts per page."""
    await c.create("namespaces", {"metadata": {"name": n}})
    for i in range(5):
        await c.create("configmaps", {"metadata": {"name": f"cm-{i}", "labels": {"odd": str(i % 2)}}}, n)
    pages: list[list[str]] = []
    remaining: list[int | None] = []
    token: str | None = None
    while True:
        page = await c.list("configmaps", n, selectors.get("label"), limit=2, continue_token=token)
        pages.append([o["metadata"]["name"] for o in page.items])
        remaining.append(page.remaining)
        token = page.continue_token or None
        if token is None:
            return {"pages": pages, "remaining": remaining}


def spec_of(obj: Obj) -> Obj:
    return dict(obj.get("spec") or {})


CASES = [
    Case("strict-typo-create-fails", lambda c, n: create_typo(c, n, "Strict"), error=BadRequest, message=TYPO_STRICT),
    Case("warn-typo-create-drops-it-with-a-warning", lambda c, n: create_typo(c, n, "Warn"),
         check=lambda o: "backofLimit" not in spec_of(o) and spec_of(o)["backoffLimit"] == 6,
         warnings=('unknown field "spec.backofLimit"',)),
    Case("ignore-typo-create-drops-it-silently", lambda c, n: create_typo(c, n, "Ignore"),
         check=lambda o: "backofLimit" not in spec_of(o)),
    Case("wrong-type-fails-in-every-mode",
         lambda c, n: c.create("jobs", {**job(n), "spec": {**job(n)["spec"], "parallelism": "two"}}, "default",
                               field_validation="Ignore"),
         error=BadRequest, message='Job in version "v1" cannot be handled as a Job: spec.parallelism: '
                                   'cannot unmarshal string into a field of type int32'),
    Case("unknown-mode-fails", lambda c, n: create_typo(c, n, "Loose"), error=BadRequest,
         message="fieldValidation parameter unsupported: Loose"),
    Case("strict-typo-update-fails",
         lambda c, n: update_with(c, n, "Strict", lambda o: o["spec"].update(backofLimit=1)),
         error=BadRequest, message=TYPO_STRICT),
    Case("warn-typo-merge-patch-warns",
         lambda c, n: patch_with(c, n, {"spec": {"backofLimit": 1}}, "merge", "Warn"),
         check=lambda o: "backofLimit" not in spec_of(o), warnings=('unknown field "spec.backofLimit"',)),
    Case("strict-typo-apply-patch-fails",
         lambda c, n: patch_with(c, n, {**typo_job(n), "metadata": {"name": n}}, "apply", "Strict"),
         error=BadRequest, message=TYPO_STRICT),
    Case("json-patch-values-are-typed",
         lambda c, n: patch_with(c, n, [{"op": "replace", "path": "/spec/parallelism", "value": "two"}], "json",
                                 "Strict"),
         error=BadRequest),
    Case("job-delete-without-policy-warns", lambda c, n: delete_job(c, n, None), warnings=(JOB_DELETE_WARNING,)),
    Case("job-delete-with-policy-is-quiet", lambda c, n: delete_job(c, n, "Background")),
    Case("pod-status-write-keeps-owner", pod_status_owner,
         check=lambda o: "ownerReferences" not in o["metadata"] and o["status"]["phase"] == "Pending"),
    Case("list-in-chunks", chunked_list,
         check=lambda o: o == {"pages": [["cm-0", "cm-1"], ["cm-2", "cm-3"], ["cm-4"]], "remaining": [3, 1, None]}),
    Case("list-in-chunks-with-a-selector", lambda c, n: chunked_list(c, n, label="odd=0"),
         check=lambda o: o == {"pages": [["cm-0", "cm-2"], ["cm-4"]], "remaining": [None, None]}),
    Case("list-with-a-forged-continue-fails",
         lambda c, n: c.list("configmaps", "default", limit=2, continue_token="forged"),
         error=BadRequest, message="continue key is not valid: it is not a token this server gave out"),
    Case("namespace-finalize-changes-only-finalizers", namespace_finalize,
         check=lambda o: o["spec"]["finalizers"] == ["example.com/x"] and "changed" not in (o["metadata"].get("labels")
                                                                                          or {})),
]


@pytest.fixture(scope="module")
def plane_clients(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One control plane (API only, HTTPS on a free port) and a loop to drive both clients in."""
    data = tmp_path_factory.mktemp("transports") / "data"
    loop = asyncio.new_event_loop()
    plane = ControlPlane(ControlPlaneConfig(data_dir=data, port=0, components=("api",)), run_controllers=False)
    loop.run_until_complete(plane.start())
    http = HttpClient.from_access(load_access(data / "kubeconfig"))
    try:
        yield loop, {"local": plane.client, "http": http}
    finally:
        loop.run_until_complete(http.close())
        loop.run_until_complete(plane.stop())
        loop.close()


async def outcome(client: Client, case: Case, name: str) -> tuple[Obj | ApiError, list[str]]:
    with warning.collect() as warnings:
        try:
            result: Obj | ApiError = await case.call(client, name)
        except ApiError as err:
            result = err
    return result, list(warnings)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_rule_is_the_same_on_both_transports(plane_clients: Any, case: Case) -> None:
    loop, clients = plane_clients
    seen: dict[str, tuple[str, ...]] = {}
    for transport, client in clients.items():
        result, warnings = loop.run_until_complete(outcome(client, case, f"{case.name[:40]}-{transport}"))
        where = f"{case.name} over {transport}"
        if case.error is not None:
            assert isinstance(result, case.error), f"{where}: {result!r}"
            if case.message is not None:
                assert result.message == case.message, where
        else:
            assert isinstance(result, dict), f"{where}: {result!r}"
            if case.check is not None:
                assert case.check(result), f"{where}: {result}"
        assert tuple(warnings) == case.warnings, where
        seen[transport] = (type(result).__name__, *warnings)
    assert seen["local"] == seen["http"]
