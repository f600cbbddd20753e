"""Report and gate for every command that runs configuration checks (``moat config``, ``moat host``,
``moat k8s-node``): one set of options, one renderer, one gate, so the commands behave alike.

The gate counts FAIL findings (and secrets) left after ``--severity``; MANUAL items never fail a
build: nothing was found wrong, a person just has to look.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from io import StringIO
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from moat.cli.output import write_report
from moat.policy.filters import parse_severities

if TYPE_CHECKING:
    from moat.checks.engine import CheckRun
    from moat.checks.templates import Template
    from moat.model import Misconfiguration, SecretFinding


class CheckFormat(StrEnum):
    table = "table"
    json = "json"
    sarif = "sarif"
    junit = "junit"


FormatOption = Annotated[CheckFormat, typer.Option("--format", "-f", help="Report format.")]
SeverityOption = Annotated[
    str | None,
    typer.Option("--severity", "-s", help="Report only these severities, e.g. HIGH,CRITICAL (default: all)."),
]
ExitCodeOption = Annotated[
    int,
    typer.Option("--exit-code", min=0, max=255, help="Exit with this code when failures remain after filters."),
]
TemplateOption = Annotated[
    str | None,
    typer.Option("--template", "-t", help="Template name (see `moat templates list`) or template YAML file."),
]


@dataclass(slots=True)
class CheckOutput:
    format: CheckFormat = CheckFormat.table
    output: str | None = None
    severity: str | None = None
    exit_code: int = 0


def finish_check_run(
    run: CheckRun,
    target: str,
    scan_kind: str,
    options: CheckOutput,
    *,
    template: Template | None = None,
    secrets: list[SecretFinding] | None = None,
    facts: dict[str, Any] | None = None,
) -> int:
    """Filter, render, write, and return the exit code the gate gives. ``facts`` are what the command
    learned about its target (a node's role and benchmark version), kept in the JSON report."""
    severities = parse_severities(options.severity)
    findings = [f for f in run.findings if f.severity in severities]
    kept_secrets = [s for s in secrets if s.severity in severities] if secrets is not None else None
    write_report(render_check_run(run, target, scan_kind, findings, options.format, template, kept_secrets, facts),
                 options.output)
    failed = any(f.status == "FAIL" for f in findings) or bool(kept_secrets)
    return options.exit_code if failed else 0


def render_check_run(
    run: CheckRun,
    target: str,
    scan_kind: str,
    findings: list[Misconfiguration],
    fmt: CheckFormat,
    template: Template | None = None,
    secrets: list[SecretFinding] | None = None,
    facts: dict[str, Any] | None = None,
) -> str:
    if fmt is CheckFormat.table:
        from moat.report.misconfig_table import render_misconfig_table

        buffer = StringIO()
        rules_run = sum(1 for outcome in run.outcomes.values() if outcome.status != "NOT_APPLICABLE")
        render_misconfig_table(findings, Console(file=buffer, width=160, force_terminal=False),
                               rules_run=rules_run, warnings=run.warnings, secrets=secrets)
        return buffer.getvalue()
    if fmt is CheckFormat.sarif:
        from moat.report.misconfig_sarif import misconfigs_to_sarif

        return json.dumps(misconfigs_to_sarif(findings, target, secrets), indent=2)
    if fmt is CheckFormat.junit:
        from moat.report.misconfig_junit import misconfigs_to_junit

        return misconfigs_to_junit(run, findings, target)
    from moat.report.misconfig_json import check_run_to_report

    report = check_run_to_report(run, target, scan_kind, findings, template=template, secrets=secrets)
    if facts:
        report["facts"] = facts
    return json.dumps(report, indent=2)
