"""Pod Security admission through the real registry, job controller and node agent.

Fails on the code before admission existed: a namespace labelled
``pod-security.kubernetes.io/enforce=baseline`` accepted a hostPath pod that then ran as the
server's user with the host's root file system bound in.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from pods_plane import Plane, needs_bwrap, pod, run

from joblet.api import warning
from joblet.errors import Forbidden

pytestmark = [needs_bwrap]


def namespace(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {
        f"pod-security.kubernetes.io/{k}": v for k, v in labels.items()}}}


def hostpath_pod(name: str, ns: str) -> dict[str, Any]:
    p = pod(name, "ls /host >/dev/null && echo mounted-host-root")
    p["metadata"]["namespace"] = ns
    p["spec"]["volumes"] = [{"name": "h", "hostPath": {"path": "/"}}]
    p["spec"]["containers"][0]["volumeMounts"] = [{"name": "h", "mountPath": "/host"}]
    return p


def test_enforce_rejects_pods_warn_warns_and_jobs_pods_are_rejected(tmp_path: Path) -> None:
    async def body(p: Plane) -> None:
        await p.client.create("namespaces", namespace("locked", enforce="baseline", warn="restricted"))
        with pytest.raises(Forbidden) as err:
            await p.client.create("pods", hostpath_pod("h", "locked"))
        assert str(err.value) == ('pods "h" is forbidden: violates PodSecurity "baseline:latest": '
                                  'hostPath volumes (volume "h")')
        assert err.value.code == 403

        ok = pod("fine", "echo fine")
        ok["metadata"]["namespace"] = "locked"
        with warning.collect() as warnings:
            await p.client.create("pods", ok)
        assert warnings == ['would violate PodSecurity "restricted:latest": allowPrivilegeEscalation != false '
                            '(container "c" must set securityContext.allowPrivilegeEscalation=false), '
                            'unrestricted capabilities (container "c" must set securityContext.capabilities.drop='
                            '["ALL"]), runAsNonRoot != true (pod or container "c" must set '
                            'securityContext.runAsNonRoot=true), seccompProfile (pod or container "c" must set '
                            'securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")']
        done = await p.finished("fine", namespace="locked")
        assert done["status"]["phase"] == "Succeeded"

        # a Job is admitted with a warning; the pods its controller creates are rejected
        template = hostpath_pod("t", "locked")
        job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j", "namespace": "locked"},
               "spec": {"backoffLimit": 0, "template": {"spec": template["spec"]}}}
        with warning.collect() as warnings:
            await p.client.create("jobs", job)
        assert len(warnings) == 1 and warnings[0].startswith('would violate PodSecurity "restricted:latest": ')
        assert 'restricted volume types (volume "h" uses restricted volume type "hostPath")' in warnings[0]
        for _ in range(200):
            events = [e for e in (await p.client.list("events", "locked")).items if e["reason"] == "FailedCreate"]
            if events:
                break
            await asyncio.sleep(0.05)
        assert 'violates PodSecurity "baseline:latest": hostPath volumes (volume "h")' in events[0]["message"]
        assert [x["metadata"]["name"] for x in (await p.client.list("pods", "locked")).items] == ["fine"]

        # the same pod in an unlabelled namespace is admitted (privileged) and runs
        await p.client.create("pods", hostpath_pod("h", "default"))
        await p.finished("h")
        assert await p.output("h") == "mounted-host-root\n"

    run(tmp_path, body)
