"""The compliance view: control statuses from real engine runs on corpus manifests, merging of saved
reports (FAIL wins, PASS needs evaluation somewhere), and saved reports that are not Moat's.

The rules here are built in the test with the mappings trivy-checks gives KSV-0017 and KSV-0010
(the corpus' ``expected.json``), so the statuses do not depend on which built-in rules have landed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from corpus import CORPUS
from moat.checks.compliance import (
    FAIL,
    MANUAL,
    NOT_ASSESSED,
    PASS,
    CheckResult,
    ComplianceReport,
    build_report,
    control_id,
    load_saved_report,
    merge_results,
    natural_key,
    parse_saved_report,
    results_from_run,
)
from moat.checks.document import Document, TargetKind
from moat.checks.engine import CheckRun, evaluate
from moat.checks.rule import Hit, Rule, RuleContext
from moat.checks.templates import Template, parse_template
from moat.checks.yamlload import load_yaml_file
from moat.errors import MoatError
from moat.report.misconfig_json import check_run_to_report

TRIVY_K8S = CORPUS / "misconfig" / "kubernetes" / "trivy-checks"


def _pod_specs(doc: Document) -> Iterator[tuple[tuple[str | int, ...], dict[str, Any]]]:
    spec = doc.data.get("spec") or {}
    if doc.data.get("kind") == "Pod":
        yield ("spec",), spec
    elif isinstance(spec.get("template"), dict):
        yield ("spec", "template", "spec"), spec["template"].get("spec") or {}


def _privileged(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    for base, spec in _pod_specs(doc):
        for index, container in enumerate(spec.get("containers") or []):
            if (container.get("securityContext") or {}).get("privileged") is True:
                yield Hit(f'container "{container.get("name")}" runs privileged',
                          (*base, "containers", index, "securityContext", "privileged"), container.get("name", ""))


def _host_pid(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    for base, spec in _pod_specs(doc):
        if spec.get("hostPID") is True:
            yield Hit("pod shares the host's PID namespace", (*base, "hostPID"))


def _kubelet_anonymous(doc: Document, ctx: RuleContext) -> Iterator[Hit]:
    if doc.data.get("anonymous-auth") == "true":
        yield Hit("kubelet allows anonymous requests", ("anonymous-auth",))


def _rule(rule_id: str, check: Any, controls: Sequence[str], targets: Sequence[str] = (TargetKind.KUBERNETES,),
          severity: str = "HIGH", title: str = "") -> Rule:
    return Rule(rule_id, title or f"title of {rule_id}", severity, tuple(targets), f"risk of {rule_id}",
                f"fix {rule_id}: set it to false", f"kubectl get pods -o yaml; look for {rule_id}", check,
                controls=tuple(controls))


PRIVILEGED = _rule("T-PRIV", _privileged, ["cis-kubernetes-1.9:5.2.2", "pss:baseline/privileged",
                                           "nsa-cisa-k8s:pod-security"], title="Privileged container")
HOST_PID = _rule("T-PID", _host_pid, ["cis-kubernetes-1.9:5.2.3", "pss:baseline/host-namespaces",
                                      "nsa-cisa-k8s:pod-security"], severity="MEDIUM", title="Host PID")
KUBELET = _rule("T-KUBELET", _kubelet_anonymous, ["cis-kubernetes-1.9:4.2.1"], targets=(TargetKind.K8S_NODE,),
                severity="CRITICAL", title="Kubelet anonymous auth")
DEFAULT_SA = _rule("T-SA-MANUAL", None, ["cis-kubernetes-1.9:5.1.5"], severity="LOW",
                   title="Default service accounts are not used")
NODE_AND_POD = _rule("T-NODE-POD", _kubelet_anonymous, ["cis-kubernetes-1.9:5.2.10"],
                     targets=(TargetKind.K8S_NODE,), title="Node half of a control")
POD_HALF = _rule("T-POD-HALF", _host_pid, ["cis-kubernetes-1.9:5.2.10"], title="Pod half of a control")
RULES = [PRIVILEGED, HOST_PID, KUBELET, DEFAULT_SA, NODE_AND_POD, POD_HALF]

CIS_TEMPLATE = """\
id: test-cis-k8s
title: CIS Kubernetes (test)
framework: cis-kubernetes-1.9
select:
  frameworks: [cis-kubernetes-1.9]
controls:
  "5.2.2": Minimize the admission of privileged containers
  "5.2.3": Minimize the admission of containers wishing to share the host process ID namespace
  "5.7.4": The default namespace should not be used
"""


def cis_template() -> Template:
    return parse_template(CIS_TEMPLATE, "test-cis.yaml")


def manifest_documents(*cases: str) -> list[Document]:
    """Kubernetes documents of corpus cases, as the collector builds them (lines from the YAML loader)."""
    docs = []
    for case in cases:
        path = TRIVY_K8S / case / "manifest.yaml"
        for y in load_yaml_file(path, str(path)):
            name = f"{y.data['kind']}/{y.data['metadata']['name']}"
            docs.append(Document(TargetKind.KUBERNETES, str(path), y.data, name, y.lines, y.start_line, y.end_line))
    return docs


def node_document(anonymous: str) -> Document:
    return Document(TargetKind.K8S_NODE, "node-1:/var/lib/kubelet/config.yaml", {"anonymous-auth": anonymous},
                    "kubelet", {("anonymous-auth",): 7}, 1, 20)


def run_rules(documents: Sequence[Document], template: Template | None = None) -> CheckRun:
    template = template or cis_template()
    return evaluate(documents, template.select({r.id: r for r in RULES}), params=template.params,
                    severity_overrides=template.severity)


def report_of(run: CheckRun, template: Template | None = None) -> ComplianceReport:
    template = template or cis_template()
    selected = template.select({r.id: r for r in RULES})
    return build_report(template, merge_results([results_from_run(run)]), run.findings, selected=selected,
                        targets=["k8s/"], sources=["k8s/"])


def saved(run: CheckRun, target: str, tmp_path: Path, name: str) -> Path:
    """A real saved report, written by the same code ``moat config --format json`` uses."""
    path = tmp_path / name
    path.write_text(json.dumps(check_run_to_report(run, target, "config", run.findings)))
    return path


def by_id(report: ComplianceReport) -> dict[str, Any]:
    return {control.id: control for control in report.controls}


def test_bad_manifests_fail_their_controls_with_findings_and_lines() -> None:
    report = report_of(run_rules(manifest_documents("KSV-0017-bad-1", "KSV-0010-bad-1")))
    controls = by_id(report)
    privileged = controls["5.2.2"]
    assert privileged.status == FAIL
    assert privileged.control == "cis-kubernetes-1.9:5.2.2"
    assert privileged.title == "Minimize the admission of privileged containers"
    [finding] = privileged.findings
    assert finding.file.endswith("KSV-0017-bad-1/manifest.yaml")
    assert finding.line == 14  # "privileged: true" in the corpus file
    assert finding.object == "Pod/hello-privileged" and finding.container == "hello"
    assert finding.message == 'container "hello" runs privileged'
    assert controls["5.2.3"].status == FAIL
    assert controls["5.2.3"].findings[0].line == 13
    assert privileged.counts() == {"rules": 1, "failed": 1, "passed": 0, "manual": 0, "not_evaluated": 0,
                                   "findings": 1}


def test_good_manifests_pass_and_other_controls_say_why_not() -> None:
    report = report_of(run_rules(manifest_documents("KSV-0017-good-1", "KSV-0010-good-1")))
    controls = by_id(report)
    assert controls["5.2.2"].status == PASS
    assert controls["5.2.3"].status == PASS
    assert controls["4.2.1"].status == NOT_ASSESSED  # a node rule; this run had no node documents
    assert controls["5.1.5"].status == MANUAL  # only a manual rule maps to it
    assert controls["5.7.4"].status == MANUAL  # named by the template, no rule: a person verifies it
    assert controls["5.7.4"].rules == []
    # one of its two rules was evaluated and passed: PASS, with the other listed as not evaluated
    assert controls["5.2.10"].status == PASS
    assert controls["5.2.10"].counts()["not_evaluated"] == 1
    assert report.status_counts() == {FAIL: 0, NOT_ASSESSED: 1, MANUAL: 2, PASS: 3}
    assert [c.id for c in report.controls] == ["4.2.1", "5.1.5", "5.2.2", "5.2.3", "5.2.10", "5.7.4"]
    assert report.failures_by_severity()["HIGH"] == 0


def test_merging_saved_reports_fail_wins_and_pass_needs_evaluation(tmp_path: Path) -> None:
    good = saved(run_rules(manifest_documents("KSV-0017-good-1", "KSV-0010-good-1")), "repo-a", tmp_path, "a.json")
    bad = saved(run_rules(manifest_documents("KSV-0017-bad-1")), "repo-b", tmp_path, "b.json")
    node = saved(run_rules([node_document("false")]), "node-1", tmp_path, "node.json")
    reports = [load_saved_report(path) for path in (good, bad, node)]
    template = cis_template()
    merged = merge_results(report.checks for report in reports)
    assert merged["T-PRIV"].status == FAIL and merged["T-PRIV"].evaluated == 3 and merged["T-PRIV"].failures == 1
    assert merged["T-KUBELET"].status == PASS and merged["T-KUBELET"].evaluated == 1
    report = build_report(template, merged, [f for r in reports for f in r.findings],
                          targets=[r.target for r in reports], sources=[r.label for r in reports])
    controls = by_id(report)
    assert controls["5.2.2"].status == FAIL  # passed in repo-a, failed in repo-b
    assert controls["5.2.3"].status == PASS  # evaluated in both, failed in neither
    assert controls["4.2.1"].status == PASS  # evaluated on the node
    assert controls["5.2.10"].status == PASS  # node half on the node, pod half in the repos
    assert controls["5.1.5"].status == MANUAL
    assert report.targets == ["repo-a", "repo-b", "node-1"]
    assert controls["5.2.2"].findings[0].line == 14  # location survives the JSON round trip
    assert controls["5.2.2"].rules[0].result.remediation == "fix T-PRIV: set it to false"  # from the finding


def test_a_saved_report_gives_the_same_controls_as_the_run_itself(tmp_path: Path) -> None:
    run = run_rules([*manifest_documents("KSV-0017-bad-1", "KSV-0010-good-1"), node_document("true")])
    direct = report_of(run)
    loaded = load_saved_report(saved(run, "k8s/", tmp_path, "r.json"))
    template = cis_template()
    via_json = build_report(template, merge_results([loaded.checks]), loaded.findings,
                            selected=template.select({r.id: r for r in RULES}), targets=["k8s/"], sources=["k8s/"])
    assert [(c.id, c.status) for c in via_json.controls] == [(c.id, c.status) for c in direct.controls]
    assert [f.to_dict() for f in via_json.controls[0].findings] == [f.to_dict() for f in direct.controls[0].findings]
    assert direct.to_dict()["summary"] == via_json.to_dict()["summary"]
    assert direct.to_dict()["summary"]["by_status"] == {FAIL: 3, NOT_ASSESSED: 0, MANUAL: 2, PASS: 1}


def test_the_same_report_merged_twice_does_not_double_its_findings(tmp_path: Path) -> None:
    run = run_rules(manifest_documents("KSV-0017-bad-1"))
    path = saved(run, "k8s/", tmp_path, "r.json")
    reports = [load_saved_report(path), load_saved_report(path)]
    report = build_report(cis_template(), merge_results(r.checks for r in reports),
                          [f for r in reports for f in r.findings])
    assert len(by_id(report)["5.2.2"].findings) == 1
    assert report.failures_by_severity()["HIGH"] == 1


def test_a_finding_behind_two_controls_counts_once_in_the_summary() -> None:
    template = parse_template("id: nsa\ntitle: NSA\nframework: nsa-cisa-k8s\nselect: {frameworks: [nsa-cisa-k8s]}\n",
                              "nsa.yaml")
    run = run_rules(manifest_documents("KSV-0017-bad-1", "KSV-0010-bad-1"), template)
    report = report_of(run, template)
    [control] = report.controls
    assert control.id == "pod-security" and control.status == FAIL
    assert len(control.findings) == 2
    assert report.failures_by_severity() == {"CRITICAL": 0, "HIGH": 1, "MEDIUM": 1, "LOW": 0, "UNKNOWN": 0}


def test_severity_overrides_and_exclusions_of_the_template_apply() -> None:
    template = parse_template(CIS_TEMPLATE.replace("select:\n", "severity: {T-PRIV: CRITICAL}\nselect:\n  exclude: "
                                                   "[T-PID]\n"), "t.yaml")
    run = run_rules(manifest_documents("KSV-0017-bad-1", "KSV-0010-bad-1"), template)
    report = report_of(run, template)
    controls = by_id(report)
    assert controls["5.2.2"].findings[0].severity == "CRITICAL"
    assert controls["5.2.2"].rules[0].result.severity == "CRITICAL"
    assert controls["5.2.3"].status == MANUAL and controls["5.2.3"].rules == []  # only the template's title is left
    # a saved report that ran the excluded rule does not bring it back
    other = run_rules(manifest_documents("KSV-0010-bad-1"))
    merged = merge_results([results_from_run(run), results_from_run(other)])
    again = build_report(template, merged, [*run.findings, *other.findings])
    assert by_id(again)["5.2.3"].status == MANUAL


def test_a_framework_pattern_keeps_only_matching_controls() -> None:
    template = parse_template("id: pss\ntitle: PSS baseline\nframework: 'pss:baseline/*'\n"
                              "select: {frameworks: ['pss:baseline/*']}\n", "pss.yaml")
    report = report_of(run_rules(manifest_documents("KSV-0017-bad-1", "KSV-0010-good-1"), template), template)
    assert [(c.id, c.control, c.status) for c in report.controls] == [
        ("baseline/host-namespaces", "pss:baseline/host-namespaces", PASS),
        ("baseline/privileged", "pss:baseline/privileged", FAIL),
    ]


def test_control_ids_and_natural_order() -> None:
    assert control_id("cis-docker-1.6:4.1", "cis-docker-1.6") == "4.1"
    assert control_id("cis-docker-1.6:4.1", "cis-docker-1.60") is None
    assert control_id("pss:restricted/seccomp", "pss:baseline/*") is None
    assert sorted(["1.1.10", "1.1.2", "1.10", "1.2", "baseline/b", "baseline/a"], key=natural_key) == [
        "1.1.2", "1.1.10", "1.2", "1.10", "baseline/a", "baseline/b"]


def test_rule_merge_order() -> None:
    def result(status: str, evaluated: int, failures: int = 0) -> CheckResult:
        return CheckResult("R", "t", "LOW", status, evaluated, failures)

    assert merge_results([[result("NOT_APPLICABLE", 0)], [result("PASS", 3)]])["R"].status == PASS
    assert merge_results([[result("PASS", 3)], [result("FAIL", 1, 2)]])["R"].status == FAIL
    assert merge_results([[result("MANUAL", 1)], [result("NOT_APPLICABLE", 0)]])["R"].status == MANUAL
    both = merge_results([[result("NOT_APPLICABLE", 0)], [result("NOT_APPLICABLE", 0)]])["R"]
    assert both.status == "NOT_APPLICABLE" and both.evaluated == 0


def _check(**changes: Any) -> dict[str, Any]:
    item = {"rule_id": "R", "title": "t", "severity": "HIGH", "status": "PASS", "evaluated": 1, "failures": 0,
            "controls": ["cis-docker-1.6:4.1"], "manual": False, "targets": ["dockerfile"]}
    item.update(changes)
    return item


def test_a_pass_without_evaluation_is_no_evidence() -> None:
    loaded = parse_saved_report({"checks": [_check(evaluated=0)]}, "r.json")
    assert loaded.checks[0].status == "NOT_APPLICABLE"
    template = parse_template("id: d\ntitle: D\nframework: cis-docker-1.6\nselect: {frameworks: [cis-docker-1.6]}\n",
                              "d.yaml")
    report = build_report(template, merge_results([loaded.checks]), [])
    assert report.controls[0].status == NOT_ASSESSED


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("this is not json", "not JSON"),
        ('{"bomFormat": "CycloneDX", "components": []}', 'not a Moat check report (no "checks" list'),
        ("[1, 2, 3]", "not a Moat check report"),
        ('{"checks": [42]}', "checks[0] is not an object"),
        ('{"checks": [' + json.dumps(_check(status="<script>")) + "]}", "status '<script>' is not one of"),
        ('{"checks": [' + json.dumps(_check(evaluated="3")) + "]}", "checks[0]: evaluated must be int"),
        ('{"checks": [' + json.dumps(_check(evaluated=True)) + "]}", "checks[0]: evaluated must be int"),
        ('{"checks": [' + json.dumps(_check(controls="cis")) + "]}", "controls must be a list of strings"),
        ('{"checks": [], "misconfigurations": [{"rule_id": "R", "location": []}]}', "location is not an object"),
        ('{"checks": [], "misconfigurations": [{"rule_id": "R", "location": {"line": "x"}}]}',
         "misconfigurations[0].location: line must be int"),
        ('{"checks": [' + "[" * 100_000 + "]" * 100_000 + "]}", "nested too deeply"),
    ],
)
def test_files_that_are_not_check_reports_are_one_line_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "report.json"
    path.write_text(content)
    with pytest.raises(MoatError) as info:
        load_saved_report(path)
    text = str(info.value)
    assert message in text
    assert str(path) in text and "\n" not in text


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(MoatError, match="No such file"):
        load_saved_report(tmp_path / "nope.json")
    with pytest.raises(MoatError, match="not a file"):
        load_saved_report(tmp_path)


# ------------------------------------------------------------------------------ with the built-in rules

DOCKERFILES = CORPUS / "misconfig" / "dockerfile" / "trivy-checks"


def _builtin_report(template_text: str, paths: Sequence[Path]) -> tuple[ComplianceReport, list[Rule]]:
    from moat.checks.collect import collect
    from moat.checks.rule import builtin_rules

    template = parse_template(template_text, "builtin-test.yaml")
    selected = template.select(builtin_rules())
    run = evaluate(collect([str(p) for p in paths]).documents, selected, params=template.params,
                   severity_overrides=template.severity)
    return build_report(template, merge_results([results_from_run(run)]), run.findings, selected=selected), selected


def _mapped(selected: Sequence[Rule], alias: str, prefix: str) -> dict[str, list[Rule]]:
    """Control id → the built-in rules answering to a peer id that map to it."""
    found: dict[str, list[Rule]] = {}
    for item in selected:
        if alias in item.aliases:
            for control in item.controls:
                if control.startswith(prefix):
                    found.setdefault(control[len(prefix):], []).append(item)
    return found


CIS_DOCKER = "id: cis-docker\ntitle: CIS Docker\nframework: cis-docker-1.6\nselect: {frameworks: [cis-docker-1.6]}\n"
PSS_BASELINE = "id: pss\ntitle: PSS baseline\nframework: 'pss:baseline/*'\nselect: {frameworks: ['pss:baseline/*']}\n"


def test_builtin_rules_fail_the_cis_docker_control_of_a_root_dockerfile() -> None:
    bad = DOCKERFILES / "DS-0002-bad-1" / "Dockerfile"
    report, selected = _builtin_report(CIS_DOCKER, [bad])
    mapped = _mapped(selected, "DS-0002", "cis-docker-1.6:")
    assert mapped, "no built-in rule for DS-0002 maps to CIS Docker"
    controls = by_id(report)
    for control_id_, rules in mapped.items():
        control = controls[control_id_]
        assert control.status == FAIL
        failing = {f.rule_id for f in control.findings}
        assert failing & {r.id for r in rules if TargetKind.DOCKERFILE in r.targets}
        assert all(f.file == str(bad) and f.line >= 1 for f in control.findings)
    # controls only host rules read had nothing to read
    host_only = [c for c in report.controls
                 if c.rules and all(e.result.targets == (TargetKind.DOCKER_HOST,) and not e.result.manual
                                    for e in c.rules)]
    assert host_only and all(c.status == NOT_ASSESSED for c in host_only)


def test_builtin_rules_on_a_good_dockerfile_pass_with_the_image_half_listed_as_not_evaluated() -> None:
    good = DOCKERFILES / "DS-0002-good-1" / "Dockerfile"
    report, selected = _builtin_report(CIS_DOCKER, [good])
    controls = by_id(report)
    for control_id_, rules in _mapped(selected, "DS-0002", "cis-docker-1.6:").items():
        control = controls[control_id_]
        results = {entry.result.rule_id: entry.result for entry in control.rules}
        for item in rules:
            if TargetKind.DOCKERFILE in item.targets:
                assert results[item.id].status == PASS and results[item.id].evaluated == 1
        unread = [e for e in control.rules if not e.result.manual and TargetKind.DOCKERFILE not in e.result.targets]
        assert control.status == PASS
        assert control.counts()["not_evaluated"] == len(unread)


def test_builtin_pss_baseline_on_corpus_pods() -> None:
    bad, _ = _builtin_report(PSS_BASELINE, [TRIVY_K8S / "KSV-0017-bad-1" / "manifest.yaml"])
    good, selected = _builtin_report(PSS_BASELINE, [TRIVY_K8S / "KSV-0017-good-1" / "manifest.yaml"])
    mapped = _mapped(selected, "KSV-0017", "pss:")
    assert mapped, "no built-in rule for KSV-0017 maps to a PSS control"
    for local in mapped:
        failed = by_id(bad)[local]
        assert failed.status == FAIL
        assert any(f.container == "hello" and f.line == 14 for f in failed.findings)
        assert by_id(good)[local].status == PASS


def test_the_compliance_template_severities_apply_to_merged_reports(tmp_path: Path) -> None:
    path = saved(run_rules(manifest_documents("KSV-0017-bad-1")), "k8s/", tmp_path, "r.json")
    loaded = load_saved_report(path)
    assert loaded.findings[0].severity == "HIGH"
    template = parse_template(CIS_TEMPLATE.replace("select:\n", "severity: {T-PRIV: LOW}\nselect:\n"), "t.yaml")
    report = build_report(template, merge_results([loaded.checks]), loaded.findings)
    privileged = by_id(report)["5.2.2"]
    assert privileged.rules[0].result.severity == "LOW" and privileged.findings[0].severity == "LOW"
    assert report.failures_by_severity()["LOW"] == 1 and report.failures_by_severity()["HIGH"] == 0


def test_an_untitled_control_with_many_rules_gets_no_joined_title() -> None:
    many = [CheckResult(f"R{i}", f"rule {i}", "LOW", PASS, 1, controls=("cis-docker-1.6:2.2.1",)) for i in range(5)]
    template = parse_template("id: d\ntitle: D\nframework: cis-docker-1.6\nselect: {frameworks: [cis-docker-1.6]}\n",
                              "d.yaml")
    [control] = build_report(template, merge_results([many]), []).controls
    assert control.title == "" and control.status == PASS and len(control.rules) == 5
    [two] = build_report(template, merge_results([many[:2]]), []).controls
    assert two.title == "rule 0; rule 1"


def test_an_oversized_report_is_refused_before_it_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import moat.checks.compliance as compliance

    path = saved(run_rules(manifest_documents("KSV-0017-bad-1")), "k8s/", tmp_path, "r.json")
    monkeypatch.setattr(compliance, "MAX_REPORT_BYTES", path.stat().st_size - 1)
    with pytest.raises(MoatError, match=r"r\.json: larger than"):
        load_saved_report(path)
