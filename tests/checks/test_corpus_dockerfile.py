"""Every trivy-checks Dockerfile case of the shared corpus, run through Moat's parser and rules.

A ``must_fire`` case needs a finding from a Moat rule that lists the check id among its aliases (and,
when the case names CIS Docker controls, that rule maps to the same ``cis-docker-1.6`` control); a
``must_not_fire`` case needs no finding from any such rule. A case Moat deliberately answers
differently is listed in ``tests/known_differences/dockerfile-misconfig.yaml`` and must still differ.
"""

from __future__ import annotations

import pytest

from corpus import Case, cases, known_differences
from moat.checks.engine import evaluate
from moat.checks.rule import builtin_rules
from moat.checks.targets.dockerfile import dockerfile_documents

CASES = cases("misconfig", "dockerfile/trivy-checks")
KNOWN = known_differences("dockerfile-misconfig")
FRAMEWORKS = {"docker-cis-1.6.0": "cis-docker-1.6"}


def problems(case: Case) -> list[str]:
    rules = builtin_rules()
    documents = dockerfile_documents(case.input_path, case.input)
    findings = evaluate(documents, list(rules.values())).findings
    found: list[str] = []
    for check in case.expected.get("must_fire", []):
        mapped = [item for item in rules.values() if check in item.aliases]
        if not mapped:
            found.append(f"no Moat rule lists {check} among its aliases")
            continue
        for control in case.expected.get("controls", []):
            wanted = f"{FRAMEWORKS[control['framework']]}:{control['control']}"
            if not any(wanted in item.controls for item in mapped):
                found.append(f"the rules for {check} do not map to {wanted}")
        ids = {item.id for item in mapped}
        if not any(f.rule_id in ids and f.status == "FAIL" for f in findings):
            found.append(f"{check} ({', '.join(sorted(ids))}) did not fire")
    for check in case.expected.get("must_not_fire", []):
        fired = [f for f in findings if check in f.aliases and f.status == "FAIL"]
        if fired:
            found.append(f"{check} fired: {fired[0].rule_id} line {fired[0].line}: {fired[0].message}")
    return found


def test_the_corpus_is_there() -> None:
    assert len(CASES) == 45
    assert {case.kind for case in CASES} == {"dockerfile-misconfig"}


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_trivy_checks_case(case: Case) -> None:
    found = problems(case)
    if case.name in KNOWN:
        assert found, f"{case.name} is listed as a known difference but now passes: remove it"
    else:
        assert not found, f"{case.name}:\n  " + "\n  ".join(found)


def test_known_differences_name_real_cases() -> None:
    names = {case.name for case in CASES}
    assert set(KNOWN) <= names
