"""Custom CEL rules, evaluated for real (common-expression-language in its worker process) on real
manifests from the shared corpus (kubesec's test objects)."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

from corpus import CORPUS
from moat.checks.collect import collect
from moat.checks.custom import CustomRuleError, load_custom_rules
from moat.checks.document import Document
from moat.checks.engine import FAIL, PASS, evaluate
from moat.checks.rule import builtin_rules
from moat.errors import MoatError

KUBESEC = CORPUS / "misconfig" / "kubernetes" / "kubesec"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "custom-rules.md"

def write_rules(tmp_path: Path, body: str, name: str = "rules.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


def one_rule(tmp_path: Path, **fields: Any) -> Path:
    """A rules file holding one rule: defaults plus ``fields`` (written as YAML flow scalars)."""
    rule = {"id": "ACME-001", "title": "A rule", "severity": "MEDIUM", "targets": "[kubernetes]",
            "description": "Why.", "remediation": "Fix.", **fields}
    lines = ["rules:"]
    for index, (key, value) in enumerate(rule.items()):
        prefix = "  - " if index == 0 else "    "
        lines.append(f"{prefix}{key}: {value}")
    return write_rules(tmp_path, "\n".join(lines) + "\n")


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec = obj.get("spec") or {}
    return (spec.get("template") or {}).get("spec") or spec


@pytest.fixture(scope="module")
def kubesec_documents() -> list[Document]:
    collected = collect([str(KUBESEC)])
    assert len(collected.documents) >= 50
    return collected.documents


def test_rules_evaluate_on_real_manifests(tmp_path: Path, kubesec_documents: list[Document]) -> None:
    path = write_rules(tmp_path, """\
        rules:
          - id: ACME-001
            title: Containers must not allow privilege escalation
            severity: HIGH
            targets: [kubernetes]
            match: "object.kind in ['Deployment', 'DaemonSet', 'StatefulSet', 'Pod']"
            expression: >-
              !(object.kind == 'Pod' ? object.spec : object.spec.template.spec).containers.exists(c,
                has(c.securityContext) && has(c.securityContext.allowPrivilegeEscalation) &&
                c.securityContext.allowPrivilegeEscalation == true)
            message: a container allows privilege escalation
            description: Privilege escalation lets a process gain more rights than its parent.
            remediation: "Set securityContext.allowPrivilegeEscalation: false."
            controls: ["acme:1.2"]
          - id: ACME-002
            title: Workloads must not use the host PID namespace
            severity: CRITICAL
            targets: [kubernetes]
            expression: >-
              !has((object.kind == 'Pod' ? object.spec : object.spec.template.spec).hostPID) ||
              (object.kind == 'Pod' ? object.spec : object.spec.template.spec).hostPID == false
            description: Host PID exposes every process on the node.
            remediation: Remove hostPID.
        """)
    rules = load_custom_rules(path)
    assert [item.id for item in rules] == ["ACME-001", "ACME-002"]
    assert all(item.source == str(path) for item in rules)
    assert rules[0].controls == ("acme:1.2",)
    assert "allowPrivilegeEscalation" in rules[0].verification  # a default verification names the expression

    run = evaluate(kubesec_documents, rules)

    def escalating(doc: Document) -> bool:
        return any((c.get("securityContext") or {}).get("allowPrivilegeEscalation") is True
                   for c in pod_spec(doc.data).get("containers") or [])

    expected_escalation = {(doc.path, doc.name) for doc in kubesec_documents if escalating(doc)}
    expected_host_pid = {(doc.path, doc.name) for doc in kubesec_documents if pod_spec(doc.data).get("hostPID")}
    assert expected_escalation and expected_host_pid  # the corpus has both, so the comparison means something
    found = {rid: {(f.file, f.object) for f in run.findings if f.rule_id == rid} for rid in ("ACME-001", "ACME-002")}
    assert found["ACME-001"] == expected_escalation
    assert found["ACME-002"] == expected_host_pid
    finding = next(f for f in run.findings if f.rule_id == "ACME-001")
    assert finding.message == "a container allows privilege escalation"
    assert finding.severity == "HIGH" and finding.status == FAIL and finding.controls == ["acme:1.2"]
    assert run.outcomes["ACME-001"].status == FAIL
    assert run.outcomes["ACME-001"].evaluated == len(kubesec_documents)


def test_match_params_and_message_expression(tmp_path: Path, kubesec_documents: list[Document]) -> None:
    path = write_rules(tmp_path, """\
        rules:
          - id: ACME-010
            title: Images come from allowed registries
            severity: HIGH
            targets: [kubernetes]
            match: "object.kind == 'Deployment'"
            expression: >-
              object.spec.template.spec.containers.all(c,
                params.allowed_registries.exists(r, c.image.startsWith(r)))
            messageExpression: >-
              'images from elsewhere: ' + object.spec.template.spec.containers
                .filter(c, !params.allowed_registries.exists(r, c.image.startsWith(r)))
                .map(c, c.image).join(', ')
            params:
              allowed_registries: ["registry.example.com/"]
            description: Images from unknown registries may be tampered with.
            remediation: Mirror the image into registry.example.com.
        """)
    rule = load_custom_rules(path)[0]
    deployments = [doc for doc in kubesec_documents if doc.data.get("kind") == "Deployment"]
    run = evaluate(kubesec_documents, [rule])
    assert {f.object for f in run.findings} == {doc.name for doc in deployments}
    teamcity = next(f for f in run.findings if f.object.endswith("Deployment/teamcity-server"))
    assert teamcity.message == "images from elsewhere: jetbrains/teamcity-server:2019.1-linux"

    # A template's params override the rule's defaults: allow every registry these Deployments use.
    prefixes = sorted({c["image"].split(":")[0] for doc in deployments for c in pod_spec(doc.data)["containers"]})
    allowed = evaluate(kubesec_documents, [rule], params={"allowed_registries": prefixes})
    assert allowed.findings == []
    assert allowed.outcomes["ACME-010"].status == PASS


def test_kubernetes_macros_and_string_functions(tmp_path: Path) -> None:
    expressions = [
        "object.spec.containers.exists_one(c, c.name == 'web')",
        "size(object.spec.containers.filter(c, c.image.endsWith(':1.25'))) == 1",
        "object.spec.containers.map(c, c.name) == ['web', 'log']",
        "object.metadata.name.lowerAscii() == 'shop'",
        "object.spec.containers[0].image.split(':')[1] == '1.25'",
        "object.spec.containers.all(c, c.image.matches('^[a-z]+:[0-9.]+$'))",
        "'team' in object.metadata.labels && object.metadata.labels.team.contains('pay')",
    ]
    rules_yaml = "rules:\n" + "".join(
        f"  - {{id: E{index}, title: t, severity: LOW, targets: [kubernetes], description: d, remediation: r,\n"
        f"      expression: \"{expression}\"}}\n" for index, expression in enumerate(expressions))
    rules = load_custom_rules(write_rules(tmp_path, rules_yaml))
    good = {"kind": "Pod", "metadata": {"name": "Shop", "labels": {"team": "payments"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}, {"name": "log", "image": "fluent:2"}]}}
    bad = {"kind": "Pod", "metadata": {"name": "other", "labels": {"team": "ops"}},
           "spec": {"containers": [{"name": "web", "image": "nginx:latest"}, {"name": "web", "image": "x/y:1"}]}}
    run = evaluate([Document("kubernetes", "good.yaml", good, name="Pod/Shop"),
                    Document("kubernetes", "bad.yaml", bad, name="Pod/other")], rules)
    assert {f.rule_id for f in run.findings if f.file == "good.yaml"} == set()
    assert {f.rule_id for f in run.findings if f.file == "bad.yaml"} == {f"E{i}" for i in range(len(expressions))}


def test_dockerfile_rule_on_real_dockerfiles(tmp_path: Path) -> None:
    path = write_rules(tmp_path, """\
        rules:
          - id: ACME-DF-1
            title: The final stage switches to a non-root user
            severity: HIGH
            targets: [dockerfile]
            expression: >-
              object.stages[size(object.stages) - 1].instructions.exists(i,
                i.cmd == 'USER' && !(i.value in ['root', '0', 'root:root']))
            description: A container runs as root unless the image says otherwise.
            remediation: "End the final stage with USER app (create the account first)."
        """)
    rule = load_custom_rules(path)[0]
    cases = CORPUS / "misconfig" / "dockerfile" / "trivy-checks"
    bad, good = cases / "DS-0002-bad-1" / "Dockerfile", cases / "DS-0002-good-1" / "Dockerfile"
    run = evaluate(collect([str(bad), str(good)]).documents, [rule])
    assert [f.file for f in run.findings] == [str(bad)]
    assert run.outcomes["ACME-DF-1"].evaluated == 2


def test_variables_as_in_validating_admission_policy(tmp_path: Path, kubesec_documents: list[Document]) -> None:
    path = write_rules(tmp_path, """\
        rules:
          - id: ACME-VAR
            title: Containers set resource limits
            severity: MEDIUM
            targets: [kubernetes]
            match: "object.kind in ['Deployment', 'DaemonSet', 'StatefulSet', 'Pod']"
            variables:
              - name: spec
                expression: "object.kind == 'Pod' ? object.spec : object.spec.template.spec"
              - name: unlimited
                expression: >-
                  variables.spec.containers.filter(c, !has(c.resources) || !has(c.resources.limits))
                    .map(c, c.name)
            expression: "size(variables.unlimited) == 0"
            messageExpression: "'containers without limits: ' + variables.unlimited.join(', ')"
            description: A container without limits can starve its neighbours.
            remediation: Set resources.limits.cpu and resources.limits.memory.
          - id: ACME-NOVAR
            title: Sees no variables of another rule
            severity: LOW
            targets: [kubernetes]
            expression: "size(variables) == 0"
            description: d
            remediation: r
        """)
    rules = load_custom_rules(path)
    run = evaluate(kubesec_documents, rules)

    def unlimited(doc: Document) -> list[str]:
        return [c["name"] for c in pod_spec(doc.data).get("containers") or []
                if not (c.get("resources") or {}).get("limits")]

    expected = {doc.name: "containers without limits: " + ", ".join(unlimited(doc)) for doc in kubesec_documents
                if unlimited(doc)}
    assert expected
    assert {f.object: f.message for f in run.findings if f.rule_id == "ACME-VAR"} == expected
    assert run.outcomes["ACME-NOVAR"].status == PASS


def test_bad_variables(tmp_path: Path) -> None:
    path = one_rule(tmp_path, expression="'true'", variables="[{name: 'a b', expression: '1'}]")
    with pytest.raises(CustomRuleError, match="each variable needs a name"):
        load_custom_rules(path)
    path = one_rule(tmp_path, expression="'true'", variables="[{name: a, expression: '1 +'}]")
    with pytest.raises(CustomRuleError, match="rule ACME-001: variable a: expression does not compile"):
        load_custom_rules(path)


def test_compile_error_names_file_rule_and_position(tmp_path: Path) -> None:
    path = one_rule(tmp_path, expression="\"object.kind == \"")
    with pytest.raises(CustomRuleError) as caught:
        load_custom_rules(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: rule ACME-001: expression does not compile: line 1 column 15:")
    assert "\n" not in message


def test_compile_error_in_match(tmp_path: Path) -> None:
    path = one_rule(tmp_path, expression="'true'", match="\"object.kind ==== 'Pod'\"")
    with pytest.raises(CustomRuleError, match=r"rule ACME-001: match does not compile: line 1"):
        load_custom_rules(path)


def test_deep_nesting_is_a_compile_error_not_a_crash(tmp_path: Path) -> None:
    path = one_rule(tmp_path, expression="\"" + "(" * 300 + "true" + ")" * 300 + "\"")
    with pytest.raises(CustomRuleError, match=r"does not compile: .*[Rr]ecursion limit"):
        load_custom_rules(path)


def test_overlong_expression_is_refused(tmp_path: Path) -> None:
    path = one_rule(tmp_path, expression="\"" + " || ".join(["true"] * 2000) + "\"")
    with pytest.raises(CustomRuleError, match="longer than 5120 characters"):
        load_custom_rules(path)


def test_non_bool_result_is_a_clear_error(tmp_path: Path) -> None:
    rule = load_custom_rules(one_rule(tmp_path, expression="\"size(object.metadata.name)\""))[0]
    doc = Document("kubernetes", "pod.yaml", {"kind": "Pod", "metadata": {"name": "web"}}, name="Pod/web")
    with pytest.raises(CustomRuleError) as caught:
        evaluate([doc], [rule])
    assert "rule ACME-001 on pod.yaml Pod/web: expression returned int, not a bool" in str(caught.value)


def test_missing_field_error_suggests_has(tmp_path: Path) -> None:
    rule = load_custom_rules(one_rule(tmp_path, expression="\"object.spec.hostPID == false\""))[0]
    doc = Document("kubernetes", "svc.yaml", {"kind": "Service", "metadata": {"name": "s"}}, name="Service/s")
    with pytest.raises(CustomRuleError, match=r"no such key 'spec' \(guard it with has\(\)\)"):
        evaluate([doc], [rule])


def test_expensive_expression_is_stopped_and_the_worker_recovers(tmp_path: Path) -> None:
    path = write_rules(tmp_path, """\
        rules:
          - id: ACME-SLOW
            title: Cubic walk over a long list
            severity: LOW
            targets: [kubernetes]
            expression: "object.data.items.all(a, object.data.items.all(b, object.data.items.all(c, a + b + c >= 0)))"
            description: d
            remediation: r
          - id: ACME-FAST
            title: Has a kind
            severity: LOW
            targets: [kubernetes]
            expression: "has(object.kind)"
            description: d
            remediation: r
        """)
    slow, fast = load_custom_rules(path, timeout=1.0)
    huge = Document("kubernetes", "big.yaml", {"kind": "ConfigMap", "data": {"items": list(range(3000))}},
                    name="ConfigMap/big")
    with pytest.raises(CustomRuleError) as caught:
        evaluate([huge], [slow])
    assert str(caught.value) == (f"{path}: rule ACME-SLOW on big.yaml ConfigMap/big: evaluation stopped after 1 s "
                                 "(CEL cost bound; nested comprehensions over large lists?)")
    # The stuck worker was killed; the next evaluation gets a fresh one.
    assert evaluate([huge], [fast]).outcomes["ACME-FAST"].status == PASS
    # The runaway rule is not evaluated again in this run: one timeout, not one per object.
    small = Document("kubernetes", "small.yaml", {"kind": "ConfigMap", "data": {"items": [1]}}, name="ConfigMap/s")
    with pytest.raises(CustomRuleError, match="not evaluated, the rule ran past its 1 s limit earlier"):
        evaluate([small], [slow])


def test_a_timeout_in_a_lenient_run_is_a_warning_and_the_run_goes_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MOAT_STRICT_RULES")
    path = one_rule(tmp_path, expression='"object.items.all(a, object.items.all(b, object.items.all(c, a != -1)))"')
    rule = load_custom_rules(path, timeout=1.0)[0]
    documents = [Document("kubernetes", f"big{i}.yaml", {"kind": "List", "items": list(range(3000))}, name=f"L/{i}")
                 for i in range(3)]
    run = evaluate(documents, [rule])
    assert len(run.warnings) == 3
    assert "evaluation stopped after 1 s" in run.warnings[0]
    assert all("not evaluated, the rule ran past" in warning for warning in run.warnings[1:])


def test_huge_allocations_hit_the_worker_memory_limit(tmp_path: Path) -> None:
    rule = load_custom_rules(one_rule(tmp_path, expression='"lists.range(400000000).size() > 0"'), timeout=60)[0]
    doc = Document("kubernetes", "x.yaml", {"kind": "Pod"}, name="Pod/x")
    with pytest.raises(CustomRuleError, match=r"rule ACME-001 on x\.yaml Pod/x: evaluation failed: .*MemoryError"):
        evaluate([doc], [rule])


def test_timeout_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOAT_CEL_TIMEOUT", "soon")
    with pytest.raises(CustomRuleError, match="MOAT_CEL_TIMEOUT='soon' is not a number"):
        load_custom_rules(one_rule(tmp_path, expression="'true'"))


def test_duplicate_ids(tmp_path: Path) -> None:
    entry = "  - {id: ACME-1, title: t, severity: LOW, targets: [kubernetes], expression: 'true', " \
            "description: d, remediation: r}\n"
    path = write_rules(tmp_path, "rules:\n" + entry + entry)
    with pytest.raises(CustomRuleError, match=f"^{path}: rule ACME-1 is defined twice$"):
        load_custom_rules(path)


def test_builtin_id_collision(tmp_path: Path) -> None:
    builtin_id = sorted(builtin_rules())[0]
    custom_id = "X" + builtin_id  # a free id, to show only the exact collision is refused
    assert load_custom_rules(one_rule(tmp_path, id=custom_id, expression="'true'"))[0].id == custom_id
    with pytest.raises(CustomRuleError, match=r"rule \S+: ids starting with MOAT- are reserved for built-in rules"):
        load_custom_rules(one_rule(tmp_path, id=builtin_id, expression="'true'"))


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"severity": "URGENT"}, "severity must be one of"),
        ({"targets": "[kubernets]"}, "unknown target kubernets"),
        ({"expresion": "true"}, "unknown key expresion"),
        ({"remediation": "''"}, "missing remediation"),
        ({"expression": "[true]"}, "expression must be text"),
        ({"id": "'bad id!'", "expression": "'true'"}, "id must be a letter"),
        ({"params": "[1, 2]", "expression": "'true'"}, "params must be a mapping"),
        ({"controls": "[nocolon]", "expression": "'true'"}, "controls must be framework:control"),
    ],
)
def test_bad_rule_fields(tmp_path: Path, fields: dict[str, str], problem: str) -> None:
    defaults = {} if "expresion" in fields else {"expression": "'true'"}
    path = one_rule(tmp_path, **(defaults | fields))
    with pytest.raises(CustomRuleError) as caught:
        load_custom_rules(path)
    assert str(caught.value).startswith(str(path))
    assert problem in str(caught.value)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("- a\n- b\n", "expected one YAML mapping"),
        ("rules: []\n", "'rules' must be a non-empty list"),
        ("rules:\n  - 1\n", "each rule must be a mapping"),
        ("rule:\n  - {}\n", "unknown key rule"),
        ("rules: [\n", "invalid YAML"),
    ],
)
def test_bad_files(tmp_path: Path, text: str, problem: str) -> None:
    path = write_rules(tmp_path, text)
    with pytest.raises(MoatError) as caught:
        load_custom_rules(path)
    assert str(path) in str(caught.value)
    assert problem in str(caught.value)


def test_the_documented_rule_files_load_and_run(tmp_path: Path) -> None:
    blocks = [block for block in re.findall(r"```yaml\n(.*?)```", DOCS.read_text(), re.S) if block.startswith("rules:")]
    assert len(blocks) >= 3
    loaded = [load_custom_rules(write_rules(tmp_path, block, f"doc{index}.yaml")) for index, block in enumerate(blocks)]
    first = loaded[0][0]
    deployment = Document("kubernetes", "web.yaml", {"kind": "Deployment", "metadata": {"name": "web"}},
                          name="Deployment/web")
    assert [f.message for f in evaluate([deployment], [first]).findings] == ["Deployment web has no team label"]
