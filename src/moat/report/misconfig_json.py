"""The native JSON report of a configuration check (``moat config``, ``moat host``, ``moat k8s-node``).

Besides the findings it carries ``checks``: what every selected rule concluded (PASS, FAIL, MANUAL,
NOT_APPLICABLE) and on how many objects. A compliance report needs that to tell "passed" from "never
looked at", and ``moat compliance report --from`` merges these reports from many hosts.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import TYPE_CHECKING, Any

from moat import __version__
from moat.model import REPORT_SCHEMA, SEVERITIES, Misconfiguration, SecretFinding
from moat.report.json_report import utc_timestamp

if TYPE_CHECKING:
    from moat.checks.engine import CheckRun
    from moat.checks.templates import Template


def check_run_to_report(
    run: CheckRun,
    target: str,
    scan_kind: str,
    findings: list[Misconfiguration],
    *,
    template: Template | None = None,
    secrets: list[SecretFinding] | None = None,
    created: datetime | None = None,
) -> dict[str, Any]:
    """``findings`` are the run's findings after the user's filters (``--severity``)."""
    report: dict[str, Any] = {
        "schema": REPORT_SCHEMA,
        "moat_version": __version__,
        "created": utc_timestamp(created),
        "target": target,
        "scan_kind": scan_kind,
        "template": template_summary(template),
        "misconfigurations": [finding.to_dict() for finding in findings],
        "checks": check_outcomes(run),
        "summary": misconfig_summary(findings, run),
        "warnings": list(run.warnings),
    }
    if secrets is not None:
        report["secrets"] = [secret.to_dict() for secret in secrets]
    return report


def template_summary(template: Template | None) -> dict[str, Any] | None:
    if template is None:
        return None
    return {"id": template.id, "title": template.title, "framework": template.framework, "source": template.source}


def check_outcomes(run: CheckRun) -> list[dict[str, Any]]:
    return [
        {
            "rule_id": outcome.rule.id,
            "title": outcome.rule.title,
            "severity": outcome.severity,
            "status": outcome.status,
            "evaluated": outcome.evaluated,
            "failures": outcome.failures,
            "controls": list(outcome.rule.controls),
            "manual": outcome.rule.manual,
            "targets": list(outcome.rule.targets),
            "verification": outcome.rule.verification,
        }
        for outcome in sorted(run.outcomes.values(), key=lambda item: item.rule.id)
    ]


def misconfig_summary(findings: list[Misconfiguration], run: CheckRun) -> dict[str, Any]:
    failed = Counter(f.severity for f in findings if f.status == "FAIL")
    rules = Counter(outcome.status for outcome in run.outcomes.values())
    return {
        "failures": sum(failed.values()),
        "manual": sum(1 for f in findings if f.status == "MANUAL"),
        "by_severity": {severity: failed.get(severity, 0) for severity in SEVERITIES},
        "rules": {status: rules.get(status, 0) for status in ("PASS", "FAIL", "MANUAL", "NOT_APPLICABLE")},
    }
