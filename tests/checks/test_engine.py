"""The engine: findings with lines, per-rule outcomes, template parameters and severity overrides,
manual rules, and a rule that raises."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from moat.checks.document import Document, TargetKind
from moat.checks.engine import FAIL, MANUAL, NOT_APPLICABLE, PASS, evaluate
from moat.checks.rule import Hit, Rule, RuleContext, validate_rule
from moat.checks.yamlload import load_yaml_documents


def _doc(text: str, path: str = "pods.yaml") -> list[Document]:
    return [
        Document(TargetKind.KUBERNETES, path, y.data, f"Pod/{y.data['metadata']['name']}", y.lines, y.start_line,
                 y.end_line)
        for y in load_yaml_documents(text, path)
    ]


PODS = """\
kind: Pod
metadata: {name: a}
spec:
  hostPID: true
  containers: [{name: c, image: "x:latest"}]
---
kind: Pod
metadata: {name: b}
spec:
  containers:
    - name: c
      image: x:1
"""


def _host_pid(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    if doc.data["spec"].get("hostPID"):
        yield Hit("pod shares the host's PID namespace", ("spec", "hostPID"))


def _tag(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    for index, container in enumerate(doc.data["spec"]["containers"]):
        if container["image"].rsplit(":", 1)[-1] in ctx.params["banned_tags"]:
            yield Hit(f"image tag of {container['name']}", ("spec", "containers", index, "image"), container["name"])


def _rule(rule_id: str, check: object, **extra: object) -> Rule:
    fields: dict[str, object] = {
        "id": rule_id, "title": f"title {rule_id}", "severity": "HIGH", "targets": (TargetKind.KUBERNETES,),
        "description": "risk", "remediation": "fix", "verification": "kubectl get pods -o yaml", "check": check,
    }
    fields.update(extra)
    return Rule(**fields)  # type: ignore[arg-type]


def test_findings_point_at_the_line_and_outcomes_count_evaluations() -> None:
    rules = [_rule("T-1", _host_pid, controls=("pss:baseline/host-namespaces",)),
             _rule("T-2", _tag, params={"banned_tags": ["latest"]})]
    run = evaluate(_doc(PODS), rules)
    by_rule = {f.rule_id: f for f in run.findings}
    assert by_rule["T-1"].line == 4 and by_rule["T-1"].object == "Pod/a"
    assert by_rule["T-1"].controls == ["pss:baseline/host-namespaces"]
    assert by_rule["T-2"].line == 5 and by_rule["T-2"].container == "c"
    assert run.outcomes["T-1"].status == FAIL and run.outcomes["T-1"].evaluated == 2
    assert run.outcomes["T-1"].failures == 1


def test_template_params_and_severity_overrides() -> None:
    rules = [_rule("T-2", _tag, params={"banned_tags": ["latest"]})]
    run = evaluate(_doc(PODS), rules, params={"banned_tags": ["1"], "unrelated": 5}, severity_overrides={"T-2": "LOW"})
    assert [(f.object, f.severity) for f in run.findings] == [("Pod/b", "LOW")]
    assert run.findings[0].line == 12


def test_pass_manual_and_not_applicable() -> None:
    manual = _rule("T-M", None)
    other_kind = _rule("T-D", _host_pid, targets=(TargetKind.DOCKERFILE,))
    clean = _rule("T-C", lambda doc, ctx: iter(()))
    run = evaluate(_doc(PODS), [manual, other_kind, clean])
    assert run.outcomes["T-M"].status == MANUAL
    assert run.outcomes["T-D"].status == NOT_APPLICABLE
    assert run.outcomes["T-C"].status == PASS
    [item] = run.findings
    assert item.status == "MANUAL" and item.verification == "kubectl get pods -o yaml"


def test_a_rule_that_raises_is_a_warning_unless_strict(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
        raise KeyError("nope")

    monkeypatch.setenv("MOAT_STRICT_RULES", "0")
    run = evaluate(_doc(PODS), [_rule("T-B", broken), _rule("T-1", _host_pid)])
    assert len(run.warnings) == 2 and "rule T-B could not evaluate pods.yaml Pod/a: KeyError" in run.warnings[0]
    assert [f.rule_id for f in run.findings] == ["T-1"]
    monkeypatch.setenv("MOAT_STRICT_RULES", "1")
    with pytest.raises(KeyError):
        evaluate(_doc(PODS), [_rule("T-B", broken)])


@pytest.mark.parametrize(
    ("change", "message"),
    [({"severity": "SEVERE"}, "severity"), ({"remediation": " "}, "remediation is empty"),
     ({"targets": ("nowhere",)}, "unknown target kind"), ({"controls": ("cis-1",)}, "framework:control")],
)
def test_rules_missing_what_a_finding_needs_are_refused(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_rule(_rule("T-X", _host_pid, **change))


def test_a_rule_that_cannot_assess_a_document_does_not_pass_it() -> None:
    from moat.checks.rule import NotAssessable

    def needs_facts(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
        if "facts" not in doc.facts:
            raise NotAssessable
        yield from ()

    run = evaluate(_doc(PODS), [_rule("T-N", needs_facts)])
    assert run.outcomes["T-N"].status == NOT_APPLICABLE and run.outcomes["T-N"].evaluated == 0
    assert run.warnings == [] and run.findings == []
    docs = _doc(PODS)
    docs[0].facts["facts"] = True
    assert evaluate(docs, [_rule("T-N", needs_facts)]).outcomes["T-N"].status == PASS


def test_a_hit_can_span_lines() -> None:
    def span(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
        yield Hit("multi-line instruction", line=3, end_line=6)

    [finding] = evaluate(_doc(PODS)[:1], [_rule("T-S", span)]).findings
    assert (finding.line, finding.end_line) == (3, 6)
