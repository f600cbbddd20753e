"""SARIF 2.1.0 for configuration findings, shaped for GitHub code scanning.

Unlike vulnerabilities, a misconfiguration has a real place in the user's repository: the
Dockerfile or manifest line. So results carry the file (relative to where the scan ran, as code
scanning expects) and the line, and each rule carries its remediation as help text. Host and node
findings point at the host file they are about.
"""

from __future__ import annotations

import os
from typing import Any

from moat import __version__
from moat.model import Misconfiguration, SecretFinding
from moat.report.sarif import BAND_SCORES, LEVELS, SCHEMA_URI, markdown_escape, one_line, relative_uri


def misconfigs_to_sarif(
    findings: list[Misconfiguration], target: str, secrets: list[SecretFinding] | None = None
) -> dict[str, Any]:
    failures = [f for f in findings if f.status == "FAIL"]
    rules: list[dict[str, Any]] = []
    index_of: dict[str, int] = {}
    results: list[dict[str, Any]] = []
    for finding in failures:
        if finding.rule_id not in index_of:
            index_of[finding.rule_id] = len(rules)
            rules.append(_rule(finding))
        results.append(_result(finding, index_of[finding.rule_id]))
    for secret in secrets or []:
        if secret.rule_id not in index_of:
            index_of[secret.rule_id] = len(rules)
            rules.append(_secret_rule(secret))
        results.append(_secret_result(secret, index_of[secret.rule_id]))
    return {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": "Moat", "version": __version__, "rules": rules}},
                "results": results,
                "properties": {"target": target},
            }
        ],
    }


def _rule(finding: Misconfiguration) -> dict[str, Any]:
    tags = ["misconfiguration", "security", finding.severity, *finding.controls]
    rule: dict[str, Any] = {
        "id": finding.rule_id,
        "name": finding.rule_id,
        "shortDescription": {"text": one_line(finding.title)},
        "fullDescription": {"text": finding.description or finding.title},
        "defaultConfiguration": {"level": LEVELS.get(finding.severity, "note")},
        "help": {"text": _help_text(finding), "markdown": _help_markdown(finding)},
        "properties": {"tags": tags, "precision": "very-high",
                       "security-severity": f"{BAND_SCORES.get(finding.severity, 0.0):.1f}"},
    }
    if finding.references:
        rule["helpUri"] = finding.references[0]
    return rule


def _result(finding: Misconfiguration, index: int) -> dict[str, Any]:
    where = finding.object + (f" container {finding.container}" if finding.container else "")
    region = {"startLine": max(finding.line, 1)}
    if finding.end_line >= region["startLine"]:
        region["endLine"] = finding.end_line
    return {
        "ruleId": finding.rule_id,
        "ruleIndex": index,
        "level": LEVELS.get(finding.severity, "note"),
        "message": {"text": f"{finding.message}" + (f" ({where})" if where else "")},
        "locations": [{"physicalLocation": {"artifactLocation": {"uri": _file_uri(finding.file)},
                                            "region": region}}],
        "partialFingerprints": {
            "moatMisconfig/v1": f"{finding.rule_id}|{finding.file}|{finding.object}|{finding.container}"
        },
    }


def _secret_rule(secret: SecretFinding) -> dict[str, Any]:
    return {
        "id": secret.rule_id,
        "name": secret.rule_id,
        "shortDescription": {"text": one_line(secret.title)},
        "fullDescription": {"text": f"{secret.title} ({secret.category})"},
        "defaultConfiguration": {"level": LEVELS.get(secret.severity, "note")},
        "help": {"text": "Remove the secret from the file and rotate it: anyone who read the file has it."},
        "properties": {"tags": ["secret", "security", secret.severity],
                       "security-severity": f"{BAND_SCORES.get(secret.severity, 0.0):.1f}"},
    }


def _secret_result(secret: SecretFinding, index: int) -> dict[str, Any]:
    return {
        "ruleId": secret.rule_id,
        "ruleIndex": index,
        "level": LEVELS.get(secret.severity, "note"),
        "message": {"text": f"{secret.title}: {secret.match}"},
        "locations": [{"physicalLocation": {"artifactLocation": {"uri": _file_uri(secret.file)},
                                            "region": {"startLine": max(secret.line, 1)}}}],
        "partialFingerprints": {"moatSecret/v1": f"{secret.rule_id}|{secret.file}|{secret.line}|{secret.layer}"},
    }


def _file_uri(path: str) -> str:
    """Code scanning wants paths relative to the repository root: the scan's working directory."""
    if os.path.isabs(path):
        try:
            relative = os.path.relpath(path)
        except ValueError:
            relative = path
        if not relative.startswith(".."):
            path = relative
    return relative_uri(path)


def _help_text(finding: Misconfiguration) -> str:
    parts = [finding.description, f"Remediation: {finding.remediation}", f"Verification: {finding.verification}"]
    if finding.controls:
        parts.append("Controls: " + ", ".join(finding.controls))
    return "\n\n".join(part for part in parts if part)


def _help_markdown(finding: Misconfiguration) -> str:
    text = f"**{markdown_escape(finding.title)}** ({finding.severity})\n\n{markdown_escape(finding.description)}"
    text += f"\n\n**Remediation**\n\n{markdown_escape(finding.remediation)}"
    text += f"\n\n**Verification**\n\n{markdown_escape(finding.verification)}"
    if finding.controls:
        text += "\n\n**Controls**: " + ", ".join(markdown_escape(c) for c in finding.controls)
    if finding.references:
        text += "\n\n" + "\n".join(f"- <{url}>" for url in finding.references[:5])
    return text
