"""The findings table: aligned columns, long text wrapped inside its column, hostile names printed
as they are, and the summary line."""

from __future__ import annotations

from io import StringIO

from rich.console import Console

from moat.model import Misconfiguration
from moat.report.misconfig_table import render_misconfig_table


def _finding(rule: str, severity: str, message: str, container: str = "", line: int = 7) -> Misconfiguration:
    return Misconfiguration(rule_id=rule, title="Title", severity=severity, status="FAIL", target_kind="kubernetes",
                            file="deploy/web.yaml", message=message, line=line, object="prod/Deployment/web",
                            container=container)


def _render(findings: list[Misconfiguration], width: int = 100) -> list[str]:
    buffer = StringIO()
    render_misconfig_table(findings, Console(file=buffer, width=width, force_terminal=False), rules_run=3,
                           warnings=["one file skipped"])
    return buffer.getvalue().splitlines()


def test_columns_align_and_long_messages_wrap_within_their_column() -> None:
    long = "word " * 40
    lines = _render([_finding("MOAT-K8S-005", "CRITICAL", "short"), _finding("MOAT-K8S-041", "LOW", long, "app")])
    assert lines[0] == "deploy/web.yaml"
    header = lines[1]
    start = header.index("Finding")
    assert header.index("Object") < start
    rows = [line for line in lines[3:] if line.strip()]
    assert rows[0].startswith("CRITICAL") and rows[0][start:] == "Title: short"
    assert rows[1].startswith("LOW") and "prod/Deployment/web [app]" in rows[1]
    continuation = rows[2]
    assert continuation[:start].strip() == "" and continuation[start:].startswith("word")
    assert all(len(line) <= 100 for line in lines)


def test_markup_in_names_is_printed_literally_and_summary_counts() -> None:
    lines = _render([_finding("MOAT-K8S-005", "HIGH", "container [red]x[/red] runs privileged", "[bold]x")])
    text = "\n".join(lines)
    assert "[red]x[/red]" in text and "[bold]x" in text
    assert "1 failure (HIGH 1), 0 to verify by hand, 3 rules run" in text
    assert lines[-1] == "warning: one file skipped"
