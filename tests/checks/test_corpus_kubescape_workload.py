"""The kubescape regolibrary cases for pod and workload rules against Moat's MOAT-K8S-0xx rules.

Every case's ``input/`` is loaded whole (some hold a compliant object next to the failing one, or a
ControlPlaneInfo object) and every built-in rule runs on it. A firing case must give findings from the
one Moat rule whose aliases hold the kubescape rule name, on exactly the objects kubescape names (kind
and name; kubescape repeats an object once per failing container, Moat gives one finding per container
or field, so the comparison is by object); a non-firing case must give none from that rule.
"""

from __future__ import annotations

import pytest

from checks.k8s_corpus import KNOWN_FILE, load_documents, run_all_rules
from corpus import Case, cases, known_differences
from moat.checks.rule import builtin_rules

WORKLOAD_RULES = (
    "drop-capability-netraw", "host-ipc-privileges", "host-network-access", "host-pid-privileges",
    "immutable-container-filesystem", "non-root-containers", "rule-allow-privilege-escalation",
    "rule-secrets-in-env-var", "set-fsgroup-value", "set-fsgroupchangepolicy-value",
    "set-gmsacredentialspecname-value", "set-hostprocess-true", "set-procmount-default", "set-runasusername-value",
    "set-seLinuxOptions", "set-seccomp-profile", "set-seccomp-profile-RuntimeDefault",
    "set-supplementalgroups-values", "set-sysctls-params",
)
CASES = [case for case in cases("misconfig", "kubernetes/kubescape") if case.expected.get("rule") in WORKLOAD_RULES]
KNOWN = known_differences(KNOWN_FILE)


def _kind_and_name(obj: str) -> tuple[str, str]:
    parts = obj.split("/")
    return parts[-2], parts[-1]


def problems_of(case: Case) -> list[str]:
    kubescape_rule = str(case.expected["rule"])
    matches = [item for item in builtin_rules().values() if kubescape_rule in item.aliases]
    if len(matches) != 1:
        return [f"{kubescape_rule} is aliased by {[m.id for m in matches]}, expected exactly one rule"]
    moat_rule = matches[0]
    run = run_all_rules(load_documents(case.directory / "input"))
    have = {_kind_and_name(f.object) for f in run.findings if f.rule_id == moat_rule.id and f.status == "FAIL"}
    failing = case.expected.get("failing_objects", []) if case.expected["fires"] else []
    want = {(item["kind"], item["name"]) for item in failing}
    return [] if have == want else [f"{moat_rule.id}: want {sorted(want)}, have {sorted(have)}"]


def test_every_rule_has_cases() -> None:
    assert {case.expected["rule"] for case in CASES} == set(WORKLOAD_RULES)
    assert len(CASES) == 57


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_kubescape_case(case: Case) -> None:
    problems = problems_of(case)
    if case.name in KNOWN:
        assert problems, f"{case.name} is listed as a known difference but now passes: remove it"
    else:
        assert not problems, f"{case.name}:\n  " + "\n  ".join(problems)


def test_findings_carry_container_and_line() -> None:
    case = next(case for case in CASES if case.name == "drop-capability-netraw--pod")
    run = run_all_rules(load_documents(case.directory / "input"))
    netraw = [f for f in run.findings if "drop-capability-netraw" in f.aliases]
    assert sorted(f.container for f in netraw) == ["test-container1", "test-container2"]
    source = (case.directory / "input" / "pod.yaml").read_text().splitlines()
    adds = next(f for f in netraw if f.container == "test-container2")
    assert source[adds.line - 1].strip() == 'add: ["NET_RAW"]'
