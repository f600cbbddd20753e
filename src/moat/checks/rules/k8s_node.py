"""Shared machinery of the CIS Kubernetes Benchmark node rules (``MOAT-KN-nnn``), sections 1 to 4.

The rules themselves live by section: :mod:`.k8s_node_master` (1 control plane, 3 control plane
configuration), :mod:`.k8s_node_etcd` (2 etcd), :mod:`.k8s_node_worker` (4 worker nodes). Each maps to
exactly one ``cis-kubernetes-1.9:<id>`` control, so the benchmark's coverage can be counted.

A rule belongs to one node role (``master``, ``etcd``, ``worker``; kube-bench's targets ``master`` and
``controlplane`` are both ``master`` here). It only fires on a node that has that role, and
:func:`rules_for_roles` leaves the others out of a run altogether, so a worker is neither failed nor
passed on API server flags it does not have.

Rule ids leave gaps between sections (1.1 → 001…, 1.2 → 030…, 1.3 → 060…, 1.4 → 070…, 2 → 080…,
3 → 090…, 4.1 → 100…, 4.2 → 110…, 4.3 → 130…) so items later benchmark releases add can sit beside
their neighbours.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from moat.checks.document import Document, TargetKind
from moat.checks.rule import CheckFunction, Hit, Rule, RuleContext, manual_rule, rule
from moat.checks.targets.k8s_node import BINARY_OF

CIS = "cis-kubernetes-1.9"
CIS_URL = "https://www.cisecurity.org/benchmark/kubernetes"
APISERVER_DOC = "https://kubernetes.io/docs/reference/command-line-tools-reference/kube-apiserver/"
CONTROLLER_MANAGER_DOC = "https://kubernetes.io/docs/reference/command-line-tools-reference/kube-controller-manager/"
SCHEDULER_DOC = "https://kubernetes.io/docs/reference/command-line-tools-reference/kube-scheduler/"
KUBELET_DOC = "https://kubernetes.io/docs/reference/command-line-tools-reference/kubelet/"
KUBELET_CONFIG_DOC = "https://kubernetes.io/docs/reference/config-api/kubelet-config.v1beta1/"
KUBELET_AUTH_DOC = "https://kubernetes.io/docs/reference/access-authn-authz/kubelet-authn-authz/"
PROXY_DOC = "https://kubernetes.io/docs/reference/command-line-tools-reference/kube-proxy/"
ADMISSION_DOC = "https://kubernetes.io/docs/reference/access-authn-authz/admission-controllers/"
AUDIT_DOC = "https://kubernetes.io/docs/tasks/debug/debug-cluster/audit/"
ENCRYPTION_DOC = "https://kubernetes.io/docs/tasks/administer-cluster/encrypt-data/"
PKI_DOC = "https://kubernetes.io/docs/setup/best-practices/certificates/"
KUBEADM_DOC = "https://kubernetes.io/docs/reference/setup-tools/kubeadm/implementation-details/"
ETCD_DOC = "https://etcd.io/docs/v3.5/op-guide/security/"
ETCD_CONFIG_DOC = "https://etcd.io/docs/v3.5/op-guide/configuration/"
AUTHN_DOC = "https://kubernetes.io/docs/reference/access-authn-authz/authentication/"

ROLE_OF_RULE: dict[str, str] = {}
"""Rule id → the node role it applies to."""

COMPONENT_BINARY = BINARY_OF


def aliases(kcv: Sequence[int] = (), kubescape: Sequence[int] = ()) -> tuple[str, ...]:
    """Trivy's ids for the check (``KCV-0048``, its old form ``KCV0048``, ``AVD-KCV-0048``) and
    kubescape's control ids (``C-0092``)."""
    found: list[str] = []
    for number in kcv:
        found += [f"KCV-{number:04d}", f"KCV{number:04d}", f"AVD-KCV-{number:04d}"]
    found += [f"C-{number:04d}" for number in kubescape]
    return tuple(found)


def node_rule(
    *,
    id: str,
    cis: str,
    title: str,
    severity: str,
    role: str,
    description: str,
    remediation: str,
    verification: str,
    references: Sequence[str],
    kcv: Sequence[int] = (),
    kubescape: Sequence[int] = (),
    params: dict[str, Any] | None = None,
) -> Callable[[CheckFunction], CheckFunction]:
    """Register a node check for one CIS item; it runs only on nodes with ``role``."""

    def decorate(check: CheckFunction) -> CheckFunction:
        def guarded(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
            if role in doc.data.get("roles", ()):
                yield from check(doc, ctx)

        guarded.__doc__ = check.__doc__
        rule(id=id, title=title, severity=severity, targets=[TargetKind.K8S_NODE], description=description,
             remediation=remediation, verification=verification, references=[*references, CIS_URL],
             controls=[f"{CIS}:{cis}"], aliases=aliases(kcv, kubescape), params=params)(guarded)
        ROLE_OF_RULE[id] = role
        return check

    return decorate


def node_manual_rule(
    *,
    id: str,
    cis: str,
    title: str,
    severity: str,
    role: str,
    description: str,
    remediation: str,
    verification: str,
    references: Sequence[str],
    kcv: Sequence[int] = (),
    kubescape: Sequence[int] = (),
) -> None:
    """Register a CIS item no file on the node can settle: reported MANUAL with the auditor's steps."""
    manual_rule(id=id, title=title, severity=severity, targets=[TargetKind.K8S_NODE], description=description,
                remediation=remediation, verification=verification, references=[*references, CIS_URL],
                controls=[f"{CIS}:{cis}"], aliases=aliases(kcv, kubescape))
    ROLE_OF_RULE[id] = role


def rules_for_roles(rules: Iterable[Rule], roles: Iterable[str]) -> list[Rule]:
    """The node rules that apply to a node with these roles (other rules pass through unchanged)."""
    wanted = set(roles)
    return [item for item in rules if item.id not in ROLE_OF_RULE or ROLE_OF_RULE[item.id] in wanted]


# --------------------------------------------------------------------------------------------------
# Reading the document


def component(doc: Document, name: str) -> dict[str, Any] | None:
    found = doc.data.get("components", {}).get(name)
    return found if isinstance(found, dict) else None


def flag(doc: Document, name: str, flag_name: str) -> str | None:
    entry = component(doc, name)
    if entry is None:
        return None
    value = entry.get("flags", {}).get(flag_name)
    return str(value) if value is not None else None


def flag_list(doc: Document, name: str, flag_name: str) -> list[str]:
    value = flag(doc, name, flag_name)
    return [item.strip() for item in value.split(",") if item.strip()] if value else []


def where(doc: Document, name: str, flag_name: str = "") -> tuple[str, int]:
    """The file and line that set a flag, else the component's command line."""
    entry = component(doc, name) or {}
    location = entry.get("locations", {}).get(flag_name) if flag_name else None
    if isinstance(location, dict) and location.get("file"):
        return str(location["file"]), int(location.get("line") or 0)
    source = str(entry.get("source", ""))
    if entry.get("origin") == "process":
        source = f"{source} ({COMPONENT_BINARY.get(name, name)})"
    return source, int(entry.get("line") or 0)


def flag_hit(doc: Document, name: str, flag_name: str, message: str, evidence: str = "") -> Hit:
    resource, line = where(doc, name, flag_name)
    return Hit(message, resource=resource, line=line, evidence=evidence)


def is_true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def is_false(value: Any) -> bool:
    return value is False or (isinstance(value, str) and value.strip().lower() == "false")


# --------------------------------------------------------------------------------------------------
# Check builders for the common shapes


def flag_equals(name: str, flag_name: str, expected: str, default: str | None) -> CheckFunction:
    """Fail unless ``--flag`` is ``expected`` (its default when absent is ``default``)."""
    binary = COMPONENT_BINARY[name]

    def check(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
        if component(doc, name) is None:
            return
        value = flag(doc, name, flag_name)
        if value is None:
            if default != expected:
                yield flag_hit(doc, name, flag_name,
                               f"{binary} does not set --{flag_name} (default {default or 'unset'}); "
                               f"set --{flag_name}={expected}", f"--{flag_name} absent")
        elif value.strip().lower() != expected.lower():
            yield flag_hit(doc, name, flag_name, f"{binary} sets --{flag_name}={value}; set --{flag_name}={expected}",
                           f"--{flag_name}={value}")

    return check


def flag_not_value(name: str, flag_name: str, forbidden: str) -> CheckFunction:
    """Fail when ``--flag`` is explicitly ``forbidden`` (absent is fine)."""
    binary = COMPONENT_BINARY[name]

    def check(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
        value = flag(doc, name, flag_name)
        if value is not None and value.strip().lower() == forbidden.lower():
            yield flag_hit(doc, name, flag_name, f"{binary} sets --{flag_name}={value}", f"--{flag_name}={value}")

    return check


def flags_set(name: str, *flag_names: str) -> CheckFunction:
    """Fail for each of the flags that is absent or empty."""
    binary = COMPONENT_BINARY[name]

    def check(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
        if component(doc, name) is None:
            return
        missing = [item for item in flag_names if not (flag(doc, name, item) or "").strip()]
        if missing:
            text = " and ".join(f"--{item}" for item in missing)
            yield flag_hit(doc, name, missing[0], f"{binary} does not set {text}", f"{text} absent")

    return check


def flag_absent(name: str, flag_name: str) -> CheckFunction:
    binary = COMPONENT_BINARY[name]

    def check(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
        value = flag(doc, name, flag_name)
        if value is not None:
            yield flag_hit(doc, name, flag_name, f"{binary} sets --{flag_name}={value}", f"--{flag_name}={value}")

    return check


def flag_at_least(name: str, flag_name: str, param: str) -> CheckFunction:
    """Fail when ``--flag`` is absent, not a number, or below the rule parameter ``param``."""
    binary = COMPONENT_BINARY[name]

    def check(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
        if component(doc, name) is None:
            return
        minimum = int(ctx.params[param])
        value = flag(doc, name, flag_name)
        if value is None:
            yield flag_hit(doc, name, flag_name, f"{binary} does not set --{flag_name}; set it to {minimum} or more",
                           f"--{flag_name} absent")
            return
        try:
            number = int(value)
        except ValueError:
            yield flag_hit(doc, name, flag_name, f"{binary} sets --{flag_name}={value}, not a number",
                           f"--{flag_name}={value}")
            return
        if number < minimum:
            yield flag_hit(doc, name, flag_name,
                           f"{binary} sets --{flag_name}={number}, below {minimum}", f"--{flag_name}={value}")

    return check


def plugin_enabled(plugin: str) -> CheckFunction:
    """Fail unless the admission plugin is in ``--enable-admission-plugins`` (and not disabled)."""

    def check(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
        if component(doc, "apiserver") is None:
            return
        enabled = flag_list(doc, "apiserver", "enable-admission-plugins")
        if plugin in flag_list(doc, "apiserver", "disable-admission-plugins"):
            yield flag_hit(doc, "apiserver", "disable-admission-plugins",
                           f"kube-apiserver disables the {plugin} admission plugin",
                           f"--disable-admission-plugins={flag(doc, 'apiserver', 'disable-admission-plugins')}")
        elif plugin not in enabled:
            yield flag_hit(doc, "apiserver", "enable-admission-plugins",
                           f"kube-apiserver does not enable the {plugin} admission plugin",
                           f"--enable-admission-plugins={','.join(enabled) or '(absent)'}")

    return check


def plugin_not_disabled(plugin: str) -> CheckFunction:
    """For plugins on by default: fail when ``--disable-admission-plugins`` turns it off."""

    def check(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
        disabled = flag_list(doc, "apiserver", "disable-admission-plugins")
        if plugin in disabled:
            yield flag_hit(doc, "apiserver", "disable-admission-plugins",
                           f"kube-apiserver disables the {plugin} admission plugin",
                           f"--disable-admission-plugins={','.join(disabled)}")

    return check


# Files ----------------------------------------------------------------------------------------------


def paths_of(doc: Document, key: str) -> list[str]:
    value = doc.data.get("paths", {}).get(key)
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


def facts_of(doc: Document, path: str) -> dict[str, Any]:
    found = doc.data.get("files", {}).get(path)
    return found if isinstance(found, dict) else {"exists": False}


def mode_too_open(mode: str, allowed: int) -> bool:
    return bool(int(mode, 8) & ~allowed & 0o7777)


def file_mode(key: str, allowed: int | Callable[[Document], int], what: str,
              kinds: tuple[str, ...] = ("file",), suffix: str = "") -> CheckFunction:
    """Fail for each existing path under ``paths[key]`` whose mode grants more than ``allowed``."""

    def check(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
        limit = allowed(doc) if callable(allowed) else allowed
        for path in paths_of(doc, key):
            if suffix and not path.endswith(suffix):
                continue
            facts = facts_of(doc, path)
            if not facts.get("exists") or facts.get("type") not in kinds:
                continue
            if mode_too_open(str(facts["mode"]), limit):
                yield Hit(f"{what} {path} has mode {facts['mode']}; {limit:04o} or more restrictive expected",
                          resource=path, evidence=f"mode {facts['mode']}")

    return check


def file_owner(key: str, what: str, owner: str = "root", group: str = "root",
               kinds: tuple[str, ...] = ("file",)) -> CheckFunction:
    """Fail for each existing path under ``paths[key]`` not owned by ``owner:group``."""

    def check(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
        for path in paths_of(doc, key):
            facts = facts_of(doc, path)
            if not facts.get("exists") or facts.get("type") not in kinds:
                continue
            if (facts.get("owner"), facts.get("group")) != (owner, group):
                yield Hit(f"{what} {path} is owned by {facts.get('owner')}:{facts.get('group')}; "
                          f"{owner}:{group} expected", resource=path,
                          evidence=f"owner {facts.get('owner')}:{facts.get('group')}")

    return check


def certificate_mode(doc: Document) -> int:
    """CIS 1.11 relaxed certificate files (not keys) to 644: they are public. Earlier releases ask 600."""
    return 0o644 if doc.data.get("benchmark") in ("cis-1.11", "cis-1.12") else 0o600


# Kubelet ---------------------------------------------------------------------------------------------


def kubelet_setting(doc: Document, setting: str) -> dict[str, Any] | None:
    kubelet = component(doc, "kubelet")
    if kubelet is None:
        return None
    found = kubelet.get("effective", {}).get(setting)
    return found if isinstance(found, dict) else None


def kubelet_hit(doc: Document, entry: dict[str, Any], message: str) -> Hit:
    """A kubelet finding placed where the value in force was set: the flag's file, the config file's
    field, or (for a default) the kubelet's unit or config file."""
    if entry.get("source") == "flag":
        evidence = f"--{entry.get('flag')}={entry.get('value')}"
        resource = str(entry.get("file") or where(doc, "kubelet")[0])
    elif entry.get("source") == "config":
        evidence = f"{entry.get('field')}: {entry.get('value')}"
        resource = str(entry.get("file") or "")
    else:
        kubelet = component(doc, "kubelet") or {}
        evidence = "not set" if entry.get("value") is None else f"not set (default {entry.get('value')})"
        resource = str(kubelet.get("config_path") or where(doc, "kubelet")[0])
    return Hit(message, resource=resource, line=int(entry.get("line") or 0), evidence=evidence)


def describe(entry: dict[str, Any]) -> str:
    if entry.get("source") == "flag":
        return f"--{entry.get('flag')}={entry.get('value')}"
    if entry.get("source") == "config":
        return f"{entry.get('field')}: {entry.get('value')} in {entry.get('file')}"
    return "not set" if entry.get("value") is None else f"the default {entry.get('value')}"
