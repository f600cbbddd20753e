"""``moat image --scanners config,secret`` on a real image with planted secrets and setuid files:
what each format carries, that no secret leaves the scanner unmasked, and the gate."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from typer.testing import CliRunner

from fixtures import images
from fixtures.secret_image import secret_image
from moat.cli.main import app

pytestmark = [pytest.mark.images, pytest.mark.xdist_group("images")]

try:  # click < 8.2 mixes stderr into stdout unless told not to
    runner = CliRunner(mix_stderr=False)  # type: ignore[call-arg]
except TypeError:
    runner = CliRunner()

SARIF_SCHEMA = json.loads((Path(__file__).resolve().parent.parent / "report/data/sarif-2.1.0.json").read_text())


@pytest.fixture(scope="module")
def image() -> images.BuiltImage:
    return secret_image()


def _scan(image: images.BuiltImage, tmp: Path, *args: str) -> Any:
    return runner.invoke(app, ["image", f"oci-dir:{image.layout}:{image.tag}", "--cache-dir", str(tmp / "cache"),
                               "-q", *args])


def _planted(image: images.BuiltImage) -> list[str]:
    facts = image.facts
    return [facts[key] for key in ("aws_access_key_id", "aws_secret_access_key", "github_token", "gitlab_token")]


def test_json_report_has_image_checks_secrets_and_no_secret_text(image: images.BuiltImage, tmp_path: Path) -> None:
    result = _scan(image, tmp_path, "--scanners", "config,secret", "--format", "json")
    assert result.exit_code == 0, result.stderr
    for secret in _planted(image):
        assert secret not in result.stdout
    report = json.loads(result.stdout)
    assert report["scanners"] == ["config", "secret"]
    assert report["vulnerabilities"] == []
    rules = {item["rule_id"] for item in report["misconfigurations"]}
    assert "MOAT-IMG-001" in rules  # no USER: runs as root (CIS Docker 4.1)
    setuid = {item["location"]["object"] for item in report["misconfigurations"] if item["rule_id"] == "MOAT-IMG-005"}
    assert {"/usr/local/bin/helper", "/usr/local/bin/grouper", "/usr/bin/su"} <= setuid
    assert "/usr/bin/newgrp" not in setuid  # replaced by a plain file in the last layer
    by_file = {item["location"]["file"]: item for item in report["secrets"]}
    assert {"app/.env", "opt/cache/token.txt", "root/.ssh/id_rsa"} <= set(by_file)
    assert by_file["root/.ssh/id_rsa"]["location"]["removed_in"]  # deleted later, still leaked
    statuses = {item["rule_id"]: item["status"] for item in report["checks"]}
    assert statuses["MOAT-IMG-001"] == "FAIL"
    assert report["summary"]["secrets"] == len(report["secrets"])


def test_sarif_and_junit_carry_config_and_secret_results(image: images.BuiltImage, tmp_path: Path) -> None:
    sarif = _scan(image, tmp_path, "--scanners", "config,secret", "--format", "sarif")
    assert sarif.exit_code == 0, sarif.stderr
    data = json.loads(sarif.stdout)
    jsonschema.Draft7Validator(SARIF_SCHEMA).validate(data)
    results = [r for run in data["runs"] for r in run["results"]]
    assert {"MOAT-IMG-001", "private-key"} <= {r["ruleId"] for r in results}
    for secret in _planted(image):
        assert secret not in sarif.stdout
    junit = _scan(image, tmp_path, "--scanners", "config", "--format", "junit")
    root = ET.fromstring(junit.stdout)
    suite = [s for s in root.findall("testsuite") if s.get("name", "").endswith("(config)")]
    assert suite and int(suite[0].get("failures", "0")) >= 2
    assert int(root.get("tests", "0")) == sum(int(s.get("tests", "0")) for s in root.findall("testsuite"))


def test_gate_fails_on_secrets_and_severity_filters_apply(image: images.BuiltImage, tmp_path: Path) -> None:
    gated = _scan(image, tmp_path, "--scanners", "secret", "--exit-code", "4", "--format", "json")
    assert gated.exit_code == 4
    low_only = _scan(image, tmp_path, "--scanners", "secret", "--exit-code", "4", "--severity", "LOW",
                     "--format", "json")
    assert low_only.exit_code == 0, low_only.stderr
    assert json.loads(low_only.stdout)["secrets"] == []


def test_table_shows_both_sections(image: images.BuiltImage, tmp_path: Path) -> None:
    result = _scan(image, tmp_path, "--scanners", "config,secret")
    assert result.exit_code == 0, result.stderr
    assert "MOAT-IMG-001" in result.stdout and "Secrets" in result.stdout
    assert "secrets" in result.stdout.splitlines()[-1]


def test_config_without_a_database_and_unknown_scanners(image: images.BuiltImage, tmp_path: Path) -> None:
    # vuln is not asked for, so no vulnerability database is needed
    assert _scan(image, tmp_path, "--scanners", "config", "--db", str(tmp_path / "none.db")).exit_code == 0
    bad = _scan(image, tmp_path, "--scanners", "config,malware")
    assert bad.exit_code == 2 and "unknown scanner malware" in bad.stderr
