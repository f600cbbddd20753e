"""trivy-checks' Kubernetes examples (../shared/corpus/misconfig/kubernetes/trivy-checks): a bad example
must make the Moat rule aliased to the check id fire, mapped to the same compliance controls; a good
example must not make it fire. Every built-in rule runs on every case."""

from __future__ import annotations

import pytest

from checks.k8s_corpus import KNOWN_FILE, findings_for, load_documents, run_all_rules
from corpus import Case, cases, known_differences

CASES = cases("misconfig", "kubernetes/trivy-checks")
KNOWN = known_differences(KNOWN_FILE)

OTHER_OWNERS: dict[str, str] = {}
"""Bad cases whose check belongs to another module that does not cover it yet (case -> reason), run as
strict xfails so the run fails as a reminder once the rule lands. Empty now: the cluster-object cases
(KCV-0093 ingress-nginx, KSV-0037 kube-system, KSV-0038 NetworkPolicy selectors) pass through
rules/k8s_cluster.py and KSV-0109 (secrets in a ConfigMap) through the MOAT-SEC rules."""


PSS_SLUGS = {
    "hostprocess": "host-process", "host namespaces": "host-namespaces", "privileged containers": "privileged",
    "capabilities": "capabilities", "hostpath volumes": "hostpath-volumes", "host ports": "host-ports",
    "apparmor": "apparmor", "selinux": "selinux", "/proc mount type": "proc-mount", "seccomp": "seccomp",
    "sysctls": "sysctls", "volume types": "volume-types", "privilege escalation": "privilege-escalation",
    "running as non-root": "running-as-non-root", "running as non-root user": "running-as-non-root-user",
}
"""trivy's PSS control names (their ids are ordinals) -> Moat's pss:<profile>/<slug>."""

NSA_SECTIONS = {
    "1.0": "non-root-containers", "1.1": "immutable-filesystems", "1.2": "pod-security-enforcement",
    "1.3": "pod-security-enforcement", "1.4": "pod-security-enforcement", "1.5": "pod-security-enforcement",
    "1.6": "non-root-containers", "1.7": "pod-security-enforcement", "1.8": "pod-security-enforcement",
    "1.9": "pod-security-enforcement", "1.10": "pod-security-enforcement", "1.11": "service-account-tokens",
    "1.12": "namespaces", "2.0": "network-policies", "4.0": "resource-policies", "4.1": "resource-policies",
}
"""trivy's k8s-nsa-1.0 numbering -> the NSA/CISA guide section Moat maps to (nsa-cisa-k8s:<slug>)."""


def wanted_controls(control: dict[str, str]) -> set[str]:
    """The Moat controls that satisfy one trivy control (any one of them will do)."""
    framework, number = control["framework"], str(control["control"])
    if framework == "k8s-cis-1.23":
        return {f"cis-kubernetes-1.9:{number}"}
    if framework == "k8s-nsa-1.0":
        return {f"nsa-cisa-k8s:{NSA_SECTIONS[number]}"}
    slug = PSS_SLUGS[control["control_name"].lower()]
    if framework == "k8s-pss-baseline-0.1":
        return {f"pss:baseline/{slug}"}
    # Restricted includes every Baseline control, so a Baseline mapping answers a Restricted one too.
    return {f"pss:restricted/{slug}", f"pss:baseline/{slug}"}


def problems_of(case: Case) -> list[str]:
    run = run_all_rules(load_documents(case.input_path))
    check_id = case.raw["check"]["id"]
    findings = findings_for(run, check_id)
    if "must_not_fire" in case.expected:
        return [f"{f.rule_id} fired: {f.message}" for f in findings]
    if not findings:
        return [f"no rule aliased {check_id} fired"]
    problems = []
    for finding in findings:
        for control in case.expected.get("controls", []):
            if not wanted_controls(control) & set(finding.controls):
                problems.append(f"{finding.rule_id} lacks {control['framework']}:{control['control']} "
                                f"({control['control_name']}); has {finding.controls}")
    return problems


def _param(case: Case) -> object:
    marks = [pytest.mark.xfail(strict=True, reason=OTHER_OWNERS[case.name])] if case.name in OTHER_OWNERS else []
    return pytest.param(case, id=case.name, marks=marks)


def test_corpus_is_present() -> None:
    assert len(CASES) == 51


@pytest.mark.parametrize("case", [_param(case) for case in CASES])
def test_trivy_case(case: Case) -> None:
    problems = problems_of(case)
    if case.name in KNOWN:
        assert problems, f"{case.name} is listed as a known difference but now passes: remove it"
    else:
        assert not problems, f"{case.name}:\n  " + "\n  ".join(problems)


def test_known_differences_name_real_cases() -> None:
    names = {case.name for case in CASES}
    trivy_known = {name for name in KNOWN if name.startswith(("KSV-", "KCV-"))}
    assert trivy_known <= names
