"""Label and field selectors, parsed once and matched fast.

Every list and watch filters objects by ``labelSelector`` / ``fieldSelector``, and the Job
controller matches pods against ``spec.selector`` on every sync, so a selector is parsed into
requirements once and compiled into a closure; ``matches`` is then a few dict lookups.
Syntax, semantics, canonical ``String()`` form and the supported field labels follow
k8s.io/apimachinery ``labels``/``fields`` and the per-resource field-label conversions of
kube-apiserver. Errors are :class:`joblet.errors.BadRequest` (HTTP 400), as upstream.

One module (~620 lines): label and field selectors share the parser, the compiled matchers and
the per-resource field tables.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from joblet.errors import BadRequest
from joblet.objects import field_text

# --------------------------------------------------------------------------------------
# Label selectors
# --------------------------------------------------------------------------------------

EQUALS = "="
DOUBLE_EQUALS = "=="
NOT_EQUALS = "!="
IN = "in"
NOT_IN = "notin"
EXISTS = "exists"
DOES_NOT_EXIST = "!"
GREATER_THAN = "gt"
LESS_THAN = "lt"

_SET_OPERATORS = (IN, NOT_IN)

_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

LabelMatcher = Callable[[Mapping[str, str]], bool]


def _validate_label_key(key: str) -> None:
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        raise BadRequest(
            f'unable to parse requirement: invalid label key "{key}": prefix part must be a '
            "lowercase RFC 1123 subdomain"
        )
    if not name or len(name) > 63 or not _QUALIFIED_NAME.match(name):
        raise BadRequest(
            f'unable to parse requirement: invalid label key "{key}": name part must consist of '
            "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
            "character (at most 63 characters)"
        )


def _validate_label_value(value: str) -> None:
    if len(value) > 63 or not _LABEL_VALUE.match(value):
        raise BadRequest(
            f'unable to parse requirement: invalid label value: "{value}": a valid label must be an '
            "empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and "
            "end with an alphanumeric character (at most 63 characters)"
        )


@dataclass(frozen=True)
class Requirement:
    """One ``key <op> values`` term of a label selector (``labels.Requirement``)."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def __str__(self) -> str:
        if self.operator == EXISTS:
            return self.key
        if self.operator == DOES_NOT_EXIST:
            return "!" + self.key
        shown = self.values[0] if len(self.values) == 1 else ",".join(sorted(self.values))
        if self.operator in _SET_OPERATORS:
            return f"{self.key} {self.operator} ({shown})"
        symbol = {GREATER_THAN: ">", LESS_THAN: "<"}.get(self.operator, self.operator)
        return f"{self.key}{symbol}{shown}"

    def matcher(self) -> LabelMatcher:
        key = self.key
        if self.operator in (EQUALS, DOUBLE_EQUALS, IN):
            if len(self.values) == 1:
                only = self.values[0]
                return lambda labels: labels.get(key) == only
            allowed = frozenset(self.values)
            return lambda labels: key in labels and labels[key] in allowed
        if self.operator in (NOT_EQUALS, NOT_IN):
            forbidden = frozenset(self.values)
            return lambda labels: labels.get(key) not in forbidden if key in labels else True
        if self.operator == EXISTS:
            return lambda labels: key in labels
        if self.operator == DOES_NOT_EXIST:
            return lambda labels: key not in labels
        bound = int(self.values[0])
        greater = self.operator == GREATER_THAN

        def compare(labels: Mapping[str, str]) -> bool:
            raw = labels.get(key)
            if raw is None:
                return False
            try:
                number = int(raw)
            except ValueError:
                return False
            return number > bound if greater else number < bound

        return compare

    def canonical(self) -> tuple[str, str, frozenset[str]]:
        op = EQUALS if self.operator == DOUBLE_EQUALS else self.operator
        if op == EQUALS:
            op = IN  # k=v selects exactly what k in (v) selects
        if op == NOT_EQUALS:
            op = NOT_IN
        return (self.key, op, frozenset(self.values))


def _compile(requirements: tuple[Requirement, ...]) -> LabelMatcher:
    if not requirements:
        return lambda labels: True
    matchers = tuple(r.matcher() for r in requirements)
    if len(matchers) == 1:
        return matchers[0]
    if len(matchers) == 2:
        first, second = matchers
        return lambda labels: first(labels) and second(labels)
    return lambda labels: all(m(labels) for m in matchers)


@dataclass(frozen=True)
class LabelSelector:
    """A parsed label selector. ``nothing=True`` is upstream's ``labels.Nothing()``."""

    requirements: tuple[Requirement, ...] = ()
    nothing: bool = False
    _match: LabelMatcher = field(default=lambda labels: True, repr=False, compare=False)

    @classmethod
    def of(cls, requirements: list[Requirement] | tuple[Requirement, ...]) -> LabelSelector:
        ordered = tuple(sorted(requirements, key=lambda r: r.key))
        return cls(ordered, False, _compile(ordered))

    @classmethod
    def everything(cls) -> LabelSelector:
        return cls((), False, lambda labels: True)

    @classmethod
    def none(cls) -> LabelSelector:
        return cls((), True, lambda labels: False)

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        return self._match(labels or {})

    def matches_object(self, obj: Mapping[str, Any]) -> bool:
        return self._match((obj.get("metadata") or {}).get("labels") or {})

    def empty(self) -> bool:
        """True when the selector selects everything."""
        return not self.nothing and not self.requirements

    def to_string(self) -> str:
        return to_string(self)

    def __str__(self) -> str:
        return to_string(self)


def to_string(selector: LabelSelector) -> str:
    """Upstream ``Selector.String()``: requirements sorted by key, joined by commas."""
    return ",".join(str(r) for r in selector.requirements)


def requirements_equal(a: LabelSelector, b: LabelSelector) -> bool:
    """Whether two selectors select the same label sets (order and ``=``/``==``/``in`` insensitive)."""
    if a.nothing or b.nothing:
        return a.nothing == b.nothing
    return {r.canonical() for r in a.requirements} == {r.canonical() for r in b.requirements}


# Tokenizer: identifiers are runs of characters that are neither whitespace nor one of !=(),<>.
_TOKEN = re.compile(r"\s*(?:(!=|==|=|!|\(|\)|,|<|>)|([^\s!=(),<>]+))")


def _tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            break  # only trailing whitespace remains
        token = match.group(1) or match.group(2)
        if token is None:
            break
        tokens.append(token)
        pos = match.end()
    return tokens


class _LabelParser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.pos = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str | None:
        token = self.peek()
        self.pos += 1
        return token

    def fail(self, found: str | None, expected: str) -> BadRequest:
        shown = "" if found is None else found
        return BadRequest(f"unable to parse requirement: found '{shown}', expected: {expected}")

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        if not self.tokens:
            return requirements
        while True:
            requirements.append(self.requirement())
            token = self.take()
            if token is None:
                return requirements
            if token != ",":
                raise self.fail(token, "',' or 'end of string'")
            if self.peek() is None:
                raise self.fail(None, "identifier after ','")

    def identifier(self) -> str:
        token = self.take()
        if token is None or token in ("!=", "==", "=", "!", "(", ")", ",", "<", ">"):
            raise self.fail(token, "identifier")
        return token

    def requirement(self) -> Requirement:
        if self.peek() == "!":
            self.take()
            key = self.identifier()
            _validate_label_key(key)
            if self.peek() not in (None, ","):
                raise self.fail(self.peek(), "',' or 'end of string'")
            return Requirement(key, DOES_NOT_EXIST)
        key = self.identifier()
        _validate_label_key(key)
        op = self.peek()
        if op is None or op == ",":
            return Requirement(key, EXISTS)
        self.take()
        if op in ("=", "==", "!="):
            value = self.value()
            return Requirement(key, op, (value,))
        if op in ("<", ">"):
            value = self.value()
            try:
                int(value)
            except ValueError:
                raise BadRequest(
                    f"unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer: {value!r}"
                ) from None
            return Requirement(key, GREATER_THAN if op == ">" else LESS_THAN, (value,))
        if op in (IN, NOT_IN):
            return Requirement(key, op, tuple(self.value_set()))
        raise self.fail(op, "=, !=, ==, in, notin")

    def value(self) -> str:
        token = self.peek()
        if token is None or token == ",":
            return ""  # "k=" selects the empty value, as upstream
        if token in ("!=", "==", "=", "!", "(", ")", "<", ">"):
            raise self.fail(token, "identifier")
        self.take()
        _validate_label_value(token)
        return token

    def value_set(self) -> list[str]:
        token = self.take()
        if token != "(":
            raise self.fail(token, "'('")
        values: list[str] = []
        expecting_value = True
        while True:
            token = self.take()
            if token is None:
                raise self.fail(None, "')'")
            if token == ")":
                if expecting_value and values:
                    values.append("")
                break
            if token == ",":
                if expecting_value:
                    values.append("")
                expecting_value = True
                continue
            if not expecting_value or token in ("!=", "==", "=", "!", "(", "<", ">"):
                raise self.fail(token, "',' or ')'")
            _validate_label_value(token)
            values.append(token)
            expecting_value = False
        if not values:
            raise BadRequest(
                "unable to parse requirement: values: Invalid value: []: for 'in', 'notin' "
                "operators, values set can't be empty"
            )
        return values


def parse_label_selector(text: str | None) -> LabelSelector:
    """Parse a ``labelSelector`` query string; an empty string selects everything."""
    if text is None or not text.strip():
        return LabelSelector.everything()
    return LabelSelector.of(_LabelParser(text).parse())


_EXPRESSION_OPERATORS = {"In": IN, "NotIn": NOT_IN, "Exists": EXISTS, "DoesNotExist": DOES_NOT_EXIST}


def selector_from_label_selector_dict(selector: Mapping[str, Any] | None) -> LabelSelector:
    """``metav1.LabelSelectorAsSelector``: None selects nothing, ``{}`` selects everything."""
    if selector is None:
        return LabelSelector.none()
    match_labels = selector.get("matchLabels") or {}
    expressions = selector.get("matchExpressions") or []
    if not match_labels and not expressions:
        return LabelSelector.everything()
    requirements: list[Requirement] = []
    for key, value in match_labels.items():
        _validate_label_key(str(key))
        _validate_label_value(str(value))
        requirements.append(Requirement(str(key), EQUALS, (str(value),)))
    for expr in expressions:
        key = str(expr.get("key") or "")
        _validate_label_key(key)
        raw_op = str(expr.get("operator") or "")
        op = _EXPRESSION_OPERATORS.get(raw_op)
        if op is None:
            raise BadRequest(f'"{raw_op}" is not a valid label selector operator')
        values = tuple(str(v) for v in expr.get("values") or [])
        if op in _SET_OPERATORS and not values:
            raise BadRequest(
                "values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty"
            )
        if op in (EXISTS, DOES_NOT_EXIST) and values:
            raise BadRequest(
                "values: Invalid value: for 'exists', 'notexists' operators, values set must be empty"
            )
        for value in values:
            _validate_label_value(value)
        requirements.append(Requirement(key, op, values))
    return LabelSelector.of(requirements)


def label_selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str] | None) -> bool:
    """Whether a ``metav1.LabelSelector`` dict selects these labels: None selects nothing, ``{}``
    everything, and a selector ``LabelSelectorAsSelector`` rejects (an unknown operator, a bad key
    or value, a malformed shape) selects nothing — as the Job controller treats a selector error.
    The one matcher for selector dicts; compiled selectors are cached by content."""
    if selector is None:
        return False
    compiled = _compiled_selector(_frozen_selector(selector))
    return compiled is not None and compiled.matches(labels)


def label_selector_mismatch(selector: Mapping[str, Any] | None, labels: Mapping[str, str] | None) -> bool:
    """Validation's question (``LabelSelectorAsSelector(s); err == nil && !Matches``): a valid
    selector that does not select the labels. A selector that does not even parse is not a
    mismatch — its own validation reports it."""
    if selector is None:
        return True
    compiled = _compiled_selector(_frozen_selector(selector))
    return compiled is not None and not compiled.matches(labels)


_FrozenSelector = tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str, tuple[str, ...]], ...]] | None


def _frozen_selector(selector: Any) -> _FrozenSelector:
    """A hashable copy of a selector dict (None when its shape is not a selector's)."""
    try:
        labels = tuple(sorted((str(k), str(v)) for k, v in (selector.get("matchLabels") or {}).items()))
        exprs = tuple((str(e.get("key") or ""), str(e.get("operator") or ""),
                       tuple(str(v) for v in e.get("values") or ())) for e in selector.get("matchExpressions") or ())
    except (AttributeError, TypeError):
        return None
    return labels, exprs


@functools.lru_cache(maxsize=4096)
def _compiled_selector(frozen: _FrozenSelector) -> LabelSelector | None:
    if frozen is None:
        return None
    labels, exprs = frozen
    as_dict = {"matchLabels": dict(labels),
               "matchExpressions": [{"key": k, "operator": op, "values": list(vs)} for k, op, vs in exprs]}
    try:
        return selector_from_label_selector_dict(as_dict)
    except BadRequest:
        return None


# --------------------------------------------------------------------------------------
# Field selectors
# --------------------------------------------------------------------------------------

FieldGetter = Callable[[Mapping[str, Any]], str]


def _path(*keys: str) -> FieldGetter:
    def get(obj: Mapping[str, Any]) -> str:
        return field_text(obj, *keys)

    return get


def _bool_path(*keys: str) -> FieldGetter:
    inner = _path(*keys)

    def get(obj: Mapping[str, Any]) -> str:
        return inner(obj) or "false"

    return get


def _int_path(*keys: str) -> FieldGetter:
    inner = _path(*keys)

    def get(obj: Mapping[str, Any]) -> str:
        return inner(obj) or "0"

    return get


def _pod_ip(obj: Mapping[str, Any]) -> str:
    status = obj.get("status") or {}
    ips = status.get("podIPs") or []
    if ips and isinstance(ips[0], Mapping) and ips[0].get("ip"):
        return str(ips[0]["ip"])
    return str(status.get("podIP") or "")


_COMMON_FIELDS: dict[str, FieldGetter] = {
    "metadata.name": _path("metadata", "name"),
    "metadata.namespace": _path("metadata", "namespace"),
}

SUPPORTED_FIELDS: dict[str, dict[str, FieldGetter]] = {
    "pods": {
        "spec.nodeName": _path("spec", "nodeName"),
        "spec.restartPolicy": _path("spec", "restartPolicy"),
        "spec.schedulerName": _path("spec", "schedulerName"),
        "spec.serviceAccountName": _path("spec", "serviceAccountName"),
        "spec.hostNetwork": _bool_path("spec", "hostNetwork"),
        "status.phase": _path("status", "phase"),
        "status.podIP": _pod_ip,
        "status.nominatedNodeName": _path("status", "nominatedNodeName"),
    },
    "events": {
        "involvedObject.kind": _path("involvedObject", "kind"),
        "involvedObject.namespace": _path("involvedObject", "namespace"),
        "involvedObject.name": _path("involvedObject", "name"),
        "involvedObject.uid": _path("involvedObject", "uid"),
        "involvedObject.apiVersion": _path("involvedObject", "apiVersion"),
        "involvedObject.resourceVersion": _path("involvedObject", "resourceVersion"),
        "involvedObject.fieldPath": _path("involvedObject", "fieldPath"),
        "reason": _path("reason"),
        "reportingComponent": _path("reportingComponent"),
        "source": _path("source", "component"),
        "type": _path("type"),
    },
    "jobs": {"status.successful": _int_path("status", "succeeded")},
    "nodes": {"spec.unschedulable": _bool_path("spec", "unschedulable")},
    "namespaces": {"status.phase": _path("status", "phase")},
    "secrets": {"type": _path("type")},
}


def supported_fields(resource: str) -> list[str]:
    return sorted({*_COMMON_FIELDS, *SUPPORTED_FIELDS.get(resource, {})})


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    operator: str  # "=", "==" or "!="
    value: str

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")
        return f"{self.field}{self.operator}{escaped}"


@dataclass(frozen=True)
class FieldSelector:
    requirements: tuple[FieldRequirement, ...] = ()
    _match: Callable[[Mapping[str, Any]], bool] = field(
        default=lambda obj: True, repr=False, compare=False
    )

    def matches(self, obj: Mapping[str, Any]) -> bool:
        return self._match(obj)

    def empty(self) -> bool:
        return not self.requirements

    def value_for(self, field_name: str) -> str | None:
        """The value an equality term requires for ``field_name`` (e.g. ``metadata.name``), if any."""
        for r in self.requirements:
            if r.field == field_name and r.operator != "!=":
                return r.value
        return None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


def _split_unescaped(text: str, sep: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            current.append(text[i : i + 2])
            i += 2
            continue
        if ch == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    parts.append("".join(current))
    return parts


def _unescape(value: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(value):
        ch = value[i]
        if ch == "\\":
            if i + 1 >= len(value) or value[i + 1] not in "\\,=":
                raise BadRequest(f"invalid field selector: invalid escape sequence in {value!r}")
            out.append(value[i + 1])
            i += 2
            continue
        if ch in ",=":
            raise BadRequest(f"invalid field selector: unescaped {ch!r} in value {value!r}")
        out.append(ch)
        i += 1
    return "".join(out)


def _parse_field_term(term: str) -> FieldRequirement:
    # find the first unescaped operator
    i = 0
    while i < len(term):
        ch = term[i]
        if ch == "\\":
            i += 2
            continue
        if term.startswith("!=", i):
            return FieldRequirement(term[:i].strip(), "!=", _unescape(term[i + 2 :].strip()))
        if term.startswith("==", i):
            return FieldRequirement(term[:i].strip(), "==", _unescape(term[i + 2 :].strip()))
        if ch == "=":
            return FieldRequirement(term[:i].strip(), "=", _unescape(term[i + 1 :].strip()))
        i += 1
    raise BadRequest(f"invalid selector: '{term}'; can't understand '{term}'")


def _compile_fields(
    requirements: tuple[FieldRequirement, ...], getters: Mapping[str, FieldGetter]
) -> Callable[[Mapping[str, Any]], bool]:
    checks: list[Callable[[Mapping[str, Any]], bool]] = []
    for r in requirements:
        get = getters[r.field]
        value = r.value
        if r.operator == "!=":
            checks.append(lambda obj, get=get, value=value: get(obj) != value)  # type: ignore[misc]
        else:
            checks.append(lambda obj, get=get, value=value: get(obj) == value)  # type: ignore[misc]
    if not checks:
        return lambda obj: True
    if len(checks) == 1:
        return checks[0]
    frozen = tuple(checks)
    return lambda obj: all(check(obj) for check in frozen)


def parse_field_selector(text: str | None, resource: str) -> FieldSelector:
    """Parse a ``fieldSelector`` for ``resource`` (plural, e.g. ``pods``); order independent."""
    if text is None or not text.strip():
        return FieldSelector()
    getters = {**_COMMON_FIELDS, **SUPPORTED_FIELDS.get(resource, {})}
    requirements: list[FieldRequirement] = []
    for term in _split_unescaped(text, ","):
        if not term.strip():
            continue  # fields.ParseSelector skips empty terms (kr8s sends "metadata.name=x,")
        requirement = _parse_field_term(term)
        if requirement.field not in getters:
            raise BadRequest(f"field label not supported: {requirement.field}")
        requirements.append(requirement)
    ordered = tuple(sorted(requirements, key=lambda r: (r.field, r.operator, r.value)))
    return FieldSelector(ordered, _compile_fields(ordered, getters))
