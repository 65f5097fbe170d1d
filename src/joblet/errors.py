"""One error tree for the whole of joblet, translated once at each boundary.

Every failure a user can cause is an :class:`ApiError`. The HTTP server turns it into a
Kubernetes ``Status`` object; the HTTP client turns a ``Status`` back into the same class;
the CLI prints its message on one line. Nothing else formats errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class Cause:
    """One entry of ``Status.details.causes``: a field path and what is wrong with it."""

    field: str
    message: str
    reason: str = "FieldValueInvalid"

    def to_dict(self) -> dict[str, str]:
        return {"reason": self.reason, "message": self.message, "field": self.field}

    def render(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


@dataclass
class ApiError(Exception):
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    code: ClassVar[int] = 500
    reason: ClassVar[str] = "InternalError"

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message

    def to_status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            status["details"] = self.details
        return status


class BadRequest(ApiError):
    code = 400
    reason = "BadRequest"


class Unauthorized(ApiError):
    code = 401
    reason = "Unauthorized"


class Forbidden(ApiError):
    code = 403
    reason = "Forbidden"


class NotFound(ApiError):
    code = 404
    reason = "NotFound"


class MethodNotAllowed(ApiError):
    code = 405
    reason = "MethodNotAllowed"


class NotAcceptable(ApiError):
    code = 406
    reason = "NotAcceptable"


class AlreadyExists(ApiError):
    code = 409
    reason = "AlreadyExists"


class Conflict(ApiError):
    code = 409
    reason = "Conflict"


class Gone(ApiError):
    code = 410
    reason = "Expired"


class RequestEntityTooLarge(ApiError):
    code = 413
    reason = "RequestEntityTooLarge"


class UnsupportedMediaType(ApiError):
    code = 415
    reason = "UnsupportedMediaType"


class MisdirectedRequest(ApiError):
    """421: the request's Host is not a name this server answers for (DNS rebinding)."""

    code = 421
    reason = "MisdirectedRequest"


class RequestHeaderFieldsTooLarge(ApiError):
    code = 431
    reason = "RequestHeaderFieldsTooLarge"


class Invalid(ApiError):
    code = 422
    reason = "Invalid"

    @property
    def causes(self) -> list[Cause]:
        return [
            Cause(c.get("field", ""), c.get("message", ""), c.get("reason", "FieldValueInvalid"))
            for c in self.details.get("causes", [])
        ]


class InternalError(ApiError):
    code = 500
    reason = "InternalError"


class ServiceUnavailable(ApiError):
    code = 503
    reason = "ServiceUnavailable"


class InsufficientStorage(ApiError):
    """A write the store could not make durable (its disk is full): never acknowledged."""

    code = 507
    reason = "InsufficientStorage"


def qualified(resource: str, group: str) -> str:
    """``jobs.batch`` / ``pods``: how Kubernetes names a resource in error messages."""
    return f"{resource}.{group}" if group else resource


def not_found(resource: str, group: str, name: str) -> NotFound:
    return NotFound(
        f'{qualified(resource, group)} "{name}" not found',
        {"name": name, "group": group, "kind": resource},
    )


def already_exists(resource: str, group: str, name: str) -> AlreadyExists:
    return AlreadyExists(
        f'{qualified(resource, group)} "{name}" already exists',
        {"name": name, "group": group, "kind": resource},
    )


def conflict(resource: str, group: str, name: str, why: str) -> Conflict:
    return Conflict(
        f'Operation cannot be fulfilled on {qualified(resource, group)} "{name}": {why}',
        {"name": name, "group": group, "kind": resource},
    )


def invalid(kind: str, group: str, name: str, causes: list[Cause]) -> Invalid:
    """422 with Kubernetes' message shape: ``Job.batch "x" is invalid: [a, b]``."""
    rendered = [c.render() for c in causes]
    joined = rendered[0] if len(rendered) == 1 else "[" + ", ".join(rendered) + "]"
    return Invalid(
        f'{qualified(kind, group)} "{name}" is invalid: {joined}',
        {"name": name, "group": group, "kind": kind, "causes": [c.to_dict() for c in causes]},
    )


_BY_CODE_REASON: dict[tuple[int, str], type[ApiError]] = {}
for _cls in (BadRequest, Unauthorized, Forbidden, NotFound, MethodNotAllowed, NotAcceptable,
             AlreadyExists, Conflict, Gone, RequestEntityTooLarge, UnsupportedMediaType, MisdirectedRequest,
             RequestHeaderFieldsTooLarge,
             Invalid, InternalError, ServiceUnavailable, InsufficientStorage):
    _BY_CODE_REASON[(_cls.code, _cls.reason)] = _cls


def from_status(status: dict[str, Any]) -> ApiError:
    """The inverse of :meth:`ApiError.to_status` (used by the HTTP client)."""
    code = int(status.get("code") or 500)
    reason = str(status.get("reason") or "")
    cls = _BY_CODE_REASON.get((code, reason))
    if cls is None:
        cls = next((c for (k, _), c in _BY_CODE_REASON.items() if k == code), InternalError)
    return cls(str(status.get("message") or reason or "error"), dict(status.get("details") or {}))
