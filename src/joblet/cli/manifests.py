"""Reading manifests the way kubectl does: YAML or JSON, one or many documents, and
``kind: List``; each document becomes (resource, object). Bad input becomes one
readable line (:class:`ManifestError`), never a traceback."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from joblet.api.fieldvalidation import FieldValidation
from joblet.api.resources import Resource, for_kind

Obj = dict[str, Any]


class ManifestError(Exception):
    """A manifest that cannot be submitted; the message is one line for the user."""


@dataclass(frozen=True)
class Manifest:
    resource: Resource
    obj: Obj

    @property
    def name(self) -> str:
        meta = self.obj.get("metadata") or {}
        return str(meta.get("name") or meta.get("generateName") or "")


def load_manifests(path: str) -> list[Manifest]:
    """Parse FILE (or - for stdin) into manifests, in file order."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as err:
        raise ManifestError(f"cannot read {path}: {err.strerror or err}") from None
    return parse_manifests(text, path)


def parse_manifests(text: str, source: str = "<input>") -> list[Manifest]:
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        if mark is not None and 0 <= mark.line < len(text.splitlines()):
            line = text.splitlines()[mark.line].rstrip()
            if line.strip():
                problem += f" at {line.strip()!r}"
        if any(w in problem for w in ("block", "mapping values", "indent")):
            problem += " (check the indentation)"
        raise ManifestError(f"{source}: invalid YAML{where}: {problem}") from None
    out: list[Manifest] = []
    for doc in docs:
        items = doc.get("items") if isinstance(doc, dict) and doc.get("kind") == "List" else [doc]
        for item in items or []:
            out.append(_manifest(item, source))
    if not out:
        raise ManifestError(f"{source}: no objects found")
    return out


def _manifest(doc: Any, source: str) -> Manifest:
    if not isinstance(doc, dict):
        raise ManifestError(f"{source}: each document must be a mapping with apiVersion and kind, got {type(doc).__name__}")
    api_version, kind = doc.get("apiVersion"), doc.get("kind")
    if not api_version or not kind:
        missing = "apiVersion" if not api_version else "kind"
        raise ManifestError(f"{source}: object is missing '{missing}'")
    resource = for_kind(str(api_version), str(kind))
    if resource is None:
        raise ManifestError(f'{source}: no matches for kind "{kind}" in version "{api_version}"')
    meta = doc.get("metadata")
    if not isinstance(meta, dict) or not (meta.get("name") or meta.get("generateName")):
        raise ManifestError(f"{source}: {kind} needs metadata.name or metadata.generateName")
    return Manifest(resource, doc)


def field_validation(validate: str) -> FieldValidation:
    """``--validate`` as the ``fieldValidation`` the CLI asks the API for (kubectl's mapping):
    strict (default) refuses a field the schema does not know (a typo such as
    ``backofLimit``), warn drops it with a warning, false drops it silently. The registry
    applies it, on the local and the HTTP transport alike."""
    modes: dict[str, FieldValidation] = {"strict": "Strict", "true": "Strict", "warn": "Warn",
                                         "false": "Ignore", "ignore": "Ignore"}
    if validate not in modes:
        raise ManifestError(f"--validate must be strict, warn or false, not {validate!r}")
    return modes[validate]
