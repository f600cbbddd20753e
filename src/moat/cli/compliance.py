"""``moat compliance report``: one compliance report from a scan of PATHs, saved check reports, or both.

The saved reports are what ``moat config|host|k8s-node --format json`` wrote, possibly on other
machines, so an auditor can run the host checks on every host and the node checks on every node and
still hand over one report per framework (merging rules: :mod:`moat.checks.compliance`).
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from moat.cli import options as opt
from moat.errors import MoatError

if TYPE_CHECKING:
    from moat.checks.compliance import ComplianceReport


class ComplianceFormat(StrEnum):
    json = "json"
    html = "html"


def build_compliance(template_name: str, paths: list[str], reports: list[str]) -> tuple[ComplianceReport, list[str]]:
    """The report, plus warnings for stderr (files skipped by the scan, reports that add nothing)."""
    from moat.checks.compliance import build_report, load_saved_report, merge_results, results_from_run
    from moat.checks.rule import builtin_rules
    from moat.checks.templates import load_template

    if not paths and not reports:
        raise MoatError("compliance report: give PATHs to scan, --from REPORT.json files to merge, or both")
    template = load_template(template_name)
    selected = template.select(builtin_rules())
    groups = []
    findings = []
    targets: list[str] = []
    sources: list[str] = []
    warnings: list[str] = []
    if paths:
        from moat.checks.collect import collect, require_documents
        from moat.checks.engine import evaluate

        collected = collect(paths)
        require_documents(collected, paths)
        run = evaluate(collected.documents, selected, params=template.params, severity_overrides=template.severity)
        warnings.extend([*collected.warnings, *run.warnings])
        groups.append(results_from_run(run))
        findings.extend(run.findings)
        targets.extend(paths)
        sources.extend(paths)
    for name in reports:
        saved = load_saved_report(name)
        made_with = (saved.template or {}).get("framework")
        if made_with and template.framework and made_with != template.framework:
            warnings.append(f"--from {name}: written for framework {made_with}; its checks count where they map "
                            f"to {template.framework}")
        groups.append(saved.checks)
        findings.extend(saved.findings)
        targets.append(saved.target)
        sources.append(saved.label)
    report = build_report(template, merge_results(groups), findings, selected=selected, targets=targets,
                          sources=sources)
    return report, warnings


def render(report: ComplianceReport, fmt: ComplianceFormat) -> str:
    if fmt is ComplianceFormat.html:
        from moat.report.compliance_html import render_compliance_html

        return render_compliance_html(report)
    return json.dumps(report.to_dict(), indent=2)


def run_report(template_name: str, paths: list[str], reports: list[str], fmt: ComplianceFormat,
               output: str | None) -> None:
    from moat.cli.main import stderr
    from moat.cli.output import write_report

    report, warnings = build_compliance(template_name, paths, reports)
    for warning in warnings:
        stderr.print(f"moat: warning: {warning}", markup=False, soft_wrap=True)
    write_report(render(report, fmt), output)


def register(app: typer.Typer) -> None:
    group = typer.Typer(name="compliance", help="Compliance reports: one status per control of a framework.",
                        no_args_is_help=True)

    @group.command("report")
    def report(
        template: Annotated[
            str,
            typer.Option("--template", "-t", help="Template name (see `moat templates list`) or template YAML file."),
        ],
        paths: Annotated[
            list[str] | None,
            typer.Argument(help="Files or directories to scan, as `moat config PATH` does."),
        ] = None,
        from_reports: Annotated[
            list[str] | None,
            typer.Option("--from", help="A saved `moat config|host|k8s-node --format json` report to merge "
                                        "(repeatable)."),
        ] = None,
        format: Annotated[
            ComplianceFormat, typer.Option("--format", "-f", help="json, or html: one standalone file.")
        ] = ComplianceFormat.json,
        output: opt.Output = None,
    ) -> None:
        """Report each control of a template's framework as passed, failed, manual or not assessed.

        Example: moat compliance report -t cis-docker . --from host1.json --from host2.json -f html -o cis.html
        """
        from moat.cli.main import guarded

        guarded(lambda: run_report(template, paths or [], from_reports or [], format, output))

    app.add_typer(group)
