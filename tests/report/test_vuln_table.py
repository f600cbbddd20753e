"""The vulnerability table: grouped by package, worst package first, summary lines at the end."""

from __future__ import annotations

from io import StringIO

from rich.console import Console
from vuln_fixtures import findings, inventory

from moat.report.vuln_table import findings_line, group_by_package, render_vuln_table


def render(**kwargs: int) -> str:
    buffer = StringIO()
    render_vuln_table(inventory(), findings(), Console(file=buffer, width=200, force_terminal=False), **kwargs)
    return buffer.getvalue()


def test_groups_sorted_by_worst_severity() -> None:
    groups = group_by_package(findings())
    assert [key[1] for key, _ in groups] == ["PyYAML", "Jinja2", "libssl3"]
    assert [v.id for v in groups[1][1]] == ["CVE-2024-56326", "CVE-2019-10906"]


def test_rows_and_summary() -> None:
    text = render(suppressed=2)
    for needle in ("CVE-2020-14343", "CRITICAL", "5.4", "affected", "Jinja has a sandbox breakout"):
        assert needle in text
    assert text.index("PyYAML") < text.index("Jinja2") < text.index("libssl3")
    lines = text.splitlines()
    assert lines[-2] == ("Vulnerabilities: 4 (CRITICAL 1, HIGH 1, MEDIUM 1, LOW 0, UNKNOWN 1) · fixed 3, unfixed 1"
                         " · 2 suppressed by policy")
    assert lines[-1] == "4 packages (pypi 3, deb 1) in app:1.0 · OS debian 12"


def test_markup_in_titles_prints_as_text() -> None:
    vulns = findings()
    vulns[0].title = "[bold red]not markup[/]"
    buffer = StringIO()
    render_vuln_table(inventory(), vulns, Console(file=buffer, width=200, force_terminal=False))
    assert "[bold red]not markup[/]" in buffer.getvalue()


def test_no_findings() -> None:
    zero = "Vulnerabilities: 0 (CRITICAL 0, HIGH 0, MEDIUM 0, LOW 0, UNKNOWN 0) · fixed 0, unfixed 0"
    assert findings_line([]) == zero
