"""The CRI log line format (``<RFC3339Nano> stdout|stderr F|P <text>``) the shim writes, and
the names of an attempt's files (``<n>.log`` live, ``<n>.log.<seq>`` rotated).

Why a module of its own at the bottom of the layers: the node's log store writes and serves
these lines, and the dashboard's history renders stored lines too; the dashboard may not import
the node, so the format lives below both.
"""

from __future__ import annotations

import contextlib
import os
from datetime import datetime
from pathlib import Path

from joblet.clock import parse_time


def parse_cri_line(line: bytes) -> tuple[bytes, bytes, bool, bytes] | None:
    """``(timestamp, stream, full, text)`` of one CRI log line (without its newline)."""
    parts = line.split(b" ", 3)
    if len(parts) < 3:
        return None
    text = parts[3] if len(parts) == 4 else b""
    return parts[0], parts[1], parts[2] != b"P", text


def render(line: bytes, timestamps: bool) -> bytes:
    """One stored line as ``kubectl logs`` shows it."""
    parsed = parse_cri_line(line)
    if parsed is None:
        return line + b"\n"
    ts, _, full, text = parsed
    body = text + (b"\n" if full else b"")
    return ts + b" " + body if timestamps else body


def line_time(line: bytes) -> datetime | None:
    parsed = parse_cri_line(line)
    if parsed is None:
        return None
    try:
        return parse_time(parsed[0].decode())
    except ValueError:
        return None


def log_files(path: Path) -> list[Path]:
    """The files of one attempt's log in order: rotated ``<n>.log.<seq>`` by seq, then the live one."""
    prefix = path.name + "."
    rotated: list[tuple[int, Path]] = []
    with contextlib.suppress(OSError), os.scandir(path.parent) as entries:
        for entry in entries:
            suffix = entry.name[len(prefix):]
            if entry.name.startswith(prefix) and suffix.isascii() and suffix.isdigit():
                rotated.append((int(suffix), Path(entry.path)))
    return [p for _, p in sorted(rotated)] + [path]
