"""The Pod Security Standards checks, as pure functions over a pod spec (k8s.io/pod-security-admission).

Why: a joblet pod runs as a process on the server's machine; a namespace that should not run
privileged pods (hostPath, root, added capabilities...) needs upstream's admission, with its
checks and messages, so ``kubectl label ns x pod-security.kubernetes.io/enforce=baseline``
means what it means on a cluster. Each check returns ``None`` (allowed) or
``(reason, detail)`` worded as upstream's ``CheckResult``; :func:`evaluate` runs the checks
of a level in upstream's order (baseline checks by ID, then restricted ones, where
``capabilities_restricted``, ``restrictedVolumes`` and ``seccompProfile_restricted`` replace
their baseline counterparts). Every level is evaluated at ``latest``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

Obj = dict[str, Any]
Result = tuple[str, str] | None
Check = Callable[[Obj, Obj], Result]  # (pod metadata, pod spec) → violation

LEVELS = ("privileged", "baseline", "restricted")

BASELINE_CAPABILITIES = frozenset({"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
                                   "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"})
SAFE_SYSCTLS = frozenset({
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes", "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"})
SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"})
RESTRICTED_VOLUME_OK = ("configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                        "projected", "secret")


# -- helpers as upstream's helpers.go ---------------------------------------------------------------


def join_quote(items: list[str]) -> str:
    return '"' + '", "'.join(items) + '"' if items else ""


def pluralize(singular: str, plural: str, count: int) -> str:
    return singular if count == 1 else plural


def _containers(spec: Obj) -> Iterator[Obj]:
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for c in spec.get(key) or []:
            if isinstance(c, dict):
                yield c


def _sc(obj: Obj) -> Obj:
    sc = obj.get("securityContext")
    return sc if isinstance(sc, dict) else {}


def _named(names: list[str]) -> str:
    return f"{pluralize('container', 'containers', len(names))} {join_quote(names)}"


def _setters(pod_bad: bool, containers: list[str]) -> str:
    return " and ".join([*(["pod"] if pod_bad else []), *([_named(containers)] if containers else [])])


# -- baseline ---------------------------------------------------------------------------------------


def app_armor_profile(meta: Obj, spec: Obj) -> Result:
    def bad(sc: Obj) -> bool:
        return isinstance(sc.get("appArmorProfile"), dict) and sc["appArmorProfile"].get("type") == "Unconfined"
    containers = [str(c.get("name")) for c in _containers(spec) if bad(_sc(c))]
    pod_bad = bad(_sc(spec))
    if pod_bad or containers:
        return "appArmorProfile", (f"{_setters(pod_bad, containers)} must not set "
                                   'securityContext.appArmorProfile.type to "Unconfined"')
    return None


def capabilities_baseline(meta: Obj, spec: Obj) -> Result:
    bad: list[str] = []
    caps: set[str] = set()
    for c in _containers(spec):
        added = {str(a) for a in (_sc(c).get("capabilities") or {}).get("add") or []} - BASELINE_CAPABILITIES
        if added:
            bad.append(str(c.get("name")))
            caps |= added
    if bad:
        return "non-default capabilities", (f"{_named(bad)} must not include {join_quote(sorted(caps))} in "
                                            "securityContext.capabilities.add")
    return None


def host_namespaces(meta: Obj, spec: Obj) -> Result:
    used = sorted(k for k in ("hostNetwork", "hostPID", "hostIPC") if spec.get(k) is True)
    return ("host namespaces", ", ".join(f"{k}=true" for k in used)) if used else None


def host_path_volumes(meta: Obj, spec: Obj) -> Result:
    names = [str(v.get("name")) for v in spec.get("volumes") or [] if isinstance(v, dict) and v.get("hostPath")]
    if names:
        return "hostPath volumes", f"{pluralize('volume', 'volumes', len(names))} {join_quote(names)}"
    return None


def host_ports(meta: Obj, spec: Obj) -> Result:
    bad: list[str] = []
    ports: set[int] = set()
    for c in _containers(spec):
        used = {int(p["hostPort"]) for p in c.get("ports") or [] if isinstance(p, dict) and p.get("hostPort")}
        if used:
            bad.append(str(c.get("name")))
            ports |= used
    if bad:
        listed = ", ".join(sorted(str(p) for p in ports))
        return "hostPort", (f"{_named(bad)} {pluralize('uses', 'use', len(bad))} "
                            f"{pluralize('hostPort', 'hostPorts', len(ports))} {listed}")
    return None


def privileged(meta: Obj, spec: Obj) -> Result:
    bad = [str(c.get("name")) for c in _containers(spec) if _sc(c).get("privileged") is True]
    return ("privileged", f"{_named(bad)} must not set securityContext.privileged=true") if bad else None


def proc_mount(meta: Obj, spec: Obj) -> Result:
    bad: list[str] = []
    values: set[str] = set()
    for c in _containers(spec):
        value = _sc(c).get("procMount")
        if value not in (None, "Default"):
            bad.append(str(c.get("name")))
            values.add(str(value))
    if bad:
        return "procMount", f"{_named(bad)} must not set securityContext.procMount to {join_quote(sorted(values))}"
    return None


def se_linux_options(meta: Obj, spec: Obj) -> Result:
    bad_pod = False
    bad: list[str] = []
    found: set[str] = set()

    def check(sc: Obj) -> bool:
        opts = sc.get("seLinuxOptions")
        if not isinstance(opts, dict):
            return False
        wrong = []
        if str(opts.get("type") or "") not in SELINUX_TYPES:
            wrong.append(f'type "{opts["type"]}"')
        for key in ("user", "role"):
            if opts.get(key):
                wrong.append(f'{key} "{opts[key]}"')
        found.update(wrong)
        return bool(wrong)

    bad_pod = check(_sc(spec))
    bad = [str(c.get("name")) for c in _containers(spec) if check(_sc(c))]
    if bad_pod or bad:
        verb = pluralize("sets", "set", (1 if bad_pod else 0) + len(bad))
        return "seLinuxOptions", (f"{_setters(bad_pod, bad)} {verb} forbidden securityContext.seLinuxOptions: "
                                  f"{', '.join(sorted(found))}")
    return None


def seccomp_profile_baseline(meta: Obj, spec: Obj) -> Result:
    def bad(sc: Obj) -> bool:
        return isinstance(sc.get("seccompProfile"), dict) and sc["seccompProfile"].get("type") == "Unconfined"
    pod_bad = bad(_sc(spec))
    containers = [str(c.get("name")) for c in _containers(spec) if bad(_sc(c))]
    if pod_bad or containers:
        return "seccompProfile", (f"{_setters(pod_bad, containers)} must not set "
                                  'securityContext.seccompProfile.type to "Unconfined"')
    return None


def sysctls(meta: Obj, spec: Obj) -> Result:
    names = [str(s.get("name")) for s in _sc(spec).get("sysctls") or []
             if isinstance(s, dict) and s.get("name") not in SAFE_SYSCTLS]
    return ("forbidden sysctls", ", ".join(names)) if names else None


# -- restricted -------------------------------------------------------------------------------------


def allow_privilege_escalation(meta: Obj, spec: Obj) -> Result:
    bad = [str(c.get("name")) for c in _containers(spec) if _sc(c).get("allowPrivilegeEscalation") is not False]
    if bad:
        return "allowPrivilegeEscalation != false", (f"{_named(bad)} must set "
                                                     "securityContext.allowPrivilegeEscalation=false")
    return None


def capabilities_restricted(meta: Obj, spec: Obj) -> Result:
    missing_drop: list[str] = []
    adding: list[str] = []
    caps: set[str] = set()
    for c in _containers(spec):
        capabilities = _sc(c).get("capabilities")
        if not isinstance(capabilities, dict):
            missing_drop.append(str(c.get("name")))
            continue
        if "ALL" not in (capabilities.get("drop") or []):
            missing_drop.append(str(c.get("name")))
        added = {str(a) for a in capabilities.get("add") or []} - {"NET_BIND_SERVICE"}
        if added:
            adding.append(str(c.get("name")))
            caps |= added
    details = []
    if missing_drop:
        details.append(f'{_named(missing_drop)} must set securityContext.capabilities.drop=["ALL"]')
    if adding:
        details.append(f"{_named(adding)} must not include {join_quote(sorted(caps))} in "
                       "securityContext.capabilities.add")
    return ("unrestricted capabilities", "; ".join(details)) if details else None


def restricted_volumes(meta: Obj, spec: Obj) -> Result:
    bad: list[str] = []
    kinds: set[str] = set()
    for v in spec.get("volumes") or []:
        if not isinstance(v, dict) or any(v.get(k) is not None for k in RESTRICTED_VOLUME_OK):
            continue
        bad.append(str(v.get("name")))
        kinds.add(next((k for k in v if k != "name" and v[k] is not None), "unknown"))
    if bad:
        return "restricted volume types", (
            f"{pluralize('volume', 'volumes', len(bad))} {join_quote(bad)} {pluralize('uses', 'use', len(bad))} "
            f"{pluralize('restricted volume type', 'restricted volume types', len(kinds))} "
            f"{join_quote(sorted(kinds))}")
    return None


def run_as_non_root(meta: Obj, spec: Obj) -> Result:
    pod_value = _sc(spec).get("runAsNonRoot")
    pod_bad = pod_value is False
    explicit = [str(c.get("name")) for c in _containers(spec) if _sc(c).get("runAsNonRoot") is False]
    implicit = [str(c.get("name")) for c in _containers(spec)
                if _sc(c).get("runAsNonRoot") is None and pod_value is not True]
    if pod_bad or explicit:
        return "runAsNonRoot != true", f"{_setters(pod_bad, explicit)} must not set securityContext.runAsNonRoot=false"
    if implicit:
        return "runAsNonRoot != true", f"pod or {_named(implicit)} must set securityContext.runAsNonRoot=true"
    return None


def run_as_user(meta: Obj, spec: Obj) -> Result:
    pod_bad = _sc(spec).get("runAsUser") == 0
    containers = [str(c.get("name")) for c in _containers(spec) if _sc(c).get("runAsUser") == 0]
    if pod_bad or containers:
        return "runAsUser=0", f"{_setters(pod_bad, containers)} must not set runAsUser=0"
    return None


def seccomp_profile_restricted(meta: Obj, spec: Obj) -> Result:
    def profile(sc: Obj) -> str | None:
        p = sc.get("seccompProfile")
        return str(p.get("type")) if isinstance(p, dict) else None

    bad_values: set[str] = set()
    pod_type = profile(_sc(spec))
    pod_bad = pod_type is not None and pod_type not in ("RuntimeDefault", "Localhost")
    if pod_bad:
        bad_values.add(str(pod_type))
    pod_set = pod_type is not None and not pod_bad
    explicit: list[str] = []
    implicit: list[str] = []
    for c in _containers(spec):
        t = profile(_sc(c))
        if t is not None:
            if t not in ("RuntimeDefault", "Localhost"):
                explicit.append(str(c.get("name")))
                bad_values.add(t)
        elif not pod_set:
            implicit.append(str(c.get("name")))
    if pod_bad or explicit:
        return "seccompProfile", (f"{_setters(pod_bad, explicit)} must not set securityContext.seccompProfile.type "
                                  f"to {join_quote(sorted(bad_values))}")
    if implicit:
        return "seccompProfile", (f'pod or {_named(implicit)} must set securityContext.seccompProfile.type to '
                                  '"RuntimeDefault" or "Localhost"')
    return None


BASELINE: list[Check] = [app_armor_profile, capabilities_baseline, host_namespaces, host_path_volumes, host_ports,
                         privileged, proc_mount, se_linux_options, seccomp_profile_baseline, sysctls]
RESTRICTED: list[Check] = [allow_privilege_escalation, capabilities_restricted, restricted_volumes, run_as_non_root,
                           run_as_user, seccomp_profile_restricted]
OVERRIDDEN_AT_RESTRICTED = {capabilities_baseline, host_path_volumes, seccomp_profile_baseline}


def checks_for(level: str) -> list[Check]:
    if level == "privileged":
        return []
    if level == "baseline":
        return BASELINE
    return [c for c in BASELINE if c not in OVERRIDDEN_AT_RESTRICTED] + RESTRICTED


def evaluate(level: str, meta: Obj, spec: Obj) -> list[tuple[str, str]]:
    """Every violation of ``level`` by a pod (its metadata and spec), in upstream's order."""
    return [r for check in checks_for(level) if (r := check(meta, spec)) is not None]


def render(violations: list[tuple[str, str]]) -> str:
    """``reason (detail), reason (detail)`` as upstream's aggregate message."""
    return ", ".join(f"{reason} ({detail})" if detail else reason for reason, detail in violations)
