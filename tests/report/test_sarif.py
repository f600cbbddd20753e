"""SARIF output: valid against the OASIS SARIF 2.1.0 schema (as published on SchemaStore, from the
``schemastore`` package's cache) and shaped the way GitHub code scanning reads it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from vuln_fixtures import findings, inventory

from moat.report.sarif import security_severity, to_sarif

SCHEMA = json.loads((Path(__file__).parent / "data/sarif-2.1.0.json").read_text())


@pytest.fixture(scope="module")
def sarif() -> dict[str, Any]:
    data = to_sarif(inventory(), findings(), "registry:app:1.0")
    return json.loads(json.dumps(data))  # what a consumer reads: JSON types only


def test_valid_against_the_official_schema(sarif: dict[str, Any]) -> None:
    jsonschema.Draft7Validator(SCHEMA, format_checker=jsonschema.FormatChecker()).validate(sarif)


def test_the_schema_does_reject_a_broken_log(sarif: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(sarif))
    broken["runs"][0]["results"][0]["level"] = "fatal"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, SCHEMA)


def test_one_rule_per_id_one_result_per_finding(sarif: dict[str, Any]) -> None:
    run = sarif["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == ["CVE-2020-14343", "CVE-2024-56326", "CVE-2023-0286", "CVE-2019-10906"]
    results = run["results"]
    assert len(results) == 4
    for result in results:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]


def test_security_severity_is_the_cvss_score_or_the_band(sarif: dict[str, Any]) -> None:
    rules = {r["id"]: r for r in sarif["runs"][0]["tool"]["driver"]["rules"]}
    assert rules["CVE-2020-14343"]["properties"]["security-severity"] == "9.8"
    assert rules["CVE-2024-56326"]["properties"]["security-severity"] == "7.8"
    assert rules["CVE-2023-0286"]["properties"]["security-severity"] == "5.5"  # MEDIUM band, no score
    assert "security-severity" not in rules["CVE-2019-10906"]["properties"]  # UNKNOWN: let GitHub decide
    assert [rules[i]["defaultConfiguration"]["level"] for i in rules] == ["error", "error", "warning", "note"]
    assert security_severity(findings()[0]) is None


def test_help_markdown_escapes_advisory_text(sarif: dict[str, Any]) -> None:
    rule = next(r for r in sarif["runs"][0]["tool"]["driver"]["rules"] if r["id"] == "CVE-2024-56326")
    assert "A \\| pipe and \\*stars\\* in \\<markdown\\>" in rule["help"]["markdown"]
    assert "Fixed version: 3.1.5" in rule["help"]["text"]


def test_results_point_at_the_package_file(sarif: dict[str, Any]) -> None:
    run = sarif["runs"][0]
    location = run["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert location == {"uri": "usr/lib/python3/dist-packages/PyYAML-5.1.dist-info/METADATA",
                        "uriBaseId": "ROOTPATH"}
    assert run["originalUriBaseIds"]["ROOTPATH"]["uri"] == "file:///"


def test_unsafe_paths_become_relative_uri_references() -> None:
    vuln = findings()[0]
    vuln.found_in = "/opt/my app/#1/METADATA"
    data = to_sarif(inventory(), [vuln], "t")
    uri = data["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == "opt/my%20app/%231/METADATA"
    jsonschema.validate(data, SCHEMA)
