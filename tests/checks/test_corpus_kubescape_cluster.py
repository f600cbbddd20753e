"""The kubescape regolibrary cases for cluster objects (RBAC, service accounts, namespaces, Pod Security
Admission, network policies, secrets encryption) against Moat's MOAT-K8S-2xx rules.

Every case's ``input/`` holds several objects (a role and its binding, namespaces and the pods in them);
all are loaded and every built-in rule runs on them, as ``moat config input/`` would. A firing case must
give findings from the Moat rule that lists the kubescape rule name among its aliases on exactly the
objects kubescape names (kind and name; for RBAC rules that is the subject, ``Group/dev``); a
non-firing case must give none. Listed known differences must still differ.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from corpus import CORPUS, Case, cases, known_differences
from moat.checks.document import Document
from moat.checks.engine import FAIL, MANUAL, evaluate
from moat.checks.rule import Rule, builtin_rules
from moat.checks.targets.kubernetes import kubernetes_documents
from moat.checks.yamlload import load_yaml_file

KUBESCAPE = "kubernetes/kubescape"
OURS = (
    "automount-default-service-account", "automount-service-account", "cluster-admin-role",
    "ensure-that-the-cni-in-use-supports-network-policies", "external-secret-storage", "internal-networking",
    "list-all-namespaces", "namespace-without-service-account", "pod-security-admission-applied-1",
    "pod-security-admission-applied-2", "pod-security-admission-baseline-applied-1",
    "pod-security-admission-baseline-applied-2", "pod-security-admission-restricted-applied-1",
    "pod-security-admission-restricted-applied-2", "rule-list-all-cluster-admins-v1",
)


def _ours(rule_name: str) -> bool:
    return rule_name in OURS or rule_name.endswith("-in-default-namespace") or rule_name.startswith("rule-can-")


CASES = [case for case in cases("misconfig", KUBESCAPE) if _ours(str(case.expected.get("rule", "")))]


def _known() -> dict[str, str]:
    return {**known_differences("k8s-misconfig"), **known_differences("k8s-cluster-misconfig")}


def load_directory(directory: Path) -> list[Document]:
    documents: list[Document] = []
    for path in sorted(directory.iterdir()):
        if path.suffix.lower() in (".yaml", ".yml", ".json"):
            documents.extend(kubernetes_documents(load_yaml_file(path, str(path)), str(path)))
    return documents


def _rule_for(kubescape_rule: str, rules: dict[str, Rule]) -> Rule:
    matches = [item for item in rules.values() if kubescape_rule in item.aliases]
    assert len(matches) == 1, f"{kubescape_rule}: aliased by {[m.id for m in matches]}"
    return matches[0]


def _kind_and_name(obj: str) -> tuple[str, str]:
    parts = obj.split("/")
    return parts[-2], parts[-1]


def problems(case: Case) -> list[str]:
    rules = builtin_rules()
    moat_rule = _rule_for(str(case.expected["rule"]), rules)
    run = evaluate(load_directory(case.directory / "input"), list(rules.values()))
    mine = [f for f in run.findings if f.rule_id == moat_rule.id]
    if moat_rule.manual:
        return [f"{moat_rule.id} is a manual rule: reported {[f.status for f in mine]}, kubescape lists "
                f"{case.expected.get('failing_objects')}"]
    have = {_kind_and_name(f.object) for f in mine if f.status == FAIL}
    failing = case.expected.get("failing_objects", []) if case.expected["fires"] else []
    want = {(o["kind"], o["name"]) for o in failing}
    if have == want:
        return []
    return [f"{moat_rule.id}: want {sorted(want)}, have {sorted(have)}"]


def test_the_corpus_has_our_cases() -> None:
    assert len(CASES) >= 70, len(CASES)
    assert (CORPUS / "misconfig" / KUBESCAPE).is_dir()


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_kubescape_case(case: Case) -> None:
    found = problems(case)
    known = _known()
    if case.name in known:
        assert found, f"{case.name} is a known difference but now agrees: remove it"
    else:
        assert not found, f"{case.name}:\n  " + "\n  ".join(found)


def test_findings_point_at_lines_of_the_binding() -> None:
    directory = CORPUS / "misconfig" / KUBESCAPE / "cluster-admin-role--clusterrole-clusterrolebinding" / "input"
    run = evaluate(load_directory(directory), list(builtin_rules().values()))
    admin = sorted((f.object, f.line, Path(f.file).name) for f in run.findings if f.rule_id == "MOAT-K8S-200")
    # subjects[0] (manager) starts on line 6 of clusterrolebinding.yaml, subjects[1] (dev) on line 9
    assert admin == [("Group/dev", 9, "clusterrolebinding.yaml"), ("Group/manager", 6, "clusterrolebinding.yaml")]


def test_every_kubescape_rule_of_ours_has_one_moat_rule() -> None:
    rules = builtin_rules()
    names = {str(case.expected["rule"]) for case in CASES}
    for name in names:
        assert _rule_for(name, rules).id.startswith("MOAT-K8S-2")
    manual = {case.expected["rule"] for case in CASES if _rule_for(str(case.expected["rule"]), rules).manual}
    assert manual <= {"list-all-namespaces"}, manual
    assert MANUAL == "MANUAL"
