"""Table test of the Pod Security Standards checks against upstream's wording."""

from __future__ import annotations

from typing import Any

import pytest

from joblet.api import admission, warning
from joblet.api.admission import pod_security
from joblet.errors import Forbidden, Invalid

RESTRICTED_SC = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "runAsNonRoot": True,
                 "seccompProfile": {"type": "RuntimeDefault"}}


def spec(**kw: Any) -> dict[str, Any]:
    container = {"name": "c", "image": "busybox", **kw.pop("container", {})}
    return {"containers": [container], **kw}


@pytest.mark.parametrize(("level", "pod_spec", "want"), [
    ("baseline", spec(), []),
    ("privileged", spec(hostNetwork=True, volumes=[{"name": "h", "hostPath": {"path": "/"}}]), []),
    ("baseline", spec(volumes=[{"name": "h", "hostPath": {"path": "/"}}]), [("hostPath volumes", 'volume "h"')]),
    ("baseline", spec(volumes=[{"name": "a", "hostPath": {"path": "/"}}, {"name": "b", "hostPath": {"path": "/"}}]),
     [("hostPath volumes", 'volumes "a", "b"')]),
    ("baseline", spec(hostPID=True, hostNetwork=True), [("host namespaces", "hostNetwork=true, hostPID=true")]),
    ("baseline", spec(container={"securityContext": {"privileged": True}}),
     [("privileged", 'container "c" must not set securityContext.privileged=true')]),
    ("baseline", spec(container={"securityContext": {"capabilities": {"add": ["SYS_ADMIN", "NET_ADMIN", "CHOWN"]}}}),
     [("non-default capabilities",
       'container "c" must not include "NET_ADMIN", "SYS_ADMIN" in securityContext.capabilities.add')]),
    ("baseline", spec(container={"ports": [{"containerPort": 80, "hostPort": 8080}]}),
     [("hostPort", 'container "c" uses hostPort 8080')]),
    ("baseline", spec(securityContext={"seccompProfile": {"type": "Unconfined"}}),
     [("seccompProfile", 'pod must not set securityContext.seccompProfile.type to "Unconfined"')]),
    ("baseline", spec(securityContext={"sysctls": [{"name": "kernel.msgmax", "value": "1"},
                                                   {"name": "net.ipv4.tcp_syncookies", "value": "1"}]}),
     [("forbidden sysctls", "kernel.msgmax")]),
    ("baseline", spec(container={"securityContext": {"procMount": "Unmasked"}}),
     [("procMount", 'container "c" must not set securityContext.procMount to "Unmasked"')]),
    ("restricted", spec(container={"securityContext": RESTRICTED_SC}), []),
    ("restricted", spec(volumes=[{"name": "h", "hostPath": {"path": "/"}}]), [
        ("allowPrivilegeEscalation != false", 'container "c" must set securityContext.allowPrivilegeEscalation=false'),
        ("unrestricted capabilities", 'container "c" must set securityContext.capabilities.drop=["ALL"]'),
        ("restricted volume types", 'volume "h" uses restricted volume type "hostPath"'),
        ("runAsNonRoot != true", 'pod or container "c" must set securityContext.runAsNonRoot=true'),
        ("seccompProfile", 'pod or container "c" must set securityContext.seccompProfile.type to '
                           '"RuntimeDefault" or "Localhost"'),
    ]),
    ("restricted", spec(securityContext={"runAsUser": 0},
                        container={"securityContext": {**RESTRICTED_SC, "privileged": True, "runAsUser": 0,
                                                       "capabilities": {"drop": ["ALL"],
                                                                        "add": ["NET_BIND_SERVICE", "NET_RAW"]}}}), [
        ("privileged", 'container "c" must not set securityContext.privileged=true'),
        ("unrestricted capabilities", 'container "c" must not include "NET_RAW" in securityContext.capabilities.add'),
        ("runAsUser=0", 'pod and container "c" must not set runAsUser=0'),
    ]),
    ("restricted", spec(securityContext={"runAsNonRoot": False}, container={"securityContext": RESTRICTED_SC}),
     [("runAsNonRoot != true", "pod must not set securityContext.runAsNonRoot=false")]),
], ids=lambda v: v if isinstance(v, str) else None)
def test_checks(level: str, pod_spec: dict[str, Any], want: list[tuple[str, str]]) -> None:
    assert pod_security.evaluate(level, {"name": "x"}, pod_spec) == want


def ns(**labels: str) -> dict[str, Any]:
    return {"metadata": {"name": "n", "labels": {f"pod-security.kubernetes.io/{k.replace('_', '-')}": v
                                                 for k, v in labels.items()}}}


def pod(pod_spec: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "x", "namespace": "n"}, "spec": pod_spec}


def test_enforce_message_and_warn_header_text() -> None:
    hostpath = pod(spec(volumes=[{"name": "h", "hostPath": {"path": "/"}}]))
    with pytest.raises(Forbidden) as err:
        admission.admit_pod(hostpath, None, ns(enforce="baseline"))
    assert str(err.value) == 'pods "x" is forbidden: violates PodSecurity "baseline:latest": hostPath volumes (volume "h")'
    with warning.collect() as warnings:
        admission.admit_pod(hostpath, None, ns(enforce="privileged", warn="baseline", warn_version="v1.30"))
    assert warnings == ['would violate PodSecurity "baseline:v1.30": hostPath volumes (volume "h")']
    with warning.collect() as warnings:
        admission.admit_pod(pod(spec()), None, ns(enforce="baseline", warn="baseline"))
        admission.admit_pod(hostpath, None, None)  # no labels: privileged
    assert warnings == []


def test_bad_level_is_restricted_and_insignificant_updates_pass() -> None:
    plain = pod(spec())
    with pytest.raises(Forbidden, match='violates PodSecurity "restricted:latest"'):
        admission.admit_pod(plain, None, ns(enforce="bogus"))
    bound = pod({**spec(), "nodeName": "n1"})
    admission.admit_pod(bound, plain, ns(enforce="restricted"))  # binding an existing pod: not re-checked
    with pytest.raises(Forbidden):
        admission.admit_pod(pod(spec(container={"image": "other"})), plain, ns(enforce="restricted"))


def test_namespace_labels_must_name_a_level_and_version() -> None:
    with pytest.raises(Invalid) as err:
        admission.admit_namespace(ns(enforce="strict", warn_version="1.30"), None)
    assert [(c.field, c.message) for c in err.value.causes] == [
        ("metadata.labels[pod-security.kubernetes.io/enforce]",
         'Invalid value: "strict": must be one of privileged, baseline, restricted'),
        ("metadata.labels[pod-security.kubernetes.io/warn-version]", 'Invalid value: "1.30": must be "latest" or "v1.x"'),
    ]
    admission.admit_namespace(ns(enforce="baseline", enforce_version="v1.30", audit="restricted"), None)
    bad = ns(enforce="strict")
    admission.admit_namespace(bad, bad)  # an unchanged (old) bad value does not block other updates
