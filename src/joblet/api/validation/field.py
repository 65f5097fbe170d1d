"""Field errors worded exactly like apimachinery's ``field.Error``.

Clients (and our conformance scenarios) match on the text Kubernetes produces, e.g.
``Invalid value: -1: must be greater than or equal to 0`` or
``Unsupported value: "x": supported values: "a", "b"``. Each constructor here returns a
:class:`joblet.errors.Cause` whose ``field`` is the full path and whose ``message`` is the
text after ``<path>: ``, rendering the bad value the way Go's ``%v``/``%q`` would.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from joblet.errors import Cause

REQUIRED = "FieldValueRequired"
INVALID = "FieldValueInvalid"
NOT_SUPPORTED = "FieldValueNotSupported"
DUPLICATE = "FieldValueDuplicate"
TOO_MANY = "FieldValueTooMany"
TOO_LONG = "FieldValueTooLong"
FORBIDDEN = "FieldValueForbidden"
NOT_FOUND = "FieldValueNotFound"


class _Omit:
    """Marker for ``field.OmitValueType{}``: print the error type without a value."""

    def __repr__(self) -> str:
        return "OMIT"


OMIT: Any = _Omit()


def _go_quote(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def format_value(value: Any) -> str:
    """A bad value as Go's error printer shows it (scalars exact, composites close)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return _go_quote(value)
    if isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        inner = ", ".join(f"{_go_quote(k)}:{_go_quote(v)}" for k, v in sorted(value.items()))
        return "map[string]string{" + inner + "}"
    if isinstance(value, list) and value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return "[]int32{" + ", ".join(str(v) for v in value) + "}"
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return "[]string{" + ", ".join(_go_quote(v) for v in value) + "}"
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)


def _with_detail(head: str, detail: str) -> str:
    return f"{head}: {detail}" if detail else head


def invalid(path: str, value: Any, detail: str) -> Cause:
    head = "Invalid value" if value is OMIT else f"Invalid value: {format_value(value)}"
    return Cause(path, _with_detail(head, detail), INVALID)


def required(path: str, detail: str = "") -> Cause:
    return Cause(path, _with_detail("Required value", detail), REQUIRED)


def forbidden(path: str, detail: str) -> Cause:
    return Cause(path, _with_detail("Forbidden", detail), FORBIDDEN)


def not_found(path: str, value: Any) -> Cause:
    return Cause(path, f"Not found: {format_value(value)}", NOT_FOUND)


def duplicate(path: str, value: Any) -> Cause:
    return Cause(path, f"Duplicate value: {format_value(value)}", DUPLICATE)


def not_supported(path: str, value: Any, valid: Iterable[str]) -> Cause:
    quoted = ", ".join(_go_quote(str(v)) for v in valid)
    detail = f"supported values: {quoted}" if quoted else ""
    return Cause(path, _with_detail(f"Unsupported value: {format_value(value)}", detail), NOT_SUPPORTED)


def too_many(path: str, actual: int, maximum: int) -> Cause:
    unit = "item" if maximum == 1 else "items"
    return Cause(path, f"Too many: {actual}: must have at most {maximum} {unit}", TOO_MANY)


def too_long(path: str, maximum: int) -> Cause:
    unit = "byte" if maximum == 1 else "bytes"
    return Cause(path, f"Too long: may not be more than {maximum} {unit}", TOO_LONG)


def nonnegative(value: Any, path: str) -> list[Cause]:
    """``ValidateNonnegativeField``."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
        return [invalid(path, value, "must be greater than or equal to 0")]
    return []


def immutable(new: Any, old: Any, path: str) -> list[Cause]:
    """``ValidateImmutableField``: semantic deep equality, ``field is immutable``."""
    if new != old:
        return [invalid(path, new, "field is immutable")]
    return []
