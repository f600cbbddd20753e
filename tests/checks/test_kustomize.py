"""Kustomizations rendered with the real kubectl (which embeds kustomize): a base and an overlay with a
strategic-merge patch and a JSON patch, findings pointing at the base files the objects came from."""

from __future__ import annotations

from pathlib import Path

import pytest

from moat.checks.collect import collect
from moat.checks.engine import evaluate
from moat.checks.rule import builtin_rules
from moat.checks.targets.kustomize import INSTALL_HINT, kustomize_command, render_kustomization
from moat.errors import ParseError

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      automountServiceAccountToken: false
      containers:
        - name: web
          image: nginx:1.27
"""

SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
    - port: 80
"""

OVERLAY = """\
namespace: default
namePrefix: prod-
resources:
  - ../../base
patches:
  - path: token.yaml
  - target: {kind: Service, name: web}
    patch: |-
      - op: add
        path: /spec/type
        value: NodePort
configMapGenerator:
  - name: settings
    literals: [MODE=prod]
"""

TOKEN_PATCH = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      automountServiceAccountToken: true
"""


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    base = tmp_path / "app" / "base"
    overlay = tmp_path / "app" / "overlays" / "prod"
    base.mkdir(parents=True)
    overlay.mkdir(parents=True)
    (base / "kustomization.yaml").write_text("resources: [deployment.yaml, service.yaml]\n")
    (base / "deployment.yaml").write_text(DEPLOYMENT)
    (base / "service.yaml").write_text(SERVICE)
    (overlay / "kustomization.yaml").write_text(OVERLAY)
    (overlay / "token.yaml").write_text(TOKEN_PATCH)
    return tmp_path / "app"


def test_overlay_renders_with_patches_and_points_at_base_files(project: Path) -> None:
    label = str(project / "overlays" / "prod")
    docs, warnings = render_kustomization(project / "overlays" / "prod", label)
    assert warnings == []
    by_name = {doc.name: doc for doc in docs}
    config_map = next(name for name in by_name if "/ConfigMap/" in name)
    assert config_map.startswith("default/ConfigMap/prod-settings-")  # generator adds a content hash
    assert sorted(by_name) == [config_map, "default/Deployment/prod-web", "default/Service/prod-web"]
    deployment = by_name["default/Deployment/prod-web"]
    service = by_name["default/Service/prod-web"]
    assert deployment.path == str(project / "base" / "deployment.yaml")
    assert service.path == str(project / "base" / "service.yaml")
    assert service.data["spec"]["type"] == "NodePort"  # the JSON patch applied
    assert deployment.data["spec"]["template"]["spec"]["automountServiceAccountToken"] is True
    # the origin annotation Moat asked for is gone again
    assert "annotations" not in deployment.data["metadata"]
    # lines are the base file's: the patched field replaces the base's own on line 12
    assert deployment.line_of(("spec", "template", "spec", "automountServiceAccountToken")) == 12
    assert service.line_of(("spec", "type")) == 5
    generated = [doc for doc in docs if doc.data["kind"] == "ConfigMap"]
    assert len(generated) == 1 and generated[0].path == label and generated[0].start_line == 0


def test_findings_from_a_kustomization_directory(project: Path) -> None:
    collected = collect([str(project / "overlays" / "prod")])
    run = evaluate(collected.documents, list(builtin_rules().values()))
    exposed = [(f.file, f.line, f.object) for f in run.findings if f.rule_id == "MOAT-K8S-270"]
    assert exposed == [(str(project / "base" / "service.yaml"), 5, "default/Service/prod-web")]
    token = [(f.file, f.line) for f in run.findings if f.rule_id == "MOAT-K8S-207"]
    assert token == [(str(project / "base" / "deployment.yaml"), 12)]
    in_default = {f.object for f in run.findings if f.rule_id == "MOAT-K8S-260"}
    assert {"default/Deployment/prod-web", "default/Service/prod-web"} <= in_default


def test_a_walk_reads_each_kustomization_once(project: Path) -> None:
    collected = collect([str(project)])
    # app/ has no kustomization; base/ and overlays/prod/ each render their own objects
    names = sorted(doc.name for doc in collected.documents if doc.data["kind"] != "ConfigMap")
    assert names == ["Deployment/web", "Service/web", "default/Deployment/prod-web", "default/Service/prod-web"]


def test_broken_kustomization_is_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: [missing.yaml]\n")
    with pytest.raises(ParseError) as caught:
        render_kustomization(tmp_path, "broken")
    message = str(caught.value)
    assert message.startswith("broken: ") and "failed" in message and "\n" not in message
    collected = collect([str(tmp_path)])
    assert collected.documents == [] and len(collected.warnings) == 1


def test_without_a_renderer_there_is_a_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: []\n")
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    assert kustomize_command() is None
    docs, warnings = render_kustomization(tmp_path, "k")
    assert docs == [] and warnings == [f"k: {INSTALL_HINT}"]
    assert "kubectl kustomize DIR" in warnings[0]
