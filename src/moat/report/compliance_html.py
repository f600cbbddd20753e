"""The compliance report as one standalone HTML file, for a person to read and hand to an auditor.

One file with its CSS inline and no script, font or image from anywhere: it must open the same on an
air-gapped laptop years later, and a mail gateway must not strip it. Every value in it comes from
scanned files (a finding's message can hold ``<script>``), so the template is rendered with Jinja2's
autoescaping on, and anchors are numbered rather than derived from control ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from typing import TYPE_CHECKING, Any

import jinja2

from moat.checks.compliance import CONTROL_STATUSES, FAIL, MANUAL, NOT_APPLICABLE, NOT_ASSESSED, PASS
from moat.model import SEVERITIES

if TYPE_CHECKING:
    from moat.checks.compliance import ComplianceReport

MAX_FINDINGS_PER_RULE = 200
"""A rule with thousands of findings would make the page unreadable; the JSON report has them all."""

MAX_RULE_IDS_LISTED = 8
"""The control table lists this many rule ids (a derived control can have hundreds behind it)."""

STATUS_LABELS = {FAIL: "Failed", NOT_ASSESSED: "Not assessed", MANUAL: "Manual", PASS: "Passed"}
RULE_STATUS_LABELS = {FAIL: "failed", PASS: "passed", MANUAL: "manual", NOT_APPLICABLE: "not evaluated"}
TARGET_HINTS = {
    "dockerfile": "Dockerfiles (moat config)",
    "kubernetes": "Kubernetes manifests (moat config)",
    "compose": "compose files (moat config)",
    "image-config": "image configs (moat image)",
    "docker-host": "Docker hosts (moat host)",
    "docker-container": "running containers (moat host)",
    "k8s-node": "Kubernetes nodes (moat k8s-node)",
}
"""What a reader must add to the run to assess a control whose rules read these target kinds."""


def render_compliance_html(report: ComplianceReport | Mapping[str, Any]) -> str:
    """The HTML page of a compliance report (its object or its ``moat.compliance/v1`` JSON form)."""
    data = report if isinstance(report, Mapping) else report.to_dict()
    return _environment().get_template("compliance.html.j2").render(view=_view(data))


def _environment() -> jinja2.Environment:
    folder = resources.files("moat.report") / "html"
    return jinja2.Environment(
        loader=jinja2.FunctionLoader(lambda name: (folder / name).read_text(encoding="utf-8")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _view(data: Mapping[str, Any]) -> dict[str, Any]:
    """The report reshaped for the page: anchors, findings grouped under their rule, caps applied."""
    controls = []
    for number, control in enumerate(data["controls"], start=1):
        by_rule: dict[str, list[dict[str, Any]]] = {}
        for finding in control["findings"]:
            by_rule.setdefault(finding["rule_id"], []).append(_finding_view(finding))
        rules = []
        for rule in control["rules"]:
            found = by_rule.get(rule["rule_id"], [])
            rules.append({
                **rule,
                "status_label": RULE_STATUS_LABELS.get(rule["status"], rule["status"]),
                "findings": found[:MAX_FINDINGS_PER_RULE],
                "more": max(rule["failures"], len(found)) - min(len(found), MAX_FINDINGS_PER_RULE),
                "targets_hint": ", ".join(TARGET_HINTS.get(kind, kind) for kind in rule["targets"]),
            })
        controls.append({
            **control,
            "anchor": f"control-{number}",
            "status_label": STATUS_LABELS.get(control["status"], control["status"]),
            "rules": rules,
            "listed_rule_ids": [rule["rule_id"] for rule in rules[:MAX_RULE_IDS_LISTED]],
            "more_rule_ids": max(len(rules) - MAX_RULE_IDS_LISTED, 0),
            "failed_rules": [rule for rule in rules if rule["status"] == FAIL],
            "manual_rules": [rule for rule in rules if rule["manual"]],
            "unevaluated_rules": [rule for rule in rules if rule["status"] == NOT_APPLICABLE],
        })
    summary = data["summary"]
    by_status = summary["by_status"]
    total = max(summary["controls"], 1)
    return {
        "template": data["template"],
        "targets": data["targets"],
        "sources": data["sources"],
        "created": data["created"],
        "moat_version": data["moat_version"],
        "summary": summary,
        "statuses": [
            {"key": status, "label": STATUS_LABELS[status], "count": by_status.get(status, 0),
             "percent": round(100 * by_status.get(status, 0) / total, 2)}
            for status in CONTROL_STATUSES
        ],
        "severities": [{"key": s, "count": summary["failures_by_severity"].get(s, 0)} for s in SEVERITIES],
        "controls": controls,
        "failed": [c for c in controls if c["status"] == FAIL],
        "manual": [c for c in controls if c["status"] == MANUAL],
        "not_assessed": [c for c in controls if c["status"] == NOT_ASSESSED],
    }


def _finding_view(finding: Mapping[str, Any]) -> dict[str, Any]:
    location = finding["location"]
    where = location["file"] + (f":{location['line']}" if location.get("line") else "")
    return {**finding, "where": where, "object": location["object"], "container": location["container"]}
