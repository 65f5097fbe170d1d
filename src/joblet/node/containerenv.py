"""What a container is started with: env, argv, run-as user, limits (the kubelet's
``kuberuntime_container`` / ``envvars`` part), as functions of the pod spec and the node.

Why apart: these are the decisions a reader checks against Kubernetes' documentation one
rule at a time; they need no pod worker, no runtime and no clock. The only I/O is
:func:`container_env` reading the secrets/configMaps env refers to, through the ``fetch``
callback it is given.

Documented choices:
* a missing secret/configMap (or key) referenced by env is a :class:`ConfigError` (message as
  the kubelet's, e.g. ``secret "x" not found``); the pod worker keeps the container waiting
  with reason ``CreateContainerConfigError`` and retries;
* ``KUBERNETES_SERVICE_HOST``/``PORT`` are set in every pod when the agent knows the API URL,
  so the kubernetes client's ``load_incluster_config()`` works unmodified;
* ``runAsUser``/``runAsGroup`` (pod or container securityContext) are applied by the shim
  right before exec; ``runAsNonRoot`` without ``runAsUser`` while the agent runs as root is
  ``container has runAsNonRoot and image will run as root``.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from joblet.node.cgroups import Limits
from joblet.node.images import path_for_image
from joblet.node.quantity import parse_quantity
from joblet.node.volumes import downward_field
from joblet.objects import name_of, namespace_of

Obj = dict[str, Any]
#: the address every pod reports (pods share the host's network)
POD_IP = "127.0.0.1"
#: ``fetch(kind, namespace, name)``: the object, or None when it does not exist
Fetch = Callable[[str, str, str], Awaitable[Obj | None]]


class ConfigError(Exception):
    """A referenced secret/configMap (key) is missing: the container cannot be created yet."""


@dataclass(frozen=True)
class NodeFacts:
    """What env resolution needs to know about the node the pod runs on."""

    node_name: str
    cpu: float  # allocatable cores (an unset limit reports this)
    memory: float  # allocatable bytes
    service_env: Mapping[str, str]  # the KUBERNETES_SERVICE_* variables (see service_env)


def container_limits(container: Obj) -> Limits:
    limits = (container.get("resources") or {}).get("limits") or {}
    memory = int(parse_quantity(limits["memory"])) if "memory" in limits else None
    cpu = int(parse_quantity(limits["cpu"]) * 1000) if "cpu" in limits else None
    return Limits(memory_bytes=memory, cpu_millis=cpu)


def field_ref(pod: Obj, path: str, node_name: str) -> str:
    """``env[].valueFrom.fieldRef``: metadata name/namespace/uid/labels['k']/annotations['k'],
    spec.nodeName, spec.serviceAccountName, status.podIP(s)/hostIP(s)."""
    return downward_field(pod, path, node_name, POD_IP)


def resource_field(container: Obj, ref: Obj, node_cpu: float, node_memory: float) -> str:
    """``resourceFieldRef``: limits/requests of the container in units of ``divisor`` (rounded up);
    an unset limit reports the node's allocatable, an unset request 0 (cpu requests: the limit)."""
    resource = str(ref.get("resource") or "")
    kind, _, what = resource.partition(".")
    res = container.get("resources") or {}
    values = res.get(kind) or {}
    if what in values:
        amount = parse_quantity(values[what])
    elif kind == "requests" and what in (res.get("limits") or {}):
        amount = parse_quantity(res["limits"][what])
    elif kind == "limits":
        amount = node_cpu if what == "cpu" else node_memory
    else:
        amount = 0.0
    divisor = parse_quantity(ref.get("divisor") or "1") or 1.0
    return str(max(int(-(-(amount / divisor) // 1)), 1 if amount > 0 else 0))


def service_env(api_url: str | None) -> dict[str, str]:
    """The ``KUBERNETES_SERVICE_*`` variables every pod gets, pointing at the joblet API."""
    if not api_url:
        return {}
    parts = urlsplit(api_url)
    host = parts.hostname or "127.0.0.1"
    port = str(parts.port or (443 if parts.scheme == "https" else 80))
    return {"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port,
            "KUBERNETES_SERVICE_PORT_HTTPS": port, "KUBERNETES_PORT": f"tcp://{host}:{port}",
            f"KUBERNETES_PORT_{port}_TCP": f"tcp://{host}:{port}", f"KUBERNETES_PORT_{port}_TCP_PROTO": "tcp",
            f"KUBERNETES_PORT_{port}_TCP_ADDR": host, f"KUBERNETES_PORT_{port}_TCP_PORT": port}


@dataclass(frozen=True)
class RunAs:
    user: int | None
    group: int | None


def run_as(pod: Obj, container: Obj, pod_ref: str, agent_uid: int) -> RunAs:
    """Effective runAsUser/runAsGroup; the kubelet's runAsNonRoot checks (raise ConfigError)."""
    psc = (pod.get("spec") or {}).get("securityContext") or {}
    csc = container.get("securityContext") or {}

    def pick(key: str) -> Any:
        return csc[key] if csc.get(key) is not None else psc.get(key)

    user, group, non_root = pick("runAsUser"), pick("runAsGroup"), pick("runAsNonRoot")
    where = f'(pod: "{pod_ref}", container: {container.get("name")})'
    if non_root:
        if user is None and agent_uid == 0:
            raise ConfigError(f"container has runAsNonRoot and image will run as root {where}")
        if user == 0:
            raise ConfigError(f"container's runAsUser breaks non-root policy {where}")
    return RunAs(None if user is None else int(user), None if group is None else int(group))


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion: defined names are replaced, ``$$`` escapes a ``$``."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text.startswith("$$", i):
            out.append("$")
            i += 2
        elif text.startswith("$(", i) and (end := text.find(")", i + 2)) != -1:
            name = text[i + 2:end]
            out.append(env[name] if name in env else text[i:end + 1])
            i = end + 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def container_argv(container: Obj, env: dict[str, str]) -> list[str]:
    command = [expand(str(a), env) for a in container.get("command") or []]
    args = [expand(str(a), env) for a in container.get("args") or []]
    return command + args


def named_container(pod: Obj, name: str) -> Obj | None:
    spec = pod.get("spec") or {}
    for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        if c.get("name") == name:
            return dict(c)
    return None


def volume_resource(pod: Obj, container_name: str, ref: Obj, node: NodeFacts) -> str:
    """A downwardAPI volume's ``resourceFieldRef`` (the container is named by the item)."""
    return resource_field(named_container(pod, container_name) or {}, ref, node.cpu, node.memory)


async def container_env(pod: Obj, container: Obj, node: NodeFacts, fetch: Fetch) -> dict[str, str]:
    """The container's environment: PATH and HOSTNAME, the service variables, ``envFrom`` in
    order, then ``env`` (later entries see earlier ones in ``$(VAR)``)."""
    spec = pod["spec"]
    env: dict[str, str] = {"PATH": path_for_image(container.get("image")),
                           "HOSTNAME": str(spec.get("hostname") or name_of(pod)),
                           **node.service_env}
    ns = namespace_of(pod)
    for source in container.get("envFrom") or []:
        prefix = str(source.get("prefix") or "")
        for kind, ref_key in (("configmaps", "configMapRef"), ("secrets", "secretRef")):
            ref = source.get(ref_key)
            if ref:
                data = await _data(fetch, kind, ns, str(ref.get("name")), bool(ref.get("optional")))
                env.update({prefix + k: v for k, v in data.items()})
    for var in container.get("env") or []:
        name = str(var["name"])
        if "valueFrom" not in var:
            env[name] = expand(str(var.get("value") or ""), env)
            continue
        source = var["valueFrom"]
        if "fieldRef" in source:
            env[name] = field_ref(pod, str(source["fieldRef"].get("fieldPath")), node.node_name)
        elif "resourceFieldRef" in source:
            ref = source["resourceFieldRef"]
            target = container
            if ref.get("containerName"):
                target = named_container(pod, str(ref["containerName"])) or container
            env[name] = resource_field(target, ref, node.cpu, node.memory)
        else:
            for kind, ref_key in (("configmaps", "configMapKeyRef"), ("secrets", "secretKeyRef")):
                ref = source.get(ref_key)
                if not ref:
                    continue
                optional = bool(ref.get("optional"))
                data = await _data(fetch, kind, ns, str(ref.get("name")), optional)
                key = str(ref.get("key"))
                if key in data:
                    env[name] = data[key]
                elif not optional:
                    kind_name = "ConfigMap" if kind == "configmaps" else "Secret"
                    raise ConfigError(f"couldn't find key {key} in {kind_name} {ns}/{ref.get('name')}")
    return env


async def _data(fetch: Fetch, kind: str, namespace: str, name: str, optional: bool) -> dict[str, str]:
    obj = await fetch(kind, namespace, name)
    if obj is None:
        if optional:
            return {}
        raise ConfigError(f'{kind[:-1]} "{name}" not found')
    if kind == "secrets":
        data = {k: base64.b64decode(v).decode(errors="replace") for k, v in (obj.get("data") or {}).items()}
        data.update(obj.get("stringData") or {})
        return data
    return {str(k): str(v) for k, v in (obj.get("data") or {}).items()}
