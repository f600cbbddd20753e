"""The vulnerability table (``moat image --format table``): one block per package, worst first.

Grouping by package answers the question a reader has at a terminal, "what do I upgrade?", and the
fixed-version column gives the answer. Cells are plain :class:`rich.text.Text` so advisory titles
from the feeds cannot restyle the terminal.
"""

from __future__ import annotations

from collections import defaultdict

from rich.console import Console
from rich.table import Table
from rich.text import Text

from moat.model import SEVERITIES, Inventory, Vulnerability
from moat.report.json_report import severity_rank, sorted_vulnerabilities, vulnerability_summary
from moat.report.table import shorten_path, summary_line

SEVERITY_STYLES = {"CRITICAL": "bold red", "HIGH": "red", "MEDIUM": "yellow", "LOW": "cyan", "UNKNOWN": "dim"}
MAX_TITLE = 80

PackageKey = tuple[str, str, str, str]


def group_by_package(findings: list[Vulnerability]) -> list[tuple[PackageKey, list[Vulnerability]]]:
    """(type, name, version, found_in) → its findings; packages ordered by their worst finding."""
    groups: dict[PackageKey, list[Vulnerability]] = defaultdict(list)
    for vuln in sorted_vulnerabilities(findings):
        groups[(vuln.package_type, vuln.package_name, vuln.package_version, vuln.found_in)].append(vuln)
    return sorted(
        groups.items(),
        key=lambda item: (min(severity_rank(v.severity) for v in item[1]), -len(item[1]), item[0]),
    )


def render_vuln_table(
    inv: Inventory, findings: list[Vulnerability], console: Console, suppressed: int = 0
) -> None:
    """The table, then the findings summary and the inventory summary, then any warnings."""
    if findings:
        table = Table(show_edge=False, header_style="bold")
        for heading in ("Package", "Installed", "ID", "Severity", "Status", "Fixed in", "Title"):
            table.add_column(heading, overflow="fold")
        groups = group_by_package(findings)
        for index, ((_, name, version, found_in), vulns) in enumerate(groups):
            for row, vuln in enumerate(vulns):
                label = Text(name) if row else Text(f"{name}\n{shorten_path(found_in)}" if found_in else name)
                table.add_row(
                    label if row == 0 else Text(""),
                    Text(version) if row == 0 else Text(""),
                    Text(vuln.id),
                    Text(vuln.severity, style=SEVERITY_STYLES.get(vuln.severity, "")),
                    Text(vuln.status),
                    Text(", ".join(vuln.fixed_versions)),
                    Text(_title(vuln)),
                    end_section=row == len(vulns) - 1 and index < len(groups) - 1,
                )
        console.print(table)
    console.print(Text(findings_line(findings, suppressed)))
    console.print(Text(summary_line(inv)))
    for warning in inv.warnings:
        console.print(Text(f"warning: {warning}", style="yellow"))


def findings_line(findings: list[Vulnerability], suppressed: int = 0) -> str:
    """E.g. ``Vulnerabilities: 5 (CRITICAL 1, HIGH 2, MEDIUM 1, LOW 1, UNKNOWN 0) · fixed 4, unfixed 1``."""
    summary = vulnerability_summary(findings, suppressed)
    counts = ", ".join(f"{level} {summary['by_severity'][level]}" for level in SEVERITIES)
    line = f"Vulnerabilities: {summary['total']} ({counts}) · fixed {summary['fixed']}, unfixed {summary['unfixed']}"
    if suppressed:
        line += f" · {suppressed} suppressed by policy"
    return line


def _title(vuln: Vulnerability) -> str:
    text = " ".join((vuln.title or vuln.description).split())
    return text if len(text) <= MAX_TITLE else text[: MAX_TITLE - 1] + "…"
