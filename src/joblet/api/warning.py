"""Warnings a write collects on its way through the API, and their HTTP ``Warning`` form.

Why: admission (Pod Security ``warn``), field validation (``fieldValidation=Warn``) and
deletion (the Job propagation notice) all add warnings inside the registry, on either
transport. Like upstream's ``k8s.io/apiserver/pkg/warning`` they go into a recorder the caller
sets around the call (a context variable, so the Client interface stays ``Obj``-returning):
the HTTP server turns what it collected into ``Warning`` headers, the HTTP client turns the
headers it receives back into warnings for its own caller, so the CLI prints the same
warnings on the local and the HTTP path.
"""

from __future__ import annotations

import contextlib
import contextvars
import re
from collections.abc import Iterator

# Like the apiserver's recorder: at most 4 KiB in all, each message cut to 256 characters
# once the total would be exceeded.
MAX_WARNINGS_BYTES = 4096
MAX_WARNING_CHARS = 256

_WARNINGS: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("joblet_api_warnings", default=None)
_UNESCAPE = re.compile(r"\\(u[0-9a-f]{4}|U[0-9a-f]{8}|.)")
_WARN_VALUE = re.compile(r'\s*299\s+\S+\s+"((?:[^"\\]|\\.)*)"\s*(?:,|$)')


@contextlib.contextmanager
def collect() -> Iterator[list[str]]:
    """The warnings raised by the writes inside the block, each message once, in order."""
    collected: list[str] = []
    token = _WARNINGS.set(collected)
    try:
        yield collected
    finally:
        _WARNINGS.reset(token)


def warn(message: str) -> None:
    """Record ``message`` for the caller (dropped when nobody collects; repeats kept once)."""
    collected = _WARNINGS.get()
    if collected is not None and message not in collected:
        collected.append(message)


def _header_text(text: str) -> str:
    """Printable ASCII only: anything else as ``\\uXXXX`` (a header must be Latin-1 and a
    client may show it on a terminal)."""
    if text.isascii() and text.isprintable():
        return text
    return "".join(ch if " " <= ch <= "~" else f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF
                   else f"\\U{ord(ch):08x}" for ch in text)


def _warn_value(text: str) -> str:
    return '299 - "' + _header_text(text.replace("\\", "\\\\").replace('"', '\\"')) + '"'


def warning_header(warnings: list[str]) -> str:
    """RFC 7234 warn-values (``299 - "text"``), escaped to ASCII and bounded in size."""
    values = [_warn_value(w) for w in warnings]
    if sum(len(v) + 2 for v in values) > MAX_WARNINGS_BYTES:
        values = [_warn_value(w[:MAX_WARNING_CHARS]) for w in warnings]
    kept: list[str] = []
    total = 0
    for value in values:
        total += len(value) + 2
        if total > MAX_WARNINGS_BYTES:
            break
        kept.append(value)
    return ", ".join(kept)


def _unescape(m: re.Match[str]) -> str:
    code = m.group(1)
    return chr(int(code[1:], 16)) if len(code) > 1 else code


def parse_warning_header(value: str) -> list[str]:
    """The texts of the ``299`` warn-values of one ``Warning`` header (others are skipped)."""
    out: list[str] = []
    pos = 0
    while pos < len(value):
        m = _WARN_VALUE.match(value, pos)
        if m is None:
            break
        out.append(_UNESCAPE.sub(_unescape, m.group(1)))
        pos = m.end()
    return out
