"""Derived compliance frameworks: the shipped mapping files, and what they add to real built-in rules."""

from __future__ import annotations

import re

import pytest

from moat.checks import rule as rule_module
from moat.checks.mappings import (
    add_derived_controls,
    load_mappings,
    mapping_for,
    parse_mapping,
    with_derived_controls,
)
from moat.checks.rule import Rule, builtin_rules
from moat.errors import MoatError

CONTROL_ID_FORMS = {
    "pci-dss-4.0": r"\d{1,2}(\.\d{1,2}){1,3}",
    "hipaa": r"164\.3(08|12)\([a-e]\)(\(\d\))?(\((i|ii|iii|iv|v)\))?(\([A-Z]\))?",
    "soc2": r"CC\d\.\d",
    "nist-800-190": r"4\.[1-5]\.[1-5]",
    "nsa-cisa-k8s": r"[a-z]+(-[a-z]+)*",
}


def make_rule(rid: str, *controls: str) -> Rule:
    return Rule(rid, "t", "LOW", ("kubernetes",), "d", "r", "v", None, (), tuple(controls))


def test_every_framework_is_shipped_with_well_formed_control_ids() -> None:
    mappings = {mapping.framework: mapping for mapping in load_mappings()}
    assert set(mappings) == set(CONTROL_ID_FORMS)
    for framework, mapping in mappings.items():
        ids = [control.id for control in mapping.controls]
        assert len(ids) == len(set(ids))
        bad = [cid for cid in ids if not re.fullmatch(CONTROL_ID_FORMS[framework], cid)]
        assert not bad, f"{framework}: {bad}"
        assert all(control.title and control.requirement for control in mapping.controls)
        assert mapping.reference.startswith("https://")


def rules_with_mappings() -> dict[str, Rule]:
    return with_derived_controls(builtin_rules())


def test_every_derived_control_is_evidenced_by_a_builtin_rule() -> None:
    rules = rules_with_mappings().values()
    controls = {control for item in rules for control in item.controls}
    missing = [cid for mapping in load_mappings() for cid in mapping.control_ids() if cid not in controls]
    assert not missing


def test_builtin_rules_carry_derived_controls_without_changing_the_registry() -> None:
    rules = rules_with_mappings()
    secret_rule = next(item for rid, item in sorted(rules.items()) if rid.startswith("MOAT-SEC-"))
    assert "pci-dss-4.0:8.6.2" in secret_rule.controls  # by rule id pattern MOAT-SEC-*
    assert "hipaa:164.308(a)(5)(ii)(D)" in secret_rule.controls
    registered = rule_module._REGISTRY[secret_rule.id]  # the rule as its module registered it
    assert "pci-dss-4.0:8.6.2" not in registered.controls
    assert secret_rule.controls[: len(registered.controls)] == registered.controls  # own controls first
    for item in rules.values():
        assert len(item.controls) == len(set(item.controls)), item.id
    assert rules_with_mappings() == rules  # the same answer on every call
    assert with_derived_controls(rules) == rules  # applying twice adds nothing


def test_derivation_from_base_controls() -> None:
    privileged = add_derived_controls(make_rule("X-1", "pss:baseline/privileged", "cis-kubernetes-1.9:5.2.2"))
    assert {"pci-dss-4.0:2.2.1", "pci-dss-4.0:2.2.6", "pci-dss-4.0:7.2.5", "hipaa:164.312(a)(1)", "soc2:CC6.8",
            "soc2:CC7.1", "nist-800-190:4.4.3", "nsa-cisa-k8s:pod-security-enforcement"} <= set(privileged.controls)
    assert "hipaa:164.312(b)" not in privileged.controls

    audit = add_derived_controls(make_rule("X-2", "cis-docker-1.6:1.1.3"))
    assert {"pci-dss-4.0:10.2.1", "pci-dss-4.0:11.5.2", "hipaa:164.312(b)", "soc2:CC7.2"} <= set(audit.controls)
    partition = add_derived_controls(make_rule("X-3", "cis-docker-1.6:1.1.1"))  # [3-9] and 1[0-8] skip 1.1.1
    assert "pci-dss-4.0:10.2.1" not in partition.controls
    assert "nist-800-190:4.5.1" in partition.controls

    untouched = make_rule("X-4", "acme:1")
    assert add_derived_controls(untouched) is untouched


def test_derivation_is_one_step() -> None:
    mapping = parse_mapping(
        "framework: demo\ntitle: Demo\ncontrols:\n  A1: {title: t, requirement: r, evidence: ['nist-800-190:4.1.1']}\n",
        "demo.yaml")
    image_scan = make_rule("X-5", "cis-docker-1.6:4.4")
    assert "nist-800-190:4.1.1" in add_derived_controls(image_scan).controls
    assert mapping.derive(image_scan) == []  # derived nist 4.1.1 is not evidence for another mapping
    assert mapping.derive(make_rule("X-6", "nist-800-190:4.1.1")) == ["demo:A1"]


def test_titles_for_reports() -> None:
    pci = mapping_for("pci-dss-4.0")
    assert pci is not None
    assert pci.titles()["8.6.2"].startswith("Credentials are not hard-coded")
    assert mapping_for("no-such-framework") is None


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("framework: x\ntitle: X\ncontrols:\n  A: {title: t, requirement: r, evidence: ['cis-dockr-1.6:4.1']}\n",
         "evidence 'cis-dockr-1.6:4.1' names neither a rule id"),
        ("framework: x\ntitle: X\ncontrols:\n  A: {requirement: r, evidence: ['pss:*']}\n",
         "control A: title is missing"),
        ("framework: x\ntitle: X\ncontrols:\n  A: {title: t, requirement: r, evidence: []}\n", "evidence must be"),
        ("framework: X Y\ntitle: X\ncontrols: {}\n", "framework must be"),
        ("framework: x\ntitle: X\nextra: 1\ncontrols: {}\n", "unknown key extra"),
    ],
)
def test_bad_mapping_files(text: str, problem: str) -> None:
    with pytest.raises(MoatError) as caught:
        parse_mapping(text, "bad.yaml")
    assert str(caught.value).startswith("bad.yaml")
    assert problem in str(caught.value)
