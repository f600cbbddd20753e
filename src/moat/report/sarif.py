"""SARIF 2.1.0 (``--format sarif``), shaped for GitHub code scanning.

One rule per vulnerability id, one result per (vulnerability, package). GitHub ranks alerts by the
rule's ``security-severity`` property (a CVSS-style number: ≥ 9.0 critical, ≥ 7.0 high, ≥ 4.0
medium, else low), so it is the highest CVSS base score the advisory carries, or the middle of the
finding's severity band when there is no score. Results point at the file the package was read
from, relative to the image root (``uriBaseId`` ``ROOTPATH``): code scanning needs a location, and
that file is where the fix (an upgrade) lands. SARIF is plain JSON with a published schema; the
tests validate against it, and no Python SARIF library is kept well enough to depend on.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from moat import __version__
from moat.model import Inventory, Vulnerability
from moat.report.json_report import severity_rank, sorted_vulnerabilities

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
URI_BASE_ID = "ROOTPATH"
BAND_SCORES = {"CRITICAL": 9.5, "HIGH": 8.0, "MEDIUM": 5.5, "LOW": 2.0}
LEVELS = {"CRITICAL": "error", "HIGH": "error", "MEDIUM": "warning", "LOW": "note", "UNKNOWN": "note"}


def security_severity(vuln: Vulnerability) -> float | None:
    """Highest CVSS v3/v4 base score, else v2, else the band score for the severity (None if UNKNOWN)."""
    modern = [c.score for c in vuln.cvss if c.score is not None and not c.version.startswith("2")]
    legacy = [c.score for c in vuln.cvss if c.score is not None and c.version.startswith("2")]
    scores = modern or legacy
    if scores:
        return max(scores)
    return BAND_SCORES.get(vuln.severity)


def to_sarif(inv: Inventory, findings: list[Vulnerability], target: str) -> dict[str, Any]:
    ordered = sorted_vulnerabilities(findings)
    rules: list[dict[str, Any]] = []
    index_of: dict[str, int] = {}
    for vuln in ordered:  # most severe first, so each rule takes the worst severity its id has
        if vuln.id not in index_of:
            index_of[vuln.id] = len(rules)
            rules.append(_rule(vuln, [v for v in ordered if v.id == vuln.id]))
    return {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "Moat",
                        "version": __version__,
                        "rules": rules,
                    }
                },
                "originalUriBaseIds": {
                    URI_BASE_ID: {"uri": "file:///", "description": {"text": f"The root of {target}"}}
                },
                "results": [_result(vuln, index_of[vuln.id], inv) for vuln in ordered],
                "properties": {"target": target, "artifact": inv.artifact.name},
            }
        ],
    }


def _rule(vuln: Vulnerability, same_id: list[Vulnerability]) -> dict[str, Any]:
    worst = min(same_id, key=lambda v: severity_rank(v.severity))
    scores = [s for s in (security_severity(v) for v in same_id) if s is not None]
    properties: dict[str, Any] = {
        "tags": ["vulnerability", "security", worst.severity],
        "precision": "very-high",
    }
    if scores:
        properties["security-severity"] = f"{max(scores):.1f}"
    title = vuln.title or vuln.id
    rule: dict[str, Any] = {
        "id": vuln.id,
        "name": "OsPackageVulnerability" if vuln.package_type in ("deb", "rpm", "apk") else "LanguageVulnerability",
        "shortDescription": {"text": one_line(title)},
        "fullDescription": {"text": vuln.description or title},
        "defaultConfiguration": {"level": LEVELS.get(worst.severity, "note")},
        "help": {"text": _help_text(vuln, worst.severity), "markdown": _help_markdown(vuln, worst.severity)},
        "properties": properties,
    }
    if vuln.references:
        rule["helpUri"] = vuln.references[0]
    return rule


def _result(vuln: Vulnerability, rule_index: int, inv: Inventory) -> dict[str, Any]:
    fixed = ", ".join(vuln.fixed_versions) or "no fixed version"
    message = (
        f"{vuln.package_name} {vuln.package_version} is affected by {vuln.id} ({vuln.severity}). "
        f"Fixed in: {fixed}. Found in: {vuln.found_in or inv.artifact.name}."
    )
    return {
        "ruleId": vuln.id,
        "ruleIndex": rule_index,
        "level": LEVELS.get(vuln.severity, "note"),
        "message": {"text": message},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {
                        "uri": relative_uri(vuln.found_in or inv.artifact.name),
                        "uriBaseId": URI_BASE_ID,
                    },
                    "region": {"startLine": 1},
                },
                "message": {"text": f"{vuln.package_name}@{vuln.package_version}"},
            }
        ],
        "partialFingerprints": {"moatFinding/v1": f"{vuln.id}|{vuln.purl or vuln.package_name}|{vuln.found_in}"},
        "properties": {"purl": vuln.purl, "status": vuln.status, "fixed_versions": list(vuln.fixed_versions)},
    }


def relative_uri(path: str) -> str:
    """A relative URI reference: no leading slash, every unsafe character percent-encoded."""
    return quote(path.lstrip("/"), safe="/-._~") or "."


def one_line(text: str, limit: int = 200) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _help_text(vuln: Vulnerability, severity: str) -> str:
    lines = [
        f"Vulnerability {vuln.id}",
        f"Severity: {severity}",
        f"Package: {vuln.package_name}",
        f"Installed version: {vuln.package_version}",
        f"Fixed version: {', '.join(vuln.fixed_versions) or 'none'}",
    ]
    if vuln.aliases:
        lines.append(f"Aliases: {', '.join(vuln.aliases)}")
    lines += [f"Link: {url}" for url in vuln.references[:5]]
    return "\n".join(lines)


def _help_markdown(vuln: Vulnerability, severity: str) -> str:
    rows = [
        "| Package | Installed | Fixed | Severity |",
        "| --- | --- | --- | --- |",
        f"| {markdown_escape(vuln.package_name)} | {markdown_escape(vuln.package_version)} | "
        f"{markdown_escape(', '.join(vuln.fixed_versions) or 'none')} | {severity} |",
    ]
    text = f"**Vulnerability {markdown_escape(vuln.id)}**\n\n" + "\n".join(rows)
    if vuln.description:
        text += "\n\n" + markdown_escape(one_line(vuln.description, 1000))
    if vuln.references:
        text += "\n\n" + "\n".join(f"- <{url}>" for url in vuln.references[:5])
    return text


def markdown_escape(text: str) -> str:
    """Escape the characters that would break a table cell or start markup in GitHub's renderer."""
    for char in "\\|*_`[]<>":
        text = text.replace(char, "\\" + char)
    return text
