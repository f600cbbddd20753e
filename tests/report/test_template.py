"""--format template: Jinja2 over the native report, sandboxed, strict about undefined names."""

from __future__ import annotations

from pathlib import Path

import pytest
from vuln_fixtures import findings, inventory

from moat.errors import MoatError
from moat.report.json_report import scan_to_report
from moat.report.template import render_template


def render(tmp_path: Path, text: str, name: str = "t.txt") -> str:
    path = tmp_path / name
    path.write_text(text)
    return render_template(str(path), scan_to_report(inventory(), "app", findings()))


def test_renders_the_report(tmp_path: Path) -> None:
    out = render(tmp_path, "{% for v in vulnerabilities %}{{ v.id }} {{ v.package.name }}\n{% endfor %}"
                           "{{ summary.by_severity.CRITICAL }}/{{ report.summary.total }}\n")
    assert out.splitlines() == ["CVE-2020-14343 PyYAML", "CVE-2024-56326 Jinja2", "CVE-2023-0286 libssl3",
                                "CVE-2019-10906 Jinja2", "1/4"]


def test_html_templates_escape(tmp_path: Path) -> None:
    out = render(tmp_path, "{% for v in vulnerabilities %}<p>{{ v.description }}</p>{% endfor %}", "r.html")
    assert "&lt;markdown&gt;" in out and "<markdown>" not in out


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{{ nonexistent }}", "'nonexistent' is undefined"),
        ("{% for %}", "line 1"),
        ("{{ ''.__class__.__mro__ }}", "unsafe"),
        ("{{ 1 + 'a' }}", "TypeError"),
    ],
)
def test_template_errors_are_one_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(MoatError) as info:
        render(tmp_path, text)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_missing_template(tmp_path: Path) -> None:
    with pytest.raises(MoatError, match="No such file"):
        render_template(str(tmp_path / "nope"), {})
