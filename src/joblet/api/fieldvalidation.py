"""``fieldValidation``: what a write does with fields its schema does not know.

Why: upstream decodes every request body into its typed struct, which drops unknown fields
(``spec.backofLimit`` for ``backoffLimit``) and, by the request's ``fieldValidation``, says
so: ``Strict`` refuses the write (400, ``strict decoding error``), ``Warn`` (the HTTP default)
adds a warning, ``Ignore`` is silent. The registry applies this to every body a caller hands
in with a mode, so the HTTP server (which always passes one) and the in-process client (the
CLI passes ``--validate``'s) give the same answer for the same manifest. Internal writers
(controllers, the node agent) build their bodies in code and pass no mode: nothing to decode.
Known fields of the wrong JSON type or out of range are a 400 in every mode, as typed
decoding makes them upstream.
"""

from __future__ import annotations

from typing import Any, Literal

from joblet.api import openapi
from joblet.api.resources import Resource
from joblet.api.warning import warn
from joblet.errors import BadRequest

FieldValidation = Literal["Strict", "Warn", "Ignore"]
MODES: tuple[FieldValidation, ...] = ("Strict", "Warn", "Ignore")
#: the mode of an HTTP request that names none
HTTP_DEFAULT: FieldValidation = "Warn"


def parse_mode(value: str | None) -> FieldValidation:
    """The ``fieldValidation`` query parameter (absent: Warn); anything else is a 400."""
    mode = value or HTTP_DEFAULT
    if mode not in MODES:
        raise BadRequest(f"fieldValidation parameter unsupported: {mode}")
    return mode


def decode(r: Resource, obj: Any, mode: FieldValidation | None) -> Any:
    """``obj`` as typed decoding leaves it: unknown fields dropped, reported as ``mode`` says.

    ``mode`` None: a body built by joblet code, passed through unchanged. A JSON patch (a
    list of operations) has its values type-checked, never pruned."""
    if mode is None:
        return obj
    if mode not in MODES:
        raise BadRequest(f"fieldValidation parameter unsupported: {mode}")
    if isinstance(obj, list):
        openapi.check_json_patch_types(r.api_version, r.kind, obj)
        return obj
    if not isinstance(obj, dict):
        return obj
    openapi.check_types(r.api_version, r.kind, obj)
    pruned, unknown = openapi.prune_unknown_fields(r.api_version, r.kind, obj)
    if not unknown:
        return obj
    rendered = [f'unknown field "{p}"' for p in unknown]
    if mode == "Strict":
        raise BadRequest(f'{r.kind} in version "{r.version}" cannot be handled as a {r.kind}: '
                         f"strict decoding error: {', '.join(rendered)}")
    if mode == "Warn":
        for message in rendered:
            warn(message)
    return pruned
