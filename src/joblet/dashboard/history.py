"""Every attempt of every pod of a Job, from the log store: what outlives the pods.

Why: Kubernetes users lose the logs of failed attempts (kubernetes#27768, #74848, #78644)
and cannot see all pods of a parallel Job at once (k9s#955). The log store keeps one file
per container attempt under ``logs/<ns>/<pod>/<uid>/<container>/<n>.log``; this module
lists them (also for pods already deleted, e.g. by a Job's TTL) with their time span, for
``joblet logs job/X --all-attempts`` and the dashboard's timeline. Pure path/text parsing
beside small file reads; no API calls.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from joblet.logformat import line_time, log_files, render


@dataclass(frozen=True)
class Attempt:
    namespace: str
    pod: str
    uid: str
    container: str
    number: int  # 0-based attempt of this container in this pod
    path: Path
    start: datetime | None
    end: datetime | None
    done: bool


def pod_name_pattern(job_name: str) -> re.Pattern[str]:
    """Names the Job controller generates: ``<job>-<5 chars>`` or ``<job>-<index>-<5 chars>``."""
    return re.compile(rf"^{re.escape(job_name)}-(?:(\d+)-)?[a-z0-9]{{5}}$")


def index_from_name(job_name: str, pod_name: str) -> int | None:
    m = pod_name_pattern(job_name).match(pod_name)
    return int(m.group(1)) if m and m.group(1) is not None else None


def job_pods_in_logs(root: Path, namespace: str, job_name: str) -> list[str]:
    """Pods of ``job_name`` that have logs in the store (live or deleted)."""
    pattern = pod_name_pattern(job_name)
    try:
        names = [p.name for p in (root / namespace).iterdir() if p.is_dir()]
    except OSError:
        return []
    return sorted(n for n in names if pattern.match(n))


def time_span(path: Path) -> tuple[datetime | None, datetime | None]:
    """First and last line timestamps of a CRI log (rotated files included; end: mtime when it has no lines)."""
    files = log_files(path)
    try:
        with open(files[0], "rb") as f:
            head = f.read(512)
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 4096))
            tail = f.read()
        mtime = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except OSError:
        return None, None
    first = head.split(b"\n", 1)[0]
    lines = [ln for ln in tail.split(b"\n") if ln]
    start = line_time(first) if first else None
    end = line_time(lines[-1]) if lines else None
    return start or mtime, max(end, mtime) if end else mtime


def pod_attempts(root: Path, namespace: str, pod: str) -> list[Attempt]:
    """Every attempt of every container of every incarnation (uid) of a pod name, by start."""
    found: list[Attempt] = []
    base = root / namespace / pod
    for uid_dir in _dirs(base):
        for cdir in _dirs(uid_dir):
            for log in cdir.glob("*.log"):
                if not log.stem.isdigit():
                    continue
                start, end = time_span(log)
                found.append(Attempt(namespace, pod, uid_dir.name, cdir.name, int(log.stem), log, start, end,
                                     log.with_suffix(".done").exists()))
    epoch = datetime.min.replace(tzinfo=UTC)
    found.sort(key=lambda a: (a.start or epoch, a.uid, a.container, a.number))
    return found


def job_attempts(root: Path, namespace: str, job_name: str, extra_pods: list[str] | None = None) -> list[Attempt]:
    pods = set(job_pods_in_logs(root, namespace, job_name)) | set(extra_pods or [])
    out: list[Attempt] = []
    for pod in pods:
        out.extend(pod_attempts(root, namespace, pod))
    epoch = datetime.min.replace(tzinfo=UTC)
    out.sort(key=lambda a: (a.start or epoch, a.pod, a.container, a.number))
    return out


def attempt_label(job_name: str, a: Attempt, multi_container: bool, index: int | None = None) -> str:
    """``[index/pod attempt N]`` (N from 1; ``-`` for no index; ``pod/container`` if several)."""
    ix = index if index is not None else index_from_name(job_name, a.pod)
    who = f"{a.pod}/{a.container}" if multi_container else a.pod
    return f"[{'-' if ix is None else ix}/{who} attempt {a.number + 1}]"


def read_attempt(path: Path, timestamps: bool = False) -> Iterator[str]:
    """The lines of one attempt's log (rotated files first), as ``kubectl logs`` prints them."""
    for part in log_files(path):
        try:
            f = open(part, "rb")  # noqa: SIM115 - a generator closes it below
        except OSError:
            continue
        with f:
            for line in f:
                yield render(line.rstrip(b"\n"), timestamps).decode("utf-8", errors="replace").rstrip("\n")


def _dirs(path: Path) -> list[Path]:
    try:
        return sorted(p for p in path.iterdir() if p.is_dir())
    except OSError:
        return []
