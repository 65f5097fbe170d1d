"""The ServiceAccount admission plugin, as upstream's ``plugin/pkg/admission/serviceaccount``.

Why: every pod runs as some ServiceAccount and, unless it (or its ServiceAccount) opts out, gets
a short-lived credential for the API mounted where in-cluster clients look for it. Upstream
does this at admission, so ``kubectl get pod -o yaml`` shows the ``kube-api-access-xxxxx``
projected volume and the node agent only materialises what the spec says. The registry calls
:func:`admit_from_store` (the Pod strategy's ``admit_create``) on pod create, after defaulting and before validation.
"""

from __future__ import annotations

from typing import Any

from joblet.errors import Forbidden, NotFound
from joblet.objects import controller_ref, random_suffix, stable_suffix
from joblet.store.interface import Key, Store

Obj = dict[str, Any]
DEFAULT_SERVICE_ACCOUNT = "default"
SERVICE_ACCOUNT_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
TOKEN_VOLUME_PREFIX = "kube-api-access-"
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
#: upstream's ``WarnOnlyBoundTokenExpirationSeconds`` (1 h + 7 s)
BOUND_TOKEN_EXPIRATION_SECONDS = 3607
PROJECTED_DEFAULT_MODE = 0o644


def token_volume_source() -> Obj:
    """The projected source upstream's ``TokenVolumeSource`` builds: token, CA bundle, namespace."""
    return {"defaultMode": PROJECTED_DEFAULT_MODE, "sources": [
        {"serviceAccountToken": {"path": "token", "expirationSeconds": BOUND_TOKEN_EXPIRATION_SECONDS}},
        {"configMap": {"name": ROOT_CA_CONFIGMAP, "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace",
                                    "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
    ]}


def should_automount(service_account: Obj | None, pod: Obj) -> bool:
    """The pod's ``automountServiceAccountToken``, else its ServiceAccount's, else true."""
    pod_says = (pod.get("spec") or {}).get("automountServiceAccountToken")
    if pod_says is not None:
        return bool(pod_says)
    if service_account is not None and service_account.get("automountServiceAccountToken") is not None:
        return bool(service_account["automountServiceAccountToken"])
    return True


def service_account_name(pod: Obj) -> str:
    return str((pod.get("spec") or {}).get("serviceAccountName") or DEFAULT_SERVICE_ACCOUNT)


def admit_pod(pod: Obj, service_account: Obj | None, suffix: str) -> None:
    """Default ``serviceAccountName`` and, when the token is automounted, add the
    ``kube-api-access-<suffix>`` volume (unless one exists) and mount it read-only in every
    container that has nothing at the mount path yet (in place)."""
    spec = pod.setdefault("spec", {})
    name = service_account_name(pod)
    spec["serviceAccountName"] = name
    spec["serviceAccount"] = name  # the deprecated alias the v1 conversion fills
    if not should_automount(service_account, pod):
        return
    volumes = [v for v in spec.get("volumes") or [] if isinstance(v, dict)]
    existing = next((str(v.get("name")) for v in volumes if str(v.get("name") or "").startswith(TOKEN_VOLUME_PREFIX)),
                    None)
    volume_name = existing or TOKEN_VOLUME_PREFIX + suffix
    needs_volume = False
    for group in ("initContainers", "containers", "ephemeralContainers"):
        for ctr in spec.get(group) or []:
            if not isinstance(ctr, dict):
                continue
            mounts = ctr.get("volumeMounts")
            if not isinstance(mounts, list):
                mounts = []
            if any(isinstance(m, dict) and m.get("mountPath") == SERVICE_ACCOUNT_MOUNT for m in mounts):
                continue
            ctr["volumeMounts"] = [*mounts, {"name": volume_name, "readOnly": True, "mountPath": SERVICE_ACCOUNT_MOUNT}]
            needs_volume = True
    if needs_volume and existing is None:
        spec["volumes"] = [*(spec.get("volumes") or []), {"name": volume_name, "projected": token_volume_source()}]


def admit_from_store(pod: Obj, namespace: str, store: Store) -> None:
    """:func:`admit_pod` with the pod's ServiceAccount read from ``store``. A missing one
    forbids the pod, as upstream, except ``default``: the serviceaccounts controller creates
    that one moments after its namespace, and the node agent waits for it (its TokenRequest
    retries)."""
    name = service_account_name(pod)
    try:
        sa: Obj | None = store.get(Key("serviceaccounts", namespace, name))
    except NotFound:
        if name != DEFAULT_SERVICE_ACCOUNT:
            pod_name = str(pod["metadata"].get("name") or "")
            raise Forbidden(
                f'pods "{pod_name}" is forbidden: error looking up service account {namespace}/{name}: '
                f'serviceaccount "{name}" not found', {"name": pod_name, "kind": "pods"}) from None
        sa = None
    admit_pod(pod, sa, token_volume_suffix(pod))


def token_volume_suffix(pod: Obj) -> str:
    """The ``kube-api-access-`` suffix: random, as upstream, for a pod without a controller; the
    same for every pod of one controller (a Job's), derived from its uid. The name is private to
    each pod either way, and with it the pods of a Job have equal containers and volumes, which
    the store then keeps once for all of them (a finished pod ~1 KB smaller: 100,000 pods)."""
    ref = controller_ref(pod)
    uid = str(ref.get("uid") or "") if ref is not None else ""
    return stable_suffix(uid) if uid else random_suffix()
