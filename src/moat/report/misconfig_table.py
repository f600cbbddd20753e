"""The terminal view of configuration findings: one table per file, most severe first.

Every cell is plain ``Text``: a manifest can name a container ``[red]x`` and must not restyle the
terminal. MANUAL items are listed after the failures, with the command an auditor runs.
"""

from __future__ import annotations

from itertools import groupby

from rich.console import Console
from rich.table import Table
from rich.text import Text

from moat.model import Misconfiguration, SecretFinding

SEVERITY_STYLES = {"CRITICAL": "bold red", "HIGH": "red", "MEDIUM": "yellow", "LOW": "cyan", "UNKNOWN": "dim"}


def render_misconfig_table(
    findings: list[Misconfiguration],
    console: Console,
    *,
    rules_run: int,
    warnings: list[str],
    secrets: list[SecretFinding] | None = None,
    show_manual: bool = True,
) -> None:
    failures = [f for f in findings if f.status == "FAIL"]
    manual = [f for f in findings if f.status == "MANUAL"]
    for file, group in groupby(sorted(failures, key=lambda f: f.file), key=lambda f: f.file):
        table = Table(title=Text(file, style="bold"), title_justify="left", show_edge=False, header_style="bold")
        for heading in ("Severity", "Rule", "Line", "Object", "Finding"):
            table.add_column(heading, overflow="fold")
        for finding in group:
            where = finding.object + (f" [{finding.container}]" if finding.container else "")
            table.add_row(
                Text(finding.severity, style=SEVERITY_STYLES.get(finding.severity, "")),
                Text(finding.rule_id),
                Text(str(finding.line) if finding.line else ""),
                Text(where),
                Text(_finding_text(finding)),
            )
        console.print(table)
        console.print()
    if secrets:
        table = Table(title=Text("Secrets", style="bold"), title_justify="left", show_edge=False,
                      header_style="bold")
        for heading in ("Severity", "Rule", "Location", "Match (redacted)"):
            table.add_column(heading, overflow="fold")
        for secret in secrets:
            table.add_row(Text(secret.severity, style=SEVERITY_STYLES.get(secret.severity, "")),
                          Text(secret.rule_id), Text(f"{secret.file}:{secret.line}"), Text(secret.match))
        console.print(table)
        console.print()
    if manual and show_manual:
        table = Table(title=Text("Verify by hand", style="bold"), title_justify="left", show_edge=False,
                      header_style="bold")
        for heading in ("Rule", "Check", "How to verify"):
            table.add_column(heading, overflow="fold")
        for finding in manual:
            table.add_row(Text(finding.rule_id), Text(finding.title), Text(finding.verification))
        console.print(table)
        console.print()
    console.print(Text(summary_line(failures, manual, rules_run, secrets)))
    for warning in warnings:
        console.print(Text(f"warning: {warning}", style="yellow"))


def summary_line(
    failures: list[Misconfiguration], manual: list[Misconfiguration], rules_run: int,
    secrets: list[SecretFinding] | None,
) -> str:
    counts = {severity: 0 for severity in SEVERITY_STYLES}
    for finding in failures:
        counts[finding.severity] = counts.get(finding.severity, 0) + 1
    by_severity = ", ".join(f"{name} {count}" for name, count in counts.items() if count)
    text = f"{len(failures)} failure{'s' if len(failures) != 1 else ''}"
    if by_severity:
        text += f" ({by_severity})"
    text += f", {len(manual)} to verify by hand, {rules_run} rules run"
    if secrets is not None:
        text += f", {len(secrets)} secret{'s' if len(secrets) != 1 else ''}"
    return text


def _finding_text(finding: Misconfiguration) -> str:
    """Title and message, without saying the same thing twice when a message restates the title."""
    if finding.message.lower().startswith(finding.title.lower()):
        return finding.message
    return f"{finding.title}: {finding.message}"
