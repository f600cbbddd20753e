"""``moat config`` as a user runs it on a small repository: a Dockerfile, manifests (one with a bad
YAML file beside it), a compose file and a custom CEL rule; every format, the gate, and bad input."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from typer.testing import CliRunner

from moat.cli.main import app

try:  # click < 8.2 mixes stderr into stdout unless told not to
    runner = CliRunner(mix_stderr=False)  # type: ignore[call-arg]
except TypeError:
    runner = CliRunner()

SARIF_SCHEMA = json.loads((Path(__file__).resolve().parent.parent / "report/data/sarif-2.1.0.json").read_text())

DOCKERFILE = """\
FROM python:3.12-slim AS build
RUN pip install --no-cache-dir build
COPY . /src
RUN cd /src && python -m build

FROM python:3.12-slim
COPY --from=build /src/dist/*.whl /tmp/
RUN pip install /tmp/*.whl
CMD ["app"]
"""

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  template:
    spec:
      containers:
        - name: app
          image: registry.example.com/shop/web:1.4.2
          securityContext:
            privileged: true
        - name: sidecar
          image: registry.example.com/shop/proxy:2.0
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  type: NodePort
  ports: [{port: 80}]
"""

COMPOSE = """\
services:
  db:
    image: postgres:16
    network_mode: host
    volumes:
      - /var/run/docker.sock:/var/run/docker.sock
"""

CUSTOM = """\
rules:
  - id: ACME-001
    title: Deployments carry a team label
    severity: LOW
    targets: [kubernetes]
    match: "object.kind == 'Deployment'"
    expression: "has(object.metadata.labels) && 'team' in object.metadata.labels"
    message: "no team label"
    description: Every workload needs an owner.
    remediation: "Add metadata.labels.team."
    verification: "kubectl get deploy -A -L team"
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "k8s").mkdir(parents=True)
    (root / "Dockerfile").write_text(DOCKERFILE)
    (root / "k8s/web.yaml").write_text(DEPLOYMENT)
    (root / "k8s/broken.yaml").write_text("apiVersion: v1\nkind: [unclosed\n")
    (root / "docker-compose.yml").write_text(COMPOSE)
    (root / "README.md").write_text("not configuration\n")
    return root


def _run(*args: str) -> Any:
    return runner.invoke(app, ["config", *args])


def test_json_report_points_at_files_lines_objects_and_containers(repo: Path) -> None:
    result = _run(str(repo), "--format", "json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["scan_kind"] == "config"
    findings = report["misconfigurations"]
    privileged = [f for f in findings if "KSV-0017" in f["aliases"]]
    assert [(f["location"]["file"], f["location"]["line"], f["location"]["object"], f["location"]["container"])
            for f in privileged] == [(str(repo / "k8s/web.yaml"), 13, "shop/Deployment/web", "app")]
    assert "cis-kubernetes-1.9:5.2.2" in privileged[0]["controls"]
    assert any(c.startswith("pci-dss-4.0:") for c in privileged[0]["controls"])  # derived mapping
    root_user = [f for f in findings if f["rule_id"] == "MOAT-DF-001"]
    assert root_user and root_user[0]["location"]["file"] == str(repo / "Dockerfile")
    socket = [f for f in findings if f["target_kind"] == "compose" and "cis-docker-1.6:5.32" in f["controls"]]
    assert socket and socket[0]["location"]["container"] == "db" and socket[0]["location"]["line"] == 6
    assert any("NodePort" in f["message"] for f in findings if f["location"]["object"] == "shop/Service/web")
    # the broken file is a warning naming it and its line; the rest was still checked
    assert any("broken.yaml: line 3" in w and "started on line 2" in w for w in report["warnings"])
    statuses = {c["rule_id"]: c["status"] for c in report["checks"]}
    assert statuses["MOAT-DF-001"] == "FAIL"
    assert report["summary"]["failures"] == len([f for f in findings if f["status"] == "FAIL"])


def test_sarif_is_valid_with_line_ranges_and_junit_counts_rules(repo: Path) -> None:
    sarif = _run(str(repo), "--format", "sarif")
    assert sarif.exit_code == 0, sarif.stderr
    data = json.loads(sarif.stdout)
    jsonschema.Draft7Validator(SARIF_SCHEMA).validate(data)
    results = data["runs"][0]["results"]
    multi_line = [r for r in results if r["locations"][0]["physicalLocation"]["region"].get("endLine", 0)
                  > r["locations"][0]["physicalLocation"]["region"]["startLine"]]
    assert all(r["locations"][0]["physicalLocation"]["region"]["startLine"] >= 1 for r in results)
    assert isinstance(multi_line, list)
    rule_ids = {rule["id"] for rule in data["runs"][0]["tool"]["driver"]["rules"]}
    assert {r["ruleId"] for r in results} == rule_ids
    junit = _run(str(repo), "--format", "junit")
    root = ET.fromstring(junit.stdout)
    suite = root.find("testsuite")
    assert suite is not None and int(suite.get("failures", "0")) >= 4
    assert int(suite.get("tests", "0")) > int(suite.get("failures", "0"))  # rules that passed are listed too


def test_gate_severity_and_template(repo: Path) -> None:
    assert _run(str(repo), "--exit-code", "3", "--format", "json").exit_code == 3
    critical_only = _run(str(repo / "Dockerfile"), "--severity", "CRITICAL", "--exit-code", "3", "--format", "json")
    assert critical_only.exit_code == 0, critical_only.stderr
    assert json.loads(critical_only.stdout)["misconfigurations"] == []
    pss = _run(str(repo / "k8s/web.yaml"), "--template", "pss-baseline", "--format", "json")
    report = json.loads(pss.stdout)
    assert report["template"]["id"] == "pss-baseline"
    assert {f["rule_id"] for f in report["misconfigurations"]} and all(
        any(c.startswith("pss:baseline/") for c in f["controls"]) for f in report["misconfigurations"])


def test_custom_cel_rules_run_beside_the_builtin_ones(repo: Path, tmp_path: Path) -> None:
    rules = tmp_path / "acme.yaml"
    rules.write_text(CUSTOM)
    result = _run(str(repo / "k8s/web.yaml"), "--rules", str(rules), "--format", "json")
    assert result.exit_code == 0, result.stderr
    custom = [f for f in json.loads(result.stdout)["misconfigurations"] if f["rule_id"] == "ACME-001"]
    assert [(f["location"]["object"], f["message"]) for f in custom] == [("shop/Deployment/web", "no team label")]


def test_table_groups_by_file(repo: Path) -> None:
    result = _run(str(repo))
    assert result.exit_code == 0
    assert str(repo / "k8s/web.yaml") in result.stdout and "MOAT-DF-001" in result.stdout
    assert "rules run" in result.stdout.strip().splitlines()[-2] or "rules run" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["/nonexistent/x"], "/nonexistent/x: no such file or directory"),
        (["{repo}/k8s/broken.yaml"], "broken.yaml: line 3: invalid YAML: did not find expected"),
        (["{repo}/README.md"], "not a Dockerfile, Kubernetes manifest, compose file, or chart"),
        (["{repo}", "--template", "no-such-template"], "unknown template 'no-such-template'"),
        (["{repo}", "--format", "xml"], "xml"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(repo: Path, args: list[str], message: str) -> None:
    result = _run(*[arg.replace("{repo}", str(repo)) for arg in args])
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_template_naming_an_unknown_rule_is_refused(repo: Path, tmp_path: Path) -> None:
    template = tmp_path / "t.yaml"
    template.write_text("id: t\ntitle: T\nselect:\n  rules: [MOAT-DF-001, MOAT-DF-999]\n")
    result = _run(str(repo), "--template", str(template))
    assert result.exit_code == 2 and "unknown rule MOAT-DF-999" in result.stderr


CHART_DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-web
spec:
  template:
    spec:
      containers:
        - name: web
          image: "registry.example.com/web:{{ .Values.tag }}"
          securityContext:
            privileged: {{ .Values.privileged }}
"""


def test_helm_values_files_change_what_the_chart_renders(tmp_path: Path) -> None:
    chart = tmp_path / "web"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: web\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text("tag: '1.0'\nprivileged: false\n")
    (chart / "templates/deployment.yaml").write_text(CHART_DEPLOYMENT)
    override = tmp_path / "prod.yaml"
    override.write_text("privileged: true\n")

    def privileged(*extra: str) -> list[dict[str, Any]]:
        result = _run(str(chart), "--format", "json", *extra)
        assert result.exit_code == 0, result.stderr
        return [f for f in json.loads(result.stdout)["misconfigurations"] if "KSV-0017" in f["aliases"]]

    assert privileged() == []
    [finding] = privileged("--helm-values", str(override))
    assert finding["location"]["file"].endswith("templates/deployment.yaml")
    assert finding["location"]["container"] == "web"
    missing = _run(str(chart), "--helm-values", str(tmp_path / "none.yaml"))
    assert missing.exit_code == 2 and "--helm-values" in missing.stderr


def test_build_args_are_expanded_in_from_lines(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("ARG BASE=python:3.12-slim\nFROM ${BASE}\nUSER app\nHEALTHCHECK CMD true\n")

    def latest_findings(*extra: str) -> list[str]:
        result = _run(str(dockerfile), "--format", "json", *extra)
        assert result.exit_code == 0, result.stderr
        return [f["message"] for f in json.loads(result.stdout)["misconfigurations"] if "DS-0001" in f["aliases"]]

    assert latest_findings() == []
    assert latest_findings("--build-arg", "BASE=python:latest")
    bad = _run(str(dockerfile), "--build-arg", "NOEQUALS")
    assert bad.exit_code == 2 and "expected NAME=VALUE" in bad.stderr


def test_a_tree_whose_only_manifest_is_an_alias_bomb_says_so(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    (tmp_path / "bomb.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\ndata:\n"
                                        + "".join(f"  {line}\n" for line in lines))
    (tmp_path / "deep.json").write_text('{"apiVersion": "v1", "kind": "Pod", "x": ' + "[" * 5000 + "]" * 5000 + "}")
    result = _run(str(tmp_path))
    assert result.exit_code == 2
    assert "2 files could not be read" in result.stderr and "alias bomb" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_custom_rule_a_template_also_selects_runs_once(repo: Path, tmp_path: Path) -> None:
    rules = tmp_path / "acme.yaml"
    rules.write_text(CUSTOM.replace('    verification: "kubectl get deploy -A -L team"\n',
                                    '    verification: "kubectl get deploy -A -L team"\n    controls: ["acme:1"]\n'))
    template = tmp_path / "acme-template.yaml"
    template.write_text("id: acme\ntitle: ACME\nselect:\n  frameworks: [acme]\n")
    result = _run(str(repo / "k8s/web.yaml"), "--rules", str(rules), "--template", str(template), "--format", "json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert [f["rule_id"] for f in report["misconfigurations"]] == ["ACME-001"]
    assert [c["rule_id"] for c in report["checks"]] == ["ACME-001"]
