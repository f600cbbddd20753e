"""``moat k8s-node`` as a user runs it, on kubeadm-shaped node trees: every report format, the gate,
role and benchmark options, templates, and one-line errors for bad input.

The command is registered on a Typer app here the way ``moat.cli.main`` registers command groups.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from checks.test_k8s_node_collect import build_master, build_worker, make_pki
from moat.cli import k8s_node

try:  # click < 8.2 mixes stderr into stdout unless told not to
    runner = CliRunner(mix_stderr=False)  # type: ignore[call-arg]
except TypeError:
    runner = CliRunner()

app = typer.Typer()


@app.callback()
def _moat() -> None:
    """Stands in for the moat command group."""


k8s_node.register(app)


@pytest.fixture(scope="module")
def kubeadm_pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pki(tmp_path_factory.mktemp("pki"))


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["k8s-node", *args])
    return result.exit_code, result.stdout, result.stderr


def test_json_report_of_a_default_kubeadm_control_plane(tmp_path: Path, kubeadm_pki: Path) -> None:
    build_master(tmp_path, kubeadm_pki)
    code, out, err = invoke("--root", str(tmp_path), "--format", "json")
    assert code == 0, err
    assert "node cp1 (master, etcd, worker): benchmark cis-1.9 (Kubernetes 1.29.3)" in err
    report = json.loads(out)
    assert report["scan_kind"] == "k8s-node" and report["target"] == str(tmp_path)
    assert len(report["checks"]) == 95
    assert report["facts"]["node"]["benchmark"] == "cis-1.9"
    assert report["facts"]["node"]["kubernetes_version"] == "1.29.3"
    assert set(report["facts"]["node"]["roles"]) == {"master", "etcd", "worker"}
    statuses = {check["rule_id"]: check["status"] for check in report["checks"]}
    assert statuses["MOAT-KN-044"] == "FAIL" and statuses["MOAT-KN-001"] == "PASS"
    assert statuses["MOAT-KN-049"] == "MANUAL"
    profiling = next(f for f in report["misconfigurations"] if f["rule_id"] == "MOAT-KN-044")
    assert profiling["location"]["object"] == "/etc/kubernetes/manifests/kube-apiserver.yaml"
    # Its own control first; the mappings layer may derive others (NSA/CISA, SOC 2 …) from it.
    assert profiling["controls"][0] == "cis-kubernetes-1.9:1.2.15"
    assert [c for c in profiling["controls"] if c.startswith("cis-")] == ["cis-kubernetes-1.9:1.2.15"]
    assert "KCV-0018" in profiling["aliases"] and "C-0129" in profiling["aliases"]
    assert report["summary"]["failures"] == sum(1 for f in report["misconfigurations"] if f["status"] == "FAIL")


def test_gate_counts_failures_left_after_the_severity_filter(tmp_path: Path, kubeadm_pki: Path) -> None:
    build_master(tmp_path, kubeadm_pki)
    # A default kubeadm control plane fails HIGH items (no encryption at rest, ...) but no CRITICAL one.
    assert invoke("--root", str(tmp_path), "--severity", "CRITICAL", "--exit-code", "4", "-q")[0] == 0
    assert invoke("--root", str(tmp_path), "--severity", "HIGH,CRITICAL", "--exit-code", "4", "-q")[0] == 4
    os.chmod(tmp_path / "etc/kubernetes/admin.conf", 0o644)
    code, out, _ = invoke("--root", str(tmp_path), "--severity", "CRITICAL", "--exit-code", "4", "-f", "json", "-q")
    assert code == 4
    assert [f["rule_id"] for f in json.loads(out)["misconfigurations"]] == ["MOAT-KN-013"]


def test_hardened_node_passes_the_gate(tmp_path: Path, kubeadm_pki: Path) -> None:
    build_master(tmp_path, kubeadm_pki, hardened=True)
    code, out, err = invoke("--root", str(tmp_path), "--exit-code", "1", "--skip-manual", "--format", "json")
    assert code == 0, err
    report = json.loads(out)
    assert report["misconfigurations"] == []
    assert {check["status"] for check in report["checks"]} == {"PASS"}
    assert len(report["checks"]) == 89


def test_sarif_points_at_the_file_and_line(tmp_path: Path, kubeadm_pki: Path) -> None:
    build_master(tmp_path, kubeadm_pki)
    code, out, err = invoke("--root", str(tmp_path), "--format", "sarif", "-q")
    assert code == 0, err
    sarif = json.loads(out)
    results = sarif["runs"][0]["results"]
    assert {result["ruleId"] for result in results} >= {"MOAT-KN-044", "MOAT-KN-020", "MOAT-KN-108"}
    profiling = next(result for result in results if result["ruleId"] == "MOAT-KN-044")
    location = profiling["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"].endswith("etc/kubernetes/manifests/kube-apiserver.yaml")
    manifest = (tmp_path / "etc/kubernetes/manifests/kube-apiserver.yaml").read_text().splitlines()
    assert manifest[location["region"]["startLine"] - 1] == "  - command:"


def test_junit_has_a_testcase_per_check(tmp_path: Path, kubeadm_pki: Path) -> None:
    build_worker(tmp_path, kubeadm_pki)
    report = tmp_path / "out" / "node.xml"
    report.parent.mkdir()
    code, _out, err = invoke("--root", str(tmp_path), "--format", "junit", "-o", str(report), "-q")
    assert code == 0, err
    tree = ET.parse(report)
    failures = [case.get("name", "") + (case.get("classname") or "") for case in tree.iter("testcase")
                if case.find("failure") is not None]
    assert any("MOAT-KN-108" in text for text in failures)
    assert not any("MOAT-KN-044" in (case.get("name", "") + (case.get("classname") or ""))
                   for case in tree.iter("testcase"))


def test_table_lists_failures_of_a_worker_only(tmp_path: Path, kubeadm_pki: Path) -> None:
    build_worker(tmp_path, kubeadm_pki, kubelet_extra_args="--anonymous-auth=true")
    code, out, err = invoke("--root", str(tmp_path))
    assert code == 0, err
    assert "node cp1 (worker)" in err and "benchmark cis-1.9 (default (cis-1.9: no version found))" in err
    assert "MOAT-KN-110" in out and "/etc/default/kubelet" in out
    assert "MOAT-KN-044" not in out


def test_role_and_benchmark_options(tmp_path: Path, kubeadm_pki: Path) -> None:
    build_master(tmp_path, kubeadm_pki)
    code, out, _ = invoke("--root", str(tmp_path), "--role", "etcd", "-f", "json", "-q")
    ids = {check["rule_id"] for check in json.loads(out)["checks"]}
    assert code == 0 and ids == {f"MOAT-KN-{n:03d}" for n in range(80, 87)}
    code, out, err = invoke("--root", str(tmp_path), "--benchmark", "cis-1.12", "-f", "json")
    assert code == 0 and "benchmark cis-1.12 (forced)" in err
    assert not any(f["rule_id"] == "MOAT-KN-020" for f in json.loads(out)["misconfigurations"])
    assert invoke("--root", str(tmp_path), "--benchmark", "cis-9")[0] == 2


def test_template_selects_items_by_control(tmp_path: Path, kubeadm_pki: Path) -> None:
    build_master(tmp_path, kubeadm_pki)
    template = tmp_path / "kubelet-only.yaml"
    template.write_text("id: kubelet-only\ntitle: Kubelet items\nselect:\n"
                        "  frameworks: ['cis-kubernetes-1.9:4.2.*']\nparams:\n  allowed_cipher_suites: []\n")
    code, out, err = invoke("--root", str(tmp_path), "--template", str(template), "-f", "json", "-q")
    assert code == 0, err
    report = json.loads(out)
    assert report["template"]["id"] == "kubelet-only"
    assert {c["rule_id"] for c in report["checks"]} == {f"MOAT-KN-{n:03d}" for n in range(110, 123)}


def test_bad_roots_are_one_line_errors(tmp_path: Path) -> None:
    code, out, err = invoke("--root", str(tmp_path / "missing"))
    assert out == ""
    assert code == 2 and err.strip().count("\n") == 0 and "not a directory" in err
    code, _out, err = invoke("--root", str(tmp_path))
    assert code == 2 and "no Kubernetes component found" in err and "Traceback" not in err


def test_hostile_tree_neither_hangs_nor_escapes(tmp_path: Path, kubeadm_pki: Path) -> None:
    root = tmp_path / "node"
    build_worker(root, kubeadm_pki)
    config = root / "var/lib/kubelet/config.yaml"
    config.unlink()
    os.mkfifo(config)  # a reader that opened it blocking would wait forever
    (root / "etc/kubernetes/kubelet.conf").unlink()
    (root / "etc/kubernetes/kubelet.conf").symlink_to("/etc/shadow")  # inside the root: absent
    (root / "etc/kubernetes/manifests").mkdir(parents=True)
    (root / "etc/kubernetes/manifests/kube-apiserver.yaml").write_text("spec: {containers: [\n")
    code, out, err = invoke("--root", str(root), "-f", "json", "-q")
    assert code == 0, err
    report = json.loads(out)
    assert any("kube-apiserver.yaml" in warning and "invalid YAML" in warning for warning in report["warnings"])
    assert not any(f["location"]["object"] == "/etc/kubernetes/kubelet.conf" for f in report["misconfigurations"])
