"""Loading the conformance catalog: scenarios, their kind, manifests with substitutions.

Why: the runner must treat every YAML file in the catalog directory (including a held-out set
in the same format) generically. This module turns a file into ``Scenario`` records, decides
what sort of run each needs (workload, validation, table), and expands the catalog's
shorthands (``${RUN_ID}``, ``template: base``, generated lists like ``"<0..255 (256 ints)>"``)
without any I/O beyond reading the files.
"""

from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

Obj = dict[str, Any]

DEFAULT_BACKOFF_BASE = 10.0

BASE_TEMPLATE: Obj = {
    "spec": {
        "restartPolicy": "Never",
        "containers": [{"name": "abc", "image": "busybox", "command": ["sh", "-c", "exit 0"]}],
    }
}

_INT_RANGE = re.compile(r"^<(-?\d+)\.\.(-?\d+)(?: \(\d+ ints\))?>$")
_REPEAT = re.compile(r"^<(\d+) \w+ (\{.*\})>$", re.S)
_INDEX_EXPR = re.compile(r"^i(?:\s*([+-])\s*(\d+))?$")
_INDEX_PLACEHOLDER = re.compile(r"<i(?:\s*([+-])\s*(\d+))?>")
_SLEEP = re.compile(r"\bsleep\s+(\d+)\b")


def _command_strings(value: Any) -> list[str]:
    """Every string under a ``command``/``args`` key of a manifest."""
    found: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            if k in ("command", "args") and isinstance(v, list):
                found += [str(x) for x in v]
            else:
                found += _command_strings(v)
    elif isinstance(value, list):
        for v in value:
            found += _command_strings(v)
    return found


@dataclass
class Scenario:
    id: str
    group: str
    file: str
    raw: Obj
    expect: Obj = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """``workload`` | ``table`` | ``create_invalid`` | ``valid`` | ``update_valid`` | ``update_invalid``."""
        explicit = self.raw.get("kind")
        if explicit == "table":
            return "table"
        if explicit in ("valid", "update_valid", "update_invalid"):
            return str(explicit)
        if "manifest" in self.raw:
            return "create_invalid"
        if "http_status" in self.expect and ("job" in self.raw or "cronjob" in self.raw):
            return "create_invalid"
        return "workload"

    @property
    def manifest(self) -> Obj | None:
        for key in ("manifest", "job", "cronjob"):
            if key in self.raw:
                value = self.raw[key]
                return value if isinstance(value, dict) else None
        return None

    @property
    def is_cron(self) -> bool:
        m = self.manifest or {}
        return m.get("kind") == "CronJob" or "cronjob" in self.raw

    @property
    def timeout_s(self) -> float:
        return float(self.expect.get("timeout_s") or 60)

    @property
    def depends_on_backoff_base(self) -> bool:
        return bool(self.expect.get("depends_on_backoff_base") or self.raw.get("depends_on_backoff_base"))

    @property
    def needs_unscaled_backoff(self) -> bool:
        """Backoff-dependent timing that races a finite ``sleep N`` in a pod (N >= 2 s): the
        ratio of the two is the point (README: unit-wq-complete-despite-one-failure needs a
        base > 3 s), and metav1.Time's second precision makes a 1 s base effectively (0, 1],
        so such a scenario runs against the real 10 s base instead of a shortened one."""
        if not self.depends_on_backoff_base:
            return False
        return any(2 <= int(n) < 1000 for n in _SLEEP.findall(" ".join(_command_strings(self.manifest))))

    @property
    def needs_real_minutes(self) -> bool:
        """CronJob e2e runs that wait for schedule ticks (minutes of real time)."""
        return self.kind == "workload" and self.is_cron and self.timeout_s > 60


def load_catalog(directory: Path) -> list[Scenario]:
    """Every scenario of every ``*.yaml`` file, in file then list order; ids must be unique."""
    scenarios: list[Scenario] = []
    seen: dict[str, str] = {}
    for path in sorted(directory.glob("*.yaml")) + sorted(directory.glob("*.yml")):
        doc = yaml.safe_load(path.read_text()) or {}
        group = str(doc.get("group") or path.stem)
        for raw in doc.get("scenarios") or []:
            sid = str(raw["id"])
            if sid in seen:
                raise ValueError(f"duplicate scenario id {sid!r} in {path.name} and {seen[sid]}")
            seen[sid] = path.name
            scenarios.append(Scenario(id=sid, group=group, file=path.name, raw=raw, expect=dict(raw.get("expect") or {})))
    return scenarios


IN_REPO_CATALOG = Path(__file__).resolve().parents[1] / "catalog"


def default_catalog_dir() -> Path:
    """The vendored catalog (tests/conformance/catalog, see scripts/refresh-conformance-catalog);
    ``JOBLET_CONFORMANCE_DIR`` points every catalog reader (this suite and the unit tests) elsewhere."""
    env = os.environ.get("JOBLET_CONFORMANCE_DIR")
    return Path(env) if env else IN_REPO_CATALOG


def load_deviations(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    doc = yaml.safe_load(path.read_text()) or {}
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: expected a mapping scenario-id -> reason")
    return {str(k): str(v) for k, v in doc.items()}


# ------------------------------------------------------------------ manifest expansion


def substitute_run_id(value: Any, run_id: str) -> Any:
    if isinstance(value, str):
        return value.replace("${RUN_ID}", run_id)
    if isinstance(value, list):
        return [substitute_run_id(v, run_id) for v in value]
    if isinstance(value, dict):
        return {k: substitute_run_id(v, run_id) for k, v in value.items()}
    return value


def _eval_index_expr(value: Any, i: int) -> Any:
    if isinstance(value, str):
        m = _INDEX_EXPR.match(value.strip())
        if m:
            delta = int(m.group(2) or 0)
            return i + delta if m.group(1) != "-" else i - delta
        return value
    if isinstance(value, list):
        return [_eval_index_expr(v, i) for v in value]
    if isinstance(value, dict):
        return {k: _eval_index_expr(v, i) for k, v in value.items()}
    return value


def _repeat_item(flow: str, i: int) -> Any:
    """Item ``i`` of ``"<N things {flow mapping}>"``: ``<i>`` / ``<i+1>`` are replaced in the text
    before it is parsed as YAML (so ``[<i>]`` is a list of ints and ``'x-<i>'`` a string); a value
    that is exactly ``i`` or ``i+1`` is evaluated too (the older form)."""
    def index(m: re.Match[str]) -> str:
        delta = int(m.group(2) or 0)
        return str(i - delta if m.group(1) == "-" else i + delta)

    return _eval_index_expr(yaml.safe_load(_INDEX_PLACEHOLDER.sub(index, flow)), i)


def expand_generators(value: Any) -> Any:
    """``template: base`` -> the base pod template; ``"<a..b (n ints)>"`` -> [a..b];
    ``"<N things {flow-yaml using i, i+1}>"`` -> N generated items."""
    if isinstance(value, dict):
        out: Obj = {}
        for k, v in value.items():
            if k == "template" and v == "base":
                out[k] = copy.deepcopy(BASE_TEMPLATE)
            else:
                out[k] = expand_generators(v)
        return out
    if isinstance(value, list):
        return [expand_generators(v) for v in value]
    if isinstance(value, str):
        m = _INT_RANGE.match(value.strip())
        if m:
            return list(range(int(m.group(1)), int(m.group(2)) + 1))
        m = _REPEAT.match(value.strip())
        if m:
            return [_repeat_item(m.group(2), i) for i in range(int(m.group(1)))]
    return value


def prepare_manifest(manifest: Obj, run_id: str) -> Obj:
    """A create-ready copy: generators expanded, ${RUN_ID} substituted, namespace dropped."""
    out = expand_generators(substitute_run_id(copy.deepcopy(manifest), run_id))
    out.setdefault("metadata", {}).pop("namespace", None)
    return dict(out)


def host_paths(manifest: Any) -> list[str]:
    """Every hostPath.path in a manifest (to clean up after the run)."""
    found: list[str] = []
    if isinstance(manifest, dict):
        hp = manifest.get("hostPath")
        if isinstance(hp, dict) and isinstance(hp.get("path"), str):
            found.append(hp["path"])
        for v in manifest.values():
            found += host_paths(v)
    elif isinstance(manifest, list):
        for v in manifest:
            found += host_paths(v)
    return found


# ------------------------------------------------------------------ time scaling


@dataclass(frozen=True)
class Timing:
    """How the run's clock relates to the catalog's (upstream 10 s pod-failure backoff)."""

    backoff_base: float = DEFAULT_BACKOFF_BASE
    timeout_scale: float = 1.0

    @property
    def backoff_factor(self) -> float:
        return self.backoff_base / DEFAULT_BACKOFF_BASE

    def bound(self, scenario: Scenario, seconds: float) -> float:
        """A timing bound, scaled for scenarios whose timing rests on the backoff base."""
        return seconds * self.backoff_factor if scenario.depends_on_backoff_base else seconds

    def deadline(self, scenario: Scenario) -> float:
        """Wait limit. Not shrunk with the backoff: timeout_s also covers non-backoff time
        (sleeps, grace periods); a passing scenario ends as soon as it matches anyway."""
        return scenario.timeout_s * self.timeout_scale
