"""The shipped templates against the real built-in rules, and user templates (rules_file, typos)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from corpus import CORPUS
from moat.checks.collect import collect
from moat.checks.engine import FAIL, evaluate
from moat.checks.mappings import mapping_for
from moat.checks.rule import Rule, builtin_rules
from moat.checks.templates import builtin_template_names, builtin_template_text, load_template, parse_template
from moat.errors import MoatError

SHIPPED = ["cis-docker", "cis-kubernetes", "hipaa", "nist-800-190", "nsa-cisa-kubernetes", "pci-dss",
           "pss-baseline", "pss-restricted", "soc2"]


def test_the_nine_templates_are_shipped() -> None:
    assert builtin_template_names() == SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_template_selects_existing_rules_and_titles_their_controls(name: str) -> None:
    rules = builtin_rules()
    template = load_template(name)
    assert template.id == name and template.title and template.description and template.framework
    selected = template.select(rules)  # raises on a rule id Moat does not have
    assert selected
    assert {item.id for item in selected} <= set(rules)
    # Every control of the template's framework that a selected rule maps to has a title in the template.
    mapped = {c.split(":", 1)[1] for item in selected for c in item.controls if c.startswith(f"{template.framework}:")}
    assert mapped
    assert not mapped - set(template.controls)
    # Parameters a template sets are parameters some selected rule declares (else they would do nothing).
    declared = {param for item in selected for param in item.params}
    assert set(template.params) <= declared, set(template.params) - declared


@pytest.mark.parametrize(("name", "framework"), [("pci-dss", "pci-dss-4.0"), ("hipaa", "hipaa"), ("soc2", "soc2"),
                                                  ("nist-800-190", "nist-800-190"),
                                                  ("nsa-cisa-kubernetes", "nsa-cisa-k8s")])
def test_derived_framework_templates_title_every_mapped_control(name: str, framework: str) -> None:
    mapping = mapping_for(framework)
    assert mapping is not None
    template = load_template(name)
    assert template.framework == framework
    assert {cid: title for cid, title in template.controls.items() if cid in mapping.titles()} == mapping.titles()


def test_pss_restricted_includes_baseline() -> None:
    rules = builtin_rules()
    baseline = {item.id for item in load_template("pss-baseline").select(rules)}
    restricted = {item.id for item in load_template("pss-restricted").select(rules)}
    assert baseline < restricted
    assert all(any(c.startswith("pss:") for c in rules[rid].controls) for rid in restricted)


def test_pci_template_finds_privileged_pods_in_real_manifests() -> None:
    documents = collect([str(CORPUS / "misconfig" / "kubernetes" / "kubesec")]).documents
    template = load_template("pci-dss")
    run = evaluate(documents, template.select(builtin_rules()), params=template.params,
                   severity_overrides=template.severity)
    privileged = [f for f in run.findings if "pss:baseline/privileged" in f.controls and f.status == FAIL]
    assert privileged
    assert all("pci-dss-4.0:2.2.6" in f.controls for f in privileged)


def test_unknown_rule_in_a_user_template_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("id: mine\ntitle: Mine\nselect:\n  frameworks: [pss]\n  rules: [MOAT-K8S-9999]\n")
    with pytest.raises(MoatError, match=rf"^template {path}: unknown rule MOAT-K8S-9999$"):
        load_template(str(path)).select(builtin_rules())


def test_exported_text_is_the_template(tmp_path: Path) -> None:
    for name in SHIPPED:
        text = builtin_template_text(name)
        assert parse_template(text, name).id == name


def test_user_template_with_custom_cel_rules(tmp_path: Path) -> None:
    (tmp_path / "acme-rules.yaml").write_text(textwrap.dedent("""\
        rules:
          - id: ACME-LABEL
            title: Workloads carry a team label
            severity: LOW
            targets: [kubernetes]
            match: "object.kind in ['Deployment', 'StatefulSet', 'DaemonSet']"
            expression: "has(object.metadata) && has(object.metadata.labels) && 'team' in object.metadata.labels"
            description: Unowned workloads go unpatched.
            remediation: Add metadata.labels.team.
            controls: ["cis-kubernetes-1.9:5.7.1"]
        """))
    path = tmp_path / "acme.yaml"
    path.write_text(textwrap.dedent("""\
        id: acme
        title: ACME policy
        framework: pci-dss-4.0
        rules_file: acme-rules.yaml
        select:
          frameworks: ["pss:baseline/privileged"]
          rules: [ACME-LABEL]
        """))
    template = load_template(str(path))
    assert template.rules_file == str(tmp_path / "acme-rules.yaml")
    selected = {item.id: item for item in template.select(builtin_rules())}
    assert "ACME-LABEL" in selected and selected["ACME-LABEL"].source == str(tmp_path / "acme-rules.yaml")
    # a custom rule's own benchmark control brings its derived controls too
    assert "pci-dss-4.0:2.2.3" in selected["ACME-LABEL"].controls
    documents = collect([str(CORPUS / "misconfig" / "kubernetes" / "kubesec")]).documents
    run = evaluate(documents, list(selected.values()), params=template.params)
    unlabelled = {doc.name for doc in documents
                  if doc.data.get("kind") in ("Deployment", "StatefulSet", "DaemonSet")
                  and "team" not in ((doc.data.get("metadata") or {}).get("labels") or {})}
    assert unlabelled
    assert {f.object for f in run.findings if f.rule_id == "ACME-LABEL"} == unlabelled


def test_rules_file_problems(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("id: t\ntitle: T\nrules_file: missing.yaml\nselect: {rules: [X]}\n")
    with pytest.raises(MoatError, match=r"rules_file \S*missing\.yaml does not exist"):
        load_template(str(path))
    (tmp_path / "r.yaml").write_text("rules:\n  - {id: X, title: t, severity: LOW, targets: [kubernetes], "
                                     "expression: 'object.kind ==', description: d, remediation: r}\n")
    path.write_text("id: t\ntitle: T\nrules_file: r.yaml\nselect: {rules: [X]}\n")
    with pytest.raises(MoatError, match=r"r\.yaml: rule X: expression does not compile"):
        load_template(str(path)).select(builtin_rules())


def test_rules_built_by_a_caller_are_left_as_they_are() -> None:
    own = Rule("T-1", "t", "LOW", ("kubernetes",), "d", "r", "v", None, (), ("pss:baseline/privileged",))
    template = parse_template("id: t\ntitle: T\nselect: {frameworks: [pss]}\n", "t.yaml")
    assert template.select({"T-1": own}) == [own]
