"""batch/v1 Job and CronJob validation (``pkg/apis/batch/validation`` + the Job strategy).

Pure functions from wire-format dicts to a list of causes; empty means valid. The rules,
their order and their wording follow upstream (v1.35, all Job feature gates on), including
which status rules only fire when the fields involved change, so an old bad status never
blocks an unrelated write.

One module (~670 lines): Job and CronJob rules cross-reference each other (a CronJob validates
its job template), as upstream's batch validation.
"""

from __future__ import annotations

import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from joblet.api import intervals
from joblet.api.selectors import label_selector_mismatch
from joblet.api.validation import core, cron, field
from joblet.api.validation import meta as metav
from joblet.clock import parse_time_or_none
from joblet.errors import Cause
from joblet.objects import job_finished

JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"
LEGACY_JOB_NAME_LABEL = "job-name"
LEGACY_CONTROLLER_UID_LABEL = "controller-uid"

MAX_PARALLELISM_INDEXED = 100_000
MAX_FAILED_INDEXES = 100_000
COMPLETIONS_SOFT_LIMIT = 100_000
PARALLELISM_LIMIT_HIGH_COMPLETIONS = 10_000
MAX_FAILED_INDEXES_HIGH_COMPLETIONS = 10_000
MAX_PFP_RULES = 20
MAX_PFP_EXIT_CODES = 255
MAX_PFP_CONDITION_PATTERNS = 20
MAX_MANAGED_BY_LENGTH = 63
MAX_SUCCEEDED_INDEXES_LENGTH = 64 * 1024
MAX_SUCCESS_POLICY_RULES = 20
CRONJOB_NAME_MAX = 52

PFP_ACTIONS = ("Count", "FailIndex", "FailJob", "Ignore")
PFP_OPERATORS = ("In", "NotIn")
CONDITION_STATUSES = ("False", "True", "Unknown")
REPLACEMENT_POLICIES = ("Failed", "TerminatingOrFailed")
COMPLETION_MODES = ("NonIndexed", "Indexed")
CONCURRENCY_POLICIES = ("Allow", "Forbid", "Replace")


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _dedupe(causes: list[Cause]) -> list[Cause]:
    seen: set[Cause] = set()
    out: list[Cause] = []
    for c in causes:
        if c not in seen:
            seen.add(c)
            out.append(c)
    return out


def _template_labels(spec: dict[str, Any]) -> dict[str, str]:
    tmpl = spec.get("template") or {}
    return dict((tmpl.get("metadata") or {}).get("labels") or {})


# ---------------------------------------------------------------- Job spec


def _has_label(labels: dict[str, str], key: str, value: str) -> list[Cause]:
    """``ValidateHasLabel`` on the template metadata."""
    path = f"spec.template.metadata.labels[{key}]"
    if key not in labels:
        return [field.required(path, value)]
    if labels[key] != value:
        return [field.invalid(path, labels, value)]
    return []


def _validate_generated_selector(job: dict[str, Any], require_prefixed: bool) -> list[Cause]:
    spec = job.get("spec") or {}
    if spec.get("manualSelector") is True or spec.get("selector") is None:
        return []
    meta = job.get("metadata") or {}
    uid, name = str(meta.get("uid") or ""), str(meta.get("name") or "")
    errs: list[Cause] = []
    if not uid:
        errs.append(field.required("metadata.uid"))
    labels = _template_labels(spec)
    errs.extend(_has_label(labels, LEGACY_CONTROLLER_UID_LABEL, uid))
    errs.extend(_has_label(labels, LEGACY_JOB_NAME_LABEL, name))
    expected = {LEGACY_CONTROLLER_UID_LABEL: uid, LEGACY_JOB_NAME_LABEL: name}
    if require_prefixed:
        errs.extend(_has_label(labels, CONTROLLER_UID_LABEL, uid))
        errs.extend(_has_label(labels, JOB_NAME_LABEL, name))
        expected[CONTROLLER_UID_LABEL] = uid
        expected[JOB_NAME_LABEL] = name
    if label_selector_mismatch(spec["selector"], expected):
        errs.append(field.invalid("spec.selector", spec["selector"], "`selector` not auto-generated"))
    return errs


def _validate_exit_codes(req: dict[str, Any], path: str, containers: set[str]) -> list[Cause]:
    errs: list[Cause] = []
    op = req.get("operator") or ""
    if not op:
        errs.append(field.required(f"{path}.operator", "valid values: " + _go_list(PFP_OPERATORS)))
    elif op not in PFP_OPERATORS:
        errs.append(field.not_supported(f"{path}.operator", op, PFP_OPERATORS))
    cname = req.get("containerName")
    if cname is not None and cname not in containers:
        errs.append(field.invalid(f"{path}.containerName", cname,
                                  "must be one of the container or initContainer names in the pod template"))
    values = req.get("values") or []
    vpath = f"{path}.values"
    if not values:
        errs.append(field.invalid(vpath, values, "at least one value is required"))
    elif len(values) > MAX_PFP_EXIT_CODES:
        errs.append(field.too_many(vpath, len(values), MAX_PFP_EXIT_CODES))
    ordered = True
    seen: set[Any] = set()
    for j, v in enumerate(values):
        if op == "In" and v == 0:
            errs.append(field.invalid(f"{vpath}[{j}]", v, "must not be 0 for the In operator"))
        if v in seen:
            errs.append(field.duplicate(f"{vpath}[{j}]", v))
        else:
            seen.add(v)
        if j > 0 and _int(values[j - 1]) is not None and _int(v) is not None and values[j - 1] > v:
            ordered = False
    if not ordered:
        errs.append(field.invalid(vpath, values, "must be ordered"))
    return errs


def _go_list(values: tuple[str, ...]) -> str:
    """Go's ``%q`` of a ``[]string``: ``["a" "b"]``."""
    return "[" + " ".join(f'"{v}"' for v in values) + "]"


def _validate_pod_conditions(patterns: list[Any], path: str) -> list[Cause]:
    errs: list[Cause] = []
    if len(patterns) > MAX_PFP_CONDITION_PATTERNS:
        errs.append(field.too_many(path, len(patterns), MAX_PFP_CONDITION_PATTERNS))
    for j, pattern in enumerate(patterns):
        p = f"{path}[{j}]"
        pattern = pattern if isinstance(pattern, dict) else {}
        errs.extend(metav.validate_qualified_name(str(pattern.get("type") or ""), f"{p}.type"))
        status = pattern.get("status") or ""
        if not status:
            errs.append(field.required(f"{p}.status", "valid values: " + _go_list(CONDITION_STATUSES)))
        elif status not in CONDITION_STATUSES:
            errs.append(field.not_supported(f"{p}.status", status, CONDITION_STATUSES))
    return errs


def _validate_pod_failure_policy(spec: dict[str, Any], path: str) -> list[Cause]:
    errs: list[Cause] = []
    policy = spec.get("podFailurePolicy") or {}
    rules = policy.get("rules") or []
    rules_path = f"{path}.rules"
    if len(rules) > MAX_PFP_RULES:
        errs.append(field.too_many(rules_path, len(rules), MAX_PFP_RULES))
    pod_spec = (spec.get("template") or {}).get("spec") or {}
    containers = {str(c.get("name")) for c in (pod_spec.get("containers") or []) + (pod_spec.get("initContainers") or [])
                  if isinstance(c, dict)}
    for i, rule in enumerate(rules):
        rp = f"{rules_path}[{i}]"
        rule = rule if isinstance(rule, dict) else {}
        action = rule.get("action") or ""
        if not action:
            errs.append(field.required(f"{rp}.action", "valid values: " + _go_list(PFP_ACTIONS)))
        elif action == "FailIndex":
            if spec.get("backoffLimitPerIndex") is None:
                errs.append(field.invalid(f"{rp}.action", action, "requires the backoffLimitPerIndex to be set"))
        elif action not in PFP_ACTIONS:
            errs.append(field.not_supported(f"{rp}.action", action, PFP_ACTIONS))
        on_exit = rule.get("onExitCodes")
        on_conds = rule.get("onPodConditions") or []
        if on_exit is not None:
            errs.extend(_validate_exit_codes(on_exit if isinstance(on_exit, dict) else {},
                                             f"{rp}.onExitCodes", containers))
        if on_conds:
            errs.extend(_validate_pod_conditions(on_conds, f"{rp}.onPodConditions"))
        if on_exit is not None and on_conds:
            errs.append(field.invalid(rp, field.OMIT, "specifying both OnExitCodes and OnPodConditions is not supported"))
        if on_exit is None and not on_conds:
            errs.append(field.invalid(rp, field.OMIT, "specifying one of OnExitCodes and OnPodConditions is required"))
    return errs


def _validate_success_policy(spec: dict[str, Any], path: str) -> list[Cause]:
    errs: list[Cause] = []
    rules = (spec.get("successPolicy") or {}).get("rules") or []
    rules_path = f"{path}.rules"
    if not rules:
        errs.append(field.required(rules_path, "at least one rules must be specified when the successPolicy is specified"))
    if len(rules) > MAX_SUCCESS_POLICY_RULES:
        errs.append(field.too_many(rules_path, len(rules), MAX_SUCCESS_POLICY_RULES))
    completions = _int(spec.get("completions")) or 0
    for i, rule in enumerate(rules):
        rp = f"{rules_path}[{i}]"
        rule = rule if isinstance(rule, dict) else {}
        indexes, count = rule.get("succeededIndexes"), rule.get("succeededCount")
        if count is None and indexes is None:
            errs.append(field.required(rp, "at least one of succeededCount or succeededIndexes must be specified"))
        total = 0
        if indexes is not None:
            ip = f"{rp}.succeededIndexes"
            if len(str(indexes)) > MAX_SUCCEEDED_INDEXES_LENGTH:
                errs.append(field.too_long(ip, MAX_SUCCEEDED_INDEXES_LENGTH))
            try:
                total = intervals.count_intervals(intervals.parse_intervals(str(indexes), completions))
            except intervals.IntervalError as exc:
                errs.append(field.invalid(ip, indexes, f"error parsing succeededIndexes: {exc}"))
        count = _int(count)
        if count is not None:
            cp = f"{rp}.succeededCount"
            errs.extend(field.nonnegative(count, cp))
            if count > completions:
                errs.append(field.invalid(cp, count, f"must be less than or equal to {completions} "
                                                     "(the number of specified completions)"))
            if indexes is not None and count > total:
                errs.append(field.invalid(cp, count, f"must be less than or equal to {total} (the number of "
                                                     "indexes in the specified succeededIndexes field)"))
    return errs


def validate_job_spec_fields(spec: dict[str, Any], path: str) -> list[Cause]:
    """``validateJobSpec``: everything except the selector (shared with CronJob templates)."""
    errs: list[Cause] = []
    for key in ("parallelism", "completions", "activeDeadlineSeconds", "backoffLimit",
                "ttlSecondsAfterFinished", "backoffLimitPerIndex"):
        errs.extend(field.nonnegative(spec.get(key), f"{path}.{key}"))
    parallelism = _int(spec.get("parallelism"))
    completions = _int(spec.get("completions"))
    blpi = spec.get("backoffLimitPerIndex")
    mfi = _int(spec.get("maxFailedIndexes"))
    if spec.get("maxFailedIndexes") is not None:
        errs.extend(field.nonnegative(spec.get("maxFailedIndexes"), f"{path}.maxFailedIndexes"))
        if blpi is None:
            errs.append(field.required(f"{path}.backoffLimitPerIndex", "when maxFailedIndexes is specified"))
    managed_by = spec.get("managedBy")
    if managed_by is not None:
        errs.extend(metav.validate_domain_prefixed_path(str(managed_by), f"{path}.managedBy"))
        if len(str(managed_by)) > MAX_MANAGED_BY_LENGTH:
            errs.append(field.too_long(f"{path}.managedBy", MAX_MANAGED_BY_LENGTH))
    mode = spec.get("completionMode")
    if mode is not None:
        if mode not in COMPLETION_MODES:
            errs.append(field.not_supported(f"{path}.completionMode", mode, COMPLETION_MODES))
        if mode == "Indexed":
            if spec.get("completions") is None:
                errs.append(field.required(f"{path}.completions", "when completion mode is Indexed"))
            if parallelism is not None and parallelism > MAX_PARALLELISM_INDEXED:
                errs.append(field.invalid(f"{path}.parallelism", parallelism,
                                          f"must be less than or equal to {MAX_PARALLELISM_INDEXED} "
                                          "when completion mode is Indexed"))
            if completions is not None and mfi is not None and mfi > completions:
                errs.append(field.invalid(f"{path}.maxFailedIndexes", mfi,
                                          "must be less than or equal to completions"))
            if mfi is not None and mfi > MAX_FAILED_INDEXES:
                errs.append(field.invalid(f"{path}.maxFailedIndexes", mfi,
                                          f"must be less than or equal to {MAX_FAILED_INDEXES}"))
            if completions is not None and completions > COMPLETIONS_SOFT_LIMIT and blpi is not None:
                tail = (f"when completions are above {COMPLETIONS_SOFT_LIMIT} and used with backoff limit per index")
                if spec.get("maxFailedIndexes") is None:
                    errs.append(field.required(f"{path}.maxFailedIndexes",
                                               f"must be specified when completions is above {COMPLETIONS_SOFT_LIMIT}"))
                if parallelism is not None and parallelism > PARALLELISM_LIMIT_HIGH_COMPLETIONS:
                    errs.append(field.invalid(f"{path}.parallelism", parallelism,
                                              f"must be less than or equal to {PARALLELISM_LIMIT_HIGH_COMPLETIONS} {tail}"))
                if mfi is not None and mfi > MAX_FAILED_INDEXES_HIGH_COMPLETIONS:
                    errs.append(field.invalid(f"{path}.maxFailedIndexes", mfi,
                                              f"must be less than or equal to {MAX_FAILED_INDEXES_HIGH_COMPLETIONS} {tail}"))
    if mode is None or mode == "NonIndexed":
        if blpi is not None:
            errs.append(field.invalid(f"{path}.backoffLimitPerIndex", blpi, "requires indexed completion mode"))
        if spec.get("maxFailedIndexes") is not None:
            errs.append(field.invalid(f"{path}.maxFailedIndexes", spec["maxFailedIndexes"],
                                      "requires indexed completion mode"))
    if spec.get("podFailurePolicy") is not None:
        errs.extend(_validate_pod_failure_policy(spec, f"{path}.podFailurePolicy"))
    if spec.get("successPolicy") is not None:
        if (mode or "NonIndexed") != "Indexed":
            errs.append(field.invalid(f"{path}.successPolicy", spec["successPolicy"], "requires indexed completion mode"))
        else:
            errs.extend(_validate_success_policy(spec, f"{path}.successPolicy"))
    replacement = spec.get("podReplacementPolicy")
    if replacement is not None:
        if spec.get("podFailurePolicy") is not None:
            if replacement != "Failed":
                errs.append(field.not_supported(f"{path}.podReplacementPolicy", replacement, ("Failed",)))
        elif replacement not in REPLACEMENT_POLICIES:
            errs.append(field.not_supported(f"{path}.podReplacementPolicy", replacement, REPLACEMENT_POLICIES))
    errs.extend(core.validate_pod_template_spec(spec.get("template"), f"{path}.template"))
    restart = ((spec.get("template") or {}).get("spec") or {}).get("restartPolicy") or ""
    rp_path = f"{path}.template.spec.restartPolicy"
    if restart in ("Always", ""):
        errs.append(field.required(rp_path, 'valid values: "OnFailure", "Never"'))
    elif restart not in ("OnFailure", "Never"):
        errs.append(field.not_supported(rp_path, restart, ("OnFailure", "Never")))
    elif spec.get("podFailurePolicy") is not None and restart != "Never":
        errs.append(field.invalid(rp_path, restart, 'only "Never" is supported when podFailurePolicy is specified'))
    return errs


def validate_job_spec(spec: dict[str, Any], path: str = "spec") -> list[Cause]:
    """``ValidateJobSpec``: the fields plus a selector that matches the template labels."""
    errs = validate_job_spec_fields(spec, path)
    selector = spec.get("selector")
    if selector is None:
        errs.append(field.required(f"{path}.selector"))
    else:
        errs.extend(metav.validate_label_selector(selector, f"{path}.selector"))
    labels = _template_labels(spec)
    if label_selector_mismatch(selector, labels):
        errs.append(field.invalid(f"{path}.template.metadata.labels", labels,
                                  "`selector` does not match template `labels`"))
    return errs


def _validate_job(job: dict[str, Any], require_prefixed: bool) -> list[Cause]:
    errs = metav.validate_object_meta(job, namespaced=True)
    errs.extend(_validate_generated_selector(job, require_prefixed))
    spec = job.get("spec") or {}
    errs.extend(validate_job_spec(spec))
    completions = _int(spec.get("completions"))
    if spec.get("completionMode") == "Indexed" and completions is not None and completions > 0:
        name = str((job.get("metadata") or {}).get("name") or "")
        hostname = f"{name}-{completions - 1}"
        if metav.is_dns1123_label(hostname):
            errs.append(field.invalid("metadata.name", name,
                                      f"will not able to create pod with invalid DNS label: {hostname}"))
    return errs


def validate_job(job: dict[str, Any]) -> list[Cause]:
    """Create-time validation of a defaulted Job (run :func:`default_job` first)."""
    return _validate_job(job, require_prefixed=True)


def job_create_warnings(job: dict[str, Any]) -> list[str]:
    """``WarningsOnCreate``: the ``Warning:`` headers kubectl prints."""
    warnings: list[str] = []
    name = str((job.get("metadata") or {}).get("name") or "")
    msgs = metav.is_dns1123_label(name)
    if msgs:
        warnings.append("metadata.name: this is used in Pod names and hostnames, which can result in surprising "
                        "behavior; a DNS label is recommended: [" + " ".join(msgs) + "]")
    spec = job.get("spec") or {}
    completions, parallelism = _int(spec.get("completions")), _int(spec.get("parallelism"))
    if (spec.get("completionMode") == "Indexed" and completions is not None and completions > COMPLETIONS_SOFT_LIMIT
            and parallelism is not None and parallelism > PARALLELISM_LIMIT_HIGH_COMPLETIONS):
        warnings.append("spec: In Indexed Jobs with a number of completions higher than 10^5 and a parallelism "
                        "higher than 10^4, Kubernetes might not be able to track completedIndexes when a big "
                        "number of indexes fail")
    return warnings


# ---------------------------------------------------------------- Job update


def _normalized(value: Any) -> Any:
    """Drop null/empty members so ``{}`` vs missing compares equal (Semantic.DeepEqual-ish)."""
    if isinstance(value, dict):
        out = {k: _normalized(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [_normalized(v) for v in value]
    return value


def _validate_template_update(spec: dict[str, Any], old_spec: dict[str, Any], allow_scheduling: bool) -> list[Cause]:
    template = _normalized(spec.get("template") or {})
    old_template = _normalized(old_spec.get("template") or {})
    if allow_scheduling:
        old_template = dict(old_template)
        old_meta = dict(old_template.get("metadata") or {})
        new_meta = template.get("metadata") or {}
        for key in ("labels", "annotations"):
            if key in new_meta:
                old_meta[key] = new_meta[key]
            else:
                old_meta.pop(key, None)
        old_template["metadata"] = old_meta
        old_pod = dict(old_template.get("spec") or {})
        new_pod = template.get("spec") or {}
        for key in ("nodeSelector", "tolerations", "schedulingGates"):
            if key in new_pod:
                old_pod[key] = new_pod[key]
            else:
                old_pod.pop(key, None)
        old_aff = dict(old_pod.get("affinity") or {})
        new_aff = new_pod.get("affinity") or {}
        if "nodeAffinity" in new_aff:
            old_aff["nodeAffinity"] = new_aff["nodeAffinity"]
        else:
            old_aff.pop("nodeAffinity", None)
        if old_aff:
            old_pod["affinity"] = old_aff
        else:
            old_pod.pop("affinity", None)
        old_template["spec"] = old_pod
        old_template = _normalized(old_template)
    return field.immutable(template, old_template, "spec.template")


def _validate_completions_update(spec: dict[str, Any], old_spec: dict[str, Any]) -> list[Cause]:
    new_c, old_c = spec.get("completions"), old_spec.get("completions")
    if spec.get("completionMode") != "Indexed":
        return field.immutable(new_c, old_c, "spec.completions")
    if new_c == old_c or new_c is None:
        return []
    if new_c != spec.get("parallelism"):
        return [field.invalid("spec.completions", new_c, "can only be modified in tandem with spec.parallelism")]
    return []


def validate_job_update(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    """Spec update (main resource): ValidateJob with the update options plus immutability."""
    old_spec = old.get("spec") or {}
    spec = new.get("spec") or {}
    new_meta = new.get("metadata") or {}
    old_uid = (old.get("metadata") or {}).get("uid")
    if not new_meta.get("uid") and old_uid:
        new = {**new, "metadata": {**new_meta, "uid": old_uid}}
    old_labels = _template_labels(old_spec)
    require_prefixed = JOB_NAME_LABEL in old_labels and CONTROLLER_UID_LABEL in old_labels
    errs = _validate_job(new, require_prefixed)
    errs.extend(metav.validate_object_meta_update(new, old))
    errs.extend(_validate_completions_update(spec, old_spec))
    errs.extend(field.immutable(_normalized(spec.get("selector")), _normalized(old_spec.get("selector")),
                                "spec.selector"))
    allow_scheduling = old_spec.get("suspend") is True and not (old.get("status") or {}).get("startTime")
    errs.extend(_validate_template_update(spec, old_spec, allow_scheduling))
    for key in ("completionMode", "podFailurePolicy", "backoffLimitPerIndex", "managedBy", "successPolicy"):
        errs.extend(field.immutable(_normalized(spec.get(key)), _normalized(old_spec.get(key)), f"spec.{key}"))
    return _dedupe(errs)


# ---------------------------------------------------------------- Job status


def _cond_true(job: dict[str, Any], ctype: str) -> bool:
    return any(c.get("type") == ctype and c.get("status") == "True"
               for c in (job.get("status") or {}).get("conditions") or [])


def validate_job_status_update(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    """``/status`` writes: ``ValidateJobUpdateStatus`` with the 1.35 strategy options."""
    st: dict[str, Any] = new.get("status") or {}
    ost: dict[str, Any] = old.get("status") or {}
    spec: dict[str, Any] = new.get("spec") or {}
    errs = metav.validate_object_meta_update(new, old)
    indexed = spec.get("completionMode") == "Indexed"

    def changed(key: str, default: Any = None) -> bool:
        return bool(st.get(key, default) != ost.get(key, default))

    complete, failed = _cond_true(new, "Complete"), _cond_true(new, "Failed")
    failure_target, scm = _cond_true(new, "FailureTarget"), _cond_true(new, "SuccessCriteriaMet")
    finished = job_finished(new) is not None
    finished_changed = (job_finished(old) is not None) != finished
    complete_changed = _cond_true(old, "Complete") != complete
    failed_changed = _cond_true(old, "Failed") != failed
    ft_changed = _cond_true(old, "FailureTarget") != failure_target
    scm_changed = _cond_true(old, "SuccessCriteriaMet") != scm
    completed_idx_changed = (st.get("completedIndexes") or "") != (ost.get("completedIndexes") or "")
    failed_idx_changed = changed("failedIndexes")
    active_changed = changed("active", 0)
    start_changed = changed("startTime")
    completion_changed = changed("completionTime")
    uncounted_changed = _normalized(st.get("uncountedTerminatedPods")) != _normalized(ost.get("uncountedTerminatedPods"))

    active = _int(st.get("active")) or 0
    ready = _int(st.get("ready"))
    terminating = _int(st.get("terminating"))
    for key in ("active", "succeeded", "failed", "ready", "terminating"):
        errs.extend(field.nonnegative(st.get(key), f"status.{key}"))
    uncounted = st.get("uncountedTerminatedPods") or {}
    seen: set[str] = set()
    for group in ("succeeded", "failed"):
        for i, uid in enumerate(uncounted.get(group) or []):
            p = f"status.uncountedTerminatedPods.{group}[{i}]"
            if not uid:
                errs.append(field.invalid(p, uid, "must not be empty"))
            elif uid in seen:
                errs.append(field.duplicate(p, uid))
            else:
                seen.add(uid)
    conds = "status.conditions"
    if (complete_changed or failed_changed) and complete and failed:
        errs.append(field.invalid(conds, field.OMIT, "cannot set Complete=True and Failed=true conditions"))
    if (complete_changed or ft_changed) and complete and failure_target:
        errs.append(field.invalid(conds, field.OMIT, "cannot set Complete=True and FailureTarget=true conditions"))
    completion_time, start_time = st.get("completionTime"), st.get("startTime")
    if (complete_changed or completion_changed) and completion_time and not complete:
        errs.append(field.invalid("status.completionTime", completion_time,
                                  "cannot set completionTime when there is no Complete=True condition"))
    if (complete_changed or completion_changed) and not completion_time and complete:
        errs.append(field.required("status.completionTime", "completionTime is required for Complete jobs"))
    if (start_changed or completion_changed) and start_time and completion_time:
        s, c = parse_time_or_none(start_time), parse_time_or_none(completion_time)
        if s is not None and c is not None and c < s:
            errs.append(field.invalid("status.completionTime", completion_time,
                                      "completionTime cannot be set before startTime"))
    if (failed_changed or ft_changed) and failed and not failure_target:
        errs.append(field.invalid(conds, field.OMIT,
                                  "cannot set Failed=True condition without the FailureTarget=true condition"))
    if (complete_changed or scm_changed) and complete and not scm:
        errs.append(field.invalid(conds, field.OMIT,
                                  "cannot set Complete=True condition without the SuccessCriteriaMet=true condition"))
    if (finished_changed or active_changed) and active > 0 and finished:
        errs.append(field.invalid("status.active", active, "active>0 is invalid for finished job"))
    if (finished_changed or start_changed) and not start_time and finished:
        errs.append(field.required("status.startTime", "startTime is required for finished job"))
    if (finished_changed or uncounted_changed) and finished and (uncounted.get("failed") or uncounted.get("succeeded")):
        errs.append(field.invalid("status.uncountedTerminatedPods", uncounted,
                                  "uncountedTerminatedPods needs to be empty for finished job"))
    completions = _int(spec.get("completions"))
    completed_idx = st.get("completedIndexes") or ""
    failed_idx = st.get("failedIndexes")
    if completed_idx_changed and completions is not None:
        try:
            intervals.parse_intervals(completed_idx, completions)
        except intervals.IntervalError as exc:
            errs.append(field.invalid("status.completedIndexes", completed_idx,
                                      f"error parsing completedIndexes: {exc}"))
    if (failed_idx_changed and completions is not None and spec.get("backoffLimitPerIndex") is not None
            and failed_idx is not None):
        try:
            intervals.parse_intervals(failed_idx, completions)
        except intervals.IntervalError as exc:
            errs.append(field.invalid("status.failedIndexes", failed_idx, f"error parsing failedIndexes: {exc}"))
    if completed_idx_changed and completed_idx and not indexed:
        errs.append(field.invalid("status.completedIndexes", completed_idx,
                                  "cannot set non-empty completedIndexes when non-indexed completion mode"))
    if failed_idx_changed and spec.get("backoffLimitPerIndex") is None and failed_idx is not None:
        errs.append(field.invalid("status.failedIndexes", failed_idx,
                                  "cannot set non-null failedIndexes when backoffLimitPerIndex is null"))
    if (failed_idx_changed or completed_idx_changed) and completions is not None and failed_idx is not None:
        overlap = intervals.validate_no_overlap(completed_idx, failed_idx, completions)
        if overlap:
            errs.append(field.invalid("status.failedIndexes", failed_idx, overlap))
    if (finished_changed or changed("terminating")) and terminating is not None and terminating > 0 and finished:
        errs.append(field.invalid("status.terminating", terminating, "terminating>0 is invalid for finished job"))
    if (changed("ready") or active_changed) and ready is not None and ready > active:
        errs.append(field.invalid("status.ready", ready, "cannot set more ready pods than active"))
    if scm and failed:
        errs.append(field.invalid(conds, field.OMIT, "cannot set SuccessCriteriaMet=True and Failed=true conditions"))
    if scm and failure_target:
        errs.append(field.invalid(conds, field.OMIT,
                                  "cannot set SuccessCriteriaMet=True and FailureTarget=true conditions"))
    if spec.get("successPolicy") is not None and not scm and complete:
        errs.append(field.invalid(conds, field.OMIT,
                                  "cannot set Complete=True for Job with SuccessPolicy unless SuccessCriteriaMet=True"))
    for ctype in ("Failed", "Complete", "FailureTarget"):
        if _cond_true(old, ctype) and not _cond_true(new, ctype):
            errs.append(field.invalid(conds, field.OMIT, f"cannot disable the terminal {ctype}=True condition"))
    new_failed, old_failed = _int(st.get("failed")) or 0, _int(ost.get("failed")) or 0
    if new_failed < old_failed:
        errs.append(field.invalid("status.failed", new_failed, "cannot decrease the failed counter"))
    reject_succeeded = not indexed or spec.get("completions") != spec.get("parallelism")
    new_succ, old_succ = _int(st.get("succeeded")) or 0, _int(ost.get("succeeded")) or 0
    if reject_succeeded and new_succ < old_succ:
        errs.append(field.invalid("status.succeeded", new_succ, "cannot decrease the succeeded counter"))
    if completion_time and ost.get("completionTime") and completion_time != ost.get("completionTime"):
        errs.append(field.invalid("status.completionTime", completion_time, "completionTime cannot be mutated"))
    if start_changed and ost.get("startTime") and spec.get("suspend") is not True:
        errs.append(field.required("status.startTime", "startTime cannot be removed for unsuspended job"))
    if _cond_true(old, "SuccessCriteriaMet") and not scm:
        errs.append(field.invalid(conds, field.OMIT, "cannot disable the SuccessCriteriaMet=True condition"))
    if _cond_true(old, "Complete") and not _cond_true(old, "SuccessCriteriaMet") and scm:
        errs.append(field.invalid(conds, field.OMIT,
                                  "cannot set SuccessCriteriaMet=True for Job already has Complete=true conditions"))
    return errs


# ---------------------------------------------------------------- CronJob

_TZ_PART = re.compile(r"^[A-Za-z.\-_0-9+]{1,14}$")


def validate_schedule(schedule: str, allow_tz: bool, time_zone: str | None, path: str) -> list[Cause]:
    errs: list[Cause] = []
    try:
        cron.parse_standard(schedule)
    except cron.ScheduleError as exc:
        errs.append(field.invalid(path, schedule, str(exc)))
    if allow_tz and "TZ" in schedule and time_zone is not None:
        errs.append(field.invalid(path, schedule, "cannot use both timeZone field and TZ or CRON_TZ in schedule"))
    elif not allow_tz and "TZ" in schedule:
        errs.append(field.invalid(path, schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"))
    return errs


def validate_time_zone(tz: Any, path: str) -> list[Cause]:
    if tz is None:
        return []
    tz = str(tz)
    if not tz:
        return [field.invalid(path, tz, "timeZone must be nil or non-empty string")]
    for part in tz.split("/"):
        if part in (".", "..") or part.startswith("-") or not _TZ_PART.match(part):
            return [field.invalid(path, tz, f"unknown time zone {tz}")]
    errs: list[Cause] = []
    if tz.lower() == "local":
        errs.append(field.invalid(path, tz, "timeZone must be an explicit time zone as defined in "
                                            "https://www.iana.org/time-zones"))
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        errs.append(field.invalid(path, tz, f"unknown time zone {tz}"))
    return errs


def validate_job_template_spec(template: dict[str, Any], path: str) -> list[Cause]:
    """``ValidateJobTemplateSpec``: JobSpec rules; the selector is always generated."""
    spec = template.get("spec") or {}
    errs = validate_job_spec_fields(spec, f"{path}.spec")
    if spec.get("selector") is not None:
        errs.append(field.invalid(f"{path}.spec.selector", spec["selector"], "`selector` will be auto-generated"))
    if spec.get("manualSelector") is True:
        errs.append(field.not_supported(f"{path}.spec.manualSelector", True, ("nil", "false")))
    return errs


def _validate_cronjob_spec(spec: dict[str, Any], old_spec: dict[str, Any] | None) -> list[Cause]:
    errs: list[Cause] = []
    schedule = spec.get("schedule") or ""
    if not schedule:
        errs.append(field.required("spec.schedule"))
    else:
        allow_tz = old_spec is not None and "TZ" in (old_spec.get("schedule") or "")
        errs.extend(validate_schedule(str(schedule), allow_tz, spec.get("timeZone"), "spec.schedule"))
    errs.extend(field.nonnegative(spec.get("startingDeadlineSeconds"), "spec.startingDeadlineSeconds"))
    if old_spec is None or old_spec.get("timeZone") != spec.get("timeZone"):
        errs.extend(validate_time_zone(spec.get("timeZone"), "spec.timeZone"))
    policy = spec.get("concurrencyPolicy") or ""
    if not policy:
        errs.append(field.required("spec.concurrencyPolicy"))
    elif policy not in CONCURRENCY_POLICIES:
        errs.append(field.not_supported("spec.concurrencyPolicy", policy, CONCURRENCY_POLICIES))
    errs.extend(validate_job_template_spec(spec.get("jobTemplate") or {}, "spec.jobTemplate"))
    for key in ("successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        errs.extend(field.nonnegative(spec.get(key), f"spec.{key}"))
    return errs


def validate_cronjob(cj: dict[str, Any]) -> list[Cause]:
    """``ValidateCronJobCreate`` of a defaulted CronJob."""
    errs = metav.validate_object_meta(cj, namespaced=True)
    errs.extend(_validate_cronjob_spec(cj.get("spec") or {}, None))
    name = str((cj.get("metadata") or {}).get("name") or "")
    if len(name) > CRONJOB_NAME_MAX:
        errs.append(field.invalid("metadata.name", name, f"must be no more than {CRONJOB_NAME_MAX} characters"))
    return errs


def validate_cronjob_update(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    """``ValidateCronJobUpdate`` (no 52-char rule, TZ allowed if the old schedule had it)."""
    errs = metav.validate_object_meta_update(new, old)
    errs.extend(_validate_cronjob_spec(new.get("spec") or {}, old.get("spec") or {}))
    return errs


def validate_cronjob_status_update(new: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    return metav.validate_object_meta_update(new, old)
