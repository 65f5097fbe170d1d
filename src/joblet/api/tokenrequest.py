"""The ``serviceaccounts/token`` subresource (authentication.k8s.io/v1 TokenRequest), pure parts.

Why: pods (through the node agent), ``kubectl create token`` and the Python client ask the API
for a service-account token exactly this way upstream: POST a TokenRequest naming audiences,
a lifetime and optionally the Pod the token is bound to; the answer carries ``status.token``
and ``status.expirationTimestamp``. Validation and the answer's shape are here, with
upstream's messages; the registry (:meth:`joblet.api.registry.Registry.create_token`) reads the
ServiceAccount and Pod and signs with :mod:`joblet.security.satokens`.
"""

from __future__ import annotations

from typing import Any

from joblet.errors import BadRequest, Cause, invalid

Obj = dict[str, Any]
GROUP = "authentication.k8s.io"
API_VERSION = "authentication.k8s.io/v1"
KIND = "TokenRequest"
DEFAULT_EXPIRATION_SECONDS = 3600
MIN_EXPIRATION_SECONDS = 600
MAX_EXPIRATION_SECONDS = 1 << 32


def parse_token_request(name: str, body: Any) -> Obj:
    """The request's spec with defaults (expirationSeconds 3600), or a 400/422 as upstream."""
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise BadRequest("the body of the request was not a JSON object")
    kind, api_version = body.get("kind"), body.get("apiVersion")
    if (kind not in (None, "", KIND)) or (api_version not in (None, "", API_VERSION)):
        raise BadRequest(f"the API version in the data ({api_version}) and kind ({kind}) do not match "
                         f"the expected {API_VERSION}, Kind={KIND}")
    spec = body.get("spec") or {}
    if not isinstance(spec, dict):
        raise BadRequest("spec must be an object")
    causes: list[Cause] = []
    audiences = spec.get("audiences") or []
    if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
        causes.append(Cause("spec.audiences", "Invalid value: must be a list of strings"))
        audiences = []
    seconds = spec.get("expirationSeconds")
    if seconds is None:
        seconds = DEFAULT_EXPIRATION_SECONDS
    if not isinstance(seconds, int) or isinstance(seconds, bool):
        causes.append(Cause("spec.expirationSeconds", f"Invalid value: {seconds!r}: must be an integer"))
        seconds = DEFAULT_EXPIRATION_SECONDS
    elif seconds < MIN_EXPIRATION_SECONDS:
        causes.append(Cause("spec.expirationSeconds",
                            f"Invalid value: {seconds}: may not specify a duration less than 10 minutes"))
    elif seconds > MAX_EXPIRATION_SECONDS:
        causes.append(Cause("spec.expirationSeconds",
                            f"Invalid value: {seconds}: may not specify a duration larger than 2^32 seconds"))
    ref = spec.get("boundObjectRef")
    if ref is not None and not isinstance(ref, dict):
        causes.append(Cause("spec.boundObjectRef", "Invalid value: must be an object"))
        ref = None
    if ref is not None and not ref.get("name"):
        causes.append(Cause("spec.boundObjectRef.name", "Required value", "FieldValueRequired"))
    if causes:
        raise invalid(KIND, GROUP, name, causes)
    out: Obj = {"audiences": list(audiences), "expirationSeconds": seconds}
    if ref is not None:
        out["boundObjectRef"] = {k: str(v) for k, v in ref.items() if k in ("kind", "apiVersion", "name", "uid") and v}
    return out


def bound_kind(ref: Obj) -> str:
    """The bound object's kind; only core ``Pod`` can be bound (else upstream's 400)."""
    api_version = str(ref.get("apiVersion") or "")
    group = api_version.split("/", 1)[0] if "/" in api_version else ""
    kind = str(ref.get("kind") or "")
    if group != "" or kind != "Pod":
        gvk = f"{api_version or '/'}, Kind={kind}"
        raise BadRequest(f"cannot bind token to object of type {gvk}")
    return kind


def token_request_response(namespace: str, name: str, spec: Obj, token: str, expiration: str) -> Obj:
    return {
        "kind": KIND, "apiVersion": API_VERSION,
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": None},
        "spec": spec,
        "status": {"token": token, "expirationTimestamp": expiration},
    }
